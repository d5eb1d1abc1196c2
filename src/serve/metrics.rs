//! The Prometheus exposition of a snapshot (a public contract, like the JSON schema: see
//! README "Prometheus metrics"). Pure: [`Exposition`] is a prometheus-client
//! [`Collector`] over the latest published snapshot, encoded at scrape time; the BPF
//! side's log2 histograms become cumulative `le` buckets in seconds.

use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::fold::Folder;
use crate::model::{
    Availability, CaptureMeta, Histogram, IfaceCounters, Interface, Snapshot, VectorStats,
    VECTOR_NAMES,
};

/// Histograms are exposed from `2^HIST_LOW_LOG2` ns (256 ns, everything faster folded
/// into it) to `2^HIST_HIGH_LOG2` ns (~1.07 s), then `+Inf`: 23 finite buckets, enough for
/// veth hops (µs) and backlog waits (up to ms) without the 32 kernel buckets' series.
pub const HIST_LOW_LOG2: usize = 8;
pub const HIST_HIGH_LOG2: usize = 30;

/// The name of the series that sums the interfaces beyond `--max-interfaces`.
pub const OTHER: &str = "_other";

/// Histogram families that can be switched off (`--no-histogram FAMILY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HistFamily {
    VethHop,
    BacklogWait,
    SoftirqRun,
    SoftirqDelay,
}

impl HistFamily {
    pub const ALL: [HistFamily; 4] = [
        HistFamily::VethHop,
        HistFamily::BacklogWait,
        HistFamily::SoftirqRun,
        HistFamily::SoftirqDelay,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            HistFamily::VethHop => "veth_hop",
            HistFamily::BacklogWait => "backlog_wait",
            HistFamily::SoftirqRun => "softirq_run",
            HistFamily::SoftirqDelay => "softirq_delay",
        }
    }
}

impl std::str::FromStr for HistFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HistFamily::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = HistFamily::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown histogram family '{s}' (one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// What the exposition shows.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Keep the N interfaces with the most softirq time (then receive packets, then
    /// transmit packets) as their own series and sum the rest into `interface="_other"`.
    pub max_interfaces: Option<usize>,
    /// Histogram families left out.
    pub no_histograms: Vec<HistFamily>,
}

/// A snapshot ready to be scraped: the serving loop replaces it, scrapes read it.
#[derive(Debug, Clone)]
pub struct Published {
    pub meta: Arc<CaptureMeta>,
    pub snap: Arc<Snapshot>,
}

/// What a scrape encodes: the last published snapshot and its interface series.
#[derive(Debug, Clone)]
struct Latest {
    published: Published,
    series: Arc<Vec<Series>>,
}

/// The prometheus-client collector: encodes whatever was last published.
#[derive(Debug, Clone)]
pub struct Exposition {
    latest: Arc<RwLock<Option<Latest>>>,
    /// The interface series' history: kept across publishes (see [`Folder`]).
    folder: Arc<Mutex<Folder>>,
    pub opts: Arc<MetricsOptions>,
}

impl Exposition {
    pub fn new(opts: MetricsOptions) -> Exposition {
        Exposition {
            latest: Arc::new(RwLock::new(None)),
            folder: Arc::new(Mutex::new(Folder::new(opts.max_interfaces))),
            opts: Arc::new(opts),
        }
    }

    /// A registry holding just this collector.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(self.clone()));
        r
    }

    /// Replaces what scrapes see. Publishes follow each other (one serving loop): the
    /// series grow from one to the next.
    pub fn publish(&self, p: Published) {
        // A poisoned lock only means a scrape panicked mid-read: the data is whole.
        let series = self
            .folder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fold(&p.snap.interfaces);
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(Latest {
            published: p,
            series: Arc::new(series),
        });
    }

    pub fn is_ready(&self) -> bool {
        self.latest
            .read()
            .map(|l| l.is_some())
            .unwrap_or_else(|e| e.into_inner().is_some())
    }
}

/// Encodes in the OpenMetrics text format (with `# EOF`).
pub fn encode_openmetrics(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r)?;
    Ok(s)
}

/// Encodes in the Prometheus text format 0.0.4 (what `promtool check metrics` and older
/// scrapers read).
pub fn encode_prometheus(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut s, r)?;
    Ok(s)
}

type Labels = Vec<(&'static str, String)>;

/// One series of interface metrics: the interfaces that share its labels, summed (a pod
/// recreated under the same name, or everything beyond `--max-interfaces`).
#[derive(Debug, Clone)]
pub struct Series {
    pub netns: String,
    pub interface: String,
    pub kind: String,
    pub counters: IfaceCounters,
    pub veth_hop: Histogram,
    pub backlog_wait: Histogram,
    /// Of the interface the info labels come from (present before gone).
    pub info: Option<InfoLabels>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoLabels {
    pub peer: String,
    pub peer_netns: String,
    pub pod: String,
    pub namespace: String,
    pub container: String,
}

impl Series {
    fn labels(&self) -> Labels {
        vec![
            ("netns", self.netns.clone()),
            ("interface", self.interface.clone()),
            ("kind", self.kind.clone()),
        ]
    }
}

pub(super) fn info_of(i: &Interface) -> InfoLabels {
    let c = i.container.as_ref();
    InfoLabels {
        peer: i
            .peer
            .as_ref()
            .map(|p| p.name.clone().unwrap_or_else(|| format!("if{}", p.ifindex)))
            .unwrap_or_default(),
        peer_netns: i
            .peer
            .as_ref()
            .map(|p| {
                p.netns_label
                    .clone()
                    .unwrap_or_else(|| format!("netns:{}", p.netns))
            })
            .unwrap_or_default(),
        pod: c.and_then(|c| c.pod.clone()).unwrap_or_default(),
        namespace: c.and_then(|c| c.pod_namespace.clone()).unwrap_or_default(),
        container: c.and_then(|c| c.name.clone()).unwrap_or_default(),
    }
}

/// A log2 histogram as (upper bound in seconds, count in that bucket) pairs: the first
/// folds every bucket below `2^HIST_LOW_LOG2` ns, the last is `+Inf`.
pub fn seconds_buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(HIST_HIGH_LOG2 - HIST_LOW_LOG2 + 2);
    // Kernel bucket b holds [2^b, 2^(b+1)) ns, so buckets < k are the values below 2^k.
    let below: u64 = h.buckets[..HIST_LOW_LOG2].iter().sum();
    out.push(((1u64 << HIST_LOW_LOG2) as f64 * 1e-9, below));
    for k in HIST_LOW_LOG2 + 1..=HIST_HIGH_LOG2 {
        out.push(((1u64 << k) as f64 * 1e-9, h.buckets[k - 1]));
    }
    let rest: u64 = h.buckets[HIST_HIGH_LOG2..].iter().sum();
    out.push((f64::INFINITY, rest));
    out
}

/// A histogram sample (count, sum and buckets of one label set).
struct HistSample<'a>(&'a Histogram);

impl EncodeMetric for HistSample<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        // The bucket counts are what the kernel recorded; `count` may saturate apart from
        // them on a file-fed snapshot, so the +Inf bucket and the count agree by design.
        let buckets = seconds_buckets(self.0);
        let count = buckets.iter().map(|b| b.1).sum();
        encoder.encode_histogram::<Labels>(self.0.sum as f64 * 1e-9, count, &buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes one family: a descriptor, then one sample per label set.
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut fam = enc.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, m) in samples {
        m.encode(fam.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[Series],
    value: impl Fn(&IfaceCounters) -> u64,
) -> Result<(), std::fmt::Error> {
    family(
        enc,
        name,
        help,
        None,
        MetricType::Counter,
        series
            .iter()
            .map(|s| (s.labels(), ConstCounter::new(value(&s.counters)))),
    )
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self
            .latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        encode_build_info(&mut enc, latest.as_ref().map(|l| l.published.meta.as_ref()))?;
        let Some(l) = latest else {
            return Ok(());
        };
        let p = &l.published;
        encode_snapshot(&mut enc, &p.meta, &p.snap, &l.series, &self.opts)
    }
}

fn encode_build_info(
    enc: &mut DescriptorEncoder,
    meta: Option<&CaptureMeta>,
) -> Result<(), std::fmt::Error> {
    let labels: Labels = vec![
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        (
            "kernel",
            meta.map(|m| m.kernel_release.clone()).unwrap_or_default(),
        ),
    ];
    info_family(
        enc,
        "sirqtop_build",
        "sirqtop's version and the kernel it runs on.",
        [labels],
    )
}

/// An info family: one `NAME_info{...} 1` sample per label set.
fn info_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = Labels>,
) -> Result<(), std::fmt::Error> {
    let mut fam = enc.encode_descriptor(name, help, None, MetricType::Info)?;
    for labels in samples {
        fam.encode_info(&labels)?;
    }
    Ok(())
}

/// Every family of one snapshot.
pub fn encode_snapshot(
    enc: &mut DescriptorEncoder,
    meta: &CaptureMeta,
    snap: &Snapshot,
    series: &[Series],
    opts: &MetricsOptions,
) -> Result<(), std::fmt::Error> {
    let av: &Availability = &meta.availability;
    let hist_on = |f: HistFamily| !opts.no_histograms.contains(&f);

    info_family(
        enc,
        "sirqtop_interface",
        "One series per interface to join on: its veth peer and the pod, Kubernetes \
         namespace and container owning its network namespace.",
        series.iter().filter_map(|s| {
            let i = s.info.as_ref()?;
            let mut l = s.labels();
            l.extend([
                ("peer", i.peer.clone()),
                ("peer_netns", i.peer_netns.clone()),
                ("pod", i.pod.clone()),
                ("namespace", i.namespace.clone()),
                ("container", i.container.clone()),
            ]);
            Some(l)
        }),
    )?;
    if av.tx {
        counter_family(
            enc,
            "sirqtop_interface_transmit_packets",
            "Packets transmitted by the interface (veth_xmit).",
            series,
            |c| c.tx_packets,
        )?;
        counter_family(
            enc,
            "sirqtop_interface_transmit_bytes",
            "Bytes transmitted by the interface (veth_xmit).",
            series,
            |c| c.tx_bytes,
        )?;
    }
    if av.enqueue {
        counter_family(
            enc,
            "sirqtop_interface_backlog_enqueue_packets",
            "Packets for this interface enqueued to a per-CPU backlog (netif_rx).",
            series,
            |c| c.rx_enqueued,
        )?;
    }
    if av.receive {
        counter_family(
            enc,
            "sirqtop_interface_receive_packets",
            "Packets received on the interface (netif_receive_skb).",
            series,
            |c| c.rx_packets,
        )?;
    }
    if av.raises {
        counter_family(
            enc,
            "sirqtop_interface_net_rx_raises",
            "NET_RX softirq raises caused by the interface.",
            series,
            |c| c.net_rx_raises,
        )?;
    }
    if av.softirq_time {
        family(
            enc,
            "sirqtop_interface_softirq",
            "NET_RX softirq CPU time spent receiving the interface's packets.",
            Some(&Unit::Seconds),
            MetricType::Counter,
            series.iter().map(|s| {
                (
                    s.labels(),
                    ConstCounter::new(s.counters.softirq_ns as f64 * 1e-9),
                )
            }),
        )?;
    }
    if av.drops {
        counter_family(
            enc,
            "sirqtop_interface_dropped_packets",
            "Packets freed as dropped while on the interface (skb:kfree_skb).",
            series,
            |c| c.dropped,
        )?;
    }
    // As in the JSON: known where receives are timed (not with --lite), polls with
    // --napi-polls.
    if av.backlog_wait {
        counter_family(
            enc,
            "sirqtop_interface_napi_packets",
            "Packets received without a backlog enqueue: delivered by the device's own NAPI \
             (a NIC, a veth with XDP or GRO, a tunnel).",
            series,
            |c| c.napi_packets,
        )?;
    }
    if av.napi {
        counter_family(
            enc,
            "sirqtop_interface_napi_polls",
            "Polls of the device's own NAPI (napi:napi_poll, with --napi-polls).",
            series,
            |c| c.napi_polls,
        )?;
    }
    if av.veth_hop && hist_on(HistFamily::VethHop) {
        family(
            enc,
            "sirqtop_interface_veth_hop",
            "Time from veth transmit to receive on the peer.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            series.iter().map(|s| (s.labels(), HistSample(&s.veth_hop))),
        )?;
    }
    if av.backlog_wait && hist_on(HistFamily::BacklogWait) {
        family(
            enc,
            "sirqtop_interface_backlog_wait",
            "Time from backlog enqueue to receive.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            series
                .iter()
                .map(|s| (s.labels(), HistSample(&s.backlog_wait))),
        )?;
    }
    encode_softirqs(enc, av, snap, opts)?;
    encode_self(enc, meta, snap)
}

fn cpu_vector_labels(cpu: u32, vec: usize) -> Labels {
    vec![
        ("cpu", cpu.to_string()),
        ("vector", VECTOR_NAMES[vec].to_string()),
    ]
}

fn per_cpu_vector(snap: &Snapshot) -> impl Iterator<Item = (Labels, &VectorStats)> {
    snap.cpus.iter().flat_map(|c| {
        c.vectors
            .iter()
            .enumerate()
            .map(move |(v, s)| (cpu_vector_labels(c.cpu, v), s))
    })
}

fn encode_softirqs(
    enc: &mut DescriptorEncoder,
    av: &Availability,
    snap: &Snapshot,
    opts: &MetricsOptions,
) -> Result<(), std::fmt::Error> {
    if av.cpu_raises {
        family(
            enc,
            "sirqtop_softirq_raises",
            "Softirq raises per CPU and vector.",
            None,
            MetricType::Counter,
            per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.raises))),
        )?;
    }
    if !av.softirq_runs {
        return Ok(());
    }
    family(
        enc,
        "sirqtop_softirq_runs",
        "Softirq handler runs per CPU and vector.",
        None,
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.runs))),
    )?;
    family(
        enc,
        "sirqtop_softirq_run",
        "Softirq handler CPU time per CPU and vector.",
        Some(&Unit::Seconds),
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.run_ns as f64 * 1e-9))),
    )?;
    family(
        enc,
        "sirqtop_softirq_ksoftirqd_runs",
        "Softirq handler runs in ksoftirqd (deferred under load) per CPU and vector.",
        None,
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.ksoftirqd_runs))),
    )?;
    let totals: Vec<(Labels, VectorStats)> = (0..VECTOR_NAMES.len())
        .map(|v| {
            (
                vec![("vector", VECTOR_NAMES[v].to_string())],
                snap.vector_total(v),
            )
        })
        .collect();
    if !opts.no_histograms.contains(&HistFamily::SoftirqRun) {
        family(
            enc,
            "sirqtop_softirq_run_duration",
            "Duration of one softirq handler run, per vector (all CPUs).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            totals.iter().map(|(l, s)| (l.clone(), HistSample(&s.run))),
        )?;
    }
    if !opts.no_histograms.contains(&HistFamily::SoftirqDelay) {
        family(
            enc,
            "sirqtop_softirq_raise_to_run",
            "Delay from a softirq's raise to its handler's run, per vector (all CPUs).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            totals
                .iter()
                .map(|(l, s)| (l.clone(), HistSample(&s.raise_to_run))),
        )?;
    }
    Ok(())
}

fn encode_self(
    enc: &mut DescriptorEncoder,
    meta: &CaptureMeta,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    let l = &snap.loss;
    let lost = [
        ("ringbuf_dropped", l.ringbuf_dropped),
        ("inflight_evicted", l.inflight_evicted),
        ("iface_table_full", l.iface_table_full),
        ("raises_unattributed", l.raises_unattributed),
        ("stack_lost", l.stack_lost),
        ("inflight_stale", l.inflight_stale),
        ("drop_reasons_full", l.drop_reasons_full),
        ("path_table_full", l.path_table_full),
    ];
    family(
        enc,
        "sirqtop_lost_events",
        "Events sirqtop could not count or attribute, by reason (README \"loss\").",
        None,
        MetricType::Counter,
        lost.iter()
            .map(|(r, n)| (vec![("reason", r.to_string())], ConstCounter::new(*n))),
    )?;
    info_family(
        enc,
        "sirqtop_hook",
        "How each hook is attached: backend and mechanism.",
        meta.probes.attached.iter().map(|(h, (b, mech))| {
            vec![
                ("hook", h.as_str().to_string()),
                ("backend", b.as_str().to_string()),
                ("mechanism", mech.clone()),
            ]
        }),
    )?;
    family(
        enc,
        "sirqtop_bpf_stats_enabled",
        "1 when kernel BPF statistics are on (--bpf-stats), so that program run time is known.",
        None,
        MetricType::Gauge,
        [(
            Labels::new(),
            ConstGauge::new(i64::from(
                snap.programs.iter().any(|p| p.run_count.is_some()),
            )),
        )],
    )?;
    let prog = |p: &crate::model::ProgramCost| -> Labels {
        vec![
            ("program", p.name.clone()),
            ("hook", p.hook.as_str().to_string()),
            ("backend", p.backend.as_str().to_string()),
        ]
    };
    family(
        enc,
        "sirqtop_bpf_program_runs",
        "Runs of each of sirqtop's BPF programs (with --bpf-stats).",
        None,
        MetricType::Counter,
        snap.programs
            .iter()
            .filter_map(|p| Some((prog(p), ConstCounter::new(p.run_count?)))),
    )?;
    family(
        enc,
        "sirqtop_bpf_program_run",
        "CPU time spent in each of sirqtop's BPF programs (with --bpf-stats).",
        Some(&Unit::Seconds),
        MetricType::Counter,
        snap.programs
            .iter()
            .filter_map(|p| Some((prog(p), ConstCounter::new(p.run_time_ns? as f64 * 1e-9)))),
    )?;
    family(
        enc,
        "sirqtop_uptime",
        "Time since the probes were attached.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
        [(
            Labels::new(),
            ConstGauge::new(snap.elapsed_ns as f64 * 1e-9),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Hook, IfaceKey, Loss, PeerRef, ProbeReport};
    use crate::netns::ContainerRef;
    use std::time::{Duration, UNIX_EPOCH};

    fn meta() -> CaptureMeta {
        let probes = ProbeReport::all_attached(Backend::Tracepoint, "tp_btf");
        CaptureMeta {
            kernel_release: "6.18.44".into(),
            availability: Availability::from_report(&probes),
            probes,
            started_at: UNIX_EPOCH + Duration::from_secs(1_764_028_800),
            netns_filter: vec![],
            ncpus: 1,
            bpf_stats: false,
        }
    }

    fn iface(netns: u32, ifindex: u32, label: &str, name: &str, softirq_ns: u64) -> Interface {
        let mut i = Interface::new(IfaceKey::new(netns, ifindex));
        i.name = name.into();
        i.kind = Some("veth".into());
        i.netns_label = label.into();
        i.counters.tx_packets = 10;
        i.counters.rx_packets = 7;
        i.counters.softirq_ns = softirq_ns;
        i
    }

    fn snapshot(interfaces: Vec<Interface>) -> Snapshot {
        Snapshot {
            elapsed_ns: 2_000_000_000,
            interfaces,
            cpus: vec![crate::model::CpuStats::new(0)],
            loss: Loss {
                ringbuf_dropped: 3,
                ..Loss::default()
            },
            programs: vec![],
            raise_sites: vec![],
            path_hops: vec![],
        }
    }

    fn render(snap: Snapshot, opts: MetricsOptions, prometheus: bool) -> String {
        let expo = Exposition::new(opts);
        expo.publish(Published {
            meta: Arc::new(meta()),
            snap: Arc::new(snap),
        });
        let r = expo.registry();
        if prometheus {
            encode_prometheus(&r).unwrap()
        } else {
            encode_openmetrics(&r).unwrap()
        }
    }

    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn log2_buckets_become_seconds() {
        let mut h = Histogram::default();
        for v in [100, 300, 5_000, 5_000, 3_000_000_000] {
            h.record(v);
        }
        let b = seconds_buckets(&h);
        assert_eq!(b.len(), HIST_HIGH_LOG2 - HIST_LOW_LOG2 + 2);
        assert_eq!(b[0], (256e-9, 1), "100 ns folds into the first bucket");
        assert_eq!(b[1], (512e-9, 1), "300 ns is below 512 ns");
        // 5 µs lies in [4096, 8192) ns.
        let i = b.iter().position(|x| x.0 == 8192e-9).unwrap();
        assert_eq!(b[i].1, 2);
        assert_eq!(*b.last().unwrap(), (f64::INFINITY, 1), "3 s is past 1.07 s");
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 5);
    }

    #[test]
    fn counters_histograms_and_info_of_an_interface() {
        let mut a = iface(1, 2, "shop/web-0", "eth0", 5_000);
        a.veth_hop.record(5_000);
        a.veth_hop.record(20_000);
        a.counters.napi_packets = 4;
        a.peer = Some(PeerRef {
            netns: 9,
            ifindex: 7,
            cookie: 0,
            name: Some("vethab12".into()),
            netns_label: Some("host".into()),
        });
        let mut c = ContainerRef::new("containerd", &"a".repeat(64), Some("u".into()));
        c.pod = Some("web-0".into());
        c.pod_namespace = Some("shop".into());
        c.name = Some("nginx".into());
        a.container = Some(c);
        let text = render(snapshot(vec![a]), MetricsOptions::default(), false);
        let l = r#"{netns="shop/web-0",interface="eth0",kind="veth"}"#;
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_transmit_packets_total{l}")
            ),
            Some(10.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_receive_packets_total{l}")
            ),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_napi_packets_total{l}")),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_napi_polls_total{l}")),
            Some(0.0),
            "napi:napi_poll attached here"
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_softirq_seconds_total{l}")
            ),
            Some(5e-6)
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_veth_hop_seconds_count{l}")
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_veth_hop_seconds_sum{l}")),
            Some(25e-6)
        );
        // Cumulative: both by 32.768 µs, one by 8.192 µs.
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "sirqtop_interface_veth_hop_seconds_bucket{{le=\"{le}\",\
                     netns=\"shop/web-0\",interface=\"eth0\",kind=\"veth\"}}"
                ),
            )
        };
        assert_eq!(bucket("0.000008192"), Some(1.0), "{text}");
        assert_eq!(bucket("0.000032768"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        assert!(text.contains(
            r#"sirqtop_interface_info{netns="shop/web-0",interface="eth0",kind="veth",peer="vethab12",peer_netns="host",pod="web-0",namespace="shop",container="nginx"} 1"#
        ), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"sirqtop_lost_events_total{reason="ringbuf_dropped"}"#
            ),
            Some(3.0)
        );
        assert!(text.contains("sirqtop_build_info{version="));
        assert!(text.ends_with("# EOF\n"));
        // The Prometheus text format names counters with _total in TYPE and has no EOF.
        let prom = render(
            snapshot(vec![iface(1, 2, "a", "eth0", 1)]),
            MetricsOptions::default(),
            true,
        );
        assert!(prom.contains("# TYPE sirqtop_interface_transmit_packets_total counter"));
        assert!(!prom.contains("# EOF"));
    }

    #[test]
    fn same_labels_are_one_series_and_the_tail_is_other() {
        // A StatefulSet pod recreated under its name: the gone and the new interface are
        // one series (their sum), never two samples with the same labels.
        let mut old = iface(1, 2, "shop/web-0", "eth0", 100);
        old.gone = true;
        let new = iface(3, 2, "shop/web-0", "eth0", 50);
        let series = Folder::new(None).fold(&[old, new]);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].counters.tx_packets, 20);
        assert_eq!(series[0].counters.softirq_ns, 150);

        let ifaces: Vec<Interface> = (0..5)
            .map(|n| iface(10 + n, 2, &format!("p{n}"), "eth0", u64::from(n) * 10))
            .collect();
        let series = Folder::new(Some(2)).fold(&ifaces);
        let names: Vec<&str> = series.iter().map(|s| s.netns.as_str()).collect();
        assert_eq!(
            names,
            ["p4", "p3", OTHER],
            "top 2 by softirq time, then _other"
        );
        assert_eq!(series[2].counters.tx_packets, 30);
        assert_eq!(series[2].counters.softirq_ns, 30);
        let text = render(
            snapshot(ifaces),
            MetricsOptions {
                max_interfaces: Some(2),
                ..MetricsOptions::default()
            },
            false,
        );
        assert_eq!(
            sample(
                &text,
                r#"sirqtop_interface_transmit_packets_total{netns="_other",interface="_other",kind=""}"#
            ),
            Some(30.0)
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("sirqtop_interface_info{"))
                .count(),
            2,
            "_other has no info series"
        );
    }

    #[test]
    fn families_follow_availability_and_options() {
        let mut m = meta();
        m.probes.attached.remove(&Hook::NetifRx);
        m.probes.attached.remove(&Hook::NapiPoll);
        m.availability = Availability::from_report(&m.probes);
        let expo = Exposition::new(MetricsOptions {
            no_histograms: vec![HistFamily::VethHop, HistFamily::SoftirqDelay],
            ..MetricsOptions::default()
        });
        expo.publish(Published {
            meta: Arc::new(m),
            snap: Arc::new(snapshot(vec![iface(1, 2, "a", "eth0", 1)])),
        });
        let text = encode_openmetrics(&expo.registry()).unwrap();
        assert!(!text.contains("backlog_enqueue"), "netif_rx not attached");
        assert!(
            !text.contains("sirqtop_interface_napi_polls"),
            "napi_poll not attached"
        );
        assert!(!text.contains("sirqtop_interface_veth_hop"));
        assert!(!text.contains("sirqtop_softirq_raise_to_run"));
        assert!(text.contains("sirqtop_softirq_run_duration_seconds_count{vector=\"NET_RX\"}"));
        assert!(text.contains("sirqtop_interface_transmit_packets_total{"));
        assert_eq!("all".parse::<HistFamily>().ok(), None);
        assert!("bogus"
            .parse::<HistFamily>()
            .unwrap_err()
            .contains("veth_hop, backlog_wait"));
    }

    #[test]
    fn before_the_first_snapshot_only_build_info() {
        let expo = Exposition::new(MetricsOptions::default());
        assert!(!expo.is_ready());
        let text = encode_openmetrics(&expo.registry()).unwrap();
        assert!(text.contains("sirqtop_build_info{version="), "{text}");
        assert!(!text.contains("sirqtop_interface"));
    }

    /// The metric names the shipped dashboard and rules query (deploy/) are all in a full
    /// exposition: renaming a metric breaks this test, not a user's dashboard.
    #[test]
    fn deploy_queries_use_exposed_metric_names() {
        let mut a = iface(1, 2, "shop/web-0", "eth0", 5_000);
        a.counters.dropped = 1;
        a.veth_hop.record(2_000);
        a.backlog_wait.record(1_000);
        let mut snap = snapshot(vec![a]);
        snap.programs.push(crate::model::ProgramCost {
            name: "tp_netif_receive".into(),
            hook: Hook::NetifReceive,
            backend: Backend::Tracepoint,
            run_count: Some(5),
            run_time_ns: Some(500),
        });
        let text = render(snap, MetricsOptions::default(), true);
        let exposed: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        let mut checked = 0;
        for file in ["grafana-dashboard.json", "prometheus-rules.yaml"] {
            let body = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut rest = body.as_str();
            while let Some(at) = rest.find("sirqtop_") {
                // A metric name, unless it is part of a recording rule's name (level:metric:op).
                let before = rest[..at].chars().last();
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                if before == Some(':') || rest.starts_with(':') {
                    continue;
                }
                assert!(
                    exposed.contains(name.as_str()),
                    "{file} uses {name}, not exposed"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked} names checked");
    }
}
