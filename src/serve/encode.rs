//! Encoding helpers shared by every family: label sets, one family with its samples,
//! info families, and the BPF side's log2 histograms as cumulative `le` buckets in seconds.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::model::Histogram;

/// Histograms are exposed from `2^HIST_LOW_LOG2` ns (256 ns, everything faster folded
/// into it) to `2^HIST_HIGH_LOG2` ns (~1.07 s), then `+Inf`: 23 finite buckets, enough for
/// veth hops (µs) and backlog waits (up to ms) without the 32 kernel buckets' series.
pub const HIST_LOW_LOG2: usize = 8;
pub const HIST_HIGH_LOG2: usize = 30;

pub type Labels = Vec<(&'static str, String)>;

/// A log2 histogram as (upper bound in seconds, count in that bucket) pairs: the first
/// folds every bucket below `2^HIST_LOW_LOG2` ns, the last is `+Inf`.
pub fn seconds_buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(HIST_HIGH_LOG2 - HIST_LOW_LOG2 + 2);
    // Kernel bucket b holds [2^b, 2^(b+1)) ns, so buckets < k are the values below 2^k.
    let below: u64 = h.buckets[..HIST_LOW_LOG2].iter().sum();
    out.push(((1u64 << HIST_LOW_LOG2) as f64 * 1e-9, below));
    for k in HIST_LOW_LOG2 + 1..=HIST_HIGH_LOG2 {
        out.push(((1u64 << k) as f64 * 1e-9, h.buckets[k - 1]));
    }
    let rest: u64 = h.buckets[HIST_HIGH_LOG2..].iter().sum();
    out.push((f64::INFINITY, rest));
    out
}

/// A histogram sample (count, sum and buckets of one label set).
pub struct HistSample<'a>(pub &'a Histogram);

impl EncodeMetric for HistSample<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        // The bucket counts are what the kernel recorded; `count` may saturate apart from
        // them on a file-fed snapshot, so the +Inf bucket and the count agree by design.
        let buckets = seconds_buckets(self.0);
        let count = buckets.iter().map(|b| b.1).sum();
        encoder.encode_histogram::<Labels>(self.0.sum as f64 * 1e-9, count, &buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes one family: a descriptor, then one sample per label set.
pub fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut fam = enc.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, m) in samples {
        m.encode(fam.encode_family(&labels)?)?;
    }
    Ok(())
}

/// An info family: one `NAME_info{...} 1` sample per label set.
pub fn info_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = Labels>,
) -> Result<(), std::fmt::Error> {
    let mut fam = enc.encode_descriptor(name, help, None, MetricType::Info)?;
    for labels in samples {
        fam.encode_info(&labels)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_become_seconds() {
        let mut h = Histogram::default();
        for v in [100, 300, 5_000, 5_000, 3_000_000_000] {
            h.record(v);
        }
        let b = seconds_buckets(&h);
        assert_eq!(b.len(), HIST_HIGH_LOG2 - HIST_LOW_LOG2 + 2);
        assert_eq!(b[0], (256e-9, 1), "100 ns folds into the first bucket");
        assert_eq!(b[1], (512e-9, 1), "300 ns is below 512 ns");
        // 5 µs lies in [4096, 8192) ns.
        let i = b.iter().position(|x| x.0 == 8192e-9).unwrap();
        assert_eq!(b[i].1, 2);
        assert_eq!(*b.last().unwrap(), (f64::INFINITY, 1), "3 s is past 1.07 s");
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 5);
    }
}
