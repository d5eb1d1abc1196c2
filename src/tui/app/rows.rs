//! Interface rows: their rates, history and sort keys.

use std::cmp::Ordering;
use std::collections::VecDeque;

use super::HISTORY_LEN;
use crate::model::{IfaceKey, Interface, RaiseSite};

/// Columns of the interfaces table, in display order; every one is sortable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Netns,
    Name,
    Kind,
    Peer,
    TxPps,
    RxPps,
    Raises,
    SoftirqPct,
    NsPerPkt,
    HopP50,
    HopP99,
    BacklogP99,
}

impl SortColumn {
    pub const ALL: [SortColumn; 12] = [
        SortColumn::Netns,
        SortColumn::Name,
        SortColumn::Kind,
        SortColumn::Peer,
        SortColumn::TxPps,
        SortColumn::RxPps,
        SortColumn::Raises,
        SortColumn::SoftirqPct,
        SortColumn::NsPerPkt,
        SortColumn::HopP50,
        SortColumn::HopP99,
        SortColumn::BacklogP99,
    ];

    /// Column title as shown in the table header.
    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Netns => "NETNS",
            SortColumn::Name => "IFACE",
            SortColumn::Kind => "KIND",
            SortColumn::Peer => "PEER",
            SortColumn::TxPps => "TX PPS",
            SortColumn::RxPps => "RX PPS",
            SortColumn::Raises => "RAISE/S",
            SortColumn::SoftirqPct => "SIRQ CPU",
            SortColumn::NsPerPkt => "SIRQ/PKT",
            SortColumn::HopP50 => "HOP P50",
            SortColumn::HopP99 => "HOP P99",
            SortColumn::BacklogP99 => "BKLG P99",
        }
    }

    pub fn is_text(self) -> bool {
        matches!(
            self,
            SortColumn::Netns | SortColumn::Name | SortColumn::Kind | SortColumn::Peer
        )
    }

    pub fn next(self) -> SortColumn {
        let i = SortColumn::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ALL[(i + 1) % SortColumn::ALL.len()]
    }
}

/// One history point of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub tx_pps: f64,
    pub rx_pps: f64,
    pub softirq_pct: f64,
}

/// An interface's numbers over the last interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    pub tx_pps: f64,
    pub rx_pps: f64,
    pub enqueue_pps: f64,
    pub raises_ps: f64,
    /// NET_RX time attributed to the interface, % of one CPU.
    pub softirq_pct: f64,
    pub ns_per_pkt: Option<f64>,
    pub hop_p50: Option<u64>,
    pub hop_p99: Option<u64>,
    pub backlog_p99: Option<u64>,
}

impl Rates {
    /// Rates of an interval's activity `d` that lasted `interval_ns`.
    pub fn of(d: &Interface, interval_ns: u64) -> Rates {
        let ns = interval_ns.max(1) as f64;
        let per_s = |v: u64| v as f64 * 1e9 / ns;
        Rates {
            tx_pps: per_s(d.counters.tx_packets),
            rx_pps: per_s(d.counters.rx_packets),
            enqueue_pps: per_s(d.counters.rx_enqueued),
            raises_ps: per_s(d.counters.net_rx_raises),
            softirq_pct: d.counters.softirq_ns as f64 / ns * 100.0,
            ns_per_pkt: d.softirq_ns_per_packet(),
            hop_p50: d.veth_hop.quantile(0.5),
            hop_p99: d.veth_hop.quantile(0.99),
            backlog_p99: d.backlog_wait.quantile(0.99),
        }
    }
}

/// One (netns, ifindex) as the dashboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct IfaceRow {
    /// Identity and cumulative numbers, from the newest snapshot that listed it.
    pub iface: Interface,
    /// Activity in the last interval (zero once the interface stopped being reported).
    pub last: Interface,
    pub rates: Rates,
    /// Snapshot clock (ns since attach) at which it was first seen gone or missing.
    pub gone_since_ns: Option<u64>,
    pub history: VecDeque<Sample>,
    /// Sampled kernel stacks of the raises it caused in the last interval, most first.
    pub raise_sites: Vec<RaiseSite>,
    /// Receives the device counted in the last interval that sirqtop did not see, when
    /// worth the `!` mark (see `Interface::rx_unseen_notable_since`).
    pub unseen_last: Option<u64>,
}

impl IfaceRow {
    pub(super) fn new(iface: Interface) -> Self {
        IfaceRow {
            last: iface.clone(),
            iface,
            rates: Rates::default(),
            gone_since_ns: None,
            history: VecDeque::with_capacity(HISTORY_LEN),
            raise_sites: Vec::new(),
            unseen_last: None,
        }
    }

    pub fn key(&self) -> IfaceKey {
        self.iface.key
    }

    pub fn is_gone(&self) -> bool {
        self.gone_since_ns.is_some()
    }

    /// The veth peer as `name@netns-label`, empty when there is none.
    pub fn peer_text(&self) -> String {
        match &self.iface.peer {
            None => String::new(),
            Some(p) => {
                let name = p.name.clone().unwrap_or_else(|| format!("if{}", p.ifindex));
                let ns = p
                    .netns_label
                    .clone()
                    .unwrap_or_else(|| format!("netns:{}", p.netns));
                format!("{name}@{ns}")
            }
        }
    }

    pub fn kind(&self) -> &str {
        self.iface.kind.as_deref().unwrap_or("")
    }

    /// Case-insensitive substring match on name, netns label, kind and peer.
    pub fn matches(&self, needle_lower: &str) -> bool {
        if needle_lower.is_empty() {
            return true;
        }
        [
            self.iface.name.as_str(),
            self.iface.netns_label.as_str(),
            self.kind(),
            &self.peer_text(),
        ]
        .iter()
        .any(|h| h.to_lowercase().contains(needle_lower))
    }

    pub(super) fn push_sample(&mut self, s: Sample) {
        if self.history.len() >= HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(s);
    }

    pub(super) fn text_key(&self, col: SortColumn) -> String {
        match col {
            SortColumn::Netns => self.iface.netns_label.to_lowercase(),
            SortColumn::Name => self.iface.name.to_lowercase(),
            SortColumn::Kind => self.kind().to_lowercase(),
            SortColumn::Peer => self.peer_text().to_lowercase(),
            _ => String::new(),
        }
    }

    pub(super) fn num_key(&self, col: SortColumn) -> Option<f64> {
        let r = &self.rates;
        match col {
            SortColumn::TxPps => Some(r.tx_pps),
            SortColumn::RxPps => Some(r.rx_pps),
            SortColumn::Raises => Some(r.raises_ps),
            SortColumn::SoftirqPct => Some(r.softirq_pct),
            SortColumn::NsPerPkt => r.ns_per_pkt,
            SortColumn::HopP50 => r.hop_p50.map(|v| v as f64),
            SortColumn::HopP99 => r.hop_p99.map(|v| v as f64),
            SortColumn::BacklogP99 => r.backlog_p99.map(|v| v as f64),
            _ => None,
        }
    }
}

/// Orders optional numbers with None below every value.
pub(super) fn cmp_opt(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}
