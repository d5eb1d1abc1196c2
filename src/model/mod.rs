//! Snapshots of what the kernel side counted: pure data, merged and differenced here,
//! read by every face (JSON, TUI, diff).

mod cpu;
pub mod hist;
mod iface;
pub mod path;
pub mod payer;
mod probe;
pub mod slow;
pub mod softnet;

use serde::{Deserialize, Serialize};

pub use cpu::{CpuStats, VectorStats};
pub use hist::Histogram;
pub use iface::{IfaceCounters, IfaceKey, Interface, PeerRef, RxPath, UNSEEN_MIN, UNSEEN_SHARE};
pub use path::{Path, PathHop, PathHopKey};
pub use payer::{Payer, PayerKey, PayerKind};
pub use probe::{coverage_warnings, Availability, Backend, Hook, ProbeReport};
pub use slow::{SlowEvent, SlowKind, SlowSoftirqs};
pub use softnet::Softnet;

/// Softirq vector names, in kernel order (index = vector number).
/// The count, and NET_RX/NET_TX, come from bpf/sirqtop.h through the skeleton.
pub const VECTOR_NAMES: [&str; crate::bpf::limits::NR_VECTORS] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];
pub const NET_RX: usize = crate::bpf::limits::VEC_NET_RX;
pub const NET_TX: usize = crate::bpf::limits::VEC_NET_TX;

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
    /// Softirq time by the task it ran on (empty without the softirq run hook).
    pub payers: Vec<Payer>,
    /// Slow softirq runs and delays (`--slow`).
    pub slow: SlowSoftirqs,
    /// How many skbs were timed for the latency histograms (--timing-rate).
    pub timing: Timing,
}

/// Latency sampling (--timing-rate): the rate asked for and what the kernel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timing {
    /// Timed skbs per second per CPU before sampling starts; 0 = every skb is timed.
    pub rate: u32,
    /// New tracked skbs decided on (0 when rate is 0: no decision is made).
    pub skbs_picked: u64,
    /// Of those, timed: each of their samples weighs picked / timed on average.
    pub skbs_timed: u64,
}

impl Timing {
    pub fn delta(&self, e: &Timing) -> Timing {
        Timing {
            rate: self.rate,
            skbs_picked: self.skbs_picked.saturating_sub(e.skbs_picked),
            skbs_timed: self.skbs_timed.saturating_sub(e.skbs_timed),
        }
    }

    /// The share of new skbs timed, in percent, when the histograms were sampled (their
    /// counts are then weighted estimates); None when every skb was timed.
    pub fn sampled_pct(&self) -> Option<f64> {
        (self.skbs_timed < self.skbs_picked)
            .then(|| 100.0 * self.skbs_timed as f64 / self.skbs_picked as f64)
    }
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
            payers: payer::delta(&self.payers, &earlier.payers),
            slow: self.slow.delta(&earlier.slow),
            timing: self.timing.delta(&earlier.timing),
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

/// Facts about a capture that do not change while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureMeta {
    pub kernel_release: String,
    pub probes: ProbeReport,
    pub availability: Availability,
    /// Wall-clock time the probes were attached.
    pub started_at: std::time::SystemTime,
    pub netns_filter: Vec<u32>,
    /// The --filter expression, if any.
    pub filter: Option<String>,
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
            payers: vec![],
            slow: Default::default(),
            timing: Default::default(),
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
            payers: vec![],
            slow: Default::default(),
            timing: Default::default(),
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

    #[test]
    fn sampling_is_reported_only_when_some_skbs_went_untimed() {
        let t = |picked, timed| Timing {
            rate: 20_000,
            skbs_picked: picked,
            skbs_timed: timed,
        };
        // --timing-rate 0: no decisions made; below the rate: every one timed.
        assert_eq!(Timing::default().sampled_pct(), None);
        assert_eq!(t(500, 500).sampled_pct(), None);
        assert_eq!(t(1000, 250).sampled_pct(), Some(25.0));
        assert_eq!(t(1000, 0).sampled_pct(), Some(0.0));
        // The last interval's share, from two cumulative readings.
        assert_eq!(t(3000, 1250).delta(&t(1000, 250)).sampled_pct(), Some(50.0));
    }

    #[test]
    fn unseen_receives_are_notable_beyond_what_a_live_reading_leaves() {
        let dev = |kernel: u64, rx: u64, enq: u64| {
            let mut i = Interface::new(IfaceKey::new(1, 2));
            i.counters.rx_packets = rx;
            i.counters.rx_enqueued = enq;
            i.kernel_rx_packets = Some(kernel);
            i
        };
        // A hidden receive path: nothing seen of what the device received.
        assert_eq!(dev(1000, 0, 0).rx_unseen_notable(), Some(1000));
        // Still in the backlog when read: enqueued, not yet received.
        assert_eq!(dev(3500, 3294, 3500).rx_unseen(), Some(206));
        assert_eq!(dev(3500, 3294, 3500).rx_unseen_notable(), None);
        // A few at a capture's edge, or under 1 % of a large count.
        assert_eq!(dev(8, 0, 0).rx_unseen_notable(), None);
        assert_eq!(
            dev(2_784_922, 2_784_229, 2_784_229).rx_unseen_notable(),
            None
        );
        // Seen and hidden at once: the hidden part counts.
        assert_eq!(
            dev(100_000, 90_000, 90_000).rx_unseen_notable(),
            Some(10_000)
        );
        assert_eq!(
            Interface::new(IfaceKey::new(1, 2)).rx_unseen_notable(),
            None
        );
    }
}
