//! Root tests of who pays for softirqs: the task a softirq ran on, by its netns.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sirqtop::collector::{Collector, Config};
use sirqtop::model::{PayerKind, Snapshot, NET_RX, VECTOR_NAMES};

/// Sends `n` UDP datagrams from a thread in `ns` pinned to `cpu`.
fn flood(ns: &str, dst: &str, port: u16, n: usize, cpu: usize) {
    sirqtop::lab::pinned::flood_pinned(ns, dst, port, n, cpu).expect("sender");
}

fn capture(traffic: impl FnOnce()) -> Snapshot {
    let mut c = Collector::start(&Config::default()).expect("attach");
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    c.snapshot().expect("snapshot")
}

fn task_payer(s: &Snapshot, netns: u32) -> Option<&sirqtop::model::Payer> {
    s.payers
        .iter()
        .find(|p| p.key.kind == PayerKind::Task && p.key.netns == netns)
}

/// Per vector: the payers' time adds up to the node's. The two maps are read one after
/// the other while softirqs keep running, so the later read may hold a few more runs.
fn payers_sum_to_the_node(s: &Snapshot) {
    for (v, name) in VECTOR_NAMES.iter().enumerate() {
        let node = s.vector_total(v);
        let paid: u64 = s.payers.iter().map(|p| p.ns[v]).sum();
        let runs: u64 = s.payers.iter().map(|p| p.runs[v]).sum();
        let slack = node.run_ns / 100 + 2_000_000;
        assert!(
            paid + slack >= node.run_ns && paid <= node.run_ns + slack,
            "{name}: payers {paid} ns vs node {} ns",
            node.run_ns
        );
        assert!(
            runs + node.runs / 100 + 200 >= node.runs && runs <= node.runs + node.runs / 100 + 200,
            "{name}: payers {runs} runs vs node {}",
            node.runs
        );
    }
}

#[test]
fn a_busy_task_pays_for_the_receives_that_interrupt_it() {
    require_root!();
    if !common::has_cpus_0_and_1() {
        return;
    }
    let _g = common::serial();
    let lab = common::lab("s17p", "10.217.4");
    let spin_ns = common::lab("s17s", "10.217.5");
    let spin_inode = spin_ns.inode_a().unwrap();
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    // B's receives are steered to CPU 1, where a CPU-bound task of another netns runs.
    sirqtop::lab::pinned::steer_rps(&lab.ns_b, &lab.if_b, "2").expect("rps_cpus");
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let spinner = sirqtop::lab::spawn_in_netns(&spin_ns.ns_a, move || {
        sirqtop::lab::pin_to_cpu(1).expect("pin");
        let mut x = 0u64;
        while !st.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    })
    .expect("spinner");
    std::thread::sleep(Duration::from_millis(100));
    let s = capture(|| flood(&lab.ns_a, &lab.addr_b, 5017, 20_000, 0));
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap().unwrap();

    let p = task_payer(&s, spin_inode).expect("the spinning task's netns is charged");
    assert!(p.runs[NET_RX] > 0 && p.ns[NET_RX] > 0, "{p:?}");
    assert_eq!(p.label, spin_ns.ns_a, "labelled like its interfaces");
    payers_sum_to_the_node(&s);
    // Idle and ksoftirqd are rows of their own; ksoftirqd's runs are the node's.
    let idle = s.payers.iter().filter(|p| p.key.kind == PayerKind::Idle);
    assert!(idle.count() <= 1);
    let k = s.payers.iter().find(|p| p.key.kind == PayerKind::Ksoftirqd);
    for (v, name) in VECTOR_NAMES.iter().enumerate() {
        let node = s.vector_total(v).ksoftirqd_runs;
        let got = k.map_or(0, |k| k.runs[v]);
        assert!(
            got + node / 100 + 50 >= node && got <= node + node / 100 + 50,
            "{name}: ksoftirqd row {got} vs node {node}"
        );
    }
}

#[test]
fn a_sender_pays_for_the_receives_at_its_local_bh_enable() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("s17t", "10.217.6");
    let ns_a = lab.inode_a().unwrap();
    let ns_b = lab.inode_b().unwrap();
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    const N: u64 = 5000;
    let s = capture(|| flood(&lab.ns_a, &lab.addr_b, 5017, N as usize, 0));
    let p = task_payer(&s, ns_a).expect("the sender's netns is charged");
    // Every transmit enqueues to CPU 0's backlog and runs NET_RX at the sender's
    // local_bh_enable: one run per packet or fewer (several packets per run), never none.
    assert!(
        p.runs[NET_RX] >= N / 10 && p.runs[NET_RX] <= N + 100,
        "sender's NET_RX runs: {p:?}"
    );
    assert!(p.ns[NET_RX] > 0);
    // The receiver's tasks pay no receive; a timer softirq (SCHED, RCU) may still run on
    // one of them, as on any task.
    let b = task_payer(&s, ns_b);
    assert!(
        b.is_none_or(|p| p.runs[NET_RX] == 0),
        "a task in the receiver's netns paid NET_RX runs: {b:?}"
    );
    // Idle is one row of its own, without a namespace (whether a CPU was idle at all
    // depends on what else the node runs).
    let idle: Vec<_> = s
        .payers
        .iter()
        .filter(|p| p.key.kind == PayerKind::Idle)
        .collect();
    assert!(idle.len() <= 1, "{idle:?}");
    assert!(idle.iter().all(|p| p.label == "idle" && p.key.netns == 0));
    payers_sum_to_the_node(&s);
}

#[test]
fn payers_of_gone_namespaces_are_forgotten_and_leave_the_kernel_table() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("s17g", "10.217.7");
    let ns_a = lab.inode_a().unwrap();
    let sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    let cfg = Config {
        forget_gone_after: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let mut c = Collector::start(&cfg).expect("attach");
    flood(&lab.ns_a, &lab.addr_b, 5017, 2000, 0);
    std::thread::sleep(Duration::from_millis(200));
    let s1 = c.snapshot().expect("snapshot");
    let p = task_payer(&s1, ns_a)
        .expect("the sender's netns pays")
        .clone();
    assert!(c.payer_in_kernel(&p.key));
    // The namespaces go (no task or socket keeps them); past the grace period the payer
    // is forgotten, then its kernel entry deleted.
    drop(sink);
    drop(lab);
    let mut last = s1;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(600));
        last = c.snapshot().expect("snapshot");
        if !c.payer_in_kernel(&p.key) {
            break;
        }
    }
    assert!(
        !c.payer_in_kernel(&p.key),
        "kernel entry of {p:?} still there"
    );
    assert!(
        !last.payers.iter().any(|q| q.key == p.key),
        "forgotten payer still reported"
    );
    // Its time is in the _forgotten row: the payers still add up to the node.
    let f = last
        .payers
        .iter()
        .find(|q| q.key.kind == PayerKind::Forgotten)
        .expect("a _forgotten row");
    assert_eq!(f.label, "_forgotten");
    assert!(f.ns[NET_RX] >= p.ns[NET_RX], "{f:?} < {p:?}");
    payers_sum_to_the_node(&last);
}
