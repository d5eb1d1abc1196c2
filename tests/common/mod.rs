//! Shared by the root tests: the library's lab (namespaces + veth + senders) with test
//! conveniences, serialisation, and a view of loaded BPF programs.
#![allow(dead_code)]

pub mod prom;
pub mod serve;

use std::sync::{Mutex, MutexGuard};

pub use sirqtop::lab::{UdpSink, VethLab};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (passes with a note) a root test when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root (BPF and network namespaces)");
            return;
        }
    };
}

/// A test needs an external tool. Under CI (`CI` set) a missing tool fails the test: CI
/// installs every tool (`.ci/run`), so a skip there would hide a broken setup. Elsewhere
/// it is skipped, and the reason says what to install: None = present, Some(reason).
pub fn require_tool(cmd: &str, args: &[&str], package: &str) -> Option<String> {
    let ok = std::process::Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if ok {
        return None;
    }
    let why = format!("{cmd} is missing (apt-get install {package}; README, Test)");
    assert!(std::env::var_os("CI").is_none(), "under CI: {why}");
    Some(why)
}

/// Why a lab topology cannot be built here: a tool its set-up needs (tc and clang for
/// the tc programs; under CI a missing tool fails), or a device kind the kernel lacks.
pub fn topo_missing(topo: sirqtop::lab::Topo) -> Option<String> {
    if let sirqtop::lab::Topo::Tc(_) = topo {
        let tools = [("tc", "-V", "iproute2"), ("clang", "--version", "clang")];
        if let Some(why) = tools.iter().find_map(|(c, a, p)| require_tool(c, &[a], p)) {
            return Some(why);
        }
    }
    topo.missing()
}

/// Skips (passes with the reason) a test whose tool is missing; fails under CI.
#[macro_export]
macro_rules! require_tool {
    ($cmd:expr, $args:expr, $package:expr) => {
        if let Some(why) = common::require_tool($cmd, $args, $package) {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Root tests in one binary take turns: they share one kernel, and the "nothing left
/// loaded" checks must not see another test's programs.
/// Whether CPUs 0 and 1 are online (tests that pin a sender and steer receives need both);
/// says it skips when not.
pub fn has_cpus_0_and_1() -> bool {
    let cpus = sirqtop::probe::kernel::online_cpu_list();
    let ok = cpus.len() >= 2 && cpus.contains(&1);
    if !ok {
        eprintln!("skipped: needs CPUs 0 and 1");
    }
    ok
}

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lab that panics (failing the test) if it cannot be built.
pub fn lab(tag: &str, subnet: &str) -> VethLab {
    let l = VethLab::new(tag, subnet).expect("building test namespaces");
    l.warm_up().expect("static neighbours");
    l
}

pub fn udp_sink(ns: &str, addr: &str, port: u16) -> UdpSink {
    sirqtop::lab::udp_sink(ns, addr, port).expect("udp sink")
}

pub fn send_udp(ns: &str, dst: &str, port: u16, n: usize, size: usize) {
    sirqtop::lab::send_udp(ns, dst, port, n, size).expect("send udp")
}

pub fn tcp_stream(ns_server: &str, addr: &str, ns_client: &str, port: u16, bytes: usize) -> usize {
    sirqtop::lab::tcp_stream(ns_server, addr, ns_client, port, bytes).expect("tcp stream")
}

/// (netns inode, ifindex) of the lab's A and B ends.
pub fn keys(l: &VethLab) -> ((u32, u32), (u32, u32)) {
    (
        (l.inode_a().unwrap(), l.ifindex_a().unwrap()),
        (l.inode_b().unwrap(), l.ifindex_b().unwrap()),
    )
}

/// IDs of the programs with sirqtop's names currently loaded in the kernel (the kernel
/// keeps 15 characters of a name).
pub fn sirqtop_program_ids() -> std::collections::BTreeSet<u32> {
    libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| {
            let n = p.name.to_string_lossy();
            sirqtop::probe::PROGRAMS
                .iter()
                .any(|ours| ours.name[..ours.name.len().min(15)] == *n)
        })
        .map(|p| p.id)
        .collect()
}

/// The write end of a pipe whose read end is already closed: every write to it fails
/// with EPIPE, as when `sirqtop ... | head` has exited.
pub fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    std::process::Stdio::from(write)
}

/// The interface at (netns inode, ifindex): the test's namespaces live through the
/// capture, so there is exactly one (one netns cookie).
pub fn iface(s: &sirqtop::model::Snapshot, netns: u32, ifindex: u32) -> &sirqtop::model::Interface {
    let mut found = s
        .interfaces
        .iter()
        .filter(|i| i.key.netns == netns && i.key.ifindex == ifindex);
    let i = found
        .next()
        .unwrap_or_else(|| panic!("no interface ({netns}, {ifindex}) in {:#?}", s.interfaces));
    assert!(
        found.next().is_none(),
        "two interfaces at ({netns}, {ifindex})"
    );
    assert_ne!(i.key.cookie, 0, "this kernel has netns cookies");
    i
}

/// `v` is `n`, or up to `slack` more (control packets the kernel may add on its own).
pub fn within_slack(v: u64, n: u64, slack: u64, what: &str) {
    assert!(
        v >= n && v <= n + slack,
        "{what} = {v}, expected {n}..={}",
        n + slack
    );
}

/// Spawns `cmd` with stderr piped and reads its stderr until `ready` accepts a line; gives
/// the child, what `ready` returned, and the stderr reader, which the caller keeps open
/// (a closed pipe would fail the tool's later messages). Panics if the tool exits first
/// or nothing is accepted within 20 s.
pub fn spawn_until<T>(
    cmd: &mut std::process::Command,
    mut ready: impl FnMut(&str) -> Option<T>,
) -> (
    std::process::Child,
    T,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sirqtop");
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sirqtop's stderr is not piped");
    };
    let mut err = std::io::BufReader::new(stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).expect("read sirqtop's stderr");
        assert!(n > 0, "sirqtop exited before it was ready");
        if let Some(v) = ready(line.trim_end()) {
            return (child, v, err);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ready line: {line}"
        );
    }
}

/// `spawn_until` sirqtop's "sirqtop: ready" line.
pub fn spawn_ready(
    cmd: &mut std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    let (child, (), err) = spawn_until(cmd, |l| l.starts_with("sirqtop: ready").then_some(()));
    (child, err)
}

/// A process sleeping in network namespace `ns` inside a cgroup made for it at `rel` below
/// the cgroup root (e.g. `kubepods/besteffort/pod<uid>/<id>`, `docker/<id>`): what a
/// container runtime leaves for sirqtop to find. Dropping it kills the process and removes
/// the directories it made. None when no cgroup hierarchy is writable here.
pub struct CgroupTask {
    dir: std::path::PathBuf,
    levels: usize,
    child: std::process::Child,
}

impl CgroupTask {
    pub fn start(ns: &str, rel: &str) -> Option<CgroupTask> {
        let root = [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.join("cgroup.procs").exists())?;
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).ok()?;
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "sleep", "60"])
            .spawn()
            .ok()?;
        // `ip netns exec` execs sleep in place: the pid is the sleeping process, in the
        // namespace once it has run.
        std::thread::sleep(std::time::Duration::from_millis(200));
        if std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(CgroupTask {
            dir,
            levels: rel.split('/').filter(|c| !c.is_empty()).count(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CgroupTask {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The directories it made, innermost first (one still in use stays).
        let mut d = Some(self.dir.as_path());
        for _ in 0..self.levels {
            if let Some(p) = d {
                let _ = std::fs::remove_dir(p);
                d = p.parent();
            }
        }
    }
}

/// The one interface named `name` in the namespace named `ns` (ip-netns name).
pub fn by_name<'a>(
    s: &'a sirqtop::model::Snapshot,
    ns: &str,
    name: &str,
) -> &'a sirqtop::model::Interface {
    let mut found = s
        .interfaces
        .iter()
        .filter(|i| i.netns_name.as_deref() == Some(ns) && i.name == name);
    let i = found
        .next()
        .unwrap_or_else(|| panic!("{ns}/{name} not reported"));
    assert!(found.next().is_none(), "{ns}/{name} reported twice");
    i
}
