//! A fixed, realistic dashboard state (a small Kubernetes-like node under load) for the
//! README capture and for rendering tests. Deterministic: no clock, no randomness.

use std::time::{Duration, SystemTime};

use crate::model::hist::BUCKETS;
use crate::model::{
    Availability, Backend, CaptureMeta, CpuStats, Histogram, Hook, IfaceKey, Interface, Loss,
    PathHop, PathHopKey, PeerRef, ProbeReport, ProgramCost, RaiseSite, Snapshot, NET_RX, NET_TX,
};

use super::app::App;

const HOST: u32 = 4026531840;
const WEB: u32 = 4026532481;
const REDIS: u32 = 4026532597;
const LOADGEN: u32 = 4026532688;

/// One demo interface: identity and what it does per second.
struct Profile {
    netns: u32,
    label: &'static str,
    ifindex: u32,
    name: &'static str,
    kind: Option<&'static str>,
    peer: Option<(u32, &'static str, u32, &'static str)>,
    tx_pps: f64,
    rx_pps: f64,
    /// NET_RX raises per enqueued packet (batching makes it < 1).
    raises_per_pkt: f64,
    sirq_ns_per_pkt: f64,
    /// log2 bucket around which hop / backlog latencies sit (0 = none).
    hop_bucket: usize,
    backlog_bucket: usize,
    phase: f64,
}

fn profiles() -> Vec<Profile> {
    vec![
        Profile {
            netns: HOST,
            label: "host",
            ifindex: 14,
            name: "veth3f2a9c1",
            kind: Some("veth"),
            peer: Some((WEB, "web-7f9c/c3a1f0e2", 3, "eth0")),
            tx_pps: 41_800.0,
            rx_pps: 38_900.0,
            raises_per_pkt: 0.31,
            sirq_ns_per_pkt: 1_480.0,
            hop_bucket: 13,
            backlog_bucket: 12,
            phase: 0.0,
        },
        Profile {
            netns: WEB,
            label: "web-7f9c/c3a1f0e2",
            ifindex: 3,
            name: "eth0",
            kind: Some("veth"),
            peer: Some((HOST, "host", 14, "veth3f2a9c1")),
            tx_pps: 38_900.0,
            rx_pps: 41_800.0,
            raises_per_pkt: 0.34,
            sirq_ns_per_pkt: 1_730.0,
            hop_bucket: 14,
            backlog_bucket: 13,
            phase: 0.4,
        },
        Profile {
            netns: HOST,
            label: "host",
            ifindex: 16,
            name: "veth91be07d",
            kind: Some("veth"),
            peer: Some((REDIS, "redis-0/9b2e41d7", 3, "eth0")),
            tx_pps: 12_300.0,
            rx_pps: 12_100.0,
            raises_per_pkt: 0.52,
            sirq_ns_per_pkt: 1_210.0,
            hop_bucket: 12,
            backlog_bucket: 11,
            phase: 1.3,
        },
        Profile {
            netns: REDIS,
            label: "redis-0/9b2e41d7",
            ifindex: 3,
            name: "eth0",
            kind: Some("veth"),
            peer: Some((HOST, "host", 16, "veth91be07d")),
            tx_pps: 12_100.0,
            rx_pps: 12_300.0,
            raises_per_pkt: 0.55,
            sirq_ns_per_pkt: 1_350.0,
            hop_bucket: 12,
            backlog_bucket: 12,
            phase: 1.9,
        },
        Profile {
            netns: HOST,
            label: "host",
            ifindex: 18,
            name: "veth5d0c4e2",
            kind: Some("veth"),
            peer: Some((LOADGEN, "loadgen[4121]", 2, "eth0")),
            tx_pps: 2_950.0,
            rx_pps: 3_020.0,
            raises_per_pkt: 0.88,
            sirq_ns_per_pkt: 980.0,
            hop_bucket: 11,
            backlog_bucket: 10,
            phase: 2.6,
        },
        Profile {
            netns: LOADGEN,
            label: "loadgen[4121]",
            ifindex: 2,
            name: "eth0",
            kind: Some("veth"),
            peer: Some((HOST, "host", 18, "veth5d0c4e2")),
            tx_pps: 3_020.0,
            rx_pps: 2_950.0,
            raises_per_pkt: 0.9,
            sirq_ns_per_pkt: 1_020.0,
            hop_bucket: 11,
            backlog_bucket: 11,
            phase: 3.1,
        },
        Profile {
            netns: HOST,
            label: "host",
            ifindex: 2,
            name: "ens5",
            kind: None,
            peer: None,
            tx_pps: 0.0,
            rx_pps: 8_400.0,
            raises_per_pkt: 0.0,
            sirq_ns_per_pkt: 2_100.0,
            hop_bucket: 0,
            backlog_bucket: 0,
            phase: 0.7,
        },
    ]
}

fn wave(t: f64, phase: f64) -> f64 {
    1.0 + 0.22 * (t / 9.0 + phase).sin() + 0.08 * (t / 2.3 + phase * 2.0).sin()
}

/// Adds `n` samples around bucket `center` with a long right tail.
fn spread(h: &mut Histogram, center: usize, n: u64) {
    if center == 0 || n == 0 {
        return;
    }
    const SHAPE: [(i32, u64); 6] = [(-1, 22), (0, 55), (1, 15), (2, 5), (3, 2), (5, 1)];
    let total: u64 = SHAPE.iter().map(|s| s.1).sum();
    let mut left = n;
    for (i, (off, w)) in SHAPE.iter().enumerate() {
        let b = (center as i32 + off).clamp(1, BUCKETS as i32 - 2) as usize;
        let c = if i + 1 == SHAPE.len() {
            left
        } else {
            (n * w / total).min(left)
        };
        left -= c;
        if c == 0 {
            continue;
        }
        let mid = (1u64 << b) + (1u64 << b) / 2;
        h.count += c;
        h.sum += c * mid;
        h.buckets[b] += c;
        h.max = h.max.max(mid);
    }
}

fn meta() -> CaptureMeta {
    let mut probes = ProbeReport::default();
    probes
        .attached
        .insert(Hook::VethXmit, (Backend::Fentry, "fentry".into()));
    probes
        .attached
        .insert(Hook::NetifRx, (Backend::Tracepoint, "tp_btf".into()));
    probes
        .attached
        .insert(Hook::SoftirqRaise, (Backend::Tracepoint, "tp_btf".into()));
    probes
        .attached
        .insert(Hook::SoftirqRun, (Backend::Tracepoint, "tp_btf".into()));
    probes
        .attached
        .insert(Hook::NetifReceive, (Backend::Tracepoint, "tp_btf".into()));
    probes
        .fallbacks
        .push("netif_rx: fentry: __netif_rx is not in the kernel's BTF; using net:netif_rx".into());
    let availability = Availability::from_report(&probes);
    CaptureMeta {
        kernel_release: "6.8.0-45-generic".into(),
        probes,
        availability,
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        netns_filter: vec![],
        filter: None,
        ncpus: 4,
        bpf_stats: true,
    }
}

/// The cumulative snapshot after `t` seconds of the demo load.
pub fn snapshot_at(t: u64) -> Snapshot {
    let mut interfaces = Vec::new();
    for p in profiles() {
        let mut i = Interface::new(IfaceKey::new(p.netns, p.ifindex));
        i.name = p.name.to_string();
        i.kind = p.kind.map(str::to_string);
        i.netns_name = None;
        i.netns_label = p.label.to_string();
        i.peer = p.peer.map(|(netns, label, ifindex, name)| PeerRef {
            netns,
            ifindex,
            cookie: 0,
            name: Some(name.to_string()),
            netns_label: Some(label.to_string()),
        });
        for s in 0..t {
            let w = wave(s as f64, p.phase);
            let tx = (p.tx_pps * w) as u64;
            let rx = (p.rx_pps * w) as u64;
            let c = &mut i.counters;
            c.tx_packets += tx;
            c.tx_bytes += tx * 1_240;
            c.rx_enqueued += if p.backlog_bucket > 0 { rx } else { 0 };
            c.rx_packets += rx;
            c.net_rx_raises += (rx as f64 * p.raises_per_pkt) as u64;
            c.softirq_ns += (rx as f64 * p.sirq_ns_per_pkt * (0.9 + 0.1 * w)) as u64;
            // Latency grows with load: one bucket up on the peaks.
            let bump = usize::from(w > 1.2);
            spread(
                &mut i.veth_hop,
                p.hop_bucket + bump * usize::from(p.hop_bucket > 0),
                tx / 50,
            );
            spread(
                &mut i.backlog_wait,
                p.backlog_bucket + bump * usize::from(p.backlog_bucket > 0),
                rx / 50,
            );
        }
        interfaces.push(i);
    }
    // A pod that went away two seconds before the end: greyed, numbers kept.
    let mut gone = Interface::new(IfaceKey::new(HOST, 21));
    gone.name = "veth77aa010".into();
    gone.kind = Some("veth".into());
    gone.netns_label = "host".into();
    gone.peer = Some(PeerRef {
        netns: 4026532711,
        ifindex: 3,
        cookie: 0,
        name: Some("eth0".into()),
        netns_label: Some("batch-job-x2k/41c0de99".into()),
    });
    let active = t.min(118);
    gone.counters.tx_packets = 1_900 * active;
    gone.counters.rx_packets = 1_850 * active;
    gone.counters.rx_enqueued = 1_850 * active;
    gone.counters.net_rx_raises = 1_200 * active;
    gone.counters.softirq_ns = 2_400_000 * active;
    gone.gone = t > 118;
    interfaces.push(gone);

    let interfaces_raises: Vec<(IfaceKey, u64)> = interfaces
        .iter()
        .filter(|i| i.counters.net_rx_raises > 0 && i.kind.is_some())
        .map(|i| (i.key, i.counters.net_rx_raises))
        .collect();
    let cpus = (0..4u32)
        .map(|cpu| {
            let mut c = CpuStats::new(cpu);
            let share = [0.12, 0.09, 0.64, 0.15][cpu as usize];
            for s in 0..t {
                let w = wave(s as f64, cpu as f64);
                let rx = &mut c.vectors[NET_RX];
                let runs = (9_000.0 * share * w) as u64;
                rx.raises += runs + runs / 9;
                rx.runs += runs;
                rx.run_ns += (1_000_000_000.0 * share * w * 0.95).min(990_000_000.0) as u64;
                rx.ksoftirqd_runs += if cpu == 2 { runs / 5 } else { runs / 60 };
                spread(&mut rx.run, 13, runs);
                spread(&mut rx.raise_to_run, if cpu == 2 { 15 } else { 11 }, runs);
                let tx = &mut c.vectors[NET_TX];
                tx.raises += 40;
                tx.runs += 40;
                tx.run_ns += 120_000;
                spread(&mut tx.run, 11, 40);
                spread(&mut tx.raise_to_run, 10, 40);
                for (v, n) in [(1usize, 250u64), (7, 180), (9, 320)] {
                    let x = &mut c.vectors[v];
                    x.raises += n;
                    x.runs += n;
                    x.run_ns += n * 2_500;
                    spread(&mut x.run, 11, n);
                    spread(&mut x.raise_to_run, 9, n);
                }
            }
            c
        })
        .collect();

    let programs = [
        ("fentry_veth_xmit", Hook::VethXmit, Backend::Fentry, 95.0),
        ("tp_netif_rx", Hook::NetifRx, Backend::Tracepoint, 70.0),
        (
            "tp_softirq_raise",
            Hook::SoftirqRaise,
            Backend::Tracepoint,
            45.0,
        ),
        (
            "tp_softirq_entry",
            Hook::SoftirqRun,
            Backend::Tracepoint,
            40.0,
        ),
        (
            "tp_softirq_exit",
            Hook::SoftirqRun,
            Backend::Tracepoint,
            60.0,
        ),
        (
            "tp_netif_receive_skb",
            Hook::NetifReceive,
            Backend::Tracepoint,
            110.0,
        ),
    ]
    .iter()
    .map(|(name, hook, backend, ns_per_event)| ProgramCost {
        name: name.to_string(),
        hook: *hook,
        backend: *backend,
        run_count: Some(t * 120_000),
        run_time_ns: Some((t as f64 * 120_000.0 * ns_per_event * 0.35) as u64),
    })
    .collect();

    Snapshot {
        elapsed_ns: t * 1_000_000_000,
        interfaces,
        cpus,
        loss: Loss {
            ringbuf_dropped: 0,
            inflight_evicted: if t > 60 { 37 } else { 0 },
            iface_table_full: 0,
            raises_unattributed: 2_300 * t,
            ..Loss::default()
        },
        programs,
        raise_sites: raise_sites(&interfaces_raises),
        path_hops: path_hops(t),
        payers: vec![],
        slow: Default::default(),
        timing: Default::default(),
    }
}

/// Paths through the host: loadgen -> web, web -> redis and back, each two veth hops
/// routed by the host (packets per second, first and second hop's latency bucket).
fn path_hops(t: u64) -> Vec<PathHop> {
    let k = IfaceKey::new;
    let flows = [
        (k(LOADGEN, 2), k(HOST, 18), k(WEB, 3), 2_500u64, 12usize),
        (k(WEB, 3), k(HOST, 14), k(REDIS, 3), 12_000, 13),
        (k(REDIS, 3), k(HOST, 16), k(WEB, 3), 12_400, 13),
    ];
    let mut out = Vec::new();
    for (origin, via, to, pps, bucket) in flows {
        let n = pps * t;
        for (hop, prev, rcv, b) in [(1, origin, via, bucket), (2, via, to, bucket + 1)] {
            let mut latency = Histogram::default();
            spread(&mut latency, b, n / 50);
            out.push(PathHop {
                key: PathHopKey {
                    origin,
                    prev,
                    to: rcv,
                    hop,
                },
                packets: n,
                enqueues: n * u64::from(hop),
                origin_softirq: 0,
                latency,
            });
        }
    }
    out
}

/// Sampled raise stacks: 80% of an interface's raises from the veth path through the
/// backlog, 20% re-raised at the end of a NET_RX run (more work pending).
fn raise_sites(raises: &[(IfaceKey, u64)]) -> Vec<RaiseSite> {
    const VETH: [&str; 6] = [
        "__raise_softirq_irqoff",
        "enqueue_to_backlog",
        "__netif_rx",
        "veth_xmit",
        "dev_hard_start_xmit",
        "__dev_queue_xmit",
    ];
    const RERAISE: [&str; 4] = [
        "__raise_softirq_irqoff",
        "net_rx_action",
        "handle_softirqs",
        "run_ksoftirqd",
    ];
    let mut out = Vec::new();
    for (key, n) in raises {
        for (frames, share) in [(&VETH[..], 80), (&RERAISE[..], 20)] {
            let count = n * share / 100;
            out.push(RaiseSite {
                iface: Some(*key),
                vector: NET_RX,
                samples: count / 64,
                count,
                frames: frames.iter().map(|f| f.to_string()).collect(),
            });
        }
    }
    out
}

/// A dashboard that has watched the demo node for two minutes, refreshing every second.
pub fn app() -> App {
    let mut app = App::new(meta(), Duration::from_secs(1));
    for t in 1..=120 {
        app.update(snapshot_at(t));
    }
    app
}
