//! Root integration tests of the `sirqtop` process itself: its JSON on Ctrl-C, SIGTERM,
//! SIGKILL and a closed pipe, one-line errors, forced backends and the raw tracepoint
//! fallback, each against the datagrams the test sent; every program it loaded is gone
//! after it exits.

mod common;

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{send_udp, udp_sink};
use sirqtop::model::Hook;
use sirqtop::output::json::Capture;

/// ARP/ND and similar control packets the kernel may add on its own.
const SLACK: u64 = 10;

fn within(v: u64, n: u64, what: &str) {
    common::within_slack(v, n, SLACK, what);
}

/// Lets the last packets' softirqs finish before reading.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sirqtop"))
}

/// A sirqtop process that has attached, and the programs it loaded.
struct Running {
    child: std::process::Child,
    _stderr: BufReader<std::process::ChildStderr>,
    programs: std::collections::BTreeSet<u32>,
}

impl Running {
    /// Waits for exit; asserts that every program it loaded is gone.
    fn finish(self) -> std::process::Output {
        let out = self.child.wait_with_output().unwrap();
        // The kernel frees programs asynchronously (RCU) after the last fd closes.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let still: Vec<u32> = common::sirqtop_program_ids()
                .intersection(&self.programs)
                .copied()
                .collect();
            if still.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "programs left loaded after exit: {still:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        out
    }
}

/// Starts `sirqtop --json ...` and waits for its "ready" line.
fn spawn_ready(args: &[&str]) -> Running {
    spawn_ready_env(args, &[])
}

fn spawn_ready_env(args: &[&str], env: &[(&str, &str)]) -> Running {
    let before = common::sirqtop_program_ids();
    let (child, err) = common::spawn_ready(
        bin()
            .envs(env.iter().copied())
            .arg("--json")
            .args(args)
            .stdout(Stdio::piped()),
    );
    let programs: std::collections::BTreeSet<u32> = common::sirqtop_program_ids()
        .difference(&before)
        .copied()
        .collect();
    assert!(
        programs.len() >= 5,
        "sirqtop's programs not found loaded: {programs:?}"
    );
    Running {
        child,
        _stderr: err,
        programs,
    }
}

#[test]
fn json_binary_counts_and_ctrl_c_writes_a_complete_document() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("j", "10.201.6");
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    // Every skb timed: the default samples above 20 000 new skbs/s per CPU, and its
    // weighted hop count is then an estimate, not the exact count asserted below.
    let run = spawn_ready(&[
        "--duration",
        "60s",
        "--timing-rate",
        "0",
        "--netns",
        &lab.ns_a,
        "--netns",
        &lab.ns_b,
    ]);
    send_udp(&lab.ns_a, &lab.addr_b, 5001, 1000, 64);
    settle();
    let started = Instant::now();
    // SAFETY: kill with a pid we spawned and have not reaped.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let out = run.finish();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "Ctrl-C did not end the capture"
    );
    assert!(out.status.success(), "exit {:?}", out.status);
    let cap = Capture::from_json(&String::from_utf8_lossy(&out.stdout)).expect("valid JSON");
    assert!(cap.capture.duration_ns < 30_000_000_000);
    let mut filter = cap.capture.netns_filter.clone();
    filter.sort();
    let mut want = vec![lab.inode_a().unwrap(), lab.inode_b().unwrap()];
    want.sort();
    assert_eq!(filter, want);
    let a = cap
        .interfaces
        .iter()
        .find(|i| i.name == lab.if_a)
        .expect("A in capture");
    let b = cap
        .interfaces
        .iter()
        .find(|i| i.name == lab.if_b)
        .expect("B in capture");
    within(a.tx_packets.unwrap(), 1000, "A.tx_packets");
    within(b.rx_packets.unwrap(), 1000, "B.rx_packets");
    within(
        a.latency.veth_hop.as_ref().unwrap().count,
        1000,
        "hop count",
    );
    assert_eq!(
        a.peer.as_ref().unwrap().name.as_deref(),
        Some(lab.if_b.as_str())
    );
    assert_eq!(a.netns_name.as_deref(), Some(lab.ns_a.as_str()));
    // Every hook but napi_poll, which --napi-polls adds, and rx_another, which needs
    // fentry or kprobes (none here means tracepoints only).
    let b = &cap.kernel.backends;
    let rx_another = usize::from(b.contains_key("rx_another"));
    assert_eq!(b.len(), 7 + rx_another, "{b:?}");
    assert!(b.contains_key("dev_xmit"), "{b:?}");
}

#[test]
fn sigterm_and_output_file_are_atomic() {
    require_root!();
    let _g = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.json");
    let run = spawn_ready(&["--duration", "60s", "-o", path.to_str().unwrap()]);
    assert!(
        !path.exists(),
        "target must not exist before the capture is complete"
    );
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGTERM) };
    let out = run.finish();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let cap = Capture::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cap.schema_version, 1);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
}

#[test]
fn sigkill_mid_capture_leaves_nothing_in_the_output_directory() {
    require_root!();
    let _g = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.json");
    let run = spawn_ready(&["--duration", "60s", "-o", path.to_str().unwrap()]);
    // The output is open (an unnamed file) but has no name yet.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) };
    let out = run.finish();
    assert!(!out.status.success());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a killed capture left {left:?}");
}

#[test]
fn a_closed_pipe_ends_the_capture_quietly() {
    require_root!();
    let _g = common::serial();
    let out = bin()
        .args(["--json", "--duration", "300ms"])
        .stdout(common::closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .all(|l| l.starts_with("sirqtop: ready") || l.starts_with("sirqtop: fallback")),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("pipe"), "{err}");
}

/// Runs the binary expecting failure: one line on stderr, non-zero exit, nothing on stdout.
fn fails(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?} wrote output");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("sirqtop: "), "{err}");
    err
}

#[test]
fn bad_input_gives_one_line_errors() {
    let _g = common::serial();
    assert!(fails(&["--json", "--duration", "soon"]).contains("invalid duration 'soon'"));
    assert!(fails(&["--json", "--probe", "ebpf"]).contains("unknown probe backend 'ebpf'"));
    assert!(fails(&["--json", "--netns", "sqt-no-such-ns"])
        .contains("unknown network namespace name 'sqt-no-such-ns'"));
    assert!(fails(&["--json", "--netns", "pid:999999999"]).contains("999999999"));
    let e = fails(&["--json", "-d", "1s", "-o", "/nonexistent-dir/c.json"]);
    assert!(e.contains("cannot write /nonexistent-dir/c.json"), "{e}");
    assert!(!std::path::Path::new("/nonexistent-dir").exists());
}

#[test]
fn unprivileged_user_is_told_to_use_root() {
    require_root!();
    use std::os::unix::process::CommandExt;
    let out = bin()
        .args(["--json", "-d", "1s"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn forced_backends_work_or_say_why() {
    require_root!();
    let _g = common::serial();
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let out = bin()
        .args(["--json", "-d", "200ms", "--probe", "kprobe"])
        .output()
        .unwrap();
    if kprobes {
        assert!(out.status.success());
        let cap = Capture::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(cap.hook_backend(Hook::VethXmit), Some("kprobe"));
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("no kprobes") && err.contains("--probe auto"),
            "{err}"
        );
    }
    let out = bin()
        .args(["--json", "-d", "200ms", "--probe", "tracepoint"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cap = Capture::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    for h in ["veth_xmit", "netif_rx", "softirq_raise"] {
        assert_eq!(
            cap.kernel.backends.get(h).map(String::as_str),
            Some("tracepoint"),
            "{h}"
        );
    }
}

#[test]
fn raw_tracepoint_fallback_counts_the_same() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("r", "10.201.8");
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, 5001);
    // Pretend the kernel refuses tp_btf: every hook must fall back to raw_tp.
    // --timing-rate 0: exact latency counts (see json_binary_counts_...).
    let run = spawn_ready_env(
        &[
            "--duration",
            "60s",
            "--timing-rate",
            "0",
            "--netns",
            &lab.ns_a,
            "--netns",
            &lab.ns_b,
        ],
        &[("SIRQTOP_DENY", "tp_btf")],
    );
    send_udp(&lab.ns_a, &lab.addr_b, 5001, 1500, 64);
    settle();
    // SAFETY: signalling a child we spawned.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let out = run.finish();
    assert!(out.status.success());
    let cap = Capture::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    for (hook, mech) in &cap.kernel.mechanisms {
        assert_eq!(mech, "raw_tp", "{hook}");
    }
    assert!(cap
        .kernel
        .fallbacks
        .iter()
        .any(|f| f.contains("tp_btf: denied")));
    let a = cap.interfaces.iter().find(|i| i.name == lab.if_a).unwrap();
    let b = cap.interfaces.iter().find(|i| i.name == lab.if_b).unwrap();
    within(a.tx_packets.unwrap(), 1500, "A.tx_packets");
    within(b.rx_enqueued.unwrap(), 1500, "B.rx_enqueued");
    within(b.rx_packets.unwrap(), 1500, "B.rx_packets");
    within(
        a.latency.veth_hop.as_ref().unwrap().count,
        1500,
        "hop count",
    );
    within(
        b.latency.backlog_wait.as_ref().unwrap().count,
        1500,
        "backlog count",
    );
    assert!(b.net_rx_raises.unwrap() >= 1 && b.softirq_ns.unwrap() > 0);
}
