//! The Prometheus exposition of a snapshot (a public contract, like the JSON schema: see
//! README "Prometheus metrics"). Pure: [`Exposition`] is a prometheus-client
//! [`Collector`] over the latest published snapshot; the families are written by
//! [`super::interfaces`], [`super::softirq`] and [`super::own`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use tokio::sync::OnceCell;

use super::cache::{Body, Encodings, Format};
use super::fold::Folder;
use super::interfaces::encode_interfaces;
use super::options::MetricsOptions;
use super::own::{encode_build_info, encode_self};
use super::series::Series;
use super::softirq::encode_softirqs;
use crate::model::{CaptureMeta, Snapshot};

/// A snapshot ready to be scraped: the serving loop replaces it, scrapes read it.
#[derive(Debug, Clone)]
pub struct Published {
    pub meta: Arc<CaptureMeta>,
    pub snap: Arc<Snapshot>,
}

/// What a scrape encodes: the last published snapshot, its interface series, and its
/// encodings once made.
#[derive(Debug, Clone)]
struct Latest {
    published: Published,
    series: Arc<Vec<Series>>,
    encodings: Arc<Encodings>,
}

/// The latest published snapshot, its encodings cached ([`Encodings`]).
#[derive(Debug, Clone)]
pub struct Exposition {
    latest: Arc<RwLock<Option<Latest>>>,
    /// The interface series' history: kept across publishes (see [`Folder`]).
    folder: Arc<Mutex<Folder>>,
    pub opts: Arc<MetricsOptions>,
    /// Encodings made (each format of each snapshot once): for tests and benchmarks.
    encoded: Arc<AtomicU64>,
}

/// A prometheus-client collector over one published snapshot (or none yet).
#[derive(Debug)]
struct Frozen {
    latest: Option<Latest>,
    opts: Arc<MetricsOptions>,
}

impl Exposition {
    pub fn new(opts: MetricsOptions) -> Exposition {
        Exposition {
            latest: Arc::new(RwLock::new(None)),
            folder: Arc::new(Mutex::new(Folder::new(opts.max_interfaces))),
            opts: Arc::new(opts),
            encoded: Arc::new(AtomicU64::new(0)),
        }
    }

    fn latest(&self) -> Option<Latest> {
        // A poisoned lock only means a scrape panicked mid-read: the data is whole.
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A registry holding the latest published snapshot.
    pub fn registry(&self) -> Registry {
        registry(self.latest(), &self.opts)
    }

    /// The latest snapshot's body in `format`: encoded by the first call that asks,
    /// shared by every later one until the next publish.
    pub fn body(&self, format: Format) -> Result<Arc<Body>, std::fmt::Error> {
        let cur = self.current();
        match &cur.latest {
            Some(l) => l.encodings.get(format, || cur.encode(format)),
            None => Ok(Arc::new(Body::new(cur.encode(format)?))),
        }
    }

    /// The latest published snapshot, to be encoded (or found encoded) by a server.
    pub fn current(&self) -> Current {
        Current {
            latest: self.latest(),
            opts: Arc::clone(&self.opts),
            encoded: Arc::clone(&self.encoded),
        }
    }

    /// How many encodings were made so far.
    pub fn encodings_made(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }

    /// Replaces what scrapes see. Publishes follow each other (one serving loop): the
    /// series grow from one to the next.
    pub fn publish(&self, p: Published) {
        let series = self
            .folder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fold(&p.snap.interfaces);
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = Some(Latest {
            published: p,
            series: Arc::new(series),
            encodings: Arc::new(Encodings::default()),
        });
    }

    pub fn is_ready(&self) -> bool {
        self.latest
            .read()
            .map(|l| l.is_some())
            .unwrap_or_else(|e| e.into_inner().is_some())
    }
}

/// One published snapshot (or none yet) as a server sees it: its encodings' cells and
/// what fills them.
#[derive(Debug, Clone)]
pub struct Current {
    latest: Option<Latest>,
    opts: Arc<MetricsOptions>,
    encoded: Arc<AtomicU64>,
}

impl Current {
    /// Where the body in `format` is kept; None before the first snapshot (nothing
    /// worth keeping: only the build info).
    pub fn cell(&self, format: Format) -> Option<&OnceCell<Arc<Body>>> {
        self.latest.as_ref().map(|l| l.encodings.cell(format))
    }

    /// Encodes the snapshot in `format` (the work the cell saves).
    pub fn encode(&self, format: Format) -> Result<String, std::fmt::Error> {
        if self.latest.is_some() {
            self.encoded.fetch_add(1, Ordering::Relaxed);
        }
        encode(&registry(self.latest.clone(), &self.opts), format)
    }
}

fn registry(latest: Option<Latest>, opts: &Arc<MetricsOptions>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Frozen {
        latest,
        opts: Arc::clone(opts),
    }));
    r
}

fn encode(r: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    match format {
        Format::OpenMetrics => encode_openmetrics(r),
        Format::Prometheus => encode_prometheus(r),
    }
}

/// Encodes in the OpenMetrics text format (with `# EOF`).
pub fn encode_openmetrics(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r)?;
    Ok(s)
}

/// Encodes in the Prometheus text format 0.0.4 (what `promtool check metrics` and older
/// scrapers read).
pub fn encode_prometheus(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut s, r)?;
    Ok(s)
}

impl Collector for Frozen {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self.latest.as_ref();
        encode_build_info(&mut enc, latest.map(|l| l.published.meta.as_ref()))?;
        let Some(l) = latest else {
            return Ok(());
        };
        let p = &l.published;
        encode_snapshot(&mut enc, &p.meta, &p.snap, &l.series, &self.opts)
    }
}

/// Every family of one snapshot.
pub fn encode_snapshot(
    enc: &mut DescriptorEncoder,
    meta: &CaptureMeta,
    snap: &Snapshot,
    series: &[Series],
    opts: &MetricsOptions,
) -> Result<(), std::fmt::Error> {
    let av = &meta.availability;
    encode_interfaces(enc, av, series, opts)?;
    encode_softirqs(enc, av, snap, opts)?;
    super::payers::encode_payers(enc, av, snap)?;
    encode_self(enc, meta, snap)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{iface, meta, render, snapshot};
    use super::super::options::HistFamily;
    use super::*;
    use crate::model::{Availability, Backend, Hook};

    #[test]
    fn families_follow_availability_and_options() {
        let mut m = meta();
        m.probes.attached.remove(&Hook::NetifRx);
        m.probes.attached.remove(&Hook::NapiPoll);
        m.availability = Availability::from_report(&m.probes);
        let expo = Exposition::new(MetricsOptions {
            no_histograms: vec![HistFamily::VethHop, HistFamily::SoftirqDelay],
            ..MetricsOptions::default()
        });
        expo.publish(Published {
            meta: Arc::new(m),
            snap: Arc::new(snapshot(vec![iface(1, 2, "a", "eth0", 1)])),
        });
        let text = encode_openmetrics(&expo.registry()).unwrap();
        assert!(!text.contains("backlog_enqueue"), "netif_rx not attached");
        assert!(
            !text.contains("sirqtop_interface_napi_polls"),
            "napi_poll not attached"
        );
        assert!(!text.contains("sirqtop_interface_veth_hop"));
        assert!(!text.contains("sirqtop_softirq_raise_to_run"));
        assert!(text.contains("sirqtop_softirq_run_duration_seconds_count{vector=\"NET_RX\"}"));
        assert!(text.contains("sirqtop_interface_transmit_packets_total{"));
        assert_eq!("all".parse::<HistFamily>().ok(), None);
        assert!("bogus"
            .parse::<HistFamily>()
            .unwrap_err()
            .contains("veth_hop, backlog_wait"));
    }

    #[test]
    fn before_the_first_snapshot_only_build_info() {
        let expo = Exposition::new(MetricsOptions::default());
        assert!(!expo.is_ready());
        let text = encode_openmetrics(&expo.registry()).unwrap();
        assert!(text.contains("sirqtop_build_info{version="), "{text}");
        assert!(!text.contains("sirqtop_interface"));
        assert!(!text.contains("sirqtop_filter"), "no --filter, no family");
    }

    #[test]
    fn a_filter_is_one_info_sample() {
        let expo = Exposition::new(MetricsOptions::default());
        let mut meta = super::super::fixtures::meta();
        meta.filter = Some(r#"tcp port 8080 and host "x""#.into());
        expo.publish(Published {
            meta: std::sync::Arc::new(meta),
            snap: std::sync::Arc::new(super::super::fixtures::snapshot(vec![])),
        });
        let text = encode_openmetrics(&expo.registry()).unwrap();
        assert!(
            text.contains(r#"sirqtop_filter_info{filter="tcp port 8080 and host \"x\""} 1"#),
            "{text}"
        );
    }

    /// The metric names the shipped dashboard and rules query (deploy/) are all in a full
    /// exposition: renaming a metric breaks this test, not a user's dashboard.
    #[test]
    fn deploy_queries_use_exposed_metric_names() {
        let mut a = iface(1, 2, "shop/web-0", "eth0", 5_000);
        a.counters.dropped = 1;
        a.veth_hop.record(2_000);
        a.backlog_wait.record(1_000);
        let mut snap = snapshot(vec![a]);
        snap.programs.push(crate::model::ProgramCost {
            name: "tp_netif_receive".into(),
            hook: Hook::NetifReceive,
            backend: Backend::Tracepoint,
            run_count: Some(5),
            run_time_ns: Some(500),
        });
        let text = render(snap, MetricsOptions::default(), true);
        let exposed: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
        let mut checked = 0;
        for file in ["grafana-dashboard.json", "prometheus-rules.yaml"] {
            let body = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut rest = body.as_str();
            while let Some(at) = rest.find("sirqtop_") {
                // A metric name, unless it is part of a recording rule's name (level:metric:op).
                let before = rest[..at].chars().last();
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                if before == Some(':') || rest.starts_with(':') {
                    continue;
                }
                assert!(
                    exposed.contains(name.as_str()),
                    "{file} uses {name}, not exposed"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked} names checked");
    }

    #[test]
    fn one_encoding_per_format_per_snapshot() {
        let expo = Exposition::new(MetricsOptions::default());
        let publish = || {
            expo.publish(Published {
                meta: Arc::new(meta()),
                snap: Arc::new(snapshot(vec![iface(1, 2, "a", "eth0", 1)])),
            })
        };
        publish();
        let first = expo.body(Format::Prometheus).unwrap();
        for _ in 0..100 {
            assert_eq!(expo.body(Format::Prometheus).unwrap().plain, first.plain);
        }
        assert_eq!(expo.encodings_made(), 1);
        let om = expo.body(Format::OpenMetrics).unwrap();
        assert!(om.plain.ends_with(b"# EOF\n"));
        assert_eq!(expo.encodings_made(), 2);
        publish();
        expo.body(Format::Prometheus).unwrap();
        assert_eq!(expo.encodings_made(), 3, "a new snapshot is encoded anew");
        assert_eq!(
            first.plain,
            encode_prometheus(&expo.registry()).unwrap().as_bytes(),
            "the same numbers, the same text"
        );
    }
}
