//! The collector owns the BPF skeleton and its links: it picks a backend per hook and
//! attaches ([`attach`]), drains the ring buffer, reads the kernel maps into model types
//! ([`maps`]), symbolizes raise sites ([`stacks`]) and names interfaces ([`identity`]),
//! producing immutable [`Snapshot`]s. Dropping it detaches every link and unloads every
//! program.

mod attach;
mod identity;
mod maps;
mod parallel;
mod payers;
mod reclaim;
mod reconcile;
mod slow;
mod softnet;
mod stacks;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use libbpf_rs::{Link, RingBuffer};

use crate::bpf::Skeleton;
use crate::error::{Error, Result};
use crate::model::{CaptureMeta, Hook, IfaceKey, Interface, Snapshot};
use crate::probe::Mechanism;

pub use attach::check_environment;
pub use stacks::trim_probe_frames;

/// The index of an interface's slot in the kernel's direct-mapped interface tables (the
/// same hash as the BPF code's `key_slot`).
pub fn iface_slot(k: &IfaceKey) -> u32 {
    reclaim::key_slot(k)
}

/// What to attach and what to count.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub probe: crate::probe::ProbeMode,
    /// Namespace inodes to count; empty = every namespace.
    pub netns_filter: Vec<u32>,
    /// Enable kernel BPF run-time statistics for sirqtop's own cost (costs throughput).
    pub bpf_stats: bool,
    /// Counters only: no per-packet latency tracking (for always-on use).
    pub lite: bool,
    /// Sample the kernel stack of every Nth NET_RX/NET_TX raise per CPU (0 = no stacks).
    pub stack_every: u32,
    /// Attach napi:napi_poll: NAPI poll counts per device, raises attributed at the poll,
    /// NET_RX time split at poll boundaries (one more program per NET_RX run).
    pub napi_polls: bool,
    /// Forget an interface this long after it went: its numbers, paths and names leave
    /// the snapshots and memory (for a consumer that stops showing it then). None: every
    /// interface stays in every snapshot (a one-shot capture reports them all).
    pub forget_gone_after: Option<Duration>,
    /// Softirq runs and raise -> run delays at least this long are events (slow
    /// softirqs); None: not looked for.
    pub slow: Option<Duration>,
    /// Time at most about this many new skbs per second per CPU for the latency
    /// histograms, 1 in 2^k above, each sample weighted 2^k; 0 = every skb (exact).
    pub timing_rate: u32,
    /// --filter: only skbs that match count (their verdict is taken once per skb).
    pub filter: Option<crate::filter::Filter>,
}

/// The CLI's default --timing-rate: measured in bench/run.sh (bench/HISTORY.md), 20 000 timed
/// skbs per second per CPU keep the histograms' quantiles within a bucket of exact ones
/// while a flood's skbs, above it, cost no clock reads but the softirq's.
pub const DEFAULT_TIMING_RATE: u32 = 20_000;

/// The CLI's default raise-site sampling: a kernel stack walk costs microseconds, so one in
/// 1024 raises per CPU keeps it off the per-packet budget under a flood while still finding
/// every frequent site within seconds.
pub const DEFAULT_STACK_EVERY: u32 = 1024;

/// One attached BPF program.
struct Attached {
    name: &'static str,
    hook: Hook,
    mechanism: Mechanism,
    link: Linked,
}

/// A program of the skeleton attached by libbpf, or one loaded and attached on its own
/// ([`parallel`]); dropping either detaches it.
enum Linked {
    Libbpf(#[allow(dead_code)] Link),
    Own(parallel::OwnLink),
}

impl Attached {
    /// The program's descriptor where it is not the skeleton's.
    fn own_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.link {
            Linked::Own(l) => Some(std::os::fd::AsRawFd::as_raw_fd(&l.prog)),
            Linked::Libbpf(_) => None,
        }
    }
}

/// Where the kernel's direct-mapped interface tables (per-CPU counter slots, shared
/// histogram slots with their tags) hold their entries, against where user space's copy
/// of the BPF hash (`reclaim::key_slot`, `key_tag`) puts them. Reclaiming relies on that
/// copy to free a retired interface's slots: `misplaced` > 0 means it differs from the
/// BPF code, and such slots would never be freed. (Path slots keep the kernel's tag, so
/// freeing them needs no copy.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotCheck {
    /// Occupied slots compared.
    pub checked: u64,
    /// Of those, slots whose key does not hash to where it is.
    pub misplaced: u64,
    /// Interfaces counted (on some CPU) in the overflow hash map because their slot was
    /// held by another: few, unless slots of gone interfaces are not freed.
    pub hashed: Vec<IfaceKey>,
    /// Interfaces with latency samples in the shared histogram slots or their hash map:
    /// their slot of the per-CPU histograms was held by another on some CPU.
    pub hist_shared: Vec<IfaceKey>,
}

impl SlotCheck {
    fn see(&mut self, in_place: bool) {
        self.checked += 1;
        if !in_place {
            self.misplaced += 1;
        }
    }
}

pub struct Collector {
    // Field order is drop order: the ring buffer and the links go before the skeleton
    // whose maps and programs they use.
    ring: Option<RingBuffer<'static>>,
    links: Vec<Attached>,
    stats_fd: Option<OwnedFd>,
    skel: Skeleton,
    identity: identity::Identities,
    stacks: stacks::RaiseStacks,
    reclaim: reclaim::Reclaimer,
    /// The running kernel's names of its drop reasons.
    drop_names: HashMap<u32, String>,
    meta: CaptureMeta,
    attached_at: Instant,
    /// Possible CPUs: the layout of per-CPU map values.
    possible_cpus: usize,
    /// --timing-rate as loaded (0 with --lite: nothing is timed).
    timing_rate: u32,
    slot_check: SlotCheck,
    reconcile: reconcile::Reconciler,
    /// The kernel's per-CPU receive statistics since attach.
    softnet: softnet::SoftnetTracker,
    slow: slow::SlowTracker,
    /// With `forget_gone_after`: payers whose namespace is gone are forgotten.
    payer_forgetter: Option<payers::PayerForgetter>,
}

impl Collector {
    /// Attaches every hook with the best mechanism that works here (or the forced one).
    pub fn start(cfg: &Config) -> Result<Collector> {
        attach::start(cfg)
    }

    pub fn meta(&self) -> &CaptureMeta {
        &self.meta
    }

    /// Drains the ring buffer without blocking and names the interfaces it announced
    /// while their namespaces still exist; call it every ~100 ms.
    pub fn poll(&mut self) -> Result<()> {
        if let Some(rb) = &self.ring {
            rb.consume()
                .map_err(|e| Error::Load(format!("ring buffer: {e}")))?;
        }
        self.identity.resolve_fresh();
        self.softnet.update();
        Ok(())
    }

    /// Everything counted since attach, with names, peers and namespace labels resolved.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.poll()?;
        // The devices' own counters first, sirqtop's after: a packet the device counted
        // was already counted by sirqtop when its maps are read, so a live reading never
        // makes a seen receive look unseen (the other way round, a flood's packets
        // counted by the device during the map reads did).
        let sampled = self.identity.namespace_paths();
        self.reconcile.sample(Some(sampled.clone()));
        let elapsed_ns = self.attached_at.elapsed().as_nanos() as u64;
        let mut check = SlotCheck::default();
        let mut counters = maps::iface_counters(&self.skel, &mut check)?;
        let mut hists = maps::iface_hists(&self.skel, &mut check)?;
        let mut drops: HashMap<IfaceKey, BTreeMap<u32, u64>> = HashMap::new();
        for ((k, reason), n) in maps::drops(&self.skel)? {
            drops.entry(k).or_default().insert(reason, n);
        }
        let mut cpus = maps::softirqs(&self.skel, self.possible_cpus)?;
        for c in &mut cpus {
            c.softnet = self.softnet.total(c.cpu);
        }
        let loss = maps::loss(&self.skel)?;
        let kernel_paths = maps::paths(&self.skel)?;
        // Forgotten interfaces the kernel still shows (slots not yet reused) are left out.
        let shown: HashSet<IfaceKey> = counters
            .keys()
            .chain(hists.keys())
            .chain(drops.keys())
            .copied()
            .chain(
                kernel_paths
                    .iter()
                    .flat_map(|(_, h)| [h.key.origin, h.key.prev, h.key.to]),
            )
            .collect();
        self.reclaim.prune_forgotten(&shown);
        counters.retain(|k, _| !self.reclaim.is_forgotten(k));
        hists.retain(|k, _| !self.reclaim.is_forgotten(k));
        drops.retain(|k, _| !self.reclaim.is_forgotten(k));
        // Retired interfaces: what was banked, not what a half-freed kernel slot shows.
        for (k, b) in self.reclaim.retired() {
            counters.insert(*k, b.counters);
            hists.insert(*k, (b.veth_hop, b.backlog_wait));
            drops.insert(*k, b.drops.clone());
        }

        let mut keys: Vec<IfaceKey> = counters.keys().chain(hists.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        self.identity.refresh(&keys);
        let interfaces: Vec<Interface> = keys
            .into_iter()
            .map(|k| {
                let mut i = Interface::new(k);
                if let Some(c) = counters.get(&k) {
                    i.counters = *c;
                }
                if let Some((hop, wait)) = hists.get(&k) {
                    i.veth_hop = *hop;
                    i.backlog_wait = *wait;
                }
                if let Some(d) = drops.get(&k) {
                    i.drop_reasons = d
                        .iter()
                        .map(|(r, n)| {
                            let name = self
                                .drop_names
                                .get(r)
                                .cloned()
                                .unwrap_or_else(|| format!("reason:{r}"));
                            (name, *n)
                        })
                        .collect();
                }
                self.identity.apply(&mut i);
                i
            })
            .collect();
        let interfaces = self.reconciled(interfaces, &sampled);
        let (gone, present): (Vec<&Interface>, Vec<&Interface>) =
            interfaces.iter().partition(|i| i.gone);
        let gone: Vec<IfaceKey> = gone.iter().map(|i| i.key).collect();
        let present: Vec<IfaceKey> = present.iter().map(|i| i.key).collect();
        let forgotten = self
            .reclaim
            .sweep(&self.skel, &gone, &present, |k| reclaim::Banked {
                counters: counters.get(k).copied().unwrap_or_default(),
                veth_hop: hists.get(k).map(|h| h.0).unwrap_or_default(),
                backlog_wait: hists.get(k).map(|h| h.1).unwrap_or_default(),
                drops: drops.get(k).cloned().unwrap_or_default(),
            });
        self.identity.forget(&forgotten);
        let raise_sites = self.stacks.read(&self.skel, &counters, &cpus, &loss)?;
        let path_hops = self.reclaim.sweep_paths(&self.skel, kernel_paths);
        self.slot_check = check;
        if let Some(f) = &mut self.payer_forgetter {
            f.reap(&self.skel);
        }
        let mut payers = maps::payers(&self.skel)?;
        if let Some(f) = &mut self.payer_forgetter {
            let now = Instant::now();
            let live: Option<HashSet<u32>> = f
                .scan_due(now)
                .then(|| crate::netns::scan_namespaces().ok())
                .flatten()
                .map(|m| m.into_keys().collect());
            f.apply(&mut payers, live.as_ref(), now);
        }
        for p in &mut payers {
            p.label = match p.key.kind {
                crate::model::PayerKind::Idle => "idle".into(),
                crate::model::PayerKind::Ksoftirqd => "ksoftirqd".into(),
                crate::model::PayerKind::Overflow => "_overflow".into(),
                crate::model::PayerKind::Forgotten => "_forgotten".into(),
                crate::model::PayerKind::Task => self.identity.netns_label(p.key.netns),
            };
        }
        let slow = self
            .slow
            .read(&self.skel, &interfaces, |n| self.identity.netns_label(n))?;
        let stats_on = self.stats_fd.is_some() || maps::kernel_stats_enabled();
        let programs = self
            .links
            .iter()
            .map(|a| maps::program_cost(&self.skel, a, stats_on))
            .collect();
        Ok(Snapshot {
            elapsed_ns,
            interfaces,
            cpus,
            loss,
            programs,
            raise_sites,
            path_hops,
            payers,
            slow,
            timing: maps::timing(&self.skel, self.timing_rate)?,
        })
    }

    /// The kernel's own receive counts of every interface, and the devices whose
    /// receives the kernel counted but sirqtop never saw (named as far as known).
    /// `sampled`: the namespaces whose devices were read at the snapshot's start; read
    /// again now if this snapshot's interfaces brought new ones (a new pod's).
    fn reconciled(
        &mut self,
        mut interfaces: Vec<Interface>,
        sampled: &[(u32, std::path::PathBuf)],
    ) -> Vec<Interface> {
        let known = self.identity.namespace_paths();
        let read: HashSet<&(u32, std::path::PathBuf)> = sampled.iter().collect();
        if known.iter().any(|n| !read.contains(n)) {
            self.reconcile.sample(Some(known));
        }
        let hidden = self.reconcile.apply(&mut interfaces);
        let keys: Vec<IfaceKey> = hidden.iter().map(|h| h.key).collect();
        if !keys.is_empty() {
            self.identity.refresh(&keys);
        }
        for h in hidden {
            let mut i = Interface::new(h.key);
            self.identity.apply(&mut i);
            i.name = h.name;
            i.kind = h.kind;
            i.gone = false;
            i.kernel_rx_packets = Some(h.kernel_rx_packets);
            interfaces.push(i);
        }
        interfaces.retain(|i| i.is_active());
        interfaces.sort_by_key(|i| i.key);
        interfaces
    }

    /// The last snapshot's check of the kernel's slot placement against user space's
    /// copy of its hashes (see [`SlotCheck`]).
    pub fn slot_check(&self) -> &SlotCheck {
        &self.slot_check
    }

    /// Interfaces gone past the grace period whose kernel entries were reclaimed (their
    /// numbers stay in every snapshot).
    pub fn retired_interfaces(&self) -> usize {
        self.reclaim.retired().count()
    }

    /// Whether the kernel's payer table holds `k` (a task payer): false once a payer of a
    /// gone namespace is forgotten and its entry deleted.
    pub fn payer_in_kernel(&self, k: &crate::model::PayerKey) -> bool {
        payers::in_kernel(&self.skel, k)
    }

    /// Whether anything of `k` is kept: banked numbers or its names (false once a gone
    /// interface is forgotten).
    pub fn remembers(&self, k: &IfaceKey) -> bool {
        self.reclaim.retired().any(|(r, _)| r == k) || self.identity.knows(k)
    }

    /// How long the probes have been attached.
    pub fn elapsed(&self) -> Duration {
        self.attached_at.elapsed()
    }
}
