//! Namespace enumeration (`scan_namespaces`) and the per-namespace link dump
//! (`discover`), run in a helper thread that hops between namespaces.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use super::netlink::{NlError, NlSocket, RawLink};
use super::{
    host_inode, ip_netns_dirs, ns_inode_of, open_netns_file, parse_cgroup, probe_netns_file,
    LinkInfo, NetnsError, NetnsInfo, NetnsInode, Topology,
};

/// How many times a link dump is retried when the kernel flags it as interrupted.
const DUMP_ATTEMPTS: usize = 3;

/// Directory entries sorted by name, so that the first of several names wins consistently.
fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    v.sort();
    v
}

/// Mount points of network namespace bind mounts (`nsfs`, root `net:[INODE]`) in a
/// /proc/self/mountinfo text; catches namespaces mounted outside the well-known dirs
/// (CNI, podman, rootless runtimes).
fn parse_mountinfo_netns(content: &str) -> Vec<PathBuf> {
    content
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = *fields.get(sep + 1)?;
            let root = *fields.get(3)?;
            let mount_point = *fields.get(4)?;
            // Before nsfs (Linux < 3.19) these mounts showed as "proc".
            let is_ns_fs = fstype == "nsfs" || fstype == "proc";
            (is_ns_fs && root.starts_with("net:["))
                .then(|| PathBuf::from(unescape_octal(mount_point)))
        })
        .collect()
}

/// Undoes mountinfo's `\ooo` escaping of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn entry_for(
    map: &mut HashMap<NetnsInode, NetnsInfo>,
    inode: NetnsInode,
    host: Option<NetnsInode>,
) -> &mut NetnsInfo {
    map.entry(inode).or_insert_with(|| NetnsInfo {
        is_host: host == Some(inode),
        ..NetnsInfo::new(inode)
    })
}

/// Every network namespace reachable from /run/netns, /var/run/docker/netns, other nsfs
/// mounts and /proc/*/ns/net, deduplicated by inode and labelled, without link dumps.
/// Entries that vanish or cannot be read while scanning are skipped.
pub fn scan_namespaces() -> Result<HashMap<NetnsInode, NetnsInfo>, NetnsError> {
    let host = host_inode().ok();
    let mut map = HashMap::new();

    for dir in ip_netns_dirs() {
        for (name, path) in sorted_entries(&dir) {
            if let Ok(ino) = probe_netns_file(&path) {
                let info = entry_for(&mut map, ino, host);
                if info.ip_netns_name.is_none() {
                    info.ip_netns_name = Some(name);
                    info.path = Some(path);
                }
            }
        }
    }
    let paths = super::HostPaths::current();
    for (_, path) in sorted_entries(&paths.docker_netns()) {
        if let Ok(ino) = probe_netns_file(&path) {
            entry_for(&mut map, ino, host).path.get_or_insert(path);
        }
    }
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        for path in parse_mountinfo_netns(&mountinfo) {
            if let Ok(ino) = probe_netns_file(&path) {
                entry_for(&mut map, ino, host).path.get_or_insert(path);
            }
        }
    }

    let proc_dir = paths.proc();
    let proc = std::fs::read_dir(&proc_dir).map_err(|source| NetnsError::Io {
        what: proc_dir.display().to_string(),
        error: source,
    })?;
    let mut pids: Vec<u32> = proc
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let ns_path = proc_dir.join(format!("{pid}/ns/net"));
        // Processes exit and permissions vary: skip what cannot be read.
        let Ok(ino) = ns_inode_of(&ns_path) else {
            continue;
        };
        let info = entry_for(&mut map, ino, host);
        if info.pid.is_none() {
            info.pid = Some(pid);
            info.path.get_or_insert(ns_path);
        }
    }
    let mut owners: Option<super::owner::Owners> = None;
    for info in map.values_mut() {
        let Some(pid) = info.pid else { continue };
        info.comm = std::fs::read_to_string(proc_dir.join(format!("{pid}/comm")))
            .ok()
            .map(|s| s.trim_end_matches('\n').to_string());
        info.container = std::fs::read_to_string(proc_dir.join(format!("{pid}/cgroup")))
            .ok()
            .and_then(|s| parse_cgroup(&s));
        if let Some(c) = info.container.as_mut() {
            // The pod and container directories are listed once per scan, and only on
            // a node that has containers.
            owners
                .get_or_insert_with(|| super::owner::Owners::scan(paths))
                .fill(c);
        }
    }
    Ok(map)
}

/// Enumerates every reachable network namespace (see [`scan_namespaces`]) and dumps the
/// links of each one over rtnetlink from inside it. veth peers in other namespaces are
/// resolved through IFLA_LINK_NETNSID and RTM_GETNSID. A namespace that cannot be entered
/// is kept, with no links.
pub fn discover() -> Result<Topology, NetnsError> {
    discover_in(None, None, None).map(|(t, _)| t)
}

/// Like [`discover`], but enters only the `wanted` namespaces (all when None) and the
/// namespaces their veths' peers are in: what a new interface needs, without a link dump
/// of every namespace on the node. With a `known` namespace list that has a path for every
/// wanted namespace, the scan of /run/netns, mounts and /proc is skipped (it is most of
/// the cost on a node with many pods); if one of those paths no longer opens its
/// namespace, it scans after all. Returns the topology (every namespace listed, links of
/// the entered ones) and the namespaces whose links it dumped. With `peers_for`, veth peers
/// are resolved only for those (namespace, ifindex) links: mapping a veth's peer nsid to
/// a namespace asks the kernel once per candidate namespace, and a node's namespace holds a
/// veth for every pod; the others come back without a peer.
pub fn discover_in(
    wanted: Option<&BTreeSet<NetnsInode>>,
    known: Option<&HashMap<NetnsInode, NetnsInfo>>,
    peers_for: Option<&BTreeSet<(NetnsInode, u32)>>,
) -> Result<(Topology, BTreeSet<NetnsInode>), NetnsError> {
    if let (Some(w), Some(k)) = (wanted, known) {
        if w.iter().all(|i| k.get(i).is_some_and(|n| n.path.is_some())) {
            let got = discover_among(k.clone(), Some(w), peers_for)?;
            if w.iter().all(|i| got.1.contains(i)) {
                return Ok(got);
            }
        }
    }
    discover_among(scan_namespaces()?, wanted, peers_for)
}

fn discover_among(
    mut namespaces: HashMap<NetnsInode, NetnsInfo>,
    wanted: Option<&BTreeSet<NetnsInode>>,
    peers_for: Option<&BTreeSet<(NetnsInode, u32)>>,
) -> Result<(Topology, BTreeSet<NetnsInode>), NetnsError> {
    let mut targets: Vec<Target> = namespaces
        .values()
        .filter_map(|i| {
            Some(Target {
                inode: i.inode,
                path: i.path.clone()?,
                is_host: i.is_host,
            })
        })
        .collect();
    // Host first: most veth peers are there, so nsid lookups hit it early.
    targets.sort_by_key(|t| (!t.is_host, t.inode));
    let wanted = wanted.cloned();
    let peers_for = peers_for.cloned();
    let dump = std::thread::Builder::new()
        .name("sirqtop-netns".to_string())
        .spawn(move || dump_namespaces(&targets, wanted.as_ref(), peers_for.as_ref()))
        .map_err(|e| NetnsError::Helper(e.to_string()))?
        .join()
        .map_err(|_| NetnsError::Helper("panicked".to_string()))?;

    let mut links = HashMap::new();
    for (netns, raws) in &dump.links {
        for raw in raws {
            links.insert((*netns, raw.ifindex), link_info(*netns, raw, &dump.nsids));
        }
    }
    for (ino, cookie) in &dump.cookies {
        if let Some(n) = namespaces.get_mut(ino) {
            n.cookie = Some(*cookie);
        }
    }
    let dumped = dump.links.keys().copied().collect();
    Ok((Topology { namespaces, links }, dumped))
}

/// A namespace to enter, by a path that opens it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub inode: NetnsInode,
    pub path: PathBuf,
    pub is_host: bool,
}

/// Raw results of the helper thread.
#[derive(Debug, Default)]
struct Dump {
    links: HashMap<NetnsInode, Vec<RawLink>>,
    /// (namespace, nsid as that namespace numbers it) -> the namespace the nsid names.
    nsids: HashMap<(NetnsInode, i32), NetnsInode>,
    /// Cookies of the namespaces entered (SO_NETNS_COOKIE).
    cookies: HashMap<NetnsInode, u64>,
}

fn link_info(
    netns: NetnsInode,
    raw: &RawLink,
    nsids: &HashMap<(NetnsInode, i32), NetnsInode>,
) -> LinkInfo {
    let kind = raw
        .kind
        .clone()
        .or_else(|| raw.loopback.then(|| "loopback".to_string()));
    let peer = if kind.as_deref() == Some("veth") {
        veth_peer(netns, raw, nsids)
    } else {
        None
    };
    LinkInfo {
        netns,
        ifindex: raw.ifindex,
        name: raw.name.clone(),
        kind,
        peer,
    }
}

/// The peer of a veth from its IFLA_LINK / IFLA_LINK_NETNSID. Older kernels (before
/// "rtnetlink: always put IFLA_LINK for links with a link-netnsid") omit IFLA_LINK when the
/// peer's ifindex equals the device's own, which is possible only across namespaces; the
/// kernel reports ifindex 0 when the peer is being destroyed.
fn veth_peer(
    netns: NetnsInode,
    raw: &RawLink,
    nsids: &HashMap<(NetnsInode, i32), NetnsInode>,
) -> Option<(NetnsInode, u32)> {
    match raw.link_netnsid {
        Some(nsid) => {
            let peer_ns = *nsids.get(&(netns, nsid))?;
            let ifindex = raw.link.unwrap_or(raw.ifindex);
            (ifindex != 0).then_some((peer_ns, ifindex))
        }
        None => raw
            .link
            .filter(|&l| l != 0 && l != raw.ifindex)
            .map(|l| (netns, l)),
    }
}

/// The namespace the calling thread is in now (it changes as the helper hops).
fn thread_netns() -> Option<NetnsInode> {
    ns_inode_of(Path::new("/proc/thread-self/ns/net")).ok()
}

/// Moves the calling (helper) thread into the target namespace and opens a socket there.
/// Fails if the path now opens a different namespace (a reused pid, a remounted name).
pub(super) fn enter(target: &Target) -> Option<NlSocket> {
    if thread_netns() != Some(target.inode) {
        let (ino, file) = open_netns_file(&target.path).ok()?;
        if ino != target.inode {
            return None;
        }
        // SAFETY: `file` is an open network namespace descriptor (checked above); setns only
        // affects the calling thread, which is the discovery helper thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return None;
        }
    }
    NlSocket::open().ok()
}

/// The cookie of the calling thread's network namespace: SO_NETNS_COOKIE (5.14+) on a
/// socket made here. None on older kernels.
pub(super) fn netns_cookie_here() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: plain socket(2) call; the result is checked and owned below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns; dropping closes it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid for writes of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            std::ptr::addr_of_mut!(cookie).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

fn dump_links(sock: &mut NlSocket) -> Option<Vec<RawLink>> {
    for _ in 0..DUMP_ATTEMPTS {
        match sock.dump_links() {
            Ok(links) => return Some(links),
            Err(NlError::Interrupted) => continue,
            Err(NlError::Io(_)) => return None,
        }
    }
    None
}

/// Enters `t`, dumps its links and reads its cookie.
fn dump_one(t: &Target, dump: &mut Dump) {
    if let Some(links) = enter(t).as_mut().and_then(dump_links) {
        dump.links.insert(t.inode, links);
        if let Some(c) = netns_cookie_here() {
            dump.cookies.insert(t.inode, c);
        }
    }
}

/// Runs in the helper thread: pass 1 dumps the links of the wanted namespaces (all when
/// None), pass 2 maps the nsids that their veths report to namespaces, pass 3 dumps the
/// peers' namespaces not dumped yet (so a peer has a name), and maps their nsids too.
fn dump_namespaces(
    targets: &[Target],
    wanted: Option<&BTreeSet<NetnsInode>>,
    peers_for: Option<&BTreeSet<(NetnsInode, u32)>>,
) -> Dump {
    let mut dump = Dump::default();
    for t in targets {
        if wanted.is_none_or(|w| w.contains(&t.inode)) {
            dump_one(t, &mut dump);
        }
    }
    resolve_all_nsids(targets, &mut dump, peers_for);
    if wanted.is_some() {
        let peers: BTreeSet<NetnsInode> = dump
            .nsids
            .values()
            .copied()
            .filter(|ns| !dump.links.contains_key(ns))
            .collect();
        if !peers.is_empty() {
            for t in targets.iter().filter(|t| peers.contains(&t.inode)) {
                dump_one(t, &mut dump);
            }
            resolve_all_nsids(targets, &mut dump, peers_for);
        }
    }
    dump
}

/// Maps the nsids that the dumped namespaces' veths report, for every dumped namespace
/// not mapped yet.
fn resolve_all_nsids(
    targets: &[Target],
    dump: &mut Dump,
    peers_for: Option<&BTreeSet<(NetnsInode, u32)>>,
) {
    for t in targets {
        if dump.nsids.keys().any(|(ns, _)| *ns == t.inode) {
            continue;
        }
        let Some(links) = dump.links.get(&t.inode) else {
            continue;
        };
        let wanted: BTreeSet<i32> = links
            .iter()
            .filter(|l| l.kind.as_deref() == Some("veth"))
            .filter(|l| peers_for.is_none_or(|p| p.contains(&(t.inode, l.ifindex))))
            .filter_map(|l| l.link_netnsid)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let Some(mut sock) = enter(t) else { continue };
        for (nsid, peer_ns) in resolve_nsids(&mut sock, t, &wanted, targets, &dump.links) {
            dump.nsids.insert((t.inode, nsid), peer_ns);
        }
    }
}

/// Asks the kernel, from inside `here`, which nsid it uses for candidate namespaces until
/// every wanted nsid is found or the candidates run out. Each candidate is asked at most
/// once.
fn resolve_nsids(
    sock: &mut NlSocket,
    here: &Target,
    wanted: &BTreeSet<i32>,
    targets: &[Target],
    links: &HashMap<NetnsInode, Vec<RawLink>>,
) -> HashMap<i32, NetnsInode> {
    let mut found: HashMap<i32, NetnsInode> = HashMap::new();
    let mut asked: BTreeSet<NetnsInode> = BTreeSet::new();
    let here_links = links.get(&here.inode).map(Vec::as_slice).unwrap_or(&[]);
    for &nsid in wanted {
        if found.contains_key(&nsid) {
            continue;
        }
        let order = candidate_order(here.inode, nsid, here_links, targets, links);
        for cand in order {
            if !asked.insert(cand.inode) {
                continue;
            }
            let Ok((ino, file)) = open_netns_file(&cand.path) else {
                continue;
            };
            if ino != cand.inode {
                continue;
            }
            if let Ok(Some(id)) = sock.nsid_of(file.as_fd()) {
                found.entry(id).or_insert(cand.inode);
                if id == nsid {
                    break;
                }
            }
        }
    }
    found
}

/// Candidates for an nsid: namespaces holding a veth that points back at one of ours with
/// that nsid first, then the rest (host first, as `targets` is ordered).
fn candidate_order<'a>(
    here: NetnsInode,
    nsid: i32,
    here_links: &[RawLink],
    targets: &'a [Target],
    links: &HashMap<NetnsInode, Vec<RawLink>>,
) -> Vec<&'a Target> {
    // (our ifindex, the peer's ifindex) of veths whose peer is behind this nsid.
    let ends: Vec<(u32, u32)> = here_links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth") && l.link_netnsid == Some(nsid))
        .map(|l| (l.ifindex, l.link.unwrap_or(l.ifindex)))
        .collect();
    let plausible = |t: &Target| {
        links.get(&t.inode).is_some_and(|ls| {
            ls.iter().any(|l| {
                l.kind.as_deref() == Some("veth")
                    && l.link_netnsid.is_some()
                    && ends.contains(&(l.link.unwrap_or(l.ifindex), l.ifindex))
            })
        })
    };
    let others = targets.iter().filter(|t| t.inode != here);
    let (mut first, rest): (Vec<&Target>, Vec<&Target>) = others.partition(|t| plausible(t));
    first.extend(rest);
    first
}

#[cfg(test)]
mod tests;
