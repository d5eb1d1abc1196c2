//! `sirqtop diff`: two fixed captures (tests/fixtures) against a golden table, the `--json`
//! diff checked numerically, `--match`, and one-line errors from the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sirqtop::model::Histogram;
use sirqtop::output::diff::{diff, parse_match, render_table, Diff, MatchedBy};
use sirqtop::output::json::{Capture, JsonHist};

const BEFORE: &str = "tests/fixtures/diff_before.json";
const AFTER: &str = "tests/fixtures/diff_after.json";
const GOLDEN: &str = "tests/fixtures/diff_table.txt";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(rel: &str) -> Capture {
    let text = std::fs::read_to_string(root().join(rel)).expect("fixture");
    Capture::from_json(&text).expect("fixture parses")
}

/// Runs the real binary from the crate root, so relative fixture paths print as given.
fn sirqtop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sirqtop"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run sirqtop")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

/// A failed run: non-zero exit, nothing on stdout, exactly one line on stderr.
fn one_line_error(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure, got {:?}", o.status);
    assert!(o.stdout.is_empty(), "stdout: {}", stdout(o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.ends_with('\n'));
    err.trim_end().to_string()
}

fn json_diff(args: &[&str]) -> Value {
    let o = sirqtop(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("--json output is JSON")
}

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

/// The fixture interface with this name.
fn iface<'a>(c: &'a Capture, name: &str) -> &'a sirqtop::output::json::JsonInterface {
    c.interfaces
        .iter()
        .find(|i| i.name == name)
        .expect("fixture interface")
}

fn merged(
    c: &Capture,
    pick: fn(&sirqtop::output::json::Latency) -> &Option<JsonHist>,
) -> Histogram {
    let mut h = Histogram::default();
    for i in &c.interfaces {
        if let Some(j) = pick(&i.latency) {
            h.merge(&j.to_hist());
        }
    }
    h
}

#[test]
fn fixtures_are_self_consistent() {
    for rel in [BEFORE, AFTER] {
        let c = load(rel);
        assert_eq!(c.interfaces.len(), 2, "{rel}");
        assert_eq!(c.cpus.len(), 2, "{rel}");
        for i in &c.interfaces {
            let rx = i.rx_packets.unwrap();
            let ns = i.softirq_ns.unwrap();
            assert!((i.softirq_ns_per_packet.unwrap() - ns as f64 / rx as f64).abs() < 1e-9);
            for j in [&i.latency.veth_hop, &i.latency.backlog_wait]
                .into_iter()
                .flatten()
            {
                let h = j.to_hist();
                assert_eq!(h.buckets.iter().sum::<u64>(), j.count, "{rel} {}", i.name);
                assert_eq!(h.quantile(0.50), j.p50, "{rel} {} p50", i.name);
                assert_eq!(h.quantile(0.90), j.p90, "{rel} {} p90", i.name);
                assert_eq!(h.quantile(0.99), j.p99, "{rel} {} p99", i.name);
            }
        }
    }
}

#[test]
fn table_matches_the_golden_file() {
    let mut d = diff(&load(BEFORE), &load(AFTER), &[], None).expect("diff");
    d.before.source = BEFORE.into();
    d.after.source = AFTER.into();
    let want = std::fs::read_to_string(root().join(GOLDEN)).expect("golden");
    let got = render_table(&d);
    assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}");
}

#[test]
fn binary_prints_the_golden_table() {
    let o = sirqtop(&["diff", BEFORE, AFTER]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());
    let want = std::fs::read_to_string(root().join(GOLDEN)).expect("golden");
    assert_eq!(stdout(&o), want);
}

#[test]
fn json_diff_values_are_the_fixture_numbers() {
    let (b, a) = (load(BEFORE), load(AFTER));
    let v = json_diff(&["diff", "--json", BEFORE, AFTER]);
    assert_eq!(v["diff_version"], 1);
    assert_eq!(v["before"]["source"], BEFORE);
    assert_eq!(v["after"]["duration_ns"], a.capture.duration_ns);

    let rows = v["interfaces"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only eth0 matches by default");
    let r = &rows[0];
    assert_eq!(r["matched_by"], "name");
    assert_eq!(r["before"]["netns"], "containerd:3f2a9c1b7d4e");
    assert_eq!(r["after"]["netns"], "containerd:9b8c7d6e5f4a");
    assert_eq!(r["after"]["name"], "eth0");

    let (pb, pa) = (iface(&b, "eth0"), iface(&a, "eth0"));
    let m = &r["metrics"];
    let (rxb, rxa) = (pb.rx_packets.unwrap() as f64, pa.rx_packets.unwrap() as f64);
    close(&m["rx_packets"]["before"], rxb);
    close(&m["rx_packets"]["after"], rxa);
    close(&m["rx_packets"]["delta"], rxa - rxb);
    close(&m["rx_packets"]["pct"], 100.0 * (rxa - rxb) / rxb);
    close(&m["tx_packets"]["before"], pb.tx_packets.unwrap() as f64);
    let rpp = |i: &sirqtop::output::json::JsonInterface| {
        i.net_rx_raises.unwrap() as f64 / i.rx_packets.unwrap() as f64
    };
    close(&m["raises_per_packet"]["before"], rpp(pb));
    close(&m["raises_per_packet"]["after"], rpp(pa));
    close(
        &m["raises_per_packet"]["pct"],
        100.0 * (rpp(pa) - rpp(pb)) / rpp(pb),
    );
    close(
        &m["softirq_ns_per_packet"]["before"],
        pb.softirq_ns_per_packet.unwrap(),
    );
    close(
        &m["softirq_ns_per_packet"]["after"],
        pa.softirq_ns_per_packet.unwrap(),
    );
    let hop =
        |i: &sirqtop::output::json::JsonInterface| i.latency.veth_hop.as_ref().unwrap().clone();
    close(&m["veth_hop_p50_ns"]["before"], hop(pb).p50.unwrap() as f64);
    close(&m["veth_hop_p99_ns"]["after"], hop(pa).p99.unwrap() as f64);
    let wait =
        |i: &sirqtop::output::json::JsonInterface| i.latency.backlog_wait.as_ref().unwrap().clone();
    close(
        &m["backlog_wait_p99_ns"]["delta"],
        wait(pa).p99.unwrap() as f64 - wait(pb).p99.unwrap() as f64,
    );

    // Totals: sums over every interface, ratios over the sums, percentiles of the
    // merged histograms.
    let t = &v["total"];
    let sum = |c: &Capture, f: fn(&sirqtop::output::json::JsonInterface) -> Option<u64>| {
        c.interfaces.iter().map(|i| f(i).unwrap()).sum::<u64>() as f64
    };
    close(&t["tx_packets"]["before"], sum(&b, |i| i.tx_packets));
    close(&t["rx_packets"]["after"], sum(&a, |i| i.rx_packets));
    close(
        &t["net_rx_raises"]["delta"],
        sum(&a, |i| i.net_rx_raises) - sum(&b, |i| i.net_rx_raises),
    );
    close(&t["softirq_ns"]["before"], sum(&b, |i| i.softirq_ns));
    close(
        &t["raises_per_packet"]["after"],
        sum(&a, |i| i.net_rx_raises) / sum(&a, |i| i.rx_packets),
    );
    close(
        &t["softirq_ns_per_packet"]["before"],
        sum(&b, |i| i.softirq_ns) / sum(&b, |i| i.rx_packets),
    );
    let hop_b = merged(&b, |l| &l.veth_hop);
    let wait_a = merged(&a, |l| &l.backlog_wait);
    close(
        &t["veth_hop_p50_ns"]["before"],
        hop_b.quantile(0.5).unwrap() as f64,
    );
    close(
        &t["veth_hop_p99_ns"]["before"],
        hop_b.quantile(0.99).unwrap() as f64,
    );
    close(
        &t["backlog_wait_p50_ns"]["after"],
        wait_a.quantile(0.5).unwrap() as f64,
    );

    assert_eq!(v["only_before"][0]["name"], "veth1a2b3c");
    assert_eq!(v["only_after"][0]["name"], "vethd4e5f6");
    assert_eq!(v["only_after"][0]["netns"], "host");
    assert_eq!(
        v["notes"][0],
        "after: 12 in-flight timestamps evicted (counts or latencies may be low)"
    );

    // The document reads back into the library type.
    let d: Diff = serde_json::from_value(v).expect("Diff from --json");
    assert_eq!(d.interfaces[0].matched_by, MatchedBy::Name);
}

#[test]
fn match_maps_renamed_interfaces() {
    for m in [
        "veth1a2b3c=vethd4e5f6",
        "host/veth1a2b3c=host/vethd4e5f6",
        "host/veth1a2b3c=vethd4e5f6",
    ] {
        let v = json_diff(&["diff", "--json", "--match", m, BEFORE, AFTER]);
        let rows = v["interfaces"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{m}");
        let r = rows
            .iter()
            .find(|r| r["matched_by"] == "match")
            .expect("the --match row");
        assert_eq!(
            (&r["before"]["name"], &r["after"]["name"]),
            (&"veth1a2b3c".into(), &"vethd4e5f6".into())
        );
        close(&r["metrics"]["tx_packets"]["before"], 47985.0);
        close(&r["metrics"]["tx_packets"]["after"], 46880.0);
        assert!(v["only_before"].as_array().unwrap().is_empty(), "{m}");
        assert!(v["only_after"].as_array().unwrap().is_empty(), "{m}");
    }
    // A cross mapping wins over the name rule and leaves the rest unmatched.
    let v = json_diff(&[
        "diff",
        "--json",
        "--match",
        "eth0=vethd4e5f6",
        BEFORE,
        AFTER,
    ]);
    assert_eq!(v["interfaces"].as_array().unwrap().len(), 1);
    assert_eq!(v["interfaces"][0]["after"]["name"], "vethd4e5f6");
    assert_eq!(v["only_before"][0]["name"], "veth1a2b3c");
    assert_eq!(v["only_after"][0]["name"], "eth0");

    let o = sirqtop(&["diff", "--match", "veth1a2b3c=vethd4e5f6", BEFORE, AFTER]);
    let text = stdout(&o);
    assert!(
        text.contains("host/veth1a2b3c (veth)  ->  host/vethd4e5f6 (veth)  [--match]\n"),
        "{text}"
    );
    assert!(!text.contains("only in"), "{text}");
}

#[test]
fn same_netns_and_name_match_without_a_tag() {
    let b = load(BEFORE);
    let mut a = load(AFTER);
    for i in &mut a.interfaces {
        if i.name == "eth0" {
            i.netns_label = Some("containerd:3f2a9c1b7d4e".into());
        }
    }
    let d = diff(&b, &a, &[], None).unwrap();
    assert_eq!(d.interfaces[0].matched_by, MatchedBy::NetnsAndName);
    assert!(render_table(&d).contains("\ncontainerd:3f2a9c1b7d4e/eth0 (veth)\n"));
}

#[test]
fn an_ambiguous_name_is_not_guessed() {
    let b = load(BEFORE);
    let mut a = load(AFTER);
    // A second pod with its own eth0: which one is "the" eth0 is not for diff to guess.
    let mut other = a
        .interfaces
        .iter()
        .find(|i| i.name == "eth0")
        .unwrap()
        .clone();
    other.netns_label = Some("containerd:0011223344aa".into());
    other.netns_inode += 1;
    a.interfaces.push(other);
    let d = diff(&b, &a, &[], None).unwrap();
    assert!(d.interfaces.is_empty());
    assert_eq!(d.only_after.len(), 3);
    // NETNS/NAME picks one; NAME alone is refused as ambiguous.
    let m = parse_match("eth0=containerd:0011223344aa/eth0").unwrap();
    let d = diff(&b, &a, &[m], None).unwrap();
    assert_eq!(d.interfaces[0].after.netns, "containerd:0011223344aa");
    let e = diff(&b, &a, &[parse_match("eth0=eth0").unwrap()], None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--match \"eth0=eth0\": 2 interfaces named eth0 in the after capture; use NETNS/NAME"
    );
}

#[test]
fn missing_hooks_print_dashes_and_have_no_change() {
    let b = load(BEFORE);
    let mut a = load(AFTER);
    // As captured on a kernel where veth_xmit could not be attached.
    a.kernel.backends.remove("veth_xmit");
    for i in &mut a.interfaces {
        i.tx_packets = None;
        i.tx_bytes = None;
        i.latency.veth_hop = None;
    }
    let d = diff(
        &b,
        &a,
        &[parse_match("veth1a2b3c=vethd4e5f6").unwrap()],
        None,
    )
    .unwrap();
    for m in d.interfaces.iter().map(|r| &r.metrics).chain([&d.total]) {
        assert!(m.tx_packets.before.is_some());
        assert_eq!(
            (m.tx_packets.after, m.tx_packets.delta, m.tx_packets.pct),
            (None, None, None)
        );
        assert_eq!(
            (m.veth_hop_p99_ns.after, m.veth_hop_p99_ns.delta),
            (None, None)
        );
        assert!(m.rx_packets.delta.is_some(), "other metrics still compare");
    }
    let text = render_table(&d);
    let tx = text
        .lines()
        .find(|l| l.trim_start().starts_with("tx packets"))
        .unwrap();
    assert_eq!(
        tx.split_whitespace().filter(|w| *w == "—").count(),
        3,
        "{tx}"
    );
    assert!(
        text.contains("note: veth_xmit: not attached after, its metrics there are —\n"),
        "{text}"
    );
    let v = serde_json::to_value(&d).unwrap();
    assert!(v["total"]["tx_packets"]["after"].is_null());
    assert!(v["total"]["tx_packets"]["delta"].is_null());
    assert!(v["total"]["tx_packets"]["pct"].is_null());
}

#[test]
fn other_schema_versions_are_one_line_errors() {
    let v2 = "tests/fixtures/diff_v2.json";
    let e = one_line_error(&sirqtop(&["diff", BEFORE, v2]));
    assert_eq!(
        e,
        format!("sirqtop: {v2}: unsupported schema_version 2 (this sirqtop reads 1)")
    );
    let e = one_line_error(&sirqtop(&["diff", v2, AFTER]));
    assert!(
        e.starts_with(&format!("sirqtop: {v2}: unsupported schema_version 2")),
        "{e}"
    );
}

#[test]
fn unreadable_or_foreign_files_are_one_line_errors() {
    let e = one_line_error(&sirqtop(&["diff", "/nonexistent/before.json", AFTER]));
    assert_eq!(
        e,
        "sirqtop: cannot read /nonexistent/before.json: No such file or directory (os error 2)"
    );
    let e = one_line_error(&sirqtop(&["diff", BEFORE, "tests/fixtures"]));
    assert!(
        e.starts_with("sirqtop: cannot read tests/fixtures: "),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_json: PathBuf = dir.path().join("notes.txt");
    std::fs::write(&not_json, "VM: 1.68 ms\ncontainer: 2.11 ms\n").unwrap();
    let p = not_json.to_str().unwrap();
    let e = one_line_error(&sirqtop(&["diff", BEFORE, p]));
    assert!(
        e.starts_with(&format!("sirqtop: {p}: not a sirqtop JSON capture: ")),
        "{e}"
    );
    let other_json = dir.path().join("other.json");
    std::fs::write(&other_json, "{\"hello\": 1}").unwrap();
    let p = other_json.to_str().unwrap();
    let e = one_line_error(&sirqtop(&["diff", p, AFTER]));
    assert_eq!(
        e,
        format!("sirqtop: {p}: not a sirqtop JSON capture: no schema_version")
    );
}

#[test]
fn bad_match_arguments_are_one_line_errors() {
    for bad in ["veth1a2b3c", "a=b=c", "=vethd4e5f6", "host/=x"] {
        let e = one_line_error(&sirqtop(&["diff", "--match", bad, BEFORE, AFTER]));
        assert!(
            e.starts_with(&format!("sirqtop: invalid --match {bad:?}: ")),
            "{e}"
        );
    }
    // Checked before the files are read.
    let e = one_line_error(&sirqtop(&[
        "diff",
        "--match",
        "x",
        "/nonexistent/a",
        "/nonexistent/b",
    ]));
    assert!(e.starts_with("sirqtop: invalid --match"), "{e}");
    let e = one_line_error(&sirqtop(&[
        "diff",
        "--match",
        "nosuch0=eth0",
        BEFORE,
        AFTER,
    ]));
    assert_eq!(
        e,
        "sirqtop: --match \"nosuch0=eth0\": no interface nosuch0 in the before capture"
    );
    let e = one_line_error(&sirqtop(&[
        "diff",
        "--match",
        "eth0=pod-x/eth0",
        BEFORE,
        AFTER,
    ]));
    assert_eq!(
        e,
        "sirqtop: --match \"eth0=pod-x/eth0\": no interface pod-x/eth0 in the after capture"
    );
}

#[test]
fn values_at_the_limit_saturate_instead_of_overflowing() {
    // A hand-edited (or corrupt) capture: counters and bucket counts near u64::MAX, on
    // every interface, so that totals and merged histograms would overflow.
    let b = load(BEFORE);
    let mut a = load(AFTER);
    for i in &mut a.interfaces {
        i.tx_packets = Some(u64::MAX - 1);
        i.rx_packets = Some(u64::MAX);
        i.net_rx_raises = Some(u64::MAX);
        i.softirq_ns = Some(u64::MAX);
        for h in [&mut i.latency.veth_hop, &mut i.latency.backlog_wait]
            .into_iter()
            .flatten()
        {
            h.count = u64::MAX;
            h.sum = u64::MAX;
            for bucket in &mut h.buckets {
                bucket.count = u64::MAX;
            }
        }
    }
    let d = diff(&b, &a, &[], None).expect("diff");
    assert_eq!(d.total.rx_packets.after, Some(u64::MAX as f64));
    let text = render_table(&d);
    assert!(text.contains("rx packets"), "{text}");
}

/// A capture with one interface whose counters are given.
fn one_iface(base: &Capture, tx: u64, rx: u64, enq: u64, raises: u64, ns: u64) -> Capture {
    let mut c = base.clone();
    c.interfaces.truncate(1);
    let i = &mut c.interfaces[0];
    i.tx_packets = Some(tx);
    i.rx_packets = Some(rx);
    i.rx_enqueued = Some(enq);
    i.net_rx_raises = Some(raises);
    i.softirq_ns = Some(ns);
    c
}

#[test]
fn a_near_zero_baseline_is_new_not_a_huge_percentage() {
    let base = load(BEFORE);
    let b = one_iface(&base, 1, 1, 1, 1, 100);
    let a = one_iface(&base, 188_086, 188_086, 376_172, 94_043, 400_000_000);
    let d = diff(&b, &a, &[], None).unwrap();
    let t = &d.total;
    assert!(
        t.tx_packets.new && t.tx_packets.pct.is_none(),
        "{:?}",
        t.tx_packets
    );
    assert_eq!(t.tx_packets.delta, Some(188_085.0));
    // Per-packet ratios have a real baseline: a percentage.
    assert!(!t.enqueues_per_packet.new);
    assert_eq!(t.enqueues_per_packet.before, Some(1.0));
    assert_eq!(t.enqueues_per_packet.after, Some(2.0));
    assert_eq!(t.enqueues_per_packet.pct, Some(100.0));
    let table = render_table(&d);
    assert!(!table.contains("18,808,500"), "{table}");
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("tx packets"))
        .unwrap();
    assert!(line.trim_end().ends_with("new"), "{line}");
    assert!(table.contains("enqueues/packet"));
    // Nothing before and nothing after: no change, not "new".
    let z = one_iface(&base, 0, 0, 0, 0, 0);
    let d = diff(&z, &z, &[], None).unwrap();
    assert!(!d.total.tx_packets.new && d.total.tx_packets.pct.is_none());
}

#[test]
fn totals_per_request() {
    let base = load(BEFORE);
    let b = one_iface(&base, 4000, 4000, 4000, 2000, 8_000_000);
    let a = one_iface(&base, 3000, 3000, 6000, 2400, 9_000_000);
    let d = diff(&b, &a, &[], Some((1000.0, 500.0))).unwrap();
    let p = d.per_request.expect("per request");
    assert_eq!(p.rx_packets.before, Some(4.0));
    assert_eq!(p.rx_packets.after, Some(6.0));
    assert_eq!(p.backlog_enqueues.after, Some(12.0));
    assert_eq!(p.net_rx_raises.before, Some(2.0));
    assert_eq!(p.softirq_ns.after, Some(18_000.0));
    assert_eq!(p.softirq_ns.pct, Some(125.0));
    assert!(render_table(&d).contains("per request (1,000 before, 500 after)"));
    // From the command line, and its bad forms.
    let o = sirqtop(&["diff", "--per", "before=1000,after=500", BEFORE, AFTER]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("per request (1,000 before, 500 after)"));
    for bad in [
        "before=0,after=5",
        "before=1",
        "x=1,after=2",
        "before=a,after=2",
    ] {
        let o = sirqtop(&["diff", "--per", bad, BEFORE, AFTER]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(err.contains("invalid --per"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
}

#[test]
fn paths_are_compared_by_their_ends_and_hops() {
    use sirqtop::output::json::{JsonPath, JsonPathEnd};
    let end = |label: &str, name: &str| JsonPathEnd {
        netns_inode: 1,
        ifindex: 2,
        netns_cookie: 3,
        name: Some(name.into()),
        netns_label: Some(label.into()),
    };
    let path = |hops: u32, packets: u64, enq: f64, ns: f64| JsonPath {
        from: end("client", "eth0"),
        to: end("web", "eth0"),
        hops,
        via: vec![],
        packets,
        origin_in_softirq: 0,
        backlog_enqueues_per_packet: enq,
        net_rx_raises_per_packet: Some(enq / 2.0),
        softirq_ns_per_packet: Some(ns),
        hop_costs: vec![],
        latency: sirqtop::output::json::JsonHist::from_hist(&sirqtop::model::Histogram::default()),
    };
    let mut b = load(BEFORE);
    let mut a = load(AFTER);
    b.paths = vec![path(1, 1000, 1.0, 2000.0)];
    a.paths = vec![path(2, 900, 2.0, 5000.0), path(1, 5, 1.0, 2000.0)];
    let d = diff(&b, &a, &[], None).unwrap();
    assert_eq!(d.paths.len(), 1, "only the 1-hop path is on both sides");
    let r = &d.paths[0];
    assert_eq!(
        (r.from.as_str(), r.to.as_str(), r.hops),
        ("client/eth0", "web/eth0", 1)
    );
    assert_eq!(r.packets.after, Some(5.0));
    // The same path, moved from 1 to 2 hops, is a different path: a --match does not
    // change hops. Give both the 2-hop version to compare them.
    b.paths = vec![path(2, 1000, 2.0, 3000.0)];
    let d = diff(&b, &a, &[], None).unwrap();
    let r = &d.paths[0];
    assert_eq!(r.hops, 2);
    assert_eq!(r.softirq_ns_per_packet.pct, Some(100.0 * 2000.0 / 3000.0));
    assert!(render_table(&d).contains("path client/eth0 -> web/eth0  (2 hops)"));
}
