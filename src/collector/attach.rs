//! Backend plan -> load -> attach, with fallback: a hook whose mechanism fails to load or
//! attach moves on to its next candidate, and the reason is kept as a typed [`Fallback`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use libbpf_rs::skel::{OpenSkel, Skel};
use libbpf_rs::{MapCore, MapFlags, MapType, RingBufferBuilder};

use super::{identity, maps, stacks, Attached, Collector, Config};
use crate::bpf::{limits, SkelError, Skeleton};
use crate::error::{Error, Result};
use crate::model::{Availability, Backend, CaptureMeta, Hook, ProbeReport};
use crate::probe::{self, Fallback, KernelFeatures, Mechanism, ProbeMode};

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

/// Why one attempt failed.
enum AttachFailure {
    /// One hook's current mechanism failed: try its next candidate.
    Hook(Fallback),
    Fatal(Error),
}

/// Plans, loads and attaches, falling back per hook until every hook is attached with
/// the best mechanism that works or has none left.
pub(super) fn start(cfg: &Config) -> Result<Collector> {
    let features = KernelFeatures::detect();
    check_environment(&features)?;
    if cfg.netns_filter.len() > limits::MAX_NETNS_FILTER {
        return Err(Error::NothingAttached(format!(
            "at most {} --netns filters",
            limits::MAX_NETNS_FILTER
        )));
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
    // Only a kprobe/fentry candidate needs kallsyms; reading it costs ~50 ms.
    let mut features = match cfg.probe {
        ProbeMode::Force(b) if b != Backend::Tracepoint => features.with_symbols(),
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
        fallbacks.push(Fallback {
            hook: Hook::SoftirqRun,
            mechanism: None,
            reason: "not attached with --lite (counters only)".into(),
        });
    }
    // napi:napi_poll fires once per NET_RX run, which under a flood is once per packet:
    // only on request. Without it, a NAPI device's first packet claims its raise.
    let napi_off = !cfg.napi_polls || cfg.lite;
    if napi_off {
        if let Some(c) = plan.candidates.get_mut(&Hook::NapiPoll) {
            c.clear();
        }
    }
    // Receives on another round have no tracepoint. Where the kernel refuses fexit, say so
    // from a two-instruction probe instead of a failed load of everything (and a kallsyms
    // read) at every start.
    // One read of the kernel's BTF serves the probe and the drop reason names.
    let btf = probe::btf::RawBtf::vmlinux();
    let drop_names = btf
        .as_ref()
        .map(probe::kernel::drop_reason_names)
        .unwrap_or_default();
    let facts = btf
        .as_ref()
        .map(probe::btf::RawBtf::load_facts)
        .unwrap_or_default();
    if let Some(c) = plan.candidates.get_mut(&Hook::RxAnother) {
        if c.contains(&Mechanism::Fentry) {
            let probed = btf
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|b| probe::kernel::fexit_probe(b, "skb_do_redirect"));
            if let Err(why) = probed {
                c.retain(|m| *m != Mechanism::Fentry);
                fallbacks.push(Fallback::new(Hook::RxAnother, Mechanism::Fentry, why));
            }
        }
    }
    // SIRQTOP_DENY=tp_btf,fentry,... pretends the kernel refuses those mechanisms:
    // it exercises the fallback path (and its raw_tp/kprobe bodies) on any kernel.
    if let Some(deny) = std::env::var_os("SIRQTOP_DENY") {
        let deny = deny.to_string_lossy().into_owned();
        for (hook, cands) in plan.candidates.iter_mut() {
            cands.retain(|m| {
                let denied = deny.split(',').any(|d| d.trim() == m.as_str());
                if denied {
                    fallbacks.push(Fallback::new(*hook, *m, "denied by SIRQTOP_DENY"));
                }
                !denied
            });
        }
    }
    loop {
        if let ProbeMode::Force(backend) = cfg.probe {
            for hook in Hook::ALL.into_iter().filter(|h| probe::is_card_hook(*h)) {
                if plan.candidates[&hook].is_empty() {
                    let reason = fallbacks
                        .iter()
                        .rev()
                        .find(|f| f.hook == hook)
                        .map(|f| f.reason.clone())
                        .unwrap_or_else(|| "not available".into());
                    return Err(Error::ForcedBackendUnavailable {
                        backend,
                        hook,
                        reason,
                    });
                }
            }
        }
        let mut chosen: BTreeMap<Hook, Mechanism> = plan
            .candidates
            .iter()
            .filter_map(|(h, c)| c.front().map(|m| (*h, *m)))
            .collect();
        // veth_xmit's tracepoint program follows every kind's transmits itself: a second
        // program on the same tracepoint would cost every veth packet.
        let dev_xmit_by_veth = chosen
            .get(&Hook::VethXmit)
            .filter(|m| matches!(m, Mechanism::TpBtf | Mechanism::RawTp))
            .copied();
        if dev_xmit_by_veth.is_some() {
            chosen.remove(&Hook::DevXmit);
        }
        if chosen.is_empty() {
            let why: Vec<String> = fallbacks.iter().map(ToString::to_string).collect();
            return Err(Error::NothingAttached(why.join("; ")));
        }
        // A kprobe/fentry candidate needs symbol facts (optional __netif_rx, clones).
        if chosen
            .values()
            .any(|m| matches!(m, Mechanism::Kprobe | Mechanism::Fentry))
            && features.symbols.is_none()
        {
            features = features.with_symbols();
            let again = probe::plan(cfg.probe, &features);
            // Keep what already failed removed; adopt the new facts for the rest.
            for (h, c) in plan.candidates.iter_mut() {
                c.retain(|m| again.candidates[h].contains(m));
            }
            for s in again.skipped {
                if !fallbacks.contains(&s) {
                    fallbacks.push(s);
                }
            }
            continue;
        }
        match try_attach(
            cfg,
            &features,
            &chosen,
            &drop_names,
            btf.as_ref().ok(),
            facts,
        ) {
            Ok(mut c) => {
                let mut report = ProbeReport::default();
                for (h, m) in &chosen {
                    report
                        .attached
                        .insert(*h, (m.backend(), m.as_str().to_string()));
                }
                if let Some(m) = dev_xmit_by_veth {
                    report
                        .attached
                        .insert(Hook::DevXmit, (m.backend(), m.as_str().to_string()));
                }
                // Only what ranks above the chosen mechanism is a reason it was chosen.
                report.fallbacks = fallbacks
                    .iter()
                    .filter(|f| match (chosen.get(&f.hook), f.mechanism) {
                        (Some(won), Some(m)) => m.rank() < won.rank(),
                        _ => true,
                    })
                    .map(ToString::to_string)
                    .collect();
                if napi_off {
                    report.off.push(Hook::NapiPoll);
                }
                c.meta.availability = Availability::from_report(&report);
                if cfg.lite {
                    c.meta.availability.veth_hop = false;
                    c.meta.availability.backlog_wait = false;
                }
                c.meta.probes = report;
                c.meta.kernel_release = features.release.clone();
                return Ok(c);
            }
            Err(AttachFailure::Hook(failed)) => {
                if let Some(c) = plan.candidates.get_mut(&failed.hook) {
                    c.pop_front();
                }
                fallbacks.push(failed);
            }
            Err(AttachFailure::Fatal(e)) => return Err(e),
        }
    }
}

/// The kernel's per-CPU receive statistics.
const SOFTNET_STAT: &str = "/proc/net/softnet_stat";

fn try_attach(
    cfg: &Config,
    features: &KernelFeatures,
    chosen: &BTreeMap<Hook, Mechanism>,
    drop_names: &HashMap<u32, String>,
    btf: Option<&probe::btf::RawBtf>,
    facts: probe::btf::LoadFacts,
) -> std::result::Result<Collector, AttachFailure> {
    let wanted: Vec<&'static probe::Program> = chosen
        .iter()
        .flat_map(|(h, m)| probe::programs(*h, *m))
        .filter(|p| !p.optional || probe::has_function(features, p.target))
        .collect();
    take_libbpf_log();
    let (skel, mut offloaded) = load(cfg, &wanted, btf, facts)?;
    let mut c = Collector {
        ring: None,
        links: Vec::new(),
        stats_fd: None,
        skel,
        identity: identity::Identities::default(),
        stacks: stacks::RaiseStacks::default(),
        reclaim: super::reclaim::Reclaimer::new(cfg.forget_gone_after),
        drop_names: drop_names.clone(),
        meta: CaptureMeta {
            kernel_release: String::new(),
            probes: ProbeReport::default(),
            availability: Availability::default(),
            started_at: SystemTime::now(),
            netns_filter: cfg.netns_filter.clone(),
            filter: cfg.filter.as_ref().map(|f| f.expr().to_string()),
            ncpus: probe::kernel::online_cpus() as u32,
            bpf_stats: cfg.bpf_stats,
        },
        attached_at: Instant::now(),
        possible_cpus: libbpf_rs::num_possible_cpus().unwrap_or(1),
        timing_rate: if cfg.lite { 0 } else { cfg.timing_rate },
        slot_check: Default::default(),
        reconcile: super::reconcile::Reconciler::new(&cfg.netns_filter),
        softnet: super::softnet::SoftnetTracker::start(SOFTNET_STAT, &features.release),
        slow: super::slow::SlowTracker::new(slow_threshold(cfg, &wanted)),
        payer_forgetter: cfg
            .forget_gone_after
            .map(super::payers::PayerForgetter::new),
    };
    // From here on, dropping `c` cleans up everything.
    for f in &cfg.netns_filter {
        c.skel
            .maps
            .netns_allow
            .update(&f.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| AttachFailure::Fatal(maps::map_error("netns_allow")(e)))?;
    }
    let ring_error =
        |e: libbpf_rs::Error| AttachFailure::Fatal(Error::Load(format!("ring buffer: {e}")));
    let mut rb = RingBufferBuilder::new();
    rb.add(&c.skel.maps.events, c.identity.ring_callback())
        .map_err(ring_error)?;
    rb.add(&c.skel.maps.slow_events, c.slow.ring_callback())
        .map_err(ring_error)?;
    c.ring = Some(rb.build().map_err(ring_error)?);
    if cfg.bpf_stats {
        c.stats_fd = maps::enable_bpf_stats();
    }
    for p in wanted {
        if let Some(o) = offloaded.take_if(|o| o.program.name == p.name) {
            match o.attach() {
                Ok(own) => c.links.push(Attached {
                    name: p.name,
                    hook: p.hook,
                    mechanism: p.mechanism,
                    link: super::Linked::Own(own),
                }),
                Err(why) => {
                    return Err(AttachFailure::Hook(Fallback::new(p.hook, p.mechanism, why)))
                }
            }
            continue;
        }
        let Some(prog) = c.skel.object().progs_mut().find(|x| x.name() == p.name) else {
            return Err(AttachFailure::Fatal(Error::Load(format!(
                "program {} missing",
                p.name
            ))));
        };
        match prog.attach() {
            Ok(link) => c.links.push(Attached {
                name: p.name,
                hook: p.hook,
                mechanism: p.mechanism,
                link: super::Linked::Libbpf(link),
            }),
            Err(e) => {
                return Err(AttachFailure::Hook(Fallback::new(
                    p.hook,
                    p.mechanism,
                    format!("attach to {} failed: {e}", attach_target(p)),
                )))
            }
        }
    }
    c.attached_at = Instant::now();
    c.meta.started_at = SystemTime::now();
    // The devices' own counters from here on: what sirqtop sees is reconciled with them.
    c.reconcile.sample(None);
    // The softnet window starts with the probes' (the same "since attach").
    c.softnet = super::softnet::SoftnetTracker::start(SOFTNET_STAT, &features.release);
    Ok(c)
}

/// What a program attaches to, for messages: the tracepoint(s) of its hook, or the
/// functions of its hook.
fn attach_target(p: &probe::Program) -> String {
    match p.mechanism {
        Mechanism::TpBtf | Mechanism::RawTp => probe::tracepoint(p.hook),
        Mechanism::Fentry | Mechanism::Kprobe => probe::functions(p.hook).join("/"),
    }
}

/// The slow-softirq threshold in ns: 0 (off) unless asked for and the softirq run hook
/// (entry and exit) is attached.
fn slow_threshold(cfg: &Config, wanted: &[&'static probe::Program]) -> u64 {
    let run_hook = wanted.iter().any(|w| w.hook == Hook::SoftirqRun);
    match cfg.slow {
        Some(d) if run_hook && !cfg.lite => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
        _ => 0,
    }
}

/// Sets the read-only config, enables exactly the wanted programs and loads, the largest
/// of them on a thread of its own (returned: it is attached by its own link). A program
/// the kernel refuses becomes that hook's fallback.
fn load(
    cfg: &Config,
    wanted: &[&'static probe::Program],
    btf: Option<&probe::btf::RawBtf>,
    facts: probe::btf::LoadFacts,
) -> std::result::Result<(Skeleton, Option<super::parallel::Offloaded>), AttachFailure> {
    let mut offloaded = None;
    let mut prepare_failed = None;
    let loaded = Skeleton::load(|open| {
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.cfg.filter_netns = u8::from(!cfg.netns_filter.is_empty());
            ro.cfg.lite = u8::from(cfg.lite);
            ro.cfg.stack_every = cfg.stack_every;
            ro.cfg.slow_ns = slow_threshold(cfg, wanted);
            ro.cfg.timing_rate = cfg.timing_rate;
            let has = |h: Hook| wanted.iter().any(|w| w.hook == h);
            ro.cfg.napi_hook = u8::from(has(Hook::NapiPoll));
            ro.cfg.track_backlog = u8::from(has(Hook::NapiPoll) || has(Hook::SoftirqRun));
            ro.cfg.filter = u8::from(cfg.filter.is_some());
            ro.cfg.untrusted = u8::from(facts.untrusted_cast);
        }
        if facts.runtime_alloc {
            // Elements allocated as they are inserted: creating the hash maps no longer
            // allocates every element (per CPU for the per-CPU ones) at start-up.
            for mut m in open.open_object_mut().maps_mut() {
                if matches!(m.map_type(), MapType::Hash | MapType::PercpuHash) {
                    let flags = m.map_flags() | libbpf_rs::libbpf_sys::BPF_F_NO_PREALLOC;
                    // Refused only once loaded: it is not yet (it would stay preallocated).
                    let _ = m.set_map_flags(flags);
                }
            }
        }
        for mut p in open.open_object_mut().progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            p.set_autoload(wanted.iter().any(|w| w.name == name));
        }
        if btf.is_none() && cfg.filter.is_none() {
            return Ok(());
        }
        // Prepared once (maps made, instructions relocated): the filter's bodies go into
        // the programs, then the largest one may be copied out to load on its own thread.
        if let Err(e) = super::parallel::prepare(open.open_object_mut()) {
            prepare_failed = Some(e);
            return Ok(());
        }
        if let Some(f) = &cfg.filter {
            crate::filter::install(open.open_object_mut(), f)?;
        }
        if let Some(btf) = btf {
            offloaded = super::parallel::offload(open.open_object_mut(), wanted, btf);
        }
        Ok(())
    });
    let e = match loaded {
        Ok(s) => return Ok((s, offloaded)),
        Err(SkelError::Open(e)) => return Err(AttachFailure::Fatal(Error::Load(e.to_string()))),
        Err(SkelError::Filter(e)) => return Err(AttachFailure::Fatal(filter_error(cfg, &e))),
        // A failed prepare leaves libbpf's load only "can't be attempted twice".
        Err(SkelError::Load(e)) => prepare_failed.unwrap_or(e),
    };
    let log = take_libbpf_log();
    if let Some(why) = filter_refused(cfg, &log) {
        return Err(AttachFailure::Fatal(why));
    }
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && !has_bpf_privileges() {
        return Err(AttachFailure::Fatal(Error::NotPrivileged));
    }
    // libbpf names the program that failed ("prog 'NAME': ..."): only its hook falls back.
    let failed = log.iter().rev().find_map(|l| {
        let rest = l.split("prog '").nth(1)?;
        let name = rest.split('\'').next()?;
        probe::program(name).map(|p| (p, l.as_str()))
    });
    let Some((prog, line)) = failed else {
        return Err(AttachFailure::Fatal(Error::Load(format!(
            "{e}{}",
            log.last().map(|l| format!(" ({l})")).unwrap_or_default()
        ))));
    };
    let why = line.split("': ").nth(1).unwrap_or(line);
    let reason = match (line.contains("-EPERM"), prog.mechanism) {
        (true, Mechanism::Fentry) => "the kernel refuses fentry programs (EPERM)".to_string(),
        (true, _) => format!("the kernel refused the program (EPERM): {why}"),
        _ => format!("load failed: {why}"),
    };
    Err(AttachFailure::Hook(Fallback::new(
        prog.hook,
        prog.mechanism,
        reason,
    )))
}

/// A --filter failure as one line naming the expression.
fn filter_error(cfg: &Config, why: &str) -> Error {
    let expr = cfg.filter.as_ref().map(|f| f.expr()).unwrap_or_default();
    Error::Filter(format!("--filter '{expr}': {why}"))
}

/// Whether the verifier refused the filter's body (too long, or a kernel without
/// bpf_probe_read_kernel): that is no reason to try another backend.
fn filter_refused(cfg: &Config, log: &[String]) -> Option<Error> {
    cfg.filter.as_ref()?;
    let has = |s: &str| log.iter().any(|l| l.contains(s));
    let why = if has("bpf_probe_read_kernel#113") || has("unknown func") && has("#113") {
        "this kernel has no bpf_probe_read_kernel (5.5 or later needed)"
    } else if has("too large") || has("too complex") || has("-E2BIG") {
        "the kernel's verifier refused the translated filter: too long for it"
    } else if has("sirq_filter") {
        "the kernel's verifier refused the translated filter"
    } else {
        return None;
    };
    Some(filter_error(cfg, why))
}
