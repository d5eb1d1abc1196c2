//! Reading the kernel maps into model types, and sirqtop's own per-program cost.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::skel::Skel;
use libbpf_rs::{MapCore, MapFlags};

use crate::bpf::{limits, types, SirqtopSkel};
use crate::error::{Error, Result};
use crate::model::{
    CpuStats, Histogram, IfaceCounters, IfaceKey, Loss, PathHop, PathHopKey, ProgramCost,
    VectorStats, VECTOR_NAMES,
};

use super::reclaim;
use super::SlotCheck;

/// Wraps a libbpf error with the name of the map it came from.
pub(super) fn map_error(map: &'static str) -> impl Fn(libbpf_rs::Error) -> Error {
    move |error| Error::Map { map, error }
}

/// A u64 from the first 8 bytes of a map value (0 if shorter).
fn first_u64(v: &[u8]) -> u64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

/// Per-interface counters: the per-CPU array slots plus the hash map that takes
/// interfaces whose slot was already taken.
pub(super) fn iface_counters(
    skel: &SirqtopSkel,
    check: &mut SlotCheck,
) -> Result<HashMap<IfaceKey, IfaceCounters>> {
    let mut out: HashMap<IfaceKey, IfaceCounters> = HashMap::new();
    let slots = &skel.maps.iface_slots;
    for idx in 0..slots.max_entries() {
        let per_cpu = slots
            .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("iface_slots"))?
            .unwrap_or_default();
        for v in &per_cpu {
            let Ok(s) = plain::from_bytes::<types::sirq_iface_slot>(v) else {
                continue;
            };
            if s.key.ifindex != 0 {
                let k = key(&s.key);
                check.see(reclaim::key_slot(&k) == idx);
                out.entry(k).or_default().merge(&counters(&s.c));
            }
        }
    }
    let map = &skel.maps.iface_counters;
    for k in map.keys() {
        let Ok(raw) = plain::from_bytes::<types::sirq_iface_key>(&k) else {
            continue;
        };
        let per_cpu = map
            .lookup_percpu(&k, MapFlags::ANY)
            .map_err(map_error("iface_counters"))?
            .unwrap_or_default();
        let k = key(raw);
        check.hashed.push(k);
        for v in &per_cpu {
            if let Ok(c) = plain::from_bytes::<types::sirq_iface_counters>(v) {
                out.entry(k).or_default().merge(&counters(c));
            }
        }
    }
    Ok(out)
}

/// Latency histograms (veth hop, backlog wait): the per-CPU slots, the shared array slots
/// and the overflow hash map.
pub(super) fn iface_hists(
    skel: &SirqtopSkel,
    check: &mut SlotCheck,
) -> Result<HashMap<IfaceKey, (Histogram, Histogram)>> {
    let mut out: HashMap<IfaceKey, (Histogram, Histogram)> = HashMap::new();
    let mut add = |k: IfaceKey, h: &types::sirq_iface_hists| {
        let e = out.entry(k).or_default();
        e.0.merge(&hist(&h.veth_hop));
        e.1.merge(&hist(&h.backlog_wait));
    };
    let slots = &skel.maps.hist_slots;
    let batch = slots
        .lookup_batch(slots.max_entries(), MapFlags::ANY, MapFlags::ANY)
        .map_err(map_error("hist_slots"))?;
    for (idx, v) in batch {
        let Ok(s) = plain::from_bytes::<types::sirq_hist_slot>(&v) else {
            continue;
        };
        // tag 0 = free; a claimed slot whose key is not written yet has ifindex 0.
        if s.tag != 0 && s.key.ifindex != 0 {
            let k = key(&s.key);
            let at = u32::from_ne_bytes(
                idx.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or_default(),
            );
            check.see(reclaim::key_slot(&k) == at && reclaim::key_tag(&k) == s.tag);
            check.hist_shared.push(k);
            add(k, &s.h);
        }
    }
    let pcpu = &skel.maps.hist_pcpu;
    for idx in 0..limits::HIST_PCPU_SLOTS as u32 {
        let Some(per_cpu) = pcpu
            .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("hist_pcpu"))?
        else {
            continue;
        };
        for v in &per_cpu {
            let Ok(s) = plain::from_bytes::<types::sirq_hist_slot>(v) else {
                continue;
            };
            if s.tag != 0 && s.key.ifindex != 0 {
                let k = key(&s.key);
                check.see(reclaim::hist_pcpu_slot(&k) == idx && reclaim::key_tag(&k) == s.tag);
                add(k, &s.h);
            }
        }
    }
    let map = &skel.maps.iface_hists;
    for k in map.keys() {
        let Ok(raw) = plain::from_bytes::<types::sirq_iface_key>(&k) else {
            continue;
        };
        let v = map
            .lookup(&k, MapFlags::ANY)
            .map_err(map_error("iface_hists"))?;
        if let Some(h) = v
            .as_deref()
            .and_then(|v| plain::from_bytes::<types::sirq_iface_hists>(v).ok())
        {
            check.hist_shared.push(key(raw));
            add(key(raw), h);
        }
    }
    Ok(out)
}

/// Per CPU and vector softirq statistics; only CPUs with activity.
pub(super) fn softirqs(skel: &SirqtopSkel, possible_cpus: usize) -> Result<Vec<CpuStats>> {
    let map = &skel.maps.softirqs;
    let mut cpus: Vec<CpuStats> = (0..possible_cpus as u32).map(CpuStats::new).collect();
    for vec in 0..VECTOR_NAMES.len() {
        let per_cpu = map
            .lookup_percpu(&(vec as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("softirqs"))?
            .unwrap_or_default();
        for (cpu, v) in per_cpu.iter().enumerate() {
            let (Some(slot), Ok(s)) = (
                cpus.get_mut(cpu),
                plain::from_bytes::<types::sirq_softirq_stats>(v),
            ) else {
                continue;
            };
            slot.vectors[vec] = VectorStats {
                raises: s.raises,
                runs: s.runs,
                run_ns: s.run_ns,
                ksoftirqd_runs: s.ksoftirqd_runs,
                run: hist(&s.run),
                raise_to_run: hist(&s.raise_to_run),
            };
        }
    }
    // Only CPUs that exist and did something: offline possible CPUs stay out.
    cpus.retain(|c| c.vectors.iter().any(|v| !v.is_zero()));
    Ok(cpus)
}

/// One of the kernel's own counters, summed over CPUs.
fn counter(skel: &SirqtopSkel, c: types::sirq_counter) -> Result<u64> {
    let per_cpu = skel
        .maps
        .counters
        .lookup_percpu(&c.0.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_error("counters"))?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .map(|v| first_u64(v))
        .fold(0u64, u64::saturating_add))
}

/// What latency sampling did (--timing-rate).
pub(super) fn timing(skel: &SirqtopSkel, rate: u32) -> Result<crate::model::Timing> {
    use types::sirq_counter as C;
    Ok(crate::model::Timing {
        rate,
        skbs_picked: counter(skel, C::SIRQ_CTR_SKBS_PICKED)?,
        skbs_timed: counter(skel, C::SIRQ_CTR_SKBS_TIMED)?,
    })
}

/// The tool's own losses, summed over CPUs.
pub(super) fn loss(skel: &SirqtopSkel) -> Result<Loss> {
    use types::sirq_counter as C;
    let read = |c: C| counter(skel, c);
    // A raise is counted unattributed when it happens; a NAPI poll that claims it later
    // counts it again as attributed.
    let unattributed =
        read(C::SIRQ_CTR_RAISE_UNATTRIBUTED)?.saturating_sub(read(C::SIRQ_CTR_RAISE_NAPI)?);
    Ok(Loss {
        ringbuf_dropped: read(C::SIRQ_CTR_RINGBUF_DROPPED)?,
        inflight_evicted: read(C::SIRQ_CTR_INFLIGHT_EVICTED)?,
        iface_table_full: read(C::SIRQ_CTR_IFACE_FULL)?,
        raises_unattributed: unattributed,
        stack_lost: read(C::SIRQ_CTR_STACK_LOST)?,
        inflight_stale: read(C::SIRQ_CTR_INFLIGHT_STALE)?,
        drop_reasons_full: read(C::SIRQ_CTR_DROP_FULL)?,
        path_table_full: read(C::SIRQ_CTR_PATH_FULL)?,
    })
}

/// One sampled raise site and how many raises were sampled there.
pub(super) struct SiteSamples {
    /// The interface whose enqueue caused the raises; None when none did.
    pub iface: Option<IfaceKey>,
    pub vector: usize,
    pub stack_id: u32,
    pub samples: u64,
}

pub(super) fn raise_site_samples(skel: &SirqtopSkel) -> Result<Vec<SiteSamples>> {
    let map = &skel.maps.raise_sites;
    let mut out = Vec::new();
    for k in map.keys() {
        let Ok(site) = plain::from_bytes::<types::sirq_site_key>(&k) else {
            continue;
        };
        let Some(v) = map
            .lookup(&k, MapFlags::ANY)
            .map_err(map_error("raise_sites"))?
        else {
            continue;
        };
        // ifindex 0: the raise followed no counted enqueue.
        let iface = (site.iface.ifindex != 0).then(|| key(&site.iface));
        out.push(SiteSamples {
            iface,
            vector: site.vec as usize,
            stack_id: site.stackid as u32,
            samples: first_u64(&v),
        });
    }
    Ok(out)
}

/// The return addresses of one stored raise stack, innermost first.
pub(super) fn raise_stack(skel: &SirqtopSkel, id: u32) -> Vec<u64> {
    let raw = skel
        .maps
        .raise_stacks
        .lookup(&id.to_ne_bytes(), MapFlags::ANY)
        .ok()
        .flatten()
        .unwrap_or_default();
    raw.chunks_exact(8)
        .filter_map(|b| b.try_into().ok().map(u64::from_ne_bytes))
        .take_while(|&a| a != 0)
        .collect()
}

/// Run count and time of one attached program (None unless BPF stats are on).
pub(super) fn program_cost(skel: &SirqtopSkel, a: &super::Attached, stats_on: bool) -> ProgramCost {
    let info = stats_on
        .then(|| {
            let fd = a.own_fd().or_else(|| {
                skel.object()
                    .progs()
                    .find(|p| p.name() == a.name)
                    .map(|p| p.as_fd().as_raw_fd())
            })?;
            prog_run_stats(fd)
        })
        .flatten();
    ProgramCost {
        name: a.name.to_string(),
        hook: a.hook,
        backend: a.mechanism.backend(),
        run_count: info.map(|i| i.0),
        run_time_ns: info.map(|i| i.1),
    }
}

pub(super) fn kernel_stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Turns on BPF run-time stats for as long as the returned fd is open.
pub(super) fn enable_bpf_stats() -> Option<std::os::fd::OwnedFd> {
    // SAFETY: plain syscall wrapper; a non-negative return is a new fd that we own.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor returned by the kernel and owned by nobody else.
    Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// (run_cnt, run_time_ns) of a loaded program.
fn prog_run_stats(fd: i32) -> Option<(u64, u64)> {
    let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is a properly sized, writable bpf_prog_info and `len` holds its size.
    let r = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    (r == 0).then_some((info.run_cnt, info.run_time_ns))
}

pub(super) fn key(k: &types::sirq_iface_key) -> IfaceKey {
    IfaceKey {
        netns: k.netns,
        ifindex: k.ifindex,
        cookie: k.cookie,
    }
}

/// Drops per (interface, kernel drop reason number), summed over CPUs.
pub(super) fn drops(skel: &SirqtopSkel) -> Result<HashMap<(IfaceKey, u32), u64>> {
    let map = &skel.maps.drops;
    let mut out: HashMap<(IfaceKey, u32), u64> = HashMap::new();
    for k in map.keys() {
        let Ok(d) = plain::from_bytes::<types::sirq_drop_key>(&k) else {
            continue;
        };
        let per_cpu = map
            .lookup_percpu(&k, MapFlags::ANY)
            .map_err(map_error("drops"))?
            .unwrap_or_default();
        let n = per_cpu
            .iter()
            .map(|v| first_u64(v))
            .fold(0u64, u64::saturating_add);
        let e = out.entry((key(&d.iface), d.reason)).or_default();
        *e = e.saturating_add(n);
    }
    Ok(out)
}

/// Softirq time by payer, summed over CPUs, with the overflow row when the table filled.
pub(super) fn payers(skel: &SirqtopSkel) -> Result<Vec<crate::model::Payer>> {
    use crate::model::{Payer, PayerKey, PayerKind};
    let mut out: HashMap<PayerKey, Payer> = HashMap::new();
    let mut add = |k: PayerKey, per_cpu: Vec<Vec<u8>>| {
        for v in &per_cpu {
            if let Ok(s) = plain::from_bytes::<types::sirq_payer_stats>(v) {
                out.entry(k)
                    .or_insert_with(|| Payer::new(k))
                    .merge_counts(&s.ns, &s.runs);
            }
        }
    };
    let payer_key = |raw: &types::sirq_payer_key| PayerKey {
        kind: match raw.kind {
            1 => PayerKind::Idle,
            2 => PayerKind::Ksoftirqd,
            _ => PayerKind::Task,
        },
        netns: raw.netns,
        cookie: raw.cookie,
    };
    let map = &skel.maps.payers;
    for k in map.keys() {
        let Ok(raw) = plain::from_bytes::<types::sirq_payer_key>(&k) else {
            continue;
        };
        let per_cpu = map
            .lookup_percpu(&k, MapFlags::ANY)
            .map_err(map_error("payers"))?
            .unwrap_or_default();
        add(payer_key(raw), per_cpu);
    }
    let per_cpu = skel
        .maps
        .payer_overflow
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_error("payer_overflow"))?
        .unwrap_or_default();
    add(
        PayerKey {
            kind: PayerKind::Overflow,
            ..PayerKey::default()
        },
        per_cpu,
    );
    // What each CPU's current payer paid since it was last flushed into the map.
    let per_cpu = skel
        .maps
        .payer_cache
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_error("payer_cache"))?
        .unwrap_or_default();
    for v in &per_cpu {
        if let Ok(c) = plain::from_bytes::<types::sirq_payer_cache>(v) {
            if c.task != 0 {
                let k = payer_key(&c.key);
                out.entry(k)
                    .or_insert_with(|| Payer::new(k))
                    .merge_counts(&c.s.ns, &c.s.runs);
            }
        }
    }
    let mut v: Vec<Payer> = out
        .into_values()
        .filter(|p| p.runs.iter().any(|&r| r > 0))
        .collect();
    v.sort_by_key(|p| p.key);
    Ok(v)
}

/// Where the kernel keeps a path hop's numbers (how a retired one is freed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PathSource {
    /// A per-CPU slot: its index, the CPU and the kernel's tag of the key (freed by
    /// writing the tag to that CPU's `path_evict` entry).
    Slot { idx: u32, cpu: usize, tag: u64 },
    /// The hash map, by its raw key.
    Hash(Vec<u8>),
}

fn path_hop(pk: &types::sirq_path_key, p: &types::sirq_path_stats) -> PathHop {
    PathHop {
        key: PathHopKey {
            origin: key(&pk.origin),
            prev: key(&pk.prev),
            to: key(&pk.to),
            hop: pk.hop,
        },
        packets: p.packets,
        enqueues: p.enqueues,
        origin_softirq: p.origin_softirq,
        latency: hist(&p.latency),
    }
}

/// Every path hop the kernel counted: the per-CPU slots (one entry per CPU that holds
/// it) and the hash map.
pub(super) fn paths(skel: &SirqtopSkel) -> Result<Vec<(PathSource, PathHop)>> {
    let mut out = Vec::new();
    let slots = &skel.maps.path_slots;
    for idx in 0..slots.max_entries() {
        let per_cpu = slots
            .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("path_slots"))?
            .unwrap_or_default();
        for (cpu, v) in per_cpu.iter().enumerate() {
            let Ok(s) = plain::from_bytes::<types::sirq_path_slot>(v) else {
                continue;
            };
            if s.key.to.ifindex != 0 && s.s.packets > 0 {
                let tag = s.tag;
                out.push((PathSource::Slot { idx, cpu, tag }, path_hop(&s.key, &s.s)));
            }
        }
    }
    let map = &skel.maps.paths;
    for k in map.keys() {
        let Ok(pk) = plain::from_bytes::<types::sirq_path_key>(&k) else {
            continue;
        };
        let v = map.lookup(&k, MapFlags::ANY).map_err(map_error("paths"))?;
        if let Some(p) = v
            .as_deref()
            .and_then(|v| plain::from_bytes::<types::sirq_path_stats>(v).ok())
        {
            let hop = path_hop(pk, p);
            out.push((PathSource::Hash(k), hop));
        }
    }
    Ok(out)
}

/// A kernel histogram; shared ones leave `count` at 0 (one atomic less per packet), so the
/// count is the buckets' sum.
fn hist(h: &types::sirq_hist) -> Histogram {
    let count = h.buckets.iter().fold(0u64, |a, b| a.saturating_add(*b));
    Histogram::from_parts(count, h.sum, h.max, h.buckets)
}

fn counters(c: &types::sirq_iface_counters) -> IfaceCounters {
    IfaceCounters {
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        rx_enqueued: c.rx_enqueued,
        rx_packets: c.rx_packets,
        net_rx_raises: c.net_rx_raises,
        softirq_ns: c.softirq_ns,
        dropped: c.dropped,
        napi_polls: c.napi_polls,
        napi_packets: c.napi_packets,
        napi_replaced: c.napi_replaced,
    }
}
