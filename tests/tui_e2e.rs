//! End to end: the real binary's dashboard in tmux, over a veth pair between two namespaces
//! this test creates, while it sends UDP traffic across. Needs root and tmux; skipped (with
//! the reason printed) otherwise.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sirqtop::lab::{send_udp, udp_sink, VethLab};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_sirqtop");
const PORT: u16 = 5913;

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    common::require_tool("tmux", &["-V"], "tmux")
}

/// A private tmux server (own socket) with one 160x45 session running bash; killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        let pid = std::process::id();
        let t = Tmux {
            socket: format!("sqt-{tag}-{pid}"),
            session: format!("sqt-{tag}-{pid}"),
        };
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "45",
            "-s",
            &t.session,
            "bash",
            "--norc",
            "--noprofile",
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("running tmux")
    }

    /// Types `keys` (tmux key names, e.g. "q", "Enter", "C-c").
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "send-keys: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Waits until `pred(screen)` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if s.contains("sirqtop: ") && !s.contains("sirqtop  kernel") {
                panic!("sirqtop failed while waiting for {what}:\n{s}");
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Pid of the process running in the pane's shell (sirqtop).
    fn child_pid(&self) -> Option<u32> {
        let out = self.cmd(&["list-panes", "-t", &self.session, "-F", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("pgrep").args(["-P", &shell]).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Removes a file on drop.
struct TempPath(PathBuf);
impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Ids of the BPF programs process `pid` holds (program and link fds name them in fdinfo).
fn held_prog_ids(pid: u32) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for e in dir.flatten() {
        if let Ok(info) = std::fs::read_to_string(e.path()) {
            for l in info.lines() {
                if let Some(v) = l.strip_prefix("prog_id:") {
                    if let Ok(id) = v.trim().parse() {
                        ids.insert(id);
                    }
                }
            }
        }
    }
    ids
}

/// Loaded BPF programs as (id, name), asked of the kernel (libbpf's program iterator).
fn loaded_programs() -> Vec<(u64, String)> {
    libbpf_rs::query::ProgInfoIter::default()
        .map(|p| (u64::from(p.id), p.name.to_string_lossy().into_owned()))
        .collect()
}

/// How many loaded programs carry one of sirqtop's names.
fn sirqtop_like_programs() -> usize {
    let ours = common::sirqtop_program_ids();
    loaded_programs()
        .iter()
        .filter(|(id, _)| ours.contains(&(*id as u32)))
        .count()
}

/// After sirqtop exited: none of the programs it held is loaded any more.
fn assert_detached(held: &BTreeSet<u64>) {
    let start = Instant::now();
    loop {
        let left: Vec<(u64, String)> = loaded_programs()
            .into_iter()
            .filter(|(id, _)| held.contains(id))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still loaded after exit: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `EXIT=<status>` in `file` (written by the shell after sirqtop returns).
fn wait_exit(tmux: &Tmux, file: &TempPath, why: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(&file.0) {
            if !s.is_empty() {
                return s.trim().to_string();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit on {why}:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whitespace-separated fields of the table row whose interface is `name`.
fn row_fields(screen: &str, name: &str) -> Option<Vec<String>> {
    screen.lines().find_map(|l| {
        let fields: Vec<String> = l
            .split(|c: char| c.is_whitespace() || c == '│' || c == '▶')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        let i = fields.iter().position(|f| f == name)?;
        // netns, NAME, kind, peer, TX PPS, RX PPS, ...
        (fields.len() >= i + 5).then(|| fields[i..].to_vec())
    })
}

fn nonzero(v: &str) -> bool {
    v != "0" && v != "—" && v != "·" && v.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Sends up to 20k small datagrams from A to B over ~5 s, until `stop`.
fn traffic(lab: &VethLab, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (ns, dst) = (lab.ns_a.clone(), lab.addr_b.clone());
    std::thread::spawn(move || {
        for _ in 0..50 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let _ = send_udp(&ns, &dst, PORT, 400, 32);
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn dashboard_shows_the_pair_cpus_and_quits_cleanly() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping tui_e2e: {r}");
        return;
    }
    let lab = VethLab::new("tui", "10.213.1").expect("veth lab");
    lab.warm_up().expect("neighbours");
    let _sink = udp_sink(&lab.ns_b, &lab.addr_b, PORT).expect("udp sink");
    let named_before = sirqtop_like_programs();

    let exit_file =
        TempPath(std::env::temp_dir().join(format!("sqt-tui-exit-{}", std::process::id())));
    let _ = std::fs::remove_file(&exit_file.0);
    let tmux = Tmux::new("tui");
    let cmd = format!(
        "{BIN} --netns {} --netns {} --interval 500ms; echo EXIT=$? > {}",
        lab.ns_a,
        lab.ns_b,
        exit_file.0.display()
    );
    tmux.send(&[&cmd, "Enter"]);
    tmux.wait_for("the dashboard", Duration::from_secs(60), |s| {
        s.contains("sirqtop  kernel")
    });
    let pid = tmux.child_pid().expect("sirqtop's pid");
    let held = held_prog_ids(pid);
    assert!(
        !held.is_empty(),
        "sirqtop({pid}) holds no BPF program while running"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sender = traffic(&lab, Arc::clone(&stop));
    let screen = tmux.wait_for("non-zero pps on the pair", Duration::from_secs(20), |s| {
        let a = row_fields(s, &lab.if_a);
        let b = row_fields(s, &lab.if_b);
        match (a, b) {
            (Some(a), Some(b)) => nonzero(&a[3]) && nonzero(&b[4]),
            _ => false,
        }
    });
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let a = row_fields(&screen, &lab.if_a).unwrap_or_default();
    assert_eq!(a[1], "veth", "{screen}");
    assert_eq!(
        a[2],
        format!("{}@{}", lab.if_b, lab.ns_b),
        "peer shown as name@netns: {screen}"
    );
    assert!(screen.contains(&lab.ns_a), "{screen}");
    println!("{screen}");

    tmux.send(&["c"]);
    tmux.wait_for("the CPUs view", Duration::from_secs(10), |s| {
        s.contains("NET_RX softirq time per CPU") && s.contains("softirqs per CPU × vector")
    });
    tmux.send(&["c"]);
    tmux.wait_for("the interfaces view again", Duration::from_secs(10), |s| {
        s.contains(" interfaces ")
    });

    tmux.send(&["q"]);
    assert_eq!(wait_exit(&tmux, &exit_file, "q"), "EXIT=0");
    let after = tmux.screen();
    assert!(
        !after.contains("sirqtop  kernel"),
        "alternate screen left, terminal restored:\n{after}"
    );
    assert_detached(&held);
    // Informational only: other root tests may load their own collectors meanwhile.
    println!(
        "sirqtop-like programs loaded: {named_before} before, {} after",
        sirqtop_like_programs()
    );
}

#[test]
fn sigterm_restores_the_terminal_and_detaches() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping tui_e2e: {r}");
        return;
    }
    let exit_file =
        TempPath(std::env::temp_dir().join(format!("sqt-tui-term-{}", std::process::id())));
    let _ = std::fs::remove_file(&exit_file.0);
    let tmux = Tmux::new("tuit");
    tmux.send(&[
        &format!("{BIN}; echo EXIT=$? > {}", exit_file.0.display()),
        "Enter",
    ]);
    tmux.wait_for("the dashboard", Duration::from_secs(60), |s| {
        s.contains("sirqtop  kernel")
    });
    let pid = tmux.child_pid().expect("sirqtop pid");
    let held = held_prog_ids(pid);
    assert!(!held.is_empty());
    // SAFETY: kill with a pid we just looked up and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    assert_eq!(
        wait_exit(&tmux, &exit_file, "SIGTERM"),
        "EXIT=0",
        "SIGTERM is a clean exit"
    );
    let after = tmux.screen();
    assert!(
        !after.contains("sirqtop  kernel"),
        "terminal restored:\n{after}"
    );
    assert_detached(&held);
}

#[test]
fn not_a_terminal_suggests_json() {
    // stdout is a pipe here: refused before anything is attached, root or not.
    let out = Command::new(BIN).output().expect("running sirqtop");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a terminal") && err.contains("--json"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
