//! Root tests of the per-CPU softnet statistics: the capture's numbers against the
//! kernel's own file over the same window, and forced squeezes and backlog drops.

mod common;

use std::time::Duration;

use sirqtop::collector::{Collector, Config};
use sirqtop::lab::sysctl::SysctlGuard;
use sirqtop::model::softnet::{parse, SoftnetLayout, SoftnetLine};
use sirqtop::model::Snapshot;

fn file() -> Vec<SoftnetLine> {
    let text = std::fs::read_to_string("/proc/net/softnet_stat").unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    parse(
        &text,
        SoftnetLayout::of_release(release.trim()),
        &sirqtop::probe::kernel::online_cpu_list(),
    )
    .unwrap()
}

/// Sends `n` UDP datagrams from a thread in `ns` pinned to `cpu`.
fn flood(ns: &str, dst: &str, port: u16, n: usize, cpu: usize) {
    sirqtop::lab::pinned::flood_pinned(ns, dst, port, n, cpu).expect("sender");
}

/// Runs `traffic` under an unfiltered capture; returns the snapshot and the file read
/// just before attach and just after the snapshot.
fn capture(traffic: impl FnOnce()) -> (Vec<SoftnetLine>, Snapshot, Vec<SoftnetLine>) {
    let before = file();
    let mut c = Collector::start(&Config::default()).expect("attach");
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    let s = c.snapshot().expect("snapshot");
    let after = file();
    drop(c);
    (before, s, after)
}

/// The findings of a capture, as "id subject".
fn findings(s: &Snapshot) -> Vec<String> {
    sirqtop::findings::evaluate(s, &sirqtop::model::Availability::all())
        .into_iter()
        .map(|f| format!("{} {}", f.id, f.subject))
        .collect()
}

fn softnet(s: &Snapshot, cpu: u32) -> sirqtop::model::Softnet {
    s.cpus
        .iter()
        .find(|c| c.cpu == cpu)
        .and_then(|c| c.softnet)
        .unwrap_or_else(|| panic!("cpu{cpu} has no softnet"))
}

/// Per CPU and counter: the capture's delta lies within the file's own delta over a
/// window that encloses it (other traffic on the node only adds to the file's).
fn check_against_file(before: &[SoftnetLine], s: &Snapshot, after: &[SoftnetLine]) {
    for a in after {
        let Some(b) = before.iter().find(|b| b.cpu == a.cpu) else {
            continue;
        };
        let got = softnet(s, a.cpu);
        for (what, cap, file) in [
            (
                "processed",
                got.processed,
                a.processed.wrapping_sub(b.processed),
            ),
            ("dropped", got.dropped, a.dropped.wrapping_sub(b.dropped)),
            (
                "time_squeeze",
                got.time_squeeze,
                a.time_squeeze.wrapping_sub(b.time_squeeze),
            ),
            (
                "received_rps",
                got.received_rps,
                a.received_rps.wrapping_sub(b.received_rps),
            ),
        ] {
            assert!(
                cap <= u64::from(file),
                "cpu{} {what}: capture {cap} > file {file}",
                a.cpu
            );
        }
    }
}

#[test]
fn deltas_are_the_files_own_over_the_window() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("s17d", "10.217.1");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    const N: u64 = 3000;
    let (before, s, after) = capture(|| flood(&lab.ns_a, &lab.addr_b, 5017, N as usize, 0));
    check_against_file(&before, &s, &after);
    // Every datagram was received from CPU 0's backlog (no RPS on the lab's veth).
    let got = softnet(&s, 0).processed;
    assert!(got >= N, "cpu0 processed {got} < {N} sent");
}

#[test]
fn a_lowered_budget_squeezes_the_receiving_cpu() {
    require_root!();
    let _g = common::serial();
    let cpu = sirqtop::probe::kernel::online_cpu_list()
        .last()
        .copied()
        .unwrap_or(0);
    let lab = common::lab("s17q", "10.217.2");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    let (before, s, after) = capture(|| {
        // One packet per NET_RX run uses the whole budget: every run with work squeezes.
        let _budget = SysctlGuard::set("net.core.netdev_budget", "1").expect("netdev_budget");
        flood(&lab.ns_a, &lab.addr_b, 5017, 2000, cpu as usize);
    });
    check_against_file(&before, &s, &after);
    let got = softnet(&s, cpu);
    assert!(got.time_squeeze > 0, "no squeeze on cpu{cpu}: {got:?}");
    assert!(got.processed >= 2000, "{got:?}");
    let f = findings(&s);
    assert!(
        f.contains(&format!("receive_budget_exhausted cpu{cpu}")),
        "{f:?}"
    );
}

#[test]
fn backlog_drops_are_counted_like_the_kernel_and_the_interface() {
    require_root!();
    let cpus = sirqtop::probe::kernel::online_cpu_list();
    if cpus.len() < 2 || !cpus.contains(&1) {
        eprintln!("skipped: needs CPUs 0 and 1 (RPS from one to the other)");
        return;
    }
    let _g = common::serial();
    let lab = common::lab("s17b", "10.217.3");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5017);
    // Steer B's receives to CPU 1 while CPU 0 sends: CPU 1's backlog fills from afar.
    sirqtop::lab::pinned::steer_rps(&lab.ns_b, &lab.if_b, "2").expect("rps_cpus");
    let (before, s, after) = capture(|| {
        let _backlog =
            SysctlGuard::set("net.core.netdev_max_backlog", "1").expect("netdev_max_backlog");
        flood(&lab.ns_a, &lab.addr_b, 5017, 20_000, 0);
    });
    check_against_file(&before, &s, &after);
    let target = softnet(&s, 1);
    eprintln!("cpu1 softnet: {target:?}");
    assert!(target.dropped > 0, "no backlog drop on cpu1: {target:?}");
    assert!(target.received_rps > 0, "{target:?}");
    // The kernel frees each such skb with reason CPU_BACKLOG on its device: over every
    // interface of the (unfiltered) capture, the same number.
    let total: u64 = s
        .cpus
        .iter()
        .filter_map(|c| c.softnet)
        .map(|c| c.dropped)
        .sum();
    let by_reason: u64 = s
        .interfaces
        .iter()
        .filter_map(|i| i.drop_reasons.get("CPU_BACKLOG"))
        .sum();
    assert_eq!(by_reason, total, "CPU_BACKLOG drops vs softnet dropped");
    let (ns_b, ix_b) = common::keys(&lab).1;
    let b = common::iface(&s, ns_b, ix_b);
    let on_b = b.drop_reasons.get("CPU_BACKLOG").copied().unwrap_or(0);
    assert!(on_b > 0 && on_b <= b.counters.dropped, "{b:?}");
    // Thousands of drops (max_backlog 1 against a flood): the finding names the CPU.
    assert!(target.dropped >= sirqtop::findings::MIN_BACKLOG_DROPS);
    let f = findings(&s);
    assert!(f.contains(&"backlog_drops cpu1".to_string()), "{f:?}");
}
