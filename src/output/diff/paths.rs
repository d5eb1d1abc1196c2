//! Paths of two captures side by side.

use super::{Change, PathRow};
use crate::output::json::{Capture, JsonPath, JsonPathEnd};

fn end_name(e: &JsonPathEnd) -> String {
    let ns = e
        .netns_label
        .clone()
        .unwrap_or_else(|| format!("netns:{}", e.netns_inode));
    let name = e.name.clone().unwrap_or_else(|| format!("if{}", e.ifindex));
    format!("{ns}/{name}")
}

/// Paths of the two captures, matched by (from, to, hops) names; `--match` maps
/// interface names on both ends.
pub(super) fn path_rows(
    before: &Capture,
    after: &Capture,
    matches: &[(String, String)],
) -> Vec<PathRow> {
    let renamed = |s: String| -> String {
        // A --match BEFORE=AFTER names the same interface differently: compare under the
        // after name.
        for (b, a) in matches {
            if s == *b || s.rsplit('/').next() == Some(b.as_str()) && !b.contains('/') {
                return if b.contains('/') {
                    a.clone()
                } else {
                    format!("{}/{a}", s.rsplit_once('/').map(|x| x.0).unwrap_or(""))
                };
            }
        }
        s
    };
    let key = |p: &JsonPath, map: bool| {
        let (f, t) = (end_name(&p.from), end_name(&p.to));
        if map {
            (renamed(f), renamed(t), p.hops)
        } else {
            (f, t, p.hops)
        }
    };
    let q = |p: &JsonPath, q: f64| p.latency.to_hist().quantile(q).map(|v| v as f64);
    let mut rows: Vec<PathRow> = after
        .paths
        .iter()
        .filter_map(|a| {
            let ka = key(a, false);
            let b = before.paths.iter().find(|b| key(b, true) == ka)?;
            Some(PathRow {
                from: end_name(&a.from),
                to: end_name(&a.to),
                hops: a.hops,
                packets: Change::new(Some(b.packets as f64), Some(a.packets as f64)),
                backlog_enqueues_per_packet: Change::new(
                    Some(b.backlog_enqueues_per_packet),
                    Some(a.backlog_enqueues_per_packet),
                ),
                net_rx_raises_per_packet: Change::new(
                    b.net_rx_raises_per_packet,
                    a.net_rx_raises_per_packet,
                ),
                softirq_ns_per_packet: Change::new(
                    b.softirq_ns_per_packet,
                    a.softirq_ns_per_packet,
                ),
                latency_p50_ns: Change::new(q(b, 0.5), q(a, 0.5)),
                latency_p99_ns: Change::new(q(b, 0.99), q(a, 0.99)),
            })
        })
        .collect();
    rows.sort_by(|x, y| {
        y.packets
            .after
            .unwrap_or(0.0)
            .total_cmp(&x.packets.after.unwrap_or(0.0))
            .then((&x.from, &x.to, x.hops).cmp(&(&y.from, &y.to, y.hops)))
    });
    rows
}
