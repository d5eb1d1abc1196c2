//! The plain-text table of a diff.

use super::{secs, Change, Diff, IfaceRef, MatchedBy, Metrics};

/// How a metric's numbers are printed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Integers with thousands separators (counts, nanoseconds).
    Int,
    /// Three decimals (raises per packet).
    Ratio,
}

/// Table row: label, number format, which metric.
type TableRow = (&'static str, Kind, fn(&Metrics) -> Change);

const ROWS: [TableRow; 11] = [
    ("tx packets", Kind::Int, |m| m.tx_packets),
    ("rx packets", Kind::Int, |m| m.rx_packets),
    ("enqueues/packet", Kind::Ratio, |m| m.enqueues_per_packet),
    ("NET_RX raises", Kind::Int, |m| m.net_rx_raises),
    ("NET_RX raises/packet", Kind::Ratio, |m| m.raises_per_packet),
    ("softirq ns", Kind::Int, |m| m.softirq_ns),
    ("softirq ns/packet", Kind::Int, |m| m.softirq_ns_per_packet),
    ("veth hop p50 (ns)", Kind::Int, |m| m.veth_hop_p50_ns),
    ("veth hop p99 (ns)", Kind::Int, |m| m.veth_hop_p99_ns),
    ("backlog wait p50 (ns)", Kind::Int, |m| {
        m.backlog_wait_p50_ns
    }),
    ("backlog wait p99 (ns)", Kind::Int, |m| {
        m.backlog_wait_p99_ns
    }),
];

const NULL: &str = "—";

fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (k, ch) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A non-negative magnitude.
fn magnitude(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Int => grouped(v.abs().round() as u64),
        Kind::Ratio => format!("{:.3}", v.abs()),
    }
}

fn value(kind: Kind, v: Option<f64>) -> String {
    v.map_or_else(|| NULL.to_string(), |v| magnitude(kind, v))
}

/// Signed, without a sign when it rounds to zero.
fn signed(mag: String, negative: bool) -> String {
    if mag.chars().all(|c| matches!(c, '0' | '.' | ',')) {
        mag
    } else if negative {
        format!("-{mag}")
    } else {
        format!("+{mag}")
    }
}

fn delta(kind: Kind, d: Option<f64>) -> String {
    d.map_or_else(|| NULL.to_string(), |d| signed(magnitude(kind, d), d < 0.0))
}

fn pct(c: &Change) -> String {
    if c.new {
        return "new".to_string();
    }
    c.pct.map_or_else(
        || NULL.to_string(),
        |p| format!("{}%", signed(format!("{:.1}", p.abs()), p < 0.0)),
    )
}

fn change_line(out: &mut String, label: &str, kind: Kind, c: &Change) {
    out.push_str(&format!(
        "  {:<22} {:>13} {:>13} {:>13} {:>9}\n",
        label,
        value(kind, c.before),
        value(kind, c.after),
        delta(kind, c.delta),
        pct(c)
    ));
}

fn block(out: &mut String, title: &str, m: &Metrics) {
    header(out, title);
    for (label, kind, pick) in ROWS {
        change_line(out, label, kind, &pick(m));
    }
}

fn header(out: &mut String, title: &str) {
    out.push_str(title);
    out.push('\n');
    out.push_str(&format!(
        "  {:<22} {:>13} {:>13} {:>13} {:>9}\n",
        "metric", "before", "after", "change", "%"
    ));
}

/// The diff as a text table: a header per capture, one block per matched interface, a
/// totals block over every interface of each capture, the unmatched, then notes.
pub fn render_table(d: &Diff) -> String {
    let mut out = String::new();
    for (tag, s) in [("before:", &d.before), ("after: ", &d.after)] {
        out.push_str(&format!(
            "{tag} {}  (kernel {}, {} from {}, {} interface{})\n",
            s.source,
            s.kernel,
            secs(s.duration_ns),
            s.started_at,
            s.interface_count,
            if s.interface_count == 1 { "" } else { "s" }
        ));
    }
    for r in &d.interfaces {
        let (b, a) = (r.before.shown(), r.after.shown());
        let mut title = if b == a { b } else { format!("{b}  ->  {a}") };
        match r.matched_by {
            MatchedBy::Match => title.push_str("  [--match]"),
            MatchedBy::Name => title.push_str("  [by name]"),
            MatchedBy::NetnsAndName => {}
        }
        out.push('\n');
        block(&mut out, &title, &r.metrics);
    }
    out.push('\n');
    block(
        &mut out,
        &format!(
            "total (all interfaces: {} before, {} after)",
            d.before.interface_count, d.after.interface_count
        ),
        &d.total,
    );
    if let Some(p) = &d.per_request {
        out.push('\n');
        header(
            &mut out,
            &format!(
                "per request ({} before, {} after)",
                grouped(p.before_requests.round() as u64),
                grouped(p.after_requests.round() as u64)
            ),
        );
        for (label, c) in [
            ("tx packets", &p.tx_packets),
            ("rx packets", &p.rx_packets),
            ("backlog enqueues", &p.backlog_enqueues),
            ("NET_RX raises", &p.net_rx_raises),
        ] {
            change_line(&mut out, label, Kind::Ratio, c);
        }
        change_line(&mut out, "softirq ns", Kind::Int, &p.softirq_ns);
    }
    if let Some(s) = &d.softnet {
        out.push('\n');
        header(&mut out, "softnet, all CPUs (/proc/net/softnet_stat)");
        for (label, c) in [
            ("processed", &s.processed),
            ("backlog drops", &s.dropped),
            ("time squeezes", &s.time_squeeze),
            ("received RPS", &s.received_rps),
        ] {
            change_line(&mut out, label, Kind::Int, c);
        }
    }
    if !d.findings.is_empty() {
        out.push('\n');
        header(&mut out, "findings");
        for x in &d.findings {
            let state = match (x.before, x.after) {
                (true, true) => "both   ",
                (false, true) => "new    ",
                _ => "gone   ",
            };
            out.push_str(&format!(
                "  {state} {:<8} {} {}\n",
                x.severity.as_str(),
                x.id,
                x.subject
            ));
        }
    }
    for r in &d.paths {
        out.push('\n');
        header(
            &mut out,
            &format!("path {} -> {}  ({} hops)", r.from, r.to, r.hops),
        );
        change_line(&mut out, "packets", Kind::Int, &r.packets);
        change_line(
            &mut out,
            "enqueues/packet",
            Kind::Ratio,
            &r.backlog_enqueues_per_packet,
        );
        change_line(
            &mut out,
            "NET_RX raises/packet",
            Kind::Ratio,
            &r.net_rx_raises_per_packet,
        );
        change_line(
            &mut out,
            "softirq ns/packet",
            Kind::Int,
            &r.softirq_ns_per_packet,
        );
        change_line(&mut out, "latency p50 (ns)", Kind::Int, &r.latency_p50_ns);
        change_line(&mut out, "latency p99 (ns)", Kind::Int, &r.latency_p99_ns);
    }
    if !d.only_before.is_empty() || !d.only_after.is_empty() {
        out.push('\n');
    }
    for (tag, list) in [
        ("only in before:", &d.only_before),
        ("only in after: ", &d.only_after),
    ] {
        if !list.is_empty() {
            let names: Vec<String> = list.iter().map(IfaceRef::shown).collect();
            out.push_str(&format!("{tag} {}\n", names.join(", ")));
        }
    }
    if !d.notes.is_empty() {
        out.push('\n');
        for n in &d.notes {
            out.push_str(&format!("note: {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(delta(Kind::Int, Some(-1500.0)), "-1,500");
        assert_eq!(delta(Kind::Int, Some(0.2)), "0");
        assert_eq!(delta(Kind::Ratio, Some(0.07)), "+0.070");
        assert_eq!(delta(Kind::Ratio, None), "—");
        assert_eq!(pct(&Change::new(Some(10000.0), Some(9999.996))), "0.0%");
        assert_eq!(pct(&Change::new(Some(100.0), Some(114.04))), "+14.0%");
        assert_eq!(pct(&Change::new(Some(0.0), Some(5.0))), "new");
        assert_eq!(pct(&Change::new(None, Some(5.0))), "—");
    }
}
