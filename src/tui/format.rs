//! Units that people read: packet rates with k/M, % of one CPU, durations in ns/µs/ms/s
//! chosen per value. Pure functions, no terminal.

use std::time::Duration;

use crate::model::hist::{bucket_lower, bucket_upper, BUCKETS};

/// Shown for a metric that the attached hooks cannot produce (never "0").
pub const UNAVAILABLE: &str = "—";
/// Shown for a metric that exists but had no samples in the interval (e.g. p99 of nothing).
pub const EMPTY: &str = "·";

/// A rate (per second) or a count with a k/M/G suffix: `0`, `7.5`, `950`, `1.23k`, `45.6k`,
/// `312k`, `1.50M`.
pub fn rate(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        return "0".to_string();
    }
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, suffix) in UNITS {
        // Round first so that 999.96k prints as 1.00M, not 1000k.
        if round_sig(v, 3) >= scale {
            return format!("{}{}", three_digits(v / scale), suffix);
        }
    }
    if v < 10.0 && v.fract() != 0.0 {
        let s = format!("{v:.1}");
        return if s == "10.0" { "10".to_string() } else { s };
    }
    format!("{v:.0}")
}

/// A count (integer) with k/M/G suffix when large.
pub fn count(v: u64) -> String {
    if v < 10_000 {
        v.to_string()
    } else {
        rate(v as f64)
    }
}

/// Percent of one CPU (or any share in percent): `0%`, `<0.1%`, `3.4%`, `42.0%`, `180%`.
pub fn percent(p: f64) -> String {
    if !p.is_finite() || p <= 0.0 {
        return "0%".to_string();
    }
    if p < 0.05 {
        return "<0.1%".to_string();
    }
    if p >= 99.95 {
        return format!("{p:.0}%");
    }
    format!("{p:.1}%")
}

/// A duration in nanoseconds with the unit chosen per value: `850ns`, `1.25µs`, `12.5µs`,
/// `125µs`, `3.40ms`, `2.50s`.
pub fn duration_ns(ns: u64) -> String {
    duration_ns_f(ns as f64)
}

/// Same as [`duration_ns`] for a fractional value (e.g. ns per packet).
pub fn duration_ns_f(ns: f64) -> String {
    if !ns.is_finite() || ns <= 0.0 {
        return "0ns".to_string();
    }
    if ns < 999.5 {
        return format!("{ns:.0}ns");
    }
    const UNITS: [(f64, &str); 3] = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")];
    for (scale, suffix) in UNITS {
        if round_sig(ns, 3) >= scale {
            return format!("{}{}", three_digits(ns / scale), suffix);
        }
    }
    format!("{ns:.0}ns")
}

/// A refresh interval: `250ms`, `1s`, `2.5s`.
pub fn interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The value range of a log2 histogram bucket: `0–1ns`, `512ns–1.02µs`, `≥2.15s`.
pub fn bucket_range(b: usize) -> String {
    if b + 1 >= BUCKETS {
        return format!("≥{}", duration_ns(bucket_lower(b)));
    }
    format!(
        "{}–{}",
        duration_ns(bucket_lower(b)),
        duration_ns(bucket_upper(b))
    )
}

/// Elapsed wall time: `42s`, `3m07s`, `2h05m`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Formats `v` (1 <= v < 1000 after scaling) with three significant digits.
fn three_digits(v: f64) -> String {
    if round_sig(v, 3) >= 100.0 {
        format!("{v:.0}")
    } else if round_sig(v, 3) >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `v` rounded to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return v;
    }
    let mag = v.log10().floor() as i32;
    let factor = 10f64.powi(digits - 1 - mag);
    (v * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_k_and_m() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(-3.0), "0");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(rate(0.5), "0.5");
        assert_eq!(rate(7.0), "7");
        assert_eq!(rate(950.0), "950");
        assert_eq!(rate(999.4), "999");
        assert_eq!(rate(999.7), "1.00k");
        assert_eq!(rate(1234.0), "1.23k");
        assert_eq!(rate(45_600.0), "45.6k");
        assert_eq!(rate(312_000.0), "312k");
        assert_eq!(rate(999_990.0), "1.00M");
        assert_eq!(rate(1_500_000.0), "1.50M");
        assert_eq!(rate(2.5e9), "2.50G");
    }

    #[test]
    fn counts_stay_exact_when_small() {
        assert_eq!(count(0), "0");
        assert_eq!(count(9_999), "9999");
        assert_eq!(count(12_345), "12.3k");
    }

    #[test]
    fn percents_of_one_cpu() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.01), "<0.1%");
        assert_eq!(percent(3.44), "3.4%");
        assert_eq!(percent(42.0), "42.0%");
        assert_eq!(percent(180.2), "180%");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration_ns(0), "0ns");
        assert_eq!(duration_ns(850), "850ns");
        assert_eq!(duration_ns(999), "999ns");
        assert_eq!(duration_ns(1_000), "1.00µs");
        assert_eq!(duration_ns(1_250), "1.25µs");
        assert_eq!(duration_ns(12_500), "12.5µs");
        assert_eq!(duration_ns(125_000), "125µs");
        assert_eq!(duration_ns(999_999), "1.00ms");
        assert_eq!(duration_ns(3_400_000), "3.40ms");
        assert_eq!(duration_ns(2_500_000_000), "2.50s");
        assert_eq!(duration_ns_f(1234.4), "1.23µs");
        assert_eq!(duration_ns_f(0.4), "0ns");
    }

    #[test]
    fn intervals_and_elapsed() {
        assert_eq!(interval(Duration::from_millis(250)), "250ms");
        assert_eq!(interval(Duration::from_secs(1)), "1s");
        assert_eq!(interval(Duration::from_millis(2500)), "2.5s");
        assert_eq!(elapsed(Duration::from_secs(42)), "42s");
        assert_eq!(elapsed(Duration::from_secs(187)), "3m07s");
        assert_eq!(elapsed(Duration::from_secs(7500)), "2h05m");
    }

    #[test]
    fn bucket_ranges_are_readable() {
        assert_eq!(bucket_range(0), "0ns–1ns");
        assert_eq!(bucket_range(9), "512ns–1.02µs");
        assert_eq!(bucket_range(10), "1.02µs–2.05µs");
        assert!(bucket_range(BUCKETS - 1).starts_with('≥'));
    }
}
