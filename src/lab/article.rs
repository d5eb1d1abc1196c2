//! The article behind sirqtop, reproduced: the same closed-loop HTTP/1.1 keep-alive
//! service reached over each [`DataPath`] (a VM's one veth; a pod's NodePort DNAT and
//! routed veth; a bridge; a macvlan or ipvlan), then over the remedies the article names,
//! side by side with a plain routed veth ([`Topo`]: Cilium-style eBPF host routing with
//! tc `bpf_redirect_peer`, ipvlan L3, netkit, an IPIP overlay, and VXLAN), captured by
//! sirqtop, with per-request costs and the paths crossed. Rows whose device kind the kernel
//! lacks are skipped with the reason. `examples/vm_vs_container.rs` prints it; the tests
//! run it short.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use super::datapath::{IpvlanMode, Source, Tunnel};
use super::tcprog::Redirect;
use super::{DataPath, PathLab, Topo, TopoLab};
use crate::collector::{Collector, Config};
use crate::lab;
use crate::model::{Snapshot, NET_RX};
use crate::output::json::{Capture, JsonPath, JsonPathEnd};

const SERVER_CPU: usize = 1;
const CLIENT_CPU: usize = 0;
const BODY: usize = 512;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerRequest {
    pub backlog_enqueues: f64,
    pub net_rx_raises: f64,
    pub net_rx_runs: f64,
    pub softirq_ns: f64,
    /// Receives the kernel counted on the lab's devices that sirqtop did not see (no hook
    /// on this kernel for that receive path: `rx_unseen`); None where no device's own
    /// counters were read.
    pub rx_unseen: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub path: String,
    pub requests: u64,
    pub rt_avg_us: f64,
    pub qps: f64,
    /// Change against the vm row, in percent (null on the vm row).
    pub rt_change_pct: Option<f64>,
    pub qps_change_pct: Option<f64>,
    pub per_request: PerRequest,
    /// The paths packets took between client and server, both ways.
    pub paths: Vec<JsonPath>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub skipped: Vec<Skipped>,
    pub secs: f64,
    pub conns: usize,
    pub work_us: u64,
    pub kernel: String,
    /// The hypervisor flag is set in /proc/cpuinfo: times (RT, req/s, softirq ns) carry
    /// the virtual machine's costs; only the per-request counts (enqueues, raises, runs,
    /// hops) compare with bare metal.
    pub virtualized: bool,
}

/// How the load runs.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Measured seconds per path (after a warm-up of a quarter of that).
    pub secs: f64,
    /// Keep-alive connections of the closed-loop load generator.
    pub conns: usize,
    /// CPU work per request on the server, in µs.
    pub work_us: u64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            secs: 5.0,
            conns: 4,
            work_us: 10,
        }
    }
}

/// Busy work standing in for the service's own CPU time per request.
fn work(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    let mut x = 0u64;
    while Instant::now() < end {
        for i in 0..64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
}

/// Reads one request head (up to the blank line); false at end of stream.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let mut b = [0u8; 1024];
    loop {
        let n = s.read(&mut b)?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&b[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(true);
        }
    }
}

/// A keep-alive HTTP/1.1 server: one thread per connection, all on the server CPU.
fn serve(listener: TcpListener, work_us: u64, stop: Arc<AtomicBool>) {
    let _ = lab::pin_to_cpu(SERVER_CPU);
    let body = vec![b'x'; BODY];
    let mut conns = Vec::new();
    listener.set_nonblocking(true).ok();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut s, _)) => {
                let body = body.clone();
                conns.push(std::thread::spawn(move || {
                    let _ = lab::pin_to_cpu(SERVER_CPU);
                    s.set_nonblocking(false).ok();
                    s.set_nodelay(true).ok();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {BODY}\r\n\
                         Connection: keep-alive\r\n\r\n"
                    );
                    let mut resp = head.into_bytes();
                    resp.extend_from_slice(&body);
                    let mut buf = Vec::new();
                    while let Ok(true) = read_head(&mut s, &mut buf) {
                        work(work_us);
                        if s.write_all(&resp).is_err() {
                            break;
                        }
                    }
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(listener);
    for c in conns {
        let _ = c.join();
    }
}

/// One connection's closed loop: request, whole response, next request.
fn client(target: SocketAddr, until: Instant, measure_from: Instant) -> anyhow::Result<(u64, u64)> {
    let _ = lab::pin_to_cpu(CLIENT_CPU);
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .with_context(|| format!("connect {target}"))?;
    s.set_nodelay(true).ok();
    let req = format!("GET / HTTP/1.1\r\nHost: {target}\r\nConnection: keep-alive\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    let (mut n, mut rt_ns) = (0u64, 0u64);
    loop {
        let t = Instant::now();
        if t >= until {
            break;
        }
        s.write_all(req.as_bytes())?;
        // The head, then exactly Content-Length bytes of body.
        let mut got = Vec::new();
        let head_end = loop {
            let k = s.read(&mut buf)?;
            if k == 0 {
                bail!("server closed the connection");
            }
            got.extend_from_slice(&buf[..k]);
            if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        while got.len() < head_end + BODY {
            let k = s.read(&mut buf)?;
            if k == 0 {
                bail!("short response");
            }
            got.extend_from_slice(&buf[..k]);
        }
        if t >= measure_from {
            n += 1;
            rt_ns += t.elapsed().as_nanos() as u64;
        }
    }
    Ok((n, rt_ns))
}

/// A row's lab, kept for the row's run: the article's paths or the remedies'.
enum Lab {
    Path(PathLab),
    Topo(TopoLab),
}

/// Where a row's load runs.
struct Hosts {
    client_ns: String,
    server_ns: String,
    /// Every namespace of the lab (the capture's filter).
    namespaces: Vec<String>,
    /// Where the server listens, and where the client sends.
    server: SocketAddr,
    target: SocketAddr,
}

const SERVER_PORT: u16 = 8080;

impl Lab {
    fn hosts(&self) -> anyhow::Result<Hosts> {
        Ok(match self {
            Lab::Path(l) => Hosts {
                client_ns: l.client_ns.clone(),
                server_ns: l.server_ns.clone(),
                namespaces: [Some(&l.client_ns), l.node_ns.as_ref(), Some(&l.server_ns)]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                server: format!("{}:{}", l.server_addr, l.server_port).parse()?,
                target: format!("{}:{}", l.target_addr, l.target_port).parse()?,
            },
            Lab::Topo(t) => {
                let server = format!("{}:{SERVER_PORT}", t.receiver.addr).parse()?;
                Hosts {
                    client_ns: t.sender.ns.clone(),
                    server_ns: t.receiver.ns.clone(),
                    namespaces: t.namespaces().to_vec(),
                    server,
                    target: server,
                }
            }
        })
    }
}

/// Sets the flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs the load over one of the article's data paths and captures it.
pub fn run_row(kind: DataPath, net: u8, a: &Load) -> anyhow::Result<Row> {
    let lab = PathLab::new(kind, &format!("vc{}", &kind.name()[..1]), net)
        .with_context(|| format!("building the {} lab", kind.name()))?;
    run_lab(kind.name(), &Lab::Path(lab), a)
}

/// Runs the load over a remedy's topology (client: its sender, server: its receiver).
pub fn run_topo(name: &str, topo: Topo, tag: &str, net: u8, a: &Load) -> anyhow::Result<Row> {
    let lab = TopoLab::build(topo, tag, net).with_context(|| format!("building the {name} lab"))?;
    run_lab(name, &Lab::Topo(lab), a)
}

fn run_lab(name: &str, lab: &Lab, a: &Load) -> anyhow::Result<Row> {
    let hosts = lab.hosts()?;
    let namespaces = hosts
        .namespaces
        .iter()
        .map(|ns| lab::netns_inode(ns))
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = Config {
        netns_filter: namespaces,
        ..Config::default()
    };
    // Attached before any load: attaching can take longer than a short window (a debug
    // build on a busy machine), and the window must be the one the clients count.
    let mut c = Collector::start(&cfg)?;
    let (server_sock, target) = (hosts.server, hosts.target);
    let stop = Arc::new(AtomicBool::new(false));
    // Whatever happens below, the server stops (the clients stop at `until` on their own).
    let _stop_server = StopOnDrop(Arc::clone(&stop));
    let listener = lab::in_netns(&hosts.server_ns, move || TcpListener::bind(server_sock))??;
    let (st, wu) = (Arc::clone(&stop), a.work_us);
    let server = lab::spawn_in_netns(&hosts.server_ns, move || serve(listener, wu, st))?;

    let warm = Duration::from_secs_f64(a.secs / 4.0);
    let len = Duration::from_secs_f64(a.secs);
    let start = Instant::now();
    let (measure_from, until) = (start + warm, start + warm + len);
    let clients: Vec<_> = (0..a.conns)
        .map(|_| {
            lab::spawn_in_netns(&hosts.client_ns, move || {
                client(target, until, measure_from)
            })
        })
        .collect::<Result<_, _>>()?;
    // The measured window is the difference of two snapshots: at its start and end.
    let poll_until = |c: &mut Collector, t: Instant| -> anyhow::Result<()> {
        while Instant::now() < t {
            std::thread::sleep(
                Duration::from_millis(100).min(t.saturating_duration_since(Instant::now())),
            );
            c.poll()?;
        }
        Ok(())
    };
    poll_until(&mut c, measure_from)?;
    let base = c.snapshot()?;
    poll_until(&mut c, until)?;
    let snap = c.snapshot()?.delta(&base);
    let meta = c.meta().clone();
    drop(c);
    let (mut n, mut rt_ns) = (0u64, 0u64);
    for h in clients {
        let (k, rt) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))???;
        n += k;
        rt_ns += rt;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    let n = n.max(1);
    let cap = Capture::new(&meta, &snap);
    let row = Row {
        path: name.to_string(),
        requests: n,
        rt_avg_us: rt_ns as f64 / n as f64 / 1e3,
        qps: n as f64 / snap.elapsed_ns.max(1) as f64 * 1e9,
        rt_change_pct: None,
        qps_change_pct: None,
        per_request: per_request(&snap, n),
        paths: lab_paths(&cap, &hosts.client_ns),
    };
    Ok(row)
}

fn per_request(s: &Snapshot, n: u64) -> PerRequest {
    let sum = |f: fn(&crate::model::IfaceCounters) -> u64| -> f64 {
        s.interfaces.iter().map(|i| f(&i.counters)).sum::<u64>() as f64 / n as f64
    };
    PerRequest {
        backlog_enqueues: sum(|c| c.rx_enqueued),
        net_rx_raises: s.vector_total(NET_RX).raises as f64 / n as f64,
        net_rx_runs: s.vector_total(NET_RX).runs as f64 / n as f64,
        softirq_ns: sum(|c| c.softirq_ns),
        rx_unseen: s
            .interfaces
            .iter()
            .filter_map(|i| i.rx_unseen())
            .reduce(|a, b| a + b)
            .map(|u| u as f64 / n as f64),
    }
}

/// The paths packets took between the client and the server, both ways: those from or to
/// the client's namespace, ends only (a path's intermediate hops are paths of their own:
/// left out when a longer path of the same origin goes through them), most packets first.
fn lab_paths(cap: &Capture, client_ns: &str) -> Vec<JsonPath> {
    let client = Some(client_ns);
    let same = |a: &JsonPathEnd, b: &JsonPathEnd| {
        (a.netns_inode, a.ifindex, a.netns_cookie) == (b.netns_inode, b.ifindex, b.netns_cookie)
    };
    let ours: Vec<&JsonPath> = cap
        .paths
        .iter()
        .filter(|p| {
            p.from.netns_label.as_deref() == client || p.to.netns_label.as_deref() == client
        })
        .collect();
    let mut v: Vec<JsonPath> = ours
        .iter()
        .filter(|p| {
            !ours.iter().any(|q| {
                same(&q.from, &p.from) && q.hops > p.hops && q.via.iter().any(|e| same(e, &p.to))
            })
        })
        .map(|p| (*p).clone())
        .collect();
    v.sort_by(|a, b| b.packets.cmp(&a.packets).then(b.hops.cmp(&a.hops)));
    v
}

fn pct(v: f64, base: f64) -> f64 {
    100.0 * (v - base) / base
}

/// `a → b → c`: a path's interfaces by name.
pub fn chain(p: &JsonPath) -> String {
    let name = |e: &JsonPathEnd| e.name.clone().unwrap_or_else(|| format!("if{}", e.ifindex));
    let mut s = name(&p.from);
    for e in p.via.iter().chain(std::iter::once(&p.to)) {
        s.push_str(" → ");
        s.push_str(&name(e));
    }
    s
}

/// Every data path in turn (ipvlan where the kernel has it), then the remedies where the
/// kernel has them; changes against `vm`.
pub fn run(load: &Load, progress: impl Fn(&str)) -> anyhow::Result<Report> {
    let mut rows: Vec<Row> = Vec::new();
    let mut skipped = Vec::new();
    let kinds = [
        (DataPath::Vm, 207u8),
        (DataPath::Container, 208),
        (DataPath::Bridge, 209),
        (DataPath::Macvlan, 210),
    ];
    for (kind, net) in kinds {
        progress(kind.name());
        rows.push(run_row(kind, net, load)?);
    }
    // ipvlan needs its module: run it where the kernel has it, else say why not.
    match ipvlan_missing() {
        None => {
            progress("ipvlan");
            rows.push(run_row(DataPath::Ipvlan, 211, load)?);
        }
        Some(reason) => skipped.push(Skipped {
            path: "ipvlan".into(),
            reason,
        }),
    }
    // The remedies, each where the kernel has it, next to the routed veth they replace.
    for (name, topo, tag, net) in REMEDIES {
        match topo.missing() {
            None => {
                progress(name);
                rows.push(run_topo(name, topo, tag, net, load)?);
            }
            Some(reason) => skipped.push(Skipped {
                path: name.into(),
                reason,
            }),
        }
    }
    if let Some(base) = rows.first().map(|r| (r.rt_avg_us, r.qps)) {
        for r in rows.iter_mut().skip(1) {
            r.rt_change_pct = Some(pct(r.rt_avg_us, base.0));
            r.qps_change_pct = Some(pct(r.qps, base.1));
        }
    }
    Ok(Report {
        rows,
        skipped,
        secs: load.secs,
        conns: load.conns,
        work_us: load.work_us,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        virtualized: std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
            c.lines()
                .any(|l| l.starts_with("flags") && l.contains(" hypervisor"))
        }),
    })
}

/// The remedies' rows: (name, topology, tag, 10.net.0.0/16). Client and server are the
/// topology's pods: `routed` is the veth pair + routing node they replace (no DNAT),
/// `ebpf` the same with Cilium-style host routing (tc `bpf_redirect_peer` both ways),
/// `ipvlan-l3` the client on the parent's wire, `ipip` and `vxlan` pods on two nodes.
pub const REMEDIES: [(&str, Topo, &str, u8); 6] = [
    ("routed", Topo::Routed, "vcro", 216),
    ("ebpf", Topo::Tc(Redirect::Peer), "vceb", 217),
    (
        "ipvlan-l3",
        Topo::Ipvlan(IpvlanMode::L3, Source::Wire),
        "vcil3",
        218,
    ),
    ("netkit", Topo::Netkit, "vcnk", 219),
    ("ipip", Topo::Overlay(Tunnel::Ipip), "vcip", 216),
    ("vxlan", Topo::Overlay(Tunnel::Vxlan), "vcvx", 217),
];

/// Why no ipvlan can be created here; None when one can.
pub fn ipvlan_missing() -> Option<String> {
    Topo::Ipvlan(IpvlanMode::L2, Source::Sibling).missing()
}
