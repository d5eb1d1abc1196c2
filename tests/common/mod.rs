//! Shared test hosts: network namespaces joined by veth pairs, made fresh per test with
//! unique names and always removed (Drop), plus traffic senders that run inside them.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

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

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Two namespaces with a veth pair between them: `a` (in ns_a, .1) <-> `b` (in ns_b, .2).
pub struct VethLab {
    pub ns_a: String,
    pub ns_b: String,
    pub if_a: String,
    pub if_b: String,
    pub addr_a: String,
    pub addr_b: String,
}

impl VethLab {
    /// `tag` makes names unique per test; `subnet` is the /24 prefix like "10.201.7".
    pub fn new(tag: &str, subnet: &str) -> VethLab {
        let pid = std::process::id();
        let lab = VethLab {
            ns_a: format!("sqt-{tag}-a-{pid}"),
            ns_b: format!("sqt-{tag}-b-{pid}"),
            if_a: format!("sq{tag}a"),
            if_b: format!("sq{tag}b"),
            addr_a: format!("{subnet}.1"),
            addr_b: format!("{subnet}.2"),
        };
        // Leftovers of a crashed earlier run with the same pid would collide.
        let _ = ip(&["netns", "del", &lab.ns_a]);
        let _ = ip(&["netns", "del", &lab.ns_b]);
        lab.setup().unwrap_or_else(|e| {
            lab.teardown();
            panic!("building test namespaces: {e}")
        });
        lab
    }

    fn setup(&self) -> Result<(), String> {
        ip(&["netns", "add", &self.ns_a])?;
        ip(&["netns", "add", &self.ns_b])?;
        ip(&["link", "add", &self.if_a, "netns", &self.ns_a, "type", "veth", "peer", "name", &self.if_b, "netns", &self.ns_b])?;
        for (ns, dev, addr) in [(&self.ns_a, &self.if_a, &self.addr_a), (&self.ns_b, &self.if_b, &self.addr_b)] {
            // No IPv6: its autoconfiguration chatter would blur exact packet counts.
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
                .status();
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn teardown(&self) {
        // Deleting a namespace deletes its end of the veth, and with it the pair.
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }

    pub fn inode(ns: &str) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{ns}")).expect("netns file").ino() as u32
    }
    pub fn inode_a(&self) -> u32 {
        Self::inode(&self.ns_a)
    }
    pub fn inode_b(&self) -> u32 {
        Self::inode(&self.ns_b)
    }

    pub fn ifindex(ns: &str, dev: &str) -> u32 {
        let name = std::ffi::CString::new(dev).unwrap();
        // /sys shows the namespace it was mounted in: ask the kernel from inside instead.
        // SAFETY: if_nametoindex reads a valid NUL-terminated string.
        in_netns(ns, move || unsafe { libc::if_nametoindex(name.as_ptr()) })
    }

    /// Pre-resolves ARP both ways so the measured traffic is only what the test sends.
    pub fn warm_up(&self) {
        let (mac_a, mac_b) = (mac(&self.ns_a, &self.if_a), mac(&self.ns_b, &self.if_b));
        ip(&["-n", &self.ns_a, "neigh", "replace", &self.addr_b, "lladdr", &mac_b, "dev", &self.if_a, "nud", "permanent"])
            .expect("static neighbour");
        ip(&["-n", &self.ns_b, "neigh", "replace", &self.addr_a, "lladdr", &mac_a, "dev", &self.if_b, "nud", "permanent"])
            .expect("static neighbour");
    }
}

fn mac(ns: &str, dev: &str) -> String {
    let out = Command::new("ip").args(["-n", ns, "-o", "link", "show", "dev", dev]).output().expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

impl Drop for VethLab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Runs `f` on a thread that has entered the named namespace (only that thread moves).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).expect("open netns");
        // SAFETY: setns on a valid namespace fd; it moves only the calling thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in netns")
}

/// A UDP sink bound in `ns` (so no ICMP unreachable comes back), kept open until dropped.
pub struct UdpSink {
    _sock: UdpSocket,
}

pub fn udp_sink(ns: &str, addr: &str, port: u16) -> UdpSink {
    let a: SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let sock = in_netns(ns, move || UdpSocket::bind(a).expect("bind udp sink"));
    UdpSink { _sock: sock }
}

/// Sends exactly `n` UDP datagrams of `size` payload bytes from `ns` to addr:port.
pub fn send_udp(ns: &str, dst: &str, port: u16, n: usize, size: usize) {
    let d: SocketAddr = format!("{dst}:{port}").parse().unwrap();
    in_netns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
        let buf = vec![0x5au8; size];
        for _ in 0..n {
            // A full socket buffer is retried: the count must be exact.
            while s.send_to(&buf, d).is_err() {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    });
}

/// Streams `bytes` over one TCP connection from `ns_client` to a listener in `ns_server`.
pub fn tcp_stream(ns_server: &str, server_addr: &str, ns_client: &str, port: u16, bytes: usize) -> usize {
    let a: SocketAddr = format!("{server_addr}:{port}").parse().unwrap();
    let listener = in_netns(ns_server, move || TcpListener::bind(a).expect("bind tcp"));
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    });
    in_netns(ns_client, move || {
        let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(5)).expect("connect");
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).expect("write");
            left -= n;
        }
    });
    server.join().expect("server")
}

/// Every program name in bpf/sirqtop.bpf.c.
pub const PROGRAMS: [&str; 20] = [
    "tp_veth_xmit", "raw_veth_xmit", "tp_netif_rx", "raw_netif_rx", "tp_softirq_raise",
    "raw_softirq_raise", "tp_softirq_entry", "raw_softirq_entry", "tp_softirq_exit",
    "raw_softirq_exit", "tp_netif_receive", "raw_netif_receive", "fentry_veth_xmit",
    "fentry_netif_rx", "fentry___netif_rx", "fentry_softirq_raise", "kprobe_veth_xmit",
    "kprobe_netif_rx", "kprobe___netif_rx", "kprobe_softirq_raise",
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
