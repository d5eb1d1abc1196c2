//! Test hosts for labs, examples and tests: network namespaces joined by a veth pair, and
//! traffic senders that run inside them. Everything it builds is removed on drop, and its
//! traffic only ever goes to addresses inside the namespaces it made.

pub mod article;
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
    for ((ns, dev, _), (_, _, dst), lladdr) in [(a, b, &mac_b), (b, a, &mac_a)] {
        ip(&[
            "-n",
            ns,
            "neigh",
            "replace",
            dst,
            "lladdr",
            lladdr,
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
    }
    Ok(())
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

fn mac(ns: &str, dev: &str) -> Result<String> {
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

/// How the client reaches the server in a [`PathLab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPath {
    /// Client and server on one veth pair: a VM on its NIC.
    Vm,
    /// Client -> node over a veth pair (the NIC), NodePort-style DNAT on the node, routed
    /// to the pod over a calico-like veth (a /32 route, proxy ARP, no bridge).
    Container,
    /// The same, with the pod behind a Linux bridge on the node (docker, flannel).
    Bridge,
    /// Client -> node over a veth pair; the pod on a bridge-mode macvlan of the node's
    /// end, in its own namespace (no DNAT: the pod's address is on the wire).
    Macvlan,
    /// Like `Macvlan` with an L2 ipvlan (it shares the NIC's MAC address).
    Ipvlan,
    /// Like `Bridge`, without DNAT: the client sends to the pod's address, routed by the
    /// node.
    RoutedBridge,
}

impl DataPath {
    pub fn name(self) -> &'static str {
        match self {
            DataPath::Vm => "vm",
            DataPath::Container => "container",
            DataPath::Bridge => "bridge",
            DataPath::Macvlan => "macvlan",
            DataPath::Ipvlan => "ipvlan",
            DataPath::RoutedBridge => "routed-bridge",
        }
    }
}

/// A client, an optional node and a server ("pod") in namespaces of their own, joined as
/// `DataPath` says. Static neighbours everywhere and IPv6 off: what is measured is only
/// what is sent. Everything is removed on drop.
#[derive(Debug)]
pub struct PathLab {
    pub kind: DataPath,
    pub client_ns: String,
    pub node_ns: Option<String>,
    pub server_ns: String,
    /// The client's veth.
    pub client_if: String,
    /// The server's interface (its veth, or its macvlan).
    pub server_if: String,
    /// Where the server listens.
    pub server_addr: String,
    /// Where the client sends: the server, or the node's NodePort address.
    pub target_addr: String,
    /// The port the client sends to (NodePort) and the server's.
    pub target_port: u16,
    pub server_port: u16,
    namespaces: Vec<String>,
}

impl Drop for PathLab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

impl PathLab {
    /// Builds the lab. `tag`: a few characters that make names unique with the pid;
    /// `net`: the second octet of the 10.net.0.0/16 it uses (nothing else may use it).
    pub fn new(kind: DataPath, tag: &str, net: u8) -> Result<PathLab> {
        let pid = std::process::id();
        let n = |r: &str| format!("sqt-{tag}-{r}-{pid}");
        let with_node = kind != DataPath::Vm;
        let mut lab = PathLab {
            kind,
            client_ns: n("c"),
            node_ns: with_node.then(|| n("n")),
            server_ns: n("s"),
            client_if: format!("sq{tag}c"),
            server_if: format!("sq{tag}s"),
            server_addr: String::new(),
            target_addr: String::new(),
            target_port: 30080,
            server_port: 8080,
            namespaces: Vec::new(),
        };
        for ns in [
            Some(&lab.client_ns),
            lab.node_ns.as_ref(),
            Some(&lab.server_ns),
        ]
        .into_iter()
        .flatten()
        {
            let _ = ip(&["netns", "del", ns]);
        }
        let all: Vec<String> = [
            Some(lab.client_ns.clone()),
            lab.node_ns.clone(),
            Some(lab.server_ns.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        for ns in &all {
            ip(&["netns", "add", ns])?;
            lab.namespaces.push(ns.clone());
            disable_ipv6(ns);
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        match kind {
            DataPath::Vm => lab.build_vm(net)?,
            _ => lab.build_node(net)?,
        }
        if lab.target_addr.is_empty() {
            lab.target_addr = lab.server_addr.clone();
            lab.target_port = lab.server_port;
        }
        Ok(lab)
    }

    fn build_vm(&mut self, net: u8) -> Result<()> {
        let (c, s) = (&self.client_ns, &self.server_ns);
        veth_pair((c, &self.client_if), (s, &self.server_if))?;
        let (ca, sa) = (format!("10.{net}.1.1"), format!("10.{net}.1.2"));
        address(c, &self.client_if, &ca)?;
        address(s, &self.server_if, &sa)?;
        static_neighbours((c, &self.client_if, &ca), (s, &self.server_if, &sa))?;
        self.server_addr = sa;
        Ok(())
    }

    /// Client <-> node (the NIC) and the node's way to the pod.
    fn build_node(&mut self, net: u8) -> Result<()> {
        let node = self.node_ns.clone().unwrap_or_default();
        let (c, s) = (self.client_ns.clone(), self.server_ns.clone());
        let nic = "nic0";
        veth_pair((&c, &self.client_if), (&node, nic))?;
        let (ca, na) = (format!("10.{net}.1.1"), format!("10.{net}.1.254"));
        address(&c, &self.client_if, &ca)?;
        address(&node, nic, &na)?;
        static_neighbours((&c, &self.client_if, &ca), (&node, nic, &na))?;
        sysctl(&node, "net.ipv4.ip_forward=1")?;
        let pod_addr = format!("10.{net}.2.2");
        match self.kind {
            DataPath::Container => {
                // calico: the pod's veth has no bridge; the node routes its /32 to it and
                // answers the pod's ARP for the gateway (169.254.1.1) by proxy.
                let cali = "cali0";
                veth_pair((&s, &self.server_if), (&node, cali))?;
                ip(&[
                    "-n",
                    &s,
                    "addr",
                    "add",
                    &format!("{pod_addr}/32"),
                    "dev",
                    &self.server_if,
                ])?;
                ip(&["-n", &s, "link", "set", &self.server_if, "up"])?;
                ip(&["-n", &node, "link", "set", cali, "up"])?;
                sysctl(&node, &format!("net.ipv4.conf.{cali}.proxy_arp=1"))?;
                ip(&[
                    "-n",
                    &node,
                    "route",
                    "add",
                    &format!("{pod_addr}/32"),
                    "dev",
                    cali,
                ])?;
                ip(&[
                    "-n",
                    &s,
                    "route",
                    "add",
                    "169.254.1.1",
                    "dev",
                    &self.server_if,
                    "scope",
                    "link",
                ])?;
                ip(&[
                    "-n",
                    &s,
                    "route",
                    "add",
                    "default",
                    "via",
                    "169.254.1.1",
                    "dev",
                    &self.server_if,
                ])?;
                static_neighbours(
                    (&s, &self.server_if, &pod_addr),
                    (&node, cali, "169.254.1.1"),
                )?;
                self.nodeport(&node, &na, &pod_addr)?;
                // The client reaches the node only; replies come back un-DNATed.
            }
            DataPath::Bridge | DataPath::RoutedBridge => {
                let (br, port) = ("br0", "vport0");
                ip(&["-n", &node, "link", "add", br, "type", "bridge"])?;
                let gw = format!("10.{net}.2.1");
                address(&node, br, &gw)?;
                veth_pair((&s, &self.server_if), (&node, port))?;
                ip(&["-n", &node, "link", "set", port, "master", br])?;
                ip(&["-n", &node, "link", "set", port, "up"])?;
                address(&s, &self.server_if, &pod_addr)?;
                ip(&["-n", &s, "route", "add", "default", "via", &gw])?;
                static_neighbours((&s, &self.server_if, &pod_addr), (&node, br, &gw))?;
                // A static FDB entry: no flooding (which would clone the skb).
                let out = Command::new("bridge")
                    .args([
                        "-n",
                        &node,
                        "fdb",
                        "replace",
                        &mac(&s, &self.server_if)?,
                        "dev",
                        port,
                        "master",
                        "static",
                    ])
                    .output()
                    .map_err(io("bridge fdb"))?;
                if !out.status.success() {
                    return Err(LabError::Ip(format!(
                        "bridge fdb: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                if self.kind == DataPath::Bridge {
                    self.nodeport(&node, &na, &pod_addr)?;
                } else {
                    ip(&[
                        "-n",
                        &c,
                        "route",
                        "add",
                        &format!("10.{net}.2.0/24"),
                        "via",
                        &na,
                    ])?;
                }
            }
            DataPath::Macvlan | DataPath::Ipvlan => {
                // The pod's macvlan (ipvlan) on the node's NIC, moved into its namespace.
                let (kind, mode) = if self.kind == DataPath::Macvlan {
                    ("macvlan", "bridge")
                } else {
                    ("ipvlan", "l2")
                };
                ip(&[
                    "-n",
                    &node,
                    "link",
                    "add",
                    &self.server_if,
                    "link",
                    nic,
                    "type",
                    kind,
                    "mode",
                    mode,
                ])?;
                ip(&["-n", &node, "link", "set", &self.server_if, "netns", &s])?;
                let pa = format!("10.{net}.1.2");
                address(&s, &self.server_if, &pa)?;
                static_neighbours((&c, &self.client_if, &ca), (&s, &self.server_if, &pa))?;
                self.server_addr = pa;
                return Ok(());
            }
            DataPath::Vm => {}
        }
        self.server_addr = pod_addr;
        Ok(())
    }

    /// NodePort: the node's address and port 30080 DNATed to the pod's 8080.
    fn nodeport(&mut self, node: &str, node_addr: &str, pod_addr: &str) -> Result<()> {
        for proto in ["tcp", "udp"] {
            ns_exec(
                node,
                &[
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-d",
                    node_addr,
                    "-p",
                    proto,
                    "--dport",
                    "30080",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    &format!("{pod_addr}:8080"),
                ],
            )?;
        }
        self.target_addr = node_addr.to_string();
        self.target_port = 30080;
        Ok(())
    }

    pub fn client_inode(&self) -> Result<u32> {
        netns_inode(&self.client_ns)
    }
    pub fn server_inode(&self) -> Result<u32> {
        netns_inode(&self.server_ns)
    }
}
