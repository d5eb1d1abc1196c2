//! One function per kind of finding; each reads only what its hooks measured.

use super::*;
use crate::model::{IfaceKey, RxPath, VectorStats, NET_RX};

fn name(snap: &Snapshot, k: IfaceKey) -> String {
    match snap.interface(k) {
        Some(i) => format!("{}/{}", i.netns_label, i.name),
        None => format!("netns:{}/if{}", k.netns, k.ifindex),
    }
}

fn secs(snap: &Snapshot) -> f64 {
    (snap.elapsed_ns.max(1)) as f64 / 1e9
}

/// Paths whose packets cross more veth hops than a one-hop path on the same node, and
/// what the extra hops cost per packet against it (the article's finding).
pub(super) fn extra_veth_hops(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    let paths = snap.paths(av);
    let measured = |p: &&crate::model::Path| p.packets >= MIN_PATH_PACKETS;
    // The baseline: the busiest measured one-hop path with a known cost that is not the
    // first hop of a longer path (those end on a host veth, not at a receiver).
    let longer: Vec<IfaceKey> = paths
        .iter()
        .filter(|p| p.hops > 1)
        .map(|p| p.from)
        .collect();
    let base = paths
        .iter()
        .filter(measured)
        .filter(|p| p.hops == 1 && p.softirq_ns_per_packet().is_some())
        .filter(|p| !longer.contains(&p.from))
        .max_by_key(|p| p.packets);
    for p in paths.iter().filter(measured) {
        if p.hops < 2 || p.backlog_enqueues_per_packet < EXTRA_HOP_ENQUEUES {
            continue;
        }
        let subject = format!("{} -> {}", name(snap, p.from), name(snap, p.to));
        let mut f = Finding::new("extra_veth_hops", Severity::Warning, subject)
            .num("hops", p.hops as f64)
            .num("packets", p.packets as f64)
            .num("backlog_enqueues_per_packet", p.backlog_enqueues_per_packet);
        let cost = p.softirq_ns_per_packet();
        if let Some(c) = cost {
            f = f.num("softirq_ns_per_packet", c);
        }
        let summary = match (
            cost,
            base.and_then(|b| Some((b, b.softirq_ns_per_packet()?))),
        ) {
            (Some(c), Some((b, bc))) => {
                f = f
                    .num("one_hop_softirq_ns_per_packet", bc)
                    .num("extra_softirq_ns_per_packet", c - bc);
                format!(
                    "each packet crosses {} receives ({:.1} backlog enqueues) and costs {:.0} ns \
                     of softirq time, {:+.0} ns against the one-hop path {} -> {}",
                    p.hops,
                    p.backlog_enqueues_per_packet,
                    c,
                    c - bc,
                    name(snap, b.from),
                    name(snap, b.to)
                )
            }
            _ => format!(
                "each packet crosses {} receives ({:.1} backlog enqueues): every extra veth hop \
                 is one more enqueue, softirq and wait (no one-hop path on this node to compare)",
                p.hops, p.backlog_enqueues_per_packet
            ),
        };
        out.push(f.says(
            summary,
            "put pods on ipvlan/macvlan, an eBPF host-routing data path (e.g. Cilium's \
             bpf_redirect_peer) or netkit instead of veth + host routing",
        ));
    }
}

/// Receive budget exhausted and backlog drops, from the kernel's softnet counters.
pub(super) fn softnet(snap: &Snapshot, out: &mut Vec<Finding>) {
    for c in &snap.cpus {
        let Some(s) = c.softnet else { continue };
        let runs = c.vectors[NET_RX].runs;
        let share = if runs > 0 {
            s.time_squeeze as f64 / runs as f64
        } else {
            0.0
        };
        if s.time_squeeze >= MIN_SQUEEZES && runs >= MIN_NET_RX_RUNS && share >= SQUEEZE_SHARE {
            out.push(
                Finding::new(
                    "receive_budget_exhausted",
                    Severity::Warning,
                    format!("cpu{}", c.cpu),
                )
                .num("time_squeeze", s.time_squeeze as f64)
                .num("net_rx_runs", runs as f64)
                .num("squeezed_share", share)
                .says(
                    format!(
                        "{:.1}% of NET_RX runs on cpu{} stopped with packets left \
                             (budget or time used up): the rest waited for the next run",
                        share * 100.0,
                        c.cpu
                    ),
                    "raise net.core.netdev_budget (and net.core.netdev_budget_usecs), or \
                         spread receive work over more CPUs (RPS/RFS, more NIC queues)",
                ),
            );
        }
        if s.dropped >= MIN_BACKLOG_DROPS {
            out.push(
                Finding::new("backlog_drops", Severity::Critical, format!("cpu{}", c.cpu))
                    .num("dropped", s.dropped as f64)
                    .num("processed", s.processed as f64)
                    .num("dropped_per_second", s.dropped as f64 / secs(snap))
                    .says(
                        format!(
                            "{} packets were dropped because cpu{}'s backlog was full",
                            s.dropped, c.cpu
                        ),
                        "raise net.core.netdev_max_backlog, and spread receive work over more \
                         CPUs (RPS/RFS) so one backlog does not take it all",
                    ),
            );
        }
    }
}

/// NET_RX work piled on one CPU while the others have little.
pub(super) fn net_rx_one_cpu(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    if !av.softirq_runs || snap.cpus.len() < 2 {
        return;
    }
    let total: u64 = snap.cpus.iter().map(|c| c.vectors[NET_RX].run_ns).sum();
    let Some(top) = snap.cpus.iter().max_by_key(|c| c.vectors[NET_RX].run_ns) else {
        return;
    };
    let v = &top.vectors[NET_RX];
    let busy = v.run_ns as f64 / snap.elapsed_ns.max(1) as f64;
    let share = v.run_ns as f64 / total.max(1) as f64;
    if v.runs < MIN_NET_RX_RUNS || busy < HOT_CPU_SHARE || share < CONCENTRATION_SHARE {
        return;
    }
    out.push(
        Finding::new(
            "net_rx_one_cpu",
            Severity::Warning,
            format!("cpu{}", top.cpu),
        )
        .num("net_rx_cpu_share", busy)
        .num("share_of_all_net_rx", share)
        .num("cpus", snap.cpus.len() as f64)
        .says(
            format!(
                "cpu{} does {:.0}% of all NET_RX work ({:.0}% of its time) while {} other \
                     CPUs do the rest",
                top.cpu,
                share * 100.0,
                busy * 100.0,
                snap.cpus.len() - 1
            ),
            "spread receive work: RPS/RFS (rps_cpus, rps_sock_flow_entries) on the \
                 receiving devices, IRQ affinity / more NIC queues (RSS)",
        ),
    );
}

/// Softirq work deferred to ksoftirqd: it then waits for the scheduler like any thread.
pub(super) fn ksoftirqd(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    if !av.softirq_runs {
        return;
    }
    for c in &snap.cpus {
        let v = &c.vectors[NET_RX];
        let share = v.ksoftirqd_runs as f64 / v.runs.max(1) as f64;
        if v.runs < MIN_NET_RX_RUNS || share < KSOFTIRQD_SHARE {
            continue;
        }
        out.push(
            Finding::new(
                "ksoftirqd_deferred",
                Severity::Warning,
                format!("cpu{}", c.cpu),
            )
            .num("ksoftirqd_runs", v.ksoftirqd_runs as f64)
            .num("net_rx_runs", v.runs as f64)
            .num("ksoftirqd_share", share)
            .says(
                format!(
                    "{:.0}% of NET_RX runs on cpu{} ran in ksoftirqd: the kernel deferred \
                         receive work to a thread, which adds scheduling latency",
                    share * 100.0,
                    c.cpu
                ),
                "lower the receive load of this CPU (RPS/RFS, IRQ affinity), keep \
                     latency-critical tasks off it, or raise net.core.netdev_budget_usecs",
            ),
        );
    }
}

/// NET_RX raised but run late, node-wide.
pub(super) fn raise_to_run(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    if !(av.cpu_raises && av.softirq_runs) {
        return;
    }
    let t: VectorStats = snap.vector_total(NET_RX);
    let h = &t.raise_to_run;
    let Some(p99) = h.quantile(0.99) else { return };
    if h.count < MIN_RAISE_TO_RUN_SAMPLES || p99 < RAISE_TO_RUN_P99_NS {
        return;
    }
    out.push(
        Finding::new("raise_to_run_slow", Severity::Warning, "NET_RX".into())
            .num("p99_ns", p99 as f64)
            .num("samples", h.count as f64)
            .says(
                format!(
                    "1 in 100 NET_RX softirqs started {:.2} ms or more after being raised",
                    p99 as f64 / 1e6
                ),
                "look for long softirq runs or interrupts-off sections on the same CPUs \
                 (slow_softirqs), and work deferred to ksoftirqd; spread receive work",
            ),
    );
}

/// What to do about drops of one kernel drop reason.
fn drop_remedy(reason: &str) -> &'static str {
    match reason {
        "CPU_BACKLOG" => "raise net.core.netdev_max_backlog; spread receive work (RPS/RFS)",
        "SOCKET_RCVBUFF" => {
            "the receiving application reads too slowly: raise its SO_RCVBUF \
             (net.core.rmem_max) or read faster"
        }
        "PKT_TOO_BIG" => "MTU mismatch on the path: align the MTU of both veth ends",
        "NETFILTER_DROP" => "a netfilter/iptables rule drops these packets: check the rules",
        "NO_SOCKET" => "nothing listens on the destination port",
        "OTHERHOST" => "packets for another host reach this interface: check routes/MACs",
        _ => "see the kernel's description of this drop reason (include/net/dropreason-core.h)",
    }
}

/// Drops of one reason on one interface.
pub(super) fn drops_by_reason(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    if !av.drops {
        return;
    }
    for i in &snap.interfaces {
        for (reason, &n) in &i.drop_reasons {
            if n < MIN_REASON_DROPS {
                continue;
            }
            let seen = i.counters.rx_packets + i.counters.tx_packets + n;
            out.push(
                Finding::new(
                    "drops",
                    Severity::Warning,
                    format!("{}/{} {reason}", i.netns_label, i.name),
                )
                .num("dropped", n as f64)
                .num("dropped_share", n as f64 / seen.max(1) as f64)
                .says(
                    format!(
                        "{n} packets on {}/{} dropped: {reason}",
                        i.netns_label, i.name
                    ),
                    drop_remedy(reason),
                ),
            );
        }
    }
}

/// A veth received through its own NAPI (XDP or GRO on it) whose peer's transmits mostly
/// never arrive as the same skb: XDP copied them.
pub(super) fn xdp_copies(snap: &Snapshot, av: &Availability, out: &mut Vec<Finding>) {
    if !(av.veth_hop && av.tx) {
        return;
    }
    for i in &snap.interfaces {
        if i.kind.as_deref() != Some("veth") || i.rx_path() != Some(RxPath::Napi) {
            continue;
        }
        let Some(peer) = i.peer.as_ref().and_then(|p| {
            snap.interfaces
                .iter()
                .find(|o| o.key.netns == p.netns && o.key.ifindex == p.ifindex)
        }) else {
            continue;
        };
        let sent = peer.counters.tx_packets;
        let kept = peer.veth_hop.count as f64 / sent.max(1) as f64;
        if sent < MIN_XDP_PACKETS || kept >= XDP_COPY_COVERAGE {
            continue;
        }
        out.push(
            Finding::new(
                "xdp_copies_veth",
                Severity::Warning,
                format!("{}/{}", i.netns_label, i.name),
            )
            .num("peer_tx_packets", sent as f64)
            .num("same_skb_share", kept)
            .num("napi_packets", i.counters.napi_packets as f64)
            .says(
                format!(
                    "{}/{} receives through its own NAPI and only {:.0}% of what its peer sent \
                     arrived as the same skb: an XDP program on this veth copies every packet",
                    i.netns_label,
                    i.name,
                    kept * 100.0
                ),
                "move the XDP program to the physical NIC or to tc (BPF at the veth's \
                 ingress/egress), or detach it: XDP on veth copies skbs into XDP buffers",
            ),
        );
    }
}
