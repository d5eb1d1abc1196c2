//! Probe backends: what the running kernel offers, and per hook which mechanism to try
//! in which order. Attaching itself happens in the collector, which owns the skeleton.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::model::{Backend, Hook};

/// `--probe`: let sirqtop choose per hook, or force one backend for the card's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeMode {
    #[default]
    Auto,
    Force(Backend),
}

impl FromStr for ProbeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ProbeMode::Auto),
            "kprobe" => Ok(ProbeMode::Force(Backend::Kprobe)),
            "fentry" => Ok(ProbeMode::Force(Backend::Fentry)),
            "tracepoint" | "tp" => Ok(ProbeMode::Force(Backend::Tracepoint)),
            other => Err(format!(
                "unknown probe backend '{other}' (expected auto, kprobe, fentry or tracepoint)"
            )),
        }
    }
}

impl fmt::Display for ProbeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeMode::Auto => f.write_str("auto"),
            ProbeMode::Force(b) => b.fmt(f),
        }
    }
}

/// How one hook is attached: the tracepoint backend has two mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// BTF-typed tracepoint: direct memory access, cheapest.
    TpBtf,
    /// Raw tracepoint: the same events, reads through probe_read.
    RawTp,
    Fentry,
    Kprobe,
}

impl Mechanism {
    pub fn backend(self) -> Backend {
        match self {
            Mechanism::TpBtf | Mechanism::RawTp => Backend::Tracepoint,
            Mechanism::Fentry => Backend::Fentry,
            Mechanism::Kprobe => Backend::Kprobe,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::TpBtf => "tp_btf",
            Mechanism::RawTp => "raw_tp",
            Mechanism::Fentry => "fentry",
            Mechanism::Kprobe => "kprobe",
        }
    }
}

/// Position of a mechanism (by name) in the auto order; unknown names rank last.
pub fn rank(mech: &str) -> usize {
    ["tp_btf", "raw_tp", "fentry", "kprobe"]
        .iter()
        .position(|m| *m == mech)
        .unwrap_or(usize::MAX)
}

/// The kernel functions a kprobe/fentry hook attaches to. Only the first is required:
/// `__netif_rx` exists since 5.18 (veth enqueues through it from then on).
pub fn functions(hook: Hook) -> &'static [&'static str] {
    match hook {
        Hook::VethXmit => &["veth_xmit"],
        Hook::NetifRx => &["netif_rx", "__netif_rx"],
        Hook::SoftirqRaise => &["__raise_softirq_irqoff"],
        Hook::SoftirqRun | Hook::NetifReceive => &[],
    }
}

/// The tracepoint behind a hook, for messages.
pub fn tracepoint(hook: Hook) -> &'static str {
    match hook {
        Hook::VethXmit => "net:net_dev_start_xmit",
        Hook::NetifRx => "net:netif_rx",
        Hook::SoftirqRaise => "irq:softirq_raise",
        Hook::SoftirqRun => "irq:softirq_entry/softirq_exit",
        Hook::NetifReceive => "net:netif_receive_skb",
    }
}

/// BPF programs (in bpf/sirqtop.bpf.c) for a hook and mechanism, each with the kernel
/// function it needs (None for tracepoints). The first program is required; a later one is
/// attached where its function exists.
pub fn programs(hook: Hook, mech: Mechanism) -> &'static [(&'static str, Option<&'static str>)] {
    use Mechanism::*;
    match (hook, mech) {
        (Hook::VethXmit, TpBtf) => &[("tp_veth_xmit", None)],
        (Hook::VethXmit, RawTp) => &[("raw_veth_xmit", None)],
        (Hook::VethXmit, Fentry) => &[("fentry_veth_xmit", Some("veth_xmit"))],
        (Hook::VethXmit, Kprobe) => &[("kprobe_veth_xmit", Some("veth_xmit"))],
        (Hook::NetifRx, TpBtf) => &[("tp_netif_rx", None)],
        (Hook::NetifRx, RawTp) => &[("raw_netif_rx", None)],
        (Hook::NetifRx, Fentry) => &[
            ("fentry_netif_rx", Some("netif_rx")),
            ("fentry___netif_rx", Some("__netif_rx")),
        ],
        (Hook::NetifRx, Kprobe) => &[
            ("kprobe_netif_rx", Some("netif_rx")),
            ("kprobe___netif_rx", Some("__netif_rx")),
        ],
        (Hook::SoftirqRaise, TpBtf) => &[("tp_softirq_raise", None)],
        (Hook::SoftirqRaise, RawTp) => &[("raw_softirq_raise", None)],
        (Hook::SoftirqRaise, Fentry) => &[("fentry_softirq_raise", Some("__raise_softirq_irqoff"))],
        (Hook::SoftirqRaise, Kprobe) => &[("kprobe_softirq_raise", Some("__raise_softirq_irqoff"))],
        (Hook::SoftirqRun, TpBtf) => &[("tp_softirq_entry", None), ("tp_softirq_exit", None)],
        (Hook::SoftirqRun, RawTp) => &[("raw_softirq_entry", None), ("raw_softirq_exit", None)],
        (Hook::NetifReceive, TpBtf) => &[("tp_netif_receive", None)],
        (Hook::NetifReceive, RawTp) => &[("raw_netif_receive", None)],
        (Hook::SoftirqRun | Hook::NetifReceive, Fentry | Kprobe) => &[],
    }
}

/// Which hook and mechanism a program name belongs to.
pub fn program_owner(name: &str) -> Option<(Hook, Mechanism)> {
    use Mechanism::*;
    for hook in Hook::ALL {
        for mech in [TpBtf, RawTp, Fentry, Kprobe] {
            if programs(hook, mech).iter().any(|(p, _)| *p == name) {
                return Some((hook, mech));
            }
        }
    }
    None
}

/// What the running kernel offers, read from /sys and /proc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFeatures {
    pub release: String,
    pub btf: bool,
    pub kprobes: bool,
    /// Kernel function name -> present, for the functions the kprobe/fentry hooks need.
    /// None when kallsyms was not read.
    pub symbols: Option<HashMap<String, SymbolInfo>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolInfo {
    /// Compiler clones (`.isra.N`, `.constprop.N`) that callers may call instead.
    pub clones: Vec<String>,
}

impl KernelFeatures {
    /// Cheap checks only; kallsyms is read by `with_symbols` when a kprobe/fentry is considered.
    pub fn detect() -> KernelFeatures {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        KernelFeatures {
            release,
            btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            // The kprobe PMU is registered only when CONFIG_KPROBES is on.
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            symbols: None,
        }
    }

    pub fn with_symbols(mut self) -> KernelFeatures {
        if self.symbols.is_none() {
            let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
            self.symbols = Some(parse_kallsyms(&text));
        }
        self
    }

    pub fn symbol(&self, name: &str) -> Option<&SymbolInfo> {
        self.symbols.as_ref().and_then(|s| s.get(name))
    }
}

/// Picks out the hook functions (and their clones) from /proc/kallsyms text.
pub fn parse_kallsyms(text: &str) -> HashMap<String, SymbolInfo> {
    let wanted: Vec<&str> = Hook::ALL
        .iter()
        .flat_map(|h| functions(*h).iter().copied())
        .collect();
    let mut out: HashMap<String, SymbolInfo> = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(_addr), Some(kind), Some(sym)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !matches!(kind, "t" | "T") {
            continue;
        }
        let base = sym.split('.').next().unwrap_or(sym);
        if !wanted.contains(&base) {
            continue;
        }
        let entry = out.entry(base.to_string()).or_default();
        if sym != base && (sym.contains(".isra.") || sym.contains(".constprop.")) {
            entry.clones.push(sym.to_string());
        }
    }
    out
}

/// Candidate mechanisms per hook, best first, and the reasons others were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub candidates: BTreeMap<Hook, VecDeque<Mechanism>>,
    pub skipped: Vec<String>,
}

/// The card's three hooks: the only ones with a kprobe/fentry alternative.
pub fn is_card_hook(hook: Hook) -> bool {
    matches!(hook, Hook::VethXmit | Hook::NetifRx | Hook::SoftirqRaise)
}

/// The order sirqtop tries mechanisms in. Auto: tracepoints first (≈15 ns per call, stable
/// ABI), then fentry (≈24 ns), then kprobe (≈137 ns). Forcing a backend pins the card's
/// hooks to it; the hooks that only exist as tracepoints keep their tracepoints.
pub fn plan(mode: ProbeMode, k: &KernelFeatures) -> Plan {
    use Mechanism::*;
    let mut candidates = BTreeMap::new();
    let mut skipped = Vec::new();
    for hook in Hook::ALL {
        let order: Vec<Mechanism> = match (mode, is_card_hook(hook)) {
            (ProbeMode::Auto, true) => vec![TpBtf, RawTp, Fentry, Kprobe],
            (ProbeMode::Force(Backend::Tracepoint), _) | (_, false) => vec![TpBtf, RawTp],
            (ProbeMode::Force(Backend::Fentry), true) => vec![Fentry],
            (ProbeMode::Force(Backend::Kprobe), true) => vec![Kprobe],
        };
        let mut keep = VecDeque::new();
        for mech in order {
            match unusable(hook, mech, mode, k) {
                Some(reason) => skipped.push(format!("{hook}: {}: {reason}", mech.as_str())),
                None => keep.push_back(mech),
            }
        }
        candidates.insert(hook, keep);
    }
    Plan {
        candidates,
        skipped,
    }
}

/// Why a mechanism cannot serve a hook on this kernel, decided without loading anything.
fn unusable(hook: Hook, mech: Mechanism, mode: ProbeMode, k: &KernelFeatures) -> Option<String> {
    let func = functions(hook).first()?;
    match mech {
        Mechanism::TpBtf | Mechanism::RawTp => None,
        Mechanism::Kprobe if !k.kprobes => {
            Some("kernel has no kprobes (CONFIG_KPROBES is off)".to_string())
        }
        Mechanism::Kprobe | Mechanism::Fentry => {
            // Symbols not read: the attach attempt decides.
            k.symbols.as_ref()?;
            match k.symbol(func) {
                None if hook == Hook::VethXmit => {
                    Some(format!("{func} not in kallsyms (veth module not loaded?)"))
                }
                None => Some(format!("{func} not in kallsyms")),
                // A clone means some callers bypass the probed entry: auto wants every event.
                Some(s) if !s.clones.is_empty() && mode == ProbeMode::Auto => Some(format!(
                    "misses calls: {func} has compiler clones ({})",
                    s.clones.join(", ")
                )),
                Some(_) => None,
            }
        }
    }
}

/// Whether an optional function (e.g. `__netif_rx` before 5.18) can be probed.
pub fn has_function(k: &KernelFeatures, name: &str) -> bool {
    match &k.symbols {
        Some(s) => s.contains_key(name),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(kprobes: bool, syms: &str) -> KernelFeatures {
        KernelFeatures {
            release: "6.1.0".into(),
            btf: true,
            kprobes,
            symbols: Some(parse_kallsyms(syms)),
        }
    }

    const SYMS: &str = "ffffffff81000000 T netif_rx\nffffffff81000100 T __netif_rx\n\
        ffffffff81000200 T __raise_softirq_irqoff\nffffffffc0000000 t veth_xmit\t[veth]\n\
        ffffffffc0000100 t veth_xmit.cold\t[veth]\n";

    #[test]
    fn probe_mode_parses() {
        assert_eq!("auto".parse::<ProbeMode>(), Ok(ProbeMode::Auto));
        assert_eq!(
            "kprobe".parse::<ProbeMode>(),
            Ok(ProbeMode::Force(Backend::Kprobe))
        );
        assert_eq!(
            "fentry".parse::<ProbeMode>(),
            Ok(ProbeMode::Force(Backend::Fentry))
        );
        assert_eq!(
            "tracepoint".parse::<ProbeMode>(),
            Ok(ProbeMode::Force(Backend::Tracepoint))
        );
        let e = "uprobe".parse::<ProbeMode>().unwrap_err();
        assert!(e.contains("uprobe") && e.contains("auto"), "{e}");
    }

    #[test]
    fn auto_orders_tracepoint_fentry_kprobe() {
        let p = plan(ProbeMode::Auto, &kernel(true, SYMS));
        let v: Vec<_> = p.candidates[&Hook::VethXmit].iter().copied().collect();
        assert_eq!(
            v,
            vec![
                Mechanism::TpBtf,
                Mechanism::RawTp,
                Mechanism::Fentry,
                Mechanism::Kprobe
            ]
        );
        let r: Vec<_> = p.candidates[&Hook::SoftirqRun].iter().copied().collect();
        assert_eq!(r, vec![Mechanism::TpBtf, Mechanism::RawTp]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn no_kprobes_is_explained() {
        let p = plan(ProbeMode::Force(Backend::Kprobe), &kernel(false, SYMS));
        assert!(p.candidates[&Hook::VethXmit].is_empty());
        assert!(p
            .skipped
            .iter()
            .any(|s| s.starts_with("veth_xmit: kprobe:") && s.contains("CONFIG_KPROBES")));
        // Tracepoint-only hooks keep their tracepoints when a backend is forced.
        assert_eq!(
            p.candidates[&Hook::NetifReceive].front(),
            Some(&Mechanism::TpBtf)
        );
    }

    #[test]
    fn missing_veth_module_and_clones() {
        let syms =
            "ffffffff81000000 T netif_rx\nffffffff81000200 t __raise_softirq_irqoff.isra.0\n\
            ffffffff81000300 T __raise_softirq_irqoff\n";
        let k = kernel(true, syms);
        let p = plan(ProbeMode::Auto, &k);
        assert!(p
            .skipped
            .iter()
            .any(|s| s.contains("veth_xmit not in kallsyms")));
        assert!(p.skipped.iter().any(|s| s.contains("compiler clones")));
        assert!(!has_function(&k, "__netif_rx"));
        // Forced, the clone warning does not remove the candidate.
        let f = plan(ProbeMode::Force(Backend::Kprobe), &k);
        assert_eq!(
            f.candidates[&Hook::SoftirqRaise].front(),
            Some(&Mechanism::Kprobe)
        );
    }

    #[test]
    fn program_names_map_back() {
        assert_eq!(
            program_owner("kprobe___netif_rx"),
            Some((Hook::NetifRx, Mechanism::Kprobe))
        );
        assert_eq!(
            program_owner("tp_softirq_exit"),
            Some((Hook::SoftirqRun, Mechanism::TpBtf))
        );
        assert_eq!(program_owner("nope"), None);
    }
}
