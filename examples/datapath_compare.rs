//! The same UDP sender/receiver pair over four data paths, each captured in-process by
//! sirqtop, saved as a JSON capture and diffed against veth: what does each path cost in
//! backlog enqueues, NET_RX raises, softirq time and waiting, per packet?
//!
//!   (a) veth      veth pair between a sender and a receiver namespace
//!   (b) macvlan   two macvlan (bridge mode) children of one parent in a third namespace,
//!                 moved into the sender and receiver namespaces; the parent is a `dummy`,
//!                 or one end of a veth pair on kernels built without CONFIG_DUMMY
//!   (c) loopback  both ends in one namespace, over `lo`
//!   (d) ipvlan    two ipvlan (l2) children of one such parent (skipped, with the reason,
//!                 where the kernel has no ipvlan)
//!
//!     sudo cargo run --release --example datapath_compare -- [--out DIR] [--packets N] [--size BYTES] [--filter EXPR]
//!
//! Every path gets the same traffic: a warm-up burst, then N datagrams (default 20 000 x
//! 64 B) from a sender thread pinned to CPU 0, read by a receiver thread. Unicast between
//! two bridge-mode macvlans is handed to their parent (`dev_forward_skb(lowerdev)`), so that
//! path's receive side is counted on the parent device.
//!
//! Everything it creates (namespaces `sqt-dp-*-<pid>`, and with them every device) is
//! removed when a path is done, also on error; traffic only goes to addresses inside those
//! namespaces (10.222.1-4.0/24, and 127.0.0.1 of its own namespace). The captures stay in
//! DIR (default: a `sqt-dp-<pid>` directory under the temp dir) for `sirqtop diff`.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sirqtop::collector::{Collector, Config};
use sirqtop::lab::{self, ip};
use sirqtop::output::diff::{diff, render_table, Point};
use sirqtop::output::json::{Capture, Sink};

const PORT: u16 = 7100;
/// The same names on every path, so `sirqtop diff` matches sender with sender and
/// receiver with receiver across paths.
const TX_DEV: &str = "sqdp-tx";
const RX_DEV: &str = "sqdp-rx";
const PARENT: &str = "sqdp-par";
const PARENT_PEER: &str = "sqdp-parp";
/// Upper bound on one path's sending, so a stuck path cannot hang the lab.
const SEND_LIMIT: Duration = Duration::from_secs(30);
/// Lets the last packets' softirqs finish before the snapshot.
const SETTLE: Duration = Duration::from_millis(300);
/// Datagrams sent before the capture starts, so caches, neighbour entries and socket
/// buffers are warm on every path alike.
const WARMUP: usize = 2_000;
const SENDER_CPU: usize = 0;

struct Args {
    out: PathBuf,
    packets: usize,
    size: usize,
    /// --filter: every path's capture counts only the matching packets.
    filter: Option<sirqtop::filter::Filter>,
}

fn parse_args() -> anyhow::Result<Args> {
    let pid = std::process::id();
    let mut a = Args {
        out: std::env::temp_dir().join(format!("sqt-dp-{pid}")),
        packets: 20_000,
        size: 64,
        filter: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(value()?),
            "--packets" => a.packets = value()?.parse().context("--packets")?,
            "--size" => a.size = value()?.parse().context("--size")?,
            "--filter" => a.filter = Some(sirqtop::filter::Filter::compile(&value()?)?),
            "-h" | "--help" => {
                println!(
                    "usage: datapath_compare [--out DIR] [--packets N] [--size BYTES] [--filter EXPR]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if a.packets == 0 || !(1..=1472).contains(&a.size) {
        bail!("--packets must be > 0 and --size 1..=1472 (one unfragmented datagram)");
    }
    Ok(a)
}

/// The namespaces one path built; deleting them deletes every device in them (a dummy
/// parent takes its macvlan/ipvlan children along wherever they are).
#[derive(Default)]
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: String) -> anyhow::Result<()> {
        // Leftovers of a crashed earlier run with the same pid would collide.
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        self.0.push(name.clone());
        lab::disable_ipv6(&name);
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// One data path, built and ready for traffic.
struct DataPath {
    name: &'static str,
    sender_ns: String,
    receiver_ns: String,
    dst: SocketAddr,
    /// Every namespace the path uses, for the in-kernel filter.
    filter: Vec<u32>,
    /// How the path had to differ from its description on this kernel.
    parent_note: Option<String>,
    _ns: Namespaces,
}

fn ns_name(tag: &str, role: &str) -> String {
    format!("sqt-dp-{tag}-{role}-{}", std::process::id())
}

fn sockaddr(addr: &str) -> anyhow::Result<SocketAddr> {
    format!("{addr}:{PORT}")
        .parse()
        .with_context(|| format!("address {addr}"))
}

/// Addresses, links up, and static neighbours both ways: no ARP in the measured traffic.
fn address_pair(s: &str, r: &str, subnet: &str) -> anyhow::Result<()> {
    let (addr_s, addr_r) = (format!("{subnet}.1"), format!("{subnet}.2"));
    lab::address(s, TX_DEV, &addr_s)?;
    lab::address(r, RX_DEV, &addr_r)?;
    lab::static_neighbours((s, TX_DEV, &addr_s), (r, RX_DEV, &addr_r))?;
    Ok(())
}

fn inodes(names: &[&str]) -> anyhow::Result<Vec<u32>> {
    names.iter().map(|n| Ok(lab::netns_inode(n)?)).collect()
}

/// (a) sender ns --veth--> receiver ns.
fn build_veth() -> anyhow::Result<DataPath> {
    let (s, r) = (ns_name("veth", "s"), ns_name("veth", "r"));
    let mut ns = Namespaces::default();
    ns.add(s.clone())?;
    ns.add(r.clone())?;
    ip(&[
        "link", "add", TX_DEV, "netns", &s, "type", "veth", "peer", "name", RX_DEV, "netns", &r,
    ])?;
    address_pair(&s, &r, "10.222.1")?;
    Ok(DataPath {
        name: "veth",
        filter: inodes(&[&s, &r])?,
        dst: sockaddr("10.222.1.2")?,
        sender_ns: s,
        receiver_ns: r,
        parent_note: None,
        _ns: ns,
    })
}

/// (b)/(d) two children of a dummy parent that lives in a third namespace; `kind` is the
/// `ip link add ... type` tail.
fn build_on_dummy(
    name: &'static str,
    tag: &str,
    subnet: &str,
    kind: &[&str],
) -> anyhow::Result<DataPath> {
    let (s, r, p) = (ns_name(tag, "s"), ns_name(tag, "r"), ns_name(tag, "p"));
    let mut ns = Namespaces::default();
    ns.add(p.clone())?;
    ns.add(s.clone())?;
    ns.add(r.clone())?;
    let parent_note = parent(&p)?;
    for (dev, into) in [(TX_DEV, &s), (RX_DEV, &r)] {
        let mut args = vec!["-n", p.as_str(), "link", "add", dev, "link", PARENT, "type"];
        args.extend_from_slice(kind);
        ip(&args)?;
        ip(&["-n", &p, "link", "set", dev, "netns", into])?;
    }
    address_pair(&s, &r, subnet)?;
    Ok(DataPath {
        name,
        filter: inodes(&[&s, &r, &p])?,
        dst: sockaddr(&format!("{subnet}.2"))?,
        sender_ns: s,
        receiver_ns: r,
        parent_note,
        _ns: ns,
    })
}

/// Creates the up parent device in `p`: a dummy, or where the kernel has no dummy
/// (CONFIG_DUMMY off) one end of a veth pair kept inside `p`. Local delivery between two
/// bridge-mode macvlans (or l2 ipvlans) never reaches the parent, so either serves; the
/// returned note says which was used.
fn parent(p: &str) -> anyhow::Result<Option<String>> {
    let dummy = ip(&["-n", p, "link", "add", PARENT, "type", "dummy"]);
    let note = match dummy {
        Ok(()) => None,
        Err(e) => {
            ip(&[
                "-n",
                p,
                "link",
                "add",
                PARENT,
                "type",
                "veth",
                "peer",
                "name",
                PARENT_PEER,
            ])?;
            ip(&["-n", p, "link", "set", PARENT_PEER, "up"])?;
            Some(format!("parent is a veth end, not a dummy ({e})"))
        }
    };
    ip(&["-n", p, "link", "set", PARENT, "up"])?;
    Ok(note)
}

/// (c) both ends in one namespace, over lo.
fn build_loopback() -> anyhow::Result<DataPath> {
    let l = ns_name("lo", "x");
    let mut ns = Namespaces::default();
    ns.add(l.clone())?;
    Ok(DataPath {
        name: "loopback",
        filter: inodes(&[&l])?,
        dst: sockaddr("127.0.0.1")?,
        sender_ns: l.clone(),
        receiver_ns: l,
        parent_note: None,
        _ns: ns,
    })
}

/// A UDP socket in the receiver namespace, drained by a thread until told to stop.
struct Receiver {
    stop: Arc<AtomicBool>,
    got: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Receiver {
    fn start(ns: &str, at: SocketAddr) -> anyhow::Result<Receiver> {
        let sock = lab::in_netns(ns, move || UdpSocket::bind(at))?
            .with_context(|| format!("bind {at}"))?;
        // A receive buffer that holds a whole burst: datagrams dropped at a full socket
        // would cost less softirq time than delivered ones and skew the comparison.
        let bytes: libc::c_int = 16 << 20;
        // SAFETY: setsockopt on an open socket with a correctly sized int option.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            eprintln!(
                "datapath_compare: SO_RCVBUFFORCE: {} (the receiver may drop)",
                std::io::Error::last_os_error()
            );
        }
        // A bounded wait, so the thread notices `stop` even when nothing arrives.
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(AtomicU64::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&got));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if sock.recv(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Receiver { stop, got, thread })
    }

    /// Datagrams the application has read so far.
    fn count(&self) -> u64 {
        self.got.load(Ordering::Relaxed)
    }

    /// Stops the reader; datagrams the application read in all.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.got.load(Ordering::Relaxed)
    }
}

/// Sends up to `n` datagrams from a thread inside `ns`, for at most SEND_LIMIT.
fn send(ns: &str, dst: SocketAddr, n: usize, size: usize) -> anyhow::Result<usize> {
    let sent = lab::in_netns(ns, move || -> std::io::Result<usize> {
        pin_to_cpu(SENDER_CPU);
        let s = UdpSocket::bind("0.0.0.0:0")?;
        let buf = vec![0x5au8; size];
        let end = Instant::now() + SEND_LIMIT;
        let mut sent = 0;
        while sent < n && Instant::now() < end {
            match s.send_to(&buf, dst) {
                Ok(_) => sent += 1,
                // A full device or socket queue: retry shortly, the count should be exact.
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOBUFS)
                        || e.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    std::thread::sleep(Duration::from_micros(50))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    })?;
    sent.with_context(|| format!("sending to {dst} in {ns}"))
}

/// Keeps the sender, and so the NET_RX softirqs its sends raise, on one CPU on every
/// path: a migration in the middle of one path's run would make it incomparable.
fn pin_to_cpu(cpu: usize) {
    if let Err(e) = lab::pin_to_cpu(cpu) {
        eprintln!("datapath_compare: pinning the sender to CPU {cpu}: {e} (left unpinned)");
    }
}

/// What one path's run produced.
struct Run {
    name: &'static str,
    file: PathBuf,
    cap: Capture,
    sent: usize,
    received: u64,
}

fn run_path(p: &DataPath, args: &Args) -> anyhow::Result<Run> {
    let rx = Receiver::start(&p.receiver_ns, p.dst)?;
    send(&p.sender_ns, p.dst, WARMUP, args.size)?;
    std::thread::sleep(SETTLE);
    let warm = rx.count();
    let cfg = Config {
        netns_filter: p.filter.clone(),
        filter: args.filter.clone(),
        ..Config::default()
    };
    let mut c = Collector::start(&cfg)?;
    let sent = send(&p.sender_ns, p.dst, args.packets, args.size);
    std::thread::sleep(SETTLE);
    let snap = c.snapshot();
    let meta = c.meta().clone();
    drop(c);
    let received = rx.finish().saturating_sub(warm);
    let (sent, snap) = (sent?, snap?);
    let cap = Capture::new(&meta, &snap);
    let file = args.out.join(format!("{}.json", p.name));
    Sink::open(Some(&file))?.write(&cap)?;
    Ok(Run {
        name: p.name,
        file,
        cap,
        sent,
        received,
    })
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.decimals$}"))
}

fn pair(a: Option<f64>, b: Option<f64>) -> String {
    format!("{} / {}", num(a, 0), num(b, 0))
}

fn summary(runs: &[Run]) {
    println!(
        "{:<9} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10} {:>10} {:>17} {:>19}",
        "path",
        "sent",
        "app rx",
        "tx veth",
        "enqueued",
        "rx pkts",
        "raises/pkt",
        "sirq ns/pkt",
        "veth hop p50/p99",
        "backlog wait p50/p99"
    );
    for r in runs {
        let t = Point::of_capture(&r.cap);
        let enqueued: u64 = r.cap.interfaces.iter().filter_map(|i| i.rx_enqueued).sum();
        println!(
            "{:<9} {:>7} {:>7} {:>8} {:>8} {:>8} {:>10} {:>10} {:>17} {:>19}",
            r.name,
            r.sent,
            r.received,
            num(t.tx_packets, 0),
            enqueued,
            num(t.rx_packets, 0),
            num(t.raises_per_packet, 3),
            num(t.softirq_ns_per_packet, 0),
            pair(t.veth_hop_p50_ns, t.veth_hop_p99_ns),
            pair(t.backlog_wait_p50_ns, t.backlog_wait_p99_ns),
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    println!(
        "datapath_compare: {} x {} B UDP per path, captures in {}",
        args.packets,
        args.size,
        args.out.display()
    );

    type Build = Box<dyn Fn() -> anyhow::Result<DataPath>>;
    let paths: [(&str, Build); 4] = [
        ("veth", Box::new(build_veth)),
        (
            "macvlan",
            Box::new(|| {
                build_on_dummy("macvlan", "mv", "10.222.2", &["macvlan", "mode", "bridge"])
            }),
        ),
        ("loopback", Box::new(build_loopback)),
        (
            "ipvlan",
            Box::new(|| build_on_dummy("ipvlan", "ipvl", "10.222.4", &["ipvlan", "mode", "l2"])),
        ),
    ];
    let mut runs = Vec::new();
    let mut remarks = Vec::new();
    for (name, build) in &paths {
        // Built, run and torn down one at a time: no path's traffic overlaps another's.
        let path = match build() {
            Ok(p) => p,
            // Only the veth baseline is required; another path the kernel cannot build is
            // reported and skipped.
            Err(e) if *name != "veth" => {
                remarks.push(format!("{name}: skipped ({e})"));
                continue;
            }
            Err(e) => return Err(e.context("building the veth path")),
        };
        if let Some(n) = &path.parent_note {
            remarks.push(format!("{name}: {n}"));
        }
        eprintln!("datapath_compare: {name}: sending");
        let run = run_path(&path, &args).with_context(|| format!("{name} path"))?;
        if Point::of_capture(&run.cap).rx_packets.unwrap_or(0.0) == 0.0 {
            remarks.push(format!("{name}: the capture counted no received packet"));
        }
        if run.sent < args.packets {
            remarks.push(format!(
                "{name}: only {} of {} datagrams sent within {SEND_LIMIT:?}",
                run.sent, args.packets
            ));
        }
        runs.push(run);
    }

    println!();
    summary(&runs);
    for s in &remarks {
        println!("{s}");
    }

    let Some((base, others)) = runs.split_first() else {
        bail!("no path ran");
    };
    for r in others {
        // Line the receive side of each path up with veth's receiver. lo is both sender
        // and receiver. A bridge-mode macvlan hands a unicast frame for a sibling to the
        // parent (`dev_forward_skb(vlan->lowerdev, skb)`; the parent's rx handler then
        // retargets it in the same NET_RX pass), so its enqueue, raise, receive and
        // softirq time are all counted on the parent, not on the receiving macvlan.
        let matches: Vec<(String, String)> = match r.name {
            "loopback" => vec![(RX_DEV.into(), "lo".into())],
            "macvlan" => vec![(RX_DEV.into(), PARENT.into())],
            _ => Vec::new(),
        };
        // A path whose receiver did not show up is still compared, only unpaired.
        let (mut d, matches) = match diff(&base.cap, &r.cap, &matches, None) {
            Ok(d) => (d, matches),
            Err(e) => {
                println!("\n({e}: comparing without it)");
                (diff(&base.cap, &r.cap, &[], None)?, Vec::new())
            }
        };
        d.before.source = format!("{} ({})", base.name, base.file.display());
        d.after.source = format!("{} ({})", r.name, r.file.display());
        println!("\n=== {} -> {} ===", base.name, r.name);
        print!("{}", render_table(&d));
        let flags: String = matches
            .iter()
            .map(|(b, a)| format!(" --match {b}={a}"))
            .collect();
        println!(
            "(the same table: sirqtop diff{flags} {} {})",
            shown(&base.file),
            shown(&r.file)
        );
    }
    Ok(())
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}
