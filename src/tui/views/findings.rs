//! Findings of the last interval: severity, what it is about, the numbers behind it, what
//! to change. Most severe first; ↑↓ scroll.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::findings::Severity;
use crate::tui::app::App;

pub fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Warning => Style::default().fg(Color::Yellow),
        Severity::Info => Style::default().fg(Color::Cyan),
    }
}

/// A number as the findings show it: integers plain, shares and ratios with 3 digits.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let found = &app.data().findings;
    let title = Line::from(vec![
        Span::styled(" findings ", Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(
            format!("· {} in the last interval ", found.len()),
            Style::default().fg(Color::DarkGray),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    if found.is_empty() {
        let msg = if app.has_data() {
            "nothing to report: no threshold crossed in the last interval (README, Findings)"
        } else {
            "waiting for the first sample …"
        };
        super::placeholder(f, area, block, msg.to_string());
        return;
    }
    let dim = Style::default().fg(Color::DarkGray);
    let mut lines = Vec::new();
    for x in found {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<8} ", x.severity.as_str()),
                severity_style(x.severity),
            ),
            Span::styled(x.id.clone(), Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("  {}", x.subject)),
        ]));
        lines.push(Line::from(format!("         {}", x.summary)));
        let nums: Vec<String> = x
            .numbers
            .iter()
            .map(|(k, v)| format!("{k}={}", number(*v)))
            .collect();
        lines.push(Line::from(Span::styled(
            format!("         {}", nums.join("  ")),
            dim,
        )));
        lines.push(Line::from(vec![
            Span::styled("         do: ", Style::default().fg(Color::Green)),
            Span::raw(x.remedy.clone()),
        ]));
    }
    let scroll = app.list_scroll.min(lines.len().saturating_sub(1)) as u16;
    let p = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0));
    f.render_widget(p, area);
}

#[cfg(test)]
mod tests {
    use crate::model::{CpuStats, Snapshot, Softnet};
    use crate::tui::app::{Action, View};
    use crate::tui::render_to_text;

    fn snap(secs: u64, dropped: u64) -> Snapshot {
        let mut c = CpuStats::new(1);
        c.softnet = Some(Softnet {
            processed: 1000 * secs,
            dropped,
            ..Softnet::default()
        });
        Snapshot {
            elapsed_ns: secs * 1_000_000_000,
            cpus: vec![c],
            ..Snapshot::default()
        }
    }

    #[test]
    fn header_names_the_finding_and_the_view_shows_its_remedy() {
        let mut a = crate::tui::app::test_app();
        a.update(snap(1, 0));
        a.apply(Action::ToggleView(View::Findings));
        let quiet = render_to_text(&a, 120, 20);
        assert!(!quiet.contains("findings (F)"), "{quiet}");
        assert!(quiet.contains("nothing to report"), "{quiet}");
        a.update(snap(2, 500));
        let text = render_to_text(&a, 120, 20);
        assert!(text.contains("findings (F) backlog_drops cpu1"), "{text}");
        assert!(text.contains("critical"), "{text}");
        assert!(text.contains("netdev_max_backlog"), "{text}");
        assert!(text.contains("dropped=500"), "{text}");
        a.apply(Action::ToggleView(View::Findings));
        assert_eq!(a.view, View::Interfaces);
    }
}
