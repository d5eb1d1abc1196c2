//! Latency sampling (--timing-rate, root): above the rate, 1 in 2^k skbs is timed and
//! weighted 2^k. Checked against an exact capture of the same packets, attached at the
//! same time: counts and paths stay exact, the weighted histograms estimate the exact
//! ones (counts within 10 %, quantiles within one log2 bucket).

mod common;

use std::time::Duration;

use common::{send_udp, udp_sink};
use sirqtop::collector::{Collector, Config};
use sirqtop::model::{Histogram, Snapshot, NET_RX};

/// ARP/ND and similar control packets the kernel may add on its own.
const SLACK: u64 = 10;

fn close(sampled: &Histogram, exact: &Histogram, what: &str) {
    let (s, e) = (sampled.count as f64, exact.count as f64);
    eprintln!(
        "{what}: count {s} / {e}, p50 {:?} / {:?}, p90 {:?} / {:?}",
        sampled.quantile(0.5),
        exact.quantile(0.5),
        sampled.quantile(0.9),
        exact.quantile(0.9)
    );
    assert!(
        e > 0.0 && (s - e).abs() <= e * 0.10,
        "{what}: weighted count {s} against {e} exact"
    );
    // One log2 bucket, plus the other capture's programs: both time the same events,
    // one after the other, so sub-microsecond latencies differ by their cost.
    const OTHER_PROGRAMS_NS: u64 = 500;
    for q in [0.5, 0.9] {
        let (s, e) = (sampled.quantile(q).unwrap(), exact.quantile(q).unwrap());
        assert!(
            s <= e * 2 + OTHER_PROGRAMS_NS && e <= s * 2 + OTHER_PROGRAMS_NS,
            "{what}: p{} {s} ns sampled against {e} ns exact",
            q * 100.0
        );
    }
}

fn net_rx_raise_to_run(s: &Snapshot) -> Histogram {
    let mut h = Histogram::default();
    for c in &s.cpus {
        h.merge(&c.vectors[NET_RX].raise_to_run);
    }
    h
}

#[test]
fn sampled_latencies_estimate_the_exact_ones_and_counts_stay_exact() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("tm", "10.201.61");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    let exact_cfg = Config {
        netns_filter: vec![ns_a, ns_b],
        ..Config::default()
    };
    // Far below the flood's rate: most skbs are not timed.
    let sampled_cfg = Config {
        timing_rate: 1000,
        ..exact_cfg.clone()
    };
    let mut exact = Collector::start(&exact_cfg).expect("attach exact");
    let mut sampled = Collector::start(&sampled_cfg).expect("attach sampled");
    const N: u64 = 30_000;
    send_udp(&lab.ns_a, &lab.addr_b, 5001, N as usize, 64);
    std::thread::sleep(Duration::from_millis(300));
    let e = exact.snapshot().expect("snapshot");
    let s = sampled.snapshot().expect("snapshot");

    assert_eq!(e.timing.rate, 0);
    assert_eq!((e.timing.skbs_picked, e.timing.skbs_timed), (0, 0));
    eprintln!("sampled: {:?}", s.timing);
    assert_eq!(s.timing.rate, 1000);
    assert!(
        s.timing.skbs_picked >= N && s.timing.skbs_timed * 4 < s.timing.skbs_picked,
        "sampling did not set in: {:?}",
        s.timing
    );

    for snap in [&e, &s] {
        let a = common::iface(snap, ns_a, ix_a);
        let b = common::iface(snap, ns_b, ix_b);
        common::within_slack(a.counters.tx_packets, N, SLACK, "A.tx_packets");
        common::within_slack(b.counters.rx_enqueued, N, SLACK, "B.rx_enqueued");
        common::within_slack(b.counters.rx_packets, N, SLACK, "B.rx_packets");
        common::within_slack(b.counters.net_rx_raises, 1, N, "B.net_rx_raises");
        let hop = snap
            .path_hops
            .iter()
            .find(|h| h.key.hop == 1 && h.key.to.ifindex == ix_b && h.key.to.netns == ns_b)
            .expect("the path's first hop");
        common::within_slack(hop.packets, N, SLACK, "path packets");
    }
    let (ea, sa) = (common::iface(&e, ns_a, ix_a), common::iface(&s, ns_a, ix_a));
    let (eb, sb) = (common::iface(&e, ns_b, ix_b), common::iface(&s, ns_b, ix_b));
    // Every skb timed in the exact capture.
    common::within_slack(ea.veth_hop.count, N, SLACK, "exact veth_hop.count");
    assert_eq!(
        (eb.counters.net_rx_raises, eb.counters.softirq_ns > 0),
        (sb.counters.net_rx_raises, true),
        "raises and softirq time are never sampled"
    );
    close(&sa.veth_hop, &ea.veth_hop, "veth_hop");
    close(&sb.backlog_wait, &eb.backlog_wait, "backlog_wait");
    close(
        &net_rx_raise_to_run(&s),
        &net_rx_raise_to_run(&e),
        "NET_RX raise_to_run",
    );
    let path = |snap: &Snapshot| {
        snap.path_hops
            .iter()
            .find(|h| h.key.hop == 1 && h.key.to.ifindex == ix_b && h.key.to.netns == ns_b)
            .map(|h| h.latency)
            .unwrap()
    };
    close(&path(&s), &path(&e), "path latency");
}
