//! Slow softirqs: runs, and raise -> run delays, of at least a threshold (`--slow`).
//! The kernel counts every one exactly (per CPU); the most recent ones also come as
//! events, rate-capped per CPU, of which user space keeps the last [`SLOW_EVENTS_KEPT`].

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IfaceKey;
use crate::bpf::limits::NR_VECTORS;

/// Events user space keeps (the newest); older ones leave as new ones come.
pub const SLOW_EVENTS_KEPT: usize = 256;

/// The default threshold: as bcc's softirqslower, long enough to be rare on a healthy node.
pub const DEFAULT_SLOW: Duration = Duration::from_millis(10);

/// Events the kernel sends per CPU per second at most (the rest are only counted): from
/// bpf/sirqtop.h through the skeleton.
pub const SLOW_PER_SEC: u64 = crate::bpf::types::sirq_slow_kind::SIRQ_SLOW_PER_SEC.0 as u64;

/// What was slow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SlowKind {
    /// The run itself: softirq_entry -> softirq_exit.
    #[default]
    Run,
    /// From the first raise to the run's start.
    Delay,
}

impl SlowKind {
    pub const ALL: [SlowKind; 2] = [SlowKind::Run, SlowKind::Delay];

    pub fn as_str(self) -> &'static str {
        match self {
            SlowKind::Run => "run",
            SlowKind::Delay => "delay",
        }
    }

    /// The kernel's number (enum sirq_slow_kind), None for an unknown one.
    pub fn from_raw(k: u32) -> Option<SlowKind> {
        match k {
            0 => Some(SlowKind::Run),
            1 => Some(SlowKind::Delay),
            _ => None,
        }
    }
}

/// One slow softirq run or delay.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlowEvent {
    /// Order of arrival since attach (1, 2, ...): what interval deltas cut at.
    pub seq: u64,
    /// When: nanoseconds since attach (the run's end, or the delayed run's start).
    pub at_ns: u64,
    /// The same moment as Unix time in nanoseconds.
    pub unix_ns: u64,
    pub cpu: u32,
    pub vector: usize,
    pub kind: SlowKind,
    pub duration_ns: u64,
    /// It ran in the CPU's ksoftirqd (deferred work).
    pub ksoftirqd: bool,
    /// The task on the CPU when the softirq ran: the one it interrupted (or ksoftirqd);
    /// pid 0 is idle.
    pub pid: u32,
    pub comm: String,
    pub netns: u32,
    pub netns_cookie: u64,
    /// The task's namespace label, as interfaces and payers are labelled.
    pub netns_label: String,
    /// NET_RX runs: packets received in the run.
    pub packets: Option<u32>,
    /// NET_RX runs: the interface that received most of them (the majority vote's winner:
    /// exact whenever one interface received more than half).
    pub rx_top: Option<IfaceKey>,
    /// Its name and namespace label where known.
    pub rx_top_name: Option<String>,
    pub rx_top_label: Option<String>,
}

/// Slow softirqs of a capture (or an interval of it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlowSoftirqs {
    /// The threshold; 0 = not measured (--lite, or no softirq run hook).
    pub threshold_ns: u64,
    /// Exact counts per vector and kind (index: vector, then [run, delay]).
    pub counts: [[u64; 2]; NR_VECTORS],
    /// Not sent as events: over the per-CPU rate cap.
    pub capped: u64,
    /// Not sent as events: ring buffer full.
    pub lost: u64,
    /// Events not shown because newer ones took their place in the bounded list.
    pub dropped_old: u64,
    /// The last events, oldest first, at most [`SLOW_EVENTS_KEPT`].
    pub events: Vec<SlowEvent>,
}

impl SlowSoftirqs {
    pub fn count(&self, vector: usize, kind: SlowKind) -> u64 {
        self.counts.get(vector).map_or(0, |c| c[kind as usize])
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Slow softirqs counted but not in `events`: capped, lost, or pushed out.
    pub fn unlisted(&self) -> u64 {
        self.total().saturating_sub(self.events.len() as u64)
    }

    /// Newest first, as the dashboard shows them.
    pub fn newest_first(&self) -> impl Iterator<Item = &SlowEvent> {
        self.events.iter().rev()
    }

    /// What happened after `earlier`: counts are differences, events those that arrived
    /// after its newest.
    pub fn delta(&self, earlier: &SlowSoftirqs) -> SlowSoftirqs {
        let mut counts = self.counts;
        for (c, e) in counts.iter_mut().zip(&earlier.counts) {
            c[0] = c[0].saturating_sub(e[0]);
            c[1] = c[1].saturating_sub(e[1]);
        }
        let after = earlier.events.last().map_or(0, |e| e.seq);
        SlowSoftirqs {
            threshold_ns: self.threshold_ns,
            counts,
            capped: self.capped.saturating_sub(earlier.capped),
            lost: self.lost.saturating_sub(earlier.lost),
            dropped_old: self.dropped_old.saturating_sub(earlier.dropped_old),
            events: self
                .events
                .iter()
                .filter(|e| e.seq > after)
                .cloned()
                .collect(),
        }
    }
}

/// The last [`SLOW_EVENTS_KEPT`] events as they arrive, numbered.
#[derive(Debug, Default)]
pub struct SlowLog {
    events: VecDeque<SlowEvent>,
    next_seq: u64,
    dropped_old: u64,
}

impl SlowLog {
    pub fn push(&mut self, mut e: SlowEvent) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.events.len() == SLOW_EVENTS_KEPT {
            self.events.pop_front();
            self.dropped_old += 1;
        }
        self.events.push_back(e);
    }

    pub fn events_mut(&mut self) -> impl Iterator<Item = &mut SlowEvent> {
        self.events.iter_mut()
    }

    pub fn events(&self) -> Vec<SlowEvent> {
        self.events.iter().cloned().collect()
    }

    pub fn dropped_old(&self) -> u64 {
        self.dropped_old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(d: u64) -> SlowEvent {
        SlowEvent {
            duration_ns: d,
            ..SlowEvent::default()
        }
    }

    #[test]
    fn the_log_keeps_the_newest_and_counts_what_it_pushed_out() {
        let mut log = SlowLog::default();
        for d in 0..(SLOW_EVENTS_KEPT as u64 + 10) {
            log.push(ev(d));
        }
        let e = log.events();
        assert_eq!(e.len(), SLOW_EVENTS_KEPT);
        assert_eq!(e[0].duration_ns, 10);
        assert_eq!(e[0].seq, 11);
        assert_eq!(e.last().unwrap().seq, SLOW_EVENTS_KEPT as u64 + 10);
        assert_eq!(log.dropped_old(), 10);
    }

    #[test]
    fn deltas_subtract_counts_and_keep_later_events() {
        let mut log = SlowLog::default();
        log.push(ev(1));
        log.push(ev(2));
        let mut earlier = SlowSoftirqs {
            threshold_ns: 5,
            events: log.events(),
            capped: 3,
            ..SlowSoftirqs::default()
        };
        earlier.counts[3] = [4, 1];
        log.push(ev(3));
        let mut now = SlowSoftirqs {
            threshold_ns: 5,
            events: log.events(),
            capped: 10,
            lost: 2,
            ..SlowSoftirqs::default()
        };
        now.counts[3] = [9, 1];
        now.counts[1] = [0, 2];
        let d = now.delta(&earlier);
        assert_eq!(d.count(3, SlowKind::Run), 5);
        assert_eq!(d.count(3, SlowKind::Delay), 0);
        assert_eq!(d.count(1, SlowKind::Delay), 2);
        assert_eq!(d.total(), 7);
        assert_eq!((d.capped, d.lost), (7, 2));
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].duration_ns, 3);
        assert_eq!(d.unlisted(), 6);
        // From nothing: everything.
        assert_eq!(now.delta(&SlowSoftirqs::default()), now);
    }

    #[test]
    fn newest_first_reverses_arrival() {
        let mut log = SlowLog::default();
        for d in [7, 8, 9] {
            log.push(ev(d));
        }
        let s = SlowSoftirqs {
            events: log.events(),
            ..SlowSoftirqs::default()
        };
        let order: Vec<u64> = s.newest_first().map(|e| e.duration_ns).collect();
        assert_eq!(order, vec![9, 8, 7]);
        assert_eq!(SlowKind::from_raw(1), Some(SlowKind::Delay));
        assert_eq!(SlowKind::from_raw(2), None);
    }
}
