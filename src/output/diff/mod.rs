//! `sirqtop diff`: two JSON captures side by side, matched by interface.
//!
//! Pure: [`parse_match`], [`diff`] and [`render_table`] work on parsed captures; reading
//! the files and printing is the CLI's (`cli::diff`). A metric that is null in a capture (its hook was not
//! attached on that kernel) or cannot be computed (no packets received, empty histogram)
//! is `None` here, prints as "—" and has no change.

mod metrics;
mod node;
mod pair;
mod paths;
mod render;

use serde::{Deserialize, Serialize};

use crate::output::json::{Capture, JsonInterface};

pub use metrics::Point;
pub use node::{softnet_total, FindingChange, SoftnetChange};
pub use pair::parse_match;
use pair::{pair, sort_refs};
use paths::path_rows;
pub use render::render_table;

/// Version of the `--json` diff document below; bumped only on incompatible changes.
pub const DIFF_VERSION: u32 = 1;

/// Every variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("invalid --match {arg}: {why} (use BEFORE=AFTER, each side NAME or NETNS/NAME)")]
    BadMatch { arg: String, why: &'static str },
    #[error("--match {arg}: {why}")]
    Unresolved { arg: String, why: String },
}

/// One interface as an operator names it: `netns/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceRef {
    /// The namespace label ("host", ip-netns name, "containerd:ID12", "comm[pid]", or
    /// "netns:INODE").
    pub netns: String,
    pub name: String,
    pub kind: Option<String>,
    pub netns_inode: u32,
    pub ifindex: u32,
}

impl IfaceRef {
    fn of(i: &JsonInterface) -> IfaceRef {
        IfaceRef {
            netns: label_of(i),
            name: i.name.clone(),
            kind: i.kind.clone(),
            netns_inode: i.netns_inode,
            ifindex: i.ifindex,
        }
    }

    fn shown(&self) -> String {
        match &self.kind {
            Some(k) => format!("{}/{} ({k})", self.netns, self.name),
            None => format!("{}/{}", self.netns, self.name),
        }
    }
}

/// Captures written before `netns_label` existed only have the ip-netns name, or nothing.
fn label_of(i: &JsonInterface) -> String {
    i.netns_label
        .clone()
        .or_else(|| i.netns_name.clone())
        .unwrap_or_else(|| format!("netns:{}", i.netns_inode))
}

/// One metric on both sides. `delta` = after − before and `pct` = 100 × delta / before,
/// null when either side is null, and also when the baseline is (near) zero: then `new`
/// is true if the after side has something (a percentage of nothing says nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub delta: Option<f64>,
    pub pct: Option<f64>,
    #[serde(default)]
    pub new: bool,
}

/// A baseline below this share of the after value counts as none: 1 packet before and
/// 188 085 after is "new", not "+18,808,500 %".
pub const NEGLIGIBLE_BASE: f64 = 0.001;

impl Change {
    pub fn new(before: Option<f64>, after: Option<f64>) -> Change {
        let delta = match (before, after) {
            (Some(b), Some(a)) => Some(a - b),
            _ => None,
        };
        let negligible = match (before, after) {
            (Some(b), Some(a)) => b == 0.0 || b.abs() < NEGLIGIBLE_BASE * a.abs(),
            _ => false,
        };
        let pct = match (before, delta) {
            (Some(b), Some(d)) if !negligible => Some(100.0 * d / b),
            _ => None,
        };
        Change {
            before,
            after,
            delta,
            pct,
            new: negligible && after.is_some_and(|a| a != 0.0),
        }
    }
}

/// The compared metrics. Ratios are per received packet (`rx_packets`); latencies are
/// nanoseconds, quantiles of the log2 histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub tx_packets: Change,
    pub rx_packets: Change,
    /// Backlog enqueues per received packet: the most direct hop signal (a packet that
    /// crosses two veths is enqueued twice).
    #[serde(default)]
    pub enqueues_per_packet: Change,
    pub net_rx_raises: Change,
    pub raises_per_packet: Change,
    pub softirq_ns: Change,
    pub softirq_ns_per_packet: Change,
    pub veth_hop_p50_ns: Change,
    pub veth_hop_p99_ns: Change,
    pub backlog_wait_p50_ns: Change,
    pub backlog_wait_p99_ns: Change,
}

/// How a pair of interfaces was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// A `--match BEFORE=AFTER` the user gave.
    Match,
    /// Same namespace label and interface name.
    NetnsAndName,
    /// Same interface name, the only one of that name left on each side.
    Name,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub before: IfaceRef,
    pub after: IfaceRef,
    pub matched_by: MatchedBy,
    pub metrics: Metrics,
}

/// Where one capture came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The file name (or any name the caller gives, e.g. "veth").
    pub source: String,
    pub kernel: String,
    pub started_at: String,
    pub duration_ns: u64,
    pub interface_count: usize,
}

impl Side {
    fn of(source: &str, c: &Capture) -> Side {
        Side {
            source: source.to_string(),
            kernel: c.kernel.release.clone(),
            started_at: c.capture.started_at.clone(),
            duration_ns: c.capture.duration_ns,
            interface_count: c.interfaces.len(),
        }
    }
}

/// A comparison of two captures; also the `--json` document (`sirqtop diff --json`):
///
/// ```text
/// {
///   "diff_version": 1,
///   "before": {"source": "a.json", "kernel": "6.18.44", "started_at": "...Z",
///              "duration_ns": 10000000000, "interface_count": 2},
///   "after":  {...same fields...},
///   "interfaces": [                       // matched pairs, sorted by before netns/name
///     {"before": {"netns": "pod-a", "name": "eth0", "kind": "veth",
///                 "netns_inode": 4026532301, "ifindex": 3},
///      "after":  {...same fields...},
///      "matched_by": "match" | "netns_and_name" | "name",
///      "metrics": {METRIC: {"before": f64|null, "after": f64|null,
///                           "delta": f64|null, "pct": f64|null}, ...}}
///   ],
///   "only_before": [{"netns": ..., "name": ..., ...}],   // unmatched, same fields
///   "only_after":  [...],
///   "total": {METRIC: {...}, ...},        // over every interface of each capture
///   "softnet": {"processed"|"dropped"|"time_squeeze"|"received_rps": {...}} | null,
///   "findings": [{"id": ..., "subject": ..., "severity": ..., "before": bool, "after": bool}],
///   "notes": ["..."]                      // kernel/backend differences, losses
/// }
/// ```
///
/// METRIC is one of `tx_packets`, `rx_packets`, `net_rx_raises`, `raises_per_packet`
/// (net_rx_raises / rx_packets), `softirq_ns`, `softirq_ns_per_packet` (softirq_ns /
/// rx_packets), `veth_hop_p50_ns`, `veth_hop_p99_ns`, `backlog_wait_p50_ns`,
/// `backlog_wait_p99_ns`. `delta` = after − before, `pct` = 100 × delta / before; a null
/// side (hook not attached, nothing received, empty histogram) makes delta and pct null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub diff_version: u32,
    pub before: Side,
    pub after: Side,
    pub interfaces: Vec<Row>,
    pub only_before: Vec<IfaceRef>,
    pub only_after: Vec<IfaceRef>,
    pub total: Metrics,
    /// The totals per request, when the user gave the request counts (`--per`): counts
    /// only, the per-packet rows are in `total`.
    #[serde(default)]
    pub per_request: Option<PerRequest>,
    /// Paths matched by (from, to, hops), most packets after first.
    #[serde(default)]
    pub paths: Vec<PathRow>,
    /// The kernel's softnet counters over all CPUs; null unless both captures have them.
    #[serde(default)]
    pub softnet: Option<SoftnetChange>,
    /// Findings of either capture by (id, subject): in both, only before (gone), or only
    /// after (new).
    #[serde(default)]
    pub findings: Vec<FindingChange>,
    pub notes: Vec<String>,
}

/// Request counts of the two captures and the totals divided by them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerRequest {
    pub before_requests: f64,
    pub after_requests: f64,
    pub tx_packets: Change,
    pub rx_packets: Change,
    pub backlog_enqueues: Change,
    pub net_rx_raises: Change,
    pub softirq_ns: Change,
}

/// One path on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRow {
    /// `netns/name` of the first transmitter and of the receiver.
    pub from: String,
    pub to: String,
    pub hops: u32,
    pub packets: Change,
    pub backlog_enqueues_per_packet: Change,
    pub net_rx_raises_per_packet: Change,
    pub softirq_ns_per_packet: Change,
    pub latency_p50_ns: Change,
    pub latency_p99_ns: Change,
}

/// Parses `--per before=N,after=M` (request counts, > 0).
pub fn parse_per(arg: &str) -> Result<(f64, f64), String> {
    let bad = || format!("invalid --per '{arg}' (use before=N,after=M with N, M > 0)");
    let (mut b, mut a) = (None, None);
    for part in arg.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        let v: f64 = v.trim().parse().map_err(|_| bad())?;
        if !(v > 0.0 && v.is_finite()) {
            return Err(bad());
        }
        match k.trim() {
            "before" => b = Some(v),
            "after" => a = Some(v),
            _ => return Err(bad()),
        }
    }
    Ok((b.ok_or_else(bad)?, a.ok_or_else(bad)?))
}

/// Compares two captures. `matches` are checked `--match` pairs (see [`parse_match`]);
/// sides are named "before" and "after" until the caller sets `Diff::before.source`.
pub fn diff(
    before: &Capture,
    after: &Capture,
    matches: &[(String, String)],
    per: Option<(f64, f64)>,
) -> Result<Diff, DiffError> {
    let pairs = pair(before, after, matches)?;
    let mut rows: Vec<Row> = pairs
        .iter()
        .map(|&(kb, ka, by)| {
            let (b, a) = (&before.interfaces[kb], &after.interfaces[ka]);
            Row {
                before: IfaceRef::of(b),
                after: IfaceRef::of(a),
                matched_by: by,
                metrics: Metrics::new(&Point::of_interface(b), &Point::of_interface(a)),
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        (&x.before.netns, &x.before.name, x.before.ifindex).cmp(&(
            &y.before.netns,
            &y.before.name,
            y.before.ifindex,
        ))
    });
    let unpaired = |c: &Capture, taken: &dyn Fn(usize) -> bool| -> Vec<IfaceRef> {
        let mut v: Vec<IfaceRef> = (0..c.interfaces.len())
            .filter(|&k| !taken(k))
            .map(|k| IfaceRef::of(&c.interfaces[k]))
            .collect();
        sort_refs(&mut v);
        v
    };
    let only_before = unpaired(before, &|k| pairs.iter().any(|p| p.0 == k));
    let only_after = unpaired(after, &|k| pairs.iter().any(|p| p.1 == k));
    Ok(Diff {
        diff_version: DIFF_VERSION,
        before: Side::of("before", before),
        after: Side::of("after", after),
        interfaces: rows,
        only_before,
        only_after,
        total: Metrics::new(&Point::of_capture(before), &Point::of_capture(after)),
        per_request: per.map(|(nb, na)| {
            let (b, a) = (
                Point::of_capture(before).per(nb),
                Point::of_capture(after).per(na),
            );
            PerRequest {
                before_requests: nb,
                after_requests: na,
                tx_packets: Change::new(b.tx_packets, a.tx_packets),
                rx_packets: Change::new(b.rx_packets, a.rx_packets),
                backlog_enqueues: Change::new(b.rx_enqueued, a.rx_enqueued),
                net_rx_raises: Change::new(b.net_rx_raises, a.net_rx_raises),
                softirq_ns: Change::new(b.softirq_ns, a.softirq_ns),
            }
        }),
        paths: path_rows(before, after, matches),
        softnet: node::softnet_change(before, after),
        findings: node::finding_changes(before, after),
        notes: notes(before, after),
    })
}

/// What makes the two captures less comparable than they look.
fn notes(before: &Capture, after: &Capture) -> Vec<String> {
    let mut n = Vec::new();
    if before.kernel.release != after.kernel.release {
        n.push(format!(
            "kernels differ: {} before, {} after",
            before.kernel.release, after.kernel.release
        ));
    }
    let (bb, ab) = (&before.kernel.backends, &after.kernel.backends);
    let mut hooks: Vec<&String> = bb.keys().chain(ab.keys()).collect();
    hooks.sort();
    hooks.dedup();
    for h in hooks {
        match (bb.get(h), ab.get(h)) {
            (Some(x), Some(y)) if x != y => n.push(format!("{h}: {x} before, {y} after")),
            (Some(_), None) => n.push(format!("{h}: not attached after, its metrics there are —")),
            (None, Some(_)) => n.push(format!("{h}: not attached before, its metrics there are —")),
            _ => {}
        }
    }
    let (db, da) = (
        before.capture.duration_ns as f64,
        after.capture.duration_ns as f64,
    );
    if db > 0.0 && da > 0.0 && (db / da - 1.0).abs() > 0.05 {
        n.push(format!(
            "durations differ ({} before, {} after): compare the per-packet rows, not the counts",
            secs(before.capture.duration_ns),
            secs(after.capture.duration_ns)
        ));
    }
    for (side, c) in [("before", before), ("after", after)] {
        let l = &c.loss;
        let mut lost = Vec::new();
        if l.ringbuf_dropped > 0 {
            lost.push(format!("{} ring-buffer records dropped", l.ringbuf_dropped));
        }
        if l.inflight_evicted > 0 {
            lost.push(format!(
                "{} in-flight timestamps evicted",
                l.inflight_evicted
            ));
        }
        if l.iface_table_full > 0 {
            lost.push(format!(
                "{} events past a full interface table",
                l.iface_table_full
            ));
        }
        if !lost.is_empty() {
            n.push(format!(
                "{side}: {} (counts or latencies may be low)",
                lost.join(", ")
            ));
        }
    }
    n
}

fn secs(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_skips_nulls_and_zero_bases() {
        let c = Change::new(Some(4.0), Some(5.0));
        assert_eq!((c.delta, c.pct), (Some(1.0), Some(25.0)));
        let c = Change::new(None, Some(5.0));
        assert_eq!((c.delta, c.pct), (None, None));
        let c = Change::new(Some(0.0), Some(5.0));
        assert_eq!((c.delta, c.pct), (Some(5.0), None));
    }
}
