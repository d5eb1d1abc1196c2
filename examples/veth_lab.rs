//! A runnable lab: two network namespaces joined by a veth pair, a known amount of UDP
//! traffic from one to the other, captured by sirqtop and printed (headline + JSON).
//!
//!     sudo cargo run --example veth_lab -- [PACKETS] [PAYLOAD_BYTES]
//!
//! Everything it creates is removed when it exits; traffic stays inside its namespaces.

use std::time::Duration;

use anyhow::Context;
use sirqtop::collector::{Collector, Config};
use sirqtop::lab::{self, VethLab};
use sirqtop::model::{IfaceKey, NET_RX};
use sirqtop::output::json::Capture;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let packets: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("PACKETS")?
        .unwrap_or(10_000);
    let size: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()
        .context("PAYLOAD_BYTES")?
        .unwrap_or(64);

    let l = VethLab::new("lab", "10.240.0")?;
    l.warm_up()?;
    let _sink = lab::udp_sink(&l.ns_b, &l.addr_b, 7000)?;
    let (a, b) = (
        IfaceKey::new(l.inode_a()?, l.ifindex_a()?),
        IfaceKey::new(l.inode_b()?, l.ifindex_b()?),
    );
    let cfg = Config {
        netns_filter: vec![a.netns, b.netns],
        stack_every: sirqtop::collector::DEFAULT_STACK_EVERY,
        ..Config::default()
    };
    let mut c = Collector::start(&cfg)?;
    eprintln!(
        "lab: {}@{} -> {}@{}: sending {packets} x {size} B UDP",
        l.if_a, l.ns_a, l.if_b, l.ns_b
    );
    lab::send_udp(&l.ns_a, &l.addr_b, 7000, packets, size)?;
    // Let the last softirqs run before reading.
    std::thread::sleep(Duration::from_millis(200));
    let snap = c.snapshot()?;
    let cap = Capture::new(c.meta(), &snap);
    drop(c);

    let (ia, ib) = (snap.interface(a), snap.interface(b));
    if let (Some(ia), Some(ib)) = (ia, ib) {
        let q = |h: &sirqtop::model::Histogram, p| h.quantile(p).unwrap_or(0);
        eprintln!(
            "{}: tx {} pkts, veth hop p50 {} ns p99 {} ns",
            ia.name,
            ia.counters.tx_packets,
            q(&ia.veth_hop, 0.5),
            q(&ia.veth_hop, 0.99)
        );
        eprintln!(
            "{}: enqueued {} received {}, NET_RX raises {} ({:.2}/pkt), softirq {} ns/pkt, backlog wait p99 {} ns",
            ib.name,
            ib.counters.rx_enqueued,
            ib.counters.rx_packets,
            ib.counters.net_rx_raises,
            ib.counters.net_rx_raises as f64 / ib.counters.rx_packets.max(1) as f64,
            ib.softirq_ns_per_packet().unwrap_or(0.0).round(),
            q(&ib.backlog_wait, 0.99)
        );
        eprintln!("node NET_RX runs: {}", snap.vector_total(NET_RX).runs);
    }
    println!("{}", serde_json::to_string_pretty(&cap)?);
    Ok(())
}
