//! Traffic whose CPUs a test chooses: a UDP flood from a pinned thread, and RPS steering
//! of a device's receives to other CPUs.

use std::time::Duration;

use super::{in_netns, io, ns_exec, pin_to_cpu, sockaddr, Result};

/// Sends exactly `n` 64-byte UDP datagrams from a thread in `ns` pinned to `cpu`.
pub fn flood_pinned(ns: &str, dst: &str, port: u16, n: usize, cpu: usize) -> Result<()> {
    let d = sockaddr(dst, port)?;
    in_netns(ns, move || -> Result<()> {
        pin_to_cpu(cpu).map_err(io(format!("pin to cpu{cpu}")))?;
        let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(io("udp socket"))?;
        let buf = [0x5au8; 64];
        for _ in 0..n {
            // A full socket buffer is retried: the count must be exact.
            while s.send_to(&buf, d).is_err() {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    })?
}

/// Steers the receives of `dev` (in `ns`) to the CPUs of `mask` (hex, e.g. "2" = CPU 1)
/// with RPS: another CPU's backlog fills from afar and its NET_RX runs on an IPI.
pub fn steer_rps(ns: &str, dev: &str, mask: &str) -> Result<()> {
    ns_exec(
        ns,
        &[
            "sh",
            "-c",
            &format!("echo {mask} > /sys/class/net/{dev}/queues/rx-0/rps_cpus"),
        ],
    )
}
