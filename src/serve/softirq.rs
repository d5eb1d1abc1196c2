//! The softirq families: raises, runs and run time per CPU and vector, and the run
//! duration and raise-to-run histograms per vector.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::encode::{family, HistSample, Labels};
use super::options::{HistFamily, MetricsOptions};
use crate::model::{Availability, SlowKind, Snapshot, VectorStats, VECTOR_NAMES};

fn cpu_vector_labels(cpu: u32, vec: usize) -> Labels {
    vec![
        ("cpu", cpu.to_string()),
        ("vector", VECTOR_NAMES[vec].to_string()),
    ]
}

fn per_cpu_vector(snap: &Snapshot) -> impl Iterator<Item = (Labels, &VectorStats)> {
    snap.cpus.iter().flat_map(|c| {
        c.vectors
            .iter()
            .enumerate()
            .map(move |(v, s)| (cpu_vector_labels(c.cpu, v), s))
    })
}

pub fn encode_softirqs(
    enc: &mut DescriptorEncoder,
    av: &Availability,
    snap: &Snapshot,
    opts: &MetricsOptions,
) -> Result<(), std::fmt::Error> {
    if av.cpu_raises {
        family(
            enc,
            "sirqtop_softirq_raises",
            "Softirq raises per CPU and vector.",
            None,
            MetricType::Counter,
            per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.raises))),
        )?;
    }
    if !av.softirq_runs {
        return Ok(());
    }
    family(
        enc,
        "sirqtop_softirq_runs",
        "Softirq handler runs per CPU and vector.",
        None,
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.runs))),
    )?;
    family(
        enc,
        "sirqtop_softirq_run",
        "Softirq handler CPU time per CPU and vector.",
        Some(&Unit::Seconds),
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.run_ns as f64 * 1e-9))),
    )?;
    family(
        enc,
        "sirqtop_softirq_ksoftirqd_runs",
        "Softirq handler runs in ksoftirqd (deferred under load) per CPU and vector.",
        None,
        MetricType::Counter,
        per_cpu_vector(snap).map(|(l, s)| (l, ConstCounter::new(s.ksoftirqd_runs))),
    )?;
    let totals: Vec<(Labels, VectorStats)> = (0..VECTOR_NAMES.len())
        .map(|v| {
            (
                vec![("vector", VECTOR_NAMES[v].to_string())],
                snap.vector_total(v),
            )
        })
        .collect();
    if snap.slow.threshold_ns > 0 {
        // Exact (per-CPU kernel counters), whatever the event rate cap let through.
        let slow = (0..VECTOR_NAMES.len()).flat_map(|v| {
            SlowKind::ALL.into_iter().map(move |k| {
                let labels = vec![
                    ("vector", VECTOR_NAMES[v].to_string()),
                    ("kind", k.as_str().to_string()),
                ];
                (labels, ConstCounter::new(snap.slow.count(v, k)))
            })
        });
        family(
            enc,
            "sirqtop_softirq_slow",
            "Softirq runs (kind=run) and raise-to-run delays (kind=delay) at least --slow long, per vector.",
            None,
            MetricType::Counter,
            slow,
        )?;
    }
    if !opts.no_histograms.contains(&HistFamily::SoftirqRun) {
        family(
            enc,
            "sirqtop_softirq_run_duration",
            "Duration of one softirq handler run, per vector (all CPUs).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            totals.iter().map(|(l, s)| (l.clone(), HistSample(&s.run))),
        )?;
    }
    if !opts.no_histograms.contains(&HistFamily::SoftirqDelay) {
        family(
            enc,
            "sirqtop_softirq_raise_to_run",
            "Delay from a softirq's raise to its handler's run, per vector (all CPUs).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            totals
                .iter()
                .map(|(l, s)| (l.clone(), HistSample(&s.raise_to_run))),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{iface, render, sample, snapshot};
    use super::super::options::MetricsOptions;
    use crate::model::{SlowEvent, NET_RX};

    #[test]
    fn slow_softirqs_are_exact_counts_per_vector_and_kind() {
        let mut snap = snapshot(vec![iface(1, 2, "a", "eth0", 1)]);
        let text = render(snap.clone(), MetricsOptions::default(), true);
        assert!(
            !text.contains("sirqtop_softirq_slow"),
            "not measured: no family"
        );
        snap.slow.threshold_ns = 10_000_000;
        snap.slow.counts[NET_RX] = [12, 3];
        // The counts come from the kernel's counters, not from the (capped) event list.
        snap.slow.events = vec![SlowEvent::default()];
        snap.slow.capped = 14;
        let text = render(snap, MetricsOptions::default(), true);
        let run = "sirqtop_softirq_slow_total{vector=\"NET_RX\",kind=\"run\"}";
        let delay = "sirqtop_softirq_slow_total{vector=\"NET_RX\",kind=\"delay\"}";
        assert_eq!(sample(&text, run), Some(12.0), "{text}");
        assert_eq!(sample(&text, delay), Some(3.0));
        let timer = "sirqtop_softirq_slow_total{vector=\"TIMER\",kind=\"run\"}";
        assert_eq!(sample(&text, timer), Some(0.0));
        assert!(text.contains("# TYPE sirqtop_softirq_slow_total counter"));
    }
}
