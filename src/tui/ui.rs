//! The whole screen: header, the current view, footer. Pure over `&App`: the same app state
//! always draws the same frame (rendering tests rely on it).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, View};
use super::format;
use super::views;

/// Header lines above every view.
pub const HEADER_HEIGHT: u16 = 4;

/// Smallest terminal the current view can be drawn in (width, height).
pub fn min_size(app: &App) -> (u16, u16) {
    if app.help {
        return (80, 20);
    }
    match app.view {
        View::Interfaces => (110, 14),
        View::Detail(_) => (110, 30),
        View::Cpus => (90, 16),
        View::Paths => (110, 16),
        View::Findings => (90, 14),
        View::Payers => (90, 14),
        View::Slow => (110, 14),
    }
}

/// Draws the dashboard for `app` into the frame.
pub fn render(app: &App, f: &mut Frame) {
    let area = f.area();
    let (w, h) = min_size(app);
    if area.width < w || area.height < h {
        render_too_small(f, area, w, h);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    views::header::render(app, f, header);
    if app.help {
        views::help::render(app, f, body);
    } else {
        match app.view {
            View::Interfaces => views::interfaces::render(app, f, body),
            View::Detail(_) => views::detail::render(app, f, body),
            View::Cpus => views::cpus::render(app, f, body),
            View::Paths => views::paths::render(app, f, body),
            View::Findings => views::findings::render(app, f, body),
            View::Payers => views::payers::render(app, f, body),
            View::Slow => views::slow::render(app, f, body),
        }
    }
    render_footer(app, f, footer);
}

/// Page size (rows) PageUp/PageDown should move for a terminal of this height.
pub fn page_rows(height: u16) -> usize {
    // header + footer + table borders + column titles
    height.saturating_sub(HEADER_HEIGHT + 1 + 3).max(1) as usize
}

fn render_too_small(f: &mut Frame, area: Rect, w: u16, h: u16) {
    let msg = format!(
        "terminal too small (need {w}x{h}, have {}x{}) — enlarge it, or q to quit",
        area.width, area.height
    );
    let p = Paragraph::new(Line::from(msg).style(Style::default().fg(Color::Yellow)))
        .wrap(Wrap { trim: true });
    f.render_widget(p, area);
}

fn render_footer(app: &App, f: &mut Frame, area: Rect) {
    let key = Style::default().fg(Color::Black).bg(Color::Cyan);
    let mut spans: Vec<Span> = Vec::new();
    if app.filter_editing {
        spans.push(Span::styled(" filter ", key));
        spans.push(Span::raw(format!(" /{}", app.filter)));
        spans.push(Span::styled(
            "█",
            Style::default().add_modifier(Modifier::SLOW_BLINK),
        ));
        spans.push(Span::styled(
            "   Enter keep · Esc clear",
            Style::default().fg(Color::DarkGray),
        ));
    } else {
        let hints: &[(&str, &str)] = match app.view {
            _ if app.help => &[("Esc", "close help"), ("q", "quit")],
            View::Interfaces => &[
                ("q", "quit"),
                ("?", "help"),
                ("Enter", "detail"),
                ("s/S", "sort"),
                ("/", "filter"),
                ("n", "netns"),
                ("c", "cpus"),
                ("P", "paths"),
                ("p", "pause"),
                ("+/-", "refresh"),
            ],
            View::Detail(_) => &[
                ("Esc", "back"),
                ("↑↓", "prev/next"),
                ("t", "last/since start"),
                ("c", "cpus"),
                ("p", "pause"),
                ("q", "quit"),
            ],
            View::Paths => &[
                ("Esc", "back"),
                ("↑↓", "select"),
                ("c", "cpus"),
                ("p", "pause"),
                ("+/-", "refresh"),
                ("q", "quit"),
            ],
            View::Findings | View::Payers | View::Slow => &[
                ("Esc", "back"),
                ("↑↓", "scroll"),
                ("p", "pause"),
                ("+/-", "refresh"),
                ("q", "quit"),
            ],
            View::Cpus => &[
                ("Esc", "back"),
                ("v", "vector"),
                ("↑↓", "scroll"),
                ("p", "pause"),
                ("+/-", "refresh"),
                ("q", "quit"),
            ],
        };
        for (k, what) in hints {
            spans.push(Span::styled(format!(" {k} "), key));
            spans.push(Span::raw(format!(" {what} ")));
        }
        if !app.filter.is_empty() {
            spans.push(Span::styled(
                format!(" filter /{} ", app.filter),
                Style::default().fg(Color::Yellow),
            ));
        }
    }
    if app.paused() {
        spans.push(Span::styled(
            " PAUSED ",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::styled(
        format!(" every {}", format::interval(app.interval)),
        Style::default().fg(Color::DarkGray),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
