//! Test hosts for labs, examples and tests: network namespaces joined by a veth pair, and
//! traffic senders that run inside them. Everything it builds is removed on drop, and its
//! traffic only ever goes to addresses inside the namespaces it made.

pub mod article;
pub mod datapath;
pub mod netkit;
mod pathlab;
pub mod tcprog;

pub use datapath::{kernel_rx, kernel_stats, kernel_tx, DevStats, Topo, TopoLab};
pub use pathlab::{DataPath, PathLab};
pub mod pinned;
pub mod sysctl;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Ip(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("a thread inside the namespace panicked")]
    Thread,
    /// A tool the lab needs (clang, tc) could not be run.
    #[error("{0}")]
    Tool(String),
}

type Result<T> = std::result::Result<T, LabError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// Runs `ip ARGS`, turning a failure into its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    run_ip(Command::new("ip").args(args), || {
        format!("ip {}", args.join(" "))
    })
}

/// Runs an `ip` command; a failure is `what` with the command's stderr.
fn run_ip(cmd: &mut Command, what: impl Fn() -> String) -> Result<()> {
    let out = cmd.output().map_err(io(what()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Ip(format!(
            "{}: {}",
            what(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Two namespaces with a veth pair between them: `if_a` (in `ns_a`, `addr_a`) <->
/// `if_b` (in `ns_b`, `addr_b`), both /24, IPv6 off, links up.
#[derive(Debug)]
pub struct VethLab {
    pub ns_a: String,
    pub ns_b: String,
    pub if_a: String,
    pub if_b: String,
    pub addr_a: String,
    pub addr_b: String,
}

/// Chooses an ifindex, given the namespace the interface will be in.
type PickIndex<'a> = Box<dyn FnOnce(&str) -> Result<u32> + 'a>;

impl VethLab {
    /// `tag` (a few characters) makes names unique together with the pid; `subnet` is a
    /// /24 prefix such as "10.201.7" that nothing else on the machine uses.
    pub fn new(tag: &str, subnet: &str) -> Result<VethLab> {
        Self::build(tag, subnet, None)
    }

    /// Like `new`, with end A's ifindex chosen by `index_a` once both namespaces exist
    /// (it gets A's namespace name): e.g. to put A in a given slot of sirqtop's tables.
    pub fn with_index_a(
        tag: &str,
        subnet: &str,
        index_a: impl FnOnce(&str) -> Result<u32>,
    ) -> Result<VethLab> {
        Self::build(tag, subnet, Some(Box::new(index_a)))
    }

    fn build(tag: &str, subnet: &str, index_a: Option<PickIndex<'_>>) -> Result<VethLab> {
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
        lab.teardown();
        // On failure `lab` is dropped, which removes whatever was built.
        lab.setup(index_a)?;
        Ok(lab)
    }

    fn setup(&self, index_a: Option<PickIndex<'_>>) -> Result<()> {
        ip(&["netns", "add", &self.ns_a])?;
        ip(&["netns", "add", &self.ns_b])?;
        match index_a {
            None => veth_pair((&self.ns_a, &self.if_a), (&self.ns_b, &self.if_b))?,
            Some(pick) => {
                let index = pick(&self.ns_a)?.to_string();
                ip(&[
                    "-n", &self.ns_a, "link", "add", &self.if_a, "index", &index, "type", "veth",
                    "peer", "name", &self.if_b, "netns", &self.ns_b,
                ])?
            }
        }
        for ns in [&self.ns_a, &self.ns_b] {
            disable_ipv6(ns);
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        address(&self.ns_a, &self.if_a, &self.addr_a)?;
        address(&self.ns_b, &self.if_b, &self.addr_b)
    }

    fn teardown(&self) {
        // Deleting a namespace deletes its end of the veth, and with it the pair.
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }

    pub fn inode_a(&self) -> Result<u32> {
        netns_inode(&self.ns_a)
    }
    pub fn inode_b(&self) -> Result<u32> {
        netns_inode(&self.ns_b)
    }
    pub fn ifindex_a(&self) -> Result<u32> {
        ifindex(&self.ns_a, &self.if_a)
    }
    pub fn ifindex_b(&self) -> Result<u32> {
        ifindex(&self.ns_b, &self.if_b)
    }

    /// Static neighbours both ways, so the measured traffic is only what is sent.
    pub fn warm_up(&self) -> Result<()> {
        static_neighbours(
            (&self.ns_a, &self.if_a, &self.addr_a),
            (&self.ns_b, &self.if_b, &self.addr_b),
        )
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The namespaces a lab made, deleted when dropped (and with them their devices, their
/// veth pairs and tc programs): a half-built lab leaves nothing either.
#[derive(Debug, Default)]
pub struct OwnedNetns(Vec<String>);

impl OwnedNetns {
    /// Makes `ns` (removing a leftover of a crashed earlier run with the same name), IPv6
    /// off, lo up.
    pub fn add(&mut self, ns: &str) -> Result<()> {
        let _ = ip(&["netns", "del", ns]);
        ip(&["netns", "add", ns])?;
        self.0.push(ns.to_string());
        disable_ipv6(ns);
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A veth pair with one end in each namespace: ((ns, name), (ns, name)).
pub fn veth_pair(a: (&str, &str), b: (&str, &str)) -> Result<()> {
    ip(&[
        "link", "add", a.1, "netns", a.0, "type", "veth", "peer", "name", b.1, "netns", b.0,
    ])
}

/// Gives `dev` in `ns` the /24 address `addr` and sets it up.
pub fn address(ns: &str, dev: &str, addr: &str) -> Result<()> {
    ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
    ip(&["-n", ns, "link", "set", dev, "up"])
}

/// Permanent neighbour entries both ways between two (namespace, device, address) ends:
/// no ARP in the measured traffic.
pub fn static_neighbours(a: (&str, &str, &str), b: (&str, &str, &str)) -> Result<()> {
    let (mac_a, mac_b) = (mac(a.0, a.1)?, mac(b.0, b.1)?);
    neighbour(a.0, a.1, b.2, &mac_b)?;
    neighbour(b.0, b.1, a.2, &mac_a)
}

/// A permanent neighbour entry: `addr` is at `lladdr` on `dev` in `ns`.
pub fn neighbour(ns: &str, dev: &str, addr: &str, lladdr: &str) -> Result<()> {
    ip(&[
        "-n",
        ns,
        "neigh",
        "replace",
        addr,
        "lladdr",
        lladdr,
        "dev",
        dev,
        "nud",
        "permanent",
    ])
}

/// A static FDB entry on a bridge port: `mac` is behind `port` (no flooding).
pub fn bridge_fdb(ns: &str, mac: &str, port: &str) -> Result<()> {
    run_ip(
        Command::new("bridge").args([
            "-n", ns, "fdb", "replace", mac, "dev", port, "master", "static",
        ]),
        || format!("bridge fdb replace {mac} dev {port} (in {ns})"),
    )
}

/// IPv6 autoconfiguration chatter would blur exact packet counts.
pub fn disable_ipv6(ns: &str) {
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ])
        .status();
}

/// Inode of an `ip netns` namespace.
pub fn netns_inode(ns: &str) -> Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/run/netns/{ns}");
    Ok(std::fs::metadata(&path).map_err(io(path))?.ino() as u32)
}

/// ifindex of `dev` inside `ns` (asked from inside: /sys shows the mounting namespace).
pub fn ifindex(ns: &str, dev: &str) -> Result<u32> {
    let name = std::ffi::CString::new(dev).map_err(|e| LabError::Ip(e.to_string()))?;
    // SAFETY: if_nametoindex reads a valid NUL-terminated string.
    let idx = in_netns(ns, move || unsafe { libc::if_nametoindex(name.as_ptr()) })?;
    if idx == 0 {
        return Err(LabError::Ip(format!("no device {dev} in {ns}")));
    }
    Ok(idx)
}

/// The MAC address of `dev` in `ns`, as `ip` prints it.
pub fn mac(ns: &str, dev: &str) -> Result<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", dev])
        .output()
        .map_err(io("ip link show"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| LabError::Ip(format!("no MAC address for {dev} in {ns}")))
}

/// Runs `f` on a thread that has entered the named namespace (only that thread moves).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    spawn_in_netns(ns, f)?
        .join()
        .map_err(|_| LabError::Thread)?
}

/// Starts `f` on a thread inside the named namespace and returns its handle.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T>>> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(io(path.clone()))?;
    Ok(std::thread::spawn(move || {
        // SAFETY: setns on a valid namespace fd; it moves only the calling thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(LabError::Io {
                what: format!("setns {path}"),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(f())
    }))
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity
    // only read/write that set; pid 0 is the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A UDP socket bound in a namespace (so no ICMP unreachable comes back), open until dropped.
pub struct UdpSink {
    _sock: UdpSocket,
}

pub fn udp_sink(ns: &str, addr: &str, port: u16) -> Result<UdpSink> {
    let a = sockaddr(addr, port)?;
    let sock = in_netns(ns, move || UdpSocket::bind(a))?.map_err(io(format!("bind {a}")))?;
    Ok(UdpSink { _sock: sock })
}

fn sockaddr(addr: &str, port: u16) -> Result<SocketAddr> {
    format!("{addr}:{port}")
        .parse()
        .map_err(|e| LabError::Ip(format!("address {addr}: {e}")))
}

/// Sends exactly `n` UDP datagrams of `size` payload bytes from `ns` to addr:port.
pub fn send_udp(ns: &str, dst: &str, port: u16, n: usize, size: usize) -> Result<()> {
    let d = sockaddr(dst, port)?;
    in_netns(ns, move || -> Result<()> {
        let s = UdpSocket::bind("0.0.0.0:0").map_err(io("udp socket"))?;
        let buf = vec![0x5au8; size];
        for _ in 0..n {
            // A full socket buffer is retried: the count must be exact.
            let mut tries = 0;
            while let Err(e) = s.send_to(&buf, d) {
                tries += 1;
                if tries > 10_000 {
                    return Err(LabError::Io {
                        what: format!("send to {d}"),
                        source: e,
                    });
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    })?
}

/// Streams `bytes` over one TCP connection from `ns_client` to a listener in
/// `ns_server`; returns what the server received.
pub fn tcp_stream(
    ns_server: &str,
    server_addr: &str,
    ns_client: &str,
    port: u16,
    bytes: usize,
) -> Result<usize> {
    let a = sockaddr(server_addr, port)?;
    let listener =
        in_netns(ns_server, move || TcpListener::bind(a))?.map_err(io(format!("bind {a}")))?;
    let server = std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else {
            return 0;
        };
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    in_netns(ns_client, move || -> Result<()> {
        let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(5))
            .map_err(io(format!("connect {a}")))?;
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            s.write_all(&chunk[..n]).map_err(io("tcp write"))?;
            left -= n;
        }
        Ok(())
    })??;
    server.join().map_err(|_| LabError::Thread)
}

/// Runs a command inside `ns` (`ip netns exec`), turning a failure into its stderr.
pub fn ns_exec(ns: &str, args: &[&str]) -> Result<()> {
    run_ip(
        Command::new("ip").args(["netns", "exec", ns]).args(args),
        || format!("{} (in {ns})", args.join(" ")),
    )
}

fn sysctl(ns: &str, kv: &str) -> Result<()> {
    ns_exec(ns, &["sysctl", "-qw", kv])
}
