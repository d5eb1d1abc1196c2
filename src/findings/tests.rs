//! Each finding built from a constructed snapshot, its absence on a quiet one, and no
//! finding from too few samples.

use super::*;
use crate::model::{CpuStats, IfaceKey, Interface, PathHop, PathHopKey, PeerRef, Softnet, NET_RX};

const SEC: u64 = 1_000_000_000;

fn ids(s: &Snapshot) -> Vec<String> {
    evaluate(s, &Availability::all())
        .into_iter()
        .map(|f| format!("{} {}", f.id, f.subject))
        .collect()
}

fn veth(netns: u32, ifindex: u32, name: &str) -> Interface {
    let mut i = Interface::new(IfaceKey::new(netns, ifindex));
    i.name = name.into();
    i.kind = Some("veth".into());
    i.netns_label = format!("ns{netns}");
    i
}

fn cpus(n: u32) -> Vec<CpuStats> {
    (0..n).map(CpuStats::new).collect()
}

/// A quiet node: two CPUs with a little of everything, a one-hop path of a few packets.
fn quiet() -> Snapshot {
    let mut c = cpus(2);
    for (i, cpu) in c.iter_mut().enumerate() {
        let v = &mut cpu.vectors[NET_RX];
        v.runs = 50 + i as u64;
        v.raises = 50;
        v.run_ns = 2_000_000;
        for _ in 0..50 {
            v.run.record(40_000);
            v.raise_to_run.record(3_000);
        }
        cpu.softnet = Some(Softnet {
            processed: 60,
            time_squeeze: 1,
            dropped: 1,
            ..Softnet::default()
        });
    }
    let mut a = veth(1, 2, "eth0");
    let mut b = veth(2, 3, "vb");
    a.counters.tx_packets = 50;
    b.counters.rx_packets = 50;
    b.counters.rx_enqueued = 50;
    b.counters.softirq_ns = 100_000;
    b.drop_reasons.insert("NO_SOCKET".into(), 3);
    Snapshot {
        elapsed_ns: 5 * SEC,
        interfaces: vec![a, b],
        cpus: c,
        path_hops: vec![hop(
            IfaceKey::new(1, 2),
            IfaceKey::new(1, 2),
            IfaceKey::new(2, 3),
            1,
            50,
        )],
        ..Snapshot::default()
    }
}

fn hop(origin: IfaceKey, prev: IfaceKey, to: IfaceKey, n: u32, packets: u64) -> PathHop {
    PathHop {
        key: PathHopKey {
            origin,
            prev,
            to,
            hop: n,
        },
        packets,
        enqueues: packets * n as u64,
        origin_softirq: 0,
        latency: Default::default(),
    }
}

#[test]
fn a_quiet_capture_has_no_findings() {
    assert_eq!(ids(&quiet()), Vec::<String>::new());
    assert!(evaluate(&Snapshot::default(), &Availability::all()).is_empty());
}

#[test]
fn extra_veth_hops_are_costed_against_the_one_hop_path() {
    let mut s = quiet();
    // One-hop path a -> b, 1000 packets at 2000 ns; two-hop path c -> d -> e.
    let (a, b) = (IfaceKey::new(1, 2), IfaceKey::new(2, 3));
    let (c, d, e) = (
        IfaceKey::new(3, 2),
        IfaceKey::new(4, 5),
        IfaceKey::new(5, 2),
    );
    s.path_hops = vec![
        hop(a, a, b, 1, 1000),
        hop(c, c, d, 1, 1000),
        hop(c, d, e, 2, 1000),
    ];
    s.interfaces[1].counters.rx_packets = 1000;
    s.interfaces[1].counters.softirq_ns = 2_000_000;
    for (k, name, ns) in [(d, "vd", 1_500_000), (e, "eth0", 2_500_000)] {
        let mut i = veth(k.netns, k.ifindex, name);
        i.counters.rx_packets = 1000;
        i.counters.rx_enqueued = 1000;
        i.counters.softirq_ns = ns;
        s.interfaces.push(i);
    }
    s.interfaces.push(veth(3, 2, "eth0"));
    let f = evaluate(&s, &Availability::all());
    let hops: Vec<&Finding> = f.iter().filter(|f| f.id == "extra_veth_hops").collect();
    assert_eq!(hops.len(), 1, "{f:?}");
    let h = hops[0];
    assert_eq!(h.subject, "ns3/eth0 -> ns5/eth0");
    assert_eq!(h.numbers["hops"], 2.0);
    assert_eq!(h.numbers["softirq_ns_per_packet"], 4000.0);
    assert_eq!(h.numbers["one_hop_softirq_ns_per_packet"], 2000.0);
    assert_eq!(h.numbers["extra_softirq_ns_per_packet"], 2000.0);
    assert!(h.remedy.contains("ipvlan") && h.remedy.contains("netkit"));
    // Too few packets on the path: nothing.
    for p in &mut s.path_hops {
        p.packets = MIN_PATH_PACKETS - 1;
        p.enqueues = p.packets * p.key.hop as u64;
    }
    assert!(!ids(&s).iter().any(|i| i.starts_with("extra_veth_hops")));
}

#[test]
fn squeezes_and_backlog_drops_name_the_cpu_and_the_sysctl() {
    let mut s = quiet();
    s.cpus[1].vectors[NET_RX].runs = 1000;
    s.cpus[1].softnet = Some(Softnet {
        processed: 100_000,
        time_squeeze: 50,
        dropped: 40,
        ..Softnet::default()
    });
    let f = evaluate(&s, &Availability::all());
    let sq = f
        .iter()
        .find(|f| f.id == "receive_budget_exhausted")
        .unwrap();
    assert_eq!(sq.subject, "cpu1");
    assert_eq!(sq.numbers["squeezed_share"], 0.05);
    assert!(sq.remedy.contains("netdev_budget"));
    let dr = f.iter().find(|f| f.id == "backlog_drops").unwrap();
    assert_eq!(
        (dr.subject.as_str(), dr.severity),
        ("cpu1", Severity::Critical)
    );
    assert_eq!(dr.numbers["dropped_per_second"], 8.0);
    assert!(dr.remedy.contains("netdev_max_backlog"));
    assert_eq!(f[0].id, "backlog_drops", "most severe first");
    // Below the minimum counts: nothing.
    s.cpus[1].softnet = Some(Softnet {
        processed: 100_000,
        time_squeeze: MIN_SQUEEZES - 1,
        dropped: MIN_BACKLOG_DROPS - 1,
        ..Softnet::default()
    });
    assert_eq!(ids(&s), Vec::<String>::new());
}

#[test]
fn net_rx_on_one_cpu_while_others_idle() {
    let mut s = quiet();
    let v = &mut s.cpus[0].vectors[NET_RX];
    v.runs = 10_000;
    v.run_ns = 2 * SEC; // 40% of the 5 s window; cpu1 has 2 ms
    let f = evaluate(&s, &Availability::all());
    let c = f.iter().find(|f| f.id == "net_rx_one_cpu").unwrap();
    assert_eq!(c.subject, "cpu0");
    assert!(c.numbers["share_of_all_net_rx"] > 0.99);
    assert!(c.remedy.contains("RPS"));
    // Spread evenly: nothing.
    s.cpus[1].vectors[NET_RX].run_ns = 2 * SEC;
    s.cpus[1].vectors[NET_RX].runs = 10_000;
    assert!(!ids(&s).iter().any(|i| i.starts_with("net_rx_one_cpu")));
}

#[test]
fn work_deferred_to_ksoftirqd() {
    let mut s = quiet();
    let v = &mut s.cpus[1].vectors[NET_RX];
    v.runs = 1000;
    v.ksoftirqd_runs = 300;
    let f = evaluate(&s, &Availability::all());
    let k = f.iter().find(|f| f.id == "ksoftirqd_deferred").unwrap();
    assert_eq!(k.subject, "cpu1");
    assert_eq!(k.numbers["ksoftirqd_share"], 0.3);
    // The same share over too few runs: nothing.
    let v = &mut s.cpus[1].vectors[NET_RX];
    v.runs = MIN_NET_RX_RUNS - 1;
    v.ksoftirqd_runs = 30;
    assert!(!ids(&s).iter().any(|i| i.starts_with("ksoftirqd")));
}

#[test]
fn slow_raise_to_run_needs_samples() {
    let mut s = quiet();
    for _ in 0..MIN_RAISE_TO_RUN_SAMPLES {
        s.cpus[0].vectors[NET_RX].raise_to_run.record(5_000_000);
    }
    let f = evaluate(&s, &Availability::all());
    let r = f.iter().find(|f| f.id == "raise_to_run_slow").unwrap();
    assert!(r.numbers["p99_ns"] >= RAISE_TO_RUN_P99_NS as f64);
    // Unmeasured (no raise hook): nothing, never a guess.
    let mut av = Availability::all();
    av.cpu_raises = false;
    assert!(!evaluate(&s, &av)
        .iter()
        .any(|f| f.id == "raise_to_run_slow"));
    let mut q = quiet();
    for _ in 0..(MIN_RAISE_TO_RUN_SAMPLES / 2) {
        q.cpus[0].vectors[NET_RX].raise_to_run.record(5_000_000);
    }
    assert!(!ids(&q).iter().any(|i| i.starts_with("raise_to_run")));
}

#[test]
fn drops_by_reason_say_what_to_do() {
    let mut s = quiet();
    s.interfaces[1]
        .drop_reasons
        .insert("SOCKET_RCVBUFF".into(), 500);
    s.interfaces[1]
        .drop_reasons
        .insert("CPU_BACKLOG".into(), 20);
    let f = evaluate(&s, &Availability::all());
    let d: Vec<&Finding> = f.iter().filter(|f| f.id == "drops").collect();
    assert_eq!(d.len(), 2, "NO_SOCKET's 3 are too few: {d:?}");
    let rcv = d
        .iter()
        .find(|f| f.subject == "ns2/vb SOCKET_RCVBUFF")
        .unwrap();
    assert_eq!(rcv.numbers["dropped"], 500.0);
    assert!(rcv.remedy.contains("SO_RCVBUF"));
    let bk = d
        .iter()
        .find(|f| f.subject.ends_with("CPU_BACKLOG"))
        .unwrap();
    assert!(bk.remedy.contains("netdev_max_backlog"));
}

#[test]
fn xdp_copying_a_veths_packets() {
    let mut s = quiet();
    let (a, b) = (IfaceKey::new(1, 2), IfaceKey::new(2, 3));
    let peer = |k: IfaceKey| PeerRef {
        cookie: 0,
        netns: k.netns,
        ifindex: k.ifindex,
        name: None,
        netns_label: None,
    };
    s.interfaces[0].peer = Some(peer(b));
    s.interfaces[1].peer = Some(peer(a));
    s.interfaces[0].counters.tx_packets = 1000;
    // Received by b's own NAPI (no backlog enqueue), 10 of 1000 as the same skb.
    let b_if = &mut s.interfaces[1];
    b_if.counters.rx_enqueued = 0;
    b_if.counters.rx_packets = 1000;
    b_if.counters.napi_packets = 1000;
    for _ in 0..10 {
        s.interfaces[0].veth_hop.record(2000);
    }
    let f = evaluate(&s, &Availability::all());
    let x = f.iter().find(|f| f.id == "xdp_copies_veth").unwrap();
    assert_eq!(x.subject, "ns2/vb");
    assert_eq!(x.numbers["same_skb_share"], 0.01);
    // GRO without XDP keeps the skb: every transmit is a hop sample, no finding.
    for _ in 0..990 {
        s.interfaces[0].veth_hop.record(2000);
    }
    assert!(!ids(&s).iter().any(|i| i.starts_with("xdp")));
}

#[test]
fn findings_round_trip_as_json() {
    let mut s = quiet();
    s.cpus[1].softnet = Some(Softnet {
        dropped: 100,
        ..Softnet::default()
    });
    let f = evaluate(&s, &Availability::all());
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v[0]["id"], "backlog_drops");
    assert_eq!(v[0]["severity"], "critical");
    assert_eq!(v[0]["numbers"]["dropped"], 100.0);
    let back: Vec<Finding> = serde_json::from_value(v).unwrap();
    assert_eq!(back, f);
}
