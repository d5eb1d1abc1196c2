//! The collector owns the BPF skeleton and its links: it picks a backend per hook, attaches,
//! drains the ring buffer and reads the maps into immutable [`Snapshot`]s. Dropping it
//! detaches every link and unloads every program.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use crate::bpf::{types, OpenSirqtopSkel, SirqtopSkel, SirqtopSkelBuilder};
use crate::error::{Error, Result};
use crate::model::{
    Availability, CaptureMeta, CpuStats, Histogram, Hook, IfaceCounters, IfaceKey, Interface, Loss,
    PeerRef, ProbeReport, ProgramCost, RaiseSite, Snapshot, VectorStats,
};
use crate::netns::{self, Topology};
use crate::probe::{self, KernelFeatures, Mechanism, ProbeMode};

/// What to attach and what to count.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub probe: ProbeMode,
    /// Namespace inodes to count; empty = every namespace.
    pub netns_filter: Vec<u32>,
    /// Enable kernel BPF run-time statistics for sirqtop's own cost (costs throughput).
    pub bpf_stats: bool,
    /// Counters only: no per-packet latency tracking (for always-on use).
    pub lite: bool,
    /// Sample the kernel stack of every Nth NET_RX/NET_TX raise per CPU (0 = no stacks).
    pub stack_every: u32,
}

/// The CLI's default raise-site sampling: a kernel stack walk costs microseconds, so one in
/// 1024 raises per CPU keeps it off the per-packet budget under a flood while still finding
/// every frequent site within seconds.
pub const DEFAULT_STACK_EVERY: u32 = 1024;

/// Names and kinds the kernel side reported when it first saw an interface.
type Seen = Rc<RefCell<HashMap<IfaceKey, (String, String)>>>;

/// libbpf's messages, kept to explain load failures instead of printing them.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn libbpf_print(_level: libbpf_rs::PrintLevel, msg: String) {
    // SIRQTOP_LIBBPF_LOG=1 shows libbpf's own messages (verifier logs) for debugging.
    if std::env::var_os("SIRQTOP_LIBBPF_LOG").is_some() {
        eprint!("{msg}");
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        if log.len() >= 400 {
            log.drain(..200);
        }
        log.push(msg.trim_end().to_string());
    }
}

fn take_libbpf_log() -> Vec<String> {
    LIBBPF_LOG
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

pub struct Collector {
    // Field order is drop order: the ring buffer and links go before the skeleton,
    // the skeleton before the storage it lives in.
    ring: Option<RingBuffer<'static>>,
    links: Vec<(String, Hook, Mechanism, Link)>,
    stats_fd: Option<std::os::fd::OwnedFd>,
    skel: ManuallyDrop<SirqtopSkel<'static>>,
    storage: *mut MaybeUninit<OpenObject>,
    seen: Seen,
    meta: CaptureMeta,
    attached_at: Instant,
    topology: Topology,
    topology_at: Option<Instant>,
    /// Identity of every interface ever resolved, so a vanished one keeps its name.
    known: HashMap<IfaceKey, Identity>,
    ncpus: usize,
    /// Symbolized raise stacks by stack id: symbolization runs once per stack, at
    /// snapshot time, never in the ring-buffer callback.
    stacks: HashMap<u32, Vec<String>>,
    symbolizer: Option<blazesym::symbolize::Symbolizer>,
}

#[derive(Debug, Clone)]
struct Identity {
    name: String,
    kind: Option<String>,
    netns_name: Option<String>,
    netns_label: String,
    container: Option<crate::netns::ContainerRef>,
    peer: Option<PeerRef>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.ring = None;
        self.links.clear();
        self.stats_fd = None;
        // SAFETY: the skeleton is dropped exactly once, here, before its storage; nothing
        // borrowed from it (ring buffer, links) is alive any more.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: `storage` came from Box::into_raw in `open_skel` and is freed once, after
        // the skeleton that lived in it (whose Drop already dropped the object inside).
        drop(unsafe { Box::from_raw(self.storage) });
    }
}

/// Refuses early, with the reason, what would otherwise fail obscurely at load.
pub fn check_environment(k: &KernelFeatures) -> Result<()> {
    if !has_bpf_privileges() {
        return Err(Error::NotPrivileged);
    }
    if !k.btf {
        return Err(Error::NoBtf);
    }
    Ok(())
}

fn has_bpf_privileges() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

impl Collector {
    /// Attaches every hook with the best mechanism that works here (or the forced one).
    pub fn start(cfg: &Config) -> Result<Collector> {
        let features = KernelFeatures::detect();
        check_environment(&features)?;
        if cfg.netns_filter.len() > 256 {
            return Err(Error::NothingAttached("at most 256 --netns filters".into()));
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
        // Only a kprobe/fentry candidate needs kallsyms; reading it costs ~50 ms.
        let features = match cfg.probe {
            ProbeMode::Force(b) if b != crate::model::Backend::Tracepoint => {
                features.with_symbols()
            }
            _ => features,
        };
        let mut plan = probe::plan(cfg.probe, &features);
        let mut fallbacks = plan.skipped.clone();
        // --lite is for always-on use: per-packet counters and raises only. The softirq
        // entry/exit hooks (NET_RX time, per-CPU runs) are the first thing it gives up:
        // two fewer programs per softirq.
        if cfg.lite {
            if let Some(c) = plan.candidates.get_mut(&Hook::SoftirqRun) {
                c.clear();
            }
            fallbacks.push("softirq_run: not attached with --lite (counters only)".into());
        }
        // SIRQTOP_DENY=tp_btf,fentry,... pretends the kernel refuses those mechanisms:
        // it exercises the fallback path (and its raw_tp/kprobe bodies) on any kernel.
        if let Some(deny) = std::env::var_os("SIRQTOP_DENY") {
            let deny = deny.to_string_lossy().into_owned();
            for (hook, cands) in plan.candidates.iter_mut() {
                cands.retain(|m| {
                    let denied = deny.split(',').any(|d| d.trim() == m.as_str());
                    if denied {
                        fallbacks.push(format!("{hook}: {}: denied by SIRQTOP_DENY", m.as_str()));
                    }
                    !denied
                });
            }
        }
        let mut features = features;
        loop {
            if let ProbeMode::Force(b) = cfg.probe {
                for hook in Hook::ALL.into_iter().filter(|h| probe::is_card_hook(*h)) {
                    if plan.candidates[&hook].is_empty() {
                        let reason = fallbacks
                            .iter()
                            .rev()
                            .find(|s| s.starts_with(&format!("{hook}: ")))
                            .map(|s| s.splitn(3, ": ").nth(2).unwrap_or(s).to_string())
                            .unwrap_or_else(|| "not available".into());
                        return Err(Error::ForcedBackendUnavailable {
                            backend: b,
                            hook,
                            reason,
                        });
                    }
                }
            }
            let chosen: BTreeMap<Hook, Mechanism> = plan
                .candidates
                .iter()
                .filter_map(|(h, c)| c.front().map(|m| (*h, *m)))
                .collect();
            if chosen.is_empty() {
                return Err(Error::NothingAttached(fallbacks.join("; ")));
            }
            // A kprobe/fentry candidate needs symbol facts (optional __netif_rx, clones).
            if chosen
                .values()
                .any(|m| matches!(m, Mechanism::Kprobe | Mechanism::Fentry))
                && features.symbols.is_none()
            {
                features = features.with_symbols();
                let again = probe::plan(cfg.probe, &features);
                let tried: Vec<_> = fallbacks.clone();
                // Keep what already failed removed; adopt the new facts for the rest.
                for (h, c) in plan.candidates.iter_mut() {
                    c.retain(|m| again.candidates[h].contains(m));
                }
                fallbacks = tried;
                for s in again.skipped {
                    if !fallbacks.contains(&s) {
                        fallbacks.push(s);
                    }
                }
                continue;
            }
            match Self::try_attach(cfg, &features, &chosen) {
                Ok(mut c) => {
                    let mut report = ProbeReport::default();
                    for (h, m) in &chosen {
                        report
                            .attached
                            .insert(*h, (m.backend(), m.as_str().to_string()));
                    }
                    // Only what ranks above the chosen mechanism is a reason it was chosen.
                    report.fallbacks = fallbacks
                        .into_iter()
                        .filter(|line| {
                            let mut parts = line.splitn(3, ": ");
                            let (h, m) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                            match chosen.iter().find(|(hook, _)| hook.as_str() == h) {
                                Some((_, won)) => probe::rank(m) < probe::rank(won.as_str()),
                                None => true,
                            }
                        })
                        .collect();
                    c.meta.availability = Availability::from_report(&report);
                    if cfg.lite {
                        c.meta.availability.veth_hop = false;
                        c.meta.availability.backlog_wait = false;
                    }
                    c.meta.probes = report;
                    c.meta.kernel_release = features.release.clone();
                    return Ok(c);
                }
                Err(AttachFailure::Hook(hook, reason)) => {
                    let mech = plan.candidates.get_mut(&hook).and_then(|c| c.pop_front());
                    let name = mech.map(|m| m.as_str()).unwrap_or("?");
                    fallbacks.push(format!("{hook}: {name}: {reason}"));
                }
                Err(AttachFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    fn try_attach(
        cfg: &Config,
        features: &KernelFeatures,
        chosen: &BTreeMap<Hook, Mechanism>,
    ) -> std::result::Result<Collector, AttachFailure> {
        let wanted: Vec<(&'static str, Hook, Mechanism)> = chosen
            .iter()
            .flat_map(|(h, m)| {
                probe::programs(*h, *m)
                    .iter()
                    .enumerate()
                    .filter(|(i, (_, func))| {
                        *i == 0 || func.is_none_or(|f| probe::has_function(features, f))
                    })
                    .map(|(_, (p, _))| (*p, *h, *m))
                    .collect::<Vec<_>>()
            })
            .collect();

        let storage = Box::into_raw(Box::new(MaybeUninit::<OpenObject>::uninit()));
        // SAFETY: `storage` is a fresh heap allocation that outlives the skeleton: the
        // Collector frees it in Drop after the skeleton, and on the error paths below it is
        // freed after the skeleton (or its open form) has been dropped.
        let storage_ref: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage };
        let free_storage = || {
            // SAFETY: called only after every skeleton built in `storage` is gone.
            drop(unsafe { Box::from_raw(storage) })
        };

        take_libbpf_log();
        let open = match SirqtopSkelBuilder::default().open(storage_ref) {
            Ok(o) => o,
            Err(e) => {
                free_storage();
                return Err(AttachFailure::Fatal(Error::Load(e.to_string())));
            }
        };
        let loaded = Self::configure_and_load(open, cfg, &wanted);
        let skel = match loaded {
            Ok(s) => s,
            Err(f) => {
                free_storage();
                return Err(f);
            }
        };
        let mut c = Collector {
            ring: None,
            links: Vec::new(),
            stats_fd: None,
            skel: ManuallyDrop::new(skel),
            storage,
            seen: Rc::new(RefCell::new(HashMap::new())),
            meta: CaptureMeta {
                kernel_release: String::new(),
                probes: ProbeReport::default(),
                availability: Availability::default(),
                started_at: SystemTime::now(),
                netns_filter: cfg.netns_filter.clone(),
                ncpus: 0,
                bpf_stats: cfg.bpf_stats,
            },
            attached_at: Instant::now(),
            topology: Topology::default(),
            topology_at: None,
            known: HashMap::new(),
            ncpus: libbpf_rs::num_possible_cpus().unwrap_or(1),
            stacks: HashMap::new(),
            symbolizer: None,
        };
        c.meta.ncpus = c.ncpus as u32;
        // From here on, dropping `c` cleans up everything, storage included.
        for f in &cfg.netns_filter {
            c.skel
                .maps
                .netns_allow
                .update(&f.to_ne_bytes(), &[1u8], MapFlags::ANY)
                .map_err(|e| {
                    AttachFailure::Fatal(Error::Map {
                        map: "netns_allow",
                        source: e,
                    })
                })?;
        }
        let seen = c.seen.clone();
        let mut rb = RingBufferBuilder::new();
        rb.add(&c.skel.maps.events, move |data: &[u8]| {
            on_event(&seen, data)
        })
        .map_err(|e| AttachFailure::Fatal(Error::Load(format!("ring buffer: {e}"))))?;
        c.ring = Some(
            rb.build()
                .map_err(|e| AttachFailure::Fatal(Error::Load(format!("ring buffer: {e}"))))?,
        );
        if cfg.bpf_stats {
            c.stats_fd = enable_bpf_stats();
        }
        for (name, hook, mech) in &wanted {
            let Some(prog) = c.skel.object().progs_mut().find(|p| p.name() == *name) else {
                return Err(AttachFailure::Fatal(Error::Load(format!(
                    "program {name} missing"
                ))));
            };
            match prog.attach() {
                Ok(link) => c.links.push((name.to_string(), *hook, *mech, link)),
                Err(e) => return Err(AttachFailure::Hook(*hook, attach_reason(*mech, *hook, &e))),
            }
        }
        c.attached_at = Instant::now();
        c.meta.started_at = SystemTime::now();
        Ok(c)
    }

    fn configure_and_load(
        mut open: OpenSirqtopSkel<'static>,
        cfg: &Config,
        wanted: &[(&'static str, Hook, Mechanism)],
    ) -> std::result::Result<SirqtopSkel<'static>, AttachFailure> {
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.filter_netns = !cfg.netns_filter.is_empty();
            ro.lite = cfg.lite;
            ro.stack_every = cfg.stack_every;
        }
        for mut p in open.open_object_mut().progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            p.set_autoload(wanted.iter().any(|(w, _, _)| *w == name));
        }
        match open.load() {
            Ok(s) => Ok(s),
            Err(e) => {
                let log = take_libbpf_log();
                if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && !has_bpf_privileges() {
                    return Err(AttachFailure::Fatal(Error::NotPrivileged));
                }
                // Find which program failed so only its hook falls back.
                let failed = log.iter().rev().find_map(|l| {
                    let rest = l.split("prog '").nth(1)?;
                    let name = rest.split('\'').next()?;
                    probe::program_owner(name).map(|(h, _)| (h, l.clone()))
                });
                match failed {
                    Some((hook, line)) => {
                        let why = line.split("': ").nth(1).unwrap_or(&line).to_string();
                        let why = match (line.contains("-EPERM"), line.contains("fentry_")) {
                            (true, true) => "the kernel refuses fentry programs (EPERM)".into(),
                            (true, false) => {
                                format!("the kernel refused the program (EPERM): {why}")
                            }
                            _ => format!("load failed: {why}"),
                        };
                        Err(AttachFailure::Hook(hook, why))
                    }
                    None => Err(AttachFailure::Fatal(Error::Load(format!(
                        "{e}{}",
                        log.last().map(|l| format!(" ({l})")).unwrap_or_default()
                    )))),
                }
            }
        }
    }

    pub fn meta(&self) -> &CaptureMeta {
        &self.meta
    }

    /// Drains the ring buffer without blocking; call it every ~100 ms.
    pub fn poll(&mut self) -> Result<()> {
        if let Some(rb) = &self.ring {
            rb.consume()
                .map_err(|e| Error::Load(format!("ring buffer: {e}")))?;
        }
        Ok(())
    }

    /// Everything counted since attach, with names, peers and namespace labels resolved.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.poll()?;
        let elapsed_ns = self.attached_at.elapsed().as_nanos() as u64;
        let counters = self.read_iface_counters()?;
        let hists = self.read_iface_hists()?;
        let cpus = self.read_softirqs()?;
        let ctr = self.read_counters()?;
        let loss = Loss {
            ringbuf_dropped: ctr[types::sirq_counter::SIRQ_CTR_RINGBUF_DROPPED.0 as usize],
            inflight_evicted: ctr[types::sirq_counter::SIRQ_CTR_INFLIGHT_EVICTED.0 as usize],
            iface_table_full: ctr[types::sirq_counter::SIRQ_CTR_IFACE_FULL.0 as usize],
            raises_unattributed: ctr[types::sirq_counter::SIRQ_CTR_RAISE_UNATTRIBUTED.0 as usize],
        };

        let mut keys: Vec<IfaceKey> = counters.keys().chain(hists.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        self.refresh_topology(&keys);
        let interfaces = keys
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
                self.apply_identity(&mut i);
                i
            })
            .filter(|i| i.is_active())
            .collect();
        let raise_sites = self.read_raise_sites(&counters, &cpus, &loss)?;
        Ok(Snapshot {
            elapsed_ns,
            interfaces,
            cpus,
            loss,
            programs: self.program_costs(),
            raise_sites,
        })
    }

    /// Sampled raise sites, symbolized, with each (interface, vector)'s raises apportioned
    /// over its stacks by their share of the samples.
    fn read_raise_sites(
        &mut self,
        counters: &HashMap<IfaceKey, IfaceCounters>,
        cpus: &[CpuStats],
        loss: &Loss,
    ) -> Result<Vec<RaiseSite>> {
        let mut samples: BTreeMap<(Option<IfaceKey>, usize, u32), u64> = BTreeMap::new();
        let map = &self.skel.maps.raise_sites;
        for key in map.keys() {
            let Ok(k) = plain::from_bytes::<types::sirq_site_key>(&key) else {
                continue;
            };
            let Some(v) = map.lookup(&key, MapFlags::ANY).map_err(|e| Error::Map {
                map: "raise_sites",
                source: e,
            })?
            else {
                continue;
            };
            let n = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
                .unwrap_or(0);
            let iface = (k.netns != 0 || k.ifindex != 0).then_some(IfaceKey {
                netns: k.netns,
                ifindex: k.ifindex,
            });
            samples.insert((iface, k.vec as usize, k.stackid as u32), n);
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let missing: Vec<u32> = samples
            .keys()
            .map(|k| k.2)
            .filter(|id| !self.stacks.contains_key(id))
            .collect();
        self.symbolize(&missing);

        // Group by (interface, vector) and merge stacks that symbolize alike.
        let mut groups: BTreeMap<(Option<IfaceKey>, usize), BTreeMap<Vec<String>, u64>> =
            BTreeMap::new();
        for ((iface, vec, id), n) in samples {
            let frames = self.stacks.get(&id).cloned().unwrap_or_default();
            *groups
                .entry((iface, vec))
                .or_default()
                .entry(frames)
                .or_default() += n;
        }
        let mut out = Vec::new();
        for ((iface, vector), stacks) in groups {
            let total = match (iface, vector) {
                (Some(k), crate::model::NET_RX) => counters.get(&k).map_or(0, |c| c.net_rx_raises),
                (None, crate::model::NET_RX) => loss.raises_unattributed,
                (_, v) => cpus.iter().map(|c| c.vectors[v].raises).sum(),
            };
            let weights: Vec<u64> = stacks.values().copied().collect();
            let counts = crate::model::apportion(total, &weights);
            for ((frames, samples), count) in stacks.into_iter().zip(counts) {
                out.push(RaiseSite {
                    iface,
                    vector,
                    samples,
                    count,
                    frames,
                });
            }
        }
        out.sort_by(|a, b| b.count.cmp(&a.count).then(b.samples.cmp(&a.samples)));
        Ok(out)
    }

    fn symbolize(&mut self, ids: &[u32]) {
        use blazesym::symbolize::{source, Input, Symbolizer};
        if ids.is_empty() {
            return;
        }
        let symbolizer = self.symbolizer.get_or_insert_with(Symbolizer::new);
        let src = source::Source::Kernel(source::Kernel::default());
        for &id in ids {
            let raw = self
                .skel
                .maps
                .raise_stacks
                .lookup(&id.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .unwrap_or_default();
            let addrs: Vec<u64> = raw
                .chunks_exact(8)
                .filter_map(|b| b.try_into().ok().map(u64::from_ne_bytes))
                .take_while(|&a| a != 0)
                .collect();
            let names: Vec<String> = match symbolizer.symbolize(&src, Input::AbsAddr(&addrs)) {
                Ok(syms) => syms
                    .iter()
                    .zip(&addrs)
                    .map(|(s, a)| match s.as_sym() {
                        Some(sym) => format!("{}+{:#x}", sym.name, sym.offset),
                        None => format!("{a:#x}"),
                    })
                    .collect(),
                Err(_) => addrs.iter().map(|a| format!("{a:#x}")).collect(),
            };
            self.stacks.insert(id, trim_probe_frames(names));
        }
    }

    /// Per-interface counters: the per-CPU array slots plus the hash map that takes
    /// interfaces whose slot was already taken.
    fn read_iface_counters(&self) -> Result<HashMap<IfaceKey, IfaceCounters>> {
        let mut out: HashMap<IfaceKey, IfaceCounters> = HashMap::new();
        let slots = &self.skel.maps.iface_slots;
        for idx in 0..slots.max_entries() {
            let per_cpu = slots
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| Error::Map {
                    map: "iface_slots",
                    source: e,
                })?
                .unwrap_or_default();
            for v in &per_cpu {
                let Ok(s) = plain::from_bytes::<types::sirq_iface_slot>(v) else {
                    continue;
                };
                if s.key.ifindex == 0 {
                    continue;
                }
                let k = IfaceKey {
                    netns: s.key.netns,
                    ifindex: s.key.ifindex,
                };
                out.entry(k).or_default().merge(&counters(&s.c));
            }
        }
        let map = &self.skel.maps.iface_counters;
        for key in map.keys() {
            let Some(k) = iface_key(&key) else { continue };
            let per_cpu = map
                .lookup_percpu(&key, MapFlags::ANY)
                .map_err(|e| Error::Map {
                    map: "iface_counters",
                    source: e,
                })?
                .unwrap_or_default();
            for v in &per_cpu {
                if let Ok(c) = plain::from_bytes::<types::sirq_iface_counters>(v) {
                    out.entry(k).or_default().merge(&counters(c));
                }
            }
        }
        Ok(out)
    }

    /// Latency histograms: the shared array slots plus the overflow hash map.
    fn read_iface_hists(&self) -> Result<HashMap<IfaceKey, (Histogram, Histogram)>> {
        let mut out: HashMap<IfaceKey, (Histogram, Histogram)> = HashMap::new();
        let mut add = |k: IfaceKey, h: &types::sirq_iface_hists| {
            let e = out.entry(k).or_default();
            e.0.merge(&hist(&h.veth_hop));
            e.1.merge(&hist(&h.backlog_wait));
        };
        let slots = &self.skel.maps.hist_slots;
        let batch = slots
            .lookup_batch(slots.max_entries(), MapFlags::ANY, MapFlags::ANY)
            .map_err(|e| Error::Map {
                map: "hist_slots",
                source: e,
            })?;
        for (_, v) in batch {
            let Ok(s) = plain::from_bytes::<types::sirq_hist_slot>(&v) else {
                continue;
            };
            if s.key != 0 {
                add(
                    IfaceKey {
                        netns: (s.key >> 32) as u32,
                        ifindex: s.key as u32,
                    },
                    &s.h,
                );
            }
        }
        let map = &self.skel.maps.iface_hists;
        for key in map.keys() {
            let Some(k) = iface_key(&key) else { continue };
            let Some(v) = map.lookup(&key, MapFlags::ANY).map_err(|e| Error::Map {
                map: "iface_hists",
                source: e,
            })?
            else {
                continue;
            };
            if let Ok(h) = plain::from_bytes::<types::sirq_iface_hists>(&v) {
                add(k, h);
            }
        }
        Ok(out)
    }

    fn read_softirqs(&self) -> Result<Vec<CpuStats>> {
        let map = &self.skel.maps.softirqs;
        let mut cpus: Vec<CpuStats> = (0..self.ncpus as u32).map(CpuStats::new).collect();
        for vec in 0..crate::model::VECTOR_NAMES.len() as u32 {
            let per_cpu = map
                .lookup_percpu(&vec.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| Error::Map {
                    map: "softirqs",
                    source: e,
                })?
                .unwrap_or_default();
            for (cpu, v) in per_cpu.iter().enumerate() {
                let (Some(slot), Ok(s)) = (
                    cpus.get_mut(cpu),
                    plain::from_bytes::<types::sirq_softirq_stats>(v),
                ) else {
                    continue;
                };
                slot.vectors[vec as usize] = VectorStats {
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

    fn read_counters(&self) -> Result<Vec<u64>> {
        let map = &self.skel.maps.counters;
        let n = types::sirq_counter::SIRQ_CTR_NR.0;
        let mut out = vec![0u64; n as usize];
        for i in 0..n {
            let per_cpu = map
                .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| Error::Map {
                    map: "counters",
                    source: e,
                })?
                .unwrap_or_default();
            out[i as usize] = per_cpu
                .iter()
                .filter_map(|v| {
                    v.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_ne_bytes)
                })
                .sum();
        }
        Ok(out)
    }

    /// Re-resolves namespaces and links when an interface is unknown or the view is old.
    fn refresh_topology(&mut self, keys: &[IfaceKey]) {
        let stale = self
            .topology_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(5));
        let unknown = keys.iter().any(|k| !self.known.contains_key(k));
        if !(stale || unknown) {
            return;
        }
        if let Ok(t) = netns::discover() {
            self.topology = t;
            self.topology_at = Some(Instant::now());
        }
        let topo = &self.topology;
        let label_of = |ns: u32| -> (Option<String>, String) {
            match topo.namespaces.get(&ns) {
                Some(n) => (n.ip_netns_name.clone(), n.label()),
                None => (None, format!("netns:{ns}")),
            }
        };
        for l in topo.links.values() {
            let (netns_name, netns_label) = label_of(l.netns);
            let peer = l.peer.map(|(pns, pidx)| PeerRef {
                netns: pns,
                ifindex: pidx,
                name: topo.link(pns, pidx).map(|p| p.name.clone()),
                netns_label: Some(label_of(pns).1),
            });
            self.known.insert(
                IfaceKey {
                    netns: l.netns,
                    ifindex: l.ifindex,
                },
                Identity {
                    name: l.name.clone(),
                    kind: l.kind.clone(),
                    netns_name,
                    netns_label,
                    container: topo
                        .namespaces
                        .get(&l.netns)
                        .and_then(|n| n.container.clone()),
                    peer,
                },
            );
        }
    }

    fn apply_identity(&self, i: &mut Interface) {
        let present = self.topology.link(i.key.netns, i.key.ifindex).is_some();
        if let Some(id) = self.known.get(&i.key) {
            i.name = id.name.clone();
            i.kind = id.kind.clone();
            i.netns_name = id.netns_name.clone();
            i.netns_label = id.netns_label.clone();
            i.container = id.container.clone();
            i.peer = id.peer.clone();
        } else if let Ok(seen) = self.seen.try_borrow() {
            // Gone before we could look: the kernel side's first-sight record names it.
            if let Some((name, kind)) = seen.get(&i.key) {
                i.name = name.clone();
                i.kind = (!kind.is_empty()).then(|| kind.clone());
            }
            if let Some(n) = self.topology.namespaces.get(&i.key.netns) {
                i.netns_name = n.ip_netns_name.clone();
                i.netns_label = n.label();
                i.container = n.container.clone();
            }
        }
        if i.kind.is_none() && i.name == "lo" {
            i.kind = Some("loopback".into());
        }
        i.gone = !present && self.topology_at.is_some();
    }

    fn program_costs(&self) -> Vec<ProgramCost> {
        let stats_on = self.stats_fd.is_some() || kernel_stats_enabled();
        self.links
            .iter()
            .map(|(name, hook, mech, _)| {
                let info = if stats_on {
                    self.skel
                        .object()
                        .progs()
                        .find(|p| p.name() == name.as_str())
                        .and_then(|p| prog_run_stats(p.as_fd().as_raw_fd()))
                } else {
                    None
                };
                ProgramCost {
                    name: name.clone(),
                    hook: *hook,
                    backend: mech.backend(),
                    run_count: info.map(|i| i.0),
                    run_time_ns: info.map(|i| i.1),
                }
            })
            .collect()
    }

    /// How long the probes have been attached.
    pub fn elapsed(&self) -> Duration {
        self.attached_at.elapsed()
    }
}

enum AttachFailure {
    /// One hook's current mechanism failed: try its next candidate.
    Hook(Hook, String),
    Fatal(Error),
}

fn attach_reason(mech: Mechanism, hook: Hook, e: &libbpf_rs::Error) -> String {
    let target = match mech {
        Mechanism::TpBtf | Mechanism::RawTp => probe::tracepoint(hook).to_string(),
        _ => probe::functions(hook).join("/"),
    };
    format!("attach to {target} failed: {e}")
}

/// Drops the frames of the probe machinery itself (BPF program, trampolines, tracepoint
/// and kprobe dispatch) from the top of a stack, so it starts at the raise.
pub fn trim_probe_frames(frames: Vec<String>) -> Vec<String> {
    const PLUMBING: [&str; 12] = [
        "bpf_",
        "__bpf",
        "___bpf",
        "perf_",
        "__traceiter_",
        "trace_",
        "__probestub",
        "kprobe_",
        "__kprobes",
        "ftrace",
        "arch_rethook",
        "0x",
    ];
    let skip = frames
        .iter()
        .take_while(|f| PLUMBING.iter().any(|p| f.starts_with(p)) || f.starts_with("rethook"))
        .count();
    // A stack made only of plumbing keeps everything rather than nothing.
    if skip == frames.len() {
        frames
    } else {
        frames.into_iter().skip(skip).collect()
    }
}

fn iface_key(bytes: &[u8]) -> Option<IfaceKey> {
    let k = plain::from_bytes::<types::sirq_iface_key>(bytes).ok()?;
    Some(IfaceKey {
        netns: k.netns,
        ifindex: k.ifindex,
    })
}

/// A kernel histogram; shared ones leave `count` at 0 (one atomic less per packet), so the
/// count is the buckets' sum.
fn hist(h: &types::sirq_hist) -> Histogram {
    Histogram::from_parts(h.buckets.iter().sum(), h.sum, h.max, h.buckets)
}

fn counters(c: &types::sirq_iface_counters) -> IfaceCounters {
    IfaceCounters {
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
        rx_enqueued: c.rx_enqueued,
        rx_packets: c.rx_packets,
        net_rx_raises: c.net_rx_raises,
        softirq_ns: c.softirq_ns,
    }
}

fn c_string(raw: &[i8]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Ring-buffer callback: must not panic; a malformed record is skipped.
fn on_event(seen: &Seen, data: &[u8]) -> i32 {
    let Ok(ev) = plain::from_bytes::<types::sirq_iface_event>(data) else {
        return 0;
    };
    if ev.r#type == types::sirq_event_type::SIRQ_EV_IFACE.0 {
        if let Ok(mut s) = seen.try_borrow_mut() {
            s.insert(
                IfaceKey {
                    netns: ev.netns,
                    ifindex: ev.ifindex,
                },
                (c_string(&ev.name), c_string(&ev.kind)),
            );
        }
    }
    0
}

fn kernel_stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Turns on BPF run-time stats for as long as the returned fd is open.
fn enable_bpf_stats() -> Option<std::os::fd::OwnedFd> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_nul() {
        let mut raw = [0i8; 16];
        for (i, b) in b"veth0".iter().enumerate() {
            raw[i] = *b as i8;
        }
        raw[7] = b'x' as i8;
        assert_eq!(c_string(&raw), "veth0");
    }

    #[test]
    fn malformed_records_are_skipped() {
        let seen: Seen = Rc::new(RefCell::new(HashMap::new()));
        assert_eq!(on_event(&seen, &[1, 2, 3]), 0);
        assert!(seen.borrow().is_empty());
        let mut ev = types::sirq_iface_event {
            r#type: types::sirq_event_type::SIRQ_EV_IFACE.0,
            netns: 7,
            ifindex: 3,
            ..Default::default()
        };
        ev.name[0] = b'a' as i8;
        ev.kind[..4].copy_from_slice(&[b'v' as i8, b'e' as i8, b't' as i8, b'h' as i8]);
        // SAFETY: sirq_iface_event is Plain: viewing it as bytes is sound.
        let bytes = unsafe { plain::as_bytes(&ev) };
        assert_eq!(on_event(&seen, bytes), 0);
        assert_eq!(
            seen.borrow().get(&IfaceKey {
                netns: 7,
                ifindex: 3
            }),
            Some(&("a".into(), "veth".into()))
        );
    }

    #[test]
    fn probe_frames_are_trimmed_from_the_top_only() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            trim_probe_frames(f(&[
                "bpf_prog_6deef7357e7b4530_tp_softirq_raise+0x1b2",
                "bpf_trace_run1+0x86",
                "__raise_softirq_irqoff+0x6e",
                "____napi_schedule+0x55",
                "trace_dummy_in_middle+0x1",
            ])),
            f(&[
                "__raise_softirq_irqoff+0x6e",
                "____napi_schedule+0x55",
                "trace_dummy_in_middle+0x1"
            ])
        );
        assert_eq!(trim_probe_frames(f(&["bpf_x+0x1"])), f(&["bpf_x+0x1"]));
    }
}
