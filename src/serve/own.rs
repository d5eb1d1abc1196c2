//! sirqtop's own families: its build, how each hook is attached, what it lost, the cost
//! of its BPF programs and its uptime.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::encode::{family, info_family, Labels};
use crate::model::{CaptureMeta, Snapshot};

pub fn encode_build_info(
    enc: &mut DescriptorEncoder,
    meta: Option<&CaptureMeta>,
) -> Result<(), std::fmt::Error> {
    let labels: Labels = vec![
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        (
            "kernel",
            meta.map(|m| m.kernel_release.clone()).unwrap_or_default(),
        ),
    ];
    info_family(
        enc,
        "sirqtop_build",
        "sirqtop's version and the kernel it runs on.",
        [labels],
    )?;
    // Only under --filter: every other family then counts matching packets only.
    match meta.and_then(|m| m.filter.clone()) {
        Some(f) => info_family(
            enc,
            "sirqtop_filter",
            "The --filter expression: packet counts, histograms and paths count only its matches.",
            [vec![("filter", f)]],
        ),
        None => Ok(()),
    }
}

pub fn encode_self(
    enc: &mut DescriptorEncoder,
    meta: &CaptureMeta,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    let l = &snap.loss;
    let lost = [
        ("ringbuf_dropped", l.ringbuf_dropped),
        ("inflight_evicted", l.inflight_evicted),
        ("iface_table_full", l.iface_table_full),
        ("raises_unattributed", l.raises_unattributed),
        ("stack_lost", l.stack_lost),
        ("inflight_stale", l.inflight_stale),
        ("drop_reasons_full", l.drop_reasons_full),
        ("path_table_full", l.path_table_full),
    ];
    family(
        enc,
        "sirqtop_lost_events",
        "Events sirqtop could not count or attribute, by reason (README \"loss\").",
        None,
        MetricType::Counter,
        lost.iter()
            .map(|(r, n)| (vec![("reason", r.to_string())], ConstCounter::new(*n))),
    )?;
    info_family(
        enc,
        "sirqtop_hook",
        "How each hook is attached: backend and mechanism.",
        meta.probes.attached.iter().map(|(h, (b, mech))| {
            vec![
                ("hook", h.as_str().to_string()),
                ("backend", b.as_str().to_string()),
                ("mechanism", mech.clone()),
            ]
        }),
    )?;
    family(
        enc,
        "sirqtop_bpf_stats_enabled",
        "1 when kernel BPF statistics are on (--bpf-stats), so that program run time is known.",
        None,
        MetricType::Gauge,
        [(
            Labels::new(),
            ConstGauge::new(i64::from(
                snap.programs.iter().any(|p| p.run_count.is_some()),
            )),
        )],
    )?;
    let prog = |p: &crate::model::ProgramCost| -> Labels {
        vec![
            ("program", p.name.clone()),
            ("hook", p.hook.as_str().to_string()),
            ("backend", p.backend.as_str().to_string()),
        ]
    };
    family(
        enc,
        "sirqtop_bpf_program_runs",
        "Runs of each of sirqtop's BPF programs (with --bpf-stats).",
        None,
        MetricType::Counter,
        snap.programs
            .iter()
            .filter_map(|p| Some((prog(p), ConstCounter::new(p.run_count?)))),
    )?;
    family(
        enc,
        "sirqtop_bpf_program_run",
        "CPU time spent in each of sirqtop's BPF programs (with --bpf-stats).",
        Some(&Unit::Seconds),
        MetricType::Counter,
        snap.programs
            .iter()
            .filter_map(|p| Some((prog(p), ConstCounter::new(p.run_time_ns? as f64 * 1e-9)))),
    )?;
    // Latency sampling: above the rate the histograms are weighted estimates; the share
    // timed is rate(timed) / rate(picked).
    let t = &snap.timing;
    family(
        enc,
        "sirqtop_timing_rate",
        "--timing-rate: timed skbs per second per CPU before the latency histograms are sampled (0: every skb timed).",
        None,
        MetricType::Gauge,
        [(Labels::new(), ConstGauge::new(i64::from(t.rate)))],
    )?;
    family(
        enc,
        "sirqtop_timing_skbs_picked",
        "New tracked skbs decided on for latency timing (0 with --timing-rate 0).",
        None,
        MetricType::Counter,
        [(Labels::new(), ConstCounter::new(t.skbs_picked))],
    )?;
    family(
        enc,
        "sirqtop_timing_skbs_timed",
        "Of those, timed: below the picked count the latency histograms are weighted estimates.",
        None,
        MetricType::Counter,
        [(Labels::new(), ConstCounter::new(t.skbs_timed))],
    )?;
    family(
        enc,
        "sirqtop_uptime",
        "Time since the probes were attached.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
        [(
            Labels::new(),
            ConstGauge::new(snap.elapsed_ns as f64 * 1e-9),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{iface, render, sample, snapshot};
    use super::super::options::MetricsOptions;

    #[test]
    fn latency_sampling_is_exposed() {
        let mut snap = snapshot(vec![iface(1, 2, "a", "eth0", 1)]);
        snap.timing = crate::model::Timing {
            rate: 20_000,
            skbs_picked: 4_000,
            skbs_timed: 1_000,
        };
        let text = render(snap, MetricsOptions::default(), false);
        assert_eq!(sample(&text, "sirqtop_timing_rate "), Some(20_000.0));
        assert_eq!(
            sample(&text, "sirqtop_timing_skbs_picked_total "),
            Some(4_000.0)
        );
        assert_eq!(
            sample(&text, "sirqtop_timing_skbs_timed_total "),
            Some(1_000.0)
        );
        assert!(
            text.contains("# TYPE sirqtop_timing_skbs_timed counter"),
            "{text}"
        );
    }
}
