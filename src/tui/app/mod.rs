//! Dashboard state: what was measured (rows, history, CPU deltas) and how the operator looks
//! at it (view, sort, filters, selection). No terminal here: views read this, keys change it.

mod data;
mod rows;

use std::cmp::Ordering;
use std::time::Duration;

use crate::model::{CaptureMeta, IfaceKey, Snapshot};

/// Samples of history kept per interface (at 1 s refresh: five minutes).
pub const HISTORY_LEN: usize = 300;
/// How long a row stays (greyed) after its interface is gone or no longer reported.
pub const GONE_KEEP_NS: u64 = 30_000_000_000;
/// Refresh intervals `+`/`-` step through.
pub const INTERVAL_STEPS_MS: [u64; 7] = [250, 500, 1000, 2000, 3000, 5000, 10_000];

/// Order in which `v` cycles the CPU table's vector filter (then back to all).
const VECTOR_CYCLE: [usize; 10] = [3, 2, 0, 1, 4, 5, 6, 7, 8, 9];

pub use data::{Data, PathView};
use rows::cmp_opt;
pub use rows::{IfaceRow, Rates, Sample, SortColumn};

/// What the body of the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Interfaces,
    /// One interface in depth (histograms, sparklines, peer).
    Detail(IfaceKey),
    Cpus,
    /// Paths by cost, with the hop chain of the selected one (`P`).
    Paths,
    /// Findings with their numbers and remedies (`F`).
    Findings,
    /// Who paid for softirqs: time by the task it ran on (`W`).
    Payers,
    /// Slow softirq runs and delays, newest first (`L`).
    Slow,
}

/// What the event loop must do after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Tell the collector to snapshot at this interval.
    SetInterval(Duration),
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    ToggleHelp,
    TogglePause,
    /// `+`: refresh less often.
    LongerInterval,
    /// `-`: refresh more often.
    ShorterInterval,
    NextSort,
    ReverseSort,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterConfirm,
    FilterCancel,
    ClearFilters,
    NextNetns,
    ToggleCpus,
    /// Open a list view, or go back from it to the interfaces.
    ToggleView(View),
    OpenDetail,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    NextVector,
    ToggleHistScope,
    TogglePaths,
}

/// The dashboard: measured data plus how it is being looked at.
#[derive(Debug, Clone)]
pub struct App {
    pub meta: CaptureMeta,
    pub interval: Duration,
    pub view: View,
    pub help: bool,
    pub sort: SortColumn,
    /// Reverse the column's natural order (text ascending, numbers descending).
    pub sort_reversed: bool,
    pub filter: String,
    pub filter_editing: bool,
    /// View-only namespace filter (`n`).
    pub netns_view: Option<u32>,
    /// Selected interface (follows the row through re-sorting).
    pub selected: Option<IfaceKey>,
    /// First row shown in the CPU table.
    pub cpu_scroll: usize,
    /// CPU table restricted to one vector (`v`), None = all.
    pub vector_filter: Option<usize>,
    /// Detail histograms since attach instead of the last interval (`t`).
    pub hist_since_start: bool,
    /// Rows per page for PageUp/PageDown (set by the loop from the terminal height).
    pub page: usize,
    /// Selected row of the paths view.
    pub path_selected: usize,
    /// First line shown in the list views (findings, slow softirqs, payers).
    pub list_scroll: usize,
    live: Data,
    frozen: Option<Box<Data>>,
    prev: Option<Snapshot>,
}

impl App {
    pub fn new(meta: CaptureMeta, interval: Duration) -> Self {
        App {
            meta,
            interval,
            view: View::Interfaces,
            help: false,
            sort: SortColumn::SoftirqPct,
            sort_reversed: false,
            filter: String::new(),
            filter_editing: false,
            netns_view: None,
            selected: None,
            cpu_scroll: 0,
            vector_filter: None,
            hist_since_start: false,
            page: 20,
            path_selected: 0,
            list_scroll: 0,
            live: Data::default(),
            frozen: None,
            prev: None,
        }
    }

    /// Takes a new cumulative snapshot; rates are over the time since the previous one.
    /// While paused, data keeps being collected but the display stays frozen.
    pub fn update(&mut self, cur: Snapshot) {
        let delta = match &self.prev {
            Some(p) => {
                if cur.elapsed_ns <= p.elapsed_ns {
                    // Same or older moment: nothing to rate over.
                    return;
                }
                cur.delta(p)
            }
            None => cur.clone(),
        };
        if delta.elapsed_ns == 0 {
            return;
        }
        self.live
            .apply(&cur, &delta, self.meta.bpf_stats, &self.meta.availability);
        self.prev = Some(cur);
    }

    /// The data being displayed (frozen while paused).
    pub fn data(&self) -> &Data {
        self.frozen.as_deref().unwrap_or(&self.live)
    }

    /// The data being collected, paused or not.
    pub fn live(&self) -> &Data {
        &self.live
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn has_data(&self) -> bool {
        self.data().updates > 0
    }

    /// Label of a namespace as the rows know it.
    pub fn netns_label(&self, netns: u32) -> String {
        let d = self.data();
        if let Some(r) = d.rows.values().find(|r| r.iface.key.netns == netns) {
            return r.iface.netns_label.clone();
        }
        for r in d.rows.values() {
            if let Some(p) = &r.iface.peer {
                if p.netns == netns {
                    if let Some(l) = &p.netns_label {
                        return l.clone();
                    }
                }
            }
        }
        format!("netns:{netns}")
    }

    /// Namespaces present in the displayed data, ordered by label.
    pub fn netns_choices(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = Vec::new();
        for r in self.data().rows.values() {
            if !v.iter().any(|(n, _)| *n == r.iface.key.netns) {
                v.push((r.iface.key.netns, r.iface.netns_label.clone()));
            }
        }
        v.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Rows that pass the filters, in display order (gone rows last).
    pub fn visible_rows(&self) -> Vec<&IfaceRow> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&IfaceRow> = self
            .data()
            .rows
            .values()
            .filter(|r| self.netns_view.is_none_or(|n| r.iface.key.netns == n))
            .filter(|r| r.matches(&needle))
            .collect();
        let col = self.sort;
        let reversed = self.sort_reversed;
        rows.sort_by(|a, b| {
            let by_gone = a.is_gone().cmp(&b.is_gone());
            if by_gone != Ordering::Equal {
                return by_gone;
            }
            let ord = if col.is_text() {
                a.text_key(col).cmp(&b.text_key(col))
            } else {
                // Natural order for numbers: biggest first; absent values last.
                cmp_opt(b.num_key(col), a.num_key(col))
            };
            let ord = if reversed { ord.reverse() } else { ord };
            ord.then(a.iface.key.cmp(&b.iface.key))
        });
        rows
    }

    /// Position of the selection among `rows` (the first row when the selection is not there).
    pub fn selected_index(&self, rows: &[&IfaceRow]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        Some(
            self.selected
                .and_then(|k| rows.iter().position(|r| r.key() == k))
                .unwrap_or(0),
        )
    }

    /// The row the detail view is about, if it is still known.
    pub fn detail_row(&self) -> Option<&IfaceRow> {
        match self.view {
            View::Detail(k) => self.data().rows.get(&k),
            _ => None,
        }
    }

    /// Active CPU × vector pairs of the last interval (after the vector filter).
    pub fn cpu_rows(&self) -> Vec<(u32, usize, crate::model::VectorStats)> {
        let mut out = Vec::new();
        for c in &self.data().cpus {
            for (v, s) in c.vectors.iter().enumerate() {
                if self.vector_filter.is_some_and(|f| f != v) {
                    continue;
                }
                if s.raises > 0 || s.runs > 0 {
                    out.push((c.cpu, v, *s));
                }
            }
        }
        out
    }

    /// Applies one action; tells the loop whether to quit or re-time the collector.
    pub fn apply(&mut self, action: Action) -> Effect {
        match action {
            Action::None => {}
            Action::Quit => return Effect::Quit,
            Action::ToggleHelp => self.help = !self.help,
            Action::TogglePause => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(Box::new(self.live.clone())),
                };
            }
            Action::LongerInterval | Action::ShorterInterval => {
                let cur = self.interval.as_millis() as u64;
                let next = if action == Action::LongerInterval {
                    INTERVAL_STEPS_MS
                        .iter()
                        .copied()
                        .find(|&s| s > cur)
                        .unwrap_or(cur)
                } else {
                    INTERVAL_STEPS_MS
                        .iter()
                        .rev()
                        .copied()
                        .find(|&s| s < cur)
                        .unwrap_or(cur)
                };
                if next != cur {
                    self.interval = Duration::from_millis(next);
                    return Effect::SetInterval(self.interval);
                }
            }
            Action::NextSort => {
                self.sort = self.sort.next();
                self.sort_reversed = false;
            }
            Action::ReverseSort => self.sort_reversed = !self.sort_reversed,
            Action::StartFilter => {
                self.filter_editing = true;
                if self.view != View::Interfaces {
                    self.view = View::Interfaces;
                }
            }
            Action::FilterChar(c) => self.filter.push(c),
            Action::FilterBackspace => {
                self.filter.pop();
            }
            Action::FilterConfirm => self.filter_editing = false,
            Action::FilterCancel => {
                self.filter.clear();
                self.filter_editing = false;
            }
            Action::ClearFilters => {
                self.filter.clear();
                self.netns_view = None;
            }
            Action::NextNetns => {
                let choices = self.netns_choices();
                self.netns_view = match self.netns_view {
                    None => choices.first().map(|c| c.0),
                    Some(cur) => {
                        let i = choices.iter().position(|c| c.0 == cur);
                        i.and_then(|i| choices.get(i + 1)).map(|c| c.0)
                    }
                };
            }
            Action::ToggleView(v) => {
                self.view = if self.view == v { View::Interfaces } else { v };
                self.list_scroll = 0;
            }
            Action::ToggleCpus => {
                self.view = if self.view == View::Cpus {
                    View::Interfaces
                } else {
                    View::Cpus
                };
            }
            Action::OpenDetail => {
                if self.view == View::Interfaces {
                    let rows = self.visible_rows();
                    if let Some(i) = self.selected_index(&rows) {
                        let k = rows[i].key();
                        self.selected = Some(k);
                        self.view = View::Detail(k);
                    }
                }
            }
            Action::Back => {
                if self.help {
                    self.help = false;
                } else {
                    self.view = View::Interfaces;
                }
            }
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page.max(1) as i64)),
            Action::PageDown => self.move_selection(self.page.max(1) as i64),
            Action::Home => self.move_selection(i64::MIN / 2),
            Action::End => self.move_selection(i64::MAX / 2),
            Action::NextVector => {
                // all -> NET_RX -> NET_TX -> the others in kernel order -> all
                let i = self
                    .vector_filter
                    .and_then(|v| VECTOR_CYCLE.iter().position(|&c| c == v));
                self.vector_filter = match i {
                    None => Some(VECTOR_CYCLE[0]),
                    Some(i) => VECTOR_CYCLE.get(i + 1).copied(),
                };
                self.cpu_scroll = 0;
            }
            Action::ToggleHistScope => self.hist_since_start = !self.hist_since_start,
            Action::TogglePaths => {
                self.view = if self.view == View::Paths {
                    View::Interfaces
                } else {
                    View::Paths
                };
            }
        }
        Effect::None
    }

    fn move_selection(&mut self, by: i64) {
        if self.view == View::Paths {
            let n = self.data().paths.len() as i64;
            let cur = self.path_selected as i64;
            self.path_selected = cur.saturating_add(by).clamp(0, (n - 1).max(0)) as usize;
            return;
        }
        if matches!(self.view, View::Findings | View::Payers | View::Slow) {
            let cur = self.list_scroll as i64;
            self.list_scroll = cur.saturating_add(by).max(0) as usize;
            return;
        }
        if self.view == View::Cpus {
            let n = self.cpu_rows().len() as i64;
            let cur = self.cpu_scroll as i64;
            self.cpu_scroll = (cur.saturating_add(by)).clamp(0, (n - 1).max(0)) as usize;
            return;
        }
        let rows = self.visible_rows();
        let Some(i) = self.selected_index(&rows) else {
            return;
        };
        let n = rows.len() as i64;
        let j = (i as i64).saturating_add(by).clamp(0, n - 1) as usize;
        let k = rows[j].key();
        self.selected = Some(k);
        if let View::Detail(_) = self.view {
            self.view = View::Detail(k);
        }
    }
}

/// A dashboard over every hook, no data yet (for the views' tests).
#[cfg(test)]
pub(crate) fn test_app() -> App {
    App::new(
        CaptureMeta {
            kernel_release: "test".into(),
            probes: crate::model::ProbeReport::default(),
            availability: crate::model::Availability::all(),
            started_at: std::time::SystemTime::UNIX_EPOCH,
            netns_filter: vec![],
            filter: None,
            ncpus: 2,
            bpf_stats: false,
        },
        Duration::from_secs(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Availability, Interface, Loss, ProbeReport};

    fn app() -> App {
        let meta = CaptureMeta {
            kernel_release: "test".into(),
            probes: ProbeReport::default(),
            availability: Availability::all(),
            started_at: std::time::SystemTime::UNIX_EPOCH,
            netns_filter: vec![],
            filter: None,
            ncpus: 1,
            bpf_stats: false,
        };
        App::new(meta, Duration::from_secs(1))
    }

    fn snap(secs: u64, tx: u64) -> Snapshot {
        let mut i = Interface::new(IfaceKey::new(1, 2));
        i.counters.tx_packets = tx;
        i.counters.rx_packets = tx / 2;
        i.counters.softirq_ns = tx * 1_000;
        Snapshot {
            elapsed_ns: secs * 1_000_000_000,
            interfaces: vec![i],
            cpus: vec![],
            loss: Loss::default(),
            programs: vec![],
            raise_sites: vec![],
            path_hops: vec![],
            payers: vec![],
            slow: Default::default(),
            timing: Default::default(),
        }
    }

    #[test]
    fn rates_are_over_the_snapshots_own_interval() {
        let mut a = app();
        a.update(snap(10, 10_000));
        // A skipped snapshot: the next one is 3 s later; rates still per second.
        a.update(snap(13, 40_000));
        let r = a
            .data()
            .rows
            .values()
            .next()
            .map(|r| r.rates)
            .unwrap_or_default();
        assert_eq!(r.tx_pps, 10_000.0);
        assert_eq!(r.rx_pps, 5_000.0);
        assert!((r.softirq_pct - 1.0).abs() < 1e-9, "{}", r.softirq_pct);
        assert_eq!(r.ns_per_pkt, Some(2_000.0));
        // An older or equal snapshot changes nothing.
        a.update(snap(13, 40_000));
        a.update(snap(12, 1));
        assert_eq!(a.data().updates, 2);
    }

    #[test]
    fn history_is_bounded() {
        let mut a = app();
        for t in 1..=(HISTORY_LEN as u64 + 50) {
            a.update(snap(t, t * 100));
        }
        let row = a.data().rows.values().next().map(|r| r.history.len());
        assert_eq!(row, Some(HISTORY_LEN));
    }

    #[test]
    fn selection_follows_the_row_through_resorting() {
        let mut a = app();
        let mut s = snap(1, 100);
        let mut other = Interface::new(IfaceKey::new(1, 3));
        other.counters.tx_packets = 50;
        s.interfaces.push(other);
        a.update(s);
        a.sort = SortColumn::TxPps;
        a.apply(Action::Down);
        assert_eq!(a.selected, Some(IfaceKey::new(1, 3)));
        a.apply(Action::ReverseSort);
        let rows = a.visible_rows();
        assert_eq!(
            a.selected_index(&rows),
            Some(0),
            "same interface, now first"
        );
    }
}
