//! What a Prometheus scrape of `sirqtop serve` costs on a big node (no root needed).
//!
//! usage: cargo run --release --example bench_scrape [-- --interfaces N] [--reps R]
//!
//! Builds a snapshot of N interfaces (default 2000: 1000 pods, a veth end each side, every
//! one with traffic, both latency histograms filled, pod and container names), publishes
//! it as `serve` does, and measures for each exposition variant: the body size, the number
//! of samples, the time to encode it, and a whole scrape over HTTP on loopback (median of
//! R, default 30). The baseline, measured in the same run, is the same snapshot written as
//! the JSON capture (`--json`): every ratio is against it.
//!
//! Then the server, before and after, each in a process of its own (for its RSS): "before"
//! is the tiny_http server sirqtop had (encoding at every scrape, no gzip), "after" is
//! `serve::server` (one encoding per snapshot, gzip once). For each: the time per scrape
//! with 1, 10 and 100 concurrent scrapers (a fresh snapshot published before each round,
//! as a refresh does), the encodings made, and peak RSS.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use sirqtop::model::{
    Availability, Backend, CaptureMeta, CpuStats, IfaceKey, Interface, Loss, PeerRef, ProbeReport,
    Snapshot,
};
use sirqtop::netns::ContainerRef;
use sirqtop::serve::exposition::{encode_openmetrics, encode_prometheus};
use sirqtop::serve::{Exposition, HistFamily, MetricsOptions, Published};

fn meta() -> CaptureMeta {
    let probes = ProbeReport::all_attached(Backend::Tracepoint, "tp_btf");
    CaptureMeta {
        kernel_release: "6.18.44".into(),
        availability: Availability::from_report(&probes),
        probes,
        started_at: UNIX_EPOCH,
        netns_filter: vec![],
        filter: None,
        ncpus: 2,
        bpf_stats: false,
    }
}

fn snapshot(n: usize) -> Snapshot {
    let mut interfaces = Vec::with_capacity(n);
    for k in 0..n as u32 {
        let pod = k / 2;
        let in_pod = k % 2 == 0;
        let netns = if in_pod {
            4_026_540_000 + pod
        } else {
            4_026_531_840
        };
        let mut i = Interface::new(IfaceKey {
            netns,
            ifindex: if in_pod { 2 } else { 100 + pod },
            cookie: u64::from(pod) + 2,
        });
        i.name = if in_pod {
            "eth0".into()
        } else {
            format!("cali{pod:011x}")
        };
        i.kind = Some("veth".into());
        i.netns_label = if in_pod {
            format!("team-{}/svc-{pod}-7f9c8d6b5-x2k4p", pod % 40)
        } else {
            "host".into()
        };
        if in_pod {
            let mut c = ContainerRef::new("containerd", &format!("{pod:064x}"), None);
            c.pod = Some(format!("svc-{pod}-7f9c8d6b5-x2k4p"));
            c.pod_namespace = Some(format!("team-{}", pod % 40));
            c.name = Some("app".into());
            i.container = Some(c);
        }
        i.peer = Some(PeerRef {
            netns: 0,
            ifindex: 0,
            cookie: 0,
            name: Some("peer".into()),
            netns_label: Some("host".into()),
        });
        let c = &mut i.counters;
        c.tx_packets = 1_000_000 + u64::from(k);
        c.tx_bytes = c.tx_packets * 900;
        c.rx_enqueued = 990_000 + u64::from(k);
        c.rx_packets = c.rx_enqueued;
        c.net_rx_raises = 300_000;
        c.softirq_ns = 2_000_000_000 + u64::from(k) * 1000;
        c.dropped = u64::from(k % 7);
        for v in [700, 1_500, 3_000, 6_000, 12_000, 50_000, 200_000, 1_000_000] {
            for _ in 0..3 {
                i.veth_hop.record(v);
                i.backlog_wait.record(v / 2);
            }
        }
        interfaces.push(i);
    }
    let mut cpus = vec![CpuStats::new(0), CpuStats::new(1)];
    for c in &mut cpus {
        for v in &mut c.vectors {
            v.raises = 1000;
            v.runs = 1000;
            v.run.record(5000);
            v.raise_to_run.record(2000);
        }
    }
    Snapshot {
        elapsed_ns: 3_600_000_000_000,
        interfaces,
        cpus,
        loss: Loss::default(),
        programs: vec![],
        raise_sites: vec![],
        path_hops: vec![],
        payers: vec![],
        slow: Default::default(),
        timing: Default::default(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut size = 0;
    let times = (0..reps)
        .map(|_| {
            let t = Instant::now();
            size = f();
            t.elapsed()
        })
        .collect();
    (median(times), size)
}

fn scrape(addr: &str, accept: &str) -> usize {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET /metrics HTTP/1.0\r\nAccept: {accept}\r\n\r\n").unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    body.len()
}

fn main() -> anyhow::Result<()> {
    let mut n = 2000;
    let mut reps = 30;
    let mut server_only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--interfaces" => n = args.next().unwrap_or_default().parse()?,
            "--reps" => reps = args.next().unwrap_or_default().parse()?,
            "--server" => server_only = args.next(),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    if let Some(which) = server_only {
        return server::run(&which, n);
    }
    let meta = Arc::new(meta());
    let snap = Arc::new(snapshot(n));

    let (json_t, json_size) = time(reps, || {
        let cap = sirqtop::output::json::Capture::new(&meta, &snap);
        serde_json::to_vec(&cap).unwrap().len()
    });
    println!(
        "{n} interfaces; baseline = the same snapshot as the --json capture: {:.1} ms, {} KiB",
        json_t.as_secs_f64() * 1e3,
        json_size / 1024
    );
    println!(
        "{:<34} {:>9} {:>9} {:>10} {:>9} {:>10} {:>9} {:>11}",
        "variant", "samples", "KiB", "encode ms", "x json", "scrape ms", "size x", "publish ms"
    );
    let variants: [(&str, MetricsOptions); 4] = [
        ("all families", MetricsOptions::default()),
        (
            "--no-histogram veth_hop,backlog_wait",
            MetricsOptions {
                no_histograms: vec![HistFamily::VethHop, HistFamily::BacklogWait],
                ..MetricsOptions::default()
            },
        ),
        (
            "--max-interfaces 200",
            MetricsOptions {
                max_interfaces: Some(200),
                ..MetricsOptions::default()
            },
        ),
        (
            "--max-interfaces 200 --no-histogram all",
            MetricsOptions {
                max_interfaces: Some(200),
                no_histograms: HistFamily::ALL.to_vec(),
            },
        ),
    ];
    for (name, opts) in variants {
        let expo = Exposition::new(opts);
        // Publishing folds the interfaces into series (once per refresh, not per scrape);
        // the first publish is the busiest (every interface new), the rest are steady.
        let (publish_t, _) = time(reps, || {
            expo.publish(Published {
                meta: Arc::clone(&meta),
                snap: Arc::clone(&snap),
            });
            0
        });
        let registry = expo.registry();
        let (om_t, _) = time(reps, || encode_openmetrics(&registry).unwrap().len());
        let text = encode_prometheus(&registry).unwrap();
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        let server = sirqtop::serve::server::Server::bind(
            "127.0.0.1:0".parse()?,
            sirqtop::serve::webconfig::WebConfig::open(None)?,
            sirqtop::serve::server::Limits::default(),
        )?;
        let addr = server.local_addr().to_string();
        let running = server.spawn(expo.clone())?;
        let (http_t, _) = time(reps, || {
            scrape(&addr, "application/openmetrics-text;version=1.0.0")
        });
        running.stop();
        println!(
            "{:<34} {:>9} {:>9} {:>10.1} {:>9.2} {:>10.1} {:>9.2} {:>11.1}",
            name,
            samples,
            text.len() / 1024,
            om_t.as_secs_f64() * 1e3,
            om_t.as_secs_f64() / json_t.as_secs_f64(),
            http_t.as_secs_f64() * 1e3,
            text.len() as f64 / json_size as f64,
            publish_t.as_secs_f64() * 1e3
        );
    }
    let expo = Exposition::new(MetricsOptions::default());
    expo.publish(Published {
        meta: Arc::clone(&meta),
        snap: Arc::clone(&snap),
    });
    let plain = encode_prometheus(&expo.registry())?;
    let (enc_t, _) = time(reps, || encode_prometheus(&expo.registry()).unwrap().len());
    let (gz_t, gz_len) = time(reps, || sirqtop::serve::cache::gzip(plain.as_bytes()).len());
    let (gz6_t, gz6_len) = time(reps, || {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(plain.as_bytes()).unwrap();
        e.finish().unwrap().len()
    });
    println!(
        "gzip level 6 (for comparison): {:.0} KiB in {:.1} ms",
        gz6_len as f64 / 1024.0,
        gz6_t.as_secs_f64() * 1e3
    );
    println!(
        "\nall families, Prometheus text: plain {:.1} MiB, gzip {:.0} KiB (1/{:.0}); per refresh: \
         encode {:.1} ms + gzip {:.1} ms, once however many scrape it",
        plain.len() as f64 / 1048576.0,
        gz_len as f64 / 1024.0,
        plain.len() as f64 / gz_len as f64,
        enc_t.as_secs_f64() * 1e3,
        gz_t.as_secs_f64() * 1e3
    );
    println!(
        "{:<34} {:>11} {:>9} {:>12} {:>12} {:>10} {:>9}",
        "server (all families)",
        "scrapers",
        "scrapes",
        "median ms",
        "p90 ms",
        "encodings",
        "peak RSS"
    );
    let me = std::env::current_exe()?;
    for which in ["before", "after-plain", "after-gzip"] {
        let out = std::process::Command::new(&me)
            .args(["--interfaces", &n.to_string(), "--server", which])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{which}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// One server, before or after, in this process: scraped by 1, 10 and 100 concurrent
/// scrapers, a new snapshot published before each round.
mod server {
    use super::*;

    /// The server sirqtop had: tiny_http, one thread, the exposition encoded per scrape.
    fn tiny_http(expo: Exposition) -> anyhow::Result<(String, std::thread::JoinHandle<()>)> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("{e}"))?;
        let addr = server.server_addr().to_string();
        let t = std::thread::spawn(move || {
            for req in server.incoming_requests() {
                if req.url() == "/quit" {
                    let _ = req.respond(tiny_http::Response::empty(200));
                    return;
                }
                let text = encode_prometheus(&expo.registry()).unwrap_or_default();
                let _ = req.respond(tiny_http::Response::from_string(text));
            }
        });
        Ok((addr, t))
    }

    fn get(addr: &str, path: &str, gzip: bool) -> usize {
        let mut s = TcpStream::connect(addr).expect("connect");
        let enc = if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        write!(s, "GET {path} HTTP/1.0\r\n{enc}\r\n").unwrap();
        // Counted, not kept: the peak RSS is the server's, not 100 scrapers' copies.
        let mut buf = vec![0u8; 64 * 1024];
        let mut len = 0;
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            len += k;
        }
        len
    }

    fn peak_rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmHWM:")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    pub fn run(which: &str, n: usize) -> anyhow::Result<()> {
        let meta = Arc::new(meta());
        let snap = Arc::new(snapshot(n));
        let expo = Exposition::new(MetricsOptions::default());
        let publish = || {
            expo.publish(Published {
                meta: Arc::clone(&meta),
                snap: Arc::clone(&snap),
            })
        };
        publish();
        let (addr, stop): (String, Box<dyn FnOnce()>) = if which == "before" {
            let (addr, t) = tiny_http(expo.clone())?;
            let a = addr.clone();
            (
                addr,
                Box::new(move || {
                    get(&a, "/quit", false);
                    let _ = t.join();
                }),
            )
        } else {
            let server = sirqtop::serve::server::Server::bind(
                "127.0.0.1:0".parse()?,
                sirqtop::serve::webconfig::WebConfig::open(None)?,
                sirqtop::serve::server::Limits {
                    // Every scraper of the largest round may do work: none is refused.
                    max_requests: 100,
                    ..Default::default()
                },
            )?;
            let addr = server.local_addr().to_string();
            let running = server.spawn(expo.clone())?;
            (addr, Box::new(move || running.stop()))
        };
        let gzip = which == "after-gzip";
        for scrapers in [1usize, 10, 100] {
            let per = match scrapers {
                1 => 10,
                10 => 3,
                _ => 1,
            };
            publish();
            let before = expo.encodings_made();
            let times: Vec<Duration> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..scrapers)
                    .map(|_| {
                        sc.spawn(|| {
                            (0..per)
                                .map(|_| {
                                    let t = Instant::now();
                                    get(&addr, "/metrics", gzip);
                                    t.elapsed()
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            let mut sorted = times.clone();
            sorted.sort();
            let encodings = if which == "before" {
                // One per scrape, by construction.
                sorted.len() as u64
            } else {
                expo.encodings_made() - before
            };
            println!(
                "{:<34} {:>11} {:>9} {:>12.1} {:>12.1} {:>10} {:>9}",
                which,
                scrapers,
                sorted.len(),
                sorted[sorted.len() / 2].as_secs_f64() * 1e3,
                sorted[sorted.len() * 9 / 10].as_secs_f64() * 1e3,
                encodings,
                format!("{} MiB", peak_rss_kib() / 1024)
            );
        }
        stop();
        Ok(())
    }
}
