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

/// A finding in either capture, matched by (id, subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingChange {
    pub id: String,
    pub subject: String,
    /// The more severe side's.
    pub severity: crate::findings::Severity,
    pub before: bool,
    pub after: bool,
}

/// Findings of both captures: new after, gone after, or in both; most severe first.
pub(super) fn finding_changes(before: &Capture, after: &Capture) -> Vec<FindingChange> {
    let mut out: Vec<FindingChange> = Vec::new();
    for (side, c) in [(false, before), (true, after)] {
        for f in &c.findings {
            let at = out
                .iter()
                .position(|x| x.id == f.id && x.subject == f.subject);
            let x = match at {
                Some(i) => &mut out[i],
                None => {
                    out.push(FindingChange {
                        id: f.id.clone(),
                        subject: f.subject.clone(),
                        severity: f.severity,
                        before: false,
                        after: false,
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            x.severity = x.severity.max(f.severity);
            if side {
                x.after = true;
            } else {
                x.before = true;
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| (&a.id, &a.subject).cmp(&(&b.id, &b.subject)))
    });
    out
}

#[cfg(test)]
mod finding_tests {
    use super::*;
    use crate::findings::{Finding, Severity};

    fn finding(id: &str, subject: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            severity,
            subject: subject.into(),
            numbers: Default::default(),
            summary: String::new(),
            remedy: String::new(),
        }
    }

    #[test]
    fn findings_are_new_gone_or_in_both() {
        let text = include_str!("../../../tests/fixtures/diff_before.json");
        let mut before = Capture::from_json(text).unwrap();
        let mut after = before.clone();
        assert!(finding_changes(&before, &after).is_empty());
        before.findings = vec![
            finding("backlog_drops", "cpu1", Severity::Critical),
            finding("extra_veth_hops", "a -> b", Severity::Warning),
        ];
        after.findings = vec![
            finding("extra_veth_hops", "a -> b", Severity::Warning),
            finding("ksoftirqd_deferred", "cpu0", Severity::Warning),
        ];
        let c = finding_changes(&before, &after);
        let state: Vec<(&str, bool, bool)> = c
            .iter()
            .map(|x| (x.id.as_str(), x.before, x.after))
            .collect();
        assert_eq!(
            state,
            [
                ("backlog_drops", true, false),
                ("extra_veth_hops", true, true),
                ("ksoftirqd_deferred", false, true)
            ]
        );
        let d = super::super::diff(&before, &after, &[], None).unwrap();
        let table = super::super::render_table(&d);
        assert!(
            table.contains("gone    critical backlog_drops cpu1"),
            "{table}"
        );
        assert!(
            table.contains("new     warning  ksoftirqd_deferred cpu0"),
            "{table}"
        );
    }
}
