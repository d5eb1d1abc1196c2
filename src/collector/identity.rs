//! Who an interface is: first-sight records from the kernel side (name and kind of an
//! interface as it was first counted) and namespace/link resolution in user space, kept
//! for every interface ever seen so that a vanished one keeps its name.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bpf::types;
use crate::model::{IfaceKey, Interface, PeerRef};
use crate::netns::{self, ContainerRef, Topology};

/// How old the namespace/link view of the interfaces being reported may get.
const TOPOLOGY_MAX_AGE: Duration = Duration::from_secs(5);
/// A namespace that could not be resolved is not looked for again before this.
const MISS_BACKOFF: Duration = Duration::from_secs(2);

/// Names and kinds the kernel side reported when it first saw an interface, and the keys
/// first seen since the last poll.
#[derive(Default)]
struct SeenState {
    first: HashMap<IfaceKey, (String, String)>,
    /// A veth's or netkit's peer as the kernel linked it at first sight.
    peers: HashMap<IfaceKey, IfaceKey>,
    fresh: Vec<IfaceKey>,
}

type Seen = Rc<RefCell<SeenState>>;

#[derive(Debug, Clone)]
struct Identity {
    name: String,
    kind: Option<String>,
    netns_name: Option<String>,
    netns_label: String,
    container: Option<ContainerRef>,
    peer: Option<PeerRef>,
}

#[derive(Default)]
pub(super) struct Identities {
    seen: Seen,
    topology: Topology,
    /// When the namespaces of the reported interfaces were last all re-dumped.
    full_at: Option<Instant>,
    /// Identity of every interface resolved while it existed, by its full key (cookie
    /// included): a dead pod's interface keeps its own names, never a new pod's.
    known: HashMap<IfaceKey, Identity>,
    /// The newest cookie seen per inode (cookies only grow): on kernels without
    /// SO_NETNS_COOKIE, the interface with the newest cookie is the live one.
    newest: HashMap<u32, u64>,
    /// Namespaces last looked for in vain, and when.
    missed: HashMap<u32, Instant>,
    /// The host's namespace inode, read once.
    host: Option<u32>,
}

impl Identities {
    /// The ring-buffer callback that records first sightings.
    pub(super) fn ring_callback(&self) -> impl FnMut(&[u8]) -> i32 + 'static {
        let seen = self.seen.clone();
        move |data: &[u8]| on_event(&seen, data)
    }

    /// Whether the topology's namespace at `k.netns` is the one `k` was counted in.
    fn same_namespace(&self, k: &IfaceKey) -> bool {
        let Some(n) = self.topology.namespaces.get(&k.netns) else {
            return false;
        };
        match (k.cookie, n.cookie) {
            // A kernel without netns cookies: the inode is all there is.
            (0, _) => true,
            (c, Some(nc)) => c == nc,
            (c, None) => self.newest.get(&k.netns).is_none_or(|&n| n == c),
        }
    }

    /// The live link behind `k`, if its namespace is still the one it was counted in.
    fn live_link(&self, k: &IfaceKey) -> Option<&netns::LinkInfo> {
        self.same_namespace(k)
            .then(|| self.topology.link(k.netns, k.ifindex))
            .flatten()
    }

    /// Resolves interfaces first seen since the last call, while their namespaces still
    /// exist: enters only those namespaces (and their peers'). Called at every poll, so a
    /// pod that lives for a fraction of a second is still named.
    pub(super) fn resolve_fresh(&mut self) {
        let fresh = match self.seen.try_borrow_mut() {
            Ok(mut s) => std::mem::take(&mut s.fresh),
            Err(_) => return,
        };
        self.resolve(&fresh, false);
    }

    /// Whether a name or first sighting of `k` is kept.
    pub(super) fn knows(&self, k: &IfaceKey) -> bool {
        let seen = self.seen.borrow();
        self.known.contains_key(k) || seen.first.contains_key(k) || seen.peers.contains_key(k)
    }

    /// Drops what is known of forgotten interfaces.
    pub(super) fn forget(&mut self, keys: &[IfaceKey]) {
        if keys.is_empty() {
            return;
        }
        let mut seen = self.seen.borrow_mut();
        for k in keys {
            self.known.remove(k);
            seen.first.remove(k);
            seen.peers.remove(k);
        }
    }

    /// Before a snapshot: resolves what is still unknown, and re-dumps the namespaces of
    /// every reported interface when the view is older than TOPOLOGY_MAX_AGE (links that
    /// went away are then marked gone).
    pub(super) fn refresh(&mut self, keys: &[IfaceKey]) {
        let stale = self.full_at.is_none_or(|t| t.elapsed() > TOPOLOGY_MAX_AGE);
        self.resolve(keys, stale);
        if stale {
            self.full_at = Some(Instant::now());
        }
    }

    fn resolve(&mut self, keys: &[IfaceKey], all: bool) {
        for k in keys {
            if k.cookie != 0 {
                let n = self.newest.entry(k.netns).or_insert(k.cookie);
                *n = (*n).max(k.cookie);
            }
        }
        let now = Instant::now();
        let mut wanted: BTreeSet<u32> = keys
            .iter()
            .filter(|k| all || (!self.known.contains_key(k) && self.live_link(k).is_none()))
            .filter(|k| {
                all || self
                    .missed
                    .get(&k.netns)
                    .is_none_or(|t| now.duration_since(*t) > MISS_BACKOFF)
            })
            .map(|k| k.netns)
            .collect();
        if wanted.is_empty() {
            return;
        }
        // The host holds most veth peers: keep its links current too.
        if self.host.is_none() {
            self.host = netns::host_inode().ok();
        }
        wanted.extend(self.host);
        // A periodic refresh rescans the node; resolving new interfaces uses what is known.
        let known = (!all).then_some(&self.topology.namespaces);
        // Peers only of the interfaces asked about that have none yet: a veth's peer is
        // fixed for its life, and mapping nsids is the expensive part of a dump.
        let peers_for: BTreeSet<(u32, u32)> = keys
            .iter()
            .filter(|k| self.live_link(k).and_then(|l| l.peer).is_none())
            .map(|k| (k.netns, k.ifindex))
            .collect();
        let Ok((fresh, dumped)) = netns::discover_in(Some(&wanted), known, Some(&peers_for)) else {
            return;
        };
        self.topology.merge(fresh, &dumped);
        for k in keys {
            if self.live_link(k).is_some() {
                self.missed.remove(&k.netns);
                let id = self.identity_of(k);
                if let Some(id) = id {
                    self.known.insert(*k, id);
                }
            } else if !self.known.contains_key(k) {
                self.missed.insert(k.netns, now);
            }
        }
    }

    /// The label of a namespace (as its interfaces have it), by inode. The host's is
    /// "host" even before any of its interfaces was counted (and its namespace scanned).
    pub(super) fn netns_label(&self, netns: u32) -> String {
        let host = self.host.or_else(|| netns::host_inode().ok());
        if host == Some(netns) && !self.topology.namespaces.contains_key(&netns) {
            return "host".into();
        }
        self.topology.label(netns)
    }

    /// Names, labels and peer of a live interface, from the topology.
    fn identity_of(&self, k: &IfaceKey) -> Option<Identity> {
        let topo = &self.topology;
        let l = topo.link(k.netns, k.ifindex)?;
        let ns = topo.namespaces.get(&k.netns);
        let peer = l.peer.map(|(pns, pidx)| PeerRef {
            netns: pns,
            ifindex: pidx,
            cookie: topo.cookie(pns).unwrap_or(0),
            name: topo.link(pns, pidx).map(|p| p.name.clone()),
            netns_label: Some(topo.label(pns)),
        });
        Some(Identity {
            name: l.name.clone(),
            kind: l.kind.clone(),
            netns_name: ns.and_then(|n| n.ip_netns_name.clone()),
            netns_label: topo.label(k.netns),
            container: ns.and_then(|n| n.container.clone()),
            peer,
        })
    }

    /// Every namespace the topology lists, with a path that opens it (re-listed at least
    /// every TOPOLOGY_MAX_AGE, and whenever a new namespace's interface shows up).
    pub(super) fn namespace_paths(&self) -> Vec<(u32, std::path::PathBuf)> {
        self.topology
            .namespaces
            .values()
            .filter_map(|n| Some((n.inode, n.path.clone()?)))
            .collect()
    }

    /// The peer the kernel side read from the device itself, named from what is known of
    /// it: a pair that lived less than a poll still has its peer.
    fn kernel_peer(&self, k: &IfaceKey) -> Option<PeerRef> {
        let seen = self.seen.try_borrow().ok()?;
        let p = *seen.peers.get(k)?;
        let known = self.known.get(&p);
        let live = self.live_link(&p);
        let name = known
            .map(|id| id.name.clone())
            .or_else(|| live.map(|l| l.name.clone()))
            .or_else(|| seen.first.get(&p).map(|f| f.0.clone()));
        let netns_label = known.map(|id| id.netns_label.clone()).or_else(|| {
            self.same_namespace(&p)
                .then(|| self.topology.label(p.netns))
        });
        Some(PeerRef {
            netns: p.netns,
            ifindex: p.ifindex,
            cookie: p.cookie,
            name,
            netns_label,
        })
    }

    /// Fills in name, kind, namespace labels, container and peer; marks it gone when its
    /// link (or its namespace) is no longer there.
    pub(super) fn apply(&self, i: &mut Interface) {
        if let Some(id) = self.known.get(&i.key) {
            i.name = id.name.clone();
            i.kind = id.kind.clone();
            i.netns_name = id.netns_name.clone();
            i.netns_label = id.netns_label.clone();
            i.container = id.container.clone();
            i.peer = id.peer.clone();
        } else if let Ok(seen) = self.seen.try_borrow() {
            // Gone before we could look: the kernel side's first-sight record names it.
            if let Some((name, kind)) = seen.first.get(&i.key) {
                i.name = name.clone();
                i.kind = (!kind.is_empty()).then(|| kind.clone());
            }
            if self.same_namespace(&i.key) {
                if let Some(n) = self.topology.namespaces.get(&i.key.netns) {
                    i.netns_name = n.ip_netns_name.clone();
                    i.netns_label = n.label();
                    i.container = n.container.clone();
                }
            }
        }
        if i.peer.is_none() {
            i.peer = self.kernel_peer(&i.key);
        }
        if i.kind.is_none() && i.name == "lo" {
            i.kind = Some("loopback".into());
        }
        i.gone = self.full_at.is_some() && self.live_link(&i.key).is_none();
    }
}

pub(super) fn c_string(raw: &[i8]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Ring-buffer callback: must not panic; a malformed record is skipped.
fn on_event(seen: &Seen, data: &[u8]) -> i32 {
    let Ok(ev) = plain::from_bytes::<types::sirq_iface_event>(data) else {
        return 0;
    };
    if ev.r#type == types::sirq_event_type::SIRQ_EV_IFACE.0 {
        if let Ok(mut s) = seen.try_borrow_mut() {
            let key = super::maps::key(&ev.key);
            s.first
                .insert(key, (c_string(&ev.name), c_string(&ev.kind)));
            if ev.peer.ifindex != 0 {
                s.peers.insert(key, super::maps::key(&ev.peer));
            }
            s.fresh.push(key);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_nul() {
        let mut raw = [0i8; 16];
        for (i, b) in b"veth0".iter().enumerate() {
            raw[i] = *b as i8;
        }
        raw[7] = b'x' as i8;
        assert_eq!(c_string(&raw), "veth0");
    }

    #[test]
    fn malformed_records_are_skipped() {
        let seen: Seen = Rc::default();
        assert_eq!(on_event(&seen, &[1, 2, 3]), 0);
        assert!(seen.borrow().first.is_empty());
        let mut ev = types::sirq_iface_event {
            r#type: types::sirq_event_type::SIRQ_EV_IFACE.0,
            ..Default::default()
        };
        ev.key.netns = 7;
        ev.key.ifindex = 3;
        ev.key.cookie = 9;
        ev.name[0] = b'a' as i8;
        ev.kind[..4].copy_from_slice(&[b'v' as i8, b'e' as i8, b't' as i8, b'h' as i8]);
        // SAFETY: sirq_iface_event is Plain: viewing it as bytes is sound.
        let bytes = unsafe { plain::as_bytes(&ev) };
        assert_eq!(on_event(&seen, bytes), 0);
        assert_eq!(
            seen.borrow().first.get(&IfaceKey {
                netns: 7,
                ifindex: 3,
                cookie: 9
            }),
            Some(&("a".into(), "veth".into()))
        );
        assert_eq!(seen.borrow().fresh.len(), 1);
    }
}
