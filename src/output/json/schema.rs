//! The document's types, one per JSON object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Histogram;

/// One end or hop of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPathEnd {
    pub netns_inode: u32,
    pub ifindex: u32,
    #[serde(default)]
    pub netns_cookie: u64,
    pub name: Option<String>,
    pub netns_label: Option<String>,
}

/// One hop's share of a path's cost: its receiver's own numbers per received packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonHopCost {
    pub interface: JsonPathEnd,
    pub backlog_enqueues_per_packet: Option<f64>,
    pub net_rx_raises_per_packet: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonPath {
    pub from: JsonPathEnd,
    pub to: JsonPathEnd,
    pub hops: u32,
    /// The receivers before `to`, in order.
    pub via: Vec<JsonPathEnd>,
    pub packets: u64,
    /// Packets whose first transmit ran in a NET_RX softirq (a reply, clone or copy made
    /// while receiving another packet): their path may have begun earlier.
    pub origin_in_softirq: u64,
    pub backlog_enqueues_per_packet: f64,
    pub net_rx_raises_per_packet: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
    pub hop_costs: Vec<JsonHopCost>,
    /// First transmit -> received by `to`.
    pub latency: JsonHist,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonIfaceRef {
    pub netns_inode: u32,
    pub ifindex: u32,
    #[serde(default)]
    pub netns_cookie: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRaiseSite {
    /// The interface whose backlog enqueue caused these raises; null when none did.
    pub interface: Option<JsonIfaceRef>,
    pub vector: String,
    /// Raises apportioned to this stack by its share of the samples; per (interface,
    /// vector) the counts sum to that interface's raises.
    pub count: u64,
    /// Raises whose stack was actually sampled here.
    pub samples: u64,
    /// Innermost first, as `function+0xoffset`.
    pub frames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    pub release: String,
    /// Logical hook -> "kprobe" | "fentry" | "tracepoint"; a hook that could not be
    /// attached is absent and its metrics are null.
    pub backends: BTreeMap<String, String>,
    /// Logical hook -> exact mechanism ("tp_btf", "raw_tp", "fentry", "kprobe").
    #[serde(default)]
    pub mechanisms: BTreeMap<String, String>,
    /// Why a better backend was not used, one line per skipped candidate.
    pub fallbacks: Vec<String>,
    /// What the capture's own numbers say a hook missed (see README, Troubleshooting).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The `/proc/net/softnet_stat` columns this kernel prints (others are null in
    /// `cpus[].softnet`); empty if the file could not be read.
    #[serde(default)]
    pub softnet_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    pub started_at: String,
    pub duration_ns: u64,
    pub netns_filter: Vec<u32>,
    #[serde(default)]
    pub ncpus: u32,
    /// The --filter expression (null: every packet counts).
    #[serde(default)]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonPeer {
    pub netns_inode: u32,
    pub ifindex: u32,
    pub name: Option<String>,
    #[serde(default)]
    pub netns_cookie: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonInterface {
    pub netns_inode: u32,
    /// Never reused, unlike the inode: two pods whose namespaces had the same inode have
    /// different cookies. 0 on kernels without netns cookies (< 5.12).
    #[serde(default)]
    pub netns_cookie: u64,
    pub netns_name: Option<String>,
    #[serde(default)]
    pub netns_label: Option<String>,
    /// The container owning the namespace (from its first process's cgroup), if any.
    #[serde(default)]
    pub container: Option<crate::netns::ContainerRef>,
    pub ifindex: u32,
    pub name: String,
    pub kind: Option<String>,
    pub peer: Option<JsonPeer>,
    #[serde(default)]
    pub gone: bool,
    pub tx_packets: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_enqueued: Option<u64>,
    pub rx_packets: Option<u64>,
    /// The device's own rx_packets over the capture (rtnetlink statistics); null where
    /// not known at both ends.
    #[serde(default)]
    pub kernel_rx_packets: Option<u64>,
    /// kernel_rx_packets - rx_packets when positive, else 0: receives the kernel counted
    /// on the device that sirqtop did not see (see `kernel.backends.rx_another`).
    #[serde(default)]
    pub rx_unseen: Option<u64>,
    pub net_rx_raises: Option<u64>,
    pub softirq_ns: Option<u64>,
    pub softirq_ns_per_packet: Option<f64>,
    /// skbs freed as dropped while on this device (null without the skb:kfree_skb hook).
    #[serde(default)]
    pub dropped: Option<u64>,
    /// Those drops by kernel drop reason.
    #[serde(default)]
    pub drop_reasons: BTreeMap<String, u64>,
    /// How its packets were received: backlog (netif_rx), napi (its own NAPI poll), both.
    #[serde(default)]
    pub rx_path: Option<crate::model::RxPath>,
    /// Packets received without a backlog enqueue, i.e. from the device's own NAPI (null
    /// with --lite).
    #[serde(default)]
    pub napi_packets: Option<u64>,
    /// Polls of the device's own NAPI (null unless --napi-polls).
    #[serde(default)]
    pub napi_polls: Option<u64>,
    /// Its transmits to the peer's own NAPI never received as the same skb: an XDP
    /// program on the peer copied them (or GRO merged them). Not a loss; kept apart from
    /// `loss.inflight_evicted` (null with --lite).
    #[serde(default)]
    pub napi_replaced: Option<u64>,
    pub latency: Latency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub veth_hop: Option<JsonHist>,
    pub backlog_wait: Option<JsonHist>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonHist {
    pub unit: String,
    pub count: u64,
    pub sum: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: u64,
    /// Non-empty log2 buckets: `count` values fell in (previous bucket's le, le].
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub le: u64,
    pub count: u64,
}

/// One payer of softirq time: the task a softirq ran on, by its network namespace (or
/// idle, ksoftirqd).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonPayer {
    /// "idle", "ksoftirqd", "_overflow" or the namespace's label (as its interfaces').
    pub payer: String,
    pub kind: crate::model::PayerKind,
    /// The namespace of a task payer (null for idle/ksoftirqd).
    pub netns_inode: Option<u32>,
    pub netns_cookie: Option<u64>,
    /// Softirq ns charged, per vector (vectors with runs only).
    pub ns: BTreeMap<String, u64>,
    pub runs: BTreeMap<String, u64>,
    pub total_ns: u64,
    /// total_ns over the capture's duration: the share of one CPU it paid.
    pub cpu_share: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonCpu {
    pub cpu: u32,
    pub softirqs: BTreeMap<String, JsonVector>,
    /// The kernel's receive statistics of this CPU over the capture
    /// (`/proc/net/softnet_stat`); null if unreadable or the CPU was offline.
    #[serde(default)]
    pub softnet: Option<crate::model::Softnet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonVector {
    pub raises: Option<u64>,
    pub runs: Option<u64>,
    pub run_ns: Option<u64>,
    pub ksoftirqd_runs: Option<u64>,
    pub run_hist: Option<JsonHist>,
    pub raise_to_run_hist: Option<JsonHist>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLoss {
    pub ringbuf_dropped: u64,
    pub inflight_evicted: u64,
    #[serde(default)]
    pub iface_table_full: u64,
    #[serde(default)]
    pub raises_unattributed: u64,
    #[serde(default)]
    pub stack_lost: u64,
    #[serde(default)]
    pub inflight_stale: u64,
    #[serde(default)]
    pub drop_reasons_full: u64,
    #[serde(default)]
    pub path_table_full: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overhead {
    /// Whether kernel BPF run-time stats were on (`--bpf-stats`); if not, run_count and
    /// run_time_ns are null.
    #[serde(default)]
    pub stats_enabled: bool,
    pub programs: Vec<JsonProgram>,
    /// Latency sampling (--timing-rate): `rate` timed skbs per second per CPU before
    /// sampling starts (0 = every skb timed, then the two counts are 0); `skbs_picked` new
    /// tracked skbs decided on, `skbs_timed` of them timed.
    #[serde(default)]
    pub timing: crate::model::Timing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonProgram {
    pub name: String,
    pub hook: String,
    pub backend: String,
    pub run_count: Option<u64>,
    pub run_time_ns: Option<u64>,
}

impl JsonHist {
    pub fn from_hist(h: &Histogram) -> JsonHist {
        JsonHist {
            unit: "ns".into(),
            count: h.count,
            sum: h.sum,
            p50: h.quantile(0.50),
            p90: h.quantile(0.90),
            p99: h.quantile(0.99),
            max: h.max,
            buckets: h
                .nonzero_buckets()
                .map(|(le, count)| Bucket { le, count })
                .collect(),
        }
    }

    /// Back to a histogram (for diffs of two captures).
    pub fn to_hist(&self) -> Histogram {
        let mut h = Histogram::from_parts(self.count, self.sum, self.max, Default::default());
        // Counts come from a file: saturate rather than overflow.
        for b in &self.buckets {
            let slot = &mut h.buckets[crate::model::hist::bucket_of(b.le)];
            *slot = slot.saturating_add(b.count);
        }
        h
    }
}
