//! Retired interfaces on a living node: what a gone interface counted is banked, its
//! kernel entries are reclaimed (and forgotten after `--forget-after`), and a freed slot
//! is taken again on every CPU. Every test sends a known number of packets over veth pairs
//! it builds and checks what sirqtop reports against it. Root only; the tests take turns.

use std::time::Duration;

use sirqtop::collector::{Collector, Config};
use sirqtop::lab::{send_udp, udp_sink, VethLab};
use sirqtop::model::{Interface, Snapshot};

mod common;

use common::by_name;

/// Control packets a pair may add to what a test sends (none expected: IPv6 off, static
/// neighbours; a little room for what a busy kernel may still do).
const SLACK: u64 = 2;

fn exact(v: u64, n: u64, what: &str) {
    common::within_slack(v, n, SLACK, what);
}

#[test]
fn gone_interfaces_are_banked_and_their_entries_reclaimed() {
    require_root!();
    let _g = common::serial();
    // A short grace period (the default is a minute): the Reclaimer reads it at its first
    // sweep; other tests in this binary are unaffected by it (their labs outlive them).
    std::env::set_var("SIRQTOP_RECLAIM_AFTER", "0.3");
    let mut c = Collector::start(&Config::default()).expect("attach");
    let run_pair = |c: &mut Collector, tag: &str, subnet: &str, n: usize| {
        let lab = common::lab(tag, subnet);
        let names = (
            lab.ns_a.clone(),
            lab.if_a.clone(),
            lab.ns_b.clone(),
            lab.if_b.clone(),
        );
        let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 7400);
        send_udp(&lab.ns_a, &lab.addr_b, 7400, n, 64).expect("send");
        std::thread::sleep(Duration::from_millis(200));
        c.poll().expect("poll");
        names
    };
    let first = run_pair(&mut c, "rc1", "10.209.4", 100);
    // Deleted (dropped above): gone at this snapshot, retired (banked) at a later one.
    let s1 = c.snapshot().expect("snapshot");
    std::thread::sleep(Duration::from_millis(500));
    let s2 = c.snapshot().expect("snapshot");
    // The first pair's two ends were banked and their kernel entries freed.
    assert!(
        c.retired_interfaces() >= 2,
        "{} interfaces retired",
        c.retired_interfaces()
    );
    assert_eq!(
        s1.interfaces.iter().filter(|i| i.gone).count(),
        s2.interfaces.iter().filter(|i| i.gone).count(),
        "retiring keeps every gone interface in the snapshot"
    );
    let second = run_pair(&mut c, "rc2", "10.209.4", 70);
    let s3 = c.snapshot().expect("snapshot");
    for s in [&s1, &s2, &s3] {
        let a = by_name(s, &first.0, &first.1);
        let b = by_name(s, &first.2, &first.3);
        exact(a.counters.tx_packets, 100, "first A tx");
        exact(b.counters.rx_packets, 100, "first B rx");
        assert!(a.gone && b.gone);
        assert_eq!(
            b.peer.as_ref().and_then(|p| p.name.clone()),
            Some(first.1.clone())
        );
    }
    let a2 = by_name(&s3, &second.0, &second.1);
    let b2 = by_name(&s3, &second.2, &second.3);
    exact(a2.counters.tx_packets, 70, "second A tx");
    exact(b2.counters.rx_packets, 70, "second B rx");
    assert!(!a2.gone && !b2.gone);
    // The first pair's path is banked with the interfaces (freed in the kernel, counted
    // once, never again), and the second pair has its own.
    let path = |s: &Snapshot, a: &Interface, b: &Interface| -> u64 {
        s.path_hops
            .iter()
            .filter(|h| h.key.origin == a.key && h.key.to == b.key)
            .map(|h| h.packets)
            .sum()
    };
    for s in [&s1, &s2, &s3] {
        let (a, b) = (
            by_name(s, &first.0, &first.1),
            by_name(s, &first.2, &first.3),
        );
        exact(path(s, a, b), 100, "first path, banked once");
    }
    exact(path(&s3, a2, b2), 70, "second path");
    // Freeing those slots relies on user space's copy of the kernel's slot hashes.
    let check = c.slot_check();
    assert!(check.checked >= 3, "slots compared: {check:?}");
    assert_eq!(
        check.misplaced, 0,
        "user space hashes keys to other slots: {check:?}"
    );
    std::env::remove_var("SIRQTOP_RECLAIM_AFTER");
}

/// With `forget_gone_after` (serve's --forget-after, the dashboard's 30 s) a gone interface
/// is shown gone with its exact numbers, then forgotten: it leaves every later snapshot
/// (though the kernel may still show its lazily freed slots), with its paths, and the
/// collector keeps nothing of it.
#[test]
fn gone_interfaces_are_forgotten_after_forget_gone_after() {
    require_root!();
    let _g = common::serial();
    std::env::set_var("SIRQTOP_RECLAIM_AFTER", "0.3");
    let cfg = Config {
        forget_gone_after: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let mut c = Collector::start(&cfg).expect("attach");
    let lab = common::lab("fg", "10.219.1");
    let names = (
        lab.ns_a.clone(),
        lab.if_a.clone(),
        lab.ns_b.clone(),
        lab.if_b.clone(),
    );
    {
        let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 7600);
        send_udp(&lab.ns_a, &lab.addr_b, 7600, 90, 64).expect("send");
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = c.snapshot().expect("snapshot");
    let keys = [
        by_name(&s, &names.0, &names.1).key,
        by_name(&s, &names.2, &names.3).key,
    ];
    drop(lab);
    // Gone at the next full view of the node (at most 5 s old), forgotten 1 s later.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen_gone = false;
    let mut absent = 0;
    while absent < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let s = c.snapshot().expect("snapshot");
        let mine: Vec<&Interface> = s
            .interfaces
            .iter()
            .filter(|i| keys.contains(&i.key))
            .collect();
        if mine.is_empty() {
            assert!(seen_gone, "left before it was shown gone");
            absent += 1;
            assert!(
                !s.path_hops
                    .iter()
                    .any(|h| keys.contains(&h.key.origin) || keys.contains(&h.key.to)),
                "a forgotten interface's path is still reported"
            );
            continue;
        }
        assert_eq!(absent, 0, "a forgotten interface came back");
        let a = mine.iter().find(|i| i.key == keys[0]).expect("A");
        exact(a.counters.tx_packets, 90, "A tx while shown");
        seen_gone |= mine.iter().all(|i| i.gone);
    }
    assert_eq!(absent, 5, "still reported after 20 s");
    for k in &keys {
        assert!(!c.remembers(k), "{k:?} still remembered");
    }
    std::env::remove_var("SIRQTOP_RECLAIM_AFTER");
}

/// A gone interface's per-CPU slot is freed for the next interface that wants it, on each
/// CPU that held it: two gone interfaces at one slot index, one per CPU, then a third at
/// that index sending on both CPUs is counted in the slots, not in the overflow map.
#[test]
fn freed_slots_are_taken_again_on_every_cpu() {
    require_root!();
    let _g = common::serial();
    if sirqtop::probe::kernel::online_cpus() < 2 {
        eprintln!("skipped: needs 2 CPUs");
        return;
    }
    std::env::set_var("SIRQTOP_RECLAIM_AFTER", "0.3");
    let mut c = Collector::start(&Config::default()).expect("attach");
    let topology_cookie = |ns: &str| -> u64 {
        let inode = sirqtop::lab::netns_inode(ns).expect("inode");
        sirqtop::netns::discover()
            .expect("discover")
            .cookie(inode)
            .unwrap_or(0)
    };
    // An ifindex for end A of a new pair whose key lands in slot `idx`.
    let at_slot = |idx: u32| {
        move |ns: &str| -> Result<u32, sirqtop::lab::LabError> {
            let netns = sirqtop::lab::netns_inode(ns)?;
            let cookie = topology_cookie(ns);
            Ok((2..1_000_000u32)
                .find(|&ifindex| {
                    sirqtop::collector::iface_slot(&sirqtop::model::IfaceKey {
                        netns,
                        ifindex,
                        cookie,
                    }) == idx
                })
                .expect("an ifindex for the slot"))
        }
    };
    let send_on = |c: &mut Collector, lab: &VethLab, cpu: usize, n: usize| {
        let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 7500);
        let (ns, addr) = (lab.ns_a.clone(), lab.addr_b.clone());
        std::thread::spawn(move || {
            sirqtop::lab::pin_to_cpu(cpu).expect("pin");
            send_udp(&ns, &addr, 7500, n, 64).expect("send");
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        c.poll().expect("poll");
    };
    let x = common::lab("fx", "10.209.6");
    send_on(&mut c, &x, 0, 40);
    let s = c.snapshot().expect("snapshot");
    let xa = by_name(&s, &x.ns_a, &x.if_a).key;
    let idx = sirqtop::collector::iface_slot(&xa);
    let y = VethLab::with_index_a("fy", "10.209.7", at_slot(idx)).expect("lab");
    send_on(&mut c, &y, 1, 40);
    let s = c.snapshot().expect("snapshot");
    let ya = by_name(&s, &y.ns_a, &y.if_a).key;
    assert_eq!(sirqtop::collector::iface_slot(&ya), idx);
    let hashed = &c.slot_check().hashed;
    assert!(
        !hashed.contains(&xa) && !hashed.contains(&ya),
        "slot {idx} was not free on CPU 0 and 1 to begin with: {hashed:?}"
    );
    // Both go; both are banked and their slots marked for freeing.
    drop((x, y));
    // Gone at the next full view of the node (at most 5 s old), retired 0.3 s later.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while c.retired_interfaces() < 4 && std::time::Instant::now() < deadline {
        c.snapshot().expect("snapshot");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(c.retired_interfaces() >= 4, "{}", c.retired_interfaces());
    let z = VethLab::with_index_a("fz", "10.209.8", at_slot(idx)).expect("lab");
    send_on(&mut c, &z, 0, 30);
    send_on(&mut c, &z, 1, 20);
    let s = c.snapshot().expect("snapshot");
    let za = by_name(&s, &z.ns_a, &z.if_a);
    exact(za.counters.tx_packets, 50, "third A tx");
    exact(za.veth_hop.count, 50, "third A veth_hop samples");
    let check = c.slot_check();
    assert!(
        !check.hashed.contains(&za.key),
        "a CPU did not free slot {idx} for the next interface: {check:?}"
    );
    // The per-CPU histogram slot (the same interfaces collide there) too.
    assert!(
        !check.hist_shared.contains(&za.key),
        "a CPU did not free its histogram slot for the next interface: {check:?}"
    );
    assert_eq!(check.misplaced, 0, "{check:?}");
    std::env::remove_var("SIRQTOP_RECLAIM_AFTER");
}
