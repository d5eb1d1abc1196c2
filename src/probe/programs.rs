//! The one table of sirqtop's BPF programs: for each, the logical hook it serves, its
//! mechanism and its kernel target (tracepoint or function). Attach, kallsyms filtering,
//! messages and load-failure attribution all read it; a test checks it against the
//! programs the compiled object really contains.

use super::Mechanism;
use crate::model::Hook;

/// One BPF program in bpf/sirqtop.bpf.c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    pub hook: Hook,
    pub mechanism: Mechanism,
    /// `category:event` for tracepoints, the kernel function for fentry/kprobe.
    pub target: &'static str,
    /// Attached only where its function exists (`__netif_rx` appeared in 5.18).
    pub optional: bool,
    /// At the function's return: fexit for fentry, kretprobe for kprobe.
    pub ret: bool,
}

const fn prog(
    name: &'static str,
    hook: Hook,
    mechanism: Mechanism,
    target: &'static str,
) -> Program {
    Program {
        name,
        hook,
        mechanism,
        target,
        optional: false,
        ret: false,
    }
}

impl Program {
    /// Marks a program as attached only where its function exists.
    const fn if_present(self) -> Program {
        Program {
            optional: true,
            ..self
        }
    }

    /// Marks a program as running at its function's return (fexit, kretprobe).
    const fn at_return(self) -> Program {
        Program { ret: true, ..self }
    }
}

use Hook::*;
use Mechanism::*;

/// Every program, grouped by hook; within a (hook, mechanism) in attach order.
#[rustfmt::skip]
pub const PROGRAMS: &[Program] = &[
    prog("tp_veth_xmit",          VethXmit,     TpBtf,  "net:net_dev_start_xmit"),
    prog("raw_veth_xmit",         VethXmit,     RawTp,  "net:net_dev_start_xmit"),
    prog("fentry_veth_xmit",      VethXmit,     Fentry, "veth_xmit"),
    prog("kprobe_veth_xmit",      VethXmit,     Kprobe, "veth_xmit"),
    prog("tp_netif_rx",           NetifRx,      TpBtf,  "net:netif_rx"),
    prog("raw_netif_rx",          NetifRx,      RawTp,  "net:netif_rx"),
    prog("fentry_netif_rx",       NetifRx,      Fentry, "netif_rx"),
    // Since 5.18 veth enqueues through __netif_rx, which does not go through netif_rx.
    prog("fentry___netif_rx",     NetifRx,      Fentry, "__netif_rx").if_present(),
    prog("kprobe_netif_rx",       NetifRx,      Kprobe, "netif_rx"),
    prog("kprobe___netif_rx",     NetifRx,      Kprobe, "__netif_rx").if_present(),
    prog("tp_softirq_raise",      SoftirqRaise, TpBtf,  "irq:softirq_raise"),
    prog("raw_softirq_raise",     SoftirqRaise, RawTp,  "irq:softirq_raise"),
    prog("fentry_softirq_raise",  SoftirqRaise, Fentry, "__raise_softirq_irqoff"),
    prog("kprobe_softirq_raise",  SoftirqRaise, Kprobe, "__raise_softirq_irqoff"),
    prog("tp_softirq_entry",      SoftirqRun,   TpBtf,  "irq:softirq_entry"),
    prog("tp_softirq_exit",       SoftirqRun,   TpBtf,  "irq:softirq_exit"),
    prog("raw_softirq_entry",     SoftirqRun,   RawTp,  "irq:softirq_entry"),
    prog("raw_softirq_exit",      SoftirqRun,   RawTp,  "irq:softirq_exit"),
    prog("tp_netif_receive",      NetifReceive, TpBtf,  "net:netif_receive_skb"),
    prog("raw_netif_receive",     NetifReceive, RawTp,  "net:netif_receive_skb"),
    prog("tp_kfree_skb",          KfreeSkb,     TpBtf,  "skb:kfree_skb"),
    prog("raw_kfree_skb",         KfreeSkb,     RawTp,  "skb:kfree_skb"),
    prog("tp_napi_poll",          NapiPoll,     TpBtf,  "napi:napi_poll"),
    prog("raw_napi_poll",         NapiPoll,     RawTp,  "napi:napi_poll"),
    prog("tp_dev_xmit",           DevXmit,      TpBtf,  "net:net_dev_start_xmit"),
    prog("raw_dev_xmit",          DevXmit,      RawTp,  "net:net_dev_start_xmit"),
    // Receives on another round: where the skb is handed to the next device. Every one is
    // optional (modules: macvlan, ipvlan, 8021q may not be loaded).
    prog("fexit_skb_do_redirect",         RxAnother, Fentry, "skb_do_redirect").if_present().at_return(),
    prog("fexit_macvlan_handle_frame",    RxAnother, Fentry, "macvlan_handle_frame").if_present().at_return(),
    prog("fexit_ipvlan_handle_frame",     RxAnother, Fentry, "ipvlan_handle_frame").if_present().at_return(),
    prog("fexit_vlan_do_receive",         RxAnother, Fentry, "vlan_do_receive").if_present().at_return(),
    prog("fexit_ipvlan_nf_input",         RxAnother, Fentry, "ipvlan_nf_input").if_present().at_return(),
    prog("kprobe_skb_do_redirect",        RxAnother, Kprobe, "skb_do_redirect").if_present(),
    prog("kretprobe_skb_do_redirect",     RxAnother, Kprobe, "skb_do_redirect").if_present().at_return(),
    prog("kprobe_macvlan_handle_frame",   RxAnother, Kprobe, "macvlan_handle_frame").if_present(),
    prog("kretprobe_macvlan_handle_frame", RxAnother, Kprobe, "macvlan_handle_frame").if_present().at_return(),
    prog("kprobe_ipvlan_handle_frame",    RxAnother, Kprobe, "ipvlan_handle_frame").if_present(),
    prog("kretprobe_ipvlan_handle_frame", RxAnother, Kprobe, "ipvlan_handle_frame").if_present().at_return(),
    prog("kprobe_vlan_do_receive",        RxAnother, Kprobe, "vlan_do_receive").if_present(),
    prog("kretprobe_vlan_do_receive",     RxAnother, Kprobe, "vlan_do_receive").if_present().at_return(),
    prog("kprobe_ipvlan_nf_input",        RxAnother, Kprobe, "ipvlan_nf_input").if_present(),
    prog("kretprobe_ipvlan_nf_input",     RxAnother, Kprobe, "ipvlan_nf_input").if_present().at_return(),
];

/// The programs of one hook and mechanism, in attach order.
pub fn programs(hook: Hook, mechanism: Mechanism) -> impl Iterator<Item = &'static Program> {
    PROGRAMS
        .iter()
        .filter(move |p| p.hook == hook && p.mechanism == mechanism)
}

/// The program of that name.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}

/// The kernel functions a kprobe/fentry hook attaches to, the required one first.
pub fn functions(hook: Hook) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in programs(hook, Kprobe) {
        if !out.contains(&p.target) {
            out.push(p.target);
        }
    }
    out
}

/// Whether every function of a hook is optional: it attaches where any of them exists.
pub fn all_optional(hook: Hook) -> bool {
    programs(hook, Kprobe).all(|p| p.optional)
}

/// The tracepoint(s) behind a hook, for messages: `irq:softirq_entry/softirq_exit`.
pub fn tracepoint(hook: Hook) -> String {
    let mut out = String::new();
    for p in programs(hook, TpBtf) {
        match out.is_empty() {
            true => out.push_str(p.target),
            false => {
                out.push('/');
                out.push_str(p.target.split(':').nth(1).unwrap_or(p.target));
            }
        }
    }
    out
}

/// The ELF section a program of this mechanism and target must be in (`SEC(...)`).
pub fn section(p: &Program) -> String {
    let event = p.target.split(':').nth(1).unwrap_or(p.target);
    match p.mechanism {
        TpBtf => format!("tp_btf/{event}"),
        RawTp => format!("raw_tp/{event}"),
        Fentry if p.ret => format!("fexit/{}", p.target),
        Fentry => format!("fentry/{}", p.target),
        Kprobe if p.ret => format!("kretprobe/{}", p.target),
        Kprobe => format!("kprobe/{}", p.target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the compiled object agree: the same programs, each in the section
    /// its mechanism and target call for. Opening the object needs no privileges.
    #[test]
    fn table_matches_the_skeleton() {
        let mut compiled = crate::bpf::program_sections().expect("open the embedded object");
        compiled.sort();
        let mut table: Vec<(String, String)> = PROGRAMS
            .iter()
            .map(|p| (p.name.to_string(), section(p)))
            .collect();
        table.sort();
        assert_eq!(table, compiled);
    }

    #[test]
    fn every_hook_has_a_tracepoint_and_card_hooks_have_functions() {
        for hook in Hook::ALL {
            // Receives on another round have no tracepoint: that is why the hook exists.
            let tracepoint = hook != RxAnother;
            assert_eq!(programs(hook, TpBtf).count() >= 1, tracepoint, "{hook}");
            assert_eq!(programs(hook, RawTp).count() >= 1, tracepoint, "{hook}");
            let card = super::super::is_card_hook(hook);
            assert_eq!(
                !functions(hook).is_empty(),
                card || hook == RxAnother,
                "{hook}"
            );
            // The required function program comes first.
            for mech in [Fentry, Kprobe] {
                if let Some(first) = programs(hook, mech).next() {
                    assert!(!first.optional || all_optional(hook), "{hook} {mech:?}");
                }
            }
        }
        assert!(all_optional(RxAnother) && !all_optional(NetifRx));
        // Every kprobe has its kretprobe, every function its fexit.
        for f in functions(RxAnother) {
            let at = |m, ret| programs(RxAnother, m).any(|p| p.target == f && p.ret == ret);
            assert!(
                at(Kprobe, false) && at(Kprobe, true) && at(Fentry, true),
                "{f}"
            );
        }
        assert_eq!(
            section(program("kretprobe_vlan_do_receive").unwrap()),
            "kretprobe/vlan_do_receive"
        );
        assert_eq!(
            section(program("fexit_skb_do_redirect").unwrap()),
            "fexit/skb_do_redirect"
        );
        assert_eq!(functions(NetifRx), vec!["netif_rx", "__netif_rx"]);
        assert_eq!(tracepoint(SoftirqRun), "irq:softirq_entry/softirq_exit");
        assert_eq!(tracepoint(VethXmit), "net:net_dev_start_xmit");
    }

    #[test]
    fn names_map_back() {
        let p = program("kprobe___netif_rx").unwrap();
        assert_eq!((p.hook, p.mechanism, p.optional), (NetifRx, Kprobe, true));
        let p = program("tp_softirq_exit").unwrap();
        assert_eq!((p.hook, p.mechanism), (SoftirqRun, TpBtf));
        assert!(program("nope").is_none());
    }
}
