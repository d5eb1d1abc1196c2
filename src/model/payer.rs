//! Who paid for softirqs: softirq time charged to the task that was running when the
//! softirq ran, by that task's network namespace.

use serde::{Deserialize, Serialize};

use crate::bpf::limits::NR_VECTORS;

/// What kind of task paid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PayerKind {
    /// An ordinary task (a sender at its `local_bh_enable`, or a task interrupted on irq
    /// exit): charged to its network namespace.
    #[default]
    Task,
    /// The idle task: the CPU had nothing else to do.
    Idle,
    /// The CPU's ksoftirqd thread: deferred work.
    Ksoftirqd,
    /// Runs whose payer found the kernel's payer table full.
    Overflow,
    /// Payers whose namespace is gone, forgotten after the grace period (serve and the
    /// dashboard): their totals, summed.
    Forgotten,
}

/// A payer's identity: kind, and for tasks their namespace (cookie, inode).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct PayerKey {
    pub kind: PayerKind,
    pub netns: u32,
    pub cookie: u64,
}

/// One payer's softirq time and runs per vector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Payer {
    pub key: PayerKey,
    /// "idle", "ksoftirqd", or the namespace's label (the same as its interfaces').
    pub label: String,
    pub ns: [u64; NR_VECTORS],
    pub runs: [u64; NR_VECTORS],
}

impl Payer {
    pub fn new(key: PayerKey) -> Payer {
        Payer {
            key,
            ..Payer::default()
        }
    }

    pub fn merge_counts(&mut self, ns: &[u64], runs: &[u64]) {
        for (a, b) in self.ns.iter_mut().zip(ns) {
            *a = a.saturating_add(*b);
        }
        for (a, b) in self.runs.iter_mut().zip(runs) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn total_ns(&self) -> u64 {
        self.ns.iter().sum()
    }

    pub fn delta(&self, e: &Payer) -> Payer {
        let mut d = self.clone();
        for v in 0..NR_VECTORS {
            d.ns[v] = self.ns[v].saturating_sub(e.ns[v]);
            d.runs[v] = self.runs[v].saturating_sub(e.runs[v]);
        }
        d
    }
}

/// Payers of `now` less those of `earlier` (by key), idle ones left out. A payer of
/// `earlier` missing from `now` was forgotten into the `_forgotten` row: what it had
/// before is not new there.
pub fn delta(now: &[Payer], earlier: &[Payer]) -> Vec<Payer> {
    let mut moved = Payer::default();
    for e in earlier {
        if e.key.kind == PayerKind::Task && !now.iter().any(|p| p.key == e.key) {
            moved.merge_counts(&e.ns, &e.runs);
        }
    }
    now.iter()
        .map(|p| {
            let d = match earlier.iter().find(|e| e.key == p.key) {
                Some(e) => p.delta(e),
                None => p.clone(),
            };
            if p.key.kind == PayerKind::Forgotten {
                d.delta(&moved)
            } else {
                d
            }
        })
        .filter(|p| p.runs.iter().any(|&r| r > 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_by_key_drops_payers_without_runs() {
        let k = |netns| PayerKey {
            kind: PayerKind::Task,
            netns,
            cookie: 0,
        };
        let mut a = Payer::new(k(1));
        a.merge_counts(&[0, 0, 0, 100], &[0, 0, 0, 2]);
        let mut b = Payer::new(k(2));
        b.merge_counts(&[5], &[1]);
        let mut a2 = a.clone();
        a2.merge_counts(&[0, 0, 0, 50], &[0, 0, 0, 1]);
        let d = delta(&[a2, b.clone()], &[a, b]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].ns[3], d[0].runs[3], d[0].total_ns()), (50, 1, 50));
    }

    #[test]
    fn a_payer_forgotten_in_the_interval_adds_nothing_new() {
        let task = PayerKey {
            kind: PayerKind::Task,
            netns: 9,
            cookie: 1,
        };
        let forgotten = PayerKey {
            kind: PayerKind::Forgotten,
            ..PayerKey::default()
        };
        let mut gone = Payer::new(task);
        gone.merge_counts(&[0, 0, 0, 70], &[0, 0, 0, 7]);
        let mut f_before = Payer::new(forgotten);
        f_before.merge_counts(&[0, 0, 0, 10], &[0, 0, 0, 1]);
        // Forgotten: its 70 ns moved into the row, plus 5 ns of a cache's residue.
        let mut f_now = f_before.clone();
        f_now.merge_counts(&[0, 0, 0, 75], &[0, 0, 0, 8]);
        let d = delta(&[f_now], &[gone, f_before]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].ns[3], d[0].runs[3]), (5, 1));
    }
}
