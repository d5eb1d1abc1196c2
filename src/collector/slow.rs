//! Slow softirqs from the kernel: the `slow_events` ring buffer's records (kept in a
//! bounded log) and the exact per-CPU counts of `slow_state`.

use std::cell::RefCell;
use std::rc::Rc;

use libbpf_rs::{MapCore, MapFlags};

use super::maps::map_error;
use crate::bpf::{types, SirqtopSkel};
use crate::error::Result;
use crate::model::slow::SlowLog;
use crate::model::{Interface, SlowEvent, SlowKind, SlowSoftirqs, NET_RX};

/// CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns) and CLOCK_REALTIME now, in ns.
fn clocks() -> (u64, u64) {
    let read = |id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into `ts`, which lives on the stack.
        unsafe { libc::clock_gettime(id, &mut ts) };
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64)
    };
    (read(libc::CLOCK_MONOTONIC), read(libc::CLOCK_REALTIME))
}

/// The log of events and the clock reading at attach that their times are counted from.
#[derive(Debug)]
pub(super) struct SlowTracker {
    log: Rc<RefCell<SlowLog>>,
    attached_mono: u64,
    threshold_ns: u64,
}

impl SlowTracker {
    /// `threshold_ns` 0: not measured (then no events come either).
    pub(super) fn new(threshold_ns: u64) -> SlowTracker {
        SlowTracker {
            log: Rc::default(),
            attached_mono: clocks().0,
            threshold_ns,
        }
    }

    /// The ring buffer's callback: must not panic; a malformed record is skipped.
    pub(super) fn ring_callback(&self) -> impl FnMut(&[u8]) -> i32 + 'static {
        let log = self.log.clone();
        let attached = self.attached_mono;
        move |data: &[u8]| {
            if let Some(e) = event(data, attached, clocks()) {
                if let Ok(mut l) = log.try_borrow_mut() {
                    l.push(e);
                }
            }
            0
        }
    }

    /// Counts from the kernel, the kept events with their labels resolved: namespace
    /// labels by `label`, receiving interfaces from `interfaces`.
    pub(super) fn read(
        &self,
        skel: &SirqtopSkel,
        interfaces: &[Interface],
        label: impl Fn(u32) -> String,
    ) -> Result<SlowSoftirqs> {
        let mut out = SlowSoftirqs {
            threshold_ns: self.threshold_ns,
            ..SlowSoftirqs::default()
        };
        let per_cpu = skel
            .maps
            .slow_state
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("slow_state"))?
            .unwrap_or_default();
        for v in &per_cpu {
            if let Ok(s) = plain::from_bytes::<types::sirq_slow_state>(v) {
                add_counts(&mut out, s);
            }
        }
        let mut log = self.log.borrow_mut();
        for e in log.events_mut() {
            if e.netns_label.is_empty() && e.netns != 0 {
                e.netns_label = label(e.netns);
            }
            if let (Some(k), None) = (e.rx_top, &e.rx_top_name) {
                if let Some(i) = interfaces.iter().find(|i| i.key == k) {
                    e.rx_top_name = Some(i.name.clone());
                    e.rx_top_label = Some(i.netns_label.clone());
                }
            }
        }
        out.events = log.events();
        out.dropped_old = log.dropped_old();
        Ok(out)
    }
}

fn add_counts(out: &mut SlowSoftirqs, s: &types::sirq_slow_state) {
    let kinds = SlowKind::ALL.len();
    for (v, c) in out.counts.iter_mut().enumerate() {
        for (k, n) in c.iter_mut().enumerate() {
            *n = n.saturating_add(s.counts.get(v * kinds + k).copied().unwrap_or(0));
        }
    }
    out.capped = out.capped.saturating_add(s.capped);
    out.lost = out.lost.saturating_add(s.lost);
}

/// A ring-buffer record as a model event; `(mono, real)` are the clocks now.
fn event(data: &[u8], attached_mono: u64, (mono, real): (u64, u64)) -> Option<SlowEvent> {
    let r = plain::from_bytes::<types::sirq_slow_event>(data).ok()?;
    let kind = SlowKind::from_raw(r.kind)?;
    let vector = r.vec as usize;
    if vector >= crate::bpf::limits::NR_VECTORS {
        return None;
    }
    let net_rx_run = vector == NET_RX && kind == SlowKind::Run;
    let top = super::maps::key(&r.top);
    Some(SlowEvent {
        seq: 0,
        at_ns: r.ts.saturating_sub(attached_mono),
        unix_ns: real.saturating_sub(mono.saturating_sub(r.ts)),
        cpu: r.cpu,
        vector,
        kind,
        duration_ns: r.duration_ns,
        ksoftirqd: r.ksoftirqd != 0,
        pid: r.pid,
        comm: super::identity::c_string(&r.comm),
        netns: r.netns,
        netns_cookie: r.netns_cookie,
        netns_label: String::new(),
        packets: net_rx_run.then_some(r.packets),
        rx_top: (net_rx_run && top.ifindex != 0).then_some(top),
        rx_top_name: None,
        rx_top_label: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IfaceKey;

    fn raw() -> types::sirq_slow_event {
        let mut r = types::sirq_slow_event {
            ts: 5_000,
            duration_ns: 70_000,
            cpu: 1,
            vec: NET_RX as u32,
            kind: 0,
            pid: 42,
            ksoftirqd: 1,
            packets: 300,
            netns: 4026531840,
            ..Default::default()
        };
        r.top.ifindex = 9;
        r.top.netns = 77;
        r.top.cookie = 3;
        for (i, b) in b"iperf3".iter().enumerate() {
            r.comm[i] = *b as i8;
        }
        r
    }

    fn bytes(r: &types::sirq_slow_event) -> Vec<u8> {
        // SAFETY: sirq_slow_event is Plain: viewing it as bytes is sound.
        unsafe { plain::as_bytes(r) }.to_vec()
    }

    #[test]
    fn a_record_becomes_an_event_with_its_times() {
        let e = event(&bytes(&raw()), 1_000, (10_000, 1_000_000)).unwrap();
        assert_eq!(e.at_ns, 4_000);
        // 5 µs before "now" on the monotonic clock is 5 µs before now on the real one.
        assert_eq!(e.unix_ns, 995_000);
        assert_eq!((e.cpu, e.vector, e.kind), (1, NET_RX, SlowKind::Run));
        assert_eq!((e.pid, e.comm.as_str(), e.ksoftirqd), (42, "iperf3", true));
        assert_eq!(e.packets, Some(300));
        assert_eq!(
            e.rx_top,
            Some(IfaceKey {
                netns: 77,
                ifindex: 9,
                cookie: 3
            })
        );
    }

    #[test]
    fn delays_and_other_vectors_carry_no_packets() {
        let mut r = raw();
        r.kind = 1;
        let e = event(&bytes(&r), 0, (10_000, 10_000)).unwrap();
        assert_eq!((e.kind, e.packets, e.rx_top), (SlowKind::Delay, None, None));
        r.kind = 0;
        r.vec = 1;
        assert_eq!(
            event(&bytes(&r), 0, (10_000, 10_000)).unwrap().packets,
            None
        );
    }

    #[test]
    fn malformed_records_are_skipped() {
        assert!(event(&[1, 2, 3], 0, (0, 0)).is_none());
        let mut r = raw();
        r.kind = 7;
        assert!(event(&bytes(&r), 0, (0, 0)).is_none());
        r.kind = 0;
        r.vec = 99;
        assert!(event(&bytes(&r), 0, (0, 0)).is_none());
    }

    #[test]
    fn per_cpu_counts_add_up_by_vector_and_kind() {
        let mut out = SlowSoftirqs::default();
        let mut s = types::sirq_slow_state::default();
        s.counts[NET_RX * 2] = 5;
        s.counts[NET_RX * 2 + 1] = 2;
        s.capped = 1;
        add_counts(&mut out, &s);
        add_counts(&mut out, &s);
        assert_eq!(out.count(NET_RX, SlowKind::Run), 10);
        assert_eq!(out.count(NET_RX, SlowKind::Delay), 4);
        assert_eq!((out.capped, out.lost), (2, 0));
    }
}
