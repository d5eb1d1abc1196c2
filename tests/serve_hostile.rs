//! `sirqtop serve` against hostile clients on the node network, with a few hundred
//! interfaces to serve: clients that pipeline scrapes and never read, 1000 half-sent
//! requests, an endless header line, 500 concurrent scrapes. Meanwhile `/healthz` and
//! `/metrics` must answer another client within a second, the server's threads and RSS
//! stay bounded, and once the attackers are cut off (or leave) its open file descriptors
//! are back to where they were. Root only (serve attaches).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::serve::Serve;

/// Extra veth pairs between the lab's two namespaces: 2 × PAIRS interfaces with traffic.
const PAIRS: usize = 150;

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A whole GET on a fresh connection: status and body length.
fn get(addr: &str, path: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let status = std::str::from_utf8(&raw[..raw.len().min(12)])
        .ok()
        .and_then(|h| h.split(' ').nth(1)?.parse().ok())
        .unwrap_or(0);
    (status, raw.len())
}

/// Raises this process's open-file limit: the attackers' sockets are many.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// `ip -n NS -batch` of many commands at once.
fn ip_batch(ns: &str, lines: &[String]) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), lines.join("\n") + "\n").unwrap();
    let path = f.path().display().to_string();
    sirqtop::lab::ip(&["-n", ns, "-batch", &path]).expect("ip -batch");
}

#[test]
fn hostile_clients_cost_no_thread_and_never_delay_others() {
    require_root!();
    let _g = common::serial();
    raise_fd_limit();
    let lab = common::lab("wh", "10.219.4");
    // Interfaces to serve: PAIRS more pairs between the two namespaces, one datagram each.
    let (mut in_a, mut in_b) = (Vec::new(), Vec::new());
    for i in 0..PAIRS {
        let (a, b) = (format!("sqwh{i}a"), format!("sqwh{i}b"));
        let host = |n: usize| format!("10.218.{}.{}", i / 60, (i % 60) * 4 + n);
        in_a.push(format!(
            "link add {a} type veth peer name {b} netns {}",
            lab.ns_b
        ));
        in_a.push(format!("addr add {}/30 dev {a}", host(1)));
        in_a.push(format!("link set {a} up"));
        in_b.push(format!("addr add {}/30 dev {b}", host(2)));
        in_b.push(format!("link set {b} up"));
    }
    ip_batch(&lab.ns_a, &in_a);
    ip_batch(&lab.ns_b, &in_b);
    // A refresh every 5 s: the attack, not re-encoding, is under test.
    let serve = Serve::on_lab(&lab, "5s", &[]);
    for i in 0..PAIRS {
        let dst = format!("10.218.{}.{}", i / 60, (i % 60) * 4 + 2);
        common::send_udp(&lab.ns_a, &dst, 5320, 1, 64);
    }
    let addr = serve.addr.clone();
    let pid = serve.child.id();
    // Served: the pairs' interfaces, a few hundred.
    let deadline = Instant::now() + Duration::from_secs(20);
    let count = || {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| l.starts_with("sirqtop_interface_transmit_packets_total{"))
            .count()
    };
    while count() < 2 * PAIRS {
        assert!(Instant::now() < deadline, "{} interfaces served", count());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds0 = open_fds(pid);
    let rss0 = proc_status(pid, "VmRSS:");
    let threads0 = proc_status(pid, "Threads:");

    // Another client, all along: each answer within a second.
    let done = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(Mutex::new((Duration::ZERO, String::new())));
    let prober = {
        let (done, worst, addr) = (Arc::clone(&done), Arc::clone(&worst), addr.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                for path in ["/healthz", "/metrics"] {
                    let t = Instant::now();
                    let (status, len) = get(&addr, path);
                    let took = t.elapsed();
                    assert!(status == 200 && len > 0, "{path}: {status}");
                    let mut w = worst.lock().unwrap();
                    if took > w.0 {
                        *w = (took, path.to_string());
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        })
    };
    let mut peak_threads = threads0;
    let mut peak_rss = rss0;
    let mut sample_peaks = || {
        peak_threads = peak_threads.max(proc_status(pid, "Threads:"));
        peak_rss = peak_rss.max(proc_status(pid, "VmRSS:"));
    };

    // Pipelining scrapers that never read (a small receive buffer fills at once).
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..8 {
        let s = small_rcvbuf_stream(&addr);
        let mut w = &s;
        let reqs = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(8);
        w.write_all(reqs.as_bytes()).unwrap();
        held.push(s);
    }
    // 1000 half-sent requests.
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Wait: ")
            .unwrap();
        held.push(s);
    }
    sample_peaks();
    // An endless header line: cut off near the head limit, answered 431.
    let mut endless = TcpStream::connect(&addr).unwrap();
    endless
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    endless
        .write_all(b"GET /metrics HTTP/1.1\r\nX-Long: ")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match endless.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 8 << 20, "{sent} bytes of one header line taken");
    let mut answer = Vec::new();
    endless
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = endless.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    drop(endless);
    sample_peaks();
    // 500 concurrent scrapes: requests all sent before any answer is read.
    let mut scrapes: Vec<TcpStream> = (0..500)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            // As Prometheus asks: gzip.
            s.write_all(b"GET /metrics HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    sample_peaks();
    let mut statuses = std::collections::BTreeMap::new();
    for s in &mut scrapes {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let head = String::from_utf8_lossy(&raw[..raw.len().min(12)]).to_string();
        let status = head.split(' ').nth(1).unwrap_or("none").to_string();
        *statuses.entry(status).or_insert(0) += 1;
    }
    sample_peaks();
    drop(scrapes);
    let ok = statuses.get("200").copied().unwrap_or(0);
    let busy = statuses.get("503").copied().unwrap_or(0);
    assert!(ok >= 40 && ok + busy == 500, "{statuses:?}");

    // Attackers still connected: the server cuts them (head timeout 5 s, write timeout
    // 10 s) and its descriptors come back to where they were.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        sample_peaks();
        let fds = open_fds(pid);
        if fds <= fds0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{fds} descriptors open, {fds0} before, with the attackers still connected"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    done.store(true, Ordering::Relaxed);
    let probes = prober.join().expect("the other client was not answered");
    let (slowest, path) = worst.lock().unwrap().clone();
    assert!(probes > 10, "{probes} probes");
    assert!(
        slowest < Duration::from_secs(1),
        "{path} took {slowest:?} under attack"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(open_fds(pid), fds0, "descriptors after the attackers left");
    // One serving thread and at most two workers, however many clients.
    assert!(
        peak_threads <= threads0 + 2,
        "{peak_threads} threads at peak, {threads0} before"
    );
    assert!(
        peak_rss < rss0 + 64 * 1024,
        "RSS {peak_rss} KiB at peak, {rss0} KiB before"
    );
    eprintln!(
        "hostile: fds {fds0}, threads {threads0} -> {peak_threads}, RSS {rss0} -> {peak_rss} KiB, \
         slowest other answer {slowest:?} ({path}), 500 scrapes: {statuses:?}"
    );
    serve.stop();
}

/// A connection with a small receive buffer, so that unread answers back up at once.
fn small_rcvbuf_stream(addr: &str) -> TcpStream {
    let target: std::net::SocketAddr = addr.parse().unwrap();
    // SAFETY: a socket we create and own; setsockopt with a valid int pointer and length.
    let fd = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        fd
    };
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let s = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let sock = connect_v4(&s, target);
    assert!(sock, "connect {addr}");
    s
}

fn connect_v4(s: &TcpStream, target: std::net::SocketAddr) -> bool {
    use std::os::fd::AsRawFd;
    let std::net::SocketAddr::V4(v4) = target else {
        return false;
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connect(2) on our socket with a valid sockaddr_in and its length.
    unsafe {
        libc::connect(
            s.as_raw_fd(),
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) == 0
    }
}
