//! Findings: what the numbers of a capture (or of the dashboard's last interval) mean, and
//! what to change. Pure over a snapshot; every threshold is a constant below, and every
//! finding needs a minimum of samples so that a handful of events never makes one.

mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Availability, Snapshot};

/// A path counts as measured from this many packets on.
pub const MIN_PATH_PACKETS: u64 = 100;
/// A path with at least this many backlog enqueues per packet crosses extra veth hops
/// (a one-hop veth pair has 1).
pub const EXTRA_HOP_ENQUEUES: f64 = 1.5;
/// NET_RX runs a CPU needs before its squeeze, ksoftirqd or concentration numbers count.
pub const MIN_NET_RX_RUNS: u64 = 100;
/// Squeezed NET_RX runs (budget or time used up with work left), as a share of runs.
pub const SQUEEZE_SHARE: f64 = 0.01;
/// Squeezes a CPU needs, whatever the share.
pub const MIN_SQUEEZES: u64 = 10;
/// Backlog-full drops (softnet `dropped`) on one CPU that make a finding.
pub const MIN_BACKLOG_DROPS: u64 = 10;
/// NET_RX time of the busiest CPU, as a share of the window, for it to be "busy".
pub const HOT_CPU_SHARE: f64 = 0.10;
/// The busiest CPU's share of all CPUs' NET_RX time for it to be "concentrated".
pub const CONCENTRATION_SHARE: f64 = 0.80;
/// Runs of a vector in ksoftirqd, as a share of its runs on a CPU.
pub const KSOFTIRQD_SHARE: f64 = 0.10;
/// NET_RX raise -> run delay p99 (node-wide) above which softirqs wait too long.
pub const RAISE_TO_RUN_P99_NS: u64 = 1_000_000;
/// Raise -> run samples needed for that p99.
pub const MIN_RAISE_TO_RUN_SAMPLES: u64 = 1000;
/// Drops of one reason on one interface that make a finding.
pub const MIN_REASON_DROPS: u64 = 10;
/// Packets a veth's peer must have sent before its hop coverage counts.
pub const MIN_XDP_PACKETS: u64 = 100;
/// A NAPI-received veth whose peer's hop samples cover less than this share of its
/// transmits has its skbs replaced on the way (XDP copying them).
pub const XDP_COPY_COVERAGE: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One finding. `id` is stable (a public contract like the JSON field names); `subject`
/// names the CPU ("cpu1"), interface ("netns/name"), vector or path it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub subject: String,
    /// The numbers behind it, by name.
    pub numbers: BTreeMap<String, f64>,
    /// What the numbers mean, in one sentence.
    pub summary: String,
    /// What to do about it.
    pub remedy: String,
}

impl Finding {
    fn new(id: &str, severity: Severity, subject: String) -> Finding {
        Finding {
            id: id.into(),
            severity,
            subject,
            numbers: BTreeMap::new(),
            summary: String::new(),
            remedy: String::new(),
        }
    }

    fn num(mut self, name: &str, v: f64) -> Finding {
        self.numbers.insert(name.into(), v);
        self
    }

    fn says(mut self, summary: String, remedy: &str) -> Finding {
        self.summary = summary;
        self.remedy = remedy.into();
        self
    }
}

/// Every finding the snapshot's numbers support, most severe first. `snap` covers one
/// window (a whole capture, or the dashboard's last interval); `av` says what was
/// measured, so an unmeasured metric never makes (or hides) a finding.
pub fn evaluate(snap: &Snapshot, av: &Availability) -> Vec<Finding> {
    let mut out = Vec::new();
    rules::extra_veth_hops(snap, av, &mut out);
    rules::softnet(snap, &mut out);
    rules::net_rx_one_cpu(snap, av, &mut out);
    rules::ksoftirqd(snap, av, &mut out);
    rules::raise_to_run(snap, av, &mut out);
    rules::drops_by_reason(snap, av, &mut out);
    rules::xdp_copies(snap, av, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.subject.cmp(&b.subject))
    });
    out
}
