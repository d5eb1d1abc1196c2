//! Paths end to end: a client sends a known number of datagrams through a node the test
//! builds (a bridge, or NodePort DNAT and a /32 route) to a pod, and sirqtop reports the
//! path from the client's veth to the pod's with its hop count, packets, latency and
//! per-hop costs that add up to the interfaces' own. Root only; the tests take turns.

use std::time::Duration;

use sirqtop::collector::{Collector, Config};
use sirqtop::lab::{send_udp, udp_sink, DataPath, PathLab};
use sirqtop::model::{Interface, Path, Snapshot};

mod common;

const SLACK: u64 = 2;

fn capture(lab: &PathLab, n: usize) -> (sirqtop::model::CaptureMeta, Snapshot) {
    let _sink = udp_sink(&lab.server_ns, &lab.server_addr, lab.server_port).unwrap();
    let mut c = Collector::start(&Config::default()).expect("attach");
    let (ns, addr, port) = (
        lab.client_ns.clone(),
        lab.target_addr.clone(),
        lab.target_port,
    );
    let t = std::thread::spawn(move || send_udp(&ns, &addr, port, n, 64).unwrap());
    while !t.is_finished() {
        c.poll().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    t.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.poll().unwrap();
    let s = c.snapshot().unwrap();
    // Every interface and path slot sits where user space's copy of the BPF hashes (used
    // to free them) says it does.
    let check = c.slot_check();
    assert!(check.checked >= 4, "slots compared: {check:?}");
    assert_eq!(
        check.misplaced, 0,
        "user space hashes keys to other slots: {check:?}"
    );
    (c.meta().clone(), s)
}

fn by_name<'a>(s: &'a Snapshot, ns: &str, name: &str) -> &'a Interface {
    s.interfaces
        .iter()
        .find(|i| i.netns_name.as_deref() == Some(ns) && i.name == name)
        .unwrap_or_else(|| panic!("{ns}/{name} not reported"))
}

/// The path from the client's veth to the server's interface.
fn path_to<'a>(paths: &'a [Path], from: &Interface, to: &Interface) -> &'a Path {
    let mut found = paths
        .iter()
        .filter(|p| p.from == from.key && p.to == to.key);
    let p = found
        .next()
        .unwrap_or_else(|| panic!("no path {} -> {}: {paths:#?}", from.name, to.name));
    assert!(found.next().is_none(), "two hop counts for one path");
    p
}

fn check_costs_add_up(s: &Snapshot, p: &Path) {
    // Every hop's numbers are its receiver's own per packet, and the path's are their sum.
    for h in &p.hop_costs {
        let i = s.interface(h.receiver).expect("hop receiver reported");
        let per = |v: u64| v as f64 / i.counters.rx_packets as f64;
        assert_eq!(h.softirq_ns_per_packet, Some(per(i.counters.softirq_ns)));
        assert_eq!(
            h.net_rx_raises_per_packet,
            Some(per(i.counters.net_rx_raises))
        );
        assert_eq!(
            h.backlog_enqueues_per_packet,
            Some(per(i.counters.rx_enqueued))
        );
    }
    let sum: f64 = p
        .hop_costs
        .iter()
        .map(|h| h.softirq_ns_per_packet.unwrap())
        .sum();
    assert_eq!(p.softirq_ns_per_packet(), Some(sum));
    assert!(sum > 0.0);
}

fn run(kind: DataPath, tag: &str, net: u8) {
    let lab = PathLab::new(kind, tag, net).expect("lab");
    const N: u64 = 1000;
    let (meta, s) = capture(&lab, N as usize);
    let client = by_name(&s, &lab.client_ns, &lab.client_if);
    let server = by_name(&s, &lab.server_ns, &lab.server_if);
    let paths = s.paths(&meta.availability);
    let p = path_to(&paths, client, server);
    assert_eq!(p.hops, 2, "{p:#?}");
    common::within_slack(p.packets, N, SLACK, "path packets");
    // Every packet the pod got was on some path: the client's, or a control packet the
    // node sent itself (ARP: a path from the node's port).
    let to_server: u64 = paths
        .iter()
        .filter(|q| q.to == server.key)
        .map(|q| q.packets)
        .sum();
    assert_eq!(
        server.counters.rx_packets, to_server,
        "every packet the pod got is on a path: {paths:#?}"
    );
    assert!(
        p.latency.count * 100 >= p.packets * 95,
        "latency samples {} of {}",
        p.latency.count,
        p.packets
    );
    assert!(p.latency.quantile(0.5).unwrap() > 0);
    // Two veth hops, each through a backlog.
    assert_eq!(p.backlog_enqueues_per_packet, 2.0);
    assert_eq!(p.via.len(), 1);
    let hop1 = s.interface(p.via[0]).unwrap();
    assert_eq!(hop1.netns_name.as_deref(), lab.node_ns.as_deref());
    assert_eq!(hop1.name, "nic0");
    // Hop 1 is a path of its own, and no packet is counted at a hop 3.
    let first = path_to(&paths, client, hop1);
    assert_eq!((first.hops, first.packets), (1, p.packets));
    assert!(!paths.iter().any(|q| q.from == client.key && q.hops > 2));
    assert_eq!(p.origin_softirq, 0, "sent by a process, not from a softirq");
    check_costs_add_up(&s, p);
    // The latency of the whole path exceeds the first hop's.
    assert!(p.latency.sum > first.latency.sum);

    // The JSON capture carries it with names.
    let cap = sirqtop::output::json::Capture::new(&meta, &s);
    let j = cap
        .paths
        .iter()
        .find(|j| {
            j.from.name.as_deref() == Some(lab.client_if.as_str())
                && j.to.name.as_deref() == Some(lab.server_if.as_str())
        })
        .expect("the path in JSON");
    assert_eq!((j.hops, j.packets), (2, p.packets));
    assert_eq!(j.via[0].name.as_deref(), Some("nic0"));
    assert_eq!(j.from.netns_label.as_deref(), Some(lab.client_ns.as_str()));
    assert_eq!(j.hop_costs.len(), 2);
    assert_eq!(j.latency.count, p.latency.count);
    assert_eq!(j.softirq_ns_per_packet, p.softirq_ns_per_packet());
}

#[test]
fn bridged_path_has_two_hops_and_every_packet() {
    require_root!();
    let _g = common::serial();
    run(DataPath::RoutedBridge, "pb", 204);
}

#[test]
fn nodeport_dnat_path_has_two_hops_and_every_packet() {
    require_root!();
    let _g = common::serial();
    run(DataPath::Container, "pd", 205);
}

#[test]
fn one_veth_is_one_hop_and_lite_keeps_no_paths() {
    require_root!();
    let _g = common::serial();
    let lab = PathLab::new(DataPath::Vm, "pv", 206).expect("lab");
    let (meta, s) = capture(&lab, 500);
    let client = by_name(&s, &lab.client_ns, &lab.client_if);
    let server = by_name(&s, &lab.server_ns, &lab.server_if);
    let paths = s.paths(&meta.availability);
    let p = path_to(&paths, client, server);
    assert_eq!((p.hops, p.via.len()), (1, 0));
    common::within_slack(p.packets, 500, SLACK, "path packets");
    assert_eq!(p.backlog_enqueues_per_packet, 1.0);
    check_costs_add_up(&s, p);

    let _sink = udp_sink(&lab.server_ns, &lab.server_addr, 9).unwrap();
    let cfg = Config {
        lite: true,
        ..Config::default()
    };
    let mut c = Collector::start(&cfg).unwrap();
    send_udp(&lab.client_ns, &lab.server_addr, 9, 100, 64).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let s = c.snapshot().unwrap();
    assert!(s.path_hops.is_empty(), "--lite keeps no paths");
}

#[test]
fn the_article_reproduced_short() {
    require_root!();
    let _g = common::serial();
    let load = sirqtop::lab::article::Load {
        secs: 1.0,
        ..Default::default()
    };
    let report = sirqtop::lab::article::run(&load, |_| {}).expect("the article's labs");
    let v: serde_json::Value = serde_json::to_value(&report).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["path"] == name)
            .unwrap_or_else(|| panic!("no {name} row: {v:#}"))
    };
    let per = |r: &serde_json::Value, k: &str| r["per_request"][k].as_f64().unwrap();
    let vm = row("vm");
    assert!(vm["requests"].as_u64().unwrap() > 100, "{vm:#}");
    assert!(vm["rt_change_pct"].is_null());
    for name in ["container", "bridge"] {
        let r = row(name);
        assert!(r["requests"].as_u64().unwrap() > 100, "{r:#}");
        // Two veth hops each way instead of one: about twice the enqueues per request,
        // and more softirq time.
        assert!(
            per(r, "backlog_enqueues") > 1.5 * per(vm, "backlog_enqueues"),
            "{name} enqueues: {r:#} vs {vm:#}"
        );
        assert!(
            per(r, "softirq_ns") > per(vm, "softirq_ns"),
            "{name} softirq: {r:#} vs {vm:#}"
        );
        assert!(r["rt_change_pct"].is_number() && r["qps_change_pct"].is_number());
        // Its request path: client -> node -> pod, two hops.
        let paths = r["paths"].as_array().unwrap();
        assert!(
            paths.iter().any(|p| p["hops"].as_u64() >= Some(2)
                && p["via"].as_array().is_some_and(|v| !v.is_empty())),
            "{name} paths: {paths:#?}"
        );
    }
    // The VM's: one hop each way.
    let vm_paths = vm["paths"].as_array().unwrap();
    assert!(!vm_paths.is_empty());
    assert!(vm_paths.iter().all(|p| p["hops"] == 1), "{vm_paths:#?}");
    // macvlan measured; ipvlan measured or skipped with a reason.
    assert!(per(row("macvlan"), "backlog_enqueues") < per(row("container"), "backlog_enqueues"));
    let skipped = v["skipped"].as_array().unwrap();
    // Every remedy ran or was skipped with a reason.
    let names = sirqtop::lab::article::REMEDIES.map(|r| r.0);
    for name in std::iter::once("ipvlan").chain(names) {
        let ran = rows.iter().any(|r| r["path"] == name);
        let why = skipped
            .iter()
            .any(|s| s["path"] == name && s["reason"].is_string());
        assert!(ran != why, "{name}: ran {ran}, skipped {why}: {v:#}");
    }
    // Cilium-style host routing, where tc and clang are: the packets skip the second veth
    // hop's backlog, about half the routed veth's enqueues per request.
    if rows.iter().any(|r| r["path"] == "ebpf") {
        let (ebpf, routed) = (row("ebpf"), row("routed"));
        assert!(
            per(ebpf, "backlog_enqueues") < 0.75 * per(routed, "backlog_enqueues"),
            "ebpf {ebpf:#} vs routed {routed:#}"
        );
    }
}
