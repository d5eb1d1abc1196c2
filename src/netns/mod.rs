//! Network namespaces: `--netns` selectors -> namespace inode, enumeration of every
//! reachable namespace with a human label (ip-netns name, owning process, container), and a
//! per-namespace link dump over rtnetlink that pairs veth ends across namespaces.
//!
//! Interfaces are keyed by (netns inode, ifindex) everywhere in sirqtop; the inode is what
//! the BPF side sees as `dev_net(dev)->ns.inum`.
//!
//! Link dumps run inside each namespace: a short-lived helper thread `setns`es into it and
//! opens a NETLINK_ROUTE socket there. The calling thread's namespace is never changed.

mod cgroup;
mod discover;
mod netlink;
pub mod owner;
mod stats;

pub use cgroup::{parse_cgroup, parse_cgroup_path};
pub use discover::{discover, discover_in, scan_namespaces};
pub use owner::HostPaths;
pub use stats::{DeviceStats, StatsReader};

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Inode number of a network namespace (`/proc/PID/ns/net` st_ino, `net->ns.inum`).
pub type NetnsInode = u32;

/// Where `ip netns` keeps its bind mounts (iproute2 uses /var/run/netns, normally the same).
const IP_NETNS_DIRS: &[&str] = &["/run/netns", "/var/run/netns"];

/// `_IO(0xb7, 0x3)` from <linux/nsfs.h>; Linux >= 4.11.
const NS_GET_NSTYPE: libc::Ioctl = 0xb703;
/// CLONE_NEWTIME from <linux/sched.h>; not exported by every libc release.
const CLONE_NEWTIME: libc::c_int = 0x80;

/// What the user passed to `--netns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsSelector {
    /// An `ip netns` name: /run/netns/NAME.
    Name(String),
    /// A namespace file: /proc/PID/ns/net, /run/netns/X, /var/run/docker/netns/X, ...
    Path(PathBuf),
    /// The namespace of a process: /proc/PID/ns/net.
    Pid(u32),
    /// A namespace inode, which must currently exist.
    Inode(u32),
}

/// Errors of this module. Messages are one line and quote what the user typed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("empty network namespace selector (expected NAME, PATH, pid:PID or INODE)")]
    EmptySelector,
    #[error("invalid pid in '{0}' (expected pid:NUMBER)")]
    InvalidPid(String),
    #[error("invalid namespace inode '{0}' (too large)")]
    InvalidInode(String),
    #[error("invalid network namespace name '{0}'")]
    InvalidName(String),
    #[error("unknown network namespace name '{0}' (not in /run/netns; see `ip netns list`)")]
    UnknownName(String),
    #[error("no process with pid {0}")]
    NoSuchPid(u32),
    #[error("cannot read the network namespace of pid {pid}: {error}")]
    PidNetns { pid: u32, error: io::Error },
    #[error("no such file '{}' (expected a network namespace file such as /proc/PID/ns/net or /run/netns/NAME)", .0.display())]
    NoSuchPath(PathBuf),
    #[error("'{}' is not a network namespace file{}", .path.display(), in_parens(.detail))]
    NotNetnsFile {
        path: PathBuf,
        detail: Option<String>,
    },
    #[error("cannot access '{}': {error}", .path.display())]
    Access { path: PathBuf, error: io::Error },
    #[error("no network namespace with inode {0}")]
    NoSuchInode(u32),
    #[error("cannot read {what}: {error}")]
    Io { what: String, error: io::Error },
    #[error("network namespace helper thread failed: {0}")]
    Helper(String),
}

fn in_parens(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

impl FromStr for NetnsSelector {
    type Err = NetnsError;

    /// `pid:123` -> Pid; all digits -> Inode; contains '/' -> Path; otherwise Name.
    fn from_str(s: &str) -> Result<Self, NetnsError> {
        if s.is_empty() {
            return Err(NetnsError::EmptySelector);
        }
        if let Some(pid) = s.strip_prefix("pid:") {
            // `u32::from_str` would accept "+5"; only plain digits are a pid.
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NetnsError::InvalidPid(s.to_string()));
            }
            return pid
                .parse()
                .map(NetnsSelector::Pid)
                .map_err(|_| NetnsError::InvalidPid(s.to_string()));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(NetnsSelector::Inode)
                .map_err(|_| NetnsError::InvalidInode(s.to_string()));
        }
        if s.contains('/') {
            return Ok(NetnsSelector::Path(PathBuf::from(s)));
        }
        // "." and ".." would name /run/netns itself or its parent.
        if s == "." || s == ".." || s.contains('\0') {
            return Err(NetnsError::InvalidName(s.to_string()));
        }
        Ok(NetnsSelector::Name(s.to_string()))
    }
}

/// The inverse of `from_str`, for messages and round trips.
impl fmt::Display for NetnsSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsSelector::Name(n) => write!(f, "{n}"),
            NetnsSelector::Path(p) => write!(f, "{}", p.display()),
            NetnsSelector::Pid(p) => write!(f, "pid:{p}"),
            NetnsSelector::Inode(i) => write!(f, "{i}"),
        }
    }
}

impl NetnsSelector {
    /// Resolves to the namespace inode (st_ino of the nsfs file).
    pub fn resolve(&self) -> Result<NetnsInode, NetnsError> {
        match self {
            NetnsSelector::Name(name) => resolve_name(name),
            NetnsSelector::Path(path) => probe_netns_file(path).map_err(|e| e.into_error(path)),
            NetnsSelector::Pid(pid) => pid_netns_inode(*pid),
            NetnsSelector::Inode(ino) => {
                if scan_namespaces()?.contains_key(ino) {
                    Ok(*ino)
                } else {
                    Err(NetnsError::NoSuchInode(*ino))
                }
            }
        }
    }
}

/// A container that a namespace's process belongs to, from its cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerRef {
    /// "docker", "containerd", "cri-o", "podman", "kubepods" (kubelet cgroupfs driver:
    /// runtime unknown), or the top-level cgroup name for other cgroupfs layouts.
    pub runtime: String,
    /// Full container id (64 hex digits).
    pub id: String,
    /// Kubernetes pod UID (dashes), when the cgroup is under kubepods.
    pub pod_uid: Option<String>,
    /// The container's name: Docker's `Name`, or the pod's container (kubelet logs).
    #[serde(default)]
    pub name: Option<String>,
    /// The Kubernetes pod, from the kubelet's /var/log/pods directory of its UID.
    #[serde(default)]
    pub pod: Option<String>,
    /// The pod's Kubernetes namespace.
    #[serde(default)]
    pub pod_namespace: Option<String>,
}

impl ContainerRef {
    /// A container known by its cgroup alone (no names resolved yet).
    pub fn new(runtime: &str, id: &str, pod_uid: Option<String>) -> ContainerRef {
        ContainerRef {
            runtime: runtime.to_string(),
            id: id.to_string(),
            pod_uid,
            name: None,
            pod: None,
            pod_namespace: None,
        }
    }
}

/// One network namespace and what identifies it to a human.
#[derive(Debug, Clone)]
pub struct NetnsInfo {
    pub inode: NetnsInode,
    /// Name under /run/netns (bind mounts, matched by inode).
    pub ip_netns_name: Option<String>,
    /// A path that opens it: /run/netns/X, /var/run/docker/netns/X, another nsfs mount, or
    /// /proc/PID/ns/net (in that order of preference).
    pub path: Option<PathBuf>,
    /// Same inode as /proc/1/ns/net (see [`host_inode`]).
    pub is_host: bool,
    /// Lowest pid whose /proc/PID/ns/net is this namespace.
    pub pid: Option<u32>,
    /// That process's comm.
    pub comm: Option<String>,
    /// Parsed from that process's /proc/PID/cgroup.
    pub container: Option<ContainerRef>,
    /// The namespace's cookie (never reused, unlike the inode), read with SO_NETNS_COOKIE
    /// from inside it when its links were dumped; None before 5.14 or when not entered.
    pub cookie: Option<u64>,
}

impl NetnsInfo {
    /// A namespace known only by its inode.
    pub fn new(inode: NetnsInode) -> Self {
        NetnsInfo {
            inode,
            ip_netns_name: None,
            path: None,
            is_host: false,
            pid: None,
            comm: None,
            container: None,
            cookie: None,
        }
    }

    /// "host"; else the pod as "namespace/pod"; else the container's name; else the
    /// ip-netns name (CNI plugins name pod namespaces `cni-<uuid>`, which says nothing);
    /// else "RUNTIME:ID12"; else "comm[pid]"; else "netns:INODE".
    pub fn label(&self) -> String {
        if self.is_host {
            return "host".to_string();
        }
        if let Some(c) = &self.container {
            if let (Some(ns), Some(pod)) = (&c.pod_namespace, &c.pod) {
                return format!("{ns}/{pod}");
            }
            if let Some(name) = &c.name {
                return name.clone();
            }
        }
        if let Some(name) = &self.ip_netns_name {
            return name.clone();
        }
        if let Some(c) = &self.container {
            let short: String = c.id.chars().take(12).collect();
            return format!("{}:{short}", c.runtime);
        }
        if let (Some(comm), Some(pid)) = (&self.comm, self.pid) {
            return format!("{comm}[{pid}]");
        }
        format!("netns:{}", self.inode)
    }
}

/// One network interface, keyed by (netns, ifindex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub netns: NetnsInode,
    pub ifindex: u32,
    pub name: String,
    /// IFLA_INFO_KIND ("veth", "bridge", "macvlan", ...); "loopback" for lo; None for
    /// physical devices.
    pub kind: Option<String>,
    /// The other end of a veth: (netns inode, ifindex). None for other kinds, and for a veth
    /// whose peer is in a namespace that no path reaches.
    pub peer: Option<(NetnsInode, u32)>,
}

/// Every reachable namespace and its links.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub namespaces: HashMap<NetnsInode, NetnsInfo>,
    pub links: HashMap<(NetnsInode, u32), LinkInfo>,
}

impl Topology {
    pub fn link(&self, netns: NetnsInode, ifindex: u32) -> Option<&LinkInfo> {
        self.links.get(&(netns, ifindex))
    }

    /// The cookie of a namespace, where known.
    pub fn cookie(&self, netns: NetnsInode) -> Option<u64> {
        self.namespaces.get(&netns).and_then(|n| n.cookie)
    }

    /// Takes a partial discovery: its namespace list replaces ours (a namespace it did not
    /// enter keeps the cookie we had for it), its links replace ours for the namespaces it
    /// `dumped`, and links of namespaces that no longer exist go.
    pub fn merge(&mut self, fresh: Topology, dumped: &std::collections::BTreeSet<NetnsInode>) {
        let mut namespaces = fresh.namespaces;
        for (ino, n) in namespaces.iter_mut() {
            if n.cookie.is_none() && !dumped.contains(ino) {
                n.cookie = self.cookie(*ino);
            }
        }
        let mut links = fresh.links;
        // A partial discovery resolves only some peers: a link it left without one keeps
        // the peer it had (same namespace, ifindex and name: the same device).
        for (k, l) in links.iter_mut() {
            if l.peer.is_none() {
                if let Some(old) = self.links.get(k).filter(|o| o.name == l.name) {
                    l.peer = old.peer;
                }
            }
        }
        self.links
            .retain(|(ns, _), _| namespaces.contains_key(ns) && !dumped.contains(ns));
        self.links.extend(links);
        self.namespaces = namespaces;
    }

    /// The other end of a veth.
    pub fn peer_of(&self, netns: NetnsInode, ifindex: u32) -> Option<&LinkInfo> {
        let (peer_ns, peer_ifindex) = self.link(netns, ifindex)?.peer?;
        self.link(peer_ns, peer_ifindex)
    }

    /// The namespace's label, or "netns:INODE" for one not in the topology.
    pub fn label(&self, netns: NetnsInode) -> String {
        self.namespaces
            .get(&netns)
            .map(NetnsInfo::label)
            .unwrap_or_else(|| format!("netns:{netns}"))
    }

    /// The links of one namespace, by ifindex.
    pub fn links_in(&self, netns: NetnsInode) -> Vec<&LinkInfo> {
        let mut v: Vec<&LinkInfo> = self.links.values().filter(|l| l.netns == netns).collect();
        v.sort_by_key(|l| l.ifindex);
        v
    }
}

/// The host namespace inode (/proc/1/ns/net). When pid 1 is shielded from us (a sandbox
/// supervisor running as pid 1 can be), falls back to kthreadd's: kernel threads always live
/// in the initial network namespace.
pub fn host_inode() -> Result<NetnsInode, NetnsError> {
    let proc = HostPaths::current().proc();
    let err = match proc_inode(&proc.join("1/ns/net")) {
        Ok(ino) => return Ok(ino),
        Err(e) => e,
    };
    let is_kthreadd = std::fs::read_to_string(proc.join("2/comm"))
        .map(|c| c.trim_end() == "kthreadd")
        .unwrap_or(false);
    if is_kthreadd {
        if let Ok(ino) = ns_inode_of(&proc.join("2/ns/net")) {
            return Ok(ino);
        }
    }
    Err(err)
}

/// The inode of our own namespace (/proc/self/ns/net).
pub fn self_inode() -> Result<NetnsInode, NetnsError> {
    proc_inode(Path::new("/proc/self/ns/net"))
}

fn proc_inode(path: &Path) -> Result<NetnsInode, NetnsError> {
    ns_inode_of(path).map_err(|error| NetnsError::Io {
        what: path.display().to_string(),
        error,
    })
}

/// st_ino of a namespace file (following the /proc symlink).
fn ns_inode_of(path: &Path) -> io::Result<NetnsInode> {
    let ino = std::fs::metadata(path)?.ino();
    // nsfs inode numbers are the kernel's 32-bit `ns.inum`.
    NetnsInode::try_from(ino).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

fn pid_netns_inode(pid: u32) -> Result<NetnsInode, NetnsError> {
    let dir = HostPaths::current().proc().join(pid.to_string());
    if let Err(source) = std::fs::metadata(&dir) {
        return Err(if source.kind() == io::ErrorKind::NotFound {
            NetnsError::NoSuchPid(pid)
        } else {
            NetnsError::PidNetns { pid, error: source }
        });
    }
    ns_inode_of(&dir.join("ns/net")).map_err(|error| NetnsError::PidNetns { pid, error })
}

/// The distinct `ip netns` directories (/var/run is normally a symlink to /run).
fn ip_netns_dirs() -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for dir in IP_NETNS_DIRS {
        let dir = HostPaths::current().join(dir);
        let canon = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !seen.contains(&canon) {
            seen.push(canon);
            dirs.push(dir);
        }
    }
    dirs
}

fn resolve_name(name: &str) -> Result<NetnsInode, NetnsError> {
    for dir in ip_netns_dirs() {
        let path = dir.join(name);
        match probe_netns_file(&path) {
            Ok(ino) => return Ok(ino),
            Err(Probe::NotFound) => continue,
            // A leftover file without its bind mount, or unreadable: say which file.
            Err(e) => return Err(e.into_error(&path)),
        }
    }
    Err(NetnsError::UnknownName(name.to_string()))
}

/// Why a path is not an openable network namespace.
#[derive(Debug)]
enum Probe {
    NotFound,
    NotNetns(Option<String>),
    Io(io::Error),
}

impl Probe {
    fn from_io(e: io::Error) -> Self {
        // ENOTDIR ("/etc/passwd/x") is as absent as ENOENT.
        if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
            Probe::NotFound
        } else {
            Probe::Io(e)
        }
    }

    fn into_error(self, path: &Path) -> NetnsError {
        match self {
            Probe::NotFound => NetnsError::NoSuchPath(path.to_path_buf()),
            Probe::NotNetns(detail) => NetnsError::NotNetnsFile {
                path: path.to_path_buf(),
                detail,
            },
            Probe::Io(error) => NetnsError::Access {
                path: path.to_path_buf(),
                error,
            },
        }
    }
}

/// Checks that `path` is an nsfs network namespace file and returns its inode.
fn probe_netns_file(path: &Path) -> Result<NetnsInode, Probe> {
    open_netns_file(path).map(|(ino, _)| ino)
}

/// Opens a network namespace file; returns its inode and the open file (for setns or
/// NETNSA_FD).
fn open_netns_file(path: &Path) -> Result<(NetnsInode, File), Probe> {
    let meta = std::fs::metadata(path).map_err(Probe::from_io)?;
    // nsfs files are regular files; refusing anything else up front means a device node or
    // FIFO is never opened (opening has side effects for some devices).
    if !meta.is_file() {
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "it is a directory"
        } else if ft.is_fifo() {
            "it is a FIFO"
        } else if ft.is_socket() {
            "it is a socket"
        } else {
            "it is a device"
        };
        return Err(Probe::NotNetns(Some(what.to_string())));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(Probe::from_io)?;
    check_netns_fd(&file)?;
    let ino = file.metadata().map_err(Probe::Io)?.ino();
    let ino = NetnsInode::try_from(ino).map_err(|_| Probe::NotNetns(None))?;
    Ok((ino, file))
}

/// NS_GET_NSTYPE must say CLONE_NEWNET. Kernels before 4.11 lack the ioctl; there the best
/// check is that the file lives on nsfs (same st_dev as our own /proc/self/ns/net).
fn check_netns_fd(file: &File) -> Result<(), Probe> {
    // SAFETY: the descriptor is valid while `file` lives; NS_GET_NSTYPE takes no argument
    // and only returns an int (other file systems reject the unknown request with ENOTTY).
    let nstype = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if nstype >= 0 {
        return if nstype == libc::CLONE_NEWNET {
            Ok(())
        } else {
            Err(Probe::NotNetns(Some(format!(
                "it is a {} namespace",
                nstype_name(nstype)
            ))))
        };
    }
    let dev = file.metadata().map_err(Probe::Io)?.dev();
    let nsfs_dev = std::fs::metadata("/proc/self/ns/net").map(|m| m.dev()).ok();
    if nsfs_dev == Some(dev) {
        Ok(())
    } else {
        Err(Probe::NotNetns(None))
    }
}

fn nstype_name(nstype: libc::c_int) -> &'static str {
    match nstype {
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWCGROUP => "cgroup",
        CLONE_NEWTIME => "time",
        _ => "non-network",
    }
}

#[cfg(test)]
mod tests;
