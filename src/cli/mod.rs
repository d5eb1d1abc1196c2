//! Command line: flags, value parsers, and dispatch to the capture, the dashboard, the
//! diff ([`diff`]) and the generated docs (shell completions, man page).

pub mod diff;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::collector::Config;
use crate::netns::NetnsSelector;
use crate::output::json::{Capture, Sink};
use crate::probe::ProbeMode;

const EXAMPLES: &str = "\
Examples:
  sudo sirqtop                                         live dashboard, whole node
  sudo sirqtop --json --duration 5s                    5 s capture of the whole node as JSON
  sudo sirqtop --json -d 10s --netns pod-a -o a.json   one namespace, written atomically to a.json
  sudo sirqtop --json --probe kprobe                   force the kprobe backend
  sudo sirqtop --netns pid:4242 --netns /run/netns/b   dashboard scoped to two namespaces
  sirqtop diff before.json after.json                  compare two captures
  sirqtop completions bash > /etc/bash_completion.d/sirqtop
  sirqtop man > /usr/local/share/man/man1/sirqtop.1";

/// What container networking costs this node: softirqs, CPU and per-hop latency per
/// interface and network namespace (eBPF).
#[derive(Debug, Parser)]
#[command(name = "sirqtop", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// One-shot capture printed as JSON (schema v1) instead of the live dashboard.
    #[arg(long)]
    pub json: bool,

    /// Length of a --json capture (default 5s; e.g. 500ms, 2m). Ctrl-C ends it early.
    /// With --interval there is no default: it runs until Ctrl-C.
    #[arg(short, long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Write the JSON capture to FILE (atomically: temp file + rename) instead of stdout.
    #[arg(
        short,
        long,
        value_name = "FILE",
        requires = "json",
        conflicts_with = "interval"
    )]
    pub output: Option<PathBuf>,

    /// Only count interfaces in this network namespace: an `ip netns` name, a path
    /// (/proc/PID/ns/net, /run/netns/X, /var/run/docker/netns/X), pid:PID, or an inode.
    /// Repeatable. Filtering happens in the kernel.
    #[arg(short, long, value_name = "NS", global = true)]
    pub netns: Vec<NetnsSelector>,

    /// Probe backend for the veth transmit, backlog enqueue and softirq raise hooks.
    /// auto picks per hook the cheapest that works: tracepoint, then fentry, then kprobe.
    #[arg(long, value_name = "BACKEND", default_value = "auto", value_parser = parse_probe, global = true)]
    pub probe: ProbeMode,

    /// Dashboard refresh interval (default 1s); with --json, print one JSON document per
    /// interval (NDJSON) until --duration or Ctrl-C; with serve, how often the served
    /// snapshot is refreshed.
    #[arg(short, long, value_name = "DUR", value_parser = parse_duration, global = true)]
    pub interval: Option<Duration>,

    /// Turn on kernel BPF run-time statistics to report sirqtop's own cost per program
    /// (overhead.programs). Off by default: the kernel's accounting itself costs throughput.
    #[arg(long, global = true)]
    pub bpf_stats: bool,

    /// Counters only, for always-on use: packets, bytes and NET_RX raises per interface and
    /// raises per CPU. No per-packet latency tracking and no softirq entry/exit hooks, so
    /// veth_hop, backlog_wait, softirq_ns and per-CPU runs are null. Cheapest mode.
    #[arg(long, global = true)]
    pub lite: bool,

    /// Count only packets matching this tcpdump expression (e.g. 'tcp port 8080', 'host
    /// 10.0.0.7', 'not port 22'; quote it as for tcpdump). Compiled by libpcap, evaluated
    /// in the kernel once per packet where sirqtop first sees it.
    #[arg(long, value_name = "EXPR", conflicts_with = "lite", global = true)]
    pub filter: Option<String>,

    /// Do not record the kernel stacks that raise NET_RX/NET_TX softirqs (raise_sites).
    #[arg(long, conflicts_with = "stack_sample", global = true)]
    pub no_stacks: bool,

    /// Also attach napi:napi_poll: polls per NAPI device (napi_polls), raises attributed at
    /// the poll, NET_RX time split at poll ends. One more program per NET_RX run.
    #[arg(long, conflicts_with = "lite", global = true)]
    pub napi_polls: bool,

    /// Slow softirqs: each softirq run, or raise -> run delay, at least this long is an
    /// event (slow_softirqs, the dashboard's `L` view). The histograms stay exact for all.
    #[arg(long, value_name = "DUR", default_value = "10ms", value_parser = parse_duration, global = true)]
    pub slow: Duration,

    /// Record the stack of every Nth NET_RX/NET_TX raise per CPU (default 1024; 1 = every
    /// raise, exact but costly under a packet flood).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub stack_sample: Option<u32>,

    /// Time every skb for the latency histograms while a CPU starts fewer than N new
    /// skbs per second; above that, time 1 in 2^k of them, each sample weighted 2^k, so
    /// the histograms still estimate every packet (clock reads are most of the per-packet
    /// cost under a flood). Counts, paths and softirq time stay exact. 0 = time every skb.
    #[arg(long, value_name = "N", default_value_t = crate::collector::DEFAULT_TIMING_RATE, global = true)]
    pub timing_rate: u32,

    /// Read the host's /proc, /run/netns, /var/run/docker/netns, /var/log/pods and
    /// /var/lib/docker/containers under DIR (sirqtop in a container with the host's
    /// filesystem mounted there).
    #[arg(long, value_name = "DIR", global = true)]
    pub host_root: Option<PathBuf>,

    /// dockerd's --data-root (default /var/lib/docker), where container names are read;
    /// a host path (under --host-root when given).
    #[arg(long, value_name = "DIR", global = true)]
    pub docker_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare two --json captures side by side, matched by interface.
    Diff(DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
    /// Attach once and serve /metrics (OpenMetrics or Prometheus text) and /healthz until
    /// SIGTERM.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback only unless told otherwise: 0.0.0.0:PORT (or
    /// [::]:PORT) serves every interface.
    #[arg(long, value_name = "ADDR:PORT", default_value = crate::serve::DEFAULT_LISTEN, value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,
    /// Keep the N interfaces with the most softirq time as their own series; the rest are
    /// summed into one interface="_other" series.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_interfaces: Option<u64>,
    /// Leave out a histogram family: veth_hop, backlog_wait, softirq_run, softirq_delay,
    /// or all. Repeatable.
    #[arg(long, value_name = "FAMILY", value_parser = parse_hist_families)]
    pub no_histogram: Vec<Vec<crate::serve::HistFamily>>,
    /// How long the series of a gone interface stay (its last numbers), default 5m.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    pub forget_after: Duration,
    /// Web configuration file in the Prometheus exporter-toolkit format (TLS, client
    /// certificates, basic auth, headers), as node_exporter reads it.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Scrapes answered at once; more get 503.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = crate::serve::server::DEFAULT_MAX_REQUESTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_requests: usize,
    /// Connections open at once; more are closed as they come.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = crate::serve::server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
}

fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if s.starts_with(':') {
        return Err(format!(
            "'{s}' has no address: give 127.0.0.1{s} (this host only) or 0.0.0.0{s} (every interface)"
        ));
    }
    s.parse()
        .map_err(|_| format!("invalid listen address '{s}' (expected e.g. 127.0.0.1:9864)"))
}

fn parse_hist_families(s: &str) -> Result<Vec<crate::serve::HistFamily>, String> {
    if s == "all" {
        return Ok(crate::serve::HistFamily::ALL.to_vec());
    }
    s.split(',').map(|f| f.trim().parse()).collect()
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The capture taken before the change.
    pub before: PathBuf,
    /// The capture taken after the change.
    pub after: PathBuf,
    /// Treat interface BEFORE in the first capture as AFTER in the second (name or
    /// netns-label/name). Repeatable.
    #[arg(long = "match", value_name = "BEFORE=AFTER")]
    pub matches: Vec<String>,
    /// Print the diff as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also show the totals per request, given each capture's request count (e.g. from
    /// the load generator): before=N,after=M.
    #[arg(long, value_name = "before=N,after=M")]
    pub per: Option<String>,
}

/// A duration as humantime reads it (`500ms`, `5s`, `2m`, `1h30m`, `2min`, ...), plus
/// what users of earlier versions rely on: a bare number of seconds (`2`, `0.5`) and a
/// fraction with one unit (`1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("invalid duration '{s}' (use e.g. 500ms, 5s, 2m)");
    let d = if let Ok(secs) = t.parse::<f64>() {
        Duration::try_from_secs_f64(secs).map_err(|_| bad())?
    } else if t.contains('.') {
        // humantime takes whole numbers only: scale one unit by the fraction.
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let one = humantime::parse_duration(&format!("1{unit}")).map_err(|_| bad())?;
        Duration::try_from_secs_f64(one.as_secs_f64() * n).map_err(|_| bad())?
    } else {
        humantime::parse_duration(t).map_err(|_| bad())?
    };
    if d.is_zero() || d > Duration::from_secs(7 * 86_400) {
        return Err(format!(
            "invalid duration '{s}' (must be more than 0 and at most 7 days)"
        ));
    }
    Ok(d)
}

fn parse_probe(s: &str) -> Result<ProbeMode, String> {
    s.parse()
}

impl Cli {
    fn config(&self) -> anyhow::Result<Config> {
        let mut netns_filter = Vec::new();
        for sel in &self.netns {
            let ino = sel.resolve()?;
            if !netns_filter.contains(&ino) {
                netns_filter.push(ino);
            }
        }
        Ok(Config {
            probe: self.probe,
            netns_filter,
            bpf_stats: self.bpf_stats,
            lite: self.lite,
            napi_polls: self.napi_polls,
            timing_rate: self.timing_rate,
            // Each mode sets how long it shows gone interfaces: serve and the dashboard.
            forget_gone_after: None,
            slow: Some(self.slow),
            // Compiled before anything is attached: a bad expression touches nothing.
            filter: self
                .filter
                .as_deref()
                .map(crate::filter::Filter::compile)
                .transpose()?,
            // Lite is for always-on use: stacks only when asked for explicitly.
            stack_every: match (self.no_stacks, self.stack_sample, self.lite) {
                (true, _, _) => 0,
                (false, Some(n), _) => n,
                (false, None, true) => 0,
                (false, None, false) => crate::collector::DEFAULT_STACK_EVERY,
            },
        })
    }
}

/// Runs what the command line asks for; the caller prints errors as one line.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::Diff(args)) => return diff::run(args),
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "sirqtop", &mut script);
            return Ok(crate::output::write_stdout(&script)?);
        }
        Some(Command::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            return Ok(crate::output::write_stdout(&page)?);
        }
        Some(Command::Serve(_)) | None => {}
    }
    if cli.host_root.is_some() || cli.docker_root.is_some() {
        let root = cli.host_root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let mut paths = crate::netns::HostPaths::new(root);
        if let Some(d) = &cli.docker_root {
            paths = paths.with_docker_root(d);
        }
        paths.install().map_err(anyhow::Error::msg)?;
    }
    if let Some(Command::Serve(args)) = &cli.command {
        return serve(&cli, args);
    }
    if cli.json {
        return match cli.interval {
            Some(every) => json_stream(&cli, every),
            None => json_capture(&cli),
        };
    }
    let cfg = cli.config()?;
    crate::tui::run(
        cfg,
        crate::tui::TuiOptions {
            interval: cli.interval.unwrap_or(Duration::from_secs(1)),
        },
    )?;
    Ok(())
}

/// SIGINT and SIGTERM set the returned flag.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    Ok(stop)
}

/// The `sirqtop: ready (...)` line and one line per fallback, on stderr.
fn announce(m: &crate::model::CaptureMeta, what: &str) {
    let hooks: Vec<String> = m
        .probes
        .attached
        .iter()
        .map(|(h, (_, mech))| format!("{h}={mech}"))
        .collect();
    let missing: Vec<&str> = crate::model::Hook::ALL
        .iter()
        .filter(|h| !m.probes.has(**h) && !m.probes.off.contains(h))
        .map(|h| h.as_str())
        .collect();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; not attached, their metrics are null: {}",
            missing.join(" ")
        )
    };
    eprintln!("sirqtop: ready ({}{missing}), {what}", hooks.join(" "));
    for f in &m.probes.fallbacks {
        eprintln!("sirqtop: fallback: {f}");
    }
}

fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let mut cfg = cli.config()?;
    // Raise sites are not exported: walk no stacks unless asked.
    if cli.stack_sample.is_none() {
        cfg.stack_every = 0;
    }
    let stop = stop_flag()?;
    let opts = crate::serve::ServeOptions {
        listen: args.listen,
        refresh: cli.interval.unwrap_or(Duration::from_secs(1)),
        forget_after: args.forget_after,
        metrics: crate::serve::MetricsOptions {
            max_interfaces: args.max_interfaces.map(|n| n as usize),
            no_histograms: args.no_histogram.iter().flatten().copied().collect(),
        },
        web_config: args.web_config_file.clone(),
        limits: crate::serve::server::Limits {
            max_connections: args.max_connections,
            max_requests: args.max_requests,
        },
    };
    crate::serve::run(&cfg, &opts, &stop, |m, addr, tls| {
        let scheme = if tls { "https" } else { "http" };
        announce(m, &format!("serving {scheme}://{addr}/metrics"));
    })?;
    Ok(())
}

/// `--json --interval`: one compact document per interval, each covering that interval.
fn json_stream(cli: &Cli, every: Duration) -> anyhow::Result<()> {
    use std::io::Write as _;
    let cfg = cli.config()?;
    let stop = stop_flag()?;
    let mut c = crate::collector::Collector::start(&cfg)?;
    announce(c.meta(), &format!("one JSON document every {every:?}"));
    let started = std::time::Instant::now();
    // The first document covers everything since attach.
    let mut prev = crate::model::Snapshot::default();
    let mut next = every;
    let mut out = std::io::stdout().lock();
    loop {
        let end = cli.duration.map(|d| d.min(next)).unwrap_or(next);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < end {
            std::thread::sleep(
                end.saturating_sub(started.elapsed())
                    .min(crate::capture::DRAIN_EVERY),
            );
            c.poll()?;
        }
        let snap = c.snapshot()?;
        let mut meta = c.meta().clone();
        meta.started_at += Duration::from_nanos(prev.elapsed_ns);
        let doc = Capture::new(&meta, &snap.delta(&prev));
        let mut line = serde_json::to_vec(&doc)?;
        line.push(b'\n');
        match out.write_all(&line).and_then(|()| out.flush()) {
            // The reader is gone (`| head -n 3`): done, quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            r => r.context("writing to stdout")?,
        }
        prev = snap;
        next += every;
        let done = cli.duration.is_some_and(|d| started.elapsed() >= d);
        if done || stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
    }
}

fn json_capture(cli: &Cli) -> anyhow::Result<()> {
    let cfg = cli.config()?;
    // Open the destination first: an unwritable path fails before anything is attached.
    let sink = Sink::open(cli.output.as_deref())?;
    let stop = stop_flag()?;
    let duration = cli.duration.unwrap_or(Duration::from_secs(5));
    let (meta, snap) = crate::capture::run(&cfg, duration, &stop, |m| {
        announce(m, &format!("capturing for {duration:?}"));
    })?;
    sink.write(&Capture::new(&meta, &snap))?;
    Ok(())
}

/// Prints help/version as clap does, and a bad flag or value as one line; then exits.
pub fn exit_on_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("sirqtop: {first} (see --help)");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            parse_duration("abc"),
            Err("invalid duration 'abc' (use e.g. 500ms, 5s, 2m)".into())
        );
        assert_eq!(
            parse_duration("5x"),
            Err("invalid duration '5x' (use e.g. 500ms, 5s, 2m)".into())
        );
        assert!(parse_duration("0s").unwrap_err().contains("more than 0"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("8d").unwrap_err().contains("at most 7 days"));
        // humantime's forms work too.
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn flags_parse() {
        let c = Cli::try_parse_from([
            "sirqtop", "--json", "-d", "3s", "--netns", "pod-a", "--netns", "pid:1", "--probe",
            "kprobe",
        ])
        .unwrap();
        assert!(c.json);
        assert_eq!(c.duration, Some(Duration::from_secs(3)));
        assert_eq!(c.netns.len(), 2);
        assert_eq!(c.probe, ProbeMode::Force(crate::model::Backend::Kprobe));
        assert!(Cli::try_parse_from(["sirqtop", "--probe", "ebpf"]).is_err());
        assert!(
            Cli::try_parse_from(["sirqtop", "-o", "x.json"]).is_err(),
            "--output needs --json"
        );
    }

    #[test]
    fn completions_and_man_page_come_from_the_flags() {
        let c = Cli::try_parse_from(["sirqtop", "completions", "zsh"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Completions { shell: Shell::Zsh })
        ));
        assert!(Cli::try_parse_from(["sirqtop", "completions", "tcsh"]).is_err());
        let mut script = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Cli::command(), "sirqtop", &mut script);
        let script = String::from_utf8(script).unwrap();
        for flag in ["--json", "--netns", "--probe", "--stack-sample", "diff"] {
            assert!(
                script.contains(flag),
                "{flag} missing from bash completions"
            );
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH sirqtop"),
            "{page}"
        );
        assert!(page.contains("stack\\-sample"), "{page}");
    }
}
