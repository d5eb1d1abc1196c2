//! `slow_softirqs`: slow softirq runs and delays (see README, Slow softirqs).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::slow::{SLOW_EVENTS_KEPT, SLOW_PER_SEC};
use crate::model::{SlowSoftirqs, VECTOR_NAMES};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSlowSoftirqs {
    /// Runs and raise -> run delays at least this long are slow (`--slow`).
    pub threshold_ns: u64,
    /// Exact counts: vector -> {"run": n, "delay": n} (vectors with any only).
    pub counts: std::collections::BTreeMap<String, JsonSlowCount>,
    /// Slow softirqs not sent as events: over the rate cap (`rate_cap_per_cpu_per_sec`).
    pub capped: u64,
    /// Slow softirqs not sent as events: the ring buffer was full.
    pub lost: u64,
    /// Events older than the last `events_kept_max`, no longer listed.
    pub dropped_old: u64,
    pub rate_cap_per_cpu_per_sec: u64,
    pub events_kept_max: u64,
    /// The last events, newest first.
    pub events: Vec<JsonSlowEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JsonSlowCount {
    pub run: u64,
    pub delay: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSlowEvent {
    /// RFC 3339 UTC.
    pub time: String,
    /// Nanoseconds since the capture started.
    pub at_ns: u64,
    pub cpu: u32,
    pub vector: String,
    pub kind: crate::model::SlowKind,
    pub duration_ns: u64,
    pub in_ksoftirqd: bool,
    /// The task on the CPU when the softirq ran (interrupted, or ksoftirqd; pid 0 = idle).
    pub pid: u32,
    pub comm: String,
    pub netns_inode: u32,
    pub netns_label: Option<String>,
    /// NET_RX runs: packets received in the run.
    pub packets: Option<u32>,
    /// NET_RX runs: the interface that received most of them.
    pub rx_interface: Option<JsonSlowIface>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSlowIface {
    pub netns_inode: u32,
    pub ifindex: u32,
    pub netns_cookie: u64,
    pub name: Option<String>,
    pub netns_label: Option<String>,
}

/// The JSON section, or None when slow softirqs were not measured.
pub fn slow_softirqs(s: &SlowSoftirqs) -> Option<JsonSlowSoftirqs> {
    if s.threshold_ns == 0 {
        return None;
    }
    Some(JsonSlowSoftirqs {
        threshold_ns: s.threshold_ns,
        counts: VECTOR_NAMES
            .iter()
            .zip(&s.counts)
            .filter(|(_, c)| c[0] + c[1] > 0)
            .map(|(n, c)| {
                let count = JsonSlowCount {
                    run: c[0],
                    delay: c[1],
                };
                (n.to_string(), count)
            })
            .collect(),
        capped: s.capped,
        lost: s.lost,
        dropped_old: s.dropped_old,
        rate_cap_per_cpu_per_sec: SLOW_PER_SEC,
        events_kept_max: SLOW_EVENTS_KEPT as u64,
        events: s
            .newest_first()
            .map(|e| JsonSlowEvent {
                time: super::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_nanos(e.unix_ns)),
                at_ns: e.at_ns,
                cpu: e.cpu,
                vector: VECTOR_NAMES.get(e.vector).unwrap_or(&"?").to_string(),
                kind: e.kind,
                duration_ns: e.duration_ns,
                in_ksoftirqd: e.ksoftirqd,
                pid: e.pid,
                comm: e.comm.clone(),
                netns_inode: e.netns,
                netns_label: (!e.netns_label.is_empty()).then(|| e.netns_label.clone()),
                packets: e.packets,
                rx_interface: e.rx_top.map(|k| JsonSlowIface {
                    netns_inode: k.netns,
                    ifindex: k.ifindex,
                    netns_cookie: k.cookie,
                    name: e.rx_top_name.clone(),
                    netns_label: e.rx_top_label.clone(),
                }),
            })
            .collect(),
    })
}
