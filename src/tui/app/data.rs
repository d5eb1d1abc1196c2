//! What the dashboard shows, folded from each new snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{IfaceRow, Rates, Sample, GONE_KEEP_NS};
use crate::model::{CpuStats, Histogram, IfaceKey, Loss, RaiseSite, Snapshot};

/// Everything measured, as the display shows it. Frozen copies of it implement pause.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// Snapshot clock of the newest snapshot: ns since the probes were attached.
    pub clock_ns: u64,
    /// Length of the last interval (ns) the rates are computed over.
    pub interval_ns: u64,
    /// Snapshots applied so far.
    pub updates: u64,
    pub rows: BTreeMap<IfaceKey, IfaceRow>,
    /// Rows dropped after being gone for [`GONE_KEEP_NS`]; not re-added while reported gone.
    pub expired: BTreeSet<IfaceKey>,
    /// Per-CPU softirq activity in the last interval.
    pub cpus: Vec<CpuStats>,
    /// Losses since attach.
    pub loss: Loss,
    /// Losses in the last interval.
    pub loss_last: Loss,
    /// Sum of the BPF programs' run time over the interval, % of one CPU; None when BPF
    /// stats are off.
    pub bpf_cost_pct: Option<f64>,
    pub programs: usize,
    /// Paths since attach, most softirq time first, with their rate in the last interval.
    pub paths: Vec<PathView>,
    /// Findings over the last interval, most severe first.
    pub findings: Vec<crate::findings::Finding>,
    /// Who paid for softirqs in the last interval, most time first.
    pub payers: Vec<crate::model::Payer>,
    /// Slow softirqs since attach (the last events, exact counts).
    pub slow: crate::model::SlowSoftirqs,
    /// Slow softirqs counted in the last interval.
    pub slow_last: u64,
    /// Latency sampling (--timing-rate) since attach, and in the last interval.
    pub timing: crate::model::Timing,
    pub timing_last: crate::model::Timing,
}

/// A path as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PathView {
    /// Numbers since attach (per-packet costs are steadier over it).
    pub path: crate::model::Path,
    /// Packets per second over the last interval.
    pub pps: f64,
}

impl Data {
    pub(super) fn apply(
        &mut self,
        cur: &Snapshot,
        delta: &Snapshot,
        bpf_stats: bool,
        av: &crate::model::Availability,
    ) {
        let now = cur.elapsed_ns;
        let dt = delta.elapsed_ns.max(1);
        self.clock_ns = now;
        self.interval_ns = dt;
        self.updates += 1;

        let mut sites: HashMap<IfaceKey, Vec<RaiseSite>> = HashMap::new();
        for r in &delta.raise_sites {
            if let Some(k) = r.iface {
                sites.entry(k).or_default().push(r.clone());
            }
        }
        for v in sites.values_mut() {
            v.sort_by(|a, b| b.count.cmp(&a.count).then(b.samples.cmp(&a.samples)));
        }
        let mut seen = HashSet::new();
        for (c, d) in cur.interfaces.iter().zip(delta.interfaces.iter()) {
            let key = c.key;
            seen.insert(key);
            if c.gone && self.expired.contains(&key) {
                continue;
            }
            if !c.gone {
                self.expired.remove(&key);
            }
            let mut new = false;
            let row = self.rows.entry(key).or_insert_with(|| {
                new = true;
                IfaceRow::new(c.clone())
            });
            // A new row's interval is everything since attach.
            row.unseen_last = if new {
                c.rx_unseen_notable()
            } else {
                c.rx_unseen_notable_since(&row.iface)
            };
            row.iface = c.clone();
            row.last = d.clone();
            row.rates = Rates::of(d, dt);
            row.raise_sites = sites.remove(&key).unwrap_or_default();
            row.gone_since_ns = if c.gone {
                Some(row.gone_since_ns.unwrap_or(now))
            } else {
                None
            };
            let s = Sample {
                tx_pps: row.rates.tx_pps,
                rx_pps: row.rates.rx_pps,
                softirq_pct: row.rates.softirq_pct,
            };
            row.push_sample(s);
        }
        for row in self.rows.values_mut() {
            if seen.contains(&row.iface.key) {
                continue;
            }
            let mut idle = row.iface.clone();
            idle.counters = Default::default();
            idle.veth_hop = Histogram::default();
            idle.backlog_wait = Histogram::default();
            row.last = idle;
            row.rates = Rates::default();
            row.raise_sites.clear();
            row.unseen_last = None;
            row.gone_since_ns = Some(row.gone_since_ns.unwrap_or(now));
            row.push_sample(Sample::default());
        }
        let expired: Vec<IfaceKey> = self
            .rows
            .values()
            .filter(|r| {
                r.gone_since_ns
                    .is_some_and(|t| now.saturating_sub(t) >= GONE_KEEP_NS)
            })
            .map(|r| r.iface.key)
            .collect();
        for k in expired {
            self.rows.remove(&k);
            self.expired.insert(k);
        }
        // An expired key no longer reported (the collector forgot it) needs no remembering.
        self.expired.retain(|k| seen.contains(k));

        let mut cpus = delta.cpus.clone();
        cpus.sort_by_key(|c| c.cpu);
        self.cpus = cpus;
        self.loss = cur.loss;
        self.loss_last = delta.loss;
        self.timing = cur.timing;
        self.timing_last = delta.timing;
        self.programs = delta.programs.len();
        let times: Vec<u64> = delta
            .programs
            .iter()
            .filter_map(|p| p.run_time_ns)
            .collect();
        self.bpf_cost_pct = (bpf_stats && !times.is_empty())
            .then(|| times.iter().sum::<u64>() as f64 / dt as f64 * 100.0);
        let recent: HashMap<(IfaceKey, IfaceKey, u32), u64> = delta
            .paths(av)
            .iter()
            .map(|p| ((p.from, p.to, p.hops), p.packets))
            .collect();
        self.paths = cur
            .paths(av)
            .into_iter()
            .map(|path| PathView {
                pps: recent
                    .get(&(path.from, path.to, path.hops))
                    .map_or(0.0, |n| *n as f64 * 1e9 / dt as f64),
                path,
            })
            .collect();
        self.findings = crate::findings::evaluate(delta, av);
        self.slow = cur.slow.clone();
        self.slow_last = delta.slow.total();
        self.payers = delta.payers.clone();
        self.payers
            .sort_by(|a, b| b.total_ns().cmp(&a.total_ns()).then(a.label.cmp(&b.label)));
    }
}
