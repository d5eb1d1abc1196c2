//! `sirqtop diff`: two JSON captures side by side, matched by interface.
//!
//! Pure: [`parse_match`], [`diff`] and [`render_table`] work on parsed captures; reading
//! the files and printing is the CLI's (`cli::diff`). A metric that is null in a capture (its hook was not
//! attached on that kernel) or cannot be computed (no packets received, empty histogram)
//! is `None` here, prints as "—" and has no change.

use serde::{Deserialize, Serialize};

use crate::model::Histogram;
use crate::output::json::{Capture, JsonHist, JsonInterface, JsonPath, JsonPathEnd};

/// Version of the `--json` diff document below; bumped only on incompatible changes.
pub const DIFF_VERSION: u32 = 1;

/// Every variant prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("invalid --match {arg}: {why} (use BEFORE=AFTER, each side NAME or NETNS/NAME)")]
    BadMatch { arg: String, why: &'static str },
    #[error("--match {arg}: {why}")]
    Unresolved { arg: String, why: String },
}

/// One interface as an operator names it: `netns/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceRef {
    /// The namespace label ("host", ip-netns name, "containerd:ID12", "comm[pid]", or
    /// "netns:INODE").
    pub netns: String,
    pub name: String,
    pub kind: Option<String>,
    pub netns_inode: u32,
    pub ifindex: u32,
}

impl IfaceRef {
    fn of(i: &JsonInterface) -> IfaceRef {
        IfaceRef {
            netns: label_of(i),
            name: i.name.clone(),
            kind: i.kind.clone(),
            netns_inode: i.netns_inode,
            ifindex: i.ifindex,
        }
    }

    fn shown(&self) -> String {
        match &self.kind {
            Some(k) => format!("{}/{} ({k})", self.netns, self.name),
            None => format!("{}/{}", self.netns, self.name),
        }
    }
}

/// Captures written before `netns_label` existed only have the ip-netns name, or nothing.
fn label_of(i: &JsonInterface) -> String {
    i.netns_label
        .clone()
        .or_else(|| i.netns_name.clone())
        .unwrap_or_else(|| format!("netns:{}", i.netns_inode))
}

/// One metric on both sides. `delta` = after − before and `pct` = 100 × delta / before,
/// null when either side is null, and also when the baseline is (near) zero: then `new`
/// is true if the after side has something (a percentage of nothing says nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub delta: Option<f64>,
    pub pct: Option<f64>,
    #[serde(default)]
    pub new: bool,
}

/// A baseline below this share of the after value counts as none: 1 packet before and
/// 188 085 after is "new", not "+18,808,500 %".
pub const NEGLIGIBLE_BASE: f64 = 0.001;

impl Change {
    pub fn new(before: Option<f64>, after: Option<f64>) -> Change {
        let delta = match (before, after) {
            (Some(b), Some(a)) => Some(a - b),
            _ => None,
        };
        let negligible = match (before, after) {
            (Some(b), Some(a)) => b == 0.0 || b.abs() < NEGLIGIBLE_BASE * a.abs(),
            _ => false,
        };
        let pct = match (before, delta) {
            (Some(b), Some(d)) if !negligible => Some(100.0 * d / b),
            _ => None,
        };
        Change {
            before,
            after,
            delta,
            pct,
            new: negligible && after.is_some_and(|a| a != 0.0),
        }
    }
}

/// The compared metrics. Ratios are per received packet (`rx_packets`); latencies are
/// nanoseconds, quantiles of the log2 histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub tx_packets: Change,
    pub rx_packets: Change,
    /// Backlog enqueues per received packet: the most direct hop signal (a packet that
    /// crosses two veths is enqueued twice).
    #[serde(default)]
    pub enqueues_per_packet: Change,
    pub net_rx_raises: Change,
    pub raises_per_packet: Change,
    pub softirq_ns: Change,
    pub softirq_ns_per_packet: Change,
    pub veth_hop_p50_ns: Change,
    pub veth_hop_p99_ns: Change,
    pub backlog_wait_p50_ns: Change,
    pub backlog_wait_p99_ns: Change,
}

/// How a pair of interfaces was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// A `--match BEFORE=AFTER` the user gave.
    Match,
    /// Same namespace label and interface name.
    NetnsAndName,
    /// Same interface name, the only one of that name left on each side.
    Name,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub before: IfaceRef,
    pub after: IfaceRef,
    pub matched_by: MatchedBy,
    pub metrics: Metrics,
}

/// Where one capture came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The file name (or any name the caller gives, e.g. "veth").
    pub source: String,
    pub kernel: String,
    pub started_at: String,
    pub duration_ns: u64,
    pub interface_count: usize,
}

impl Side {
    fn of(source: &str, c: &Capture) -> Side {
        Side {
            source: source.to_string(),
            kernel: c.kernel.release.clone(),
            started_at: c.capture.started_at.clone(),
            duration_ns: c.capture.duration_ns,
            interface_count: c.interfaces.len(),
        }
    }
}

/// A comparison of two captures; also the `--json` document (`sirqtop diff --json`):
///
/// ```text
/// {
///   "diff_version": 1,
///   "before": {"source": "a.json", "kernel": "6.18.44", "started_at": "...Z",
///              "duration_ns": 10000000000, "interface_count": 2},
///   "after":  {...same fields...},
///   "interfaces": [                       // matched pairs, sorted by before netns/name
///     {"before": {"netns": "pod-a", "name": "eth0", "kind": "veth",
///                 "netns_inode": 4026532301, "ifindex": 3},
///      "after":  {...same fields...},
///      "matched_by": "match" | "netns_and_name" | "name",
///      "metrics": {METRIC: {"before": f64|null, "after": f64|null,
///                           "delta": f64|null, "pct": f64|null}, ...}}
///   ],
///   "only_before": [{"netns": ..., "name": ..., ...}],   // unmatched, same fields
///   "only_after":  [...],
///   "total": {METRIC: {...}, ...},        // over every interface of each capture
///   "notes": ["..."]                      // kernel/backend differences, losses
/// }
/// ```
///
/// METRIC is one of `tx_packets`, `rx_packets`, `net_rx_raises`, `raises_per_packet`
/// (net_rx_raises / rx_packets), `softirq_ns`, `softirq_ns_per_packet` (softirq_ns /
/// rx_packets), `veth_hop_p50_ns`, `veth_hop_p99_ns`, `backlog_wait_p50_ns`,
/// `backlog_wait_p99_ns`. `delta` = after − before, `pct` = 100 × delta / before; a null
/// side (hook not attached, nothing received, empty histogram) makes delta and pct null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub diff_version: u32,
    pub before: Side,
    pub after: Side,
    pub interfaces: Vec<Row>,
    pub only_before: Vec<IfaceRef>,
    pub only_after: Vec<IfaceRef>,
    pub total: Metrics,
    /// The totals per request, when the user gave the request counts (`--per`): counts
    /// only, the per-packet rows are in `total`.
    #[serde(default)]
    pub per_request: Option<PerRequest>,
    /// Paths matched by (from, to, hops), most packets after first.
    #[serde(default)]
    pub paths: Vec<PathRow>,
    pub notes: Vec<String>,
}

/// Request counts of the two captures and the totals divided by them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerRequest {
    pub before_requests: f64,
    pub after_requests: f64,
    pub tx_packets: Change,
    pub rx_packets: Change,
    pub backlog_enqueues: Change,
    pub net_rx_raises: Change,
    pub softirq_ns: Change,
}

/// One path on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRow {
    /// `netns/name` of the first transmitter and of the receiver.
    pub from: String,
    pub to: String,
    pub hops: u32,
    pub packets: Change,
    pub backlog_enqueues_per_packet: Change,
    pub net_rx_raises_per_packet: Change,
    pub softirq_ns_per_packet: Change,
    pub latency_p50_ns: Change,
    pub latency_p99_ns: Change,
}

fn end_name(e: &JsonPathEnd) -> String {
    let ns = e
        .netns_label
        .clone()
        .unwrap_or_else(|| format!("netns:{}", e.netns_inode));
    let name = e.name.clone().unwrap_or_else(|| format!("if{}", e.ifindex));
    format!("{ns}/{name}")
}

/// Paths of the two captures, matched by (from, to, hops) names; `--match` maps
/// interface names on both ends.
fn path_rows(before: &Capture, after: &Capture, matches: &[(String, String)]) -> Vec<PathRow> {
    let renamed = |s: String| -> String {
        // A --match BEFORE=AFTER names the same interface differently: compare under the
        // after name.
        for (b, a) in matches {
            if s == *b || s.rsplit('/').next() == Some(b.as_str()) && !b.contains('/') {
                return if b.contains('/') {
                    a.clone()
                } else {
                    format!("{}/{a}", s.rsplit_once('/').map(|x| x.0).unwrap_or(""))
                };
            }
        }
        s
    };
    let key = |p: &JsonPath, map: bool| {
        let (f, t) = (end_name(&p.from), end_name(&p.to));
        if map {
            (renamed(f), renamed(t), p.hops)
        } else {
            (f, t, p.hops)
        }
    };
    let q = |p: &JsonPath, q: f64| p.latency.to_hist().quantile(q).map(|v| v as f64);
    let mut rows: Vec<PathRow> = after
        .paths
        .iter()
        .filter_map(|a| {
            let ka = key(a, false);
            let b = before.paths.iter().find(|b| key(b, true) == ka)?;
            Some(PathRow {
                from: end_name(&a.from),
                to: end_name(&a.to),
                hops: a.hops,
                packets: Change::new(Some(b.packets as f64), Some(a.packets as f64)),
                backlog_enqueues_per_packet: Change::new(
                    Some(b.backlog_enqueues_per_packet),
                    Some(a.backlog_enqueues_per_packet),
                ),
                net_rx_raises_per_packet: Change::new(
                    b.net_rx_raises_per_packet,
                    a.net_rx_raises_per_packet,
                ),
                softirq_ns_per_packet: Change::new(
                    b.softirq_ns_per_packet,
                    a.softirq_ns_per_packet,
                ),
                latency_p50_ns: Change::new(q(b, 0.5), q(a, 0.5)),
                latency_p99_ns: Change::new(q(b, 0.99), q(a, 0.99)),
            })
        })
        .collect();
    rows.sort_by(|x, y| {
        y.packets
            .after
            .unwrap_or(0.0)
            .total_cmp(&x.packets.after.unwrap_or(0.0))
            .then((&x.from, &x.to, x.hops).cmp(&(&y.from, &y.to, y.hops)))
    });
    rows
}

/// Parses `--per before=N,after=M` (request counts, > 0).
pub fn parse_per(arg: &str) -> Result<(f64, f64), String> {
    let bad = || format!("invalid --per '{arg}' (use before=N,after=M with N, M > 0)");
    let (mut b, mut a) = (None, None);
    for part in arg.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        let v: f64 = v.trim().parse().map_err(|_| bad())?;
        if !(v > 0.0 && v.is_finite()) {
            return Err(bad());
        }
        match k.trim() {
            "before" => b = Some(v),
            "after" => a = Some(v),
            _ => return Err(bad()),
        }
    }
    Ok((b.ok_or_else(bad)?, a.ok_or_else(bad)?))
}

/// One capture's (or one interface's) value of every compared metric, in the units of
/// [`Metrics`]; `None` where the metric is null or cannot be computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub tx_packets: Option<f64>,
    pub rx_packets: Option<f64>,
    pub rx_enqueued: Option<f64>,
    pub enqueues_per_packet: Option<f64>,
    pub net_rx_raises: Option<f64>,
    pub raises_per_packet: Option<f64>,
    pub softirq_ns: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
    pub veth_hop_p50_ns: Option<f64>,
    pub veth_hop_p99_ns: Option<f64>,
    pub backlog_wait_p50_ns: Option<f64>,
    pub backlog_wait_p99_ns: Option<f64>,
}

impl Point {
    /// The counts divided by `n` (requests); ratios and latencies are left out (they are
    /// per packet already).
    pub fn per(&self, n: f64) -> Point {
        let d = |v: Option<f64>| v.map(|v| v / n);
        Point {
            tx_packets: d(self.tx_packets),
            rx_packets: d(self.rx_packets),
            rx_enqueued: d(self.rx_enqueued),
            net_rx_raises: d(self.net_rx_raises),
            softirq_ns: d(self.softirq_ns),
            ..Point::default()
        }
    }

    /// One interface.
    pub fn of_interface(i: &JsonInterface) -> Point {
        Raw::of(i).point()
    }

    /// A whole capture: counts summed over every interface, ratios over those sums,
    /// percentiles of the merged histograms.
    pub fn of_capture(c: &Capture) -> Point {
        Raw::total(c).point()
    }
}

/// Counts and histograms, before ratios and quantiles are taken.
#[derive(Debug, Clone, Copy, Default)]
struct Raw {
    tx: Option<u64>,
    rx: Option<u64>,
    enq: Option<u64>,
    raises: Option<u64>,
    softirq_ns: Option<u64>,
    hop: Option<Histogram>,
    wait: Option<Histogram>,
}

impl Raw {
    fn of(i: &JsonInterface) -> Raw {
        Raw {
            tx: i.tx_packets,
            rx: i.rx_packets,
            enq: i.rx_enqueued,
            raises: i.net_rx_raises,
            softirq_ns: i.softirq_ns,
            hop: i.latency.veth_hop.as_ref().map(JsonHist::to_hist),
            wait: i.latency.backlog_wait.as_ref().map(JsonHist::to_hist),
        }
    }

    /// A metric stays null only if it is null on every interface (a hook is attached for
    /// the whole capture or not at all).
    fn total(c: &Capture) -> Raw {
        let mut t = Raw::default();
        for i in &c.interfaces {
            let v = Raw::of(i);
            add(&mut t.tx, v.tx);
            add(&mut t.rx, v.rx);
            add(&mut t.enq, v.enq);
            add(&mut t.raises, v.raises);
            add(&mut t.softirq_ns, v.softirq_ns);
            merge(&mut t.hop, v.hop);
            merge(&mut t.wait, v.wait);
        }
        t
    }

    fn point(&self) -> Point {
        let f = |v: Option<u64>| v.map(|v| v as f64);
        Point {
            tx_packets: f(self.tx),
            rx_packets: f(self.rx),
            rx_enqueued: f(self.enq),
            enqueues_per_packet: ratio(self.enq, self.rx),
            net_rx_raises: f(self.raises),
            raises_per_packet: ratio(self.raises, self.rx),
            softirq_ns: f(self.softirq_ns),
            softirq_ns_per_packet: ratio(self.softirq_ns, self.rx),
            veth_hop_p50_ns: quantile(&self.hop, 0.50),
            veth_hop_p99_ns: quantile(&self.hop, 0.99),
            backlog_wait_p50_ns: quantile(&self.wait, 0.50),
            backlog_wait_p99_ns: quantile(&self.wait, 0.99),
        }
    }
}

fn add(acc: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *acc = Some(acc.unwrap_or(0).saturating_add(v));
    }
}

fn merge(acc: &mut Option<Histogram>, v: Option<Histogram>) {
    if let Some(v) = v {
        acc.get_or_insert_with(Histogram::default).merge(&v);
    }
}

fn ratio(num: Option<u64>, den: Option<u64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    }
}

fn quantile(h: &Option<Histogram>, q: f64) -> Option<f64> {
    h.as_ref().and_then(|h| h.quantile(q)).map(|v| v as f64)
}

impl Metrics {
    /// Pairs two points metric by metric.
    pub fn new(b: &Point, a: &Point) -> Metrics {
        Metrics {
            tx_packets: Change::new(b.tx_packets, a.tx_packets),
            rx_packets: Change::new(b.rx_packets, a.rx_packets),
            enqueues_per_packet: Change::new(b.enqueues_per_packet, a.enqueues_per_packet),
            net_rx_raises: Change::new(b.net_rx_raises, a.net_rx_raises),
            raises_per_packet: Change::new(b.raises_per_packet, a.raises_per_packet),
            softirq_ns: Change::new(b.softirq_ns, a.softirq_ns),
            softirq_ns_per_packet: Change::new(b.softirq_ns_per_packet, a.softirq_ns_per_packet),
            veth_hop_p50_ns: Change::new(b.veth_hop_p50_ns, a.veth_hop_p50_ns),
            veth_hop_p99_ns: Change::new(b.veth_hop_p99_ns, a.veth_hop_p99_ns),
            backlog_wait_p50_ns: Change::new(b.backlog_wait_p50_ns, a.backlog_wait_p50_ns),
            backlog_wait_p99_ns: Change::new(b.backlog_wait_p99_ns, a.backlog_wait_p99_ns),
        }
    }
}

/// A `--match` side: `name`, or `netns/name` (interface names cannot contain '/', so the
/// last '/' separates them even when a label has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Selector<'a> {
    netns: Option<&'a str>,
    name: &'a str,
}

impl<'a> Selector<'a> {
    fn parse(s: &'a str) -> Result<Selector<'a>, &'static str> {
        let (netns, name) = match s.rsplit_once('/') {
            Some(("", _)) => return Err("empty netns label before '/'"),
            Some((ns, name)) => (Some(ns), name),
            None => (None, s),
        };
        if name.is_empty() {
            return Err("empty interface name");
        }
        if name.chars().any(|c| c.is_whitespace() || c == ':') {
            return Err("an interface name has no spaces or ':'");
        }
        Ok(Selector { netns, name })
    }

    fn matches(&self, i: &JsonInterface) -> bool {
        i.name == self.name && self.netns.is_none_or(|ns| ns == label_of(i))
    }
}

/// Checks one `--match BEFORE=AFTER` argument.
pub fn parse_match(arg: &str) -> Result<(String, String), DiffError> {
    // Debug quoting keeps the message on one line whatever the argument holds.
    let bad = |why| DiffError::BadMatch {
        arg: format!("{arg:?}"),
        why,
    };
    let (b, a) = arg.split_once('=').ok_or_else(|| bad("no '='"))?;
    if a.contains('=') {
        return Err(bad("more than one '='"));
    }
    if b.is_empty() || a.is_empty() {
        return Err(bad("empty side"));
    }
    Selector::parse(b).map_err(bad)?;
    Selector::parse(a).map_err(bad)?;
    Ok((b.to_string(), a.to_string()))
}

/// The one unused interface `sel` names in `cap`, or why there is none.
fn resolve(sel: &str, cap: &Capture, used: &[bool], side: &str) -> Result<usize, String> {
    let s = Selector::parse(sel).map_err(|e| e.to_string())?;
    let all: Vec<usize> = (0..cap.interfaces.len())
        .filter(|&k| s.matches(&cap.interfaces[k]))
        .collect();
    let free: Vec<usize> = all.iter().copied().filter(|&k| !used[k]).collect();
    match (free.as_slice(), all.len()) {
        ([k], _) => Ok(*k),
        ([], 0) => Err(format!("no interface {sel} in the {side} capture")),
        ([], _) => Err(format!("{sel} in the {side} capture is already matched")),
        (more, _) => Err(format!(
            "{} interfaces named {sel} in the {side} capture; use NETNS/NAME",
            more.len()
        )),
    }
}

/// Pairs interfaces: the user's `--match`es first, then same netns label and name, then
/// the same name when it is unique among the unmatched on both sides.
fn pair(
    before: &Capture,
    after: &Capture,
    matches: &[(String, String)],
) -> Result<Vec<(usize, usize, MatchedBy)>, DiffError> {
    let (bi, ai) = (&before.interfaces, &after.interfaces);
    let mut used_b = vec![false; bi.len()];
    let mut used_a = vec![false; ai.len()];
    let mut pairs = Vec::new();
    for (b, a) in matches {
        let err = |why| DiffError::Unresolved {
            arg: format!("{:?}", format!("{b}={a}")),
            why,
        };
        let kb = resolve(b, before, &used_b, "before").map_err(err)?;
        let ka = resolve(a, after, &used_a, "after").map_err(err)?;
        used_b[kb] = true;
        used_a[ka] = true;
        pairs.push((kb, ka, MatchedBy::Match));
    }
    for kb in 0..bi.len() {
        if used_b[kb] {
            continue;
        }
        let (label, name) = (label_of(&bi[kb]), &bi[kb].name);
        if let Some(ka) =
            (0..ai.len()).find(|&k| !used_a[k] && ai[k].name == *name && label_of(&ai[k]) == label)
        {
            used_b[kb] = true;
            used_a[ka] = true;
            pairs.push((kb, ka, MatchedBy::NetnsAndName));
        }
    }
    // Decided on the leftovers of the exact pass, so a name shared by a matched and an
    // unmatched interface still counts as unique.
    let free_named = |ifs: &[JsonInterface], used: &[bool], name: &str| -> Vec<usize> {
        (0..ifs.len())
            .filter(|&k| !used[k] && ifs[k].name == name)
            .collect()
    };
    for kb in 0..bi.len() {
        if used_b[kb] {
            continue;
        }
        let name = &bi[kb].name;
        let (fb, fa) = (free_named(bi, &used_b, name), free_named(ai, &used_a, name));
        if let ([_], [ka]) = (fb.as_slice(), fa.as_slice()) {
            let ka = *ka;
            used_b[kb] = true;
            used_a[ka] = true;
            pairs.push((kb, ka, MatchedBy::Name));
        }
    }
    Ok(pairs)
}

fn sort_refs(v: &mut [IfaceRef]) {
    v.sort_by(|x, y| (&x.netns, &x.name, x.ifindex).cmp(&(&y.netns, &y.name, y.ifindex)));
}

/// Compares two captures. `matches` are checked `--match` pairs (see [`parse_match`]);
/// sides are named "before" and "after" until the caller sets `Diff::before.source`.
pub fn diff(
    before: &Capture,
    after: &Capture,
    matches: &[(String, String)],
    per: Option<(f64, f64)>,
) -> Result<Diff, DiffError> {
    let pairs = pair(before, after, matches)?;
    let mut rows: Vec<Row> = pairs
        .iter()
        .map(|&(kb, ka, by)| {
            let (b, a) = (&before.interfaces[kb], &after.interfaces[ka]);
            Row {
                before: IfaceRef::of(b),
                after: IfaceRef::of(a),
                matched_by: by,
                metrics: Metrics::new(&Point::of_interface(b), &Point::of_interface(a)),
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        (&x.before.netns, &x.before.name, x.before.ifindex).cmp(&(
            &y.before.netns,
            &y.before.name,
            y.before.ifindex,
        ))
    });
    let unpaired = |c: &Capture, taken: &dyn Fn(usize) -> bool| -> Vec<IfaceRef> {
        let mut v: Vec<IfaceRef> = (0..c.interfaces.len())
            .filter(|&k| !taken(k))
            .map(|k| IfaceRef::of(&c.interfaces[k]))
            .collect();
        sort_refs(&mut v);
        v
    };
    let only_before = unpaired(before, &|k| pairs.iter().any(|p| p.0 == k));
    let only_after = unpaired(after, &|k| pairs.iter().any(|p| p.1 == k));
    Ok(Diff {
        diff_version: DIFF_VERSION,
        before: Side::of("before", before),
        after: Side::of("after", after),
        interfaces: rows,
        only_before,
        only_after,
        total: Metrics::new(&Point::of_capture(before), &Point::of_capture(after)),
        per_request: per.map(|(nb, na)| {
            let (b, a) = (
                Point::of_capture(before).per(nb),
                Point::of_capture(after).per(na),
            );
            PerRequest {
                before_requests: nb,
                after_requests: na,
                tx_packets: Change::new(b.tx_packets, a.tx_packets),
                rx_packets: Change::new(b.rx_packets, a.rx_packets),
                backlog_enqueues: Change::new(b.rx_enqueued, a.rx_enqueued),
                net_rx_raises: Change::new(b.net_rx_raises, a.net_rx_raises),
                softirq_ns: Change::new(b.softirq_ns, a.softirq_ns),
            }
        }),
        paths: path_rows(before, after, matches),
        notes: notes(before, after),
    })
}

/// What makes the two captures less comparable than they look.
fn notes(before: &Capture, after: &Capture) -> Vec<String> {
    let mut n = Vec::new();
    if before.kernel.release != after.kernel.release {
        n.push(format!(
            "kernels differ: {} before, {} after",
            before.kernel.release, after.kernel.release
        ));
    }
    let (bb, ab) = (&before.kernel.backends, &after.kernel.backends);
    let mut hooks: Vec<&String> = bb.keys().chain(ab.keys()).collect();
    hooks.sort();
    hooks.dedup();
    for h in hooks {
        match (bb.get(h), ab.get(h)) {
            (Some(x), Some(y)) if x != y => n.push(format!("{h}: {x} before, {y} after")),
            (Some(_), None) => n.push(format!("{h}: not attached after, its metrics there are —")),
            (None, Some(_)) => n.push(format!("{h}: not attached before, its metrics there are —")),
            _ => {}
        }
    }
    let (db, da) = (
        before.capture.duration_ns as f64,
        after.capture.duration_ns as f64,
    );
    if db > 0.0 && da > 0.0 && (db / da - 1.0).abs() > 0.05 {
        n.push(format!(
            "durations differ ({} before, {} after): compare the per-packet rows, not the counts",
            secs(before.capture.duration_ns),
            secs(after.capture.duration_ns)
        ));
    }
    for (side, c) in [("before", before), ("after", after)] {
        let l = &c.loss;
        let mut lost = Vec::new();
        if l.ringbuf_dropped > 0 {
            lost.push(format!("{} ring-buffer records dropped", l.ringbuf_dropped));
        }
        if l.inflight_evicted > 0 {
            lost.push(format!(
                "{} in-flight timestamps evicted",
                l.inflight_evicted
            ));
        }
        if l.iface_table_full > 0 {
            lost.push(format!(
                "{} events past a full interface table",
                l.iface_table_full
            ));
        }
        if !lost.is_empty() {
            n.push(format!(
                "{side}: {} (counts or latencies may be low)",
                lost.join(", ")
            ));
        }
    }
    n
}

fn secs(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

/// How a metric's numbers are printed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Integers with thousands separators (counts, nanoseconds).
    Int,
    /// Three decimals (raises per packet).
    Ratio,
}

/// Table row: label, number format, which metric.
type TableRow = (&'static str, Kind, fn(&Metrics) -> Change);

const ROWS: [TableRow; 11] = [
    ("tx packets", Kind::Int, |m| m.tx_packets),
    ("rx packets", Kind::Int, |m| m.rx_packets),
    ("enqueues/packet", Kind::Ratio, |m| m.enqueues_per_packet),
    ("NET_RX raises", Kind::Int, |m| m.net_rx_raises),
    ("NET_RX raises/packet", Kind::Ratio, |m| m.raises_per_packet),
    ("softirq ns", Kind::Int, |m| m.softirq_ns),
    ("softirq ns/packet", Kind::Int, |m| m.softirq_ns_per_packet),
    ("veth hop p50 (ns)", Kind::Int, |m| m.veth_hop_p50_ns),
    ("veth hop p99 (ns)", Kind::Int, |m| m.veth_hop_p99_ns),
    ("backlog wait p50 (ns)", Kind::Int, |m| {
        m.backlog_wait_p50_ns
    }),
    ("backlog wait p99 (ns)", Kind::Int, |m| {
        m.backlog_wait_p99_ns
    }),
];

const NULL: &str = "—";

fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (k, ch) in s.chars().enumerate() {
        if k > 0 && (s.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A non-negative magnitude.
fn magnitude(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Int => grouped(v.abs().round() as u64),
        Kind::Ratio => format!("{:.3}", v.abs()),
    }
}

fn value(kind: Kind, v: Option<f64>) -> String {
    v.map_or_else(|| NULL.to_string(), |v| magnitude(kind, v))
}

/// Signed, without a sign when it rounds to zero.
fn signed(mag: String, negative: bool) -> String {
    if mag.chars().all(|c| matches!(c, '0' | '.' | ',')) {
        mag
    } else if negative {
        format!("-{mag}")
    } else {
        format!("+{mag}")
    }
}

fn delta(kind: Kind, d: Option<f64>) -> String {
    d.map_or_else(|| NULL.to_string(), |d| signed(magnitude(kind, d), d < 0.0))
}

fn pct(c: &Change) -> String {
    if c.new {
        return "new".to_string();
    }
    c.pct.map_or_else(
        || NULL.to_string(),
        |p| format!("{}%", signed(format!("{:.1}", p.abs()), p < 0.0)),
    )
}

fn change_line(out: &mut String, label: &str, kind: Kind, c: &Change) {
    out.push_str(&format!(
        "  {:<22} {:>13} {:>13} {:>13} {:>9}\n",
        label,
        value(kind, c.before),
        value(kind, c.after),
        delta(kind, c.delta),
        pct(c)
    ));
}

fn block(out: &mut String, title: &str, m: &Metrics) {
    header(out, title);
    for (label, kind, pick) in ROWS {
        change_line(out, label, kind, &pick(m));
    }
}

fn header(out: &mut String, title: &str) {
    out.push_str(title);
    out.push('\n');
    out.push_str(&format!(
        "  {:<22} {:>13} {:>13} {:>13} {:>9}\n",
        "metric", "before", "after", "change", "%"
    ));
}

/// The diff as a text table: a header per capture, one block per matched interface, a
/// totals block over every interface of each capture, the unmatched, then notes.
pub fn render_table(d: &Diff) -> String {
    let mut out = String::new();
    for (tag, s) in [("before:", &d.before), ("after: ", &d.after)] {
        out.push_str(&format!(
            "{tag} {}  (kernel {}, {} from {}, {} interface{})\n",
            s.source,
            s.kernel,
            secs(s.duration_ns),
            s.started_at,
            s.interface_count,
            if s.interface_count == 1 { "" } else { "s" }
        ));
    }
    for r in &d.interfaces {
        let (b, a) = (r.before.shown(), r.after.shown());
        let mut title = if b == a { b } else { format!("{b}  ->  {a}") };
        match r.matched_by {
            MatchedBy::Match => title.push_str("  [--match]"),
            MatchedBy::Name => title.push_str("  [by name]"),
            MatchedBy::NetnsAndName => {}
        }
        out.push('\n');
        block(&mut out, &title, &r.metrics);
    }
    out.push('\n');
    block(
        &mut out,
        &format!(
            "total (all interfaces: {} before, {} after)",
            d.before.interface_count, d.after.interface_count
        ),
        &d.total,
    );
    if let Some(p) = &d.per_request {
        out.push('\n');
        header(
            &mut out,
            &format!(
                "per request ({} before, {} after)",
                grouped(p.before_requests.round() as u64),
                grouped(p.after_requests.round() as u64)
            ),
        );
        for (label, c) in [
            ("tx packets", &p.tx_packets),
            ("rx packets", &p.rx_packets),
            ("backlog enqueues", &p.backlog_enqueues),
            ("NET_RX raises", &p.net_rx_raises),
        ] {
            change_line(&mut out, label, Kind::Ratio, c);
        }
        change_line(&mut out, "softirq ns", Kind::Int, &p.softirq_ns);
    }
    for r in &d.paths {
        out.push('\n');
        header(
            &mut out,
            &format!("path {} -> {}  ({} hops)", r.from, r.to, r.hops),
        );
        change_line(&mut out, "packets", Kind::Int, &r.packets);
        change_line(
            &mut out,
            "enqueues/packet",
            Kind::Ratio,
            &r.backlog_enqueues_per_packet,
        );
        change_line(
            &mut out,
            "NET_RX raises/packet",
            Kind::Ratio,
            &r.net_rx_raises_per_packet,
        );
        change_line(
            &mut out,
            "softirq ns/packet",
            Kind::Int,
            &r.softirq_ns_per_packet,
        );
        change_line(&mut out, "latency p50 (ns)", Kind::Int, &r.latency_p50_ns);
        change_line(&mut out, "latency p99 (ns)", Kind::Int, &r.latency_p99_ns);
    }
    if !d.only_before.is_empty() || !d.only_after.is_empty() {
        out.push('\n');
    }
    for (tag, list) in [
        ("only in before:", &d.only_before),
        ("only in after: ", &d.only_after),
    ] {
        if !list.is_empty() {
            let names: Vec<String> = list.iter().map(IfaceRef::shown).collect();
            out.push_str(&format!("{tag} {}\n", names.join(", ")));
        }
    }
    if !d.notes.is_empty() {
        out.push('\n');
        for n in &d.notes {
            out.push_str(&format!("note: {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_skips_nulls_and_zero_bases() {
        let c = Change::new(Some(4.0), Some(5.0));
        assert_eq!((c.delta, c.pct), (Some(1.0), Some(25.0)));
        let c = Change::new(None, Some(5.0));
        assert_eq!((c.delta, c.pct), (None, None));
        let c = Change::new(Some(0.0), Some(5.0));
        assert_eq!((c.delta, c.pct), (Some(5.0), None));
    }

    #[test]
    fn numbers_format() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(delta(Kind::Int, Some(-1500.0)), "-1,500");
        assert_eq!(delta(Kind::Int, Some(0.2)), "0");
        assert_eq!(delta(Kind::Ratio, Some(0.07)), "+0.070");
        assert_eq!(delta(Kind::Ratio, None), "—");
        assert_eq!(pct(&Change::new(Some(10000.0), Some(9999.996))), "0.0%");
        assert_eq!(pct(&Change::new(Some(100.0), Some(114.04))), "+14.0%");
        assert_eq!(pct(&Change::new(Some(0.0), Some(5.0))), "new");
        assert_eq!(pct(&Change::new(None, Some(5.0))), "—");
    }

    #[test]
    fn match_syntax() {
        assert_eq!(parse_match("a=b").unwrap(), ("a".into(), "b".into()));
        assert!(parse_match("pod-a/eth0=host/veth1").is_ok());
        assert!(
            parse_match("k8s/ns/pod/eth0=eth0").is_ok(),
            "label with '/'"
        );
        for bad in [
            "ab",
            "a=b=c",
            "=b",
            "a=",
            "/eth0=b",
            "pod/=b",
            "a b=c",
            "docker:abc=eth0",
        ] {
            let e = parse_match(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid --match"), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
