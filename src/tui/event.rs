//! Keys to actions. Which action a key means depends on the mode (help, filter prompt, view);
//! the state change itself is `App::apply`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, View};

/// The key bindings, as shown by `?` and in the README: (keys, what they do).
pub const KEY_HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (BPF programs are detached on exit)"),
    (
        "Esc",
        "back / close help / clear filters; quits from the main view",
    ),
    ("?", "toggle this help"),
    ("↑ ↓  j k", "select interface (scroll in the CPUs view)"),
    ("PgUp PgDn  g G", "page up / down, first / last"),
    (
        "Enter",
        "detail of the selected interface (histograms, history, peer)",
    ),
    ("s / S", "sort by the next column / reverse the order"),
    (
        "/",
        "filter by text (name, netns, kind, peer); Enter keeps, Esc clears",
    ),
    (
        "n",
        "show one network namespace (cycles through them, then all)",
    ),
    ("c", "CPUs view: softirqs per CPU and vector"),
    (
        "P",
        "paths view: first veth transmit -> receive, hops, cost per packet; ↑↓ selects",
    ),
    (
        "v",
        "CPUs view: cycle the vector shown (all, NET_RX, NET_TX, ...)",
    ),
    ("F", "findings: what the numbers mean, and what to change"),
    (
        "W",
        "who pays: softirq time by the task it ran on (netns, idle, ksoftirqd)",
    ),
    (
        "L",
        "slow softirqs: runs and raise->run delays over --slow, newest first",
    ),
    (
        "t",
        "detail view: histograms of the last interval / since start",
    ),
    ("p", "pause the display (collection continues)"),
    ("+ / -", "refresh interval longer / shorter (250ms .. 10s)"),
];

/// The action a key press means in the app's current mode.
pub fn action_for(app: &App, key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Action::Quit;
    }
    if app.filter_editing {
        return match key.code {
            KeyCode::Esc => Action::FilterCancel,
            KeyCode::Enter => Action::FilterConfirm,
            KeyCode::Backspace => Action::FilterBackspace,
            KeyCode::Up => Action::Up,
            KeyCode::Down => Action::Down,
            KeyCode::Char(c) if !ctrl => Action::FilterChar(c),
            _ => Action::None,
        };
    }
    if app.help {
        return match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => Action::ToggleHelp,
            _ => Action::None,
        };
    }
    match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => match app.view {
            View::Interfaces if !app.filter.is_empty() || app.netns_view.is_some() => {
                Action::ClearFilters
            }
            View::Interfaces => Action::Quit,
            _ => Action::Back,
        },
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::LongerInterval,
        KeyCode::Char('-') | KeyCode::Char('_') => Action::ShorterInterval,
        KeyCode::Char('s') => Action::NextSort,
        KeyCode::Char('S') => Action::ReverseSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('n') => Action::NextNetns,
        KeyCode::Char('c') => Action::ToggleCpus,
        KeyCode::Char('P') => Action::TogglePaths,
        KeyCode::Char('F') => Action::ToggleView(View::Findings),
        KeyCode::Char('W') => Action::ToggleView(View::Payers),
        KeyCode::Char('L') => Action::ToggleView(View::Slow),
        KeyCode::Char('v') if app.view == View::Cpus => Action::NextVector,
        KeyCode::Char('t') if matches!(app.view, View::Detail(_)) => Action::ToggleHistScope,
        KeyCode::Enter if app.view == View::Interfaces => Action::OpenDetail,
        KeyCode::Backspace | KeyCode::Left if app.view != View::Interfaces => Action::Back,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        _ => Action::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CaptureMeta;
    use std::time::{Duration, SystemTime};

    fn app() -> App {
        let meta = CaptureMeta {
            kernel_release: "6.8.0".into(),
            probes: Default::default(),
            availability: Default::default(),
            started_at: SystemTime::UNIX_EPOCH,
            netns_filter: vec![],
            filter: None,
            ncpus: 2,
            bpf_stats: false,
        };
        App::new(meta, Duration::from_secs(1))
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn quit_keys() {
        let a = app();
        assert_eq!(action_for(&a, key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::Quit);
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&a, cc), Action::Quit);
    }

    #[test]
    fn filter_prompt_takes_letters() {
        let mut a = app();
        a.apply(Action::StartFilter);
        assert_eq!(
            action_for(&a, key(KeyCode::Char('q'))),
            Action::FilterChar('q')
        );
        assert_eq!(
            action_for(&a, key(KeyCode::Char('c'))),
            Action::FilterChar('c')
        );
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::FilterCancel);
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&a, cc), Action::Quit);
    }

    #[test]
    fn esc_goes_back_before_quitting() {
        let mut a = app();
        a.apply(Action::ToggleCpus);
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::Back);
        a.apply(Action::Back);
        a.filter = "veth".into();
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::ClearFilters);
        a.apply(Action::ClearFilters);
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::Quit);
        a.apply(Action::ToggleHelp);
        assert_eq!(action_for(&a, key(KeyCode::Esc)), Action::ToggleHelp);
    }

    #[test]
    fn interval_steps_are_bounded() {
        let mut a = app();
        for _ in 0..20 {
            a.apply(Action::LongerInterval);
        }
        assert_eq!(a.interval, Duration::from_secs(10));
        assert_eq!(
            a.apply(Action::LongerInterval),
            super::super::app::Effect::None
        );
        for _ in 0..20 {
            a.apply(Action::ShorterInterval);
        }
        assert_eq!(a.interval, Duration::from_millis(250));
    }
}
