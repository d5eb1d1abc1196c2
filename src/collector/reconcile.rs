//! Reconciliation with the kernel's own device statistics. Some receives have no hook on
//! some kernels (after a tc peer redirect, or an rx_handler handing the skb to a macvlan,
//! ipvlan or VLAN device, only fexit/kretprobe see them): every interface reports what its
//! own counters say it received over the capture, so that what sirqtop missed is a
//! number (`rx_unseen`), never a silent 0. Devices of the kinds whose receives can hide
//! that sirqtop never saw at all are reported too.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use crate::model::{IfaceKey, Interface};
use crate::netns::{self, DeviceStats, NetnsInode, StatsReader};

/// Kinds whose receives a missing hook can hide (the receiving side of a peer redirect,
/// rx_handler uppers): reported even when sirqtop saw nothing of them.
const HIDDEN_RX_KINDS: &[&str] = &[
    "veth", "netkit", "macvlan", "macvtap", "ipvlan", "ipvtap", "vlan",
];

#[derive(Default)]
pub(super) struct Reconciler {
    /// Only these namespaces (the --netns filter); empty = every namespace.
    only: BTreeSet<NetnsInode>,
    reader: StatsReader,
    /// Each device's rx_packets when first read (at attach, or when its namespace was
    /// first listed: 0 for a device created later), and its namespace's cookie.
    base: HashMap<(NetnsInode, u32), (Option<u64>, u64)>,
    /// The last reading of every device, kept when it goes away.
    last: HashMap<(NetnsInode, u32), DeviceStats>,
    /// Whether the first reading (at attach) has been taken.
    started: bool,
    /// The devices the last reading found.
    present: BTreeSet<(NetnsInode, u32)>,
}

/// A device with receives the kernel counted that sirqtop never saw.
pub(super) struct Hidden {
    pub key: IfaceKey,
    pub name: String,
    pub kind: Option<String>,
    pub kernel_rx_packets: u64,
}

impl Reconciler {
    pub fn new(only: &[u32]) -> Reconciler {
        Reconciler {
            only: only.iter().copied().collect(),
            ..Default::default()
        }
    }

    /// Reads every device's statistics now, in the namespaces listed (None: scan the
    /// node's namespaces; later calls pass the namespaces identity keeps current). The
    /// first call (at attach) is the baseline; a device first read later was created
    /// later, so its baseline is 0.
    pub fn sample(&mut self, namespaces: Option<Vec<(NetnsInode, PathBuf)>>) {
        let listed = match namespaces {
            Some(l) => l,
            None => match netns::scan_namespaces() {
                Ok(all) => all
                    .into_values()
                    .filter_map(|n| Some((n.inode, n.path?)))
                    .collect(),
                Err(_) => return,
            },
        };
        let wanted: Vec<(NetnsInode, PathBuf)> = listed
            .into_iter()
            .filter(|(i, _)| self.only.is_empty() || self.only.contains(i))
            .collect();
        let Ok(now) = self.reader.read(wanted) else {
            return;
        };
        self.present = now.keys().copied().collect();
        for (k, s) in now {
            let base = if self.started { 0 } else { s.rx_packets };
            let fresh = match self.base.get(&k) {
                Some((cookie, _)) => cookie.is_some() && s.cookie.is_some() && *cookie != s.cookie,
                None => true,
            };
            if fresh {
                // A new device, or a new namespace at a reused inode.
                self.base.insert(k, (s.cookie, base));
            }
            self.last.insert(k, s);
        }
        self.started = true;
    }

    /// The device's rx_packets since attach as the kernel counts them, if it was read
    /// (and read in the namespace the key was counted in).
    fn kernel_rx(&self, k: &IfaceKey) -> Option<u64> {
        let id = (k.netns, k.ifindex);
        let (cookie, base) = self.base.get(&id)?;
        let last = self.last.get(&id)?;
        if k.cookie != 0 && cookie.is_some_and(|c| c != k.cookie) {
            return None;
        }
        Some(last.rx_packets.saturating_sub(*base))
    }

    /// Fills in `kernel_rx_packets` of the interfaces sirqtop counted, and returns the
    /// devices of the kinds that can hide receives which the kernel says received and
    /// sirqtop never saw.
    /// A gone device's last reading is kept while an interface of the snapshot needs it,
    /// and no longer: pods come and go all day.
    pub fn apply(&mut self, interfaces: &mut [Interface]) -> Vec<Hidden> {
        let mut counted: BTreeSet<(NetnsInode, u32)> = BTreeSet::new();
        for i in interfaces.iter_mut() {
            i.kernel_rx_packets = self.kernel_rx(&i.key);
            counted.insert((i.key.netns, i.key.ifindex));
        }
        let present = &self.present;
        let keep = |k: &(NetnsInode, u32)| present.contains(k) || counted.contains(k);
        self.last.retain(|k, _| keep(k));
        self.base.retain(|k, _| keep(k));
        let mut hidden = Vec::new();
        for (id, s) in &self.last {
            if counted.contains(id)
                || !self.present.contains(id)
                || !HIDDEN_RX_KINDS.contains(&s.kind.as_deref().unwrap_or(""))
            {
                continue;
            }
            let key = IfaceKey {
                netns: id.0,
                ifindex: id.1,
                cookie: s.cookie.unwrap_or(0),
            };
            match self.kernel_rx(&key) {
                Some(n) if n > 0 => hidden.push(Hidden {
                    key,
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    kernel_rx_packets: n,
                }),
                _ => {}
            }
        }
        hidden.sort_by_key(|h| h.key);
        hidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(kind: &str, cookie: u64, rx: u64) -> DeviceStats {
        DeviceStats {
            name: format!("{kind}0"),
            kind: Some(kind.to_string()),
            cookie: Some(cookie),
            rx_packets: rx,
        }
    }

    fn reconciler(first: &[((u32, u32), DeviceStats)]) -> Reconciler {
        let mut r = Reconciler::default();
        for (k, s) in first {
            r.base.insert(*k, (s.cookie, s.rx_packets));
            r.last.insert(*k, s.clone());
            r.present.insert(*k);
        }
        r.started = true;
        r
    }

    fn key(netns: u32, ifindex: u32, cookie: u64) -> IfaceKey {
        IfaceKey {
            netns,
            ifindex,
            cookie,
        }
    }

    #[test]
    fn deltas_since_attach_and_hidden_receivers() {
        let mut r = reconciler(&[
            ((1, 2), stats("veth", 7, 100)),
            ((3, 4), stats("macvlan", 9, 50)),
            ((3, 5), stats("bridge", 9, 10)),
        ]);
        r.last.insert((1, 2), stats("veth", 7, 1100));
        r.last.insert((3, 4), stats("macvlan", 9, 5050));
        r.last.insert((3, 5), stats("bridge", 9, 20));
        let mut seen = vec![Interface::new(key(1, 2, 7))];
        seen[0].counters.rx_packets = 1000;
        let hidden = r.apply(&mut seen);
        assert_eq!(seen[0].kernel_rx_packets, Some(1000));
        assert_eq!(seen[0].rx_unseen(), Some(0));
        // The macvlan received 5000 that were never seen: reported; a bridge is not a
        // kind whose receives hide, so it is not added.
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].key, key(3, 4, 9));
        assert_eq!(hidden[0].kernel_rx_packets, 5000);
        // Gone: the counted veth keeps its numbers, the hidden macvlan is forgotten.
        r.present.clear();
        let hidden = r.apply(&mut seen);
        assert!(hidden.is_empty());
        assert_eq!(seen[0].kernel_rx_packets, Some(1000));
        assert_eq!(r.last.len(), 1);
        let _ = r.apply(&mut []);
        assert!(
            r.last.is_empty() && r.base.is_empty(),
            "nothing kept for nobody"
        );
    }

    #[test]
    fn a_reused_inode_is_not_the_counted_namespace() {
        let mut r = reconciler(&[((1, 2), stats("veth", 7, 100))]);
        r.last.insert((1, 2), stats("veth", 7, 150));
        // Counted in the namespace with cookie 8, which the statistics are not from.
        let mut seen = vec![Interface::new(key(1, 2, 8))];
        r.apply(&mut seen);
        assert_eq!(seen[0].kernel_rx_packets, None);
        assert_eq!(seen[0].rx_unseen(), None);
    }
}
