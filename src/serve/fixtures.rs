//! Test fixtures for the exposition's unit tests: capture facts, interfaces, snapshots
//! and a rendered exposition.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::exposition::{encode_openmetrics, encode_prometheus, Exposition, Published};
use super::options::MetricsOptions;
use crate::model::{
    Availability, Backend, CaptureMeta, IfaceKey, Interface, Loss, ProbeReport, Snapshot,
};

pub fn meta() -> CaptureMeta {
    let probes = ProbeReport::all_attached(Backend::Tracepoint, "tp_btf");
    CaptureMeta {
        kernel_release: "6.18.44".into(),
        availability: Availability::from_report(&probes),
        probes,
        started_at: UNIX_EPOCH + Duration::from_secs(1_764_028_800),
        netns_filter: vec![],
        filter: None,
        ncpus: 1,
        bpf_stats: false,
    }
}

pub fn iface(netns: u32, ifindex: u32, label: &str, name: &str, softirq_ns: u64) -> Interface {
    let mut i = Interface::new(IfaceKey::new(netns, ifindex));
    i.name = name.into();
    i.kind = Some("veth".into());
    i.netns_label = label.into();
    i.counters.tx_packets = 10;
    i.counters.rx_packets = 7;
    i.counters.softirq_ns = softirq_ns;
    i
}

pub fn snapshot(interfaces: Vec<Interface>) -> Snapshot {
    Snapshot {
        elapsed_ns: 2_000_000_000,
        interfaces,
        cpus: vec![crate::model::CpuStats::new(0)],
        loss: Loss {
            ringbuf_dropped: 3,
            ..Loss::default()
        },
        programs: vec![],
        raise_sites: vec![],
        path_hops: vec![],
        payers: vec![],
        slow: Default::default(),
        timing: Default::default(),
    }
}

pub fn render(snap: Snapshot, opts: MetricsOptions, prometheus: bool) -> String {
    let expo = Exposition::new(opts);
    expo.publish(Published {
        meta: Arc::new(meta()),
        snap: Arc::new(snap),
    });
    let r = expo.registry();
    if prometheus {
        encode_prometheus(&r).unwrap()
    } else {
        encode_openmetrics(&r).unwrap()
    }
}

pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
