//! User-space cost of sirqtop's snapshot path, with synthetic data (no BPF, no root).
//!
//! usage: target/release/examples/bench_userspace [--ifaces N] [--cpus C] [--rounds R] [--json]
//!
//! Measures, on one core (single thread):
//! - rss: peak resident memory (VmHWM) after building what one `--json` capture holds at
//!   its end for N interfaces (the collector's per-read maps, the Snapshot, the
//!   `output::json::Capture`, the JSON streamed out), then after adding what a dashboard
//!   also holds (a second Snapshot and the delta);
//! - merge: folding per-CPU counter records into per-interface sums, as the collector does
//!   for every key of the per-CPU `iface_counters` map (`IfaceCounters::merge`), plus the
//!   per-CPU softirq histograms (`VectorStats::merge`); records/s;
//! - stream: a per-packet event stream consumed in user space (hash lookup by interface
//!   key, counter increment, log2 histogram record): what a ring-buffer design would have
//!   to sustain; events/s;
//! - snapshot path for N interfaces: `Snapshot::delta`, `Capture::new`, JSON
//!   serialization; ms per snapshot and interfaces/s.
//!
//! Human-readable lines go to stderr; with --json one JSON object goes to stdout.
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use sirqtop::model::{
    Availability, Backend, CaptureMeta, CpuStats, Histogram, Hook, IfaceCounters, IfaceKey,
    Interface, Loss, PeerRef, ProbeReport, ProgramCost, Snapshot, VectorStats,
};
use sirqtop::output::json::Capture;

struct Opts {
    ifaces: u32,
    cpus: u32,
    rounds: u32,
    json: bool,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        ifaces: 10_000,
        cpus: 2,
        rounds: 15,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u32> {
            let v = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .with_context(|| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--ifaces" => o.ifaces = num("--ifaces")?.max(1),
            "--cpus" => o.cpus = num("--cpus")?.max(1),
            "--rounds" => o.rounds = num("--rounds")?.max(1),
            "--json" => o.json = true,
            "-h" | "--help" => {
                eprintln!("usage: bench_userspace [--ifaces N] [--cpus C] [--rounds R] [--json]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_userspace: {e:#}");
        std::process::exit(1);
    }
}

/// A deterministic xorshift generator: synthetic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn key(i: u32) -> IfaceKey {
    // Two interfaces per namespace (a pod's eth0 and its host-side veth would differ in
    // netns; the shape does not matter for the cost, the count does).
    IfaceKey {
        netns: 4_026_531_840 + i / 2,
        ifindex: 2 + i % 2,
        cookie: 4096 + u64::from(i / 2),
    }
}

/// A realistic interface: names, a peer, counters and two histograms with ~10 buckets.
fn interface(i: u32, scale: u64, rng: &mut Rng) -> Interface {
    let mut it = Interface::new(key(i));
    it.name = if i.is_multiple_of(2) {
        "eth0".into()
    } else {
        format!("veth{:08x}", i)
    };
    it.kind = Some("veth".into());
    it.netns_name = Some(format!("pod-{:05}", i / 2));
    it.netns_label = format!("pod-{:05}", i / 2);
    it.peer = Some(PeerRef {
        netns: 4_026_531_840,
        ifindex: 1000 + i,
        cookie: 1,
        name: Some(format!("veth{:08x}", i ^ 1)),
        netns_label: Some("host".into()),
    });
    it.counters = IfaceCounters {
        tx_packets: 1000 * scale,
        tx_bytes: 1_500_000 * scale,
        rx_enqueued: 1000 * scale,
        rx_packets: 1000 * scale,
        net_rx_raises: 100 * scale,
        softirq_ns: 2_000_000 * scale,
        ..IfaceCounters::default()
    };
    for _ in 0..(20 * scale) {
        it.veth_hop.record(500 + rng.next() % 100_000);
        it.backlog_wait.record(200 + rng.next() % 50_000);
    }
    it
}

fn cpu_stats(cpus: u32, scale: u64, rng: &mut Rng) -> Vec<CpuStats> {
    (0..cpus)
        .map(|c| {
            let mut s = CpuStats::new(c);
            for v in s.vectors.iter_mut() {
                v.raises = 1000 * scale;
                v.runs = 900 * scale;
                v.run_ns = 3_000_000 * scale;
                for _ in 0..(10 * scale) {
                    v.run.record(1000 + rng.next() % 200_000);
                    v.raise_to_run.record(100 + rng.next() % 20_000);
                }
            }
            s
        })
        .collect()
}

fn snapshot(o: &Opts, scale: u64, rng: &mut Rng) -> Snapshot {
    let programs = Hook::ALL
        .iter()
        .map(|h| ProgramCost {
            name: format!("tp_{h}"),
            hook: *h,
            backend: Backend::Tracepoint,
            run_count: None,
            run_time_ns: None,
        })
        .collect();
    Snapshot {
        elapsed_ns: 5_000_000_000 * scale,
        interfaces: (0..o.ifaces).map(|i| interface(i, scale, rng)).collect(),
        cpus: cpu_stats(o.cpus, scale, rng),
        loss: Loss::default(),
        programs,
        raise_sites: Vec::new(),
        path_hops: vec![],
        payers: vec![],
        slow: Default::default(),
        timing: Default::default(),
    }
}

fn meta(o: &Opts) -> CaptureMeta {
    let probes = ProbeReport::all_attached(Backend::Tracepoint, "tp_btf");
    CaptureMeta {
        kernel_release: "synthetic".into(),
        probes,
        availability: Availability::all(),
        started_at: SystemTime::now(),
        netns_filter: vec![],
        filter: None,
        ncpus: o.cpus,
        bpf_stats: false,
    }
}

/// Peak and current resident set size of this process, KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Counts what serde writes, keeps nothing (the real capture streams to stdout or a file).
struct CountingWriter(usize);

impl std::io::Write for CountingWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `f` `rounds` times, returns the median wall time of one call.
fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> Duration {
    let v = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    median(v)
}

fn run() -> Result<()> {
    let o = parse()?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let n = o.ifaces as usize;

    // ---- rss, part 1: what `sirqtop --json` holds at its end -----------------------------
    // The collector's per-read maps (counters, histograms, identities), the Snapshot built
    // from them, the Capture, and the JSON streamed to a writer (as Sink does to stdout).
    let (hwm_start, _) = rss_kib();
    let m = meta(&o);
    let later = snapshot(&o, 3, &mut rng);
    let counters: HashMap<IfaceKey, IfaceCounters> = later
        .interfaces
        .iter()
        .map(|i| (i.key, i.counters))
        .collect();
    let hists: HashMap<IfaceKey, (Histogram, Histogram)> = later
        .interfaces
        .iter()
        .map(|i| (i.key, (i.veth_hop, i.backlog_wait)))
        .collect();
    type Identity = (
        String,
        Option<String>,
        Option<String>,
        String,
        Option<PeerRef>,
    );
    let known: HashMap<IfaceKey, Identity> = later
        .interfaces
        .iter()
        .map(|i| {
            let id = (
                i.name.clone(),
                i.kind.clone(),
                i.netns_name.clone(),
                i.netns_label.clone(),
                i.peer.clone(),
            );
            (i.key, id)
        })
        .collect();
    let cap = Capture::new(&m, &later);
    let mut out = CountingWriter(0);
    serde_json::to_writer_pretty(&mut out, &cap)?;
    let json_bytes = out.0;
    let (hwm_capture, _) = rss_kib();
    assert_eq!(cap.interfaces.len(), n);
    black_box((&counters, &hists, &known));
    drop((counters, hists, known, cap));

    // ---- rss, part 2: what a dashboard holds: two snapshots, their delta, a Capture ------
    let earlier = snapshot(&o, 1, &mut rng);
    let delta = later.delta(&earlier);
    let cap = Capture::new(&m, &delta);
    let (hwm, rss) = rss_kib();

    // ---- merge: per-CPU records -> per-interface sums (collector's map read) -------------
    let per_cpu: Vec<(IfaceKey, Vec<IfaceCounters>)> = (0..o.ifaces)
        .map(|i| {
            let v = (0..o.cpus)
                .map(|c| IfaceCounters {
                    tx_packets: rng.next() % 1000 + c as u64,
                    tx_bytes: rng.next() % 1_000_000,
                    rx_enqueued: rng.next() % 1000,
                    rx_packets: rng.next() % 1000,
                    net_rx_raises: rng.next() % 100,
                    softirq_ns: rng.next() % 1_000_000,
                    ..IfaceCounters::default()
                })
                .collect();
            (key(i), v)
        })
        .collect();
    let merge = time(o.rounds, || {
        let mut out: HashMap<IfaceKey, IfaceCounters> = HashMap::with_capacity(n);
        for (k, v) in &per_cpu {
            let mut sum = IfaceCounters::default();
            for c in v {
                sum.merge(c);
            }
            out.insert(*k, sum);
        }
        out
    });
    let merge_records = (o.ifaces as u64 * o.cpus as u64) as f64;
    let merge_rate = merge_records / merge.as_secs_f64();

    let vec_records: Vec<VectorStats> = later.cpus.iter().flat_map(|c| c.vectors).collect();
    let vmerge = time(o.rounds.max(200), || {
        let mut t = VectorStats::default();
        for v in &vec_records {
            t.merge(v);
        }
        t
    });
    let vmerge_rate = vec_records.len() as f64 / vmerge.as_secs_f64();

    // ---- stream: per-packet events consumed in user space ---------------------------------
    const EVENTS: usize = 2_000_000;
    let events: Vec<(IfaceKey, u64)> = (0..EVENTS)
        .map(|_| {
            (
                key((rng.next() % o.ifaces as u64) as u32),
                300 + rng.next() % 100_000,
            )
        })
        .collect();
    let mut table: HashMap<IfaceKey, Interface> = (0..o.ifaces)
        .map(|i| (key(i), Interface::new(key(i))))
        .collect();
    let stream = time(o.rounds.min(7), || {
        for (k, lat) in &events {
            if let Some(i) = table.get_mut(k) {
                i.counters.rx_packets += 1;
                i.veth_hop.record(*lat);
            }
        }
    });
    let stream_rate = EVENTS as f64 / stream.as_secs_f64();
    drop(table);

    // ---- the snapshot path: delta, Capture::new, JSON --------------------------------------
    let t_delta = time(o.rounds, || later.delta(&earlier));
    let t_capture = time(o.rounds, || Capture::new(&m, &delta));
    let t_json = time(o.rounds, || {
        let mut w = CountingWriter(0);
        serde_json::to_writer_pretty(&mut w, &cap)
            .map(|_| w.0)
            .unwrap_or(0)
    });
    let total = t_delta + t_capture + t_json;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut r: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    r.insert("ifaces", o.ifaces.into());
    r.insert("cpus", o.cpus.into());
    r.insert("rss_capture_hwm_kib", hwm_capture.into());
    r.insert("rss_hwm_kib", hwm.into());
    r.insert("rss_kib", rss.into());
    r.insert("rss_hwm_at_start_kib", hwm_start.into());
    r.insert("json_bytes", json_bytes.into());
    r.insert("merge_records_per_s", merge_rate.round().into());
    r.insert("vector_merge_records_per_s", vmerge_rate.round().into());
    r.insert("stream_events_per_s", stream_rate.round().into());
    r.insert("delta_ms", ms(t_delta).into());
    r.insert("capture_new_ms", ms(t_capture).into());
    r.insert("json_ms", ms(t_json).into());
    r.insert("snapshot_path_ms", ms(total).into());
    r.insert(
        "snapshot_ifaces_per_s",
        (o.ifaces as f64 / total.as_secs_f64()).round().into(),
    );

    eprintln!(
        "bench_userspace: {} synthetic interfaces, {} CPUs, median of {} rounds",
        n, o.cpus, o.rounds
    );
    eprintln!(
        "  rss peak, --json capture  {:>10.1} MiB  (at start {:.1} MiB; {:.1} MiB of JSON streamed)",
        hwm_capture as f64 / 1024.0,
        hwm_start as f64 / 1024.0,
        json_bytes as f64 / 1048576.0
    );
    eprintln!(
        "  rss peak, dashboard-like  {:>10.1} MiB  (+ a second Snapshot and the delta)",
        hwm as f64 / 1024.0
    );
    eprintln!(
        "  per-CPU counter merge     {:>10.1} M records/s",
        merge_rate / 1e6
    );
    eprintln!(
        "  per-CPU softirq merge     {:>10.1} M records/s",
        vmerge_rate / 1e6
    );
    eprintln!(
        "  event stream (if per-pkt) {:>10.1} M events/s",
        stream_rate / 1e6
    );
    eprintln!("  Snapshot::delta           {:>10.2} ms", ms(t_delta));
    eprintln!("  Capture::new              {:>10.2} ms", ms(t_capture));
    eprintln!("  JSON serialization        {:>10.2} ms", ms(t_json));
    eprintln!(
        "  snapshot path total       {:>10.2} ms  ({:.2} M interfaces/s)",
        ms(total),
        o.ifaces as f64 / total.as_secs_f64() / 1e6
    );
    if o.json {
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}
