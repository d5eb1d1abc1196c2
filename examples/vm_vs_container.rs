//! The article behind sirqtop, reproduced on one machine: the same HTTP service reached
//! the way a VM is (one veth, its "NIC") and the way a Kubernetes pod is (NodePort DNAT
//! on the node, then a calico-like routed veth, or a bridge), through a macvlan, and through
//! the other remedies the article names, side by side with the routed veth they replace.
//! Each runs the same closed-loop HTTP/1.1 keep-alive load while
//! sirqtop captures, and the article's table comes out: response time, requests/s, the
//! change against `vm`, and per request the backlog enqueues, NET_RX raises and runs,
//! softirq time, with the paths the packets crossed.
//!
//!     sudo cargo run --release --example vm_vs_container [-- --json] [--secs S]
//!         [--conns N] [--work-us U]
//!
//!   vm         client <-> server over one veth pair
//!   container  client <-> node (veth as the NIC), DNAT 10.X.1.254:30080 -> pod:8080 on
//!              the node, routed to the pod over a veth with a /32 route and proxy ARP
//!   bridge     the same, the pod behind a Linux bridge on the node
//!   macvlan    the pod on a bridge-mode macvlan of the node's NIC (no DNAT, no veth)
//!   ipvlan     the same with an L2 ipvlan, where the kernel has ipvlan (else skipped,
//!              with the reason)
//!
//! The remedies (client and server are pods; no DNAT), each where the kernel has it:
//!   routed     client --veth-- node --veth-- server, routed by the node: the baseline
//!   ebpf       the same with Cilium-style eBPF host routing: a tc program on each host
//!              veth's ingress sends the packets into the other pod with bpf_redirect_peer
//!   ipvlan-l3  the server on an L3 ipvlan of the node's NIC, the client on its wire
//!   netkit     `routed` with netkit pairs (Linux 6.7+) instead of veth
//!   ipip       pods on two nodes joined by an IPIP tunnel (Calico's IPIP mode)
//!   vxlan      the same over VXLAN
//!
//! The server runs on CPU 1 and does `--work-us` (default 10) of CPU work per request,
//! the load generator's `--conns` (default 4) connections on CPU 0, so that the server's
//! CPU is saturated, as in the article: what the kernel spends on the packets' softirqs
//! on that CPU is taken from the service. Each row runs `--secs` (default 5) after a
//! warm-up of a quarter of that. Everything it builds (namespaces `sqt-vc*-<pid>`) is
//! removed after each row, also on error; traffic only goes to addresses inside them
//! (10.207-211.0.0/16 and 10.216-219.0.0/16).
//!
//! Under a hypervisor (QEMU, Firecracker: the cpuinfo flag) only the per-request counts
//! (enqueues, raises, runs, hops) compare with bare metal, not the times; the table says so.
use anyhow::{bail, Context};
use sirqtop::lab::article::{self, Load};

fn parse_args() -> anyhow::Result<(bool, Load)> {
    let mut json = false;
    let mut l = Load::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--json" => json = true,
            "--secs" => l.secs = value()?.parse().context("--secs")?,
            "--conns" => l.conns = value()?.parse().context("--conns")?,
            "--work-us" => l.work_us = value()?.parse().context("--work-us")?,
            "-h" | "--help" => {
                println!("usage: vm_vs_container [--json] [--secs S] [--conns N] [--work-us U]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if l.secs.is_nan() || l.secs <= 0.0 || l.conns == 0 {
        bail!("--secs and --conns must be more than 0");
    }
    Ok((json, l))
}

fn main() -> anyhow::Result<()> {
    let (json, load) = parse_args()?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces and BPF): run it with sudo");
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("vm_vs_container: one CPU: server and load generator share it");
    }
    let report = article::run(&load, |name| {
        if !json {
            eprintln!("vm_vs_container: {name} ...");
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} connections, {} µs of work per request, {} s per path, kernel {}\n",
        report.conns, report.work_us, report.secs, report.kernel
    );
    // Receives the kernel counted that sirqtop could not see (no hook for that receive
    // path on this kernel): a column only when there are any.
    let unseen = report
        .rows
        .iter()
        .any(|r| r.per_request.rx_unseen.is_some_and(|u| u > 0.0));
    println!(
        "{:<10} {:>9} {:>8} {:>9} {:>8} | per request: {:>8} {:>8} {:>8} {:>10}{}",
        "path",
        "RT avg",
        "vs vm",
        "req/s",
        "vs vm",
        "enqueues",
        "raises",
        "runs",
        "softirq",
        if unseen { "   unseen" } else { "" }
    );
    for r in &report.rows {
        let change = |p: Option<f64>| p.map_or("—".to_string(), |p| format!("{p:+.0}%"));
        let u = match (unseen, r.per_request.rx_unseen) {
            (false, _) => String::new(),
            (true, Some(u)) => format!(" {u:>8.2}"),
            (true, None) => format!(" {:>8}", "—"),
        };
        println!(
            "{:<10} {:>6.0} µs {:>8} {:>9.0} {:>8} | {:>21.2} {:>8.2} {:>8.2} {:>7.0} ns{u}",
            r.path,
            r.rt_avg_us,
            change(r.rt_change_pct),
            r.qps,
            change(r.qps_change_pct),
            r.per_request.backlog_enqueues,
            r.per_request.net_rx_raises,
            r.per_request.net_rx_runs,
            r.per_request.softirq_ns,
        );
    }
    if unseen {
        println!(
            "\nunseen: receives per request the devices' own statistics counted and sirqtop \
             could not see on this kernel (see kernel.warnings in --json)"
        );
    }
    println!("\npaths crossed (client → server, and back), per packet:");
    for r in &report.rows {
        for p in r.paths.iter().filter(|p| p.packets * 20 >= r.requests) {
            println!(
                "  {:<10} {} hop{} {:<40} {:>5.2} enqueues {:>9} softirq  p50 {}",
                r.path,
                p.hops,
                if p.hops == 1 { " " } else { "s" },
                article::chain(p),
                p.backlog_enqueues_per_packet,
                p.softirq_ns_per_packet
                    .map_or("—".to_string(), |v| format!("{v:.0} ns")),
                p.latency
                    .p50
                    .map_or("—".to_string(), |v| format!("{:.1} µs", v as f64 / 1e3)),
            );
        }
    }
    for s in &report.skipped {
        println!("\nskipped {}: {}", s.path, s.reason);
    }
    if report.virtualized {
        println!(
            "\nunder a hypervisor: only the per-request counts (enqueues, raises, runs, hops) \
             mean something here, not the times"
        );
    }
    Ok(())
}
