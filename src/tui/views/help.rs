//! `?`: key bindings, what the columns mean, and every probe fallback with its reason.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::tui::app::App;
use crate::tui::event::KEY_HELP;

/// What each interfaces column means.
pub const COLUMN_HELP: &[(&str, &str)] = &[
    (
        "TX PPS",
        "packets/s transmitted through veth_xmit by this interface",
    ),
    (
        "RX PPS",
        "packets/s received (netif_receive_skb) with this interface as device",
    ),
    (
        "RAISE/S",
        "NET_RX softirq raises/s caused by enqueues to this interface",
    ),
    (
        "SIRQ CPU",
        "NET_RX softirq time attributed to it, % of one CPU",
    ),
    ("SIRQ/PKT", "NET_RX softirq time per received packet"),
    (
        "HOP P50/P99",
        "veth hop: veth transmit -> same skb received on the peer",
    ),
    ("BKLG P99", "backlog wait: enqueue (netif_rx) -> receive"),
    (
        "— / ·",
        "not measurable with the attached hooks / nothing measured this interval",
    ),
];

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let key = Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::from(Span::styled("Keys", bold))];
    for (k, what) in KEY_HELP {
        lines.push(Line::from(vec![
            Span::styled(format!("  {k:<16}"), key),
            Span::raw(*what),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "Columns (rates over the last refresh interval)",
        bold,
    )));
    for (c, what) in COLUMN_HELP {
        lines.push(Line::from(vec![
            Span::styled(format!("  {c:<16}"), key),
            Span::raw(*what),
        ]));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled("Probe fallbacks", bold)));
    if app.meta.probes.fallbacks.is_empty() {
        lines.push(Line::from("  none: every hook got its preferred backend"));
    }
    for fb in &app.meta.probes.fallbacks {
        lines.push(Line::from(Span::styled(
            format!("  {fb}"),
            Style::default().fg(Color::Yellow),
        )));
    }
    let p = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .title(" help · Esc or ? closes "),
    );
    f.render_widget(p, area);
}
