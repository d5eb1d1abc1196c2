//! One module per part of the screen; every render function is pure over `&App`.

pub mod cpus;
pub mod detail;
pub mod findings;
pub mod header;
pub mod help;
pub mod interfaces;
pub mod paths;
pub mod payers;
pub mod slow;

use ratatui::layout::{Alignment, Constraint};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Cell, Row};

use super::app::{App, IfaceRow, SortColumn};
use super::format::{self, EMPTY, UNAVAILABLE};

/// Widths of the numeric columns (TX PPS .. BKLG P99).
const NUM_WIDTHS: [u16; 8] = [8, 8, 8, 9, 9, 9, 9, 9];
/// Most cells a text column (netns, name, kind, peer) takes, and the least it shrinks to.
const TEXT_CAPS: [u16; 4] = [26, 20, 7, 34];
const TEXT_FLOOR: u16 = 6;

/// Column widths of the interfaces table, in `SortColumn::ALL` order: text columns as wide
/// as their content (bounded), shrunk from the widest when `avail` cells are not enough.
pub fn iface_widths(app: &App, rows: &[&IfaceRow], avail: u16) -> Vec<Constraint> {
    let mut text: [u16; 4] = [0; 4];
    for (i, col) in SortColumn::ALL[..4].iter().enumerate() {
        text[i] = col.title().len() as u16;
    }
    for r in rows {
        let t = iface_texts(app, r);
        for i in 0..4 {
            let w = Line::from(t[i].as_str()).width() as u16;
            text[i] = text[i].max(w.min(TEXT_CAPS[i]));
        }
    }
    // highlight symbol (2) + 11 column gaps
    let fixed: u16 = NUM_WIDTHS.iter().sum::<u16>() + 2 + 11;
    while fixed + text.iter().sum::<u16>() > avail {
        let Some((i, w)) = text.iter().copied().enumerate().max_by_key(|(_, w)| *w) else {
            break;
        };
        if w <= TEXT_FLOOR {
            break;
        }
        text[i] = w - 1;
    }
    text.iter()
        .chain(NUM_WIDTHS.iter())
        .map(|w| Constraint::Length(*w))
        .collect()
}

/// The header row of the interfaces table; the sort column is highlighted.
pub fn iface_header(app: &App) -> Row<'static> {
    let cells = SortColumn::ALL.iter().map(|c| {
        let style = if *c == app.sort {
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        let line = Line::from(c.title()).style(style);
        Cell::from(if c.is_text() {
            line
        } else {
            line.alignment(Alignment::Right)
        })
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
    let name = if r.is_gone() {
        format!("{} (gone)", r.iface.name)
    } else {
        r.iface.name.clone()
    };
    [
        r.iface.netns_label.clone(),
        name,
        r.kind().to_string(),
        r.peer_text(),
        metric(a.tx, Some(format::rate(x.tx_pps))),
        metric(a.receive, Some(rx_text(r, x.rx_pps))),
        metric(a.raises, Some(format::rate(x.raises_ps))),
        metric(a.softirq_time, Some(format::percent(x.softirq_pct))),
        metric(a.softirq_time, x.ns_per_pkt.map(format::duration_ns_f)),
        metric(a.veth_hop, x.hop_p50.map(format::duration_ns)),
        metric(a.veth_hop, x.hop_p99.map(format::duration_ns)),
        metric(a.backlog_wait, x.backlog_p99.map(format::duration_ns)),
    ]
}

/// The receive rate, marked `!` when the device's own statistics counted receives in
/// the last interval that sirqtop did not see, more than a live reading leaves (the
/// detail view says how many).
fn rx_text(r: &IfaceRow, rx_pps: f64) -> String {
    let rate = format::rate(rx_pps);
    match r.unseen_last {
        Some(_) => format!("{rate}!"),
        None => rate,
    }
}

/// A table row for an interface (greyed when it is gone).
pub fn iface_row(app: &App, r: &IfaceRow) -> Row<'static> {
    let texts = iface_texts(app, r);
    let cells = texts.into_iter().zip(SortColumn::ALL).map(|(t, c)| {
        let line = Line::from(t);
        Cell::from(Text::from(if c.is_text() {
            line
        } else {
            line.alignment(Alignment::Right)
        }))
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

/// A view with nothing to show yet: one dimmed, wrapped message in its block.
pub fn placeholder(
    f: &mut ratatui::Frame,
    area: ratatui::layout::Rect,
    block: ratatui::widgets::Block,
    msg: String,
) {
    let p = ratatui::widgets::Paragraph::new(Line::from(ratatui::text::Span::styled(
        msg,
        Style::default().fg(Color::DarkGray),
    )))
    .wrap(ratatui::widgets::Wrap { trim: true })
    .block(block);
    f.render_widget(p, area);
}
