//! Root-only integration tests of `sirqtop::netns` over namespaces and veth pairs that the
//! tests create (and always remove, through Drop guards). Skipped when not root.
//!
//! Tests run in parallel: every test uses its own namespace and interface names, derived
//! from the pid and a per-test tag.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sirqtop::netns::{self, NetnsError, NetnsInode, NetnsSelector, Topology};

/// Serializes `ip netns add`: the first one also sets up the /run/netns mount, and
/// concurrent first calls race.
static SETUP: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (creates network namespaces and veth pairs)");
            return;
        }
    };
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A network namespace created with `ip netns add`, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn add(name: String) -> Netns {
        // The guard exists before the namespace, so a failed assertion still cleans up.
        let ns = Netns { name };
        ip(&["netns", "add", &ns.name]);
        ns
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    fn inode(&self) -> NetnsInode {
        let ino = std::fs::metadata(self.path()).expect("stat netns").ino();
        NetnsInode::try_from(ino).expect("32-bit inode")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.name]);
    }
}

/// A veth end to delete on drop (normally gone already with its namespace).
struct Veth {
    netns: String,
    name: String,
}

impl Drop for Veth {
    fn drop(&mut self) {
        ip_quiet(&["-n", &self.netns, "link", "del", &self.name]);
    }
}

/// A child process, killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces with a veth pair between them. Field order is drop order: veth first.
struct Pair {
    _veth: Veth,
    a: Netns,
    b: Netns,
    veth_a: String,
    veth_b: String,
}

fn names(tag: &str) -> (String, String, String, String) {
    let pid = std::process::id();
    (
        format!("sqt-nsA-{pid}-{tag}"),
        format!("sqt-nsB-{pid}-{tag}"),
        format!("sqa{}{tag}", pid % 10000),
        format!("sqb{}{tag}", pid % 10000),
    )
}

/// `extra` is appended to both ends' arguments (e.g. `index N`).
fn pair(tag: &str, extra_a: &[&str], extra_b: &[&str]) -> Pair {
    let (na, nb, va, vb) = names(tag);
    let _lock = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let a = Netns::add(na);
    let b = Netns::add(nb);
    let veth = Veth {
        netns: a.name.clone(),
        name: va.clone(),
    };
    let mut args = vec!["link", "add", &va];
    args.extend_from_slice(extra_a);
    args.extend_from_slice(&["netns", &a.name, "type", "veth", "peer", "name", &vb]);
    args.extend_from_slice(extra_b);
    args.extend_from_slice(&["netns", &b.name]);
    ip(&args);
    Pair {
        _veth: veth,
        a,
        b,
        veth_a: va,
        veth_b: vb,
    }
}

/// Finds a link by namespace and name.
fn find_link<'a>(topo: &'a Topology, netns: NetnsInode, name: &str) -> &'a netns::LinkInfo {
    topo.links
        .values()
        .find(|l| l.netns == netns && l.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no link {name} in netns {netns}; have {:?}",
                topo.links_in(netns)
            )
        })
}

fn thread_netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .expect("thread netns")
        .ino()
}

fn assert_veth_pair(topo: &Topology, p: &Pair) {
    let (ia, ib) = (p.a.inode(), p.b.inode());
    let a = find_link(topo, ia, &p.veth_a);
    let b = find_link(topo, ib, &p.veth_b);
    assert_eq!(a.kind.as_deref(), Some("veth"));
    assert_eq!(b.kind.as_deref(), Some("veth"));
    assert_eq!(a.peer, Some((ib, b.ifindex)), "peer of {a:?}");
    assert_eq!(b.peer, Some((ia, a.ifindex)), "peer of {b:?}");
    assert_eq!(topo.peer_of(ia, a.ifindex), Some(b));
    assert_eq!(topo.peer_of(ib, b.ifindex), Some(a));
    for ns in [ia, ib] {
        let lo = find_link(topo, ns, "lo");
        assert_eq!(lo.kind.as_deref(), Some("loopback"));
        assert_eq!(lo.peer, None);
    }
}

#[test]
fn resolve_name_pid_and_discover_labels() {
    require_root!();
    let p = pair("1", &[], &[]);
    let ia = p.a.inode();

    assert_eq!(
        NetnsSelector::Name(p.a.name.clone())
            .resolve()
            .expect("name"),
        ia
    );
    let parsed: NetnsSelector = p.a.name.parse().expect("parse name");
    assert_eq!(parsed.resolve().expect("parsed name"), ia);
    assert_eq!(NetnsSelector::Path(p.a.path()).resolve().expect("path"), ia);
    assert_eq!(NetnsSelector::Inode(ia).resolve().expect("inode"), ia);
    assert_ne!(ia, p.b.inode());

    // `ip netns exec` execs the command in place, so the child pid is `sleep`.
    let child = Command::new("ip")
        .args(["netns", "exec", &p.a.name, "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let child = Proc(child);
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "sleep" && NetnsSelector::Pid(pid).resolve().ok() == Some(ia) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sleep never started in {}",
            p.a.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(NetnsSelector::Pid(pid).resolve().expect("pid"), ia);
    let by_pid_path = NetnsSelector::Path(format!("/proc/{pid}/ns/net").into());
    assert_eq!(by_pid_path.resolve().expect("pid path"), ia);

    let before = thread_netns();
    let topo = netns::discover().expect("discover");
    assert_eq!(thread_netns(), before, "discover changed our namespace");

    let info = topo.namespaces.get(&ia).expect("nsA discovered");
    assert_eq!(info.ip_netns_name.as_deref(), Some(p.a.name.as_str()));
    assert_eq!(info.path.as_deref(), Some(p.a.path().as_path()));
    assert_eq!(info.pid, Some(pid));
    assert_eq!(info.comm.as_deref(), Some("sleep"));
    assert!(!info.is_host);
    assert_eq!(info.label(), p.a.name);
    assert_eq!(topo.label(ia), p.a.name);

    let host = netns::host_inode().expect("host inode");
    let host_info = topo.namespaces.get(&host).expect("host discovered");
    assert!(host_info.is_host);
    // Normally pid 1; a sandbox may hide pid 1's namespace, then the lowest visible pid.
    assert!(host_info.pid.is_some());
    assert_eq!(host_info.label(), "host");
    assert_veth_pair(&topo, &p);
}

#[test]
fn discover_pairs_veth_ends_across_namespaces() {
    require_root!();
    let p = pair("2", &[], &[]);
    let topo = netns::discover().expect("discover");
    assert_veth_pair(&topo, &p);
    let info = topo.namespaces.get(&p.b.inode()).expect("nsB discovered");
    assert_eq!(info.ip_netns_name.as_deref(), Some(p.b.name.as_str()));
    // No process lives in nsB.
    assert_eq!(info.pid, None);
    assert_eq!(info.label(), p.b.name);
}

/// Both ends with the same ifindex: older kernels omit IFLA_LINK then (newer ones always
/// send it with a link-netnsid); the peer must be found either way.
#[test]
fn veth_ends_with_equal_ifindex() {
    require_root!();
    let p = pair("3", &["index", "77"], &["index", "77"]);
    let topo = netns::discover().expect("discover");
    let a = find_link(&topo, p.a.inode(), &p.veth_a);
    assert_eq!(a.ifindex, 77);
    assert_veth_pair(&topo, &p);
}

#[test]
fn veth_pair_inside_one_namespace() {
    require_root!();
    let (na, _, va, vb) = names("4");
    let ns = {
        let _lock = SETUP.lock().unwrap_or_else(|e| e.into_inner());
        Netns::add(na)
    };
    let _veth = Veth {
        netns: ns.name.clone(),
        name: va.clone(),
    };
    ip(&[
        "-n", &ns.name, "link", "add", &va, "type", "veth", "peer", "name", &vb,
    ]);
    let topo = netns::discover().expect("discover");
    let ino = ns.inode();
    let a = find_link(&topo, ino, &va);
    let b = find_link(&topo, ino, &vb);
    assert_eq!(a.peer, Some((ino, b.ifindex)));
    assert_eq!(b.peer, Some((ino, a.ifindex)));
}

#[test]
fn selector_errors() {
    require_root!();
    let missing = format!("sqt-missing-{}", std::process::id());
    let err = NetnsSelector::Name(missing.clone())
        .resolve()
        .expect_err("unknown name");
    assert!(matches!(err, NetnsError::UnknownName(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "unknown network namespace name '{missing}' (not in /run/netns; see `ip netns list`)"
        )
    );

    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let err = NetnsSelector::Path(file.path().to_path_buf())
        .resolve()
        .expect_err("regular file");
    assert_eq!(
        err.to_string(),
        format!(
            "'{}' is not a network namespace file",
            file.path().display()
        )
    );
    let err = NetnsSelector::Path("/proc/self/ns/mnt".into())
        .resolve()
        .expect_err("mnt ns");
    assert_eq!(
        err.to_string(),
        "'/proc/self/ns/mnt' is not a network namespace file (it is a mount namespace)"
    );

    let err = "pid:999999999"
        .parse::<NetnsSelector>()
        .expect("parse")
        .resolve()
        .expect_err("no pid");
    assert_eq!(err.to_string(), "no process with pid 999999999");

    // Inode 1 is never a namespace inode (those start at 0xF0000000).
    let err = NetnsSelector::Inode(1).resolve().expect_err("no inode");
    assert_eq!(err.to_string(), "no network namespace with inode 1");

    assert!("pid:abc".parse::<NetnsSelector>().is_err());
    assert!("".parse::<NetnsSelector>().is_err());

    let own = netns::self_inode().expect("self inode");
    assert_eq!(NetnsSelector::Inode(own).resolve().expect("own inode"), own);
}
