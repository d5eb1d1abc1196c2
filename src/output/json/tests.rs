use super::*;
use crate::model::{
    Backend, CpuStats, Histogram, IfaceKey, Loss, PeerRef, ProbeReport, ProgramCost,
};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

fn meta(avail: Availability) -> CaptureMeta {
    let mut probes = ProbeReport::default();
    probes
        .attached
        .insert(Hook::VethXmit, (Backend::Tracepoint, "tp_btf".into()));
    probes
        .fallbacks
        .push("veth_xmit: kprobe: kernel has no kprobes".into());
    CaptureMeta {
        kernel_release: "6.18.44".into(),
        probes,
        availability: avail,
        started_at: UNIX_EPOCH + Duration::from_secs(1_764_028_800),
        netns_filter: vec![4026532001],
        filter: None,
        ncpus: 2,
        bpf_stats: false,
    }
}

fn snapshot() -> Snapshot {
    let mut a = Interface::new(IfaceKey::new(4026532001, 2));
    a.name = "vA".into();
    a.kind = Some("veth".into());
    a.netns_name = Some("pod-a".into());
    a.peer = Some(PeerRef {
        cookie: 0,
        netns: 4026532002,
        ifindex: 3,
        name: Some("vB".into()),
        netns_label: None,
    });
    a.counters.tx_packets = 1000;
    a.counters.tx_bytes = 92_000;
    for _ in 0..1000 {
        a.veth_hop.record(3000);
    }
    let mut b = Interface::new(IfaceKey::new(4026532002, 3));
    b.counters.rx_packets = 1000;
    b.counters.softirq_ns = 2_000_000;
    let idle = Interface::new(IfaceKey::new(1, 1));
    let mut cpu = CpuStats::new(0);
    cpu.vectors[3].raises = 10;
    cpu.vectors[3].runs = 9;
    cpu.vectors[3].run.record(5000);
    Snapshot {
        elapsed_ns: 5_000_000_000,
        interfaces: vec![b, a, idle],
        cpus: vec![cpu],
        loss: Loss {
            ringbuf_dropped: 0,
            inflight_evicted: 3,
            iface_table_full: 0,
            raises_unattributed: 1,
            ..Loss::default()
        },
        programs: vec![ProgramCost {
            name: "tp_veth_xmit".into(),
            hook: Hook::VethXmit,
            backend: Backend::Tracepoint,
            run_count: None,
            run_time_ns: None,
        }],
        raise_sites: vec![crate::model::RaiseSite {
            iface: Some(IfaceKey::new(4026532002, 3)),
            vector: 3,
            samples: 5,
            count: 990,
            frames: vec![
                "__raise_softirq_irqoff+0x6e".into(),
                "veth_xmit+0x1a4".into(),
            ],
        }],
        path_hops: vec![],
        payers: vec![],
        slow: Default::default(),
        timing: Default::default(),
    }
}

#[test]
fn document_has_schema_fields_and_skips_idle_interfaces() {
    let cap = Capture::new(&meta(Availability::all()), &snapshot());
    let v: serde_json::Value = serde_json::to_value(&cap).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["tool"]["name"], "sirqtop");
    assert_eq!(v["kernel"]["backends"]["veth_xmit"], "tracepoint");
    assert_eq!(v["capture"]["started_at"], "2025-11-25T00:00:00.000000Z");
    assert_eq!(v["capture"]["netns_filter"][0], 4026532001u64);
    assert!(v["capture"]["filter"].is_null(), "no --filter: null");
    let mut m = meta(Availability::all());
    m.filter = Some("udp dst port 9000".into());
    let f = serde_json::to_value(Capture::new(&m, &snapshot())).unwrap();
    assert_eq!(f["capture"]["filter"], "udp dst port 9000");
    let ifs = v["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 2, "idle interface left out");
    assert_eq!(ifs[0]["name"], "vA");
    assert_eq!(ifs[0]["peer"]["name"], "vB");
    assert_eq!(ifs[0]["tx_packets"], 1000);
    let hop = &ifs[0]["latency"]["veth_hop"];
    assert_eq!(hop["count"], 1000);
    assert_eq!(hop["unit"], "ns");
    assert_eq!(hop["buckets"][0]["le"], 4095);
    assert_eq!(hop["buckets"][0]["count"], 1000);
    assert!((2048..=3000).contains(&hop["p50"].as_u64().unwrap()));
    assert_eq!(ifs[1]["softirq_ns_per_packet"], 2000.0);
    assert_eq!(v["cpus"][0]["softirqs"]["NET_RX"]["raises"], 10);
    assert_eq!(v["cpus"][0]["softirqs"]["NET_RX"]["run_hist"]["count"], 1);
    assert_eq!(v["loss"]["inflight_evicted"], 3);
    assert!(v["overhead"]["programs"][0]["run_count"].is_null());
    let site = &v["raise_sites"][0];
    assert_eq!(site["interface"]["ifindex"], 3);
    assert_eq!(site["vector"], "NET_RX");
    assert_eq!(site["count"], 990);
    assert_eq!(site["frames"][1], "veth_xmit+0x1a4");
}

#[test]
fn missing_hooks_are_null_not_zero() {
    let mut a = Availability::all();
    a.tx = false;
    a.veth_hop = false;
    a.raises = false;
    a.cpu_raises = false;
    let cap = Capture::new(&meta(a), &snapshot());
    let v: serde_json::Value = serde_json::to_value(&cap).unwrap();
    let va = &v["interfaces"][0];
    assert!(va["tx_packets"].is_null());
    assert!(va["tx_bytes"].is_null());
    assert!(va["net_rx_raises"].is_null());
    assert!(va["latency"]["veth_hop"].is_null());
    assert!(!va["latency"]["backlog_wait"].is_null());
    assert!(v["cpus"][0]["softirqs"]["NET_RX"]["raises"].is_null());
    assert_eq!(v["cpus"][0]["softirqs"]["NET_RX"]["runs"], 9);
}

#[test]
fn round_trips_through_text() {
    let cap = Capture::new(&meta(Availability::all()), &snapshot());
    let text = serde_json::to_string_pretty(&cap).unwrap();
    let back = Capture::from_json(&text).unwrap();
    assert_eq!(back, cap);
    let hop = back.interfaces[0]
        .latency
        .veth_hop
        .as_ref()
        .unwrap()
        .to_hist();
    assert_eq!(hop.count, 1000);
    assert_eq!(hop.buckets[crate::model::hist::bucket_of(3000)], 1000);
}

#[test]
fn other_schema_versions_are_refused() {
    let e = Capture::from_json(r#"{"schema_version": 2}"#).unwrap_err();
    assert_eq!(e, "unsupported schema_version 2 (this sirqtop reads 1)");
    assert!(Capture::from_json("nope")
        .unwrap_err()
        .starts_with("not a sirqtop JSON capture"));
    assert!(Capture::from_json("{}")
        .unwrap_err()
        .contains("no schema_version"));
}

#[test]
fn rfc3339_formats_utc() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    let t = UNIX_EPOCH + Duration::from_micros(951_782_400_000_001); // 2000-02-29
    assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000001Z");
}

/// `-o /dev/null` (or a FIFO) is written in place: linking a file over it would replace
/// the node the whole system uses (a run with `-o /dev/null` once left a regular file there).
#[test]
fn special_files_are_written_in_place_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let sink = Sink::open(Some(&fifo)).unwrap();
    assert!(matches!(sink, Sink::Special { .. }));
    sink.write(&Capture::new(&meta(Availability::all()), &snapshot()))
        .unwrap();
    assert!(Capture::from_json(&reader.join().unwrap()).is_ok());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let null = Path::new("/dev/null");
    if std::fs::metadata(null).is_ok_and(|m| m.file_type().is_char_device()) {
        let sink = Sink::open(Some(null)).unwrap();
        assert!(matches!(sink, Sink::Special { .. }));
        sink.write(&Capture::new(&meta(Availability::all()), &snapshot()))
            .unwrap();
        assert!(std::fs::metadata(null)
            .unwrap()
            .file_type()
            .is_char_device());
    }
}

#[test]
fn file_sink_is_atomic_and_checks_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.json");
    let sink = Sink::open(Some(&path)).unwrap();
    assert!(!path.exists(), "nothing at the target before the write");
    sink.write(&Capture::new(&meta(Availability::all()), &snapshot()))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(Capture::from_json(&text).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temp file renamed, not left behind");
    // Over an existing file: replaced whole, still nothing else left.
    let sink = Sink::open(Some(&path)).unwrap();
    assert!(
        matches!(sink, Sink::Unnamed { .. }),
        "tmpfs/ext4 have O_TMPFILE"
    );
    sink.write(&Capture::new(&meta(Availability::all()), &snapshot()))
        .unwrap();
    assert!(Capture::from_json(&std::fs::read_to_string(&path).unwrap()).is_ok());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let bad = Sink::open(Some(Path::new("/nonexistent-dir/x.json")));
    let msg = bad.err().unwrap().to_string();
    assert!(
        msg.starts_with("cannot write /nonexistent-dir/x.json"),
        "{msg}"
    );
}

#[test]
fn paths_are_written_with_names_and_read_back() {
    use crate::model::{PathHop, PathHopKey};
    let mut s = snapshot();
    let (a, b) = (IfaceKey::new(4026532001, 2), IfaceKey::new(4026532002, 3));
    let mut latency = Histogram::default();
    latency.record(12_000);
    s.path_hops = vec![PathHop {
        key: PathHopKey {
            origin: a,
            prev: a,
            to: b,
            hop: 1,
        },
        packets: 1,
        enqueues: 1,
        origin_softirq: 0,
        latency,
    }];
    let cap = Capture::new(&meta(Availability::all()), &s);
    assert_eq!(cap.paths.len(), 1);
    let p = &cap.paths[0];
    assert_eq!(p.from.name.as_deref(), Some("vA"));
    assert_eq!(p.to.netns_inode, 4026532002);
    assert_eq!((p.hops, p.packets), (1, 1));
    assert_eq!(p.latency.count, 1);
    // b: 2 ms over 1000 packets.
    assert_eq!(p.softirq_ns_per_packet, Some(2000.0));
    let text = serde_json::to_string(&cap).unwrap();
    assert_eq!(Capture::from_json(&text).unwrap(), cap);
    // Older captures have no paths: read as none.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("paths");
    assert!(Capture::from_json(&v.to_string()).unwrap().paths.is_empty());
    // Without the hooks for them, the costs are null, not 0.
    let mut av = Availability::all();
    av.softirq_time = false;
    av.raises = false;
    let cap = Capture::new(&meta(av), &s);
    assert_eq!(cap.paths[0].softirq_ns_per_packet, None);
    assert_eq!(cap.paths[0].net_rx_raises_per_packet, None);
}

#[test]
fn softnet_is_per_cpu_with_nulls_for_columns_the_kernel_lacks() {
    let mut s = snapshot();
    let v: serde_json::Value =
        serde_json::to_value(Capture::new(&meta(Availability::all()), &s)).unwrap();
    assert!(v["cpus"][0]["softnet"].is_null(), "no file read: null");
    assert_eq!(v["kernel"]["softnet_columns"].as_array().unwrap().len(), 0);
    s.cpus[0].softnet = Some(crate::model::Softnet {
        processed: 100,
        dropped: 2,
        time_squeeze: 3,
        received_rps: 0,
        flow_limit_count: Some(0),
        backlog_len: None,
    });
    let cap = Capture::new(&meta(Availability::all()), &s);
    let v: serde_json::Value = serde_json::to_value(&cap).unwrap();
    let sn = &v["cpus"][0]["softnet"];
    assert_eq!(
        (sn["processed"].as_u64(), sn["dropped"].as_u64()),
        (Some(100), Some(2))
    );
    assert_eq!(sn["time_squeeze"], 3);
    assert_eq!(sn["flow_limit_count"], 0);
    assert!(sn["backlog_len"].is_null());
    let cols = &v["kernel"]["softnet_columns"];
    assert_eq!(cols.as_array().unwrap().len(), 5, "{cols}");
    assert!(!cols.to_string().contains("backlog_len"));
    let text = serde_json::to_string(&cap).unwrap();
    assert_eq!(Capture::from_json(&text).unwrap(), cap);
}
