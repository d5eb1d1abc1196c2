//! One module per part of the screen; every render function is pure over `&App`.

pub mod cpus;
pub mod detail;
pub mod header;
pub mod help;
pub mod interfaces;

use ratatui::layout::{Alignment, Constraint};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Cell, Row};

use super::app::{App, IfaceRow, SortColumn};
use super::format::{self, EMPTY, UNAVAILABLE};

/// Column widths of the interfaces table, in `SortColumn::ALL` order.
pub fn iface_widths() -> [Constraint; 12] {
    [
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(7),
        Constraint::Fill(4),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
    ]
}

/// The header row of the interfaces table; the sort column is highlighted.
pub fn iface_header(app: &App) -> Row<'static> {
    let cells = SortColumn::ALL.iter().map(|c| {
        let style = if *c == app.sort {
            Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        let line = Line::from(c.title()).style(style);
        Cell::from(if c.is_text() { line } else { line.alignment(Alignment::Right) })
    });
    Row::new(cells)
}

/// A metric cell: "—" when the hooks cannot produce it, "·" when there was nothing to measure.
fn metric(available: bool, v: Option<String>) -> String {
    if !available {
        UNAVAILABLE.to_string()
    } else {
        v.unwrap_or_else(|| EMPTY.to_string())
    }
}

/// The text of every column of an interface row, in `SortColumn::ALL` order.
pub fn iface_texts(app: &App, r: &IfaceRow) -> [String; 12] {
    let a = app.meta.availability;
    let x = &r.rates;
    let name = if r.is_gone() { format!("{} (gone)", r.iface.name) } else { r.iface.name.clone() };
    [
        r.iface.netns_label.clone(),
        name,
        r.kind().to_string(),
        r.peer_text(),
        metric(a.tx, Some(format::rate(x.tx_pps))),
        metric(a.receive, Some(format::rate(x.rx_pps))),
        metric(a.raises, Some(format::rate(x.raises_ps))),
        metric(a.softirq_time, Some(format::percent(x.softirq_pct))),
        metric(a.softirq_time, x.ns_per_pkt.map(format::duration_ns_f)),
        metric(a.veth_hop, x.hop_p50.map(format::duration_ns)),
        metric(a.veth_hop, x.hop_p99.map(format::duration_ns)),
        metric(a.backlog_wait, x.backlog_p99.map(format::duration_ns)),
    ]
}

/// A table row for an interface (greyed when it is gone).
pub fn iface_row(app: &App, r: &IfaceRow) -> Row<'static> {
    let texts = iface_texts(app, r);
    let cells = texts.into_iter().zip(SortColumn::ALL).map(|(t, c)| {
        let line = Line::from(t);
        Cell::from(Text::from(if c.is_text() { line } else { line.alignment(Alignment::Right) }))
    });
    let row = Row::new(cells);
    if r.is_gone() {
        row.style(Style::default().fg(Color::DarkGray))
    } else {
        row
    }
}

/// Style for a number that means trouble when it is not zero.
pub fn alarm(nonzero: bool) -> Style {
    if nonzero {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    }
}
