//! One interface in depth: its row and its peer's, latency histograms with quantiles, and
//! the history of its packet rates and softirq CPU.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Table};
use ratatui::Frame;

use super::{iface_header, iface_row, iface_widths};
use crate::model::hist::BUCKETS;
use crate::model::Histogram;
use crate::tui::app::{App, IfaceRow, Sample};
use crate::tui::format::{self, EMPTY, UNAVAILABLE};

/// Lines of the three sparklines together.
const SPARK_HEIGHT: u16 = 12;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(row) = app.detail_row() else {
        let p = Paragraph::new("this interface is no longer reported (Esc goes back)")
            .block(Block::default().borders(Borders::ALL).title(" detail "));
        f.render_widget(p, area);
        return;
    };
    let block = Block::default().borders(Borders::ALL).title(title(row));
    let inner = block.inner(area);
    f.render_widget(block, area);

    // Raise sites (sampled stacks) get a box when there are some and room for them.
    let sites = row.raise_sites.len().min(MAX_SITES) as u16;
    let sites_h = if sites > 0 && inner.height >= 4 + 8 + SPARK_HEIGHT + sites + 2 {
        sites + 2
    } else {
        0
    };
    let [rows_area, hist_area, sites_area, spark_area] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(6),
        Constraint::Length(sites_h),
        Constraint::Length(SPARK_HEIGHT),
    ])
    .areas(inner);
    render_rows(app, row, f, rows_area);
    render_histograms(app, row, f, hist_area);
    if sites_h > 0 {
        render_raise_sites(app, row, f, sites_area);
    }
    render_history(app, row, f, spark_area);
}

/// Most raise sites listed in the detail view.
const MAX_SITES: usize = 5;

/// Raise sites as one line each fits in `width` characters of frames: stacks that
/// differ only below what fits look the same, so they are one line (their raises
/// summed, how many stacks it stands for). Most raises first.
pub fn display_sites(
    sites: &[crate::model::RaiseSite],
    width: usize,
) -> Vec<(u64, usize, String, usize)> {
    let mut out: Vec<(u64, usize, String, usize)> = Vec::new();
    for r in sites {
        let full = r.frames.join(" ← ");
        let text = if full.chars().count() > width {
            let cut: String = full.chars().take(width.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            full
        };
        match out.iter_mut().find(|o| o.1 == r.vector && o.2 == text) {
            Some(o) => {
                o.0 += r.count;
                o.3 += 1;
            }
            None => out.push((r.count, r.vector, text, 1)),
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    out
}

fn render_raise_sites(app: &App, row: &IfaceRow, f: &mut Frame, area: Rect) {
    let secs = app.data().interval_ns.max(1) as f64 / 1e9;
    let dim = Style::default().fg(Color::DarkGray);
    // Rate, vector, and room for "  (NN stacks)".
    let width = (area.width as usize).saturating_sub(2 + 10 + 7 + 12);
    let lines: Vec<Line> = display_sites(&row.raise_sites, width)
        .into_iter()
        .take(MAX_SITES)
        .map(|(count, vector, text, stacks)| {
            let vec = crate::model::VECTOR_NAMES
                .get(vector)
                .copied()
                .unwrap_or("?");
            let mut spans = vec![
                Span::raw(format!("{:>7}/s ", format::rate(count as f64 / secs))),
                Span::styled(format!("{vec:<7}"), Style::default().fg(Color::Cyan)),
                Span::raw(text),
            ];
            if stacks > 1 {
                spans.push(Span::styled(format!("  ({stacks} stacks)"), dim));
            }
            Line::from(spans)
        })
        .collect();
    let title = Line::from(vec![
        Span::styled(
            " raise sites ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "(sampled kernel stacks of the softirq raises it caused) ",
            dim,
        ),
    ]);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn title(row: &IfaceRow) -> Line<'static> {
    let i = &row.iface;
    let mut spans = vec![
        Span::styled(
            format!(" {} ", i.name),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "· {} · netns {} ({}) · ifindex {} ",
            if row.kind().is_empty() {
                "?"
            } else {
                row.kind()
            },
            i.netns_label,
            i.key.netns,
            i.key.ifindex
        )),
    ];
    if !row.peer_text().is_empty() {
        spans.push(Span::raw(format!("· peer {} ", row.peer_text())));
    }
    if let Some(p) = i.rx_path() {
        let p = match p {
            crate::model::RxPath::Backlog => "backlog",
            crate::model::RxPath::Napi => "napi",
            crate::model::RxPath::Both => "backlog+napi",
        };
        spans.push(Span::raw(format!("· rx {p} ")));
    }
    if i.counters.dropped > 0 {
        let top = i
            .drop_reasons
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(r, _)| format!(", mostly {r}"))
            .unwrap_or_default();
        spans.push(Span::styled(
            format!("· {} dropped{top} ", i.counters.dropped),
            Style::default().fg(Color::Red),
        ));
    }
    if let (Some(unseen), Some(kernel)) = (i.rx_unseen_notable(), i.kernel_rx_packets) {
        // Receives on a path no attached hook sees (peer redirect, rx_handler).
        spans.push(Span::styled(
            format!("· {unseen} of the kernel's {kernel} receives unseen "),
            Style::default().fg(Color::Yellow),
        ));
    }
    if row.is_gone() {
        spans.push(Span::styled(
            "· GONE ",
            Style::default().fg(Color::DarkGray),
        ));
    }
    Line::from(spans)
}

fn render_rows(app: &App, row: &IfaceRow, f: &mut Frame, area: Rect) {
    let mut shown = vec![row];
    let mut note = None;
    if let Some(p) = &row.iface.peer {
        let key = crate::model::IfaceKey {
            netns: p.netns,
            ifindex: p.ifindex,
            cookie: p.cookie,
        };
        // A namespace inode can be reused after its namespace is gone: trust the key only
        // when the name matches too.
        let found = app
            .data()
            .rows
            .get(&key)
            .filter(|pr| p.name.as_ref().is_none_or(|n| *n == pr.iface.name));
        match found {
            Some(pr) => shown.push(pr),
            None => note = Some(format!("peer {}: no activity seen", row.peer_text())),
        }
    } else {
        note = Some("no veth peer".to_string());
    }
    let [t, n] = Layout::vertical([Constraint::Length(3), Constraint::Length(1)]).areas(area);
    let widths = iface_widths(app, &shown, area.width);
    let rows = shown.iter().map(|r| iface_row(app, r));
    let table = Table::new(rows, widths)
        .header(iface_header(app))
        .column_spacing(1)
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always)
        .highlight_symbol("  ");
    f.render_widget(table, t);
    if let Some(note) = note {
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(
                note,
                Style::default().fg(Color::DarkGray),
            ))),
            n,
        );
    }
}

fn render_histograms(app: &App, row: &IfaceRow, f: &mut Frame, area: Rect) {
    let a = app.meta.availability;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let scope = if app.hist_since_start {
        "since start"
    } else {
        "last interval"
    };
    let data = app.data();
    let (hop, wait, timing) = if app.hist_since_start {
        (&row.iface.veth_hop, &row.iface.backlog_wait, data.timing)
    } else {
        (&row.last.veth_hop, &row.last.backlog_wait, data.timing_last)
    };
    // Sampled (--timing-rate): the counts are weighted estimates; say how many were timed.
    let sampled = timing
        .sampled_pct()
        .map(|p| format!("· {} of skbs timed ", format::percent(p)))
        .unwrap_or_default();
    for (area, name, h, avail, needs) in [
        (
            left,
            "veth hop",
            hop,
            a.veth_hop,
            "needs the veth_xmit and netif_receive_skb hooks",
        ),
        (
            right,
            "backlog wait",
            wait,
            a.backlog_wait,
            "needs the netif_rx and netif_receive_skb hooks",
        ),
    ] {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {name} · {scope} {sampled}"));
        let inner = block.inner(area);
        let lines = hist_lines(h, avail, needs, inner.width, inner.height);
        f.render_widget(Paragraph::new(lines).block(block), area);
    }
}

/// A log2 histogram as text: a quantile line, then one bar per bucket with its range.
pub fn hist_lines(
    h: &Histogram,
    available: bool,
    needs: &str,
    width: u16,
    height: u16,
) -> Vec<Line<'static>> {
    if !available {
        return vec![Line::from(format!("{UNAVAILABLE} not measured: {needs}"))];
    }
    let total: u64 = h.buckets.iter().sum();
    if total == 0 {
        return vec![Line::from(Span::styled(
            "no samples",
            Style::default().fg(Color::DarkGray),
        ))];
    }
    let q = |x: f64| {
        h.quantile(x)
            .map(format::duration_ns)
            .unwrap_or_else(|| EMPTY.to_string())
    };
    let dim = Style::default().fg(Color::DarkGray);
    let mut lines = vec![Line::from(vec![
        Span::styled("n ", dim),
        Span::raw(format::count(total)),
        Span::styled("  p50 ", dim),
        Span::raw(q(0.5)),
        Span::styled("  p90 ", dim),
        Span::raw(q(0.9)),
        Span::styled("  p99 ", dim),
        Span::raw(q(0.99)),
        Span::styled("  max ", dim),
        Span::raw(format::duration_ns(h.max)),
    ])];
    let rows = height.saturating_sub(1) as usize;
    if rows == 0 {
        return lines;
    }
    let lo = h.buckets.iter().position(|&c| c > 0).unwrap_or(0);
    let hi = h
        .buckets
        .iter()
        .rposition(|&c| c > 0)
        .unwrap_or(BUCKETS - 1);
    let (a, b) = window(&h.buckets, lo, hi, rows);
    let labels: Vec<String> = (a..=b).map(format::bucket_range).collect();
    let counts: Vec<String> = (a..=b).map(|i| format::count(h.buckets[i])).collect();
    let lw = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let cw = counts.iter().map(|c| c.len()).max().unwrap_or(0);
    let bar_w = (width as usize).saturating_sub(lw + cw + 3);
    let maxc = h.buckets[a..=b].iter().copied().max().unwrap_or(1).max(1);
    for (i, (label, cnt)) in (a..=b).zip(labels.iter().zip(counts.iter())) {
        let bar = bar(h.buckets[i], maxc, bar_w);
        let pad = bar_w.saturating_sub(bar.chars().count());
        lines.push(Line::from(vec![
            Span::styled(format!("{label:>lw$} "), dim),
            Span::styled(bar, Style::default().fg(Color::Cyan)),
            Span::raw(format!("{} {cnt:>cw$}", " ".repeat(pad))),
        ]));
    }
    lines
}

/// The `rows` consecutive buckets within [lo, hi] that hold the most samples.
fn window(b: &[u64], lo: usize, hi: usize, rows: usize) -> (usize, usize) {
    if hi + 1 - lo <= rows {
        return (lo, hi);
    }
    let mut best = (lo, lo + rows - 1);
    let mut best_sum = 0u64;
    for start in lo..=hi + 1 - rows {
        let s: u64 = b[start..start + rows].iter().sum();
        if s > best_sum {
            best_sum = s;
            best = (start, start + rows - 1);
        }
    }
    best
}

/// A horizontal bar of `v` out of `max` in `width` cells, with eighth-cell resolution.
fn bar(v: u64, max: u64, width: usize) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if width == 0 || max == 0 {
        return String::new();
    }
    let eighths = ((v as f64 / max as f64) * (width * 8) as f64).round() as usize;
    let eighths = eighths.max(usize::from(v > 0));
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTS[eighths % 8]);
    s
}

fn render_history(app: &App, row: &IfaceRow, f: &mut Frame, area: Rect) {
    let a = app.meta.availability;
    let [tx, rx, sirq] = Layout::vertical([
        Constraint::Length(SPARK_HEIGHT / 3),
        Constraint::Length(SPARK_HEIGHT / 3),
        Constraint::Length(SPARK_HEIGHT / 3),
    ])
    .areas(area);
    let width = area.width as usize;
    let tail: Vec<Sample> = {
        let skip = row.history.len().saturating_sub(width);
        row.history.iter().skip(skip).copied().collect()
    };
    let span = format::elapsed(std::time::Duration::from_nanos(
        app.data().interval_ns.saturating_mul(tail.len() as u64),
    ));
    type Get = fn(&Sample) -> f64;
    type Fmt = fn(f64) -> String;
    // (area, title, available, value, format, scale to u64 for the sparkline)
    let series: [(Rect, &str, bool, Get, Fmt, f64); 3] = [
        (tx, "tx pps", a.tx, |s| s.tx_pps, format::rate, 1.0),
        (rx, "rx pps", a.receive, |s| s.rx_pps, format::rate, 1.0),
        (
            sirq,
            "softirq CPU",
            a.softirq_time,
            |s| s.softirq_pct,
            format::percent,
            100.0,
        ),
    ];
    for (area, name, avail, get, fmt, scale) in series {
        let values: Vec<f64> = tail.iter().map(get).collect();
        let now = values.last().copied().unwrap_or(0.0);
        let max = values.iter().copied().fold(0.0, f64::max);
        let dim = Style::default().fg(Color::DarkGray);
        let title = if avail {
            Line::from(vec![
                Span::styled(
                    format!(" {name} "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::styled("now ", dim),
                Span::raw(fmt(now)),
                Span::styled("  max ", dim),
                Span::raw(fmt(max)),
                Span::styled(format!("  last {span} "), dim),
            ])
        } else {
            Line::from(format!(" {name} {UNAVAILABLE} "))
        };
        let block = Block::default().borders(Borders::TOP).title(title);
        let data: Vec<u64> = if avail {
            values.iter().map(|v| (v * scale).round() as u64).collect()
        } else {
            vec![]
        };
        let top = data.iter().copied().max().unwrap_or(0).max(1);
        let spark = Sparkline::default()
            .block(block)
            .data(data)
            .max(top)
            .style(Style::default().fg(Color::Green));
        f.render_widget(spark, area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_width() {
        assert_eq!(bar(10, 10, 4), "████");
        assert_eq!(bar(5, 10, 4), "██");
        assert_eq!(bar(1, 1000, 4), "▏");
        assert_eq!(bar(0, 10, 4), "");
        assert_eq!(bar(3, 0, 4), "");
    }

    #[test]
    fn window_keeps_the_mass() {
        let mut b = [0u64; BUCKETS];
        b[2] = 1;
        b[10] = 50;
        b[11] = 70;
        b[12] = 5;
        assert_eq!(window(&b, 2, 12, 20), (2, 12));
        assert_eq!(window(&b, 2, 12, 3), (10, 12));
    }
}

#[cfg(test)]
mod site_tests {
    use super::*;
    use crate::model::RaiseSite;

    fn site(count: u64, frames: &[&str]) -> RaiseSite {
        RaiseSite {
            iface: None,
            vector: 3,
            samples: 1,
            count,
            frames: frames.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn stacks_that_look_the_same_are_one_line() {
        let top = [
            "raise_softirq_irqoff+0x68",
            "enqueue_to_backlog+0x382",
            "__netif_rx+0x16",
        ];
        let a = site(
            700,
            &[&top[..], &["veth_xmit+0x238", "ip_finish_output2+0x1c0"]].concat(),
        );
        let b = site(
            200,
            &[&top[..], &["veth_xmit+0x238", "neigh_resolve_output+0x118"]].concat(),
        );
        let c = site(100, &["raise_softirq_irqoff+0x68", "net_rx_action+0x2d0"]);
        // Wide enough for everything: three lines.
        let wide = display_sites(&[a.clone(), b.clone(), c.clone()], 500);
        assert_eq!(wide.len(), 3);
        assert!(wide.iter().all(|l| l.3 == 1));
        // Only the common top fits: a and b are one line of 900 raises, 2 stacks.
        let narrow = display_sites(&[c, b, a], 90);
        assert_eq!(narrow.len(), 2, "{narrow:?}");
        assert_eq!((narrow[0].0, narrow[0].3), (900, 2));
        assert!(narrow[0].2.ends_with('…'));
        assert_eq!((narrow[1].0, narrow[1].3), (100, 1));
    }
}
