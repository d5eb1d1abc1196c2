//! Interface series that stay counters from scrape to scrape.
//!
//! Prometheus reads a counter that goes down as a restart, so `rate()` over it jumps.
//! Summing the current numbers of the interfaces behind a series can go down: an
//! interface folded into `_other` that gets its own series takes its numbers out of
//! `_other`, and a gone interface that is forgotten takes its numbers out of the series it
//! shared with its successor (a pod recreated under the same name). So each series is
//! accumulated from its interfaces' increments instead, and an interface's increments go
//! to what showed it at the time: its own series, or `_other`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{Histogram, IfaceCounters, IfaceKey, Interface};

use super::series::{info_of, InfoLabels, Series, OTHER};

/// (netns label, interface name, kind): what a series is known by.
type SeriesKey = (String, String, String);

/// The cumulative numbers of an interface or series.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    counters: IfaceCounters,
    veth_hop: Histogram,
    backlog_wait: Histogram,
}

impl Totals {
    fn of(i: &Interface) -> Totals {
        Totals {
            counters: i.counters,
            veth_hop: i.veth_hop,
            backlog_wait: i.backlog_wait,
        }
    }

    fn delta(&self, earlier: &Totals) -> Totals {
        Totals {
            counters: self.counters.delta(&earlier.counters),
            veth_hop: self.veth_hop.delta(&earlier.veth_hop),
            backlog_wait: self.backlog_wait.delta(&earlier.backlog_wait),
        }
    }

    fn add(&mut self, d: &Totals) {
        self.counters.merge(&d.counters);
        self.veth_hop.merge(&d.veth_hop);
        self.backlog_wait.merge(&d.backlog_wait);
    }

    /// What ranks a series: softirq time, then receives, then transmits.
    fn rank(&self) -> (u64, u64, u64) {
        let c = &self.counters;
        (c.softirq_ns, c.rx_packets, c.tx_packets)
    }
}

/// Turns successive snapshots' interfaces into series; keep one per exposition.
#[derive(Debug, Default)]
pub struct Folder {
    max: Option<usize>,
    /// Every interface's numbers at the last fold.
    last: HashMap<IfaceKey, Totals>,
    /// Every series (shown or folded): accumulated increments.
    series: BTreeMap<SeriesKey, Totals>,
    /// With `max`: the series shown on their own; the others are folded into `_other`.
    shown: BTreeSet<SeriesKey>,
    other: Totals,
    /// `_other` has been shown: it stays, so that it does not come and go.
    other_shown: bool,
}

impl Folder {
    /// `max`: how many series are shown on their own (`--max-interfaces`), None = all.
    pub fn new(max: Option<usize>) -> Folder {
        Folder {
            max,
            ..Folder::default()
        }
    }

    /// The series of these interfaces (a snapshot's), most softirq time first, `_other`
    /// last. Every series' numbers are at least what they were at the previous fold.
    pub fn fold(&mut self, interfaces: &[Interface]) -> Vec<Series> {
        // Increments since the last fold, per series; present interfaces first, so that
        // their labels win the info series.
        let mut ordered: Vec<&Interface> = interfaces.iter().collect();
        ordered.sort_by_key(|i| i.gone);
        let mut last = HashMap::with_capacity(interfaces.len());
        let mut now: BTreeMap<SeriesKey, (Totals, &Interface)> = BTreeMap::new();
        for i in ordered {
            let t = Totals::of(i);
            let d = match self.last.get(&i.key) {
                Some(before) => t.delta(before),
                None => t,
            };
            last.insert(i.key, t);
            let key = (
                i.netns_label.clone(),
                i.name.clone(),
                i.kind.clone().unwrap_or_default(),
            );
            now.entry(key).or_insert((Totals::default(), i)).0.add(&d);
        }
        // Interfaces no longer reported (forgotten) leave their numbers where they are.
        self.last = last;
        self.series.retain(|k, _| now.contains_key(k));
        self.shown.retain(|k| now.contains_key(k));
        let mut fresh = Vec::new();
        for (k, (d, _)) in &now {
            match self.series.get_mut(k) {
                Some(acc) => {
                    acc.add(d);
                    if self.max.is_some() && !self.shown.contains(k) {
                        self.other.add(d);
                    }
                }
                None => {
                    self.series.insert(k.clone(), *d);
                    fresh.push(k.clone());
                }
            }
        }
        if let Some(max) = self.max {
            self.choose(max, &now);
            // A new series that is folded brings its whole numbers to `_other` (nobody
            // showed them); one that moves between `_other` and its own series keeps
            // what each has shown.
            for k in &fresh {
                if !self.shown.contains(k) {
                    self.other.add(&now[k].0);
                }
            }
        }
        self.render(&now)
    }

    /// Which series are shown: those shown before stay, free places go to the busiest
    /// since the last fold, and a folded series much busier than the quietest shown one
    /// takes its place (a few per fold, so that the set does not flap).
    fn choose(&mut self, max: usize, now: &BTreeMap<SeriesKey, (Totals, &Interface)>) {
        let activity = |k: &SeriesKey| (now[k].0.rank(), self.series[k].rank());
        let mut outside: Vec<&SeriesKey> =
            now.keys().filter(|k| !self.shown.contains(*k)).collect();
        outside.sort_by_cached_key(|k| std::cmp::Reverse(activity(k)));
        let mut outside = outside.into_iter().peekable();
        while self.shown.len() < max {
            let Some(k) = outside.next() else { break };
            self.shown.insert(k.clone());
        }
        let mut swaps = (max / 10).max(1);
        while swaps > 0 {
            let Some(&best) = outside.peek() else { break };
            let Some(weakest) = self.shown.iter().min_by_key(|k| activity(k)).cloned() else {
                break;
            };
            let (b, w) = (
                now[best].0.counters.softirq_ns,
                now[&weakest].0.counters.softirq_ns,
            );
            if b == 0 || b <= w.saturating_mul(2) {
                break;
            }
            self.shown.remove(&weakest);
            self.shown.insert(best.clone());
            outside.next();
            swaps -= 1;
        }
    }

    fn render(&mut self, now: &BTreeMap<SeriesKey, (Totals, &Interface)>) -> Vec<Series> {
        let mut shown: Vec<(&SeriesKey, &Totals)> = self
            .series
            .iter()
            .filter(|(k, _)| self.max.is_none() || self.shown.contains(*k))
            .collect();
        // Most softirq time first; ties by labels (the map's order, kept by a stable sort).
        shown.sort_by_key(|(_, t)| std::cmp::Reverse(t.rank()));
        let mut out: Vec<Series> = shown
            .into_iter()
            .map(|(k, t)| {
                let info = Some(info_of(now[k].1));
                series(k.0.clone(), k.1.clone(), k.2.clone(), t, info)
            })
            .collect();
        if self.max.is_some() && (self.other_shown || self.series.len() > self.shown.len()) {
            self.other_shown = true;
            let o = &self.other;
            out.push(series(OTHER.into(), OTHER.into(), String::new(), o, None));
        }
        out
    }
}

fn series(
    netns: String,
    interface: String,
    kind: String,
    t: &Totals,
    info: Option<InfoLabels>,
) -> Series {
    Series {
        netns,
        interface,
        kind,
        counters: t.counters,
        veth_hop: t.veth_hop,
        backlog_wait: t.backlog_wait,
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(netns: u32, label: &str, name: &str, softirq_ns: u64, tx: u64) -> Interface {
        let mut i = Interface::new(IfaceKey::new(netns, 2));
        i.name = name.into();
        i.netns_label = label.into();
        i.kind = Some("veth".into());
        i.counters.softirq_ns = softirq_ns;
        i.counters.tx_packets = tx;
        i.veth_hop.record(1000);
        i
    }

    fn value<'a>(s: &'a [Series], netns: &str) -> Option<&'a Series> {
        s.iter().find(|s| s.netns == netns)
    }

    #[test]
    fn a_recreated_pod_keeps_its_series_growing_when_the_old_one_is_forgotten() {
        let mut f = Folder::new(None);
        let mut old = iface(1, "shop/web-0", "eth0", 100, 10);
        old.gone = true;
        let new = iface(2, "shop/web-0", "eth0", 50, 5);
        let s = f.fold(&[old.clone(), new.clone()]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].counters.tx_packets, 15);
        assert_eq!(s[0].veth_hop.count, 2);
        // The old one is forgotten; the new one sends 3 more.
        let mut new2 = new.clone();
        new2.counters.tx_packets = 8;
        let s = f.fold(&[new2]);
        assert_eq!(
            s[0].counters.tx_packets, 18,
            "15 shown before, 3 more since"
        );
        assert_eq!(s[0].veth_hop.count, 2);
    }

    #[test]
    fn other_never_goes_down_when_a_series_moves_out_of_it_or_is_forgotten() {
        let mut f = Folder::new(Some(1));
        let a = iface(1, "a", "eth0", 1000, 100);
        let b = iface(2, "b", "eth0", 10, 7);
        let c = iface(3, "c", "eth0", 5, 3);
        let s = f.fold(&[a.clone(), b.clone(), c.clone()]);
        let names: Vec<&str> = s.iter().map(|s| s.netns.as_str()).collect();
        assert_eq!(names, ["a", OTHER]);
        assert_eq!(value(&s, OTHER).unwrap().counters.tx_packets, 10);
        // b becomes far busier than a: it takes a's place; a's later increments go to
        // _other, b's series shows all of b, and _other keeps what it showed of b.
        let (mut a2, mut b2) = (a.clone(), b.clone());
        a2.counters.softirq_ns += 10;
        a2.counters.tx_packets += 1;
        b2.counters.softirq_ns += 5000;
        b2.counters.tx_packets += 50;
        let s = f.fold(&[a2.clone(), b2.clone(), c.clone()]);
        let names: Vec<&str> = s.iter().map(|s| s.netns.as_str()).collect();
        assert_eq!(names, ["b", OTHER]);
        assert_eq!(value(&s, "b").unwrap().counters.tx_packets, 57);
        assert_eq!(
            value(&s, OTHER).unwrap().counters.tx_packets,
            60,
            "b's 7 and c's 3 before, b's 50 of this interval (b was folded during it)"
        );
        // c is forgotten, a sends 4 more: _other grows by a's 4 and keeps c's 3.
        let mut a3 = a2.clone();
        a3.counters.tx_packets += 4;
        let s = f.fold(&[a3, b2]);
        assert_eq!(value(&s, OTHER).unwrap().counters.tx_packets, 64);
    }

    #[test]
    fn every_series_only_grows_while_interfaces_come_go_and_trade_places() {
        // A churning node: 30 interfaces over 40 folds, each busy for a while, with
        // recreated pods reusing labels; every shown series must never go down.
        let mut f = Folder::new(Some(5));
        let mut seen: HashMap<String, IfaceCounters> = HashMap::new();
        let mut state: BTreeMap<u32, Interface> = BTreeMap::new();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..40u32 {
            for n in 0..30u32 {
                let r = next();
                let e = state
                    .entry(n)
                    .or_insert_with(|| iface(n + 1, &format!("p{}", n % 12), "eth0", 0, 0));
                if !e.gone {
                    e.counters.softirq_ns += r % (1000 * u64::from(1 + (n + round) % 7));
                    e.counters.tx_packets += r % 13;
                    if r % 29 == 0 {
                        e.gone = true;
                    }
                }
            }
            // Forget some gone ones; a later pod under the same label takes a new key.
            let forget: Vec<u32> = state
                .iter()
                .filter(|(_, i)| i.gone && next() % 3 == 0)
                .map(|(n, _)| *n)
                .collect();
            for n in forget {
                let old = state.remove(&n).unwrap();
                state.insert(
                    n + 100 * (round + 1),
                    iface(old.key.netns + 1000, &old.netns_label, "eth0", 0, 0),
                );
            }
            let ifaces: Vec<Interface> = state.values().cloned().collect();
            for s in f.fold(&ifaces) {
                let id = format!("{}/{}", s.netns, s.interface);
                if let Some(before) = seen.get(&id) {
                    assert!(
                        s.counters.tx_packets >= before.tx_packets
                            && s.counters.softirq_ns >= before.softirq_ns,
                        "{id} went down at fold {round}: {before:?} -> {:?}",
                        s.counters
                    );
                }
                seen.insert(id, s.counters);
            }
        }
        assert!(seen.contains_key("_other/_other"));
        assert!(seen.len() > 6, "places were traded: {}", seen.len());
    }
}
