//! Forgetting payers whose namespace is gone (with a grace period, as interfaces): their
//! totals are summed into one `_forgotten` row, so the payers still add up to the node,
//! and their keys are deleted from the kernel's payer table, so that it does not fill on
//! a node whose pods come and go.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags};

use crate::bpf::{types, SirqtopSkel};
use crate::model::{Payer, PayerKey, PayerKind};

/// The kernel's key of a task payer.
fn raw_key(k: &PayerKey) -> types::sirq_payer_key {
    types::sirq_payer_key {
        cookie: k.cookie,
        netns: k.netns,
        kind: 0,
    }
}

/// Whether the kernel's payer table holds the task payer `k`.
pub(super) fn in_kernel(skel: &SirqtopSkel, k: &PayerKey) -> bool {
    let raw = raw_key(k);
    // SAFETY: sirq_payer_key is Plain: viewing it as bytes is sound.
    let key = unsafe { plain::as_bytes(&raw) };
    matches!(
        skel.maps.payers.lookup_percpu(key, MapFlags::ANY),
        Ok(Some(_))
    )
}

/// Forgets gone payers `after` their namespace went.
#[derive(Debug)]
pub(super) struct PayerForgetter {
    after: Duration,
    /// Task payers whose namespace was not found, since when.
    gone_since: HashMap<PayerKey, Instant>,
    /// Forgotten keys: whatever still shows of them goes to `_forgotten`.
    forgotten: HashSet<PayerKey>,
    /// Keys whose kernel entries to delete at the next reap.
    to_delete: Vec<PayerKey>,
    /// What the deleted kernel entries held.
    banked: Payer,
    last_scan: Option<Instant>,
}

impl PayerForgetter {
    pub(super) fn new(after: Duration) -> PayerForgetter {
        PayerForgetter {
            after,
            gone_since: HashMap::new(),
            forgotten: HashSet::new(),
            to_delete: Vec::new(),
            banked: Payer::new(PayerKey {
                kind: PayerKind::Forgotten,
                ..PayerKey::default()
            }),
            last_scan: None,
        }
    }

    /// Whether the namespaces should be scanned again (often enough to forget on time,
    /// rarely enough that the /proc walk costs little).
    pub(super) fn scan_due(&self, now: Instant) -> bool {
        let every = (self.after / 4).max(Duration::from_secs(1));
        self.last_scan
            .is_none_or(|t| now.duration_since(t) >= every)
    }

    /// Deletes the kernel entries of forgotten payers, banking what they held. Before
    /// the payers are read: what a CPU's cache still holds of one shows up there later.
    pub(super) fn reap(&mut self, skel: &SirqtopSkel) {
        let map = &skel.maps.payers;
        for k in std::mem::take(&mut self.to_delete) {
            let raw = raw_key(&k);
            // SAFETY: sirq_payer_key is Plain: viewing it as bytes is sound.
            let key = unsafe { plain::as_bytes(&raw) };
            if let Ok(Some(per_cpu)) = map.lookup_percpu(key, MapFlags::ANY) {
                for v in &per_cpu {
                    if let Ok(s) = plain::from_bytes::<types::sirq_payer_stats>(v) {
                        self.banked.merge_counts(&s.ns, &s.runs);
                    }
                }
                // A flush between the lookup and the delete is lost: only a CPU whose
                // cached payer this was can flush it, once.
                let _ = map.delete(key);
            }
        }
    }

    /// Updates which payers are gone (`live`: the namespaces that exist, when scanned
    /// now), marks those gone past the grace period as forgotten, and replaces every
    /// forgotten payer's row by the `_forgotten` row.
    pub(super) fn apply(
        &mut self,
        payers: &mut Vec<Payer>,
        live: Option<&HashSet<u32>>,
        now: Instant,
    ) {
        if let Some(live) = live {
            self.last_scan = Some(now);
            for p in payers.iter().filter(|p| p.key.kind == PayerKind::Task) {
                if live.contains(&p.key.netns) {
                    self.gone_since.remove(&p.key);
                } else {
                    self.gone_since.entry(p.key).or_insert(now);
                }
            }
        }
        let after = self.after;
        let due: Vec<PayerKey> = self
            .gone_since
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= after)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            self.gone_since.remove(&k);
            self.forgotten.insert(k);
        }
        let mut row = self.banked.clone();
        payers.retain(|p| {
            if !self.forgotten.contains(&p.key) {
                return true;
            }
            row.merge_counts(&p.ns, &p.runs);
            // Its kernel entry (or the one a cache flush re-created) goes at the next reap.
            self.to_delete.push(p.key);
            false
        });
        if row.runs.iter().any(|&r| r > 0) {
            payers.push(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NET_RX;

    fn task(netns: u32, ns: u64) -> Payer {
        let mut p = Payer::new(PayerKey {
            kind: PayerKind::Task,
            netns,
            cookie: u64::from(netns) + 100,
        });
        let mut v = [0u64; 10];
        v[NET_RX] = ns;
        let mut r = [0u64; 10];
        r[NET_RX] = 1;
        p.merge_counts(&v, &r);
        p
    }

    #[test]
    fn a_gone_payer_is_forgotten_after_the_grace_period_and_summed() {
        let mut f = PayerForgetter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let live: HashSet<u32> = [1].into();
        let mut p = vec![task(1, 5), task(2, 7)];
        f.apply(&mut p, Some(&live), t0);
        assert_eq!(p.len(), 2, "gone, but within the grace period");
        assert!(!f.scan_due(t0 + Duration::from_secs(1)));
        assert!(f.scan_due(t0 + Duration::from_secs(3)));
        let mut p = vec![task(1, 6), task(2, 7)];
        f.apply(&mut p, None, t0 + Duration::from_secs(10));
        assert_eq!(p.len(), 2);
        let forgotten = p
            .iter()
            .find(|p| p.key.kind == PayerKind::Forgotten)
            .unwrap();
        assert_eq!((forgotten.ns[NET_RX], forgotten.runs[NET_RX]), (7, 1));
        assert!(p.iter().all(|p| p.key.netns != 2), "{p:?}");
        assert_eq!(f.to_delete.len(), 1);
        // Its kernel entry deleted (banked 7), a cache's residue (2) seen later: the row
        // has both, the node's sum is kept.
        f.to_delete.clear();
        f.banked.merge_counts(
            &{
                let mut v = [0u64; 10];
                v[NET_RX] = 7;
                v
            },
            &[0, 0, 0, 1],
        );
        let mut p = vec![task(1, 6), task(2, 2)];
        f.apply(&mut p, None, t0 + Duration::from_secs(11));
        let forgotten = p
            .iter()
            .find(|p| p.key.kind == PayerKind::Forgotten)
            .unwrap();
        assert_eq!(forgotten.ns[NET_RX], 9);
        assert_eq!(f.to_delete.len(), 1, "the residue's entry goes next");
    }

    #[test]
    fn a_payer_seen_alive_again_is_not_forgotten() {
        let mut f = PayerForgetter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let mut p = vec![task(3, 1)];
        f.apply(&mut p, Some(&HashSet::new()), t0);
        f.apply(&mut p, Some(&[3].into()), t0 + Duration::from_secs(5));
        f.apply(&mut p, None, t0 + Duration::from_secs(20));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key.kind, PayerKind::Task);
        // Idle, ksoftirqd and overflow rows are never forgotten.
        let mut idle = vec![Payer::new(PayerKey {
            kind: PayerKind::Idle,
            ..PayerKey::default()
        })];
        f.apply(
            &mut idle,
            Some(&HashSet::new()),
            t0 + Duration::from_secs(30),
        );
        f.apply(&mut idle, None, t0 + Duration::from_secs(60));
        assert_eq!(idle[0].key.kind, PayerKind::Idle);
    }
}
