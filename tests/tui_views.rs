//! Rendering tests of the dashboard's views over hand-built snapshots (ratatui
//! TestBackend): the detail view (histograms, history, peer, raise sites, receive path,
//! drops, unseen receives), the CPUs view and the paths view.

mod tui_fixtures;

use tui_fixtures::*;

#[test]
fn detail_view_shows_histograms_history_and_the_peer() {
    let mut app = App::new(meta(), Duration::from_secs(1));
    for t in 1..=30 {
        app.update(snap(t, pair(t)));
    }
    // Select veth-b (first under the default sort) and open it.
    app.apply(Action::OpenDetail);
    assert!(matches!(app.view, View::Detail(_)));
    let s = render_to_text(&app, 160, 45);
    assert!(
        s.contains("veth-b · veth · netns ns-b (4026532200) · ifindex 7 · peer veth-a@ns-a"),
        "{s}"
    );
    assert!(s.contains("backlog wait · last interval"), "{s}");
    assert!(s.contains("veth hop · last interval"));
    let q = line_with(&s, "p50 ");
    assert!(
        q.contains("p90") && q.contains("p99") && q.contains("max"),
        "{q}"
    );
    // Backlog wait of 40 µs sits in bucket [32.8 µs, 65.5 µs].
    assert!(s.contains("32.8µs–65.5µs"), "{s}");
    // veth-b has no veth hop samples (only veth-a transmits).
    assert!(s.contains("no samples"));
    // Both rows: the interface and its peer.
    assert!(s.contains(" veth-b ") && s.contains(" veth-a "));
    assert!(s.contains("tx pps now"));
    assert!(s.contains("rx pps now 20.0k"), "{s}");
    assert!(s.contains("softirq CPU now 5.0%"), "{s}");
    // Since start: the same bucket, 30 samples.
    app.apply(Action::ToggleHistScope);
    let s = render_to_text(&app, 160, 45);
    assert!(s.contains("backlog wait · since start"));
    assert!(
        line_with(&s, "32.8µs–65.5µs")
            .trim_end_matches('│')
            .trim_end()
            .ends_with("30"),
        "{s}"
    );
    // Down moves to the next interface in the detail view too; Esc goes back.
    app.apply(Action::Down);
    assert!(render_to_text(&app, 160, 45).contains("veth-a · veth · netns ns-a"));
    app.apply(Action::Back);
    assert_eq!(app.view, View::Interfaces);
}

/// Sampled latencies (--timing-rate): the histogram titles say what share of the skbs was
/// timed (their counts are weighted estimates), for the scope shown; nothing when exact.
#[test]
fn detail_view_says_when_the_histograms_are_sampled() {
    let timed = |secs: u64, picked: u64, timed: u64| {
        let mut s = snap(secs, pair(secs));
        s.timing = sirqtop::model::Timing {
            rate: 20_000,
            skbs_picked: picked,
            skbs_timed: timed,
        };
        s
    };
    let mut app = App::new(meta(), Duration::from_secs(1));
    // Every skb timed in the first second, 1 in 4 of the next 4000.
    app.update(timed(1, 1000, 1000));
    app.apply(Action::OpenDetail);
    let s = render_to_text(&app, 160, 45);
    assert!(s.contains("veth hop · last interval ─"), "{s}");
    assert!(!s.contains("timed"), "{s}");
    app.update(timed(2, 5000, 2000));
    let s = render_to_text(&app, 160, 45);
    assert!(
        s.contains("veth hop · last interval · 25.0% of skbs timed"),
        "{s}"
    );
    assert!(
        s.contains("backlog wait · last interval · 25.0% of skbs timed"),
        "{s}"
    );
    app.apply(Action::ToggleHistScope);
    let s = render_to_text(&app, 160, 45);
    assert!(
        s.contains("veth hop · since start · 40.0% of skbs timed"),
        "{s}"
    );
}

#[test]
fn cpus_view_shows_vectors_and_a_hot_cpu() {
    let mut app = pair_app();
    app.apply(Action::ToggleCpus);
    let s = text(&app);
    assert!(s.contains("NET_RX softirq time per CPU"), "{s}");
    let bars = line_with(&s, "cpu0 ");
    assert!(bars.contains("5.0%") && bars.contains("60.0%"), "{bars}");
    let hot = line_with(&s, "cpu1     NET_RX");
    assert!(hot.contains("60.0%"), "time %: {hot}");
    assert!(hot.contains("2.00k"), "raises/s: {hot}");
    assert!(hot.contains("1.60k"), "runs/s: {hot}");
    assert!(hot.contains("12.5%"), "ksoftirqd share 200/1600: {hot}");
    assert!(s.contains("cpu0     TIMER"), "{s}");
    // v: only NET_RX.
    app.apply(Action::NextVector);
    let s = text(&app);
    assert!(s.contains("vector NET_RX"));
    assert!(!s.contains("TIMER"), "{s}");
    // The hottest CPU's bar is red.
    let backend = TestBackend::new(160, 40);
    let mut term = Terminal::new(backend).unwrap();
    term.draw(|f| sirqtop::tui::ui::render(&app, f)).unwrap();
    let buf = term.backend().buffer();
    let y = s
        .lines()
        .position(|l| l.contains("cpu1 ") && l.contains("█"))
        .unwrap() as u16;
    let line = s.lines().nth(y as usize).unwrap();
    let x = line[..line.find("cpu1 ").unwrap()].chars().count() as u16 + 5;
    assert_eq!(buf[(x, y)].fg, Color::Red, "{line}");
    app.apply(Action::ToggleCpus);
    assert_eq!(app.view, View::Interfaces);
}

#[test]
fn detail_view_lists_raise_sites() {
    let mut app = demo::app();
    app.apply(Action::OpenDetail);
    let s = render_to_text(&app, 160, 45);
    assert!(s.contains("raise sites"), "{s}");
    let l = line_with(&s, "enqueue_to_backlog");
    assert!(l.contains("NET_RX") && l.contains("/s"), "{l}");
    assert!(
        l.contains("__raise_softirq_irqoff ← enqueue_to_backlog ← __netif_rx ← veth_xmit"),
        "{l}"
    );
    // No room on a short terminal: the histograms keep their space, no garbling.
    let s = render_to_text(&app, 160, 30);
    assert!(!s.contains("raise sites") && s.contains("veth hop"), "{s}");
}

#[test]
fn detail_view_shows_the_receive_path_and_drops() {
    let mut app = App::new(meta(), Duration::from_secs(1));
    for t in 1..=3 {
        let mut p = pair(t);
        // veth-b polled by its own NAPI (XDP), some of it dropped.
        p[1].counters.rx_enqueued = 0;
        p[1].counters.napi_polls = 100 * t;
        p[1].counters.napi_packets = 20_000 * t;
        p[1].counters.dropped = 40 * t;
        p[1].drop_reasons.insert("SOCKET_RCVBUFF".into(), 30 * t);
        p[1].drop_reasons.insert("NOT_SPECIFIED".into(), 10 * t);
        app.update(snap(t, p));
    }
    app.apply(Action::OpenDetail);
    let s = render_to_text(&app, 160, 45);
    let title = line_with(&s, "veth-b · veth");
    assert!(title.contains("· rx napi "), "{title}");
    assert!(
        title.contains("· 120 dropped, mostly SOCKET_RCVBUFF "),
        "{title}"
    );
}

#[test]
fn paths_view_lists_paths_by_cost_with_the_hop_chain() {
    let mut app = demo::app();
    assert_eq!(
        sirqtop::tui::event::action_for(
            &app,
            crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char('P'))
        ),
        Action::TogglePaths
    );
    app.apply(Action::TogglePaths);
    let s = render_to_text(&app, 160, 30);
    println!("{s}");
    assert!(s.contains("paths 6"), "{s}");
    // Most softirq time first: the two 2-hop web <-> redis paths, then loadgen -> web.
    let row = |from: &str, to: &str| {
        s.lines()
            .position(|l| {
                l.find(from)
                    .is_some_and(|i| l[i + from.len()..].trim_start().starts_with(to))
            })
            .unwrap_or_else(|| panic!("{from} -> {to} not listed"))
    };
    let rw = row("eth0@redis-0/9b2e41d7", "eth0@web-7f9c/c3a1f0e2");
    let wr = row("eth0@web-7f9c/c3a1f0e2", "eth0@redis-0/9b2e41d7");
    let lw = row("eth0@loadgen[4121]", "eth0@web-7f9c/c3a1f0e2");
    assert!(rw < wr && wr < lw, "{rw} {wr} {lw}");
    let first = line_with(&s, "▶");
    assert!(first.contains("eth0@redis-0/9b2e41d7"), "{first}");
    assert!(first.contains("    2 "), "two hops: {first}");
    assert!(
        first.contains("12.4k"),
        "pkt/s over the last interval: {first}"
    );
    assert!(first.contains("2.00"), "two enqueues per packet: {first}");
    // The chain of the selected path, and its cost by hop.
    assert!(
        s.contains("eth0@redis-0/9b2e41d7 → veth91be07d@host → eth0@web-7f9c/c3a1f0e2"),
        "{s}"
    );
    let costs = line_with(&s, "per packet, by receiving hop");
    assert!(
        costs.contains("veth91be07d@host") && costs.contains(" + eth0@web"),
        "{costs}"
    );
    assert!(line_with(&s, "end to end:").contains("2 hops · 2.00 enqueues"));
    // Selection moves; Esc goes back.
    app.apply(Action::Down);
    let s = render_to_text(&app, 160, 30);
    let sel = line_with(&s, "▶");
    assert!(
        sel.find("eth0@web-7f9c") < sel.find("eth0@redis-0"),
        "{sel}"
    );
    app.apply(Action::Back);
    assert_eq!(app.view, View::Interfaces);
    // No paths yet, and too small a terminal, say so.
    let mut empty = App::new(meta(), Duration::from_secs(1));
    empty.update(snap(1, pair(1)));
    empty.apply(Action::TogglePaths);
    assert!(render_to_text(&empty, 160, 30).contains("no paths yet"));
    assert!(render_to_text(&empty, 100, 30).contains("need 110x16"));
}

/// Receives the kernel counted that sirqtop did not see (a peer redirect or rx_handler on
/// a kernel without the hook): the row's receive rate is marked, the detail says how many.
#[test]
fn unseen_receives_are_marked_and_counted() {
    let with_unseen = |k: u64| {
        let mut v = pair(k);
        // veth-b's own statistics: 1000 more per second than sirqtop saw.
        v[1].kernel_rx_packets = Some(v[1].counters.rx_packets + 1_000 * k);
        v[0].kernel_rx_packets = Some(v[0].counters.rx_packets);
        v
    };
    let mut app = App::new(meta(), Duration::from_secs(1));
    app.update(snap(10, with_unseen(10)));
    app.update(snap(11, with_unseen(11)));
    let s = text(&app);
    assert!(line_with(&s, " veth-b ").contains("20.0k!"), "{s}");
    assert!(!line_with(&s, " veth-a ").contains('!'), "{s}");
    app.apply(Action::OpenDetail);
    let s = render_to_text(&app, 160, 45);
    assert!(
        s.contains("11000 of the kernel's 231000 receives unseen"),
        "{s}"
    );
}

/// A live reading leaves a few receives counted by one side only: the device's count read
/// a moment behind sirqtop's, or packets still in the backlog (enqueued, not yet
/// received). Neither earns the `!` nor the detail's count.
#[test]
fn a_live_reading_is_not_marked_unseen() {
    let read = |k: u64, kernel_behind: u64, queued: u64| {
        let mut v = pair(k);
        v[1].counters.rx_enqueued = v[1].counters.rx_packets + queued;
        v[1].kernel_rx_packets = Some(v[1].counters.rx_packets + queued - kernel_behind);
        v[0].kernel_rx_packets = Some(v[0].counters.rx_packets);
        v
    };
    let mut app = App::new(meta(), Duration::from_secs(1));
    app.update(snap(10, read(10, 300, 0)));
    app.update(snap(11, read(11, 0, 900)));
    let s = text(&app);
    assert!(!line_with(&s, " veth-b ").contains('!'), "{s}");
    app.apply(Action::OpenDetail);
    assert!(!render_to_text(&app, 160, 45).contains("unseen"));
}
