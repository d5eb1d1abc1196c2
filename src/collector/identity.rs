//! Who an interface is: first-sight records from the kernel side (name and kind of an
//! interface as it was first counted) and namespace/link resolution in user space, kept
//! for every interface ever seen so that a vanished one keeps its name.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::bpf::types;
use crate::model::{IfaceKey, Interface, PeerRef};
use crate::netns::{self, ContainerRef, Topology};

/// How old a namespace/link view may get before the next snapshot refreshes it.
const TOPOLOGY_MAX_AGE: Duration = Duration::from_secs(5);

/// Names and kinds the kernel side reported when it first saw an interface.
type Seen = Rc<RefCell<HashMap<IfaceKey, (String, String)>>>;

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
    topology_at: Option<Instant>,
    /// Identity of every interface ever resolved.
    known: HashMap<IfaceKey, Identity>,
}

impl Identities {
    /// The ring-buffer callback that records first sightings.
    pub(super) fn ring_callback(&self) -> impl FnMut(&[u8]) -> i32 + 'static {
        let seen = self.seen.clone();
        move |data: &[u8]| on_event(&seen, data)
    }

    /// Re-resolves namespaces and links when an interface is unknown or the view is old.
    pub(super) fn refresh(&mut self, keys: &[IfaceKey]) {
        let stale = self
            .topology_at
            .is_none_or(|t| t.elapsed() > TOPOLOGY_MAX_AGE);
        let unknown = keys.iter().any(|k| !self.known.contains_key(k));
        if !(stale || unknown) {
            return;
        }
        if let Ok(t) = netns::discover() {
            self.topology = t;
            self.topology_at = Some(Instant::now());
        }
        let topo = &self.topology;
        let label_of = |ns: u32| -> (Option<String>, String) {
            match topo.namespaces.get(&ns) {
                Some(n) => (n.ip_netns_name.clone(), n.label()),
                None => (None, format!("netns:{ns}")),
            }
        };
        for l in topo.links.values() {
            let (netns_name, netns_label) = label_of(l.netns);
            let peer = l.peer.map(|(pns, pidx)| PeerRef {
                netns: pns,
                ifindex: pidx,
                name: topo.link(pns, pidx).map(|p| p.name.clone()),
                netns_label: Some(label_of(pns).1),
            });
            let id = Identity {
                name: l.name.clone(),
                kind: l.kind.clone(),
                netns_name,
                netns_label,
                container: topo
                    .namespaces
                    .get(&l.netns)
                    .and_then(|n| n.container.clone()),
                peer,
            };
            let key = IfaceKey {
                netns: l.netns,
                ifindex: l.ifindex,
            };
            self.known.insert(key, id);
        }
    }

    /// Fills in name, kind, namespace labels, container and peer; marks it gone when its
    /// link is no longer there.
    pub(super) fn apply(&self, i: &mut Interface) {
        let present = self.topology.link(i.key.netns, i.key.ifindex).is_some();
        if let Some(id) = self.known.get(&i.key) {
            i.name = id.name.clone();
            i.kind = id.kind.clone();
            i.netns_name = id.netns_name.clone();
            i.netns_label = id.netns_label.clone();
            i.container = id.container.clone();
            i.peer = id.peer.clone();
        } else if let Ok(seen) = self.seen.try_borrow() {
            // Gone before we could look: the kernel side's first-sight record names it.
            if let Some((name, kind)) = seen.get(&i.key) {
                i.name = name.clone();
                i.kind = (!kind.is_empty()).then(|| kind.clone());
            }
            if let Some(n) = self.topology.namespaces.get(&i.key.netns) {
                i.netns_name = n.ip_netns_name.clone();
                i.netns_label = n.label();
                i.container = n.container.clone();
            }
        }
        if i.kind.is_none() && i.name == "lo" {
            i.kind = Some("loopback".into());
        }
        i.gone = !present && self.topology_at.is_some();
    }
}

fn c_string(raw: &[i8]) -> String {
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
            let key = IfaceKey {
                netns: ev.netns,
                ifindex: ev.ifindex,
            };
            s.insert(key, (c_string(&ev.name), c_string(&ev.kind)));
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
        let seen: Seen = Rc::new(RefCell::new(HashMap::new()));
        assert_eq!(on_event(&seen, &[1, 2, 3]), 0);
        assert!(seen.borrow().is_empty());
        let mut ev = types::sirq_iface_event {
            r#type: types::sirq_event_type::SIRQ_EV_IFACE.0,
            netns: 7,
            ifindex: 3,
            ..Default::default()
        };
        ev.name[0] = b'a' as i8;
        ev.kind[..4].copy_from_slice(&[b'v' as i8, b'e' as i8, b't' as i8, b'h' as i8]);
        // SAFETY: sirq_iface_event is Plain: viewing it as bytes is sound.
        let bytes = unsafe { plain::as_bytes(&ev) };
        assert_eq!(on_event(&seen, bytes), 0);
        assert_eq!(
            seen.borrow().get(&IfaceKey {
                netns: 7,
                ifindex: 3
            }),
            Some(&("a".into(), "veth".into()))
        );
    }
}
