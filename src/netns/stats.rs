//! The kernel's own per-device receive counters (rtnetlink IFLA_STATS64), read from inside
//! each namespace: the ground truth sirqtop reconciles its receive counts with, where a
//! receive path has no hook that sees it.

use std::collections::HashMap;
use std::path::PathBuf;

use super::discover::{enter, netns_cookie_here, Target};
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

/// The statistics of every device in the given namespaces (inode, a path that opens it),
/// keyed by (namespace inode, ifindex). A namespace that cannot be entered is left out.
/// The namespaces are entered from a helper thread, as discovery does.
pub fn device_stats(
    namespaces: Vec<(NetnsInode, PathBuf)>,
) -> Result<HashMap<(NetnsInode, u32), DeviceStats>, NetnsError> {
    std::thread::Builder::new()
        .name("sirqtop-stats".to_string())
        .spawn(move || {
            let mut out = HashMap::new();
            for (inode, path) in namespaces {
                let t = Target {
                    inode,
                    path,
                    is_host: false,
                };
                let Some(mut sock) = enter(&t) else { continue };
                let Ok(links) = sock.dump_link_stats() else {
                    continue;
                };
                let cookie = netns_cookie_here();
                for (l, rx) in links {
                    let Some(rx_packets) = rx else { continue };
                    out.insert(
                        (inode, l.ifindex),
                        DeviceStats {
                            name: l.name,
                            kind: l.kind,
                            cookie,
                            rx_packets,
                        },
                    );
                }
            }
            out
        })
        .map_err(|e| NetnsError::Helper(e.to_string()))?
        .join()
        .map_err(|_| NetnsError::Helper("panicked".to_string()))
}
