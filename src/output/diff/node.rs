//! Node-wide numbers of two captures: the kernel's softnet counters over all CPUs.

use serde::{Deserialize, Serialize};

use super::Change;
use crate::model::Softnet;
use crate::output::json::Capture;

/// `/proc/net/softnet_stat` over every CPU of each capture (counts over its duration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoftnetChange {
    pub processed: Change,
    pub dropped: Change,
    pub time_squeeze: Change,
    pub received_rps: Change,
}

/// The capture's softnet summed over CPUs; None if no CPU has it (older captures, or
/// the file was unreadable).
pub fn softnet_total(c: &Capture) -> Option<Softnet> {
    let mut it = c.cpus.iter().filter_map(|c| c.softnet);
    let mut t = it.next()?;
    for s in it {
        t.merge(&s);
    }
    Some(t)
}

pub(super) fn softnet_change(before: &Capture, after: &Capture) -> Option<SoftnetChange> {
    let (b, a) = (softnet_total(before)?, softnet_total(after)?);
    let c = |f: fn(&Softnet) -> u64| Change::new(Some(f(&b) as f64), Some(f(&a) as f64));
    Some(SoftnetChange {
        processed: c(|s| s.processed),
        dropped: c(|s| s.dropped),
        time_squeeze: c(|s| s.time_squeeze),
        received_rps: c(|s| s.received_rps),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Capture {
        Capture::from_json(include_str!("../../../tests/fixtures/diff_before.json")).unwrap()
    }

    #[test]
    fn softnet_sums_cpus_and_needs_both_sides() {
        let before = fixture();
        let mut after = fixture();
        assert!(softnet_change(&before, &after).is_none(), "older captures");
        let sn = |dropped, squeeze| Softnet {
            processed: 1000,
            dropped,
            time_squeeze: squeeze,
            ..Softnet::default()
        };
        after.cpus[0].softnet = Some(sn(5, 1));
        assert!(softnet_change(&before, &after).is_none(), "one side only");
        let mut before = before;
        before.cpus[0].softnet = Some(sn(0, 0));
        if after.cpus.len() > 1 {
            after.cpus[1].softnet = Some(sn(2, 0));
        }
        let c = softnet_change(&before, &after).unwrap();
        let extra = if after.cpus.len() > 1 { 2.0 } else { 0.0 };
        assert_eq!(c.dropped.after, Some(5.0 + extra));
        assert_eq!(c.dropped.before, Some(0.0));
        assert_eq!(c.time_squeeze.delta, Some(1.0));
        let d = super::super::diff(&before, &after, &[], None).unwrap();
        let table = super::super::render_table(&d);
        assert!(table.contains("backlog drops"), "{table}");
    }
}
