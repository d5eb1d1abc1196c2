//! The main view: one row per (netns, ifindex), rates over the last interval.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Table, TableState};
use ratatui::Frame;

use super::{iface_header, iface_row, iface_widths};
use crate::tui::app::App;
use crate::tui::format;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let rows = app.visible_rows();
    let total = app.data().rows.len();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title(app, rows.len(), total));

    if rows.is_empty() {
        let msg = if !app.has_data() {
            format!(
                "waiting for the first sample (every {}) …",
                format::interval(app.interval)
            )
        } else if total == 0 {
            "no interface activity yet: an interface is listed once a packet crosses one of \
             the hooks (veth transmit, backlog enqueue, receive)"
                .to_string()
        } else {
            "no interface matches the filters (Esc clears them)".to_string()
        };
        super::placeholder(f, area, block, msg);
        return;
    }

    let widths = iface_widths(app, &rows, area.width.saturating_sub(2));
    let table = Table::new(rows.iter().map(|r| iface_row(app, r)), widths)
        .header(iface_header(app))
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(app.selected_index(&rows));
    f.render_stateful_widget(table, area, &mut state);
}

fn title(app: &App, shown: usize, total: usize) -> Line<'static> {
    let arrow = if app.sort.is_text() != app.sort_reversed {
        "▲"
    } else {
        "▼"
    };
    let mut spans = vec![
        Span::styled(
            " interfaces ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{shown}/{total} ")),
        Span::styled("· sort ", Style::default().fg(Color::DarkGray)),
        Span::styled(
            format!("{} {arrow} ", app.sort.title()),
            Style::default().fg(Color::Cyan),
        ),
        Span::styled(
            format!("· rates over {} ", interval_text(app)),
            Style::default().fg(Color::DarkGray),
        ),
    ];
    if let Some(n) = app.netns_view {
        spans.push(Span::styled(
            "· netns ",
            Style::default().fg(Color::DarkGray),
        ));
        spans.push(Span::styled(
            format!("{} ", app.netns_label(n)),
            Style::default().fg(Color::Yellow),
        ));
    }
    if !app.filter.is_empty() {
        spans.push(Span::styled(
            "· filter ",
            Style::default().fg(Color::DarkGray),
        ));
        spans.push(Span::styled(
            format!("/{} ", app.filter),
            Style::default().fg(Color::Yellow),
        ));
    }
    Line::from(spans)
}

/// The interval the displayed rates cover ("1s", "1.02s").
fn interval_text(app: &App) -> String {
    let ns = app.data().interval_ns;
    if ns == 0 {
        return format::interval(app.interval);
    }
    let ms = (ns as f64 / 1e6).round() as u64;
    format::interval(std::time::Duration::from_millis(ms))
}
