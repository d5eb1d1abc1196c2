//! `sirqtop serve` behind its web config, as a security review would try it: a real
//! Prometheus scraping over TLS with basic auth and with client certificates (exact counts
//! of the test's own veth traffic), wrong credentials, plain HTTP on the TLS port, bad
//! config files, certificate rotation, and gzip. Certificates are made by `openssl` at
//! test time. Root only (serve attaches); the tests take turns.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

mod common;

use common::prom::{promtool_check_metrics, sample, Prometheus};
use common::serve::{bin, Serve};

/// A throwaway CA with a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
        ca.extend(["-subj", "/CN=sirqtop test CA"]);
        openssl(d, &ca);
        let pki = Pki { dir };
        pki.issue("server", "serverAuth", "subjectAltName=IP:127.0.0.1\n");
        pki.issue("client", "clientAuth", "");
        pki
    }

    /// `NAME.key` and `NAME.pem`, signed by the CA.
    fn issue(&self, name: &str, usage: &str, san: &str) {
        let d = self.dir.path();
        let ext = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n{san}"
        );
        std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ];
        req.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj"]);
        let subj = format!("/CN=sirqtop {name}");
        req.push(&subj);
        openssl(d, &req);
        let extfile = format!("{name}.ext");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ],
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

fn basic(user: &str, password: &str) -> String {
    let t = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {t}")
}

/// A GET over TLS with `openssl s_client` (verifying the server against the test CA):
/// (status, head, body); status 0 when the handshake or the server refused.
fn https_get(
    pki: &Pki,
    addr: &str,
    path: &str,
    auth: Option<&str>,
    client_cert: bool,
) -> (u16, String, Vec<u8>) {
    let ca = pki.path("ca.pem");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-connect",
        addr,
        "-CAfile",
    ])
    .arg(&ca);
    if client_cert {
        cmd.arg("-cert").arg(pki.path("client.pem"));
        cmd.arg("-key").arg(pki.path("client.key"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n");
    let _ = child.stdin.take().unwrap().write_all(req.as_bytes());
    let out = child.wait_with_output().unwrap();
    let raw = out.stdout;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&raw[..at], raw[at + 4..].to_vec()),
        None => (&raw[..], Vec::new()),
    };
    let head = String::from_utf8_lossy(head).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

/// The subject of the certificate the server at `addr` presents.
fn served_subject(pki: &Pki, addr: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-CAfile"])
        .arg(pki.path("ca.pem"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .to_string()
}

fn tools_present() -> bool {
    common::require_tool("openssl", &["version"], "openssl").is_none()
        && common::require_tool("prometheus", &["--version"], "prometheus").is_none()
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_client_certificates() {
    require_root!();
    if !tools_present() {
        return;
    }
    let _g = common::serial();
    let pki = Pki::new();
    let hash = bcrypt::hash("right horse battery", 10).unwrap();
    let auth_cfg = pki.write(
        "auth.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  prom: {hash}\n"
        ),
    );
    let mtls_cfg = pki.write(
        "mtls.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
         min_version: TLS13\n",
    );
    let lab = common::lab("wt", "10.219.2");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5311);
    let start = |cfg: &Path| {
        let cfg = cfg.display().to_string();
        Serve::on_lab(&lab, "250ms", &["--web.config.file", &cfg])
    };
    let basic_serve = start(&auth_cfg);
    let mtls_serve = start(&mtls_cfg);
    let ca = pki.path("ca.pem").display().to_string();
    let cert = pki.path("client.pem").display().to_string();
    let key = pki.path("client.key").display().to_string();
    let job = |name: &str, target: &str, extra: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n{extra}\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        )
    };
    let jobs = [
        job(
            "basic",
            &basic_serve.addr,
            "    basic_auth:\n      username: prom\n      password: right horse battery\n",
        ),
        job(
            "wrongpw",
            &basic_serve.addr,
            "    basic_auth:\n      username: prom\n      password: wrong\n",
        ),
        job(
            "mtls",
            &mtls_serve.addr,
            &format!("      cert_file: {cert}\n      key_file: {key}\n"),
        ),
        job("nocert", &mtls_serve.addr, ""),
    ]
    .concat();
    let prom = Prometheus::with_jobs(&jobs);
    const N: u64 = 1200;
    common::send_udp(&lab.ns_a, &lab.addr_b, 5311, N as usize, 64);
    let n = N as f64;
    let a = format!(r#"netns="{}",interface="{}""#, lab.ns_a, lab.if_a);
    let b = format!(r#"netns="{}",interface="{}""#, lab.ns_b, lab.if_b);
    for job in ["basic", "mtls"] {
        for q in [
            format!("sirqtop_interface_transmit_packets_total{{job=\"{job}\",{a}}}"),
            format!("sirqtop_interface_receive_packets_total{{job=\"{job}\",{b}}}"),
        ] {
            assert_eq!(prom.wait_for(&q, n), Some(n), "{q}");
        }
        assert_eq!(
            prom.query(&format!("up{{job=\"{job}\"}}")),
            Some(1.0),
            "{job}"
        );
    }
    for job in ["wrongpw", "nocert"] {
        let up = format!("up{{job=\"{job}\"}}");
        assert_eq!(prom.wait_for(&up, 0.0), Some(0.0), "{job}");
        let (health, err) = prom.target(job).expect("target");
        assert_eq!(health, "down", "{job}: {err}");
        if job == "wrongpw" {
            assert!(err.contains("401"), "{job}: {err}");
        }
    }

    // By hand: 401 with WWW-Authenticate for a wrong password and for an unknown user,
    // the configured header on every answer, /healthz without credentials.
    let addr = &basic_serve.addr;
    for auth in [
        None,
        Some(basic("prom", "nope")),
        Some(basic("eve", "right horse battery")),
    ] {
        let (status, head, body) = https_get(&pki, addr, "/metrics", auth.as_deref(), false);
        assert_eq!(status, 401, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{head}"
        );
        assert!(!String::from_utf8_lossy(&body).contains("sirqtop_"));
    }
    let (status, head, body) = https_get(
        &pki,
        addr,
        "/metrics",
        Some(&basic("prom", "right horse battery")),
        false,
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        sample(
            &text,
            &format!("sirqtop_interface_transmit_packets_total{{{a}")
        ),
        Some(n)
    );
    assert_eq!(https_get(&pki, addr, "/healthz", None, false).0, 200);
    // Plain HTTP on the TLS port gets no metrics (the server may close before the
    // request is even written).
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = plain.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains("sirqtop_") && !answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    // Client certificates: refused without one, served with one.
    assert_eq!(
        https_get(&pki, &mtls_serve.addr, "/metrics", None, false).0,
        0
    );
    assert_eq!(
        https_get(&pki, &mtls_serve.addr, "/metrics", None, true).0,
        200
    );

    // Rotation: a new user replaces the old one, without a restart.
    let hash2 = bcrypt::hash("new pass", 4).unwrap();
    std::fs::write(
        &auth_cfg,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             basic_auth_users:\n  scraper: {hash2}\n"
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_get(
        &pki,
        addr,
        "/metrics",
        Some(&basic("scraper", "new pass")),
        false,
    )
    .0 != 200
    {
        assert!(Instant::now() < deadline, "the new user was not taken");
        std::thread::sleep(Duration::from_millis(300));
    }
    let old = https_get(
        &pki,
        addr,
        "/metrics",
        Some(&basic("prom", "right horse battery")),
        false,
    );
    assert_eq!(old.0, 401, "the old user is gone");
    // Certificate rotation: a new certificate and key in place of the old, no restart.
    assert!(served_subject(&pki, addr).contains("sirqtop server"));
    pki.issue("rotated", "serverAuth", "subjectAltName=IP:127.0.0.1\n");
    for ext in ["key", "pem"] {
        std::fs::copy(
            pki.path(&format!("rotated.{ext}")),
            pki.path(&format!("server.{ext}")),
        )
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served_subject(&pki, addr).contains("sirqtop rotated") {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not taken"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(prom);
    basic_serve.stop();
    mtls_serve.stop();
}

/// What `serve --web.config.file FILE` says about a bad file: one line naming the file,
/// a non-zero exit, and no BPF program loaded.
fn refused(file: &Path, want: &str) {
    let before = common::sirqtop_program_ids();
    let out = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--web.config.file"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}: accepted", file.display());
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains(want), "{want}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        common::sirqtop_program_ids().is_subset(&before),
        "programs loaded for a bad web config"
    );
}

#[test]
fn bad_web_configs_are_one_line_and_attach_nothing() {
    require_root!();
    require_tool!("openssl", &["version"], "openssl");
    let _g = common::serial();
    let pki = Pki::new();
    pki.issue("other", "serverAuth", "subjectAltName=IP:127.0.0.1\n");
    let tls = |cert: &str, key: &str| {
        format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    };
    refused(&pki.path("missing.yml"), "No such file");
    refused(
        &pki.write("malformed.yml", "tls_server_config: [unclosed\n"),
        "malformed.yml",
    );
    refused(
        &pki.write("unknown.yml", "tls_server_configs: {}\n"),
        "tls_server_configs",
    );
    refused(
        &pki.write("nokey.yml", &tls("server.pem", "absent.key")),
        "absent.key",
    );
    std::fs::write(pki.path("garbage.key"), "not a key\n").unwrap();
    refused(
        &pki.write("badkey.yml", &tls("server.pem", "garbage.key")),
        "garbage.key",
    );
    refused(
        &pki.write("mismatch.yml", &tls("server.pem", "other.key")),
        "key",
    );
    refused(
        &pki.write("hash.yml", "basic_auth_users:\n  prom: $2y$10$tooshort\n"),
        "prom",
    );
    refused(
        &pki.write(
            "noca.yml",
            &format!(
                "{}  client_auth_type: RequireAndVerifyClientCert\n",
                tls("server.pem", "server.key")
            ),
        ),
        "client_ca_file",
    );
}

#[test]
fn gzip_is_the_plain_exposition_compressed_and_promtool_accepts_it() {
    require_root!();
    require_tool!("promtool", &["--version"], "prometheus");
    let _g = common::serial();
    let lab = common::lab("wz", "10.219.3");
    let _sink = common::udp_sink(&lab.ns_b, &lab.addr_b, 5312);
    let serve = Serve::on_lab(&lab, "1s", &[]);
    let get = |encoding: Option<&str>| -> (String, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(&serve.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let enc = encoding
            .map(|e| format!("Accept-Encoding: {e}\r\n"))
            .unwrap_or_default();
        write!(s, "GET /metrics HTTP/1.0\r\n{enc}\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase(),
            raw[at + 4..].to_vec(),
        )
    };
    common::send_udp(&lab.ns_a, &lab.addr_b, 5312, 300, 64);
    let a = format!(r#"netns="{}",interface="{}""#, lab.ns_a, lab.if_a);
    let tx = |body: &[u8]| {
        sample(
            &String::from_utf8_lossy(body),
            &format!("sirqtop_interface_transmit_packets_total{{{a}"),
        )
    };
    // Plain, gzip, plain: when both plain answers are the same, all three are of one
    // snapshot (the uptime differs between snapshots).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (plain, unzipped) = loop {
        assert!(Instant::now() < deadline, "no two answers of one snapshot");
        let (head, plain) = get(None);
        assert!(!head.contains("content-encoding"), "{head}");
        let (zhead, zipped) = get(Some("gzip, deflate"));
        assert!(zhead.contains("content-encoding: gzip"), "{zhead}");
        let (_, again) = get(None);
        if again != plain || tx(&plain) != Some(300.0) {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert!(
            zipped.len() * 4 < plain.len(),
            "{} vs {}",
            zipped.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        break (plain, unzipped);
    };
    assert_eq!(
        unzipped, plain,
        "gzip decodes to exactly the plain exposition"
    );
    let text = String::from_utf8(plain).unwrap();
    promtool_check_metrics(&text);
    serve.stop();
}
