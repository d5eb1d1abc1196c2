//! Paths: where a packet first sent by one veth was received, hop by hop. The kernel
//! counts every receive of a tracked skb under (origin, previous receiver, receiver,
//! hop) ([`PathHop`]); [`build`] turns those into one [`Path`] per (origin, receiver,
//! hop count) with its hop chain and per-packet costs.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Histogram, IfaceKey, Interface};

/// The kernel's key of one path hop.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct PathHopKey {
    /// The veth that first transmitted the skb.
    pub origin: IfaceKey,
    /// The receiver before this one (the origin at hop 1).
    pub prev: IfaceKey,
    /// This receiver.
    pub to: IfaceKey,
    /// 1 = the first receive.
    pub hop: u32,
}

/// What the kernel counted for one path hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathHop {
    pub key: PathHopKey,
    pub packets: u64,
    /// Backlog enqueues of these skbs up to this receive, summed.
    pub enqueues: u64,
    /// Packets whose first transmit ran in a NET_RX softirq (a reply, clone or copy of
    /// a received packet: its path may have begun earlier under another skb).
    pub origin_softirq: u64,
    /// First transmit -> this receive.
    pub latency: Histogram,
}

impl PathHop {
    pub fn merge(&mut self, o: &PathHop) {
        self.packets = self.packets.saturating_add(o.packets);
        self.enqueues = self.enqueues.saturating_add(o.enqueues);
        self.origin_softirq = self.origin_softirq.saturating_add(o.origin_softirq);
        self.latency.merge(&o.latency);
    }

    pub fn delta(&self, e: &PathHop) -> PathHop {
        PathHop {
            key: self.key,
            packets: self.packets.saturating_sub(e.packets),
            enqueues: self.enqueues.saturating_sub(e.enqueues),
            origin_softirq: self.origin_softirq.saturating_sub(e.origin_softirq),
            latency: self.latency.delta(&e.latency),
        }
    }
}

/// One hop's share of a path's cost: its receiver's own numbers per received packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HopCost {
    pub receiver: IfaceKey,
    pub backlog_enqueues_per_packet: Option<f64>,
    pub net_rx_raises_per_packet: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
}

/// Packets first sent by `from` and received by `to` as their `hops`-th receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub from: IfaceKey,
    pub to: IfaceKey,
    pub hops: u32,
    /// The receivers before `to`, in order (the chain most of its packets took).
    pub via: Vec<IfaceKey>,
    pub packets: u64,
    pub origin_softirq: u64,
    /// Backlog enqueues per packet over all its hops, exact (counted per skb).
    pub backlog_enqueues_per_packet: f64,
    /// Per hop (`via`, then `to`): the receiver's per-packet costs.
    pub hop_costs: Vec<HopCost>,
    pub latency: Histogram,
}

impl Path {
    /// NET_RX raises per packet, summed over the hops (None when a hop has no number).
    pub fn net_rx_raises_per_packet(&self) -> Option<f64> {
        self.hop_costs
            .iter()
            .map(|h| h.net_rx_raises_per_packet)
            .sum()
    }

    /// NET_RX softirq time per packet, summed over the hops.
    pub fn softirq_ns_per_packet(&self) -> Option<f64> {
        self.hop_costs.iter().map(|h| h.softirq_ns_per_packet).sum()
    }

    /// Softirq time the path's packets cost in all (for ranking).
    pub fn softirq_ns_total(&self) -> f64 {
        self.softirq_ns_per_packet().unwrap_or(0.0) * self.packets as f64
    }
}

/// What each interface costs per received packet, for hop costs.
fn hop_cost(receiver: IfaceKey, i: Option<&Interface>, raises: bool, time: bool) -> HopCost {
    let per = |n: u64| {
        i.filter(|i| i.counters.rx_packets > 0)
            .map(|i| n as f64 / i.counters.rx_packets as f64)
    };
    let c = i.map(|i| i.counters).unwrap_or_default();
    HopCost {
        receiver,
        backlog_enqueues_per_packet: per(c.rx_enqueued),
        net_rx_raises_per_packet: if raises { per(c.net_rx_raises) } else { None },
        softirq_ns_per_packet: if time { per(c.softirq_ns) } else { None },
    }
}

/// (origin, receiver, hop).
type GroupKey = (IfaceKey, IfaceKey, u32);

/// Builds the paths of a snapshot's hops: one per (origin, receiver, hop count), most
/// softirq time first. `raises`/`time`: whether the capture measured NET_RX raises and
/// softirq time per interface (else those costs are None).
pub fn build(hops: &[PathHop], interfaces: &[Interface], raises: bool, time: bool) -> Vec<Path> {
    let by_key: HashMap<IfaceKey, &Interface> = interfaces.iter().map(|i| (i.key, i)).collect();
    // (origin, to, hop) -> summed numbers and packets per previous receiver.
    let mut groups: BTreeMap<GroupKey, (PathHop, BTreeMap<IfaceKey, u64>)> = BTreeMap::new();
    for h in hops.iter().filter(|h| h.packets > 0) {
        let g = groups
            .entry((h.key.origin, h.key.to, h.key.hop))
            .or_insert_with(|| {
                (
                    PathHop {
                        key: h.key,
                        ..PathHop::default()
                    },
                    BTreeMap::new(),
                )
            });
        g.0.merge(h);
        *g.1.entry(h.key.prev).or_default() += h.packets;
    }
    let dominant_prev = |origin: IfaceKey, to: IfaceKey, hop: u32| -> Option<IfaceKey> {
        let (_, prevs) = groups.get(&(origin, to, hop))?;
        prevs
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
    };
    let mut out: Vec<Path> = groups
        .iter()
        .map(|(&(origin, to, hop), (sum, _))| {
            // Walk back from the receiver: each step's dominant previous receiver.
            let mut via = Vec::new();
            let (mut cur, mut h) = (to, hop);
            while h > 1 {
                let Some(p) = dominant_prev(origin, cur, h) else {
                    break;
                };
                via.push(p);
                cur = p;
                h -= 1;
            }
            via.reverse();
            let hop_costs = via
                .iter()
                .chain(std::iter::once(&to))
                .map(|r| hop_cost(*r, by_key.get(r).copied(), raises, time))
                .collect();
            Path {
                from: origin,
                to,
                hops: hop,
                via,
                packets: sum.packets,
                origin_softirq: sum.origin_softirq,
                backlog_enqueues_per_packet: sum.enqueues as f64 / sum.packets as f64,
                hop_costs,
                latency: sum.latency,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.softirq_ns_total()
            .total_cmp(&a.softirq_ns_total())
            .then(b.packets.cmp(&a.packets))
            .then((a.from, a.to, a.hops).cmp(&(b.from, b.to, b.hops)))
    });
    out
}

/// Hops of `now` minus those of `earlier`, by key (new keys whole).
pub fn delta(now: &[PathHop], earlier: &[PathHop]) -> Vec<PathHop> {
    let prev: HashMap<PathHopKey, &PathHop> = earlier.iter().map(|h| (h.key, h)).collect();
    now.iter()
        .map(|h| match prev.get(&h.key) {
            Some(e) => h.delta(e),
            None => *h,
        })
        .filter(|h| h.packets > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(netns: u32, ifindex: u32) -> IfaceKey {
        IfaceKey {
            netns,
            ifindex,
            cookie: u64::from(netns),
        }
    }

    fn hop(origin: IfaceKey, prev: IfaceKey, to: IfaceKey, n: u32, packets: u64) -> PathHop {
        let mut latency = Histogram::default();
        for _ in 0..packets {
            latency.record(u64::from(n) * 1000);
        }
        PathHop {
            key: PathHopKey {
                origin,
                prev,
                to,
                hop: n,
            },
            packets,
            enqueues: packets * u64::from(n),
            origin_softirq: 0,
            latency,
        }
    }

    fn iface(key: IfaceKey, rx: u64, enq: u64, raises: u64, ns: u64) -> Interface {
        let mut i = Interface::new(key);
        i.counters.rx_packets = rx;
        i.counters.rx_enqueued = enq;
        i.counters.net_rx_raises = raises;
        i.counters.softirq_ns = ns;
        i
    }

    #[test]
    fn a_bridged_path_has_its_chain_and_summed_costs() {
        // client eth0 -> vethX@host (hop 1) -> bridge -> vethY -> pod eth0 (hop 2).
        let (client, vx, pod) = (k(1, 2), k(9, 10), k(2, 2));
        let hops = [
            hop(client, client, vx, 1, 100),
            hop(client, vx, pod, 2, 100),
        ];
        let ifaces = [
            iface(vx, 100, 100, 50, 100_000),
            iface(pod, 200, 200, 20, 600_000),
        ];
        let paths = build(&hops, &ifaces, true, true);
        assert_eq!(paths.len(), 2);
        let p = paths.iter().find(|p| p.to == pod).unwrap();
        assert_eq!((p.from, p.hops, p.packets), (client, 2, 100));
        assert_eq!(p.via, vec![vx]);
        assert_eq!(p.backlog_enqueues_per_packet, 2.0);
        // vx: 0.5 raises and 1000 ns per packet; pod: 0.1 and 3000 ns.
        assert_eq!(p.net_rx_raises_per_packet(), Some(0.6));
        assert_eq!(p.softirq_ns_per_packet(), Some(4000.0));
        assert_eq!(p.hop_costs.len(), 2);
        assert_eq!(p.hop_costs[1].softirq_ns_per_packet, Some(3000.0));
        assert_eq!(p.latency.count, 100);
        // Most softirq time first: the 2-hop path (100 × 4000 ns) before hop 1's.
        assert_eq!(paths[0].to, pod);
        // Without softirq hooks the time is unknown, never 0.
        let lite = build(&hops, &ifaces, false, false);
        assert_eq!(lite[0].softirq_ns_per_packet(), None);
        assert_eq!(lite[0].net_rx_raises_per_packet(), None);
    }

    #[test]
    fn the_chain_follows_most_packets_and_hops_sum_by_receiver() {
        // Two routes to `to` at hop 2 (ECMP): one path, its chain through the busier one.
        let (o, a, b, to) = (k(1, 2), k(9, 3), k(9, 4), k(2, 2));
        let hops = [
            hop(o, o, a, 1, 30),
            hop(o, o, b, 1, 70),
            hop(o, a, to, 2, 30),
            hop(o, b, to, 2, 70),
        ];
        let paths = build(&hops, &[], true, true);
        let p = paths.iter().find(|p| p.to == to).unwrap();
        assert_eq!(p.packets, 100);
        assert_eq!(p.via, vec![b]);
        // No interface numbers: costs unknown, enqueues still exact.
        assert_eq!(p.softirq_ns_per_packet(), None);
        assert_eq!(p.backlog_enqueues_per_packet, 2.0);
    }

    #[test]
    fn delta_of_hops() {
        let (o, to) = (k(1, 2), k(2, 2));
        let a = [hop(o, o, to, 1, 10)];
        let b = [hop(o, o, to, 1, 25), hop(o, to, k(3, 3), 2, 5)];
        let d = delta(&b, &a);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].packets, 15);
        assert_eq!(d[0].latency.count, 15);
        assert_eq!(d[1].packets, 5);
        assert!(delta(&a, &a).is_empty());
    }
}
