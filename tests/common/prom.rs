//! A real Prometheus server for the fleet tests, and plain HTTP/1.0 helpers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The status of a GET, None while nothing answers.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    TcpStream::connect(addr).ok()?;
    Some(http_get(addr, path, None).0)
}

/// A plain HTTP/1.0 GET: (status, headers, body).
pub fn http_get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The value of the one sample that starts with `prefix` (name and labels).
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server on loopback scraping `target` every second, removed on drop.
pub struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        Prometheus::with_jobs(&format!(
            "  - job_name: sirqtop\n    static_configs:\n      - targets: ['{target}']\n"
        ))
    }

    /// Scrapes with the given `scrape_configs` entries (YAML, indented by two).
    pub fn with_jobs(jobs: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n{jobs}"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (apt-get install prometheus)");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(&p.addr, "/-/ready") != Some(200) {
            assert!(Instant::now() < deadline, "prometheus not ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// The value of an instant query with exactly one result; None when it has none.
    pub fn query(&self, q: &str) -> Option<f64> {
        let (status, _, body) = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", urlencode(q)),
            None,
        );
        assert_eq!(status, 200, "{q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let result = v["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{q}: several series: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `q` equals `want` (scrapes are every second), or returns its last value.
    pub fn wait_for(&self, q: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.query(q);
            if v == Some(want) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// The last scrape error and health of `job`'s one target, from /api/v1/targets.
    pub fn target(&self, job: &str) -> Option<(String, String)> {
        let (status, _, body) = http_get(&self.addr, "/api/v1/targets", None);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let t = v["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["labels"]["job"] == job)?
            .clone();
        Some((
            t["health"].as_str()?.to_string(),
            t["lastError"].as_str().unwrap_or_default().to_string(),
        ))
    }
}

/// `promtool check metrics` on an exposition: passes only when it says nothing.
pub fn promtool_check_metrics(text: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
