//! The kernel's own per-device receive counters (rtnetlink IFLA_STATS64), read in each
//! namespace: the ground truth sirqtop reconciles its receive counts with, where a receive
//! path has no hook that sees it. A netlink socket answers for the namespace it was made
//! in for its whole life, so one is kept per namespace: a reading enters no namespace
//! except new ones.

use std::collections::HashMap;
use std::path::PathBuf;

use super::discover::{enter, netns_cookie_here, Target};
use super::netlink::NlSocket;
use super::{NetnsError, NetnsInode};

/// One device's statistics as the kernel reports them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    pub name: String,
    pub kind: Option<String>,
    /// The namespace's cookie (None on kernels before 5.14): tells a reused inode apart.
    pub cookie: Option<u64>,
    pub rx_packets: u64,
}

/// A socket inside one namespace, that namespace's cookie, and its links' names and kinds.
struct Member {
    sock: NlSocket,
    cookie: Option<u64>,
    links: HashMap<u32, (String, Option<String>)>,
}

impl Member {
    /// Names and kinds of the links: dumped again only when a new ifindex shows up.
    fn learn_links(&mut self) -> bool {
        match self.sock.dump_links() {
            Ok(links) => {
                self.links = links
                    .into_iter()
                    .map(|l| (l.ifindex, (l.name, l.kind)))
                    .collect();
                true
            }
            Err(_) => false,
        }
    }
}

/// Reads every device's statistics in a set of namespaces, keeping a socket per namespace.
#[derive(Default)]
pub struct StatsReader {
    members: HashMap<NetnsInode, Member>,
}

impl StatsReader {
    /// The statistics of every device in the given namespaces (inode, a path that opens
    /// it), keyed by (namespace inode, ifindex). A namespace that cannot be entered is left
    /// out; sockets of namespaces no longer listed are closed.
    pub fn read(
        &mut self,
        namespaces: Vec<(NetnsInode, PathBuf)>,
    ) -> Result<HashMap<(NetnsInode, u32), DeviceStats>, NetnsError> {
        self.members
            .retain(|ino, _| namespaces.iter().any(|(i, _)| i == ino));
        let new: Vec<(NetnsInode, PathBuf)> = namespaces
            .into_iter()
            .filter(|(i, _)| !self.members.contains_key(i))
            .collect();
        if !new.is_empty() {
            // Entering namespaces happens in a helper thread, as discovery does.
            let joined = std::thread::Builder::new()
                .name("sirqtop-stats".to_string())
                .spawn(move || {
                    let mut out = Vec::new();
                    for (inode, path) in new {
                        let t = Target {
                            inode,
                            path,
                            is_host: false,
                        };
                        if let Some(sock) = enter(&t) {
                            let cookie = netns_cookie_here();
                            out.push((
                                inode,
                                Member {
                                    sock,
                                    cookie,
                                    links: HashMap::new(),
                                },
                            ));
                        }
                    }
                    out
                })
                .map_err(|e| NetnsError::Helper(e.to_string()))?
                .join()
                .map_err(|_| NetnsError::Helper("panicked".to_string()))?;
            self.members.extend(joined);
        }
        let mut out = HashMap::new();
        let mut dead = Vec::new();
        for (inode, m) in self.members.iter_mut() {
            let Ok(rx) = m.sock.dump_rx_packets() else {
                dead.push(*inode);
                continue;
            };
            if rx.iter().any(|(i, _)| !m.links.contains_key(i)) && !m.learn_links() {
                dead.push(*inode);
                continue;
            }
            for (ifindex, rx_packets) in rx {
                let Some((name, kind)) = m.links.get(&ifindex) else {
                    continue;
                };
                out.insert(
                    (*inode, ifindex),
                    DeviceStats {
                        name: name.clone(),
                        kind: kind.clone(),
                        cookie: m.cookie,
                        rx_packets,
                    },
                );
            }
        }
        for d in dead {
            self.members.remove(&d);
        }
        Ok(out)
    }
}
