//! --filter with real traffic: only the matching packets are counted, everywhere (both
//! veth ends, enqueues, histograms, paths), and bad expressions attach nothing. Root only;
//! the tests take turns. Namespaces are the tests' own (10.237.x, 10.238.0.0/16).

mod common;

use std::time::Duration;

use common::{iface, send_udp, udp_sink};
use sirqtop::collector::{Collector, Config};
use sirqtop::filter::Filter;
use sirqtop::model::{CaptureMeta, Snapshot};

/// Control packets the kernel may add on its own that a filter lets through.
const SLACK: u64 = 4;

fn filtered(expr: &str, netns: Vec<u32>) -> Config {
    Config {
        netns_filter: netns,
        filter: Some(Filter::compile(expr).expect("compiles")),
        ..Config::default()
    }
}

/// Attaches with `cfg`, runs `traffic`, lets its softirqs finish, returns what was counted.
fn capture_while(cfg: &Config, traffic: impl FnOnce()) -> (CaptureMeta, Snapshot) {
    let mut c = Collector::start(cfg).expect("attach");
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    c.poll().expect("poll");
    let s = c.snapshot().expect("snapshot");
    (c.meta().clone(), s)
}

#[test]
fn udp_dst_port_counts_one_of_two_interleaved_flows() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("fu", "10.237.1");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let _s0 = udp_sink(&lab.ns_b, &lab.addr_b, 9000);
    let _s1 = udp_sink(&lab.ns_b, &lab.addr_b, 9001);
    const N: u64 = 700;
    const M: u64 = 1100;
    let cfg = filtered("udp dst port 9000", vec![ns_a, ns_b]);
    let (meta, s) = capture_while(&cfg, || {
        // Interleaved: batches of each flow in turn.
        for _ in 0..10 {
            send_udp(&lab.ns_a, &lab.addr_b, 9000, (N / 10) as usize, 64);
            send_udp(&lab.ns_a, &lab.addr_b, 9001, (M / 10) as usize, 64);
        }
    });
    assert_eq!(meta.filter.as_deref(), Some("udp dst port 9000"));
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    assert_eq!(a.counters.tx_packets, N, "A.tx_packets");
    assert_eq!(a.counters.tx_bytes, N * 106, "A.tx_bytes");
    assert_eq!(b.counters.rx_enqueued, N, "B.rx_enqueued");
    assert_eq!(b.counters.rx_packets, N, "B.rx_packets");
    assert_eq!(a.veth_hop.count, N, "A.veth_hop.count");
    assert_eq!(b.backlog_wait.count, N, "B.backlog_wait.count");
    assert!(b.counters.net_rx_raises >= 1 && b.counters.net_rx_raises <= N);
    // Nothing else: no ARP, no reverse traffic, not the 9001 flow.
    assert_eq!(a.counters.rx_packets, 0, "A.rx_packets");
    assert_eq!(b.counters.tx_packets, 0, "B.tx_packets");
    let paths = s.paths(&meta.availability);
    let p = paths
        .iter()
        .find(|p| p.from == a.key && p.to == b.key)
        .unwrap_or_else(|| panic!("no path A -> B: {paths:#?}"));
    assert_eq!((p.hops, p.packets), (1, N));
    assert_eq!(p.latency.count, N);
    assert_eq!(paths.iter().map(|p| p.packets).sum::<u64>(), N);

    // The same traffic unfiltered counts both flows: the filter made the difference.
    let (_, s) = capture_while(
        &Config {
            filter: None,
            ..cfg
        },
        || {
            send_udp(&lab.ns_a, &lab.addr_b, 9000, N as usize, 64);
            send_udp(&lab.ns_a, &lab.addr_b, 9001, M as usize, 64);
        },
    );
    common::within_slack(
        iface(&s, ns_a, ix_a).counters.tx_packets,
        N + M,
        SLACK,
        "A.tx unfiltered",
    );
}

/// The kernel's own TCP segment count in `ns`: segments sent (OutSegs) plus retransmitted
/// ones (RetransSegs, which OutSegs leaves out), from /proc/net/snmp inside the namespace.
fn tcp_segments_sent(ns: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .expect("ip netns exec cat /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let field = |want: &str| {
        let i = names.split_whitespace().position(|n| n == want).unwrap();
        values
            .split_whitespace()
            .nth(i)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    field("OutSegs") + field("RetransSegs")
}

/// One skb per TCP segment: without segmentation offload on the pair, the kernel's
/// segment counts are skb counts (a GSO skb counts as several segments there).
fn no_offload(ns: &str, dev: &str) {
    let ok = std::process::Command::new("ip")
        .args([
            "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off",
        ])
        .status()
        .expect("ethtool")
        .success();
    assert!(ok, "ethtool -K {dev} tso off gso off");
}

#[test]
fn tcp_counts_the_kernels_own_segments_under_a_udp_flood() {
    require_root!();
    require_tool!("ethtool", &["--version"], "ethtool");
    let _g = common::serial();
    let lab = common::lab("ft", "10.237.2");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    no_offload(&lab.ns_a, &lab.if_a);
    no_offload(&lab.ns_b, &lab.if_b);
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 9000);
    let cfg = filtered("tcp", vec![ns_a, ns_b]);
    let before = (tcp_segments_sent(&lab.ns_a), tcp_segments_sent(&lab.ns_b));
    let (_, s) = capture_while(&cfg, || {
        let (ns, addr) = (lab.ns_a.clone(), lab.addr_b.clone());
        let flood = std::thread::spawn(move || send_udp(&ns, &addr, 9000, 20_000, 64));
        let got = common::tcp_stream(&lab.ns_b, &lab.addr_b, &lab.ns_a, 5201, 4 << 20);
        assert_eq!(got, 4 << 20);
        flood.join().unwrap();
    });
    let sent_a = tcp_segments_sent(&lab.ns_a) - before.0;
    let sent_b = tcp_segments_sent(&lab.ns_b) - before.1;
    assert!(sent_a > 2000, "the transfer made {sent_a} segments");
    let a = iface(&s, ns_a, ix_a);
    let b = iface(&s, ns_b, ix_b);
    assert_eq!(
        a.counters.tx_packets, sent_a,
        "A.tx_packets = A's TCP segments"
    );
    assert_eq!(
        b.counters.tx_packets, sent_b,
        "B.tx_packets = B's TCP segments"
    );
    assert_eq!(b.counters.rx_packets, sent_a, "B.rx_packets");
    assert_eq!(a.counters.rx_packets, sent_b, "A.rx_packets");
    assert_eq!(a.veth_hop.count, sent_a, "A.veth_hop.count");
}

#[test]
fn host_not_port_and_ip_select_what_they_say() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("fh", "10.237.3");
    let ((ns_a, ix_a), (ns_b, ix_b)) = common::keys(&lab);
    let _s0 = udp_sink(&lab.ns_b, &lab.addr_b, 9000);
    let _s1 = udp_sink(&lab.ns_b, &lab.addr_b, 22);
    let _s2 = udp_sink(&lab.ns_a, &lab.addr_a, 9000);
    const N: u64 = 300;
    const M: u64 = 200;
    // A -> B to 9000 (N) and to 22 (M); B -> A to 9000 (M).
    let traffic = || {
        send_udp(&lab.ns_a, &lab.addr_b, 9000, N as usize, 64);
        send_udp(&lab.ns_a, &lab.addr_b, 22, M as usize, 64);
        send_udp(&lab.ns_b, &lab.addr_a, 9000, M as usize, 64);
    };
    let tx = |expr: &str, traffic: &dyn Fn()| {
        let (_, s) = capture_while(&filtered(expr, vec![ns_a, ns_b]), traffic);
        (
            iface(&s, ns_a, ix_a).counters.tx_packets,
            iface(&s, ns_b, ix_b).counters.tx_packets,
        )
    };
    assert_eq!(
        tx(&format!("src host {}", lab.addr_a), &traffic),
        (N + M, 0)
    );
    assert_eq!(tx(&format!("host {}", lab.addr_b), &traffic), (N + M, M));
    assert_eq!(tx("not port 22", &traffic), (N, M));
    assert_eq!(tx("net 10.237.3.0/24 and port 22", &traffic), (M, 0));

    // ARP: datagrams to an address with no neighbour make the kernel ask for it. `arp`
    // counts those requests; `ip` counts the datagrams that left, never an ARP packet.
    let ask = |to: &'static str| {
        let lab = &lab;
        move || {
            send_udp(&lab.ns_a, &lab.addr_b, 9000, N as usize, 64);
            send_udp(&lab.ns_a, to, 9000, 3, 64);
            // The kernel's probes go out over a few hundred ms.
            std::thread::sleep(Duration::from_millis(1500));
        }
    };
    let (arp_a, _) = tx("arp", &ask("10.237.3.77"));
    assert!(arp_a >= 1, "no ARP request was counted: the test made none");
    assert_eq!(
        tx("ip", &ask("10.237.3.78")),
        (N, 0),
        "ip: the datagrams only"
    );
}

#[test]
fn a_routed_two_hop_path_keeps_its_verdict_through_dnat() {
    require_root!();
    let _g = common::serial();
    let lab =
        sirqtop::lab::PathLab::new(sirqtop::lab::DataPath::Container, "fr", 238).expect("lab");
    let _sink = udp_sink(&lab.server_ns, &lab.server_addr, lab.server_port);
    const N: u64 = 400;
    // Matches the client's datagrams to the NodePort only: after DNAT their port is the
    // pod's, so a second evaluation would reject them on the second hop.
    assert_ne!(lab.target_port, lab.server_port);
    let cfg = filtered(&format!("udp dst port {}", lab.target_port), vec![]);
    let (meta, s) = capture_while(&cfg, || {
        // Noise on the same hop: datagrams to another port of the node.
        send_udp(
            &lab.client_ns,
            &lab.target_addr,
            lab.target_port + 1,
            300,
            64,
        );
        send_udp(
            &lab.client_ns,
            &lab.target_addr,
            lab.target_port,
            N as usize,
            64,
        );
    });
    let by_name = |ns: &str, name: &str| {
        s.interfaces
            .iter()
            .find(|i| i.netns_name.as_deref() == Some(ns) && i.name == name)
            .unwrap_or_else(|| panic!("{ns}/{name} not reported"))
    };
    let client = by_name(&lab.client_ns, &lab.client_if);
    let server = by_name(&lab.server_ns, &lab.server_if);
    let node_ns = lab.node_ns.as_deref().unwrap();
    let nic = by_name(node_ns, "nic0");
    assert_eq!(client.counters.tx_packets, N, "client tx");
    assert_eq!(nic.counters.rx_packets, N, "node nic rx");
    assert_eq!(server.counters.rx_packets, N, "pod rx after DNAT");
    let paths = s.paths(&meta.availability);
    let p = paths
        .iter()
        .find(|p| p.from == client.key && p.to == server.key)
        .unwrap_or_else(|| panic!("no path client -> pod: {paths:#?}"));
    assert_eq!((p.hops, p.packets), (2, N));
    let first = paths
        .iter()
        .find(|p| p.from == client.key && p.to == nic.key)
        .unwrap_or_else(|| panic!("no first hop: {paths:#?}"));
    assert_eq!((first.hops, first.packets), (1, N));
}

/// IDs of the BPF programs some live process holds (a program or link descriptor).
fn programs_held_by_processes() -> std::collections::BTreeSet<u32> {
    let mut ids = std::collections::BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return ids;
    };
    for p in procs.flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            let text = std::fs::read_to_string(fd.path()).unwrap_or_default();
            ids.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("prog_id:"))
                    .filter_map(|v| v.trim().parse::<u32>().ok()),
            );
        }
    }
    ids
}

/// `sirqtop --json --filter EXPR`: its exit code, stdout and stderr.
fn run_sirqtop(expr: &str) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sirqtop"))
        .args(["--json", "-d", "1s", "--filter", expr])
        .output()
        .expect("run sirqtop");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_expressions_are_one_line_and_attach_nothing() {
    require_root!();
    let _g = common::serial();
    let before = common::sirqtop_program_ids();
    for expr in ["tcp port", "frobnicate", "ether host 1.2.3.4"] {
        let (code, stdout, stderr) = run_sirqtop(expr);
        assert_eq!(code, Some(1), "{expr}: {stderr}");
        assert!(stdout.is_empty(), "{expr}: wrote {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{expr}: {stderr}");
        assert!(stderr.contains(&format!("'{expr}'")), "{stderr}");
        assert!(!stderr.contains("ready"), "{stderr}");
        // Other sirqtop processes (other tests on this kernel) may have loaded programs
        // meanwhile: every new one must be held by a live process, which ours is not.
        let new: Vec<u32> = common::sirqtop_program_ids()
            .difference(&before)
            .copied()
            .collect();
        let held = programs_held_by_processes();
        assert!(
            new.iter().all(|id| held.contains(id)),
            "{expr}: programs left loaded: {new:?}"
        );
    }
}
