//! Probe backends: what the running kernel offers ([`kernel`]), sirqtop's programs
//! ([`programs`]), and per hook which mechanism to try in which order. Attaching itself
//! happens in the collector, which owns the skeleton.

pub mod btf;
pub mod kernel;
pub mod programs;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use crate::model::{Backend, Hook};

pub use kernel::{has_function, parse_kallsyms, KernelFeatures, SymbolInfo};
pub use programs::{functions, program, programs, tracepoint, Program, PROGRAMS};

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
    /// Position in the auto order: tp_btf, raw_tp, fentry, kprobe.
    pub fn rank(self) -> usize {
        self as usize
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

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hook is not attached with a mechanism that ranks above the one it got (or why it
/// is not attached at all: `mechanism` None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub hook: Hook,
    pub mechanism: Option<Mechanism>,
    pub reason: String,
}

impl Fallback {
    pub fn new(hook: Hook, mechanism: Mechanism, reason: impl Into<String>) -> Fallback {
        Fallback {
            hook,
            mechanism: Some(mechanism),
            reason: reason.into(),
        }
    }
}

/// `veth_xmit: fentry: <reason>`, the form of `kernel.fallbacks` in the JSON.
impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mechanism {
            Some(m) => write!(f, "{}: {m}: {}", self.hook, self.reason),
            None => write!(f, "{}: {}", self.hook, self.reason),
        }
    }
}

/// Candidate mechanisms per hook, best first, and the reasons others were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub candidates: BTreeMap<Hook, VecDeque<Mechanism>>,
    pub skipped: Vec<Fallback>,
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
        let order: Vec<Mechanism> = match (hook, mode, is_card_hook(hook)) {
            // No tracepoint sees these receives: fexit, else kretprobe; else none, and the
            // device statistics tell what was missed.
            (Hook::RxAnother, ProbeMode::Auto, _) => vec![Fentry, Kprobe],
            (Hook::RxAnother, ProbeMode::Force(Backend::Tracepoint), _) => {
                skipped.push(Fallback {
                    hook,
                    mechanism: None,
                    reason: RX_ANOTHER_NONE.into(),
                });
                vec![]
            }
            (Hook::RxAnother, ProbeMode::Force(Backend::Fentry), _) => vec![Fentry],
            (Hook::RxAnother, ProbeMode::Force(_), _) => vec![Kprobe],
            (_, ProbeMode::Auto, true) => vec![TpBtf, RawTp, Fentry, Kprobe],
            (_, ProbeMode::Force(Backend::Tracepoint), _) | (_, _, false) => vec![TpBtf, RawTp],
            (_, ProbeMode::Force(Backend::Fentry), true) => vec![Fentry],
            (_, ProbeMode::Force(Backend::Kprobe), true) => vec![Kprobe],
        };
        let mut keep = VecDeque::new();
        for mech in order {
            match unusable(hook, mech, mode, k) {
                Some(reason) => skipped.push(Fallback::new(hook, mech, reason)),
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

/// Why receives on another round are not seen with the tracepoint backend.
pub const RX_ANOTHER_NONE: &str = "no tracepoint sees receives after a tc peer redirect or an \
    rx_handler (macvlan, ipvlan, VLAN): they are reconciled with the device statistics \
    (rx_unseen)";

/// Why a mechanism cannot serve a hook on this kernel, decided without loading anything.
fn unusable(hook: Hook, mech: Mechanism, mode: ProbeMode, k: &KernelFeatures) -> Option<String> {
    let funcs = functions(hook);
    let func = *funcs.first()?;
    if programs::all_optional(hook) {
        // Any one of its functions will do; modules may be missing.
        return match mech {
            Mechanism::Kprobe if !k.kprobes => {
                Some("kernel has no kprobes (CONFIG_KPROBES is off)".to_string())
            }
            Mechanism::Kprobe | Mechanism::Fentry => {
                k.symbols.as_ref()?;
                (!funcs.iter().any(|f| k.symbol(f).is_some()))
                    .then(|| format!("none of {} in kallsyms", funcs.join(", ")))
            }
            Mechanism::TpBtf | Mechanism::RawTp => None,
        };
    }
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
        ffffffffc0000100 t veth_xmit.cold\t[veth]\nffffffff81000300 T skb_do_redirect\n";

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
        // No tracepoint for receives on another round: fexit, then kretprobe.
        let a: Vec<_> = p.candidates[&Hook::RxAnother].iter().copied().collect();
        assert_eq!(a, vec![Mechanism::Fentry, Mechanism::Kprobe]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn rx_another_needs_one_of_its_functions_and_no_tracepoint_sees_it() {
        // Forced tracepoints: none, with the reason (reconciled instead).
        let t = plan(ProbeMode::Force(Backend::Tracepoint), &kernel(true, SYMS));
        assert!(t.candidates[&Hook::RxAnother].is_empty());
        assert!(t
            .skipped
            .iter()
            .any(|s| s.hook == Hook::RxAnother && s.reason.contains("rx_unseen")));
        // Only a module's rx_handler present: enough.
        let k = kernel(true, "ffffffffc0000000 t macvlan_handle_frame\t[macvlan]\n");
        let p = plan(ProbeMode::Force(Backend::Kprobe), &k);
        assert_eq!(
            p.candidates[&Hook::RxAnother].front(),
            Some(&Mechanism::Kprobe)
        );
        // None of them: explained, and not fatal for a forced backend (not a card hook).
        let k = kernel(true, "ffffffff81000000 T netif_rx\n");
        let p = plan(ProbeMode::Auto, &k);
        assert!(p.candidates[&Hook::RxAnother].is_empty());
        assert!(p
            .skipped
            .iter()
            .any(|s| s.hook == Hook::RxAnother && s.reason.contains("none of skb_do_redirect")));
        assert!(!is_card_hook(Hook::RxAnother));
    }

    #[test]
    fn no_kprobes_is_explained() {
        let p = plan(ProbeMode::Force(Backend::Kprobe), &kernel(false, SYMS));
        assert!(p.candidates[&Hook::VethXmit].is_empty());
        assert!(p.skipped.iter().any(|s| s.hook == Hook::VethXmit
            && s.mechanism == Some(Mechanism::Kprobe)
            && s.to_string().starts_with("veth_xmit: kprobe: ")
            && s.reason.contains("CONFIG_KPROBES")));
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
            .any(|s| s.reason.contains("veth_xmit not in kallsyms")));
        assert!(p
            .skipped
            .iter()
            .any(|s| s.reason.contains("compiler clones")));
        assert!(!has_function(&k, "__netif_rx"));
        // Forced, the clone warning does not remove the candidate.
        let f = plan(ProbeMode::Force(Backend::Kprobe), &k);
        assert_eq!(
            f.candidates[&Hook::SoftirqRaise].front(),
            Some(&Mechanism::Kprobe)
        );
    }
}
