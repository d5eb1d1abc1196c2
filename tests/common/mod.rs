//! Shared by the root tests: the library's lab (namespaces + veth + senders) with test
//! conveniences, serialisation, and a view of loaded BPF programs.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

pub use sirqtop::lab::{UdpSink, VethLab};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (passes with a note) a root test when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root (BPF and network namespaces)");
            return;
        }
    };
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Root tests in one binary take turns: they share one kernel, and the "nothing left
/// loaded" checks must not see another test's programs.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lab that panics (failing the test) if it cannot be built.
pub fn lab(tag: &str, subnet: &str) -> VethLab {
    let l = VethLab::new(tag, subnet).expect("building test namespaces");
    l.warm_up().expect("static neighbours");
    l
}

pub fn udp_sink(ns: &str, addr: &str, port: u16) -> UdpSink {
    sirqtop::lab::udp_sink(ns, addr, port).expect("udp sink")
}

pub fn send_udp(ns: &str, dst: &str, port: u16, n: usize, size: usize) {
    sirqtop::lab::send_udp(ns, dst, port, n, size).expect("send udp")
}

pub fn tcp_stream(ns_server: &str, addr: &str, ns_client: &str, port: u16, bytes: usize) -> usize {
    sirqtop::lab::tcp_stream(ns_server, addr, ns_client, port, bytes).expect("tcp stream")
}

/// (netns inode, ifindex) of the lab's A and B ends.
pub fn keys(l: &VethLab) -> ((u32, u32), (u32, u32)) {
    (
        (l.inode_a().unwrap(), l.ifindex_a().unwrap()),
        (l.inode_b().unwrap(), l.ifindex_b().unwrap()),
    )
}

/// Every program name in bpf/sirqtop.bpf.c.
pub const PROGRAMS: [&str; 20] = [
    "tp_veth_xmit",
    "raw_veth_xmit",
    "tp_netif_rx",
    "raw_netif_rx",
    "tp_softirq_raise",
    "raw_softirq_raise",
    "tp_softirq_entry",
    "raw_softirq_entry",
    "tp_softirq_exit",
    "raw_softirq_exit",
    "tp_netif_receive",
    "raw_netif_receive",
    "fentry_veth_xmit",
    "fentry_netif_rx",
    "fentry___netif_rx",
    "fentry_softirq_raise",
    "kprobe_veth_xmit",
    "kprobe_netif_rx",
    "kprobe___netif_rx",
    "kprobe_softirq_raise",
];

/// IDs of the programs with sirqtop's names currently loaded in the kernel (the kernel
/// keeps 15 characters of a name).
pub fn sirqtop_program_ids() -> std::collections::BTreeSet<u32> {
    libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| {
            let n = p.name.to_string_lossy();
            PROGRAMS.iter().any(|ours| ours[..ours.len().min(15)] == *n)
        })
        .map(|p| p.id)
        .collect()
}
