//! `sirqtop_softirq_paid_seconds_total{vector,netns}`: softirq time by the task it ran
//! on, by that task's netns label ("idle", "ksoftirqd" their own), bounded to the top
//! [`PAID_TOP_N`] labels by time since attach plus `_other`.
//!
//! Every series only grows: totals since attach only grow, so a label that enters the top
//! N has overtaken the one it replaces, and `_other` gains at least what it loses.

use std::collections::BTreeMap;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::encode::{family, Labels};
use crate::bpf::limits::NR_VECTORS;
use crate::model::{Availability, PayerKind, Snapshot, VECTOR_NAMES};

/// Payer labels exported as series of their own; the rest are summed in `_other`.
pub const PAID_TOP_N: usize = 20;

/// (netns label, ns per vector): the top N labels, then `_other` if any are left.
pub fn paid_series(snap: &Snapshot) -> Vec<(String, [u64; NR_VECTORS])> {
    let mut by_label: BTreeMap<&str, [u64; NR_VECTORS]> = BTreeMap::new();
    // Forgotten payers (namespace gone) always count in `_other`: a forgotten label's
    // series stops, and `_other` gains all it had, so it never decreases.
    let mut forgotten = [0u64; NR_VECTORS];
    for p in &snap.payers {
        if p.key.kind == PayerKind::Forgotten {
            for (a, b) in forgotten.iter_mut().zip(p.ns) {
                *a = a.saturating_add(b);
            }
            continue;
        }
        let e = by_label.entry(p.label.as_str()).or_default();
        for (a, b) in e.iter_mut().zip(p.ns) {
            *a = a.saturating_add(b);
        }
    }
    let mut ranked: Vec<(&str, [u64; NR_VECTORS])> = by_label.into_iter().collect();
    ranked.sort_by(|a, b| {
        let t = |v: &[u64; NR_VECTORS]| v.iter().sum::<u64>();
        t(&b.1).cmp(&t(&a.1)).then(a.0.cmp(b.0))
    });
    let mut out: Vec<(String, [u64; NR_VECTORS])> = ranked
        .iter()
        .take(PAID_TOP_N)
        .map(|(l, v)| (l.to_string(), *v))
        .collect();
    if ranked.len() > PAID_TOP_N || forgotten.iter().any(|&n| n > 0) {
        let mut other = forgotten;
        for (_, v) in ranked.iter().skip(PAID_TOP_N) {
            for (a, b) in other.iter_mut().zip(v) {
                *a = a.saturating_add(*b);
            }
        }
        out.push(("_other".into(), other));
    }
    out
}

pub fn encode_payers(
    enc: &mut DescriptorEncoder,
    av: &Availability,
    snap: &Snapshot,
) -> Result<(), std::fmt::Error> {
    if !av.softirq_runs {
        return Ok(());
    }
    let series = paid_series(snap);
    let samples = series.iter().flat_map(|(label, ns)| {
        VECTOR_NAMES.iter().zip(ns).map(move |(v, n)| {
            let l: Labels = vec![("vector", v.to_string()), ("netns", label.clone())];
            (l, ConstCounter::new(*n as f64 * 1e-9))
        })
    });
    family(
        enc,
        "sirqtop_softirq_paid",
        "Softirq time charged to the task it ran on, by that task's netns (idle, ksoftirqd \
         their own), top N + _other.",
        Some(&Unit::Seconds),
        MetricType::Counter,
        samples,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Payer, PayerKey, PayerKind};

    fn payer(netns: u32, label: &str, ns: u64) -> Payer {
        let mut p = Payer::new(PayerKey {
            kind: PayerKind::Task,
            netns,
            cookie: 0,
        });
        p.label = label.into();
        p.merge_counts(&[0, 0, 0, ns], &[0, 0, 0, 1]);
        p
    }

    #[test]
    fn top_n_then_other_and_other_only_grows() {
        let mut s = Snapshot::default();
        for i in 0..(PAID_TOP_N as u32 + 5) {
            s.payers
                .push(payer(i, &format!("pod-{i:02}"), 1000 + i as u64));
        }
        let a = paid_series(&s);
        assert_eq!(a.len(), PAID_TOP_N + 1);
        assert_eq!(a[0].0, format!("pod-{:02}", PAID_TOP_N + 4));
        let other = |v: &[(String, [u64; NR_VECTORS])]| v.last().unwrap().1[3];
        assert_eq!(other(&a), 1000 + 1001 + 1002 + 1003 + 1004);
        // pod-00 overtakes everyone: it leaves _other, the smallest of the top enters.
        s.payers[0].ns[3] += 10_000;
        let b = paid_series(&s);
        assert_eq!(b[0].0, "pod-00");
        assert!(other(&b) >= other(&a), "{} < {}", other(&b), other(&a));
        // Two payers with one label are one series.
        s.payers.truncate(2);
        s.payers[1].label = "pod-00".into();
        assert_eq!(paid_series(&s).len(), 1);
    }

    #[test]
    fn a_forgotten_payer_moves_into_other_which_only_grows() {
        let mut s = Snapshot::default();
        s.payers.push(payer(1, "pod-a", 500));
        s.payers.push(payer(2, "pod-gone", 300));
        let before = paid_series(&s);
        assert_eq!(before.len(), 2, "no _other while everything fits");
        // pod-gone's namespace went and it was forgotten: its totals are the _forgotten row.
        let mut f = s.payers.pop().unwrap();
        f.key = PayerKey {
            kind: PayerKind::Forgotten,
            ..PayerKey::default()
        };
        f.label = "_forgotten".into();
        s.payers.push(f);
        let after = paid_series(&s);
        let labels: Vec<&str> = after.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, vec!["pod-a", "_other"]);
        assert_eq!(after[1].1[3], 300);
    }
}
