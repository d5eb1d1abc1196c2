//! A one-shot capture: attach, count for a duration (or until told to stop), snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::collector::{Collector, Config};
use crate::error::Result;
use crate::model::{CaptureMeta, Snapshot};

/// How often the ring buffer is drained while capturing.
pub const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// Runs a capture. `on_ready` is called once every probe is attached; `stop` ends the
/// capture early (Ctrl-C) and the snapshot then covers the time so far.
pub fn run(
    cfg: &Config,
    duration: Duration,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&CaptureMeta),
) -> Result<(CaptureMeta, Snapshot)> {
    let mut c = Collector::start(cfg)?;
    on_ready(c.meta());
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let left = duration.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(DRAIN_EVERY));
        c.poll()?;
    }
    let snap = c.snapshot()?;
    Ok((c.meta().clone(), snap))
}
