//! What naming interfaces costs on a node with many pods (root; builds its own node).
//!
//! usage: sudo target/release/examples/bench_discovery [--pods N] [--secs S] [--json]
//!
//! Builds N pod namespaces (default 1000), each with a veth pair to one "node" namespace
//! (2N veths; nothing touches the host's own namespace), brings the links up (their IPv6
//! neighbour discovery is the traffic that makes every veth an active interface), then
//! runs a whole-node collector the way the dashboard does: poll every 100 ms, snapshot every
//! second, for S seconds (default 30). Reports, each also for an idle node measured in the
//! same run as the baseline:
//! - snapshot: wall time of `Collector::snapshot` (median, max) with the interfaces it named;
//! - cpu: the collector's CPU time over the run as % of one CPU (the dashboard's cost at a
//!   1 s refresh, rendering aside);
//! - rss: resident memory at the end;
//! - discovery: one full `netns::discover()` (every namespace entered) against one
//!   `netns::discover_in` of a new pod's namespace and the node's, as a new pod's
//!   interfaces trigger (with a scan of the node's namespaces, and from the known list).
//!
//! Everything it created is deleted at the end, also on error.
use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sirqtop::collector::{Collector, Config};

struct Opts {
    pods: usize,
    secs: u64,
    json: bool,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        pods: 1000,
        secs: 30,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pods" => o.pods = args.next().context("--pods N")?.parse()?,
            "--secs" => o.secs = args.next().context("--secs S")?.parse()?,
            "--json" => o.json = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

/// Runs `ip [-n NS] -b -` over the given commands (one per line): thousands in one process.
fn ip_batch_in(ns: Option<&str>, lines: &[String]) -> Result<()> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-force", "-b", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("ip -b")?;
    {
        let mut stdin = child.stdin.take().context("stdin")?;
        for l in lines {
            writeln!(stdin, "{l}")?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("ip -b: {}", err.lines().next().unwrap_or(""));
    }
    Ok(())
}

fn ip_batch(lines: &[String]) -> Result<()> {
    ip_batch_in(None, lines)
}

/// The pods and their node; deleted on drop.
struct Node {
    node: String,
    pods: Vec<String>,
}

impl Node {
    fn build(n: usize) -> Result<Node> {
        let pid = std::process::id();
        let node = Node {
            node: format!("sqt-bd-node-{pid}"),
            pods: (0..n).map(|i| format!("sqt-bd-{i}-{pid}")).collect(),
        };
        let mut lines = vec![format!("netns add {}", node.node)];
        lines.extend(node.pods.iter().map(|p| format!("netns add {p}")));
        ip_batch(&lines)?;
        let mut lines = Vec::new();
        for (i, p) in node.pods.iter().enumerate() {
            lines.push(format!(
                "link add sqbd{i} netns {} type veth peer name eth0 netns {p}",
                node.node
            ));
        }
        ip_batch(&lines)?;
        Ok(node)
    }

    /// Links up: IPv6 neighbour discovery then sends on every veth.
    fn up(&self) -> Result<()> {
        let node: Vec<String> = (0..self.pods.len())
            .map(|i| format!("link set sqbd{i} up"))
            .collect();
        ip_batch_in(Some(&self.node), &node)?;
        // One `ip -n POD` per pod, a few at a time.
        for chunk in self.pods.chunks(16) {
            let mut running = Vec::new();
            for p in chunk {
                running.push(
                    Command::new("ip")
                        .args(["-n", p, "link", "set", "eth0", "up"])
                        .spawn()?,
                );
            }
            for mut c in running {
                c.wait()?;
            }
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let mut lines: Vec<String> = self.pods.iter().map(|p| format!("netns del {p}")).collect();
        lines.push(format!("netns del {}", self.node));
        let _ = ip_batch(&lines);
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

struct Run {
    interfaces: usize,
    snapshot_median_ms: f64,
    snapshot_max_ms: f64,
    cpu_pct: f64,
    rss_mib: f64,
}

/// A dashboard-like collector for `secs`: poll every 100 ms, snapshot every second.
/// `start` runs once the collector is attached.
fn run(secs: u64, start: impl FnOnce() -> Result<()>) -> Result<Run> {
    let mut c = Collector::start(&Config::default())?;
    start()?;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut times = Vec::new();
    let mut interfaces = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            c.poll()?;
        }
        let t = Instant::now();
        let s = c.snapshot()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        interfaces = s.interfaces.len();
    }
    let cpu = (cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0;
    times.sort_by(f64::total_cmp);
    Ok(Run {
        interfaces,
        snapshot_median_ms: times[times.len() / 2],
        snapshot_max_ms: times.last().copied().unwrap_or(0.0),
        cpu_pct: cpu,
        rss_mib: rss_kib() as f64 / 1024.0,
    })
}

fn main() -> Result<()> {
    let o = parse()?;
    eprintln!("idle node: {} s", o.secs);
    let idle = run(o.secs, || Ok(()))?;
    eprintln!("building {} pods ({} veths)", o.pods, 2 * o.pods);
    let t = Instant::now();
    let node = Node::build(o.pods)?;
    eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    // One full discovery against one targeted one (links still down).
    let t = Instant::now();
    let topo = sirqtop::netns::discover()?;
    let full_ms = t.elapsed().as_secs_f64() * 1e3;
    // A new pod announces both ends of its veth at once: its namespace and the node's.
    let pair = BTreeSet::from([
        sirqtop::lab::netns_inode(&node.pods[0])?,
        sirqtop::lab::netns_inode(&node.node)?,
    ]);
    // The peers it needs: the two ends of that pod's veth.
    let ends = BTreeSet::from([
        (
            sirqtop::lab::netns_inode(&node.pods[0])?,
            sirqtop::lab::ifindex(&node.pods[0], "eth0")?,
        ),
        (
            sirqtop::lab::netns_inode(&node.node)?,
            sirqtop::lab::ifindex(&node.node, "sqbd0")?,
        ),
    ]);
    let t = Instant::now();
    let _ = sirqtop::netns::discover_in(Some(&pair), None, Some(&ends))?;
    let one_scan_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let _ = sirqtop::netns::discover_in(Some(&pair), Some(&topo.namespaces), Some(&ends))?;
    let one_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "discover(): {full_ms:.1} ms for {} namespaces / {} links; discover_in(pod + node): \
         {one_scan_ms:.1} ms with a scan, {one_ms:.1} ms from the known list",
        topo.namespaces.len(),
        topo.links.len()
    );
    eprintln!("{} pods: {} s", o.pods, o.secs);
    let busy = run(o.secs, || node.up())?;
    drop(node);
    for (what, r) in [("idle", &idle), ("pods", &busy)] {
        eprintln!(
            "{what:5} interfaces {:5}  snapshot median {:7.2} ms  max {:7.2} ms  cpu {:5.2} %  rss {:6.1} MiB",
            r.interfaces, r.snapshot_median_ms, r.snapshot_max_ms, r.cpu_pct, r.rss_mib
        );
    }
    if o.json {
        let j = |r: &Run| {
            serde_json::json!({
                "interfaces": r.interfaces,
                "snapshot_median_ms": r.snapshot_median_ms,
                "snapshot_max_ms": r.snapshot_max_ms,
                "cpu_pct": r.cpu_pct,
                "rss_mib": r.rss_mib,
            })
        };
        println!(
            "{}",
            serde_json::json!({
                "pods": o.pods,
                "secs": o.secs,
                "idle": j(&idle),
                "pods_run": j(&busy),
                "discover_full_ms": full_ms,
                "discover_one_ms": one_ms,
                "discover_one_scan_ms": one_scan_ms,
                "namespaces": topo.namespaces.len(),
                "links": topo.links.len(),
            })
        );
    }
    Ok(())
}
