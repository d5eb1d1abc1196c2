//! The compared metrics of one interface or a whole capture.

use serde::{Deserialize, Serialize};

use super::{Change, Metrics};
use crate::model::Histogram;
use crate::output::json::{Capture, JsonHist, JsonInterface};

/// One capture's (or one interface's) value of every compared metric, in the units of
/// [`Metrics`]; `None` where the metric is null or cannot be computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub tx_packets: Option<f64>,
    pub rx_packets: Option<f64>,
    pub rx_enqueued: Option<f64>,
    pub enqueues_per_packet: Option<f64>,
    pub net_rx_raises: Option<f64>,
    pub raises_per_packet: Option<f64>,
    pub softirq_ns: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
    pub veth_hop_p50_ns: Option<f64>,
    pub veth_hop_p99_ns: Option<f64>,
    pub backlog_wait_p50_ns: Option<f64>,
    pub backlog_wait_p99_ns: Option<f64>,
}

impl Point {
    /// The counts divided by `n` (requests); ratios and latencies are left out (they are
    /// per packet already).
    pub fn per(&self, n: f64) -> Point {
        let d = |v: Option<f64>| v.map(|v| v / n);
        Point {
            tx_packets: d(self.tx_packets),
            rx_packets: d(self.rx_packets),
            rx_enqueued: d(self.rx_enqueued),
            net_rx_raises: d(self.net_rx_raises),
            softirq_ns: d(self.softirq_ns),
            ..Point::default()
        }
    }

    /// One interface.
    pub fn of_interface(i: &JsonInterface) -> Point {
        Raw::of(i).point()
    }

    /// A whole capture: counts summed over every interface, ratios over those sums,
    /// percentiles of the merged histograms.
    pub fn of_capture(c: &Capture) -> Point {
        Raw::total(c).point()
    }
}

/// Counts and histograms, before ratios and quantiles are taken.
#[derive(Debug, Clone, Copy, Default)]
struct Raw {
    tx: Option<u64>,
    rx: Option<u64>,
    enq: Option<u64>,
    raises: Option<u64>,
    softirq_ns: Option<u64>,
    hop: Option<Histogram>,
    wait: Option<Histogram>,
}

impl Raw {
    fn of(i: &JsonInterface) -> Raw {
        Raw {
            tx: i.tx_packets,
            rx: i.rx_packets,
            enq: i.rx_enqueued,
            raises: i.net_rx_raises,
            softirq_ns: i.softirq_ns,
            hop: i.latency.veth_hop.as_ref().map(JsonHist::to_hist),
            wait: i.latency.backlog_wait.as_ref().map(JsonHist::to_hist),
        }
    }

    /// A metric stays null only if it is null on every interface (a hook is attached for
    /// the whole capture or not at all).
    fn total(c: &Capture) -> Raw {
        let mut t = Raw::default();
        for i in &c.interfaces {
            let v = Raw::of(i);
            add(&mut t.tx, v.tx);
            add(&mut t.rx, v.rx);
            add(&mut t.enq, v.enq);
            add(&mut t.raises, v.raises);
            add(&mut t.softirq_ns, v.softirq_ns);
            merge(&mut t.hop, v.hop);
            merge(&mut t.wait, v.wait);
        }
        t
    }

    fn point(&self) -> Point {
        let f = |v: Option<u64>| v.map(|v| v as f64);
        Point {
            tx_packets: f(self.tx),
            rx_packets: f(self.rx),
            rx_enqueued: f(self.enq),
            enqueues_per_packet: ratio(self.enq, self.rx),
            net_rx_raises: f(self.raises),
            raises_per_packet: ratio(self.raises, self.rx),
            softirq_ns: f(self.softirq_ns),
            softirq_ns_per_packet: ratio(self.softirq_ns, self.rx),
            veth_hop_p50_ns: quantile(&self.hop, 0.50),
            veth_hop_p99_ns: quantile(&self.hop, 0.99),
            backlog_wait_p50_ns: quantile(&self.wait, 0.50),
            backlog_wait_p99_ns: quantile(&self.wait, 0.99),
        }
    }
}

fn add(acc: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(0).saturating_add(v));
    }
}

fn merge(acc: &mut Option<Histogram>, v: Option<Histogram>) {
    if let Some(v) = v {
        acc.get_or_insert_with(Histogram::default).merge(&v);
    }
}

fn ratio(num: Option<u64>, den: Option<u64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    }
}

fn quantile(h: &Option<Histogram>, q: f64) -> Option<f64> {
    h.as_ref().and_then(|h| h.quantile(q)).map(|v| v as f64)
}

impl Metrics {
    /// Pairs two points metric by metric.
    pub fn new(b: &Point, a: &Point) -> Metrics {
        Metrics {
            tx_packets: Change::new(b.tx_packets, a.tx_packets),
            rx_packets: Change::new(b.rx_packets, a.rx_packets),
            enqueues_per_packet: Change::new(b.enqueues_per_packet, a.enqueues_per_packet),
            net_rx_raises: Change::new(b.net_rx_raises, a.net_rx_raises),
            raises_per_packet: Change::new(b.raises_per_packet, a.raises_per_packet),
            softirq_ns: Change::new(b.softirq_ns, a.softirq_ns),
            softirq_ns_per_packet: Change::new(b.softirq_ns_per_packet, a.softirq_ns_per_packet),
            veth_hop_p50_ns: Change::new(b.veth_hop_p50_ns, a.veth_hop_p50_ns),
            veth_hop_p99_ns: Change::new(b.veth_hop_p99_ns, a.veth_hop_p99_ns),
            backlog_wait_p50_ns: Change::new(b.backlog_wait_p50_ns, a.backlog_wait_p50_ns),
            backlog_wait_p99_ns: Change::new(b.backlog_wait_p99_ns, a.backlog_wait_p99_ns),
        }
    }
}
