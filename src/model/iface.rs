//! Interfaces: their key, counters and identity.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Histogram;

/// An interface is (netns cookie, ifindex): every pod has its own `eth0`, and the kernel
/// reuses a dead namespace's inode at once but never its cookie. The inode is what users
/// know (`ls -i`, `ip netns identify`); the cookie is 0 on kernels without one (< 5.12),
/// where (inode, ifindex) is all there is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct IfaceKey {
    pub netns: u32,
    pub ifindex: u32,
    pub cookie: u64,
}

impl IfaceKey {
    /// A key from a namespace inode and ifindex alone (no cookie known).
    pub fn new(netns: u32, ifindex: u32) -> IfaceKey {
        IfaceKey {
            netns,
            ifindex,
            cookie: 0,
        }
    }
}

/// Per-interface counters (summed over CPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IfaceCounters {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_enqueued: u64,
    pub rx_packets: u64,
    pub net_rx_raises: u64,
    pub softirq_ns: u64,
    /// skbs freed as dropped while on this device.
    pub dropped: u64,
    /// Polls of the device's own NAPI (with --napi-polls).
    pub napi_polls: u64,
    /// Packets it received without a backlog enqueue: from its own NAPI.
    pub napi_packets: u64,
    /// Its transmits handed to the peer's own NAPI that were never received as the same
    /// skb: XDP on the peer copied them (or GRO merged them). Not lost.
    #[serde(default)]
    pub napi_replaced: u64,
}

impl IfaceCounters {
    pub fn merge(&mut self, o: &IfaceCounters) {
        self.tx_packets = self.tx_packets.saturating_add(o.tx_packets);
        self.tx_bytes = self.tx_bytes.saturating_add(o.tx_bytes);
        self.rx_enqueued = self.rx_enqueued.saturating_add(o.rx_enqueued);
        self.rx_packets = self.rx_packets.saturating_add(o.rx_packets);
        self.net_rx_raises = self.net_rx_raises.saturating_add(o.net_rx_raises);
        self.softirq_ns = self.softirq_ns.saturating_add(o.softirq_ns);
        self.dropped = self.dropped.saturating_add(o.dropped);
        self.napi_polls = self.napi_polls.saturating_add(o.napi_polls);
        self.napi_packets = self.napi_packets.saturating_add(o.napi_packets);
        self.napi_replaced = self.napi_replaced.saturating_add(o.napi_replaced);
    }
    pub fn delta(&self, e: &IfaceCounters) -> IfaceCounters {
        IfaceCounters {
            tx_packets: self.tx_packets.saturating_sub(e.tx_packets),
            tx_bytes: self.tx_bytes.saturating_sub(e.tx_bytes),
            rx_enqueued: self.rx_enqueued.saturating_sub(e.rx_enqueued),
            rx_packets: self.rx_packets.saturating_sub(e.rx_packets),
            net_rx_raises: self.net_rx_raises.saturating_sub(e.net_rx_raises),
            softirq_ns: self.softirq_ns.saturating_sub(e.softirq_ns),
            dropped: self.dropped.saturating_sub(e.dropped),
            napi_polls: self.napi_polls.saturating_sub(e.napi_polls),
            napi_packets: self.napi_packets.saturating_sub(e.napi_packets),
            napi_replaced: self.napi_replaced.saturating_sub(e.napi_replaced),
        }
    }
    pub fn is_zero(&self) -> bool {
        *self == IfaceCounters::default()
    }
}

/// The other end of a veth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRef {
    pub netns: u32,
    pub ifindex: u32,
    /// The peer namespace's cookie; 0 when unknown.
    #[serde(default)]
    pub cookie: u64,
    pub name: Option<String>,
    /// Label of the peer's namespace (ip-netns name, "host", container, comm[pid]).
    pub netns_label: Option<String>,
}

/// One interface's identity and numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub key: IfaceKey,
    pub name: String,
    pub kind: Option<String>,
    /// `ip netns` name of its namespace, if it has one.
    pub netns_name: Option<String>,
    /// What an operator recognises the namespace by ("host", ip-netns name, container, comm[pid]).
    pub netns_label: String,
    /// The container owning the namespace, from its first process's cgroup.
    pub container: Option<crate::netns::ContainerRef>,
    pub peer: Option<PeerRef>,
    pub counters: IfaceCounters,
    pub veth_hop: Histogram,
    pub backlog_wait: Histogram,
    /// Drops by kernel drop reason (`NOT_SPECIFIED`, `PKT_TOO_BIG`, ...; `reason:N` where
    /// the running kernel's BTF does not name it).
    pub drop_reasons: BTreeMap<String, u64>,
    /// The interface (or its namespace) no longer exists; numbers are kept.
    pub gone: bool,
    /// Packets the kernel's own statistics of the device say it received over the same
    /// time (rtnetlink IFLA_STATS64 rx_packets, from attach); None where they are not
    /// known at both ends (a device gone, a namespace that could not be entered).
    pub kernel_rx_packets: Option<u64>,
}

/// Receives the kernel counted on a device but sirqtop did not see are worth a line when
/// they are at least this share of the device's own count (and at least [`UNSEEN_MIN`]):
/// a capture's edges and a live reading leave a few packets counted by one side only.
pub const UNSEEN_SHARE: f64 = 0.01;
pub const UNSEEN_MIN: u64 = 10;

fn notable(unseen: u64, kernel: u64) -> bool {
    unseen >= UNSEEN_MIN && unseen as f64 >= kernel as f64 * UNSEEN_SHARE
}

/// How an interface's packets were received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RxPath {
    /// Enqueued to the per-CPU backlog (netif_rx), received by process_backlog.
    Backlog,
    /// Polled by its own NAPI (veth with XDP or GRO, NICs, gro_cells).
    Napi,
    /// Both were seen.
    Both,
}

impl Interface {
    pub fn new(key: IfaceKey) -> Self {
        Interface {
            key,
            name: format!("if{}", key.ifindex),
            kind: None,
            netns_name: None,
            netns_label: format!("netns:{}", key.netns),
            container: None,
            peer: None,
            counters: IfaceCounters::default(),
            veth_hop: Histogram::default(),
            backlog_wait: Histogram::default(),
            drop_reasons: BTreeMap::new(),
            gone: false,
            kernel_rx_packets: None,
        }
    }

    /// Receives the kernel counted on the device that sirqtop did not see (a receive
    /// path whose hook is not attached: see `rx_another`); None where the kernel's count
    /// is not known.
    pub fn rx_unseen(&self) -> Option<u64> {
        self.kernel_rx_packets
            .map(|k| k.saturating_sub(self.counters.rx_packets))
    }

    /// [`rx_unseen`](Self::rx_unseen) when it is worth a warning or a mark. A live reading
    /// leaves some receives counted by one side only: a veth's count goes up when the
    /// packet is queued to the backlog, sirqtop's when NET_RX receives it, so what is still
    /// queued counts as seen here (its enqueue was), and what is left must be at least
    /// [`UNSEEN_MIN`] and [`UNSEEN_SHARE`] of the kernel's count (a capture's edges, a
    /// NAPI device's ring).
    pub fn rx_unseen_notable(&self) -> Option<u64> {
        let (unseen, kernel) = (self.rx_unseen()?, self.kernel_rx_packets?);
        notable(self.beyond_queued()?, kernel).then_some(unseen)
    }

    /// The receives that went unseen since `earlier` (this interface read before), when
    /// worth a mark: the growth of what [`rx_unseen_notable`](Self::rx_unseen_notable)
    /// weighs. Not the difference of the two counts over the interval: the device's is
    /// read first, a moment behind sirqtop's, and how far behind varies from reading to
    /// reading.
    pub fn rx_unseen_notable_since(&self, earlier: &Interface) -> Option<u64> {
        let grown = self
            .beyond_queued()?
            .saturating_sub(earlier.beyond_queued().unwrap_or(0));
        let kernel = self
            .kernel_rx_packets?
            .saturating_sub(earlier.kernel_rx_packets.unwrap_or(0));
        notable(grown, kernel).then_some(grown)
    }

    /// The kernel's receives beyond those sirqtop received or saw queued.
    fn beyond_queued(&self) -> Option<u64> {
        let c = &self.counters;
        Some(
            self.kernel_rx_packets?
                .saturating_sub(c.rx_packets.max(c.rx_enqueued)),
        )
    }

    /// The receive path(s) seen; None when nothing was received.
    pub fn rx_path(&self) -> Option<RxPath> {
        let c = &self.counters;
        match (c.rx_enqueued > 0, c.napi_packets > 0) {
            (true, true) => Some(RxPath::Both),
            (true, false) => Some(RxPath::Backlog),
            (false, true) => Some(RxPath::Napi),
            // --lite cannot tell NAPI packets apart; received, never enqueued: NAPI.
            (false, false) if c.rx_packets > 0 => Some(RxPath::Napi),
            (false, false) => None,
        }
    }

    /// NET_RX time per received packet, None when nothing was received.
    pub fn softirq_ns_per_packet(&self) -> Option<f64> {
        (self.counters.rx_packets > 0)
            .then(|| self.counters.softirq_ns as f64 / self.counters.rx_packets as f64)
    }

    pub fn is_active(&self) -> bool {
        !self.counters.is_zero()
            || !self.veth_hop.is_empty()
            || !self.backlog_wait.is_empty()
            || self.rx_unseen().unwrap_or(0) > 0
    }

    /// The same interface's activity since `earlier` (identity from `self`).
    pub fn delta(&self, earlier: &Interface) -> Interface {
        Interface {
            counters: self.counters.delta(&earlier.counters),
            veth_hop: self.veth_hop.delta(&earlier.veth_hop),
            backlog_wait: self.backlog_wait.delta(&earlier.backlog_wait),
            drop_reasons: self
                .drop_reasons
                .iter()
                .map(|(r, n)| {
                    let before = earlier.drop_reasons.get(r).copied().unwrap_or(0);
                    (r.clone(), n.saturating_sub(before))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            kernel_rx_packets: match (self.kernel_rx_packets, earlier.kernel_rx_packets) {
                (Some(n), Some(e)) => Some(n.saturating_sub(e)),
                (n, None) => n,
                (None, Some(_)) => None,
            },
            ..self.clone()
        }
    }
}
