//! Root integration tests: real traffic over veth pairs the tests build, checked against
//! the counts the test itself sent.

mod common;

use std::time::Duration;

use common::{send_udp, tcp_stream, udp_sink};
use sirqtop::collector::{Collector, Config};
use sirqtop::model::{CaptureMeta, Hook, Snapshot, NET_RX};
use sirqtop::output::json::Capture;

/// ARP/ND and similar control packets the kernel may add on its own.
const SLACK: u64 = 10;

fn within(v: u64, n: u64, what: &str) {
    common::within_slack(v, n, SLACK, what);
}

use common::iface;

/// Lets the last packets' softirqs finish before reading.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

/// Attaches with `cfg`, runs `traffic`, lets its softirqs finish, and returns what was
/// counted; the collector (and every probe) is gone when this returns.
fn capture_while(cfg: &Config, traffic: impl FnOnce()) -> (CaptureMeta, Snapshot) {
    let mut c = Collector::start(cfg).expect("attach");
    traffic();
    settle();
    let s = c.snapshot().expect("snapshot");
    (c.meta().clone(), s)
}

#[test]
fn udp_counts_keys_peers_and_histograms_match_what_was_sent() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("u", "10.201.1");
    let other = common::lab("o", "10.201.2");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    let _sink2 = udp_sink(&other.ns_b, &other.addr_b, 5001);

    let cfg = Config {
        netns_filter: vec![ns_a, ns_b],
        // Every raise's stack: the sampled counts must then equal the attributed raises.
        stack_every: 1,
        ..Config::default()
    };
    const N: u64 = 2000;
    let (_, s) = capture_while(&cfg, || {
        // The other pair's traffic runs at the same time and must not show up.
        let (ons, oaddr) = (other.ns_a.clone(), other.addr_b.clone());
        let noise = std::thread::spawn(move || send_udp(&ons, &oaddr, 5001, 3000, 64));
        send_udp(&lab.ns_a, &lab.addr_b, 5001, N as usize, 64);
        noise.join().unwrap();
    });

    for i in &s.interfaces {
        assert!(
            i.key.netns == ns_a || i.key.netns == ns_b,
            "filtered-out interface reported: {i:?}"
        );
    }
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    assert_eq!(a.name, lab.if_a);
    assert_eq!(b.name, lab.if_b);
    assert_eq!(a.kind.as_deref(), Some("veth"));
    assert_eq!(a.netns_name.as_deref(), Some(lab.ns_a.as_str()));
    let peer = a.peer.as_ref().expect("A has a peer");
    assert_eq!(
        (peer.netns, peer.ifindex, peer.name.as_deref()),
        (ns_b, ix_b, Some(lab.if_b.as_str()))
    );

    within(a.counters.tx_packets, N, "A.tx_packets");
    // 64 payload + 8 UDP + 20 IP + 14 Ethernet per datagram.
    assert!(
        a.counters.tx_bytes >= N * 106,
        "A.tx_bytes {}",
        a.counters.tx_bytes
    );
    within(b.counters.rx_enqueued, N, "B.rx_enqueued");
    within(b.counters.rx_packets, N, "B.rx_packets");
    within(a.veth_hop.count, N, "A.veth_hop.count");
    within(b.backlog_wait.count, N, "B.backlog_wait.count");
    assert_eq!(a.veth_hop.buckets.iter().sum::<u64>(), a.veth_hop.count);
    assert!(a.veth_hop.max > 0 && a.veth_hop.quantile(0.5).unwrap() <= a.veth_hop.max);
    // A receives nothing but control packets.
    assert!(
        a.counters.rx_packets <= SLACK,
        "A.rx_packets {}",
        a.counters.rx_packets
    );
    assert!(
        b.counters.tx_packets <= SLACK,
        "B.tx_packets {}",
        b.counters.tx_packets
    );

    // Raises caused by B's enqueues land on B; never more than its enqueues.
    assert!(
        b.counters.net_rx_raises >= 1,
        "B raises {}",
        b.counters.net_rx_raises
    );
    assert!(b.counters.net_rx_raises <= b.counters.rx_enqueued);
    assert!(a.counters.net_rx_raises <= SLACK);
    let net_rx = s.vector_total(NET_RX);
    assert!(
        net_rx.raises >= b.counters.net_rx_raises,
        "CPU raises {} < B raises",
        net_rx.raises
    );
    // B's softirq time is a share of all NET_RX time.
    assert!(b.counters.softirq_ns > 0);
    assert!(
        b.counters.softirq_ns <= net_rx.run_ns,
        "{} > NET_RX total {}",
        b.counters.softirq_ns,
        net_rx.run_ns
    );
    assert!(net_rx.runs >= 1 && net_rx.run.count == net_rx.runs);
    assert_eq!(s.loss.ringbuf_dropped, 0);
    assert_eq!(s.loss.inflight_evicted, 0);

    // Raise sites: B's NET_RX raises, every one sampled, sum to its attributed raises.
    let b_key = iface(&s, ns_b, ix_b).key;
    let sites: Vec<_> = s
        .raise_sites_of(b_key)
        .filter(|r| r.vector == NET_RX)
        .collect();
    assert!(
        !sites.is_empty(),
        "no raise sites for B: {:#?}",
        s.raise_sites
    );
    assert_eq!(
        sites.iter().map(|r| r.samples).sum::<u64>(),
        b.counters.net_rx_raises
    );
    assert_eq!(
        sites.iter().map(|r| r.count).sum::<u64>(),
        b.counters.net_rx_raises
    );
    let top = &sites[0].frames;
    let has = |f: &str| top.iter().any(|x| x.starts_with(&format!("{f}+")));
    assert!(has("enqueue_to_backlog"), "top site {top:?}");
    assert!(has("veth_xmit"), "top site {top:?}");
    // The innermost frame is the raise itself (inlined differently per kernel).
    assert!(top[0].contains("raise_softirq"), "{top:?}");
}

#[test]
fn whole_node_capture_sees_both_pairs() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("w", "10.201.3");
    let other = common::lab("x", "10.201.4");
    let _s1 = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    let _s2 = udp_sink(&other.ns_b, &other.addr_b, 5001);
    let (_, s) = capture_while(&Config::default(), || {
        send_udp(&lab.ns_a, &lab.addr_b, 5001, 500, 64);
        send_udp(&other.ns_a, &other.addr_b, 5001, 700, 64);
    });
    let (k1, _) = common::keys(&lab);
    let (k2, _) = common::keys(&other);
    let a1 = iface(&s, k1.0, k1.1);
    let a2 = iface(&s, k2.0, k2.1);
    within(a1.counters.tx_packets, 500, "pair 1 tx");
    within(a2.counters.tx_packets, 700, "pair 2 tx");
}

#[test]
fn tcp_stream_is_counted_on_both_ends() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("t", "10.201.5");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let cfg = Config {
        netns_filter: vec![ns_a, ns_b],
        bpf_stats: true,
        ..Config::default()
    };
    const BYTES: usize = 8 << 20;
    let (_, s) = capture_while(&cfg, || {
        let got = tcp_stream(&lab.ns_b, &lab.addr_b, &lab.ns_a, 5201, BYTES);
        assert_eq!(got, BYTES);
    });
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    assert!(
        a.counters.tx_bytes >= BYTES as u64,
        "A.tx_bytes {}",
        a.counters.tx_bytes
    );
    // Every skb A transmits is enqueued to and received by B, and its hop is measured.
    let sent = a.counters.tx_packets;
    assert!(sent >= 10);
    within(b.counters.rx_enqueued, sent, "B.rx_enqueued vs A.tx");
    within(b.counters.rx_packets, sent, "B.rx_packets vs A.tx");
    within(a.veth_hop.count, sent, "A.veth_hop.count");
    // ACKs flow back: B transmits, A receives.
    assert!(b.counters.tx_packets >= 1);
    within(a.counters.rx_packets, b.counters.tx_packets, "A.rx vs B.tx");
    assert!(b.counters.softirq_ns > 0);
    // --bpf-stats: every attached program reports its runs.
    let xmit = s
        .programs
        .iter()
        .find(|p| p.hook == Hook::VethXmit)
        .expect("veth_xmit program");
    assert!(xmit.run_count.unwrap_or(0) >= sent, "{xmit:?}");
    assert!(xmit.run_time_ns.unwrap_or(0) > 0);
}

#[test]
fn lite_mode_counts_but_reports_no_latency() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("l", "10.201.7");
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let cfg = Config {
        netns_filter: vec![ns_a, ns_b],
        lite: true,
        ..Config::default()
    };
    let (meta, s) = capture_while(&cfg, || send_udp(&lab.ns_a, &lab.addr_b, 5001, 800, 64));
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    within(a.counters.tx_packets, 800, "A.tx");
    within(b.counters.rx_packets, 800, "B.rx");
    within(b.counters.rx_enqueued, 800, "B.enq");
    assert!(b.counters.net_rx_raises >= 1);
    assert_eq!(a.veth_hop.count, 0);
    let cap = Capture::new(&meta, &s);
    let ja = cap.interfaces.iter().find(|i| i.name == lab.if_a).unwrap();
    assert!(ja.latency.veth_hop.is_none() && ja.latency.backlog_wait.is_none());
    assert_eq!(ja.tx_packets, Some(a.counters.tx_packets));
    // No softirq entry/exit hooks in lite: softirq time and runs are null, raises are not.
    let jb = cap.interfaces.iter().find(|i| i.name == lab.if_b).unwrap();
    assert!(jb.softirq_ns.is_none() && jb.softirq_ns_per_packet.is_none());
    assert_eq!(jb.net_rx_raises, Some(b.counters.net_rx_raises));
    assert!(!cap.kernel.backends.contains_key("softirq_run"));
    let net_rx = &cap
        .cpus
        .iter()
        .find_map(|c| {
            c.softirqs
                .get("NET_RX")
                .filter(|v| v.raises.unwrap_or(0) > 0)
        })
        .expect("NET_RX raises on some CPU");
    assert!(net_rx.runs.is_none() && net_rx.run_hist.is_none());
}

#[test]
fn namespace_of_a_container_process_is_labelled_in_the_capture() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("c", "10.201.9");
    let ((ns_a, ix_a), _) = common::keys(&lab);
    let id = format!("{:0>64x}", 0x5137_0000_0000u64 + std::process::id() as u64);
    // A process in a cgroup shaped like Docker's.
    let Some(_ctr) = common::CgroupTask::start(&lab.ns_a, &format!("docker/{id}")) else {
        eprintln!("skipped: no writable cgroup hierarchy");
        return;
    };
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    let cfg = Config {
        netns_filter: vec![ns_a],
        ..Config::default()
    };
    let (meta, s) = capture_while(&cfg, || send_udp(&lab.ns_a, &lab.addr_b, 5001, 50, 64));
    let cap = Capture::new(&meta, &s);
    let a = iface(&s, ns_a, ix_a);
    let ctr = a
        .container
        .as_ref()
        .expect("container found from the cgroup");
    assert_eq!(
        (ctr.runtime.as_str(), ctr.id.as_str()),
        ("docker", id.as_str())
    );
    let ja = cap.interfaces.iter().find(|i| i.name == lab.if_a).unwrap();
    assert_eq!(
        ja.container.as_ref().map(|c| c.id.as_str()),
        Some(id.as_str())
    );
    // An ip-netns name is what an operator typed, so it stays the label.
    assert_eq!(ja.netns_label.as_deref(), Some(lab.ns_a.as_str()));
}
