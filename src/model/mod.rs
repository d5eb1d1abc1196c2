//! Snapshots of what the kernel side counted: pure data, merged and differenced here,
//! read by every face (JSON, TUI, diff).

pub mod hist;
pub mod path;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use hist::Histogram;
pub use path::{Path, PathHop, PathHopKey};

/// Softirq vector names, in kernel order (index = vector number).
/// The count, and NET_RX/NET_TX, come from bpf/sirqtop.h through the skeleton.
pub const VECTOR_NAMES: [&str; crate::bpf::limits::NR_VECTORS] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];
pub const NET_RX: usize = crate::bpf::limits::VEC_NET_RX;
pub const NET_TX: usize = crate::bpf::limits::VEC_NET_TX;

/// An interface is (netns cookie, ifindex): every pod has its own `eth0`, and the kernel
/// reuses a dead namespace's inode at once but never its cookie. The inode is what users
/// know (`ls -i`, `ip netns identify`); the cookie is 0 on kernels without one (< 5.12),
/// where (inode, ifindex) is all there is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct IfaceKey {
    pub netns: u32,
    pub ifindex: u32,
    pub cookie: u64,
}

impl IfaceKey {
    /// A key from a namespace inode and ifindex alone (no cookie known).
    pub fn new(netns: u32, ifindex: u32) -> IfaceKey {
        IfaceKey {
            netns,
            ifindex,
            cookie: 0,
        }
    }
}

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

/// Per-interface counters (summed over CPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IfaceCounters {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_enqueued: u64,
    pub rx_packets: u64,
    pub net_rx_raises: u64,
    pub softirq_ns: u64,
    /// skbs freed as dropped while on this device.
    pub dropped: u64,
    /// Polls of the device's own NAPI (with --napi-polls).
    pub napi_polls: u64,
    /// Packets it received without a backlog enqueue: from its own NAPI.
    pub napi_packets: u64,
}

impl IfaceCounters {
    pub fn merge(&mut self, o: &IfaceCounters) {
        self.tx_packets = self.tx_packets.saturating_add(o.tx_packets);
        self.tx_bytes = self.tx_bytes.saturating_add(o.tx_bytes);
        self.rx_enqueued = self.rx_enqueued.saturating_add(o.rx_enqueued);
        self.rx_packets = self.rx_packets.saturating_add(o.rx_packets);
        self.net_rx_raises = self.net_rx_raises.saturating_add(o.net_rx_raises);
        self.softirq_ns = self.softirq_ns.saturating_add(o.softirq_ns);
        self.dropped = self.dropped.saturating_add(o.dropped);
        self.napi_polls = self.napi_polls.saturating_add(o.napi_polls);
        self.napi_packets = self.napi_packets.saturating_add(o.napi_packets);
    }
    pub fn delta(&self, e: &IfaceCounters) -> IfaceCounters {
        IfaceCounters {
            tx_packets: self.tx_packets.saturating_sub(e.tx_packets),
            tx_bytes: self.tx_bytes.saturating_sub(e.tx_bytes),
            rx_enqueued: self.rx_enqueued.saturating_sub(e.rx_enqueued),
            rx_packets: self.rx_packets.saturating_sub(e.rx_packets),
            net_rx_raises: self.net_rx_raises.saturating_sub(e.net_rx_raises),
            softirq_ns: self.softirq_ns.saturating_sub(e.softirq_ns),
            dropped: self.dropped.saturating_sub(e.dropped),
            napi_polls: self.napi_polls.saturating_sub(e.napi_polls),
            napi_packets: self.napi_packets.saturating_sub(e.napi_packets),
        }
    }
    pub fn is_zero(&self) -> bool {
        *self == IfaceCounters::default()
    }
}

/// The other end of a veth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRef {
    pub netns: u32,
    pub ifindex: u32,
    /// The peer namespace's cookie; 0 when unknown.
    #[serde(default)]
    pub cookie: u64,
    pub name: Option<String>,
    /// Label of the peer's namespace (ip-netns name, "host", container, comm[pid]).
    pub netns_label: Option<String>,
}

/// One interface's identity and numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub key: IfaceKey,
    pub name: String,
    pub kind: Option<String>,
    /// `ip netns` name of its namespace, if it has one.
    pub netns_name: Option<String>,
    /// What an operator recognises the namespace by ("host", ip-netns name, container, comm[pid]).
    pub netns_label: String,
    /// The container owning the namespace, from its first process's cgroup.
    pub container: Option<crate::netns::ContainerRef>,
    pub peer: Option<PeerRef>,
    pub counters: IfaceCounters,
    pub veth_hop: Histogram,
    pub backlog_wait: Histogram,
    /// Drops by kernel drop reason (`NOT_SPECIFIED`, `PKT_TOO_BIG`, ...; `reason:N` where
    /// the running kernel's BTF does not name it).
    pub drop_reasons: BTreeMap<String, u64>,
    /// The interface (or its namespace) no longer exists; numbers are kept.
    pub gone: bool,
}

/// How an interface's packets were received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RxPath {
    /// Enqueued to the per-CPU backlog (netif_rx), received by process_backlog.
    Backlog,
    /// Polled by its own NAPI (veth with XDP or GRO, NICs, gro_cells).
    Napi,
    /// Both were seen.
    Both,
}

impl Interface {
    pub fn new(key: IfaceKey) -> Self {
        Interface {
            key,
            name: format!("if{}", key.ifindex),
            kind: None,
            netns_name: None,
            netns_label: format!("netns:{}", key.netns),
            container: None,
            peer: None,
            counters: IfaceCounters::default(),
            veth_hop: Histogram::default(),
            backlog_wait: Histogram::default(),
            drop_reasons: BTreeMap::new(),
            gone: false,
        }
    }

    /// The receive path(s) seen; None when nothing was received.
    pub fn rx_path(&self) -> Option<RxPath> {
        let c = &self.counters;
        match (c.rx_enqueued > 0, c.napi_packets > 0) {
            (true, true) => Some(RxPath::Both),
            (true, false) => Some(RxPath::Backlog),
            (false, true) => Some(RxPath::Napi),
            // --lite cannot tell NAPI packets apart; received, never enqueued: NAPI.
            (false, false) if c.rx_packets > 0 => Some(RxPath::Napi),
            (false, false) => None,
        }
    }

    /// NET_RX time per received packet, None when nothing was received.
    pub fn softirq_ns_per_packet(&self) -> Option<f64> {
        (self.counters.rx_packets > 0)
            .then(|| self.counters.softirq_ns as f64 / self.counters.rx_packets as f64)
    }

    pub fn is_active(&self) -> bool {
        !self.counters.is_zero() || !self.veth_hop.is_empty() || !self.backlog_wait.is_empty()
    }

    /// The same interface's activity since `earlier` (identity from `self`).
    pub fn delta(&self, earlier: &Interface) -> Interface {
        Interface {
            counters: self.counters.delta(&earlier.counters),
            veth_hop: self.veth_hop.delta(&earlier.veth_hop),
            backlog_wait: self.backlog_wait.delta(&earlier.backlog_wait),
            drop_reasons: self
                .drop_reasons
                .iter()
                .map(|(r, n)| {
                    let before = earlier.drop_reasons.get(r).copied().unwrap_or(0);
                    (r.clone(), n.saturating_sub(before))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            ..self.clone()
        }
    }
}

/// One softirq vector on one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VectorStats {
    pub raises: u64,
    pub runs: u64,
    pub run_ns: u64,
    pub ksoftirqd_runs: u64,
    pub run: Histogram,
    pub raise_to_run: Histogram,
}

impl VectorStats {
    pub fn merge(&mut self, o: &VectorStats) {
        self.raises = self.raises.saturating_add(o.raises);
        self.runs = self.runs.saturating_add(o.runs);
        self.run_ns = self.run_ns.saturating_add(o.run_ns);
        self.ksoftirqd_runs = self.ksoftirqd_runs.saturating_add(o.ksoftirqd_runs);
        self.run.merge(&o.run);
        self.raise_to_run.merge(&o.raise_to_run);
    }
    pub fn delta(&self, e: &VectorStats) -> VectorStats {
        VectorStats {
            raises: self.raises.saturating_sub(e.raises),
            runs: self.runs.saturating_sub(e.runs),
            run_ns: self.run_ns.saturating_sub(e.run_ns),
            ksoftirqd_runs: self.ksoftirqd_runs.saturating_sub(e.ksoftirqd_runs),
            run: self.run.delta(&e.run),
            raise_to_run: self.raise_to_run.delta(&e.raise_to_run),
        }
    }
    pub fn is_zero(&self) -> bool {
        self.raises == 0 && self.runs == 0
    }
}

/// Per-CPU softirq statistics, indexed by vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu: u32,
    pub vectors: [VectorStats; 10],
}

impl CpuStats {
    pub fn new(cpu: u32) -> Self {
        CpuStats {
            cpu,
            vectors: [VectorStats::default(); 10],
        }
    }
    pub fn delta(&self, e: &CpuStats) -> CpuStats {
        let mut d = CpuStats::new(self.cpu);
        for (i, v) in d.vectors.iter_mut().enumerate() {
            *v = self.vectors[i].delta(&e.vectors[i]);
        }
        d
    }
}

/// What the tool itself lost; never silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Loss {
    /// Ring-buffer records that could not be reserved.
    pub ringbuf_dropped: u64,
    /// In-flight skb entries overwritten before their receive.
    pub inflight_evicted: u64,
    /// Events not counted because the interface table was full.
    pub iface_table_full: u64,
    /// NET_RX raises that followed no counted enqueue and that no device's NAPI poll
    /// claimed (re-raises, namespaces filtered out).
    pub raises_unattributed: u64,
    /// Sampled raises whose kernel stack could not be stored (raise_sites undercount).
    pub stack_lost: u64,
    /// In-flight entries of a previous owner of an skb address, discarded unused.
    pub inflight_stale: u64,
    /// Drops not counted by reason because the reason table was full (still in `dropped`).
    pub drop_reasons_full: u64,
    /// Receives not counted on their path because the path table was full.
    #[serde(default)]
    pub path_table_full: u64,
}

impl Loss {
    pub fn delta(&self, e: &Loss) -> Loss {
        Loss {
            ringbuf_dropped: self.ringbuf_dropped.saturating_sub(e.ringbuf_dropped),
            inflight_evicted: self.inflight_evicted.saturating_sub(e.inflight_evicted),
            iface_table_full: self.iface_table_full.saturating_sub(e.iface_table_full),
            raises_unattributed: self
                .raises_unattributed
                .saturating_sub(e.raises_unattributed),
            stack_lost: self.stack_lost.saturating_sub(e.stack_lost),
            inflight_stale: self.inflight_stale.saturating_sub(e.inflight_stale),
            drop_reasons_full: self.drop_reasons_full.saturating_sub(e.drop_reasons_full),
            path_table_full: self.path_table_full.saturating_sub(e.path_table_full),
        }
    }
}

/// One attached BPF program's own cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramCost {
    pub name: String,
    pub hook: Hook,
    pub backend: Backend,
    /// From kernel BPF stats; None when stats were not enabled.
    pub run_count: Option<u64>,
    pub run_time_ns: Option<u64>,
}

/// Where softirqs of one vector were raised from: a kernel stack, the interface whose
/// enqueue caused the raise (None when no counted enqueue did), and how many raises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaiseSite {
    pub iface: Option<IfaceKey>,
    pub vector: usize,
    /// Raises whose stack was sampled here.
    pub samples: u64,
    /// The raises of this (interface, vector) apportioned to this stack by its share of the
    /// samples; the counts of one (interface, vector) sum to its raises.
    pub count: u64,
    /// Symbolized frames, innermost first ("veth_xmit+0x1a4").
    pub frames: Vec<String>,
}

/// Splits `total` in proportion to `weights` (largest remainder), so the parts sum to
/// `total` exactly. All zero when the weights are.
pub fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| w as u128).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let num = total as u128 * w as u128;
            ((num / sum) as u64, num % sum)
        })
        .collect();
    let mut parts: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let mut left = total - parts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// Everything counted since the probes were attached, at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Nanoseconds since the probes were attached.
    pub elapsed_ns: u64,
    pub interfaces: Vec<Interface>,
    pub cpus: Vec<CpuStats>,
    pub loss: Loss,
    pub programs: Vec<ProgramCost>,
    /// Sampled raise sites (empty when stacks are off), most raises first.
    pub raise_sites: Vec<RaiseSite>,
    /// Path hops as the kernel counted them (empty with --lite); see [`Snapshot::paths`].
    pub path_hops: Vec<PathHop>,
}

impl Snapshot {
    pub fn interface(&self, key: IfaceKey) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.key == key)
    }

    /// Activity between `earlier` and `self`: counters, histograms and CPU stats are
    /// differences; interfaces new since `earlier` are taken whole.
    pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
        let prev: std::collections::HashMap<IfaceKey, &Interface> =
            earlier.interfaces.iter().map(|i| (i.key, i)).collect();
        let interfaces = self
            .interfaces
            .iter()
            .map(|i| match prev.get(&i.key) {
                Some(p) => i.delta(p),
                None => i.clone(),
            })
            .collect();
        let cpus = self
            .cpus
            .iter()
            .map(|c| match earlier.cpus.iter().find(|e| e.cpu == c.cpu) {
                Some(e) => c.delta(e),
                None => c.clone(),
            })
            .collect();
        Snapshot {
            elapsed_ns: self.elapsed_ns.saturating_sub(earlier.elapsed_ns),
            interfaces,
            cpus,
            loss: self.loss.delta(&earlier.loss),
            programs: self
                .programs
                .iter()
                .map(|p| {
                    let e = earlier.programs.iter().find(|e| e.name == p.name);
                    ProgramCost {
                        run_count: sub_opt(p.run_count, e.and_then(|e| e.run_count)),
                        run_time_ns: sub_opt(p.run_time_ns, e.and_then(|e| e.run_time_ns)),
                        ..p.clone()
                    }
                })
                .collect(),
            raise_sites: self
                .raise_sites
                .iter()
                .map(|r| {
                    let e = earlier.raise_sites.iter().find(|e| {
                        e.iface == r.iface && e.vector == r.vector && e.frames == r.frames
                    });
                    RaiseSite {
                        samples: r.samples.saturating_sub(e.map_or(0, |e| e.samples)),
                        count: r.count.saturating_sub(e.map_or(0, |e| e.count)),
                        ..r.clone()
                    }
                })
                .filter(|r| r.count > 0 || r.samples > 0)
                .collect(),
            path_hops: path::delta(&self.path_hops, &earlier.path_hops),
        }
    }

    /// The paths of this snapshot with their hop chains and costs; `av` says which
    /// per-interface costs were measured.
    pub fn paths(&self, av: &Availability) -> Vec<Path> {
        path::build(
            &self.path_hops,
            &self.interfaces,
            av.raises,
            av.softirq_time,
        )
    }

    /// Raise sites caused by one interface's enqueues, most raises first.
    pub fn raise_sites_of(&self, key: IfaceKey) -> impl Iterator<Item = &RaiseSite> {
        self.raise_sites
            .iter()
            .filter(move |r| r.iface == Some(key))
    }

    /// Sum of one vector over all CPUs.
    pub fn vector_total(&self, vec: usize) -> VectorStats {
        let mut t = VectorStats::default();
        for c in &self.cpus {
            t.merge(&c.vectors[vec]);
        }
        t
    }
}

fn sub_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_sub(b)),
        (a, _) => a,
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
    out
}

/// Facts about a capture that do not change while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureMeta {
    pub kernel_release: String,
    pub probes: ProbeReport,
    pub availability: Availability,
    /// Wall-clock time the probes were attached.
    pub started_at: std::time::SystemTime,
    pub netns_filter: Vec<u32>,
    pub ncpus: u32,
    pub bpf_stats: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(netns: u32, ifindex: u32, tx: u64) -> Interface {
        let mut i = Interface::new(IfaceKey::new(netns, ifindex));
        i.counters.tx_packets = tx;
        i.veth_hop.record(1000);
        i
    }

    #[test]
    fn snapshot_delta_differences_matching_keys() {
        let a = Snapshot {
            elapsed_ns: 1_000,
            interfaces: vec![iface(1, 2, 10)],
            cpus: vec![],
            loss: Loss::default(),
            programs: vec![],
            raise_sites: vec![],
            path_hops: vec![],
        };
        let mut b = a.clone();
        b.elapsed_ns = 3_000;
        b.interfaces[0].counters.tx_packets = 25;
        b.interfaces[0].veth_hop.record(5000);
        b.interfaces.push(iface(9, 2, 7));
        let d = b.delta(&a);
        assert_eq!(d.elapsed_ns, 2_000);
        let one = d.interface(IfaceKey::new(1, 2)).unwrap();
        assert_eq!(one.counters.tx_packets, 15);
        assert_eq!(one.veth_hop.count, 1);
        let new = d.interface(IfaceKey::new(9, 2)).unwrap();
        assert_eq!(new.counters.tx_packets, 7);
    }

    #[test]
    fn availability_follows_hooks() {
        let mut r = ProbeReport::default();
        r.attached
            .insert(Hook::VethXmit, (Backend::Tracepoint, "tp_btf".into()));
        r.attached
            .insert(Hook::NetifReceive, (Backend::Tracepoint, "tp_btf".into()));
        let a = Availability::from_report(&r);
        assert!(a.tx && a.receive && a.veth_hop);
        assert!(!a.enqueue && !a.raises && !a.backlog_wait && !a.softirq_time);
    }

    #[test]
    fn blind_raise_hook_is_reported() {
        let mut r = ProbeReport::default();
        r.attached
            .insert(Hook::SoftirqRaise, (Backend::Kprobe, "kprobe".into()));
        r.attached
            .insert(Hook::SoftirqRun, (Backend::Tracepoint, "tp_btf".into()));
        let mut cpu = CpuStats::new(0);
        cpu.vectors[NET_RX].runs = 500;
        let mut s = Snapshot {
            elapsed_ns: 1,
            interfaces: vec![],
            cpus: vec![cpu],
            loss: Loss::default(),
            programs: vec![],
            raise_sites: vec![],
            path_hops: vec![],
        };
        let w = coverage_warnings(&r, &s);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("softirq_raise: the kprobe probe saw 0 NET_RX raises for 500"),
            "{w:?}"
        );
        s.cpus[0].vectors[NET_RX].raises = 499;
        assert!(coverage_warnings(&r, &s).is_empty());
        r.attached
            .insert(Hook::SoftirqRaise, (Backend::Tracepoint, "tp_btf".into()));
        s.cpus[0].vectors[NET_RX].raises = 0;
        assert!(
            coverage_warnings(&r, &s).is_empty(),
            "tracepoints see every raise"
        );
    }

    #[test]
    fn apportion_sums_exactly() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(100, &[3, 1]), vec![75, 25]);
        assert_eq!(apportion(7, &[0, 0]), vec![0, 0]);
        assert_eq!(apportion(0, &[5]), vec![0]);
        let p = apportion(1_000_003, &[17, 5, 9, 1]);
        assert_eq!(p.iter().sum::<u64>(), 1_000_003);
        assert!(p[0] > p[2] && p[2] > p[1] && p[1] > p[3]);
    }

    #[test]
    fn per_packet_cost_needs_packets() {
        let mut i = Interface::new(IfaceKey::new(1, 1));
        assert_eq!(i.softirq_ns_per_packet(), None);
        i.counters.rx_packets = 4;
        i.counters.softirq_ns = 10_000;
        assert_eq!(i.softirq_ns_per_packet(), Some(2500.0));
    }
}
