//! `sirqtop serve`: attach once, keep counting, and serve the latest snapshot to
//! Prometheus. The collector stays on the calling thread (it owns the skeleton); the HTTP
//! server ([`server`], answering with [`routes`]) runs on a thread of its own, with TLS
//! ([`tls`]) and basic auth ([`auth`]) from the web config ([`webconfig`]). A scrape gets
//! the last published snapshot encoded once ([`cache`], [`exposition`], whose families
//! are written by [`interfaces`], [`softirq`] and [`own`] with the helpers of
//! [`encode`]); the interface series ([`series`]) are folded at publish time so that
//! every series stays a counter ([`fold`]).

pub mod auth;
pub mod cache;
pub mod encode;
pub mod exposition;
#[cfg(test)]
mod fixtures;
pub mod fold;
pub mod interfaces;
pub mod options;
pub mod own;
pub mod payers;
pub mod routes;
pub mod series;
pub mod server;
pub mod softirq;
pub mod tls;
pub mod webconfig;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collector::{Collector, Config};
use crate::error::Result;
use crate::model::{CaptureMeta, IfaceKey, Snapshot};

pub use exposition::{Exposition, Published};
pub use options::{HistFamily, MetricsOptions};

/// The default listen address: loopback only, on a port no well-known exporter uses
/// (the Prometheus wiki's port allocations end well below it).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9864";

/// How long the series of an interface that is gone stay in the exposition, so that
/// the last scrape after it went sees its final numbers.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// How often a fresh snapshot is published for scrapes.
    pub refresh: Duration,
    pub forget_after: Duration,
    pub metrics: MetricsOptions,
    /// `--web.config.file`: TLS, basic auth and headers (exporter-toolkit format).
    pub web_config: Option<PathBuf>,
    pub limits: server::Limits,
}

/// Drops interfaces that have been gone longer than `forget_after` from a snapshot to be
/// published; `gone_since` remembers when each was first seen gone.
pub fn forget_gone(
    snap: &mut Snapshot,
    gone_since: &mut HashMap<IfaceKey, Instant>,
    now: Instant,
    forget_after: Duration,
) {
    gone_since.retain(|k, _| snap.interfaces.iter().any(|i| i.key == *k && i.gone));
    snap.interfaces.retain(|i| {
        if !i.gone {
            return true;
        }
        let since = *gone_since.entry(i.key).or_insert(now);
        now.duration_since(since) < forget_after
    });
}

/// Serves until `stop` is set (SIGTERM/SIGINT). `on_ready` gets the capture facts, the
/// bound address and whether it is HTTPS once every probe is attached and the first
/// snapshot is published.
pub fn run(
    cfg: &Config,
    opts: &ServeOptions,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&CaptureMeta, SocketAddr, bool),
) -> Result<()> {
    // Read the web config and bind before attaching: a bad file or a busy port fails
    // without touching the kernel.
    let web = webconfig::WebConfig::open(opts.web_config.as_deref())?;
    let server = server::Server::bind(opts.listen, web, opts.limits)?;
    let (addr, tls) = (server.local_addr(), server.is_tls());
    // An interface gone past --forget-after is never shown again: the collector forgets it
    // then, so that churn costs nothing in memory or per refresh.
    let cfg = Config {
        forget_gone_after: Some(opts.forget_after),
        ..cfg.clone()
    };
    let mut collector = Collector::start(&cfg)?;
    let expo = Exposition::new(opts.metrics.clone());
    let meta = Arc::new(collector.meta().clone());
    let mut gone_since = HashMap::new();
    let mut publish = |c: &mut Collector| -> Result<()> {
        let mut snap = c.snapshot()?;
        forget_gone(
            &mut snap,
            &mut gone_since,
            Instant::now(),
            opts.forget_after,
        );
        expo.publish(Published {
            meta: Arc::clone(&meta),
            snap: Arc::new(snap),
        });
        Ok(())
    };
    publish(&mut collector)?;
    let handle = server.spawn(expo.clone())?;
    on_ready(&meta, addr, tls);
    let mut last = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        std::thread::sleep(crate::capture::DRAIN_EVERY);
        if let Err(e) = collector.poll() {
            break Err(e);
        }
        if last.elapsed() >= opts.refresh {
            last = Instant::now();
            if let Err(e) = publish(&mut collector) {
                break Err(e);
            }
        }
    };
    handle.stop();
    drop(collector);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Interface, Loss};

    #[test]
    fn gone_interfaces_are_forgotten_after_the_grace() {
        let mut live = Interface::new(IfaceKey::new(1, 1));
        live.counters.tx_packets = 1;
        let mut dead = Interface::new(IfaceKey::new(2, 1));
        dead.counters.tx_packets = 1;
        dead.gone = true;
        let snap = Snapshot {
            elapsed_ns: 0,
            interfaces: vec![live, dead],
            cpus: vec![],
            loss: Loss::default(),
            programs: vec![],
            raise_sites: vec![],
            path_hops: vec![],
            payers: vec![],
            timing: Default::default(),
        };
        let mut since = HashMap::new();
        let t0 = Instant::now();
        let grace = Duration::from_secs(300);
        let mut s = snap.clone();
        forget_gone(&mut s, &mut since, t0, grace);
        assert_eq!(s.interfaces.len(), 2, "still within the grace period");
        let mut s = snap.clone();
        forget_gone(&mut s, &mut since, t0 + Duration::from_secs(299), grace);
        assert_eq!(s.interfaces.len(), 2);
        let mut s = snap.clone();
        forget_gone(&mut s, &mut since, t0 + grace, grace);
        assert_eq!(s.interfaces.len(), 1);
        assert!(!s.interfaces[0].gone);
        // The clock of an interface that is no longer in snapshots is dropped.
        let mut s = snap;
        s.interfaces.truncate(1);
        forget_gone(&mut s, &mut since, t0 + grace, grace);
        assert!(since.is_empty());
    }
}
