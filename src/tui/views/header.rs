//! Four header lines: what runs where, and what it costs / loses.

use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::alarm;
use crate::model::Hook;
use crate::tui::app::App;
use crate::tui::format;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let lines = vec![
        identity_line(app),
        hooks_line(app),
        fallbacks_line(app),
        cost_line(app),
    ];
    f.render_widget(Paragraph::new(lines), area);
}

fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

fn identity_line(app: &App) -> Line<'static> {
    let d = app.data();
    let m = &app.meta;
    let netns = if m.netns_filter.is_empty() {
        "all".to_string()
    } else {
        m.netns_filter
            .iter()
            .map(|n| app.netns_label(*n))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut spans = vec![
        Span::styled(
            "sirqtop",
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled("  kernel ", dim()),
        Span::raw(m.kernel_release.clone()),
        Span::styled("  cpus ", dim()),
        Span::raw(m.ncpus.to_string()),
        Span::styled("  refresh ", dim()),
        Span::raw(format::interval(app.interval)),
        Span::styled("  up ", dim()),
        Span::raw(format::elapsed(Duration::from_nanos(d.clock_ns))),
        Span::styled("  netns ", dim()),
        Span::raw(netns),
    ];
    if let Some(f) = &m.filter {
        spans.push(Span::styled("  filter ", dim()));
        spans.push(Span::styled(f.clone(), Style::default().fg(Color::Yellow)));
    }
    if let Some(n) = app.netns_view {
        spans.push(Span::styled("  showing ", dim()));
        spans.push(Span::styled(
            app.netns_label(n),
            Style::default().fg(Color::Yellow),
        ));
    }
    if app.paused() {
        spans.push(Span::styled(
            "  PAUSED (still collecting)",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// Backends per hook, grouped: "tracepoint(tp_btf) netif_rx softirq_raise · fentry veth_xmit".
fn hooks_line(app: &App) -> Line<'static> {
    let mut groups: Vec<(String, Vec<Hook>)> = Vec::new();
    let mut missing = Vec::new();
    for h in Hook::ALL {
        match app.meta.probes.attached.get(&h) {
            Some((b, detail)) => {
                let name = if detail.is_empty() || detail == b.as_str() {
                    b.as_str().to_string()
                } else {
                    format!("{b}({detail})")
                };
                match groups.iter_mut().find(|g| g.0 == name) {
                    Some(g) => g.1.push(h),
                    None => groups.push((name, vec![h])),
                }
            }
            None => missing.push(h),
        }
    }
    let mut spans = vec![Span::styled("hooks ", dim())];
    for (i, (name, hooks)) in groups.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", dim()));
        }
        spans.push(Span::styled(name, Style::default().fg(Color::Green)));
        let list: Vec<&str> = hooks.iter().map(|h| h.as_str()).collect();
        spans.push(Span::raw(format!(" {}", list.join(" "))));
    }
    if !missing.is_empty() {
        if spans.len() > 1 {
            spans.push(Span::styled(" · ", dim()));
        }
        let list: Vec<&str> = missing.iter().map(|h| h.as_str()).collect();
        spans.push(Span::styled(
            format!("not attached {}", list.join(" ")),
            Style::default().fg(Color::Red),
        ));
    }
    Line::from(spans)
}

fn fallbacks_line(app: &App) -> Line<'static> {
    let mut line = fallbacks(app);
    // The findings of the last interval, the most severe first (F shows them whole).
    let found = &app.data().findings;
    if !found.is_empty() {
        line.push_span(Span::styled("  findings (F) ", dim()));
        for (i, f) in found.iter().take(3).enumerate() {
            if i > 0 {
                line.push_span(Span::styled(" · ", dim()));
            }
            line.push_span(Span::styled(
                format!("{} {}", f.id, f.subject),
                super::findings::severity_style(f.severity),
            ));
        }
        if found.len() > 3 {
            line.push_span(Span::styled(format!(" +{}", found.len() - 3), dim()));
        }
    }
    line
}

fn fallbacks(app: &App) -> Line<'static> {
    let fb = &app.meta.probes.fallbacks;
    if fb.is_empty() {
        return Line::from(vec![Span::styled("fallbacks ", dim()), Span::raw("none")]);
    }
    let more = if fb.len() > 1 {
        format!("  (+{} more: ? shows all)", fb.len() - 1)
    } else {
        String::new()
    };
    Line::from(vec![
        Span::styled("fallbacks ", dim()),
        Span::styled(fb[0].clone(), Style::default().fg(Color::Yellow)),
        Span::styled(more, dim()),
    ])
}

fn cost_line(app: &App) -> Line<'static> {
    let d = app.data();
    let l = d.loss;
    let mut spans = vec![
        Span::styled("lost events ", dim()),
        Span::styled(
            format::count(l.ringbuf_dropped),
            alarm(l.ringbuf_dropped > 0),
        ),
        Span::styled("  in-flight evicted ", dim()),
        Span::styled(
            format::count(l.inflight_evicted),
            alarm(l.inflight_evicted > 0),
        ),
        Span::styled("  iface table full ", dim()),
        Span::styled(
            format::count(l.iface_table_full),
            alarm(l.iface_table_full > 0),
        ),
        Span::styled("  unattributed raises ", dim()),
        Span::raw(format::count(l.raises_unattributed)),
        Span::styled("  sirqtop BPF cost ", dim()),
    ];
    match d.bpf_cost_pct {
        Some(p) => spans.push(Span::raw(format!(
            "{} of one CPU ({} progs)",
            format::percent(p),
            d.programs
        ))),
        None => spans.push(Span::styled("stats off (--bpf-stats)", dim())),
    }
    Line::from(spans)
}
