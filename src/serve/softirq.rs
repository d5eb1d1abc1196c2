//! The softirq families: raises, runs and run time per CPU and vector, and the run
//! duration and raise-to-run histograms per vector.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::encode::{family, HistSample, Labels};
use super::options::{HistFamily, MetricsOptions};
use crate::model::{Availability, Snapshot, VectorStats, VECTOR_NAMES};

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
