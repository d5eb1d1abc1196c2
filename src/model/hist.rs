//! log2 latency histograms, the same bucketing as the BPF side (`bpf/sirqtop.h`).

use serde::{Deserialize, Serialize};

/// Number of log2 buckets; bucket 0 holds [0, 2) ns, bucket b holds [2^b, 2^(b+1)) ns and
/// the last bucket is open-ended. From bpf/sirqtop.h through the skeleton.
pub const BUCKETS: usize = crate::bpf::limits::HIST_BUCKETS;

/// A log2 histogram of nanosecond values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    pub count: u64,
    pub sum: u64,
    pub max: u64,
    pub buckets: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0,
            max: 0,
            buckets: [0; BUCKETS],
        }
    }
}

/// Bucket index of a value (mirrors `hist_bucket` in the BPF program).
pub fn bucket_of(v: u64) -> usize {
    if v < 2 {
        0
    } else {
        (63 - v.leading_zeros() as usize).min(BUCKETS - 1)
    }
}

/// Inclusive upper bound of bucket `b`; the open last bucket reports `u64::MAX`.
pub fn bucket_upper(b: usize) -> u64 {
    if b + 1 >= BUCKETS {
        u64::MAX
    } else {
        (1u64 << (b + 1)) - 1
    }
}

/// Inclusive lower bound of bucket `b`.
pub fn bucket_lower(b: usize) -> u64 {
    if b == 0 {
        0
    } else {
        1u64 << b
    }
}

impl Histogram {
    pub fn from_parts(count: u64, sum: u64, max: u64, buckets: [u64; BUCKETS]) -> Self {
        Self {
            count,
            sum,
            max,
            buckets,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(v);
        self.max = self.max.max(v);
        let b = &mut self.buckets[bucket_of(v)];
        *b = b.saturating_add(1);
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds another histogram (per-CPU values of one key, or two intervals). Saturates:
    /// values may come from a file (`sirqtop diff`), not only from the kernel.
    pub fn merge(&mut self, o: &Histogram) {
        self.count = self.count.saturating_add(o.count);
        self.sum = self.sum.saturating_add(o.sum);
        self.max = self.max.max(o.max);
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// What was added since `earlier` (a cumulative histogram read twice). The max of an
    /// interval is not recoverable from two cumulative maxima: it is bounded by the upper
    /// edge of the highest bucket that grew, and by the cumulative max.
    pub fn delta(&self, earlier: &Histogram) -> Histogram {
        let mut d = Histogram {
            count: self.count.saturating_sub(earlier.count),
            sum: self.sum.saturating_sub(earlier.sum),
            max: 0,
            buckets: [0; BUCKETS],
        };
        for (i, (a, b)) in self.buckets.iter().zip(earlier.buckets.iter()).enumerate() {
            d.buckets[i] = a.saturating_sub(*b);
        }
        if let Some(top) = d.buckets.iter().rposition(|&c| c > 0) {
            d.max = bucket_upper(top).min(self.max);
        }
        d
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The q-quantile (0 < q <= 1), interpolated linearly inside the bucket that holds it
    /// and never above the recorded maximum. None for an empty histogram.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.buckets.iter().fold(0u64, |a, b| a.saturating_add(*b));
        if total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = (q * total as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (b, &c) in self.buckets.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if seen.saturating_add(c) as f64 >= rank {
                let lo = bucket_lower(b) as f64;
                let hi = if b + 1 >= BUCKETS {
                    self.max.max(bucket_lower(b)) as f64
                } else {
                    bucket_upper(b) as f64
                };
                let frac = (rank - seen as f64) / c as f64;
                let v = (lo + (hi - lo) * frac).round() as u64;
                return Some(if self.max > 0 { v.min(self.max) } else { v });
            }
            seen = seen.saturating_add(c);
        }
        Some(self.max)
    }

    /// Non-empty buckets as (inclusive upper bound, count).
    pub fn nonzero_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(b, &c)| (bucket_upper(b), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_bpf_log2() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 1);
        assert_eq!(bucket_of(4), 2);
        assert_eq!(bucket_of(1023), 9);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        for b in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(bucket_lower(b)), b);
            assert_eq!(bucket_of(bucket_upper(b)), b);
        }
    }

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let mut h = Histogram::default();
        for _ in 0..90 {
            h.record(1000); // bucket 9: [512, 1023]
        }
        for _ in 0..9 {
            h.record(100_000); // bucket 16: [65536, 131071]
        }
        h.record(5_000_000);
        assert_eq!(h.count, 100);
        let p50 = h.quantile(0.5).unwrap();
        assert!((512..=1023).contains(&p50), "p50 {p50}");
        let p90 = h.quantile(0.9).unwrap();
        assert!((512..=1023).contains(&p90), "p90 {p90}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((65536..=131071).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0).unwrap(), 5_000_000);
        assert_eq!(h.max, 5_000_000);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn quantile_never_exceeds_max() {
        let mut h = Histogram::default();
        h.record(600);
        assert_eq!(h.quantile(0.99), Some(600));
    }

    #[test]
    fn merge_adds_per_cpu_values() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        a.record(20);
        b.record(5000);
        a.merge(&b);
        assert_eq!(a.count, 3);
        assert_eq!(a.sum, 5030);
        assert_eq!(a.max, 5000);
        assert_eq!(a.buckets[bucket_of(10)], 1);
        assert_eq!(a.buckets[bucket_of(5000)], 1);
    }

    #[test]
    fn delta_is_the_interval() {
        let mut h = Histogram::default();
        h.record(10);
        let before = h;
        h.record(3000);
        h.record(3000);
        let d = h.delta(&before);
        assert_eq!(d.count, 2);
        assert_eq!(d.sum, 6000);
        assert_eq!(d.buckets[bucket_of(3000)], 2);
        assert_eq!(d.buckets[bucket_of(10)], 0);
        assert_eq!(d.max, 3000);
    }

    #[test]
    fn nonzero_buckets_report_upper_bounds() {
        let mut h = Histogram::default();
        h.record(0);
        h.record(700);
        let v: Vec<_> = h.nonzero_buckets().collect();
        assert_eq!(v, vec![(1, 1), (1023, 1)]);
    }
}
