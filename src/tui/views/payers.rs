//! Who paid for softirqs in the last interval: per payer (a netns label, idle, ksoftirqd)
//! its softirq time as a share of one CPU, NET_RX's part, runs/s and its top vectors.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::model::{PayerKind, NET_RX, VECTOR_NAMES};
use crate::tui::app::App;
use crate::tui::format;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let d = app.data();
    let title = Line::from(vec![
        Span::styled(
            " who pays for softirqs ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "· time charged to the task they ran on · last interval ",
            Style::default().fg(Color::DarkGray),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    if !app.meta.availability.softirq_runs {
        let msg = "not measured: needs the softirq entry/exit tracepoints".to_string();
        super::placeholder(f, area, block, msg);
        return;
    }
    if d.payers.is_empty() {
        let msg = if app.has_data() {
            "no softirq ran in the last interval"
        } else {
            "waiting for the first sample …"
        };
        super::placeholder(f, area, block, msg.to_string());
        return;
    }
    let ns = d.interval_ns.max(1) as f64;
    let secs = ns / 1e9;
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let header = Row::new(
        [
            "PAYER",
            "KIND",
            "SIRQ CPU",
            "NET_RX",
            "RUNS/S",
            "TOP VECTORS",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let l = Line::from(*t).style(Style::default().add_modifier(Modifier::BOLD));
            Cell::from(if (2..5).contains(&i) {
                l.alignment(Alignment::Right)
            } else {
                l
            })
        }),
    );
    let rows = d.payers.iter().skip(app.list_scroll).map(|p| {
        let mut top: Vec<(usize, u64)> = p.ns.iter().copied().enumerate().collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        let top: Vec<String> = top
            .iter()
            .filter(|(_, n)| *n > 0)
            .take(3)
            .map(|(v, n)| {
                format!(
                    "{} {}",
                    VECTOR_NAMES[*v],
                    format::percent(*n as f64 / ns * 100.0)
                )
            })
            .collect();
        let kind = match p.key.kind {
            PayerKind::Task => "task",
            PayerKind::Idle => "idle",
            PayerKind::Ksoftirqd => "ksoftirqd",
            PayerKind::Overflow => "overflow",
            PayerKind::Forgotten => "forgotten",
        };
        Row::new(vec![
            Cell::from(p.label.clone()),
            Cell::from(kind),
            right(format::percent(p.total_ns() as f64 / ns * 100.0)),
            right(format::percent(p.ns[NET_RX] as f64 / ns * 100.0)),
            right(format::rate(p.runs.iter().sum::<u64>() as f64 / secs)),
            Cell::from(top.join("  ")),
        ])
    });
    let widths = [
        Constraint::Length(28),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Min(20),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(2);
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use crate::model::{Payer, PayerKey, PayerKind, Snapshot, NET_RX};
    use crate::tui::app::{Action, View};
    use crate::tui::render_to_text;

    #[test]
    fn payers_are_listed_with_their_share_of_one_cpu() {
        let mut a = crate::tui::app::test_app();
        let snap = |secs: u64| {
            let mut pod = Payer::new(PayerKey {
                kind: PayerKind::Task,
                netns: 7,
                cookie: 0,
            });
            pod.label = "shop/client-0".into();
            let mut ns = [0u64; 10];
            ns[NET_RX] = secs * 250_000_000;
            pod.merge_counts(&ns, &[0, 0, 0, secs * 1000]);
            let mut idle = Payer::new(PayerKey {
                kind: PayerKind::Idle,
                ..PayerKey::default()
            });
            idle.label = "idle".into();
            idle.merge_counts(&[0, secs * 10_000_000], &[0, secs * 100]);
            Snapshot {
                elapsed_ns: secs * 1_000_000_000,
                payers: vec![idle, pod],
                ..Snapshot::default()
            }
        };
        a.update(snap(1));
        a.update(snap(2));
        a.apply(Action::ToggleView(View::Payers));
        let text = render_to_text(&a, 120, 20);
        let pod = text.lines().find(|l| l.contains("shop/client-0")).unwrap();
        assert!(pod.contains("task") && pod.contains("25.0%"), "{text}");
        let idle = text.lines().find(|l| l.contains(" idle ")).unwrap();
        assert!(idle.contains("1.0%") && idle.contains("TIMER"), "{text}");
        let (p, i) = (
            text.find("shop/client-0").unwrap(),
            text.find(" idle ").unwrap(),
        );
        assert!(p < i, "most time first");
    }
}
