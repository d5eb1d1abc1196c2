//! Softirqs per CPU: a NET_RX time bar per CPU (a hot CPU stands out), then every active
//! CPU × vector pair of the last interval, with the kernel's softnet squeezes and backlog
//! drops on the NET_RX rows.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::model::{Hook, NET_RX, VECTOR_NAMES};
use crate::tui::app::App;
use crate::tui::format::{self, EMPTY, UNAVAILABLE};

/// Width of one CPU's bar cell, label and percentage included.
const BAR_CELL_MIN: u16 = 30;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let cpus = &app.data().cpus;
    let cols = (area.width.saturating_sub(2) / BAR_CELL_MIN).max(1) as usize;
    let needed = cpus.len().div_ceil(cols).max(1) as u16;
    let bars_h = (needed + 2).min(area.height / 2).max(3);
    let [bars, table] =
        Layout::vertical([Constraint::Length(bars_h), Constraint::Min(3)]).areas(area);
    render_bars(app, f, bars, cols);
    render_table(app, f, table);
}

fn render_bars(app: &App, f: &mut Frame, area: Rect, cols: usize) {
    let d = app.data();
    let ns = d.interval_ns.max(1) as f64;
    let total = app
        .data()
        .cpus
        .iter()
        .map(|c| c.vectors[NET_RX].run_ns)
        .sum::<u64>() as f64;
    let title = Line::from(vec![
        Span::styled(
            " NET_RX softirq time per CPU ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                "(% of one CPU) · all CPUs {} ",
                format::percent(total / ns * 100.0)
            ),
            Style::default().fg(Color::DarkGray),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if !app.meta.availability.softirq_runs {
        let msg = format!("{UNAVAILABLE} not measured: needs the softirq entry/exit tracepoints");
        f.render_widget(Paragraph::new(msg), inner);
        return;
    }
    if d.cpus.is_empty() {
        f.render_widget(Paragraph::new("no CPU data yet"), inner);
        return;
    }
    let pcts: Vec<(u32, f64)> = d
        .cpus
        .iter()
        .map(|c| (c.cpu, c.vectors[NET_RX].run_ns as f64 / ns * 100.0))
        .collect();
    let hottest = pcts.iter().map(|p| p.1).fold(0.0, f64::max);
    let rows = inner.height as usize;
    let cell_w = (inner.width as usize / cols).max(1);
    let mut lines: Vec<Line> = vec![Line::default(); rows.min(pcts.len().div_ceil(cols))];
    let label_w = format!("cpu{}", pcts.iter().map(|p| p.0).max().unwrap_or(0)).len();
    for (i, (cpu, pct)) in pcts.iter().enumerate() {
        let (line, col) = (i % lines.len().max(1), i / lines.len().max(1));
        if col >= cols || line >= lines.len() {
            continue; // more CPUs than fit; the table below still lists them
        }
        let bar_w = cell_w.saturating_sub(label_w + 10);
        let filled = ((pct.min(100.0) / 100.0) * bar_w as f64).round() as usize;
        let filled = filled.max(usize::from(*pct > 0.0)).min(bar_w);
        let color = if *pct >= 50.0 {
            Color::Red
        } else if *pct >= 20.0 {
            Color::Yellow
        } else {
            Color::Green
        };
        let mut style = Style::default().fg(color);
        if *pct > 0.0 && *pct >= hottest {
            style = style.add_modifier(Modifier::BOLD);
        }
        let l = &mut lines[line];
        l.push_span(Span::raw(format!("{:<label_w$} ", format!("cpu{cpu}"))));
        l.push_span(Span::styled("█".repeat(filled), style));
        l.push_span(Span::styled(
            "░".repeat(bar_w - filled),
            Style::default().fg(Color::DarkGray),
        ));
        l.push_span(Span::styled(
            format!(" {:>6}  ", format::percent(*pct)),
            style,
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn render_table(app: &App, f: &mut Frame, area: Rect) {
    let a = app.meta.availability;
    let raises_ok = app.meta.probes.has(Hook::SoftirqRaise);
    let runs_ok = a.softirq_runs;
    let d = app.data();
    let secs = d.interval_ns.max(1) as f64 / 1e9;
    let vec_name = app.vector_filter.map(|v| VECTOR_NAMES[v]).unwrap_or("all");
    let all = app.cpu_rows();
    let title = Line::from(vec![
        Span::styled(
            " softirqs per CPU × vector ",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                "· vector {vec_name} (v) · {} active · last interval ",
                all.len()
            ),
            Style::default().fg(Color::DarkGray),
        ),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    if all.is_empty() {
        let msg = if app.has_data() {
            "no softirq activity in the last interval"
        } else {
            "waiting for the first sample …"
        };
        f.render_widget(Paragraph::new(msg).block(block), area);
        return;
    }
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let opt = |ok: bool, v: Option<String>| {
        if !ok {
            UNAVAILABLE.to_string()
        } else {
            v.unwrap_or_else(|| EMPTY.to_string())
        }
    };
    let header = Row::new(
        [
            "CPU",
            "VECTOR",
            "RAISES/S",
            "RUNS/S",
            "TIME",
            "RUN P99",
            "RAISE→RUN P99",
            "KSOFTIRQD",
            "SQUEEZE/S",
            "BKLOG DROP/S",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let l = Line::from(*t).style(Style::default().add_modifier(Modifier::BOLD));
            Cell::from(if i < 2 {
                l
            } else {
                l.alignment(Alignment::Right)
            })
        }),
    );
    let rows = all.iter().skip(app.cpu_scroll).map(|(cpu, v, s)| {
        let time_pct = s.run_ns as f64 / d.interval_ns.max(1) as f64 * 100.0;
        let ksoft =
            (s.runs > 0).then(|| format::percent(s.ksoftirqd_runs as f64 / s.runs as f64 * 100.0));
        let cells = vec![
            Cell::from(format!("cpu{cpu}")),
            Cell::from(VECTOR_NAMES[*v]),
            right(opt(raises_ok, Some(format::rate(s.raises as f64 / secs)))),
            right(opt(runs_ok, Some(format::rate(s.runs as f64 / secs)))),
            right(opt(runs_ok, Some(format::percent(time_pct)))),
            right(opt(runs_ok, s.run.quantile(0.99).map(format::duration_ns))),
            right(opt(
                raises_ok && runs_ok,
                s.raise_to_run.quantile(0.99).map(format::duration_ns),
            )),
            right(opt(runs_ok, ksoft)),
        ];
        // The kernel's softnet counters belong to NET_RX: a squeeze or a backlog drop
        // means the receive budget or the backlog ran out on that CPU.
        let softnet = (*v == NET_RX)
            .then(|| {
                d.cpus
                    .iter()
                    .find(|c| c.cpu == *cpu)
                    .and_then(|c| c.softnet)
            })
            .flatten();
        let alarm = softnet.is_some_and(|s| s.time_squeeze > 0 || s.dropped > 0);
        let mut cells = cells;
        cells.extend(match softnet {
            Some(s) => [s.time_squeeze, s.dropped].map(|n| {
                let c = right(format::rate(n as f64 / secs));
                if n > 0 {
                    c.style(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD))
                } else {
                    c
                }
            }),
            None => [right(String::new()), right(String::new())],
        });
        let row = Row::new(cells);
        if *v == NET_RX && !alarm {
            row.style(Style::default().fg(Color::Cyan))
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(12),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(2);
    f.render_widget(table, area);
}
