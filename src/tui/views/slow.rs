//! Slow softirqs (`L`): runs and raise -> run delays of at least `--slow`, newest first,
//! with the task they ran on and, for NET_RX runs, the packets and their main receiver.
//! The title carries the exact counts and what was not listed (capped, lost).

use std::time::{Duration, UNIX_EPOCH};

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};
use ratatui::Frame;

use crate::model::{SlowEvent, SlowKind, SlowSoftirqs, VECTOR_NAMES};
use crate::tui::app::App;
use crate::tui::format;

/// "since attach" counts per vector and kind, largest first: `NET_RX run 12 · RCU delay 3`.
fn counts_line(s: &SlowSoftirqs) -> String {
    let mut c: Vec<(u64, &str, &str)> = Vec::new();
    for (v, name) in VECTOR_NAMES.iter().enumerate() {
        for k in SlowKind::ALL {
            let n = s.count(v, k);
            if n > 0 {
                c.push((n, name, k.as_str()));
            }
        }
    }
    c.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    c.iter()
        .map(|(n, v, k)| format!("{v} {k} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Wall-clock time of day (UTC) with milliseconds.
fn clock(unix_ns: u64) -> String {
    let t = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(unix_ns));
    let s = t.to_string();
    s.get(11..23).unwrap_or(&s).to_string()
}

fn receiver(e: &SlowEvent) -> String {
    match (&e.rx_top, &e.rx_top_name) {
        (Some(_), Some(name)) => match &e.rx_top_label {
            Some(l) if !l.is_empty() => format!("{l}/{name}"),
            _ => name.clone(),
        },
        (Some(k), None) => format!("netns:{} if{}", k.netns, k.ifindex),
        _ => String::new(),
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let d = app.data();
    let s = &d.slow;
    let dim = Style::default().fg(Color::DarkGray);
    let mut title = vec![Span::styled(
        " slow softirqs ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if s.threshold_ns > 0 {
        title.push(Span::styled(
            format!(
                "· ≥ {} · {} since start, {} last interval ",
                format::duration_ns(s.threshold_ns),
                s.total(),
                d.slow_last
            ),
            dim,
        ));
        let unlisted = s.capped + s.lost;
        if unlisted > 0 {
            title.push(Span::styled(
                format!(
                    "· not listed: {} over the rate cap, {} lost ",
                    s.capped, s.lost
                ),
                Style::default().fg(Color::Yellow),
            ));
        }
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(title))
        .title_bottom(Line::from(Span::styled(
            format!(" {} ", counts_line(s)),
            dim,
        )));
    if s.threshold_ns == 0 {
        let msg = if app.has_data() {
            "not measured: needs the softirq entry/exit tracepoints (not with --lite)"
        } else {
            "waiting for the first sample …"
        };
        super::placeholder(f, area, block, msg.to_string());
        return;
    }
    if s.events.is_empty() {
        let msg = format!(
            "no softirq run or raise->run delay reached {} since start",
            format::duration_ns(s.threshold_ns)
        );
        super::placeholder(f, area, block, msg);
        return;
    }
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let names = [
        "TIME (UTC)",
        "CPU",
        "VECTOR",
        "KIND",
        "DURATION",
        "TASK",
        "NETNS",
        "PKTS",
        "RECEIVED BY",
    ];
    let header = Row::new(names.iter().enumerate().map(|(i, t)| {
        let l = Line::from(*t).style(Style::default().add_modifier(Modifier::BOLD));
        Cell::from(if matches!(i, 1 | 4 | 7) {
            l.alignment(Alignment::Right)
        } else {
            l
        })
    }));
    let rows = s.newest_first().skip(app.list_scroll).map(|e| {
        let task = if e.ksoftirqd {
            format!("{} (ksoftirqd)", e.comm)
        } else if e.pid == 0 {
            "idle".to_string()
        } else {
            format!("{} {}", e.comm, e.pid)
        };
        Row::new(vec![
            Cell::from(clock(e.unix_ns)),
            right(e.cpu.to_string()),
            Cell::from(VECTOR_NAMES.get(e.vector).copied().unwrap_or("?")),
            Cell::from(e.kind.as_str()),
            right(format::duration_ns(e.duration_ns)),
            Cell::from(task),
            Cell::from(e.netns_label.clone()),
            right(e.packets.map(|p| p.to_string()).unwrap_or_default()),
            Cell::from(receiver(e)),
        ])
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(3),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(24),
        Constraint::Length(18),
        Constraint::Length(5),
        Constraint::Min(16),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1);
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use crate::model::slow::SlowLog;
    use crate::model::{IfaceKey, Interface, SlowEvent, SlowKind, SlowSoftirqs, Snapshot};
    use crate::model::{NET_RX, NET_TX};
    use crate::tui::app::{Action, View};
    use crate::tui::render_to_text;

    fn snap(secs: u64, events: &[SlowEvent], capped: u64) -> Snapshot {
        let mut log = SlowLog::default();
        for e in events {
            log.push(e.clone());
        }
        let mut slow = SlowSoftirqs {
            threshold_ns: 10_000,
            events: log.events(),
            capped,
            ..SlowSoftirqs::default()
        };
        for e in events {
            slow.counts[e.vector][e.kind as usize] += 1;
        }
        slow.counts[NET_RX][0] += capped;
        Snapshot {
            elapsed_ns: secs * 1_000_000_000,
            interfaces: vec![Interface::new(IfaceKey::new(5, 2))],
            slow,
            ..Snapshot::default()
        }
    }

    #[test]
    fn slow_softirqs_are_listed_newest_first_with_task_and_receiver() {
        let old = SlowEvent {
            unix_ns: 1_000_000_000,
            cpu: 3,
            vector: NET_TX,
            kind: SlowKind::Delay,
            duration_ns: 20_000,
            pid: 77,
            comm: "oldtask".into(),
            ..SlowEvent::default()
        };
        let new = SlowEvent {
            unix_ns: 2_000_000_000,
            cpu: 1,
            vector: NET_RX,
            kind: SlowKind::Run,
            duration_ns: 1_500_000,
            pid: 4242,
            comm: "iperf3".into(),
            netns_label: "shop/client-0".into(),
            packets: Some(300),
            rx_top: Some(IfaceKey::new(5, 2)),
            rx_top_name: Some("eth0".into()),
            rx_top_label: Some("shop/server-0".into()),
            ..SlowEvent::default()
        };
        let mut a = crate::tui::app::test_app();
        a.update(snap(1, std::slice::from_ref(&old), 0));
        a.update(snap(2, &[old, new], 5));
        a.apply(Action::ToggleView(View::Slow));
        let text = render_to_text(&a, 140, 20);
        let n = text
            .lines()
            .position(|l| l.contains("iperf3 4242"))
            .unwrap();
        let o = text.lines().position(|l| l.contains("oldtask 77")).unwrap();
        assert!(n < o, "newest first:\n{text}");
        let row = text.lines().nth(n).unwrap();
        for want in [
            "NET_RX",
            "run",
            "1.50ms",
            "shop/client-0",
            "300",
            "shop/server-0/eth0",
        ] {
            assert!(row.contains(want), "{want} in {row}\n{text}");
        }
        assert!(text.lines().nth(o).unwrap().contains("delay"), "{text}");
        // Counts since start, the interval's, and what the rate cap kept out.
        assert!(text.contains("7 since start, 6 last interval"), "{text}");
        assert!(text.contains("5 over the rate cap, 0 lost"), "{text}");
        assert!(text.contains("NET_RX run 6 · NET_TX delay 1"), "{text}");
    }

    #[test]
    fn nothing_slow_and_not_measured_say_so() {
        let mut a = crate::tui::app::test_app();
        a.update(snap(1, &[], 0));
        a.apply(Action::ToggleView(View::Slow));
        assert!(render_to_text(&a, 120, 20).contains("no softirq run or raise->run delay reached"));
        let mut b = crate::tui::app::test_app();
        b.update(Snapshot::default());
        b.update(Snapshot {
            elapsed_ns: 1_000_000_000,
            ..Snapshot::default()
        });
        b.apply(Action::ToggleView(View::Slow));
        assert!(render_to_text(&b, 120, 20).contains("not measured"));
    }
}
