//! The overhead benchmark's floor: empty BPF programs on exactly the tracepoints sirqtop
//! attaches by default (bpf/floor.bpf.c). Whatever throughput this costs is the unavoidable
//! price of the hooks themselves (tracepoint dispatch + BPF trampoline); sirqtop is judged
//! on what its program bodies add on top. With `--least`, the same hooks do the least exact
//! work instead (bpf/least.bpf.c: a per-CPU count each and the softirq run time, two clock
//! reads per run): what counting these events exactly costs any tracer.
//!
//! usage: sudo target/release/examples/bench_floor [--least] [--bpf-stats]
//!
//! Attaches, prints `bench_floor: ready` on stderr, and waits for SIGINT/SIGTERM; then
//! detaches. With `--bpf-stats` kernel BPF run-time statistics are on while it runs and, on
//! exit, one JSON line per program is printed on stdout:
//! `{"name":"floor_xmit","run_count":N,"run_time_ns":T}`.
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::Object;
use sirqtop::bpf::floor::FloorSkelBuilder;
use sirqtop::bpf::least::LeastSkelBuilder;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_floor: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    const USAGE: &str = "usage: bench_floor [--least] [--bpf-stats]";
    let (mut bpf_stats, mut least) = (false, false);
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--bpf-stats" => bpf_stats = true,
            "--least" => least = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    // Statistics stay on for as long as this fd is open.
    let _stats = if bpf_stats {
        Some(enable_stats()?)
    } else {
        None
    };

    let mut storage = MaybeUninit::uninit();
    if least {
        let open = LeastSkelBuilder::default()
            .open(&mut storage)
            .context("opening the least-work object")?;
        let mut skel = open.load().context("loading the least-work programs")?;
        skel.attach().context("attaching the least-work programs")?;
        run_attached(skel.object(), "least-work", &stop, bpf_stats);
    } else {
        let open = FloorSkelBuilder::default()
            .open(&mut storage)
            .context("opening the floor object")?;
        let mut skel = open.load().context("loading the floor programs")?;
        skel.attach().context("attaching the floor programs")?;
        run_attached(skel.object(), "empty", &stop, bpf_stats);
    }
    Ok(())
}

/// Announces the attached programs, waits for a signal, then prints their statistics.
fn run_attached(obj: &Object, what: &str, stop: &AtomicBool, bpf_stats: bool) {
    eprintln!(
        "bench_floor: ready ({} {what} programs attached)",
        obj.progs().count()
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if bpf_stats {
        for p in obj.progs() {
            let (count, ns) = run_stats(p.as_fd().as_raw_fd()).unwrap_or((0, 0));
            println!(
                "{}",
                serde_json::json!({
                    "name": p.name().to_string_lossy(),
                    "run_count": count,
                    "run_time_ns": ns,
                })
            );
        }
    }
}

/// Turns on BPF run-time statistics for as long as the returned fd is open.
fn enable_stats() -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper with no pointer arguments.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        bail!(
            "enabling BPF run-time stats: {}",
            std::io::Error::from_raw_os_error(-fd)
        );
    }
    // SAFETY: `fd` is a fresh descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// (run_cnt, run_time_ns) of a loaded program.
fn run_stats(fd: i32) -> Option<(u64, u64)> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is a writable bpf_prog_info and `len` holds its size.
    let r = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    (r == 0).then_some((info.run_cnt, info.run_time_ns))
}
