//! The JSON capture document, schema v1 (a public contract: see README "JSON schema").

mod schema;
mod sink;
mod slow;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::model::{
    Availability, CaptureMeta, Hook, Interface, Snapshot, VectorStats, VECTOR_NAMES,
};

pub use schema::*;
pub use sink::Sink;
pub use slow::{JsonSlowCount, JsonSlowEvent, JsonSlowIface, JsonSlowSoftirqs};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    pub schema_version: u32,
    pub tool: Tool,
    pub kernel: Kernel,
    pub capture: CaptureInfo,
    pub interfaces: Vec<JsonInterface>,
    pub cpus: Vec<JsonCpu>,
    pub loss: JsonLoss,
    pub overhead: Overhead,
    /// Kernel stacks that raised NET_RX/NET_TX, most raises first (empty with --no-stacks).
    #[serde(default)]
    pub raise_sites: Vec<JsonRaiseSite>,
    /// Where packets first sent by a veth were received, hop by hop, most softirq time
    /// first (empty with --lite).
    #[serde(default)]
    pub paths: Vec<JsonPath>,
    /// What the numbers mean and what to change, most severe first (see README,
    /// Findings).
    #[serde(default)]
    pub findings: Vec<crate::findings::Finding>,
    /// Softirq time by the task it ran on, most first (empty without the softirq run
    /// hook); see README, Who pays.
    #[serde(default)]
    pub softirq_paid_by: Vec<JsonPayer>,
    /// Slow softirq runs and raise -> run delays (null when not measured: --lite, no
    /// softirq run hook); see README, Slow softirqs.
    #[serde(default)]
    pub slow_softirqs: Option<JsonSlowSoftirqs>,
}

fn opt<T>(available: bool, v: T) -> Option<T> {
    available.then_some(v)
}

fn interface(i: &Interface, a: &Availability) -> JsonInterface {
    JsonInterface {
        netns_inode: i.key.netns,
        netns_cookie: i.key.cookie,
        netns_name: i.netns_name.clone(),
        netns_label: Some(i.netns_label.clone()),
        container: i.container.clone(),
        ifindex: i.key.ifindex,
        name: i.name.clone(),
        kind: i.kind.clone(),
        peer: i.peer.as_ref().map(|p| JsonPeer {
            netns_inode: p.netns,
            ifindex: p.ifindex,
            name: p.name.clone(),
            netns_cookie: p.cookie,
        }),
        gone: i.gone,
        tx_packets: opt(a.tx, i.counters.tx_packets),
        tx_bytes: opt(a.tx, i.counters.tx_bytes),
        rx_enqueued: opt(a.enqueue, i.counters.rx_enqueued),
        rx_packets: opt(a.receive, i.counters.rx_packets),
        kernel_rx_packets: i.kernel_rx_packets,
        rx_unseen: i.rx_unseen().filter(|_| a.receive),
        net_rx_raises: opt(a.raises, i.counters.net_rx_raises),
        softirq_ns: opt(a.softirq_time, i.counters.softirq_ns),
        softirq_ns_per_packet: if a.softirq_time {
            i.softirq_ns_per_packet()
        } else {
            None
        },
        dropped: opt(a.drops, i.counters.dropped),
        drop_reasons: i.drop_reasons.clone(),
        rx_path: i.rx_path(),
        napi_packets: opt(a.backlog_wait, i.counters.napi_packets),
        napi_polls: opt(a.napi, i.counters.napi_polls),
        napi_replaced: opt(a.veth_hop, i.counters.napi_replaced),
        latency: Latency {
            veth_hop: opt(a.veth_hop, JsonHist::from_hist(&i.veth_hop)),
            backlog_wait: opt(a.backlog_wait, JsonHist::from_hist(&i.backlog_wait)),
        },
    }
}

fn json_paths(snap: &Snapshot, a: &Availability) -> Vec<JsonPath> {
    let end = |k: crate::model::IfaceKey| {
        let i = snap.interface(k);
        JsonPathEnd {
            netns_inode: k.netns,
            ifindex: k.ifindex,
            netns_cookie: k.cookie,
            name: i.map(|i| i.name.clone()),
            netns_label: i.map(|i| i.netns_label.clone()),
        }
    };
    snap.paths(a)
        .iter()
        .map(|p| JsonPath {
            from: end(p.from),
            to: end(p.to),
            hops: p.hops,
            via: p.via.iter().map(|k| end(*k)).collect(),
            packets: p.packets,
            origin_in_softirq: p.origin_softirq,
            backlog_enqueues_per_packet: p.backlog_enqueues_per_packet,
            net_rx_raises_per_packet: p.net_rx_raises_per_packet(),
            softirq_ns_per_packet: p.softirq_ns_per_packet(),
            hop_costs: p
                .hop_costs
                .iter()
                .map(|h| JsonHopCost {
                    interface: end(h.receiver),
                    backlog_enqueues_per_packet: h.backlog_enqueues_per_packet,
                    net_rx_raises_per_packet: h.net_rx_raises_per_packet,
                    softirq_ns_per_packet: h.softirq_ns_per_packet,
                })
                .collect(),
            latency: JsonHist::from_hist(&p.latency),
        })
        .collect()
}

fn vector(v: &VectorStats, a: &Availability) -> JsonVector {
    JsonVector {
        raises: opt(a.cpu_raises, v.raises),
        runs: opt(a.softirq_runs, v.runs),
        run_ns: opt(a.softirq_runs, v.run_ns),
        ksoftirqd_runs: opt(a.softirq_runs, v.ksoftirqd_runs),
        run_hist: opt(a.softirq_runs, JsonHist::from_hist(&v.run)),
        raise_to_run_hist: opt(
            a.cpu_raises && a.softirq_runs,
            JsonHist::from_hist(&v.raise_to_run),
        ),
    }
}

/// The softnet columns the capture has: the running kernel's, as far as the file had them.
fn softnet_columns(meta: &CaptureMeta, snap: &Snapshot) -> Vec<String> {
    use crate::model::softnet::SoftnetLayout;
    let Some(s) = snap.cpus.iter().find_map(|c| c.softnet) else {
        return Vec::new();
    };
    let layout = match (s.flow_limit_count, s.backlog_len) {
        (_, Some(_)) => SoftnetLayout::V13,
        (Some(_), None) => SoftnetLayout::V11,
        (None, None) => SoftnetLayout::V10,
    };
    let layout = SoftnetLayout::of_release(&meta.kernel_release).map_or(layout, |k| k.min(layout));
    layout.columns().into_iter().map(String::from).collect()
}

/// The snapshot's payers, most softirq time first.
fn paid_by(snap: &Snapshot) -> Vec<JsonPayer> {
    use crate::model::PayerKind;
    let per_vector = |v: &[u64], runs: &[u64]| -> BTreeMap<String, u64> {
        VECTOR_NAMES
            .iter()
            .zip(v.iter().zip(runs))
            .filter(|(_, (_, r))| **r > 0)
            .map(|(n, (x, _))| (n.to_string(), *x))
            .collect()
    };
    let mut out: Vec<JsonPayer> = snap
        .payers
        .iter()
        .map(|p| {
            let task = p.key.kind == PayerKind::Task;
            JsonPayer {
                payer: p.label.clone(),
                kind: p.key.kind,
                netns_inode: task.then_some(p.key.netns),
                netns_cookie: task.then_some(p.key.cookie),
                ns: per_vector(&p.ns, &p.runs),
                runs: per_vector(&p.runs, &p.runs),
                total_ns: p.total_ns(),
                cpu_share: p.total_ns() as f64 / snap.elapsed_ns.max(1) as f64,
            }
        })
        .collect();
    out.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.payer.cmp(&b.payer)));
    out
}

impl Capture {
    pub fn new(meta: &CaptureMeta, snap: &Snapshot) -> Capture {
        let a = &meta.availability;
        let mut backends = BTreeMap::new();
        let mut mechanisms = BTreeMap::new();
        for (hook, (backend, mech)) in &meta.probes.attached {
            backends.insert(hook.as_str().to_string(), backend.as_str().to_string());
            mechanisms.insert(hook.as_str().to_string(), mech.clone());
        }
        let mut interfaces: Vec<JsonInterface> = snap
            .interfaces
            .iter()
            .filter(|i| i.is_active())
            .map(|i| interface(i, a))
            .collect();
        interfaces.sort_by_key(|i| (i.netns_inode, i.ifindex));
        Capture {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "sirqtop".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            kernel: Kernel {
                release: meta.kernel_release.clone(),
                backends,
                mechanisms,
                fallbacks: meta.probes.fallbacks.clone(),
                warnings: crate::model::coverage_warnings(&meta.probes, snap),
                softnet_columns: softnet_columns(meta, snap),
            },
            capture: CaptureInfo {
                started_at: rfc3339(meta.started_at),
                duration_ns: snap.elapsed_ns,
                netns_filter: meta.netns_filter.clone(),
                ncpus: meta.ncpus,
                filter: meta.filter.clone(),
            },
            interfaces,
            cpus: snap
                .cpus
                .iter()
                .map(|c| JsonCpu {
                    cpu: c.cpu,
                    softirqs: VECTOR_NAMES
                        .iter()
                        .zip(c.vectors.iter())
                        .map(|(n, v)| (n.to_string(), vector(v, a)))
                        .collect(),
                    softnet: c.softnet,
                })
                .collect(),
            loss: JsonLoss {
                ringbuf_dropped: snap.loss.ringbuf_dropped,
                inflight_evicted: snap.loss.inflight_evicted,
                iface_table_full: snap.loss.iface_table_full,
                raises_unattributed: snap.loss.raises_unattributed,
                stack_lost: snap.loss.stack_lost,
                inflight_stale: snap.loss.inflight_stale,
                drop_reasons_full: snap.loss.drop_reasons_full,
                path_table_full: snap.loss.path_table_full,
            },
            overhead: Overhead {
                stats_enabled: snap.programs.iter().any(|p| p.run_count.is_some()),
                programs: snap
                    .programs
                    .iter()
                    .map(|p| JsonProgram {
                        name: p.name.clone(),
                        hook: p.hook.as_str().into(),
                        backend: p.backend.as_str().into(),
                        run_count: p.run_count,
                        run_time_ns: p.run_time_ns,
                    })
                    .collect(),
                timing: snap.timing,
            },
            raise_sites: snap
                .raise_sites
                .iter()
                .map(|r| JsonRaiseSite {
                    interface: r.iface.map(|k| JsonIfaceRef {
                        netns_inode: k.netns,
                        ifindex: k.ifindex,
                        netns_cookie: k.cookie,
                    }),
                    vector: VECTOR_NAMES.get(r.vector).unwrap_or(&"?").to_string(),
                    count: r.count,
                    samples: r.samples,
                    frames: r.frames.clone(),
                })
                .collect(),
            paths: json_paths(snap, a),
            findings: crate::findings::evaluate(snap, a),
            softirq_paid_by: if a.softirq_runs {
                paid_by(snap)
            } else {
                Vec::new()
            },
            slow_softirqs: slow::slow_softirqs(&snap.slow),
        }
    }

    /// Reads a capture file, refusing other schema versions with a one-line error.
    pub fn from_json(text: &str) -> std::result::Result<Capture, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a sirqtop JSON capture: {e}"))?;
        match v.get("schema_version").and_then(|s| s.as_u64()) {
            Some(n) if n == SCHEMA_VERSION as u64 => {}
            Some(n) => {
                return Err(format!(
                    "unsupported schema_version {n} (this sirqtop reads {SCHEMA_VERSION})"
                ))
            }
            None => return Err("not a sirqtop JSON capture: no schema_version".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("malformed sirqtop capture: {e}"))
    }

    pub fn hook_backend(&self, hook: Hook) -> Option<&str> {
        self.kernel.backends.get(hook.as_str()).map(|s| s.as_str())
    }
}

/// RFC 3339 UTC timestamp with microseconds, e.g. `2026-11-25T00:05:47.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

#[cfg(test)]
mod tests;
