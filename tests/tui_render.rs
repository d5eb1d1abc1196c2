//! Rendering tests of the dashboard over hand-built snapshots (ratatui TestBackend): the
//! main view and header, sorting, filtering, pause, gone rows, help, too-small terminals,
//! zero traffic and many interfaces (the other views: tui_views.rs). Assertions are on the
//! rendered text.

mod tui_fixtures;

use tui_fixtures::*;

#[test]
fn main_view_shows_identity_and_rates_of_the_last_interval() {
    let s = text(&pair_app());
    assert!(s.contains("kernel 6.1.0-test"), "{s}");
    assert!(s.contains("cpus 2"));
    assert!(s.contains("refresh 1s"));
    assert!(s.contains("interfaces 2/2"));
    let a = line_with(&s, "ns-a  veth-a");
    assert!(a.contains("veth-b@ns-b"), "peer name@label: {a}");
    assert!(a.contains("20.0k"), "tx pps over the last 1 s: {a}");
    let b = line_with(&s, " veth-b ");
    assert!(
        b.contains("5.0%"),
        "softirq 50 ms in 1 s = 5% of one CPU: {b}"
    );
    assert!(b.contains("5.00k"), "raises/s: {b}");
    assert!(b.contains("2.50µs"), "50 ms / 20k packets: {b}");
    assert!(b.contains("40.0µs"), "backlog p99: {b}");
    // Default sort: softirq CPU descending -> veth-b (5%) above veth-a (0.1%).
    let order = row_order(&s, &["veth-b", "veth-a"]);
    assert!(order[0] < order[1], "{s}");
    for col in [
        "NETNS", "IFACE", "KIND", "PEER", "TX PPS", "RX PPS", "RAISE/S", "SIRQ CPU", "SIRQ/PKT",
        "HOP P50", "HOP P99", "BKLG P99",
    ] {
        assert!(s.contains(col), "column {col} missing");
    }
}

#[test]
fn header_reports_backends_fallbacks_loss_and_own_cost() {
    let mut probes = all_hooks();
    probes
        .attached
        .insert(Hook::VethXmit, (Backend::Kprobe, "kprobe".into()));
    probes.attached.remove(&Hook::SoftirqRun);
    probes
        .fallbacks
        .push("veth_xmit: fentry: no BTF for module veth".into());
    probes
        .fallbacks
        .push("veth_xmit: tp_btf: net_dev_start_xmit misses xdp".into());
    let mut app = App::new(meta_with(probes, true), Duration::from_millis(500));
    let mut s1 = snap(1, pair(1));
    s1.programs = vec![ProgramCost {
        name: "kprobe_veth_xmit".into(),
        hook: Hook::VethXmit,
        backend: Backend::Kprobe,
        run_count: Some(10),
        run_time_ns: Some(1_000_000),
    }];
    let mut s2 = snap(2, pair(2));
    s2.loss = Loss {
        ringbuf_dropped: 3,
        inflight_evicted: 12,
        iface_table_full: 0,
        raises_unattributed: 5,
        ..Loss::default()
    };
    s2.programs = s1.programs.clone();
    s2.programs[0].run_time_ns = Some(21_000_000);
    app.update(s1);
    app.update(s2);
    let s = text(&app);
    let hooks = line_with(&s, "hooks");
    assert!(hooks.contains("kprobe veth_xmit"), "{hooks}");
    assert!(hooks.contains("tracepoint(tp_btf) netif_rx"), "{hooks}");
    assert!(hooks.contains("not attached softirq_run"), "{hooks}");
    let fb = line_with(&s, "fallbacks");
    assert!(
        fb.contains("veth_xmit: fentry: no BTF for module veth"),
        "{fb}"
    );
    assert!(fb.contains("+1 more"), "{fb}");
    let cost = line_with(&s, "lost events");
    assert!(cost.contains("lost events 3"), "{cost}");
    assert!(cost.contains("in-flight evicted 12"), "{cost}");
    assert!(
        cost.contains("2.0% of one CPU (1 progs)"),
        "20 ms of BPF run time in 1 s: {cost}"
    );
    assert!(s.contains("refresh 500ms"));

    // Non-zero losses are red, zero ones are not.
    let backend = TestBackend::new(160, 40);
    let mut term = Terminal::new(backend).unwrap();
    term.draw(|f| sirqtop::tui::ui::render(&app, f)).unwrap();
    let buf = term.backend().buffer();
    let y = 3;
    let row: String = (0..160).map(|x| buf[(x, y)].symbol().to_string()).collect();
    let x_lost = row.find("lost events 3").unwrap() + "lost events ".len();
    assert_eq!(buf[(x_lost as u16, y)].fg, Color::Red, "{row}");
    let x_full = row.find("iface table full 0").unwrap() + "iface table full ".len();
    assert_ne!(buf[(x_full as u16, y)].fg, Color::Red);
}

#[test]
fn header_shows_the_packet_filter() {
    let s = text(&pair_app());
    assert!(!s.contains("filter udp"), "{s}");
    let mut m = meta();
    m.filter = Some("udp dst port 9000".into());
    let mut app = App::new(m, Duration::from_secs(1));
    app.update(snap(10, pair(10)));
    app.update(snap(11, pair(11)));
    let s = text(&app);
    assert!(
        line_with(&s, "sirqtop").contains("filter udp dst port 9000"),
        "{s}"
    );
}

#[test]
fn bpf_cost_says_stats_off_without_bpf_stats() {
    let s = text(&pair_app());
    assert!(s.contains("stats off (--bpf-stats)"), "{s}");
}

#[test]
fn unavailable_metrics_show_a_dash_not_zero() {
    let mut probes = ProbeReport::default();
    probes
        .attached
        .insert(Hook::VethXmit, (Backend::Kprobe, "kprobe".into()));
    let mut app = App::new(meta_with(probes, false), Duration::from_secs(1));
    app.update(snap(1, pair(1)));
    app.update(snap(2, pair(2)));
    let s = text(&app);
    let a = line_with(&s, " veth-a ");
    assert!(a.contains("20.0k"), "{a}");
    // rx pps, raises, softirq %, per packet, hop p50/p99, backlog p99: 7 dashes
    assert_eq!(a.matches('—').count(), 7, "{a}");
    assert!(!a.contains("0%"), "{a}");
}

#[test]
fn sorting_cycles_columns_and_reverses() {
    let mut app = pair_app();
    // SoftirqPct -> NsPerPkt -> HopP50 ... cycle to Name (IFACE) via Netns.
    while app.sort != sirqtop::tui::app::SortColumn::Name {
        app.apply(Action::NextSort);
    }
    let s = text(&app);
    assert!(s.contains("sort IFACE ▲"), "{s}");
    let o = row_order(&s, &["veth-a", "veth-b"]);
    assert!(o[0] < o[1], "name ascending: {s}");
    app.apply(Action::ReverseSort);
    let s = text(&app);
    assert!(s.contains("sort IFACE ▼"), "{s}");
    let o = row_order(&s, &["veth-a", "veth-b"]);
    assert!(o[0] > o[1], "name descending: {s}");
    // tx pps: veth-a (20k) first
    while app.sort != sirqtop::tui::app::SortColumn::TxPps {
        app.apply(Action::NextSort);
    }
    assert!(
        !app.sort_reversed,
        "a new column starts in its natural order"
    );
    let s = text(&app);
    assert!(s.contains("sort TX PPS ▼"));
    let o = row_order(&s, &["veth-a", "veth-b"]);
    assert!(o[0] < o[1], "{s}");
}

#[test]
fn text_filter_matches_name_netns_kind_and_peer() {
    let mut app = pair_app();
    app.apply(Action::StartFilter);
    for c in "VETH-B".chars() {
        app.apply(Action::FilterChar(c));
    }
    // Both match: veth-b by name, veth-a by its peer veth-b@ns-b.
    assert_eq!(app.visible_rows().len(), 2);
    app.apply(Action::FilterCancel);
    // Only veth-b's peer is "veth-a@ns-a".
    app.filter = "@ns-a".into();
    let s = text(&app);
    assert!(s.contains("interfaces 1/2"), "{s}");
    assert!(s.contains("ns-b  veth-b"), "{s}");
    app.filter = "ns-b".into();
    assert_eq!(
        app.visible_rows().len(),
        2,
        "netns label of veth-b and peer label of veth-a"
    );
    app.filter = "VETH".into();
    assert_eq!(app.visible_rows().len(), 2, "kind");
    app.filter = "dummy".into();
    assert_eq!(app.visible_rows().len(), 0);
    app.filter = "nothing-like-this".into();
    let s = text(&app);
    assert!(s.contains("no interface matches the filters"), "{s}");
    assert!(s.contains("/nothing-like-this"));
    // Typing in the prompt shows it in the footer.
    app.filter.clear();
    app.apply(Action::StartFilter);
    app.apply(Action::FilterChar('x'));
    let s = text(&app);
    assert!(s.lines().last().is_some_and(|l| l.contains("/x")), "{s}");
    app.apply(Action::FilterBackspace);
    app.apply(Action::FilterConfirm);
    assert!(!app.filter_editing);
    assert_eq!(app.visible_rows().len(), 2);
}

#[test]
fn netns_key_cycles_namespaces_then_all() {
    let mut app = pair_app();
    app.apply(Action::NextNetns);
    let s = text(&app);
    assert_eq!(app.netns_view, Some(NS_A));
    assert!(s.contains("interfaces 1/2"), "{s}");
    assert!(s.contains(" veth-a "));
    assert!(!s.contains(" veth-b "), "{s}");
    app.apply(Action::NextNetns);
    assert_eq!(app.netns_view, Some(NS_B));
    let s = text(&app);
    assert!(s.contains(" veth-b ") && !s.contains(" veth-a "), "{s}");
    app.apply(Action::NextNetns);
    assert_eq!(app.netns_view, None);
    assert!(text(&app).contains("interfaces 2/2"));
}

#[test]
fn gone_and_vanished_rows_stay_greyed_then_expire() {
    let mut app = pair_app();
    // veth-b is reported gone; veth-a disappears from the snapshot entirely.
    let mut ifs = pair(12);
    ifs[1].gone = true;
    ifs.remove(0);
    app.update(snap(12, ifs.clone()));
    let s = text(&app);
    assert!(s.contains("veth-a (gone)"), "{s}");
    assert!(s.contains("veth-b (gone)"), "{s}");
    // Greyed.
    let backend = TestBackend::new(160, 40);
    let mut term = Terminal::new(backend).unwrap();
    term.draw(|f| sirqtop::tui::ui::render(&app, f)).unwrap();
    let buf = term.backend().buffer();
    let y = s.lines().position(|l| l.contains("veth-a (gone)")).unwrap() as u16;
    let x = s.lines().nth(y as usize).unwrap().find("ns-a").unwrap();
    let x = s.lines().nth(y as usize).unwrap()[..x].chars().count() as u16;
    assert_eq!(buf[(x, y)].fg, Color::DarkGray);
    // Still there 29 s later, gone after 30.
    let t = 12 + GONE_KEEP_NS / SEC;
    app.update(snap(t - 1, ifs.clone()));
    assert!(text(&app).contains("veth-a (gone)"));
    app.update(snap(t, ifs.clone()));
    let s = text(&app);
    assert!(!s.contains("veth-a"), "{s}");
    assert!(
        !s.contains("veth-b"),
        "expired even though still reported gone: {s}"
    );
    app.update(snap(t + 1, ifs));
    assert!(
        !text(&app).contains("veth-b"),
        "not re-added while reported gone"
    );
}

#[test]
fn help_lists_the_keys() {
    let mut app = pair_app();
    app.apply(Action::ToggleHelp);
    let s = text(&app);
    for k in [
        "q, Ctrl-C",
        "s / S",
        "Enter",
        "+ / -",
        "p ",
        "/ ",
        "n ",
        "c ",
    ] {
        assert!(s.contains(k), "{k} missing in help:\n{s}");
    }
    assert!(s.contains("Probe fallbacks"));
    app.apply(Action::ToggleHelp);
    assert!(!text(&app).contains("Probe fallbacks"));
}

#[test]
fn small_terminals_say_so_and_resizing_works() {
    let app = pair_app();
    let s = render_to_text(&app, 80, 10);
    assert!(s.contains("terminal too small (need 110x14"), "{s}");
    assert!(!s.contains("veth-a"));
    // Degenerate sizes do not panic.
    for (w, h) in [(1, 1), (0, 0), (3, 40), (200, 2)] {
        let _ = render_to_text(&app, w, h);
    }
    // The same terminal grown live shows the table.
    let mut term = Terminal::new(TestBackend::new(80, 10)).unwrap();
    term.draw(|f| sirqtop::tui::ui::render(&app, f)).unwrap();
    term.backend_mut().resize(120, 20);
    term.autoresize().unwrap();
    term.draw(|f| sirqtop::tui::ui::render(&app, f)).unwrap();
    let s = sirqtop::tui::buffer_text(term.backend().buffer());
    assert!(s.contains("veth-a") && !s.contains("too small"), "{s}");
    // The detail view needs more rows than the main view.
    let mut app = app;
    app.apply(Action::OpenDetail);
    assert!(render_to_text(&app, 120, 20).contains("need 110x30"));
}

#[test]
fn zero_traffic_and_empty_states() {
    let mut app = App::new(meta(), Duration::from_secs(2));
    assert!(text(&app).contains("waiting for the first sample (every 2s)"));
    app.update(snap(1, vec![]));
    assert!(text(&app).contains("no interface activity yet"));
    let idle = iface(NS_A, "ns-a", 3, "eth0", None);
    app.update(snap(2, vec![idle.clone()]));
    app.update(snap(3, vec![idle]));
    let s = text(&app);
    let row = line_with(&s, " eth0 ");
    assert!(row.contains(" 0%"), "{row}");
    assert_eq!(
        row.matches('·').count(),
        4,
        "no samples -> dots, not zeros: {row}"
    );
    assert!(!row.contains('—'));
    let mut quiet = App::new(meta(), Duration::from_secs(1));
    let mut s1 = snap(1, vec![]);
    s1.cpus = vec![CpuStats::new(0)];
    let mut s2 = s1.clone();
    s2.elapsed_ns = 2 * SEC;
    quiet.update(s1);
    quiet.update(s2);
    quiet.apply(Action::ToggleCpus);
    let s = text(&quiet);
    assert!(
        s.contains("no softirq activity in the last interval"),
        "{s}"
    );
    assert!(line_with(&s, "cpu0 ").contains("0%"));
}

#[test]
fn many_interfaces_scroll_with_the_selection() {
    let mut app = App::new(meta(), Duration::from_secs(1));
    let many = |k: u64| -> Vec<Interface> {
        (0..500u32)
            .map(|i| {
                let mut x = iface(
                    NS_A + i % 7,
                    &format!("pod-{:03}", i % 7),
                    i + 2,
                    &format!("veth{i:04}"),
                    None,
                );
                x.counters.tx_packets = k * (i as u64 + 1) * 10;
                x
            })
            .collect()
    };
    app.update(snap(1, many(1)));
    app.update(snap(2, many(2)));
    app.apply(Action::NextSort); // SIRQ/PKT
    while app.sort != sirqtop::tui::app::SortColumn::TxPps {
        app.apply(Action::NextSort);
    }
    let s = render_to_text(&app, 160, 30);
    assert!(s.contains("interfaces 500/500"));
    assert!(s.contains("veth0499"), "largest tx first: {s}");
    assert!(!s.contains("veth0000"));
    app.apply(Action::End);
    let s = render_to_text(&app, 160, 30);
    assert!(
        s.contains("▶") && line_with(&s, "▶").contains("veth0000"),
        "selection visible at the end: {s}"
    );
    app.apply(Action::Home);
    assert!(line_with(&render_to_text(&app, 160, 30), "▶").contains("veth0499"));
    app.page = 10;
    app.apply(Action::PageDown);
    assert!(line_with(&render_to_text(&app, 160, 30), "▶").contains("veth0489"));
}

#[test]
fn pause_freezes_the_display_but_keeps_collecting() {
    let mut app = pair_app();
    app.apply(Action::TogglePause);
    let before = line_with(&text(&app), " veth-a ").to_string();
    // Ten times more traffic in the next second.
    let mut ifs = pair(12);
    ifs[0].counters.tx_packets += 200_000;
    app.update(snap(12, ifs));
    let s = text(&app);
    assert!(s.contains("PAUSED"), "{s}");
    assert_eq!(line_with(&s, " veth-a "), before);
    assert_eq!(app.live().updates, 3, "still collecting");
    app.apply(Action::TogglePause);
    let s = text(&app);
    assert!(!s.contains("PAUSED"));
    assert!(line_with(&s, " veth-a ").contains("220k"), "{s}");
}

#[test]
fn refresh_interval_keys_step_and_show() {
    let mut app = pair_app();
    assert_eq!(
        app.apply(Action::LongerInterval),
        sirqtop::tui::app::Effect::SetInterval(Duration::from_secs(2))
    );
    assert!(text(&app).contains("refresh 2s"));
    app.apply(Action::ShorterInterval);
    app.apply(Action::ShorterInterval);
    app.apply(Action::ShorterInterval);
    assert!(text(&app).contains("refresh 250ms"));
}

#[test]
fn demo_capture_renders() {
    let app = demo::app();
    let s = render_to_text(&app, 160, 24);
    assert!(s.contains("web-7f9c/c3a1f0e2"), "{s}");
    assert!(s.contains("veth77aa010 (gone)"));
    assert!(s.contains("interfaces 8/8"));
    assert!(s.contains("in-flight evicted 37"));
    println!("{s}");
}
