//! Fixtures of the rendering tests: hand-built snapshots of a veth pair, CPUs and the
//! capture, an app fed with them, and helpers to read the rendered text.
#![allow(dead_code, unused_imports)]

pub use std::time::{Duration, SystemTime};

pub use ratatui::backend::TestBackend;
pub use ratatui::style::Color;
pub use ratatui::Terminal;
pub use sirqtop::model::{
    Availability, Backend, CaptureMeta, CpuStats, Hook, IfaceKey, Interface, Loss, PeerRef,
    ProbeReport, ProgramCost, Snapshot, NET_RX,
};
pub use sirqtop::tui::app::{Action, App, View, GONE_KEEP_NS};
pub use sirqtop::tui::{demo, render_to_text};

pub const NS_A: u32 = 4026532100;
pub const NS_B: u32 = 4026532200;
pub const SEC: u64 = 1_000_000_000;

pub fn all_hooks() -> ProbeReport {
    let mut p = ProbeReport::default();
    for h in Hook::ALL {
        p.attached.insert(h, (Backend::Tracepoint, "tp_btf".into()));
    }
    p
}

pub fn meta_with(probes: ProbeReport, bpf_stats: bool) -> CaptureMeta {
    CaptureMeta {
        kernel_release: "6.1.0-test".into(),
        availability: Availability::from_report(&probes),
        probes,
        started_at: SystemTime::UNIX_EPOCH,
        netns_filter: vec![],
        filter: None,
        ncpus: 2,
        bpf_stats,
    }
}

pub fn meta() -> CaptureMeta {
    meta_with(all_hooks(), false)
}

pub fn iface(
    netns: u32,
    label: &str,
    ifindex: u32,
    name: &str,
    peer: Option<(u32, &str, u32, &str)>,
) -> Interface {
    let mut i = Interface::new(IfaceKey::new(netns, ifindex));
    i.name = name.into();
    i.kind = Some("veth".into());
    i.netns_label = label.into();
    i.peer = peer.map(|(n, l, ix, nm)| PeerRef {
        cookie: 0,
        netns: n,
        ifindex: ix,
        name: Some(nm.into()),
        netns_label: Some(l.into()),
    });
    i
}

/// veth-a in ns-a and veth-b in ns-b, a veth pair; `k` scales the cumulative traffic.
pub fn pair(k: u64) -> Vec<Interface> {
    let mut a = iface(NS_A, "ns-a", 5, "veth-a", Some((NS_B, "ns-b", 7, "veth-b")));
    a.counters.tx_packets = 20_000 * k;
    a.counters.rx_packets = 100 * k;
    a.counters.net_rx_raises = 10 * k;
    a.counters.softirq_ns = 1_000_000 * k;
    for _ in 0..k {
        a.veth_hop.record(3_000);
    }
    let mut b = iface(NS_B, "ns-b", 7, "veth-b", Some((NS_A, "ns-a", 5, "veth-a")));
    b.counters.rx_enqueued = 20_000 * k;
    b.counters.rx_packets = 20_000 * k;
    b.counters.net_rx_raises = 5_000 * k;
    b.counters.softirq_ns = 50_000_000 * k;
    for _ in 0..k {
        b.backlog_wait.record(40_000);
    }
    vec![a, b]
}

pub fn cpus(k: u64) -> Vec<CpuStats> {
    (0..2)
        .map(|c| {
            let mut s = CpuStats::new(c);
            let v = &mut s.vectors[NET_RX];
            v.raises = 1_000 * k * (c as u64 + 1);
            v.runs = 800 * k * (c as u64 + 1);
            v.ksoftirqd_runs = 200 * k * c as u64;
            // cpu1 is hot: 60% of one CPU in NET_RX; cpu0 5%.
            v.run_ns = if c == 1 {
                600_000_000 * k
            } else {
                50_000_000 * k
            };
            for _ in 0..k {
                v.run.record(20_000);
                v.raise_to_run.record(5_000);
            }
            s.vectors[1].raises = 100 * k;
            s.vectors[1].runs = 100 * k;
            s
        })
        .collect()
}

pub fn snap(secs: u64, interfaces: Vec<Interface>) -> Snapshot {
    Snapshot {
        elapsed_ns: secs * SEC,
        interfaces,
        cpus: cpus(secs),
        ..Default::default()
    }
}

/// An app that saw the pair for 10 s then 11 s: rates over the last second = one k step.
pub fn pair_app() -> App {
    let mut app = App::new(meta(), Duration::from_secs(1));
    app.update(snap(10, pair(10)));
    app.update(snap(11, pair(11)));
    app
}

pub fn text(app: &App) -> String {
    render_to_text(app, 160, 40)
}

pub fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

pub fn row_order(screen: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            screen
                .lines()
                .position(|l| l.contains(&format!(" {n} ")))
                .unwrap_or_else(|| panic!("{n} not shown in\n{screen}"))
        })
        .collect()
}
