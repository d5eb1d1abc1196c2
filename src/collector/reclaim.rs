//! Reclaiming the kernel's table entries of interfaces gone for longer than a grace
//! period, so that an always-on run on a churning node never fills its tables. Their
//! numbers are banked here first and stay in every snapshot (marked gone), never merged
//! into a new interface: keys carry the never-reused netns cookie. A run whose consumer
//! stops showing gone interfaces after a while (`serve --forget-after`, the dashboard)
//! forgets them then: banked numbers, paths and names go, so that churn costs nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags};

use super::maps;
use crate::bpf::{limits, types, SirqtopSkel};
use crate::model::{Histogram, IfaceCounters, IfaceKey, PathHop, PathHopKey};

/// How long an interface must have been gone before its entries are reclaimed
/// (`SIRQTOP_RECLAIM_AFTER` overrides it, in seconds; the tests use it).
const GRACE: Duration = Duration::from_secs(60);
/// Banked interfaces kept at most; the oldest go first beyond it.
const MAX_RETIRED: usize = 65_536;

/// What a retired interface had counted when its entries were reclaimed.
#[derive(Debug, Clone, Default)]
pub(super) struct Banked {
    pub counters: IfaceCounters,
    pub veth_hop: Histogram,
    pub backlog_wait: Histogram,
    pub drops: BTreeMap<u32, u64>,
}

#[derive(Default)]
pub(super) struct Reclaimer {
    gone_since: HashMap<IfaceKey, Instant>,
    /// Banked numbers, with when the interface was first seen gone.
    retired: BTreeMap<IfaceKey, (Instant, Banked)>,
    /// Path hops that touched a retired interface, banked when their entry was freed.
    paths: HashMap<PathHopKey, (Instant, PathHop)>,
    grace: Option<Duration>,
    /// Gone interfaces are forgotten this long after they went (None: kept for the run).
    forget_after: Option<Duration>,
    /// Forgotten interfaces the kernel may still show (per-CPU slots are freed lazily, by
    /// the next interface that wants them): left out of snapshots while it does.
    forgotten: HashSet<IfaceKey>,
}

/// The kernel side's slot tag of a key (bpf/sirqtop.bpf.c `key_tag`).
pub(super) fn key_tag(k: &IfaceKey) -> u64 {
    let h = (k.cookie ^ (u64::from(k.netns) << 32) ^ u64::from(k.ifindex))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h | 1
}

/// The kernel side's slot index of a key (bpf/sirqtop.bpf.c `key_slot`).
pub(super) fn key_slot(k: &IfaceKey) -> u32 {
    ((key_tag(k) >> 40) as u32) & (limits::IFACE_SLOTS as u32 - 1)
}

/// The kernel side's per-CPU histogram slot of a key (bpf/iface.bpf.h `iface_hist_add`).
pub(super) fn hist_pcpu_slot(k: &IfaceKey) -> u32 {
    key_slot(k) & (limits::HIST_PCPU_SLOTS as u32 - 1)
}

fn raw_key(k: &IfaceKey) -> types::sirq_iface_key {
    types::sirq_iface_key {
        cookie: k.cookie,
        netns: k.netns,
        ifindex: k.ifindex,
    }
}

impl Reclaimer {
    pub(super) fn new(forget_after: Option<Duration>) -> Reclaimer {
        Reclaimer {
            forget_after,
            ..Reclaimer::default()
        }
    }

    fn grace(&mut self) -> Duration {
        *self.grace.get_or_insert_with(|| {
            std::env::var("SIRQTOP_RECLAIM_AFTER")
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or(GRACE)
        })
    }

    /// Every retired interface with its banked numbers.
    pub(super) fn retired(&self) -> impl Iterator<Item = (&IfaceKey, &Banked)> {
        self.retired.iter().map(|(k, (_, b))| (k, b))
    }

    /// Whether the kernel's numbers of `k` are to be left out: it was forgotten.
    pub(super) fn is_forgotten(&self, k: &IfaceKey) -> bool {
        self.forgotten.contains(k)
    }

    /// Keeps the forgotten keys that the kernel still showed in this read (`shown`): the
    /// others are gone from its tables for good and need no remembering.
    pub(super) fn prune_forgotten(&mut self, shown: &HashSet<IfaceKey>) {
        self.forgotten.retain(|k| shown.contains(k));
    }

    /// Notes which interfaces are gone; banks and frees those gone past the grace period,
    /// forgets those gone past `forget_after`. `current` holds each key's numbers as just
    /// read. Returns the interfaces forgotten now.
    pub(super) fn sweep(
        &mut self,
        skel: &SirqtopSkel,
        gone: &[IfaceKey],
        present: &[IfaceKey],
        current: impl Fn(&IfaceKey) -> Banked,
    ) -> Vec<IfaceKey> {
        let now = Instant::now();
        let grace = self.grace();
        let past_forget = |t: Instant| {
            self.forget_after
                .is_some_and(|f| now.duration_since(t) >= f)
        };
        for k in present {
            self.gone_since.remove(k);
        }
        for k in gone {
            if !self.retired.contains_key(k) {
                self.gone_since.entry(*k).or_insert(now);
            }
        }
        let due: Vec<(IfaceKey, Instant)> = self
            .gone_since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= grace || past_forget(**t))
            .map(|(k, t)| (*k, *t))
            .collect();
        let mut forgotten = Vec::new();
        for (k, since) in &due {
            self.gone_since.remove(k);
            if past_forget(*since) {
                forgotten.push(*k);
            } else {
                self.retired.insert(*k, (*since, current(k)));
            }
            free_entries(skel, k);
        }
        let due: Vec<IfaceKey> = due.into_iter().map(|(k, _)| k).collect();
        free_drop_entries(skel, &due);
        let expired: Vec<IfaceKey> = self
            .retired
            .iter()
            .filter(|(_, (t, _))| past_forget(*t))
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.retired.remove(&k);
            forgotten.push(k);
        }
        self.forgotten.extend(forgotten.iter().copied());
        while self.retired.len() > MAX_RETIRED {
            let Some(oldest) = self
                .retired
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.retired.remove(&oldest);
        }
        forgotten
    }
}

impl Reclaimer {
    /// Takes the kernel's path hops as just read and returns one per key (summed over
    /// CPUs and maps). Those that touch a retired interface are banked once and their
    /// kernel entries freed (hash entries deleted, per-CPU slots marked in `path_evict`
    /// for their CPU to reuse); banked hops stay in the result.
    pub(super) fn sweep_paths(
        &mut self,
        skel: &SirqtopSkel,
        kernel: Vec<(maps::PathSource, PathHop)>,
    ) -> Vec<PathHop> {
        let now = Instant::now();
        let mut summed: HashMap<PathHopKey, PathHop> = HashMap::new();
        let mut sources: HashMap<PathHopKey, Vec<maps::PathSource>> = HashMap::new();
        let mut evict: HashMap<u32, Vec<(usize, u64)>> = HashMap::new();
        for (src, h) in kernel {
            summed
                .entry(h.key)
                .or_insert(PathHop {
                    key: h.key,
                    ..PathHop::default()
                })
                .merge(&h);
            sources.entry(h.key).or_default().push(src);
        }
        // A banked path goes with the last retired interface it touched.
        let retired = &self.retired;
        self.paths.retain(|k, _| {
            [k.origin, k.prev, k.to]
                .iter()
                .any(|i| retired.contains_key(i))
        });
        let mut out = Vec::with_capacity(summed.len() + self.paths.len());
        for (k, h) in summed {
            let ends = [k.origin, k.prev, k.to];
            let retired = ends.iter().any(|i| self.retired.contains_key(i));
            let forgotten = ends.iter().any(|i| self.forgotten.contains(i));
            if !retired && !forgotten {
                out.push(h);
                continue;
            }
            // A retired path gets no more packets: what the kernel still shows of it
            // after banking is the same numbers, not new ones. A forgotten one is only
            // freed.
            if !forgotten {
                self.paths.entry(k).or_insert((now, h));
            }
            for src in sources.remove(&k).unwrap_or_default() {
                match src {
                    maps::PathSource::Hash(raw) => {
                        let _ = skel.maps.paths.delete(&raw);
                    }
                    maps::PathSource::Slot { idx, cpu, tag } => {
                        evict.entry(idx).or_default().push((cpu, tag));
                    }
                }
            }
        }
        // Per CPU, the tag of the retired path in its slot: that CPU frees it when
        // another path wants the slot.
        for (idx, cpus) in evict {
            mark_evict(&skel.maps.path_evict, idx, cpus);
        }
        while self.paths.len() > MAX_RETIRED {
            let Some(oldest) = self
                .paths
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.paths.remove(&oldest);
        }
        out.extend(self.paths.values().map(|(_, h)| *h));
        out
    }
}

/// Frees a retired interface's entries: its hash-map entries and its shared histogram
/// slot now, its per-CPU counter slots through `slot_evict` (each CPU that holds it frees
/// its own the next time another interface wants the slot). Drop entries:
/// `free_drop_entries`.
fn free_entries(skel: &SirqtopSkel, k: &IfaceKey) {
    let raw = raw_key(k);
    // SAFETY: sirq_iface_key is Plain (integers only): viewing it as bytes is sound.
    let key_bytes = unsafe { plain::as_bytes(&raw) };
    let _ = skel.maps.iface_counters.delete(key_bytes);
    let _ = skel.maps.iface_hists.delete(key_bytes);
    let idx = key_slot(k).to_ne_bytes();
    if let Ok(Some(v)) = skel.maps.hist_slots.lookup(&idx, MapFlags::ANY) {
        if let Ok(s) = plain::from_bytes::<types::sirq_hist_slot>(&v) {
            if s.tag == key_tag(k) && maps::key(&s.key) == *k {
                let zero = vec![0u8; v.len()];
                let _ = skel.maps.hist_slots.update(&idx, &zero, MapFlags::ANY);
            }
        }
    }
    // Its per-CPU histogram slots and counter slots: the CPUs whose slot holds it get its
    // tag; the others keep theirs (another gone interface may be waiting there to be freed).
    evict_holders::<types::sirq_hist_slot>(
        &skel.maps.hist_pcpu,
        &skel.maps.hist_pcpu_evict,
        hist_pcpu_slot(k),
        k,
        |s| (s.tag == key_tag(k)).then_some(&s.key),
    );
    evict_holders::<types::sirq_iface_slot>(
        &skel.maps.iface_slots,
        &skel.maps.slot_evict,
        key_slot(k),
        k,
        |s| Some(&s.key),
    );
}

/// Marks interface `k`'s tag in `evict` at `idx` for the CPUs whose entry of the per-CPU
/// slot map `slots` holds it (`key_of` gives a slot's key, None if it cannot be k's).
fn evict_holders<T: plain::Plain>(
    slots: &impl MapCore,
    evict: &impl MapCore,
    idx: u32,
    k: &IfaceKey,
    key_of: impl Fn(&T) -> Option<&types::sirq_iface_key>,
) {
    let Ok(Some(per_cpu)) = slots.lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY) else {
        return;
    };
    let tag = key_tag(k);
    let holders = per_cpu.iter().enumerate().filter_map(|(cpu, slot)| {
        plain::from_bytes::<T>(slot)
            .ok()
            .and_then(&key_of)
            .is_some_and(|sk| sk.ifindex != 0 && maps::key(sk) == *k)
            .then_some((cpu, tag))
    });
    mark_evict(evict, idx, holders);
}

/// Writes `tag` into the given CPUs' entries of a per-CPU evict map at `idx` (`slot_evict`,
/// `hist_pcpu_evict`, `path_evict`), leaving the other CPUs' entries as they are.
fn mark_evict(map: &impl MapCore, idx: u32, tags: impl IntoIterator<Item = (usize, u64)>) {
    let key = idx.to_ne_bytes();
    let Ok(Some(mut values)) = map.lookup_percpu(&key, MapFlags::ANY) else {
        return;
    };
    let mut changed = false;
    for (cpu, tag) in tags {
        if let Some(v) = values.get_mut(cpu) {
            *v = tag.to_ne_bytes().to_vec();
            changed = true;
        }
    }
    if changed {
        let _ = map.update_percpu(&key, &values, MapFlags::ANY);
    }
}

/// Frees the drop-reason entries of the retired interfaces: one pass over the map for all
/// of them (a whole node's pods can go at once).
fn free_drop_entries(skel: &SirqtopSkel, retired: &[IfaceKey]) {
    if retired.is_empty() {
        return;
    }
    let retired: std::collections::HashSet<&IfaceKey> = retired.iter().collect();
    let stale: Vec<Vec<u8>> = skel
        .maps
        .drops
        .keys()
        .filter(|kb| {
            plain::from_bytes::<types::sirq_drop_key>(kb)
                .is_ok_and(|d| retired.contains(&maps::key(&d.iface)))
        })
        .collect();
    for kb in stale {
        let _ = skel.maps.drops.delete(&kb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_never_zero_and_slots_in_range() {
        for (c, n, i) in [
            (0u64, 0u32, 0u32),
            (1, 4026531840, 1),
            (u64::MAX, u32::MAX, 7),
        ] {
            let k = IfaceKey {
                netns: n,
                ifindex: i,
                cookie: c,
            };
            assert_ne!(key_tag(&k), 0);
            assert!((key_slot(&k) as usize) < limits::IFACE_SLOTS);
        }
        // Known value: the same arithmetic as the BPF side.
        let k = IfaceKey {
            netns: 1,
            ifindex: 2,
            cookie: 3,
        };
        let want = ((3u64 ^ (1u64 << 32) ^ 2).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        assert_eq!(key_tag(&k), want);
    }
}
