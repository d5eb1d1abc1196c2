//! Softirq vectors per CPU.

use serde::{Deserialize, Serialize};

use super::{Histogram, Softnet};

/// One softirq vector on one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VectorStats {
    pub raises: u64,
    pub runs: u64,
    pub run_ns: u64,
    pub ksoftirqd_runs: u64,
    pub run: Histogram,
    pub raise_to_run: Histogram,
}

impl VectorStats {
    pub fn merge(&mut self, o: &VectorStats) {
        self.raises = self.raises.saturating_add(o.raises);
        self.runs = self.runs.saturating_add(o.runs);
        self.run_ns = self.run_ns.saturating_add(o.run_ns);
        self.ksoftirqd_runs = self.ksoftirqd_runs.saturating_add(o.ksoftirqd_runs);
        self.run.merge(&o.run);
        self.raise_to_run.merge(&o.raise_to_run);
    }
    pub fn delta(&self, e: &VectorStats) -> VectorStats {
        VectorStats {
            raises: self.raises.saturating_sub(e.raises),
            runs: self.runs.saturating_sub(e.runs),
            run_ns: self.run_ns.saturating_sub(e.run_ns),
            ksoftirqd_runs: self.ksoftirqd_runs.saturating_sub(e.ksoftirqd_runs),
            run: self.run.delta(&e.run),
            raise_to_run: self.raise_to_run.delta(&e.raise_to_run),
        }
    }
    pub fn is_zero(&self) -> bool {
        self.raises == 0 && self.runs == 0
    }
}

/// Per-CPU softirq statistics, indexed by vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu: u32,
    pub vectors: [VectorStats; 10],
    /// The kernel's receive statistics of this CPU (`/proc/net/softnet_stat`); None
    /// where the file could not be read or the CPU is not in it (offline).
    #[serde(default)]
    pub softnet: Option<Softnet>,
}

impl CpuStats {
    pub fn new(cpu: u32) -> Self {
        CpuStats {
            cpu,
            vectors: [VectorStats::default(); 10],
            softnet: None,
        }
    }
    pub fn delta(&self, e: &CpuStats) -> CpuStats {
        let mut d = CpuStats::new(self.cpu);
        for (i, v) in d.vectors.iter_mut().enumerate() {
            *v = self.vectors[i].delta(&e.vectors[i]);
        }
        d.softnet = match (&self.softnet, &e.softnet) {
            (Some(s), Some(e)) => Some(s.delta(e)),
            (s, _) => *s,
        };
        d
    }
}
