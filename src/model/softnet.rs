//! The kernel's per-CPU receive statistics, `/proc/net/softnet_stat`: parsing by kernel
//! version, and counters that survive the file's 32-bit wrap.
//!
//! One line per online CPU, hexadecimal 32-bit columns. What each kernel prints:
//! - every kernel: processed, dropped (backlog full), time_squeeze, then zeros (was
//!   fastroute, cpu_collision), received_rps (10 columns);
//! - 3.11+: flow_limit_count (11);
//! - 5.10+: backlog length and the CPU's index (13): before, offline CPUs are skipped
//!   without a mark, so a line is the n-th *online* CPU;
//! - 6.1+: the backlog split into input and process queue lengths (15).

use serde::{Deserialize, Serialize};

/// Column layouts of `/proc/net/softnet_stat`, by the kernel that prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SoftnetLayout {
    /// < 3.11: no flow_limit_count.
    V10,
    /// 3.11 – 5.9.
    V11,
    /// 5.10 – 6.0: + backlog length, CPU index.
    V13,
    /// 6.1+: + input/process queue lengths.
    V15,
}

impl SoftnetLayout {
    /// What a kernel release (`uname -r`) prints; None if the release is unreadable.
    pub fn of_release(release: &str) -> Option<SoftnetLayout> {
        let mut it = release
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().ok());
        let v = (it.next()??, it.next()??);
        Some(match v {
            v if v >= (6, 1) => SoftnetLayout::V15,
            v if v >= (5, 10) => SoftnetLayout::V13,
            v if v >= (3, 11) => SoftnetLayout::V11,
            _ => SoftnetLayout::V10,
        })
    }

    /// The layout a line of `n` columns has; None below the oldest.
    pub fn of_columns(n: usize) -> Option<SoftnetLayout> {
        Some(match n {
            15.. => SoftnetLayout::V15,
            13..=14 => SoftnetLayout::V13,
            11..=12 => SoftnetLayout::V11,
            10 => SoftnetLayout::V10,
            _ => return None,
        })
    }

    /// The columns this layout has, by their JSON names.
    pub fn columns(self) -> Vec<&'static str> {
        let mut c = vec!["processed", "dropped", "time_squeeze", "received_rps"];
        if self >= SoftnetLayout::V11 {
            c.push("flow_limit_count");
        }
        if self >= SoftnetLayout::V13 {
            c.extend(["backlog_len", "cpu"]);
        }
        c
    }
}

/// One line of the file as printed (32-bit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftnetLine {
    pub cpu: u32,
    pub processed: u32,
    pub dropped: u32,
    pub time_squeeze: u32,
    pub received_rps: u32,
    pub flow_limit_count: Option<u32>,
    pub backlog_len: Option<u32>,
}

/// Parses the file. `online` maps line n to its CPU where the kernel prints no index
/// (< 5.10); `layout` is what the running kernel should print: a file with fewer columns
/// is read by its own count (a backport or a patched kernel), never beyond it.
pub fn parse(
    text: &str,
    layout: Option<SoftnetLayout>,
    online: &[u32],
) -> Result<Vec<SoftnetLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let cols: Vec<u32> = line
            .split_whitespace()
            .map(|w| u32::from_str_radix(w, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("softnet_stat line {}: {e}", n + 1))?;
        let got = SoftnetLayout::of_columns(cols.len())
            .ok_or_else(|| format!("softnet_stat line {}: {} columns", n + 1, cols.len()))?;
        let l = layout.map_or(got, |want| want.min(got));
        let cpu = if l >= SoftnetLayout::V13 {
            cols[12]
        } else {
            *online.get(n).unwrap_or(&(n as u32))
        };
        out.push(SoftnetLine {
            cpu,
            processed: cols[0],
            dropped: cols[1],
            time_squeeze: cols[2],
            received_rps: cols[9],
            flow_limit_count: (l >= SoftnetLayout::V11).then(|| cols[10]),
            backlog_len: (l >= SoftnetLayout::V13).then(|| cols[11]),
        });
    }
    Ok(out)
}

/// One CPU's receive statistics over a window: counters are differences, the backlog
/// length is the value at its end. None where the kernel has no such column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Softnet {
    /// Packets taken off the CPU's backlog or a NAPI and handed to the stack.
    pub processed: u64,
    /// Packets dropped because the backlog was full (`netdev_max_backlog`).
    pub dropped: u64,
    /// NET_RX runs that ended with work left (budget or time used up).
    pub time_squeeze: u64,
    /// Times this CPU was woken by another to process packets steered to it (RPS/RFS).
    pub received_rps: u64,
    pub flow_limit_count: Option<u64>,
    pub backlog_len: Option<u64>,
}

impl Softnet {
    pub fn delta(&self, e: &Softnet) -> Softnet {
        Softnet {
            processed: self.processed.saturating_sub(e.processed),
            dropped: self.dropped.saturating_sub(e.dropped),
            time_squeeze: self.time_squeeze.saturating_sub(e.time_squeeze),
            received_rps: self.received_rps.saturating_sub(e.received_rps),
            flow_limit_count: self
                .flow_limit_count
                .map(|v| v.saturating_sub(e.flow_limit_count.unwrap_or(0))),
            backlog_len: self.backlog_len,
        }
    }

    pub fn merge(&mut self, o: &Softnet) {
        self.processed += o.processed;
        self.dropped += o.dropped;
        self.time_squeeze += o.time_squeeze;
        self.received_rps += o.received_rps;
        self.flow_limit_count = match (self.flow_limit_count, o.flow_limit_count) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.backlog_len = match (self.backlog_len, o.backlog_len) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

/// Follows one CPU's line across reads: 64-bit totals since the first read, each step
/// added as a 32-bit wrapping difference (the file's counters wrap at 2^32). Read more
/// often than a counter can wrap (at 1 Mpps, `processed` wraps in 71 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftnetCounter {
    last: SoftnetLine,
    total: Softnet,
}

impl SoftnetCounter {
    pub fn new(first: SoftnetLine) -> SoftnetCounter {
        SoftnetCounter {
            last: first,
            total: Softnet {
                flow_limit_count: first.flow_limit_count.map(|_| 0),
                backlog_len: first.backlog_len.map(u64::from),
                ..Softnet::default()
            },
        }
    }

    pub fn update(&mut self, l: SoftnetLine) {
        let step = |now: u32, was: u32| u64::from(now.wrapping_sub(was));
        let t = &mut self.total;
        t.processed += step(l.processed, self.last.processed);
        t.dropped += step(l.dropped, self.last.dropped);
        t.time_squeeze += step(l.time_squeeze, self.last.time_squeeze);
        t.received_rps += step(l.received_rps, self.last.received_rps);
        if let (Some(v), Some(n), Some(w)) = (
            t.flow_limit_count.as_mut(),
            l.flow_limit_count,
            self.last.flow_limit_count,
        ) {
            *v += step(n, w);
        }
        t.backlog_len = l.backlog_len.map(u64::from);
        self.last = l;
    }

    /// Everything since the first read.
    pub fn total(&self) -> Softnet {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V15: &str = "\
00000012 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
00001fc9 00000002 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000007 00000001 00000004 00000001 00000003 00000001
";

    #[test]
    fn layout_follows_the_release() {
        assert_eq!(
            SoftnetLayout::of_release("6.18.44-fc"),
            Some(SoftnetLayout::V15)
        );
        assert_eq!(
            SoftnetLayout::of_release("5.15.0-91-generic"),
            Some(SoftnetLayout::V13)
        );
        assert_eq!(SoftnetLayout::of_release("5.4.0"), Some(SoftnetLayout::V11));
        assert_eq!(
            SoftnetLayout::of_release("3.10.0-1160.el7"),
            Some(SoftnetLayout::V10)
        );
        assert_eq!(SoftnetLayout::of_release("x"), None);
        assert_eq!(SoftnetLayout::V11.columns().len(), 5);
        assert!(SoftnetLayout::V13.columns().contains(&"backlog_len"));
    }

    #[test]
    fn parses_every_layout() {
        let l = parse(V15, Some(SoftnetLayout::V15), &[]).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].cpu, 1);
        assert_eq!(
            (l[1].processed, l[1].dropped, l[1].time_squeeze),
            (0x1fc9, 2, 3)
        );
        assert_eq!(l[1].received_rps, 7);
        assert_eq!(l[1].flow_limit_count, Some(1));
        assert_eq!(l[1].backlog_len, Some(4));
        // A 5.4 kernel: 11 columns, lines are the online CPUs in order (2 is offline).
        let old = "00000010 00000001 00000002 0 0 0 0 0 0 00000003 00000004\n\
                   00000020 00000000 00000000 0 0 0 0 0 0 00000000 00000000\n";
        let l = parse(old, Some(SoftnetLayout::V11), &[0, 3]).unwrap();
        assert_eq!((l[0].cpu, l[1].cpu), (0, 3));
        assert_eq!(l[0].flow_limit_count, Some(4));
        assert_eq!(l[0].backlog_len, None);
        // A kernel said to print 15 columns that prints 10: read as 10.
        let l = parse("1 2 3 0 0 0 0 0 0 4\n", Some(SoftnetLayout::V15), &[5]).unwrap();
        assert_eq!((l[0].cpu, l[0].flow_limit_count), (5, None));
        // Read no further than the running kernel's layout.
        let l = parse(V15, Some(SoftnetLayout::V11), &[0, 1]).unwrap();
        assert_eq!(l[1].backlog_len, None);
        assert!(parse("zz 1 2\n", None, &[]).unwrap_err().contains("line 1"));
        assert!(parse("1 2 3\n", None, &[])
            .unwrap_err()
            .contains("3 columns"));
    }

    #[test]
    fn counters_are_the_files_own_differences_across_the_wrap() {
        let mut a = parse(V15, None, &[]).unwrap()[1];
        a.processed = u32::MAX - 5;
        let mut c = SoftnetCounter::new(a);
        let mut b = a;
        b.processed = 10; // wrapped: 16 packets later
        b.dropped += 5;
        b.time_squeeze += 2;
        b.flow_limit_count = Some(3);
        b.backlog_len = Some(9);
        c.update(b);
        let t = c.total();
        assert_eq!(t.processed, 16);
        assert_eq!((t.dropped, t.time_squeeze), (5, 2));
        assert_eq!(t.flow_limit_count, Some(2));
        assert_eq!(t.backlog_len, Some(9));
        let later = {
            let mut d = b;
            d.processed += 100;
            d
        };
        c.update(later);
        let t2 = c.total();
        assert_eq!(t2.delta(&t).processed, 100);
        assert_eq!(t2.delta(&t).dropped, 0);
    }
}
