//! Interface series: what one label set of the interface families shows (the interfaces
//! that share it, summed), and the info labels that join it to its pod.

use super::encode::Labels;
use crate::model::{Histogram, IfaceCounters, Interface};

/// The name of the series that sums the interfaces beyond `--max-interfaces`.
pub const OTHER: &str = "_other";

/// One series of interface metrics: the interfaces that share its labels, summed (a pod
/// recreated under the same name, or everything beyond `--max-interfaces`).
#[derive(Debug, Clone)]
pub struct Series {
    pub netns: String,
    pub interface: String,
    pub kind: String,
    pub counters: IfaceCounters,
    pub veth_hop: Histogram,
    pub backlog_wait: Histogram,
    /// Of the interface the info labels come from (present before gone).
    pub info: Option<InfoLabels>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoLabels {
    pub peer: String,
    pub peer_netns: String,
    pub pod: String,
    pub namespace: String,
    pub container: String,
}

impl Series {
    pub(super) fn labels(&self) -> Labels {
        vec![
            ("netns", self.netns.clone()),
            ("interface", self.interface.clone()),
            ("kind", self.kind.clone()),
        ]
    }
}

pub(super) fn info_of(i: &Interface) -> InfoLabels {
    let c = i.container.as_ref();
    InfoLabels {
        peer: i
            .peer
            .as_ref()
            .map(|p| p.name.clone().unwrap_or_else(|| format!("if{}", p.ifindex)))
            .unwrap_or_default(),
        peer_netns: i
            .peer
            .as_ref()
            .map(|p| {
                p.netns_label
                    .clone()
                    .unwrap_or_else(|| format!("netns:{}", p.netns))
            })
            .unwrap_or_default(),
        pod: c.and_then(|c| c.pod.clone()).unwrap_or_default(),
        namespace: c.and_then(|c| c.pod_namespace.clone()).unwrap_or_default(),
        container: c.and_then(|c| c.name.clone()).unwrap_or_default(),
    }
}
