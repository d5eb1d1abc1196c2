//! The fleet face: `sirqtop serve` scraped by a real Prometheus server, the NDJSON stream,
//! and namespace owners named as Kubernetes and Docker name them. Every test sends a
//! known number of packets over veth pairs it builds and checks what comes out. Root only;
//! the tests take turns.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sirqtop::lab::send_udp;

mod common;

use common::prom::{free_port, http_get, http_status, promtool_check_metrics, sample, Prometheus};
use common::serve::{bin, Serve};

/// Control packets a pair may add to what a test sends.
const SLACK: u64 = 2;

#[test]
fn prometheus_scrapes_exactly_what_was_sent() {
    require_root!();
    require_tool!("prometheus", &["--version"], "prometheus");
    let _g = common::serial();
    let lab = common::lab("p", "10.202.1");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5301);
    // Every skb timed: serve's default samples the latencies above 20 000 new skbs/s per
    // CPU, and the hop histogram's _count is then an estimate, not the exact count.
    let serve = Serve::on_lab(&lab, "250ms", &["--timing-rate", "0"]);
    let prom = Prometheus::start(&serve.addr);
    const N: u64 = 1500;
    send_udp(&lab.ns_a, &lab.addr_b, 5301, N as usize, 64).unwrap();

    let a = format!(r#"netns="{}",interface="{}""#, lab.ns_a, lab.if_a);
    let b = format!(r#"netns="{}",interface="{}""#, lab.ns_b, lab.if_b);
    let n = N as f64;
    for (q, what) in [
        (
            format!("sirqtop_interface_transmit_packets_total{{{a}}}"),
            "transmit",
        ),
        (
            format!("sirqtop_interface_receive_packets_total{{{b}}}"),
            "receive",
        ),
        (
            format!("sirqtop_interface_backlog_enqueue_packets_total{{{b}}}"),
            "backlog enqueue",
        ),
        (
            format!("sirqtop_interface_veth_hop_seconds_count{{{a}}}"),
            "veth_hop _count",
        ),
    ] {
        assert_eq!(prom.wait_for(&q, n), Some(n), "{what}: {q}");
    }
    // The histogram's buckets add up to its count, and the hop took some time.
    let inf = format!(r#"sirqtop_interface_veth_hop_seconds_bucket{{{a},le="+Inf"}}"#);
    assert_eq!(prom.query(&inf), Some(n));
    assert!(prom.query(&format!("sirqtop_interface_veth_hop_seconds_sum{{{a}}}")) > Some(0.0));
    // The info series joins the two ends.
    let info = format!(
        r#"sirqtop_interface_info{{{a},kind="veth",peer="{}",peer_netns="{}"}}"#,
        lab.if_b, lab.ns_b
    );
    assert_eq!(prom.query(&info), Some(1.0), "{info}");
    assert_eq!(prom.query(r#"up{job="sirqtop"}"#), Some(1.0));

    // What Prometheus parsed is also what promtool accepts, in the text format.
    let (status, head, body) = http_get(&serve.addr, "/metrics", None);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    promtool_check_metrics(&body);
    let (_, head, om) = http_get(
        &serve.addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(
        sample(
            &om,
            &format!("sirqtop_interface_transmit_packets_total{{{a}")
        ),
        Some(n)
    );
    assert_eq!(http_get(&serve.addr, "/healthz", None).0, 200);
    assert_eq!(http_get(&serve.addr, "/nope", None).0, 404);
    drop(prom);
    serve.stop();
}

/// The local addresses of TCP sockets in LISTEN state that `pid` holds.
fn listening_addresses(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode.
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                out.push(format!("{table} {}", f[1]));
            }
        }
    }
    out
}

#[test]
fn default_listen_is_loopback_and_sigterm_detaches() {
    require_root!();
    let _g = common::serial();
    let serve = Serve::start(&["--lite"]);
    assert_eq!(serve.addr, "127.0.0.1:9864");
    // 127.0.0.1:9864 as /proc/net/tcp writes it (little-endian address, hex port).
    assert_eq!(
        listening_addresses(serve.child.id()),
        ["tcp 0100007F:2688".to_string()]
    );
    let (status, _, body) = http_get(&serve.addr, "/metrics", None);
    assert_eq!(status, 200);
    // --lite: counters only, no histograms, no softirq time.
    assert!(body.contains("# TYPE sirqtop_interface_transmit_packets_total counter"));
    assert!(!body.contains("veth_hop_seconds"));
    assert!(!body.contains("sirqtop_interface_softirq_seconds_total"));
    serve.stop();

    // A busy port fails before anything is attached, in one line.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let before = common::sirqtop_program_ids();
    let out = bin().args(["serve", "--listen", &addr]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "sirqtop: cannot listen on {addr}: Address already in use"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(common::sirqtop_program_ids().is_subset(&before));
    let out = bin().args(["serve", "--listen", ":9864"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give 127.0.0.1:9864"));
}

#[test]
fn ndjson_stream_covers_each_interval() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("j", "10.202.2");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5302);
    let (child, _err) = common::spawn_ready(
        bin()
            .args([
                "--json",
                "--interval",
                "300ms",
                "--duration",
                "3s",
                "--netns",
                &lab.ns_a,
            ])
            .stdout(Stdio::piped()),
    );
    const N: u64 = 900;
    // Spread over several intervals.
    for _ in 0..3 {
        send_udp(&lab.ns_a, &lab.addr_b, 5302, (N / 3) as usize, 64).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert!((8..=11).contains(&docs.len()), "{} documents", docs.len());
    let mut tx = 0;
    let mut with_traffic = 0;
    for d in &docs {
        assert_eq!(d["schema_version"], 1);
        let dur = d["capture"]["duration_ns"].as_u64().unwrap();
        assert!(dur < 1_000_000_000, "each covers one interval: {dur}");
        let t: u64 = d["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["name"] == lab.if_a.as_str())
            .map(|i| i["tx_packets"].as_u64().unwrap())
            .sum();
        with_traffic += usize::from(t > 0);
        tx += t;
    }
    common::within_slack(tx, N, SLACK, "tx summed over the documents");
    assert!(with_traffic >= 2, "traffic spread over intervals");
}

#[test]
fn a_pod_is_labelled_namespace_slash_pod_over_its_ip_netns_name() {
    require_root!();
    let _g = common::serial();
    let lab = common::lab("k", "10.202.3");
    let pid = std::process::id();
    let uid = format!("5137{pid:04x}-0000-4000-8000-000000000001");
    let uid = &uid[uid.len() - 36..];
    let id = format!("{:0>64x}", 0x6b75_0000_0000u64 + u64::from(pid));
    // A process in a kubepods cgroup (cgroupfs driver layout).
    let _pod = common::CgroupTask::start(&lab.ns_a, &format!("kubepods/besteffort/pod{uid}/{id}"))
        .expect("a writable cgroup hierarchy");
    // The host as the kubelet leaves it, under a --host-root: its /proc and /run, and a
    // /var/log/pods directory for the pod with one container.
    let host = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/proc", host.path().join("proc")).unwrap();
    std::os::unix::fs::symlink("/run", host.path().join("run")).unwrap();
    let pod_dir = host
        .path()
        .join(format!("var/log/pods/shop_web-0_{uid}/nginx"));
    std::fs::create_dir_all(&pod_dir).unwrap();

    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5303);
    let (child, _err) = common::spawn_ready(
        bin()
            .args(["--json", "--duration", "2s", "--netns", &lab.ns_a])
            .arg("--host-root")
            .arg(host.path())
            .stdout(Stdio::piped()),
    );
    send_udp(&lab.ns_a, &lab.addr_b, 5303, 100, 64).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let cap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = cap["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == lab.if_a.as_str())
        .expect("the pod's interface");
    assert_eq!(a["netns_label"], "shop/web-0", "{a:#}");
    assert_eq!(
        a["netns_name"],
        lab.ns_a.as_str(),
        "the ip-netns name is kept"
    );
    let c = &a["container"];
    assert_eq!(c["pod"], "web-0");
    assert_eq!(c["pod_namespace"], "shop");
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["pod_uid"], uid);
    assert_eq!(c["id"], id.as_str());
    common::within_slack(a["tx_packets"].as_u64().unwrap(), 100, SLACK, "tx");
}

/// A dockerd of the test's own (data, exec root and socket in a temp dir; bridge in the
/// test's 10.x range), stopped and cleaned up on drop.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    /// docker0 is ours to remove (dockerd leaves its bridge behind).
    made_bridge: bool,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let made_bridge = !std::path::Path::new("/sys/class/net/docker0").exists();
        let child = Command::new("dockerd")
            .args([
                "--storage-driver=vfs",
                "--bip=10.231.200.1/24",
                "--userland-proxy=false",
                "--iptables=false",
            ])
            .arg(format!("--data-root={}", p.join("root").display()))
            .arg(format!("--exec-root={}", p.join("exec").display()))
            .arg(format!("--pidfile={}", p.join("docker.pid").display()))
            .arg(format!("--host=unix://{}", p.join("docker.sock").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dockerd (apt-get install docker.io)");
        let d = Dockerd {
            child,
            dir,
            made_bridge,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["info"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not start");
            std::thread::sleep(Duration::from_millis(300));
        }
        d
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .args(args)
            .output()
            .expect("docker client")
    }

    /// Runs docker and returns its trimmed stdout, failing the test on an error.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // vfs layers and netns files may still be mounted under the data root.
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.path().join("exec"))
            .stderr(Stdio::null())
            .status();
        if self.made_bridge {
            let _ = sirqtop::lab::ip(&["link", "del", "docker0"]);
        }
    }
}

/// Sends `n` UDP datagrams from the host namespace to `addr` (a container of the test's).
fn send_from_host(addr: &str, n: usize) {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    for _ in 0..n {
        s.send_to(&[0u8; 64], (addr, 5304)).unwrap();
    }
}

#[test]
fn docker_image_serves_and_names_containers() {
    require_root!();
    require_tool!("dockerd", &["--version"], "docker.io");
    let _g = common::serial();
    let d = Dockerd::start();
    // A busybox image from the host's busybox-static, and a container named by the test.
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rootfs.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.path().join("bin/sleep")).unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let mut import = Command::new("docker")
        .env("DOCKER_HOST", d.host())
        .args(["import", "-", "sqt-busybox:test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success());
    let name = format!("sqt-web-{}", std::process::id());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "sqt-busybox:test",
        "/bin/sleep",
        "600",
    ]);
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &name]);
    assert!(ip.starts_with("10.231.200."), "{ip}");
    let data_root = d.dir.path().join("root");
    // A new veth's IPv6 autoconfiguration (MLD, router solicitations through the bridge)
    // reaches the container in its first seconds: let it pass before counting.
    std::thread::sleep(Duration::from_secs(4));

    // 1. The binary on the host names the container by its Docker name.
    send_from_host(&ip, 1); // neighbour resolution before the capture
    let (child, _err) = common::spawn_ready(
        bin()
            .args([
                "--json",
                "--duration",
                "2s",
                "--netns",
                &format!("pid:{pid}"),
            ])
            .arg("--docker-root")
            .arg(&data_root)
            .stdout(Stdio::piped()),
    );
    send_from_host(&ip, 200);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let cap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let eth0 = cap["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap_or_else(|| panic!("the container's eth0: {cap:#}"));
    assert_eq!(eth0["netns_label"], name.as_str(), "{eth0:#}");
    assert_eq!(eth0["container"]["name"], name.as_str());
    assert_eq!(eth0["container"]["runtime"], "docker");
    common::within_slack(eth0["rx_packets"].as_u64().unwrap(), 200, SLACK, "rx");

    // 2. The image from deploy/, run with the DaemonSet's capabilities and mounts.
    let build = Command::new("deploy/build-image.sh")
        .arg("sirqtop:test")
        .env("DOCKER_HOST", d.host())
        .env("SIRQTOP_BIN", env!("CARGO_BIN_EXE_sirqtop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let before = common::sirqtop_program_ids();
    let btf = "/sys/kernel/btf:/sys/kernel/btf:ro".to_string();
    let docker_mount = format!("{}:/host/var/lib/docker:ro", data_root.display());
    // Docker 20.10 does not know CAP_BPF and CAP_PERFMON by name; CAP_SYS_ADMIN covers
    // both (the DaemonSet asks for all three: newer runtimes grant the narrow ones).
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sqt-exporter",
        "--pid",
        "host",
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "SYS_PTRACE",
        "-v",
        &btf,
        "-v",
        "/proc:/host/proc:ro",
        "-v",
        "/run/netns:/host/run/netns:ro",
        "-v",
        &docker_mount,
        "sirqtop:test",
        "serve",
        "--listen",
        &listen,
        "--host-root",
        "/host",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_status(&listen, "/healthz") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "exporter not healthy: {}",
            String::from_utf8_lossy(&d.docker(&["logs", "sqt-exporter"]).stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let series = format!(
        r#"sirqtop_interface_receive_packets_total{{netns="{name}",interface="eth0",kind="veth"}}"#
    );
    let read = || {
        std::thread::sleep(Duration::from_millis(1500));
        sample(&http_get(&listen, "/metrics", None).2, &series)
    };
    send_from_host(&ip, 1);
    let v0 = read().unwrap_or(0.0) as u64;
    send_from_host(&ip, 300);
    let v1 = read().expect("the container's series") as u64;
    common::within_slack(v1 - v0, 300, SLACK, "rx scraped from the image");
    let (_, _, body) = http_get(&listen, "/metrics", None);
    assert!(
        body.lines()
            .any(|l| l.starts_with("sirqtop_interface_info{")
                && l.contains(&format!(r#"netns="{name}""#))
                && l.contains(r#"peer_netns="host""#)
                && l.contains(&format!(r#"container="{name}""#))),
        "{body}"
    );
    // SIGTERM (docker stop) ends it cleanly: exit 0, nothing left loaded.
    d.ok(&["stop", "-t", "10", "sqt-exporter"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sqt-exporter"]),
        "0"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !common::sirqtop_program_ids().is_subset(&before) {
        assert!(Instant::now() < deadline, "programs left loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
}
