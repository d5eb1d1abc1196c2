//! `/proc/net/softnet_stat` followed from attach: per CPU, totals since then.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::softnet::{self, SoftnetCounter, SoftnetLayout};
use crate::model::Softnet;

/// Reads the file at attach and at every poll (often enough that no 32-bit counter can
/// wrap twice in between), keeping 64-bit totals since attach.
#[derive(Debug)]
pub struct SoftnetTracker {
    path: PathBuf,
    layout: Option<SoftnetLayout>,
    online: Vec<u32>,
    cpus: BTreeMap<u32, SoftnetCounter>,
    /// False once the file could not be read or parsed: the CPUs then have no softnet.
    ok: bool,
}

impl SoftnetTracker {
    /// Starts following `path` (normally `/proc/net/softnet_stat`) as printed by the
    /// kernel `release`.
    pub fn start(path: impl Into<PathBuf>, release: &str) -> SoftnetTracker {
        let mut t = SoftnetTracker {
            path: path.into(),
            layout: SoftnetLayout::of_release(release),
            online: crate::probe::kernel::online_cpu_list(),
            cpus: BTreeMap::new(),
            ok: true,
        };
        t.update();
        t
    }

    /// Reads the file once more and adds each CPU's change.
    pub fn update(&mut self) {
        if !self.ok {
            return;
        }
        let lines = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|text| softnet::parse(&text, self.layout, &self.online));
        let Ok(lines) = lines else {
            self.ok = false;
            self.cpus.clear();
            return;
        };
        for l in lines {
            // A CPU brought online after attach starts from its first line.
            self.cpus
                .entry(l.cpu)
                .and_modify(|c| c.update(l))
                .or_insert_with(|| SoftnetCounter::new(l));
        }
    }

    /// One CPU's totals since attach (None if it was never in the file).
    pub fn total(&self, cpu: u32) -> Option<Softnet> {
        self.cpus.get(&cpu).map(SoftnetCounter::total)
    }
}
