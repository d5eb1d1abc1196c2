//! Which hooks are attached, with which backend, and what that makes measurable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{RxPath, Snapshot, NET_RX};

/// Probe mechanisms a hook can be attached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Tracepoint,
    Fentry,
    Kprobe,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Tracepoint => "tracepoint",
            Backend::Fentry => "fentry",
            Backend::Kprobe => "kprobe",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Logical hooks (DESIGN.md hook table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hook {
    VethXmit,
    NetifRx,
    SoftirqRaise,
    SoftirqRun,
    NetifReceive,
    /// skb:kfree_skb: drops, with the reason.
    KfreeSkb,
    /// napi:napi_poll: receivers with their own NAPI.
    NapiPoll,
    /// Transmits of the other kinds sirqtop follows (netkit, macvlan, ipvlan, VLAN,
    /// tunnels): the transmit tracepoint, served by veth_xmit's own program when that is
    /// the tracepoint too.
    DevXmit,
    /// Receives on another round of the kernel's receive loop (after a tc peer redirect,
    /// or an rx_handler handing the skb to macvlan, ipvlan or VLAN): no tracepoint sees
    /// them; fexit or kretprobe on the functions that hand the skb over.
    RxAnother,
}

impl Hook {
    pub const ALL: [Hook; 9] = [
        Hook::VethXmit,
        Hook::NetifRx,
        Hook::SoftirqRaise,
        Hook::SoftirqRun,
        Hook::NetifReceive,
        Hook::KfreeSkb,
        Hook::NapiPoll,
        Hook::DevXmit,
        Hook::RxAnother,
    ];

    /// The name used in JSON (`kernel.backends`) and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::VethXmit => "veth_xmit",
            Hook::NetifRx => "netif_rx",
            Hook::SoftirqRaise => "softirq_raise",
            Hook::SoftirqRun => "softirq_run",
            Hook::NetifReceive => "netif_receive_skb",
            Hook::KfreeSkb => "kfree_skb",
            Hook::NapiPoll => "napi_poll",
            Hook::DevXmit => "dev_xmit",
            Hook::RxAnother => "rx_another",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How each hook ended up attached, and why better backends were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// Hook -> (backend, mechanism detail such as "tp_btf", "raw_tp", "kprobe"). Absent = not attached.
    pub attached: BTreeMap<Hook, (Backend, String)>,
    /// One line per skipped candidate: "veth_xmit: fentry: <reason>".
    pub fallbacks: Vec<String>,
    /// Hooks left off because an option did not ask for them (napi_poll without
    /// --napi-polls): not a fallback, and not missing.
    pub off: Vec<Hook>,
}

impl ProbeReport {
    /// Every hook attached with one mechanism (for synthetic captures: tests, benches).
    pub fn all_attached(backend: Backend, mechanism: &str) -> ProbeReport {
        let mut r = ProbeReport::default();
        for h in Hook::ALL {
            r.attached.insert(h, (backend, mechanism.to_string()));
        }
        r
    }

    pub fn backend(&self, hook: Hook) -> Option<Backend> {
        self.attached.get(&hook).map(|(b, _)| *b)
    }
    pub fn has(&self, hook: Hook) -> bool {
        self.attached.contains_key(&hook)
    }
}

/// Which metrics the attached hooks can produce; a missing one is reported as null, not 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Availability {
    pub tx: bool,
    pub enqueue: bool,
    pub receive: bool,
    /// NET_RX raises attributed to interfaces (needs the raise and enqueue hooks).
    pub raises: bool,
    /// Per-CPU raise counts (the raise hook alone).
    pub cpu_raises: bool,
    pub softirq_time: bool,
    pub veth_hop: bool,
    pub backlog_wait: bool,
    pub softirq_runs: bool,
    /// Drops per interface (skb:kfree_skb).
    #[serde(default)]
    pub drops: bool,
    /// NAPI polls per device (napi:napi_poll).
    #[serde(default)]
    pub napi: bool,
}

impl Availability {
    pub fn from_report(r: &ProbeReport) -> Self {
        let (x, e, ra, run, rcv) = (
            r.has(Hook::VethXmit),
            r.has(Hook::NetifRx),
            r.has(Hook::SoftirqRaise),
            r.has(Hook::SoftirqRun),
            r.has(Hook::NetifReceive),
        );
        Availability {
            tx: x,
            enqueue: e,
            receive: rcv,
            raises: ra && e,
            cpu_raises: ra,
            softirq_time: run && rcv,
            veth_hop: x && rcv,
            backlog_wait: e && rcv,
            softirq_runs: run,
            drops: r.has(Hook::KfreeSkb),
            napi: r.has(Hook::NapiPoll),
        }
    }
    pub fn all() -> Self {
        Availability {
            tx: true,
            enqueue: true,
            receive: true,
            raises: true,
            cpu_raises: true,
            softirq_time: true,
            veth_hop: true,
            backlog_wait: true,
            softirq_runs: true,
            drops: true,
            napi: true,
        }
    }
}

/// What the numbers themselves say about a hook that misses events. Every softirq run
/// needs a raise first, so NET_RX runs far beyond the raises seen mean the raise hook is
/// blind to a raise path (kprobe/fentry on kernels that inline `__raise_softirq_irqoff`
/// into the notrace `raise_softirq_irqoff`).
pub fn coverage_warnings(probes: &ProbeReport, snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(b), true) = (
        probes.backend(Hook::SoftirqRaise),
        probes.has(Hook::SoftirqRun),
    ) {
        let rx = snap.vector_total(NET_RX);
        if b != Backend::Tracepoint && rx.runs >= 10 && rx.raises < rx.runs / 2 {
            out.push(format!(
                "softirq_raise: the {b} probe saw {} NET_RX raises for {} NET_RX runs: this \
                 kernel raises through a path it cannot see (__raise_softirq_irqoff inlined \
                 into the notrace raise_softirq_irqoff), so raise counts are incomplete; \
                 --probe auto uses the irq:softirq_raise tracepoint, which sees them",
                rx.raises, rx.runs
            ));
        }
    }
    if snap.interfaces.iter().any(|i| i.key.cookie == 0) {
        out.push(
            "identity: this kernel has no netns cookies (< 5.12): interfaces are keyed by \
             namespace inode, which the kernel reuses at once, so pods whose namespaces come \
             and go during the capture can be merged"
                .to_string(),
        );
    }
    for i in &snap.interfaces {
        if matches!(i.rx_path(), Some(RxPath::Napi | RxPath::Both))
            && i.kind.as_deref() == Some("veth")
        {
            out.push(format!(
                "rx_path: {}/{} receives through its own NAPI (veth with XDP or GRO): its \
                 backlog_wait is not measured on that path, and its peer's veth_hop counts \
                 only skbs that arrive unchanged (XDP may copy them)",
                i.netns_label, i.name
            ));
        }
    }
    out.extend(unseen_warnings(probes, snap));
    out
}

/// One line per device whose own statistics show receives sirqtop did not see: the data
/// path that hides them, and the backend that would see them.
pub fn unseen_warnings(probes: &ProbeReport, snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for i in &snap.interfaces {
        let (Some(unseen), Some(kernel)) = (i.rx_unseen_notable(), i.kernel_rx_packets) else {
            continue;
        };
        let path = match i.kind.as_deref() {
            Some("macvlan" | "macvtap") => "the macvlan rx_handler (macvlan_handle_frame)",
            Some("ipvlan" | "ipvtap") => {
                "the ipvlan rx_handler (ipvlan_handle_frame) or its L3S input hook"
            }
            Some("vlan") => "VLAN untagging (vlan_do_receive)",
            Some("veth" | "netkit") => "a tc bpf_redirect_peer into it (skb_do_redirect)",
            _ => "a receive path without a hook",
        };
        let how = match probes.backend(Hook::RxAnother) {
            Some(b) => format!("the {b} hook on it did not see them"),
            None => "the fentry or kprobe backend would see them (this kernel offers \
                     neither here: see kernel.fallbacks)"
                .to_string(),
        };
        out.push(format!(
            "rx_unseen: {}/{}: the kernel counted {kernel} receives, sirqtop saw {}: {unseen} \
             came through {path}, which no tracepoint sees; {how}",
            i.netns_label, i.name, i.counters.rx_packets
        ));
    }
    out
}
