//! A living node, as a real one behaves: namespaces that come and go (and whose inodes the
//! kernel reuses), packets dropped on the way, receivers polled by their own NAPI (veth
//! with native XDP). Every test sends a known number of packets over veth pairs it builds
//! and checks what sirqtop reports against it. Root only; the tests take turns.

use std::process::Command;
use std::time::Duration;

use sirqtop::collector::{Collector, Config};
use sirqtop::lab::{ip, send_udp, udp_sink, VethLab};
use sirqtop::model::{RxPath, Snapshot, NET_RX};

mod common;

use common::by_name;

/// Control packets a pair may add to what a test sends (none expected: IPv6 off, static
/// neighbours; a little room for what a busy kernel may still do).
const SLACK: u64 = 2;

fn exact(v: u64, n: u64, what: &str) {
    common::within_slack(v, n, SLACK, what);
}

/// Runs `traffic` in its own thread while polling the collector as the CLI does (every
/// 50 ms here), lets the softirqs finish, and returns the snapshot.
fn capture_polling(cfg: &Config, traffic: impl FnOnce() + Send + 'static) -> Snapshot {
    let mut c = Collector::start(cfg).expect("attach");
    let t = std::thread::spawn(traffic);
    while !t.is_finished() {
        c.poll().expect("poll");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.join().expect("traffic thread");
    std::thread::sleep(Duration::from_millis(200));
    c.poll().expect("poll");
    c.snapshot().expect("snapshot")
}

#[test]
fn namespace_churn_keeps_every_pod_apart() {
    require_root!();
    let _g = common::serial();
    const PAIRS: usize = 120;
    const WORKERS: usize = 4;
    const N: usize = 50;
    let tags: Vec<(String, String)> = (0..PAIRS)
        .map(|i| (format!("c{i}"), format!("10.{}.{}", 210 + i / 250, i % 250)))
        .collect();
    let record = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = record.clone();
    let s = capture_polling(&Config::default(), move || {
        let chunks: Vec<Vec<(String, String)>> = (0..WORKERS)
            .map(|w| tags.iter().skip(w).step_by(WORKERS).cloned().collect())
            .collect();
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for (tag, subnet) in chunk {
                        // Created, loaded, deleted: a short-lived pod.
                        let lab = VethLab::new(&tag, &subnet).expect("lab");
                        lab.warm_up().expect("neighbours");
                        let inodes = (lab.inode_a().unwrap(), lab.inode_b().unwrap());
                        let sink = udp_sink(&lab.ns_b, &lab.addr_b, 7100).expect("sink");
                        send_udp(&lab.ns_a, &lab.addr_b, 7100, N, 64).expect("send");
                        std::thread::sleep(Duration::from_millis(250));
                        drop(sink);
                        rec.lock().unwrap().push((
                            lab.ns_a.clone(),
                            lab.if_a.clone(),
                            lab.ns_b.clone(),
                            lab.if_b.clone(),
                            inodes,
                        ));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
    });
    let pairs = record.lock().unwrap().clone();
    assert_eq!(pairs.len(), PAIRS);
    // The kernel did reuse inodes: otherwise this test proves nothing.
    let mut inodes: Vec<u32> = pairs.iter().flat_map(|p| [p.4 .0, p.4 .1]).collect();
    inodes.sort_unstable();
    inodes.dedup();
    assert!(
        inodes.len() < 2 * PAIRS,
        "no inode was reused across {PAIRS} pairs"
    );
    for (ns_a, if_a, ns_b, if_b, _) in &pairs {
        let a = by_name(&s, ns_a, if_a);
        let b = by_name(&s, ns_b, if_b);
        exact(
            a.counters.tx_packets,
            N as u64,
            &format!("{ns_a}/{if_a} tx"),
        );
        exact(
            b.counters.rx_packets,
            N as u64,
            &format!("{ns_b}/{if_b} rx"),
        );
        assert!(a.gone && b.gone, "{ns_a}/{if_a} and {ns_b}/{if_b} are gone");
        let pa = a.peer.as_ref().expect("A's peer");
        assert_eq!(pa.name.as_deref(), Some(if_b.as_str()));
        assert_eq!(pa.netns_label.as_deref(), Some(ns_b.as_str()));
        assert_eq!(
            pa.cookie, b.key.cookie,
            "A's peer is this B, not a later pod"
        );
        let pb = b.peer.as_ref().expect("B's peer");
        assert_eq!(pb.name.as_deref(), Some(if_a.as_str()));
        assert_eq!(pb.cookie, a.key.cookie);
    }
    // None merged: every interface of these pairs carries exactly its own traffic.
    for i in s.interfaces.iter().filter(|i| i.name.starts_with("sqc")) {
        assert!(i.counters.tx_packets <= N as u64 + SLACK, "merged: {i:?}");
        assert!(i.counters.rx_packets <= N as u64 + SLACK, "merged: {i:?}");
        assert_ne!(i.key.cookie, 0);
    }
}

/// A pair that lives and dies between two polls still has its peers: the kernel side
/// reads each veth's peer from the device itself at first sight, so nothing depends on
/// user space finding the namespaces before they go.
#[test]
fn a_pair_gone_before_any_poll_keeps_its_peers() {
    require_root!();
    let _g = common::serial();
    const N: usize = 30;
    let mut c = Collector::start(&Config::default()).expect("attach");
    let (ns_a, if_a, ns_b, if_b, ia, ib) = {
        let lab = VethLab::new("kp", "10.209.77").expect("lab");
        lab.warm_up().expect("neighbours");
        let sink = udp_sink(&lab.ns_b, &lab.addr_b, 7101).expect("sink");
        send_udp(&lab.ns_a, &lab.addr_b, 7101, N, 64).expect("send");
        std::thread::sleep(Duration::from_millis(50));
        drop(sink);
        let keys = (lab.ifindex_a().unwrap(), lab.ifindex_b().unwrap());
        (
            lab.ns_a.clone(),
            lab.if_a.clone(),
            lab.ns_b.clone(),
            lab.if_b.clone(),
            keys.0,
            keys.1,
        )
        // The lab (both namespaces, the pair) is deleted here, before any poll.
    };
    let s = c.snapshot().expect("snapshot");
    let find = |name: &str, ifindex: u32| {
        s.interfaces
            .iter()
            .find(|i| i.name == name && i.key.ifindex == ifindex)
            .unwrap_or_else(|| panic!("{name} not reported"))
    };
    let (a, b) = (find(&if_a, ia), find(&if_b, ib));
    assert!(a.gone && b.gone, "{ns_a}/{if_a}, {ns_b}/{if_b} gone");
    exact(a.counters.tx_packets, N as u64, "A tx");
    let pa = a.peer.as_ref().expect("A's peer, from the kernel");
    assert_eq!((pa.ifindex, pa.cookie), (ib, b.key.cookie));
    assert_eq!(pa.name.as_deref(), Some(if_b.as_str()));
    let pb = b.peer.as_ref().expect("B's peer, from the kernel");
    assert_eq!((pb.ifindex, pb.cookie), (ia, a.key.cookie));
    assert_eq!(pb.name.as_deref(), Some(if_a.as_str()));
}

/// TX dropped of `dev` in `ns`, as the kernel counts it.
fn kernel_tx_dropped(ns: &str, dev: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", dev])
        .output()
        .expect("ip -s link");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
    v[0]["stats64"]["tx"]["dropped"]
        .as_u64()
        .expect("stats64.tx.dropped")
}

#[test]
fn drops_are_counted_and_leave_no_stale_latency() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("dr", "10.209.1");
    let ((ns_a, _), (ns_b, _)) = common::keys(&lab);
    // The peer cannot take what A sends: veth_xmit drops every datagram (MTU).
    ip(&["-n", &lab.ns_b, "link", "set", &lab.if_b, "mtu", "500"]).unwrap();
    ip(&["-n", &lab.ns_a, "link", "set", "lo", "up"]).unwrap();
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 7200);
    let _lo_sink = udp_sink(&lab.ns_a, "127.0.0.1", 7201);
    let before = kernel_tx_dropped(&lab.ns_a, &lab.if_a);
    const N: usize = 5000;
    let cfg = Config {
        netns_filter: vec![ns_a, ns_b],
        ..Config::default()
    };
    let (nsa, addr_b) = (lab.ns_a.clone(), lab.addr_b.clone());
    let s = capture_polling(&cfg, move || {
        send_udp(&nsa, &addr_b, 7200, N, 1000).expect("send");
        // Loopback traffic reuses the dropped skbs' addresses.
        send_udp(&nsa, "127.0.0.1", 7201, 4 * N, 64).expect("send lo");
    });
    let dropped = kernel_tx_dropped(&lab.ns_a, &lab.if_a) - before;
    assert_eq!(dropped, N as u64, "the kernel dropped what was sent");
    let a = common::iface(&s, ns_a, lab.ifindex_a().unwrap());
    assert_eq!(
        a.counters.dropped, dropped,
        "drops = the kernel's tx_dropped"
    );
    assert_eq!(
        a.drop_reasons.values().sum::<u64>(),
        dropped,
        "{:?}",
        a.drop_reasons
    );
    exact(a.counters.tx_packets, N as u64, "A tx (veth_xmit calls)");
    assert_eq!(a.veth_hop.count, 0, "nothing was delivered: no hop sample");
    for i in &s.interfaces {
        for (what, h) in [("veth_hop", &i.veth_hop), ("backlog_wait", &i.backlog_wait)] {
            assert!(
                h.max < 1_000_000_000,
                "{}/{} {what} max {} ns: a stale timestamp",
                i.netns_label,
                i.name,
                h.max
            );
        }
    }
    let lo = s
        .interfaces
        .iter()
        .find(|i| i.key.netns == ns_a && i.name == "lo")
        .expect("lo counted");
    exact(lo.counters.rx_packets, 4 * N as u64, "lo rx");
    assert!(
        s.loss.inflight_evicted <= N as u64 / 100,
        "in-flight loss {} for {N} drops",
        s.loss.inflight_evicted
    );
}

/// A tiny XDP_PASS program, built here with clang.
fn xdp_pass_object(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("xdp_pass.c");
    let obj = dir.join("xdp_pass.o");
    std::fs::write(
        &src,
        "#include <linux/bpf.h>\n\
         __attribute__((section(\"xdp\"), used)) int xdp_pass(struct xdp_md *c) { return XDP_PASS; }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
    let arch_inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let out = Command::new("clang")
        .args(["-O2", "-target", "bpf", &arch_inc, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("clang (a build dependency)");
    assert!(
        out.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

#[test]
fn a_napi_receiver_gets_its_packets_raises_and_time() {
    require_root!();
    let _g = common::serial();
    // By default the NAPI device's first packet claims its raise; with --napi-polls its
    // poll does. Both must give the same attribution.
    napi_receiver(false);
    napi_receiver(true);
}

fn napi_receiver(napi_polls: bool) {
    let dir = tempfile::tempdir().unwrap();
    let obj = xdp_pass_object(dir.path());
    let napi = common::lab("xp", "10.209.2");
    let backlog = common::lab("bk", "10.209.3");
    ip(&[
        "-n",
        &napi.ns_b,
        "link",
        "set",
        "dev",
        &napi.if_b,
        "xdpdrv",
        "obj",
        obj.to_str().unwrap(),
        "sec",
        "xdp",
    ])
    .unwrap();
    let ((na, ixa), (nb, ixb)) = common::keys(&napi);
    let ((ka, _), (kb, ixk)) = common::keys(&backlog);
    let _s1 = udp_sink(&napi.ns_b, &napi.addr_b, 7300);
    let _s2 = udp_sink(&backlog.ns_b, &backlog.addr_b, 7301);
    const N: usize = 3000;
    let cfg = Config {
        netns_filter: vec![na, nb, ka, kb],
        napi_polls,
        ..Config::default()
    };
    let (n_ns, n_addr) = (napi.ns_a.clone(), napi.addr_b.clone());
    let (b_ns, b_addr) = (backlog.ns_a.clone(), backlog.addr_b.clone());
    let s = capture_polling(&cfg, move || {
        // Both at once: the NAPI veth's raises must not land on the backlog pair.
        let other = std::thread::spawn(move || send_udp(&b_ns, &b_addr, 7301, N, 64));
        send_udp(&n_ns, &n_addr, 7300, N, 64).expect("send napi");
        other.join().unwrap().expect("send backlog");
    });
    let b = common::iface(&s, nb, ixb);
    exact(b.counters.rx_packets, N as u64, "NAPI B rx");
    assert_eq!(b.rx_path(), Some(RxPath::Napi));
    assert_eq!(b.counters.rx_enqueued, 0, "no backlog on the NAPI path");
    exact(
        b.counters.napi_packets,
        N as u64,
        "NAPI B packets from its NAPI",
    );
    assert_eq!(
        b.counters.napi_polls > 0,
        napi_polls,
        "polls counted only with the hook"
    );
    assert!(
        b.counters.net_rx_raises > 0,
        "the raises that scheduled its NAPI are its own"
    );
    assert!(b.counters.softirq_ns > 0);
    // XDP on B copies the skbs A hands it (those without room for XDP's headroom): the
    // originals die unseen. They are counted as replaced on A, not as in-flight table
    // pressure (issue 20: 20 003 "evictions" for 20 000 datagrams before). Every transmit
    // is either received as itself (a veth_hop sample) or replaced, but the last few
    // whose table slots no later skb took yet.
    let a = common::iface(&s, na, ixa);
    let accounted = a.counters.napi_replaced + a.veth_hop.count;
    assert!(
        a.counters.napi_replaced > 0 && accounted * 100 >= N as u64 * 95 && accounted <= N as u64,
        "A: {} replaced + {} received of {N} transmits",
        a.counters.napi_replaced,
        a.veth_hop.count
    );
    assert!(
        s.loss.inflight_evicted * 100 <= 2 * N as u64,
        "inflight_evicted {} for {} packets",
        s.loss.inflight_evicted,
        2 * N
    );
    let k = common::iface(&s, kb, ixk);
    exact(k.counters.rx_packets, N as u64, "backlog B rx");
    assert_eq!(k.rx_path(), Some(RxPath::Backlog));
    assert_eq!(
        k.counters.napi_packets, 0,
        "the backlog pair's packets were all enqueued"
    );
    // A raise no enqueue caused is never charged to an enqueuing interface.
    assert!(
        k.counters.net_rx_raises <= k.counters.rx_enqueued,
        "backlog B: {} raises for {} enqueues",
        k.counters.net_rx_raises,
        k.counters.rx_enqueued
    );
    let total_raises: u64 = s.cpus.iter().map(|c| c.vectors[NET_RX].raises).sum();
    let attributed = b.counters.net_rx_raises + k.counters.net_rx_raises;
    assert!(attributed <= total_raises);
    assert!(
        s.loss.raises_unattributed * 20 <= total_raises,
        "{} of {total_raises} NET_RX raises unattributed",
        s.loss.raises_unattributed
    );
    // NET_RX time: the two receivers take nearly all of it.
    let run_ns: u64 = s.cpus.iter().map(|c| c.vectors[NET_RX].run_ns).sum();
    assert!(b.counters.softirq_ns + k.counters.softirq_ns <= run_ns);
    assert!(
        (b.counters.softirq_ns + k.counters.softirq_ns) * 10 >= run_ns * 8,
        "receivers {} + {} ns of {run_ns} ns NET_RX time",
        b.counters.softirq_ns,
        k.counters.softirq_ns
    );
}
