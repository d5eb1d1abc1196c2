//! `P`: paths by softirq cost since attach — where packets first sent by a veth were
//! received, hop by hop — and the hop chain of the selected one with each hop's cost.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::model::IfaceKey;
use crate::tui::app::App;
use crate::tui::format::{self, EMPTY, UNAVAILABLE};

/// Lines of the hop-chain box under the table.
const CHAIN_HEIGHT: u16 = 7;

/// `name@netns`, as the chain and the table write an interface.
pub fn iface_name(app: &App, k: IfaceKey) -> String {
    match app.data().rows.get(&k) {
        Some(r) => format!("{}@{}", r.iface.name, r.iface.netns_label),
        None => format!("if{}@{}", k.ifindex, app.netns_label(k.netns)),
    }
}

fn per(v: Option<f64>, fmt: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| UNAVAILABLE.to_string(), fmt)
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let paths = &app.data().paths;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(vec![
            Span::styled(" paths ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{} ", paths.len())),
            Span::styled(
                "· by softirq time since attach · first veth transmit → receive ",
                Style::default().fg(Color::DarkGray),
            ),
        ]));
    if paths.is_empty() {
        // --lite is the one mode with the transmit and receive hooks but no latencies.
        let lite = app.meta.availability.tx
            && app.meta.availability.receive
            && !app.meta.availability.veth_hop;
        let msg = if lite {
            "no paths: --lite keeps none".to_string()
        } else {
            "no paths yet: a path appears once a packet sent by a veth is received".to_string()
        };
        super::placeholder(f, area, block, msg);
        return;
    }
    let [table_area, chain_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(CHAIN_HEIGHT)]).areas(area);
    let header = Row::new(
        [
            "FROM",
            "TO",
            "HOPS",
            "PKT/S",
            "PACKETS",
            "ENQ/PKT",
            "RAISE/PKT",
            "SIRQ/PKT",
            "LAT P50",
            "LAT P99",
        ]
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let l = Line::from(t);
            Cell::from(if i < 2 {
                l
            } else {
                l.alignment(Alignment::Right)
            })
        }),
    )
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = paths.iter().map(|v| {
        let p = &v.path;
        let lat = |q: f64| {
            p.latency
                .quantile(q)
                .map_or_else(|| EMPTY.to_string(), format::duration_ns)
        };
        let cells = [
            iface_name(app, p.from),
            iface_name(app, p.to),
            p.hops.to_string(),
            format::rate(v.pps),
            format::count(p.packets),
            format!("{:.2}", p.backlog_enqueues_per_packet),
            per(p.net_rx_raises_per_packet(), |r| format!("{r:.2}")),
            per(p.softirq_ns_per_packet(), format::duration_ns_f),
            lat(0.5),
            lat(0.99),
        ];
        Row::new(cells.into_iter().enumerate().map(|(i, t)| {
            let l = Line::from(t);
            Cell::from(Text::from(if i < 2 {
                l
            } else {
                l.alignment(Alignment::Right)
            }))
        }))
    });
    let widths = [
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    let selected = app.path_selected.min(paths.len() - 1);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(Some(selected));
    f.render_stateful_widget(table, table_area, &mut state);
    render_chain(app, f, chain_area, selected);
}

/// The selected path's hops, and what each costs per packet.
fn render_chain(app: &App, f: &mut Frame, area: Rect, selected: usize) {
    let v = &app.data().paths[selected];
    let p = &v.path;
    let dim = Style::default().fg(Color::DarkGray);
    let mut chain = vec![Span::styled(
        iface_name(app, p.from),
        Style::default().fg(Color::Cyan),
    )];
    for k in p.via.iter().chain(std::iter::once(&p.to)) {
        chain.push(Span::styled(" → ", dim));
        chain.push(Span::raw(iface_name(app, *k)));
    }
    let mut lines = vec![Line::from(chain)];
    let mut costs = vec![Span::styled("per packet, by receiving hop: ", dim)];
    for (i, h) in p.hop_costs.iter().enumerate() {
        if i > 0 {
            costs.push(Span::styled(" + ", dim));
        }
        costs.push(Span::raw(format!(
            "{} {} / {} raises",
            iface_name(app, h.receiver),
            per(h.softirq_ns_per_packet, format::duration_ns_f),
            per(h.net_rx_raises_per_packet, |r| format!("{r:.2}")),
        )));
    }
    lines.push(Line::from(costs));
    lines.push(Line::from(vec![
        Span::styled("end to end: ", dim),
        Span::raw(format!(
            "{} hops · {:.2} enqueues · {} raises · {} softirq · latency p50 {} p99 {}",
            p.hops,
            p.backlog_enqueues_per_packet,
            per(p.net_rx_raises_per_packet(), |r| format!("{r:.2}")),
            per(p.softirq_ns_per_packet(), format::duration_ns_f),
            p.latency
                .quantile(0.5)
                .map_or_else(|| EMPTY.to_string(), format::duration_ns),
            p.latency
                .quantile(0.99)
                .map_or_else(|| EMPTY.to_string(), format::duration_ns),
        )),
    ]));
    if p.origin_softirq > 0 {
        lines.push(Line::from(Span::styled(
            format!(
                "{} of its packets were first sent from a softirq (a reply, clone or copy of \
                 a received packet): their path may have begun earlier under another skb",
                format::count(p.origin_softirq)
            ),
            Style::default().fg(Color::Yellow),
        )));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(Span::styled(
            " hop chain ",
            Style::default().add_modifier(Modifier::BOLD),
        )));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block),
        area,
    );
}
