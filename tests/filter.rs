//! --filter with real traffic: only the matching packets are counted, everywhere (both
//! veth ends, enqueues, histograms, paths), and bad expressions attach nothing. Root only;
//! the tests take turns. Namespaces are the tests' own (10.237.x, 10.238.0.0/16).

mod common;

use std::time::Duration;

use common::{iface, send_udp, udp_sink};
use sirqtop::collector::{Collector, Config};
use sirqtop::filter::Filter;
use sirqtop::model::{CaptureMeta, Snapshot};

/// Control packets the kernel may add on its own that a filter lets through.
const SLACK: u64 = 4;

fn filtered(expr: &str, netns: Vec<u32>) -> Config {
    Config {
        netns_filter: netns,
        filter: Some(Filter::compile(expr).expect("compiles")),
        ..Config::default()
    }
}

/// Attaches with `cfg`, runs `traffic`, lets its softirqs finish, returns what was counted.
fn capture_while(cfg: &Config, traffic: impl FnOnce()) -> (CaptureMeta, Snapshot) {
    let mut c = Collector::start(cfg).expect("attach");
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    c.poll().expect("poll");
    let s = c.snapshot().expect("snapshot");
    (c.meta().clone(), s)
}

#[test]
fn udp_dst_port_counts_one_of_two_interleaved_flows() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("fu", "10.237.1");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let _s0 = udp_sink(&lab.ns_b, &lab.addr_b, 9000);
    let _s1 = udp_sink(&lab.ns_b, &lab.addr_b, 9001);
    const N: u64 = 700;
    const M: u64 = 1100;
    let cfg = filtered("udp dst port 9000", vec![ns_a, ns_b]);
    let (meta, s) = capture_while(&cfg, || {
        // Interleaved: batches of each flow in turn.
        for _ in 0..10 {
            send_udp(&lab.ns_a, &lab.addr_b, 9000, (N / 10) as usize, 64);
            send_udp(&lab.ns_a, &lab.addr_b, 9001, (M / 10) as usize, 64);
        }
    });
    assert_eq!(meta.filter.as_deref(), Some("udp dst port 9000"));
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    assert_eq!(a.counters.tx_packets, N, "A.tx_packets");
    assert_eq!(a.counters.tx_bytes, N * 106, "A.tx_bytes");
    assert_eq!(b.counters.rx_enqueued, N, "B.rx_enqueued");
    assert_eq!(b.counters.rx_packets, N, "B.rx_packets");
    assert_eq!(a.veth_hop.count, N, "A.veth_hop.count");
    assert_eq!(b.backlog_wait.count, N, "B.backlog_wait.count");
    assert!(b.counters.net_rx_raises >= 1 && b.counters.net_rx_raises <= N);
    // Nothing else: no ARP, no reverse traffic, not the 9001 flow.
    assert_eq!(a.counters.rx_packets, 0, "A.rx_packets");
    assert_eq!(b.counters.tx_packets, 0, "B.tx_packets");
    let paths = s.paths(&meta.availability);
    let p = paths
        .iter()
        .find(|p| p.from == a.key && p.to == b.key)
        .unwrap_or_else(|| panic!("no path A -> B: {paths:#?}"));
    assert_eq!((p.hops, p.packets), (1, N));
    assert_eq!(p.latency.count, N);
    assert_eq!(paths.iter().map(|p| p.packets).sum::<u64>(), N);

    // The same traffic unfiltered counts both flows: the filter made the difference.
    let (_, s) = capture_while(
        &Config {
            filter: None,
            ..cfg
        },
        || {
            send_udp(&lab.ns_a, &lab.addr_b, 9000, N as usize, 64);
            send_udp(&lab.ns_a, &lab.addr_b, 9001, M as usize, 64);
        },
    );
    common::within_slack(
        iface(&s, ns_a, ix_a).counters.tx_packets,
        N + M,
        SLACK,
        "A.tx unfiltered",
    );
}
