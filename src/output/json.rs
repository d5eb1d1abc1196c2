//! The JSON capture document, schema v1 (a public contract: see README "JSON schema").

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    Availability, CaptureMeta, Histogram, Hook, Interface, Snapshot, VectorStats, VECTOR_NAMES,
};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    pub schema_version: u32,
    pub tool: Tool,
    pub kernel: Kernel,
    pub capture: CaptureInfo,
    pub interfaces: Vec<JsonInterface>,
    pub cpus: Vec<JsonCpu>,
    pub loss: JsonLoss,
    pub overhead: Overhead,
    /// Kernel stacks that raised NET_RX/NET_TX, most raises first (empty with --no-stacks).
    #[serde(default)]
    pub raise_sites: Vec<JsonRaiseSite>,
    /// Where packets first sent by a veth were received, hop by hop, most softirq time
    /// first (empty with --lite).
    #[serde(default)]
    pub paths: Vec<JsonPath>,
}

/// One end or hop of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPathEnd {
    pub netns_inode: u32,
    pub ifindex: u32,
    #[serde(default)]
    pub netns_cookie: u64,
    pub name: Option<String>,
    pub netns_label: Option<String>,
}

/// One hop's share of a path's cost: its receiver's own numbers per received packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonHopCost {
    pub interface: JsonPathEnd,
    pub backlog_enqueues_per_packet: Option<f64>,
    pub net_rx_raises_per_packet: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonPath {
    pub from: JsonPathEnd,
    pub to: JsonPathEnd,
    pub hops: u32,
    /// The receivers before `to`, in order.
    pub via: Vec<JsonPathEnd>,
    pub packets: u64,
    /// Packets whose first transmit ran in a NET_RX softirq (a reply, clone or copy made
    /// while receiving another packet): their path may have begun earlier.
    pub origin_in_softirq: u64,
    pub backlog_enqueues_per_packet: f64,
    pub net_rx_raises_per_packet: Option<f64>,
    pub softirq_ns_per_packet: Option<f64>,
    pub hop_costs: Vec<JsonHopCost>,
    /// First transmit -> received by `to`.
    pub latency: JsonHist,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonIfaceRef {
    pub netns_inode: u32,
    pub ifindex: u32,
    #[serde(default)]
    pub netns_cookie: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRaiseSite {
    /// The interface whose backlog enqueue caused these raises; null when none did.
    pub interface: Option<JsonIfaceRef>,
    pub vector: String,
    /// Raises apportioned to this stack by its share of the samples; per (interface,
    /// vector) the counts sum to that interface's raises.
    pub count: u64,
    /// Raises whose stack was actually sampled here.
    pub samples: u64,
    /// Innermost first, as `function+0xoffset`.
    pub frames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    pub release: String,
    /// Logical hook -> "kprobe" | "fentry" | "tracepoint"; a hook that could not be
    /// attached is absent and its metrics are null.
    pub backends: BTreeMap<String, String>,
    /// Logical hook -> exact mechanism ("tp_btf", "raw_tp", "fentry", "kprobe").
    #[serde(default)]
    pub mechanisms: BTreeMap<String, String>,
    /// Why a better backend was not used, one line per skipped candidate.
    pub fallbacks: Vec<String>,
    /// What the capture's own numbers say a hook missed (see README, Troubleshooting).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    pub started_at: String,
    pub duration_ns: u64,
    pub netns_filter: Vec<u32>,
    #[serde(default)]
    pub ncpus: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonPeer {
    pub netns_inode: u32,
    pub ifindex: u32,
    pub name: Option<String>,
    #[serde(default)]
    pub netns_cookie: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonInterface {
    pub netns_inode: u32,
    /// Never reused, unlike the inode: two pods whose namespaces had the same inode have
    /// different cookies. 0 on kernels without netns cookies (< 5.12).
    #[serde(default)]
    pub netns_cookie: u64,
    pub netns_name: Option<String>,
    #[serde(default)]
    pub netns_label: Option<String>,
    /// The container owning the namespace (from its first process's cgroup), if any.
    #[serde(default)]
    pub container: Option<crate::netns::ContainerRef>,
    pub ifindex: u32,
    pub name: String,
    pub kind: Option<String>,
    pub peer: Option<JsonPeer>,
    #[serde(default)]
    pub gone: bool,
    pub tx_packets: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_enqueued: Option<u64>,
    pub rx_packets: Option<u64>,
    pub net_rx_raises: Option<u64>,
    pub softirq_ns: Option<u64>,
    pub softirq_ns_per_packet: Option<f64>,
    /// skbs freed as dropped while on this device (null without the skb:kfree_skb hook).
    #[serde(default)]
    pub dropped: Option<u64>,
    /// Those drops by kernel drop reason.
    #[serde(default)]
    pub drop_reasons: BTreeMap<String, u64>,
    /// How its packets were received: backlog (netif_rx), napi (its own NAPI poll), both.
    #[serde(default)]
    pub rx_path: Option<crate::model::RxPath>,
    /// Packets received without a backlog enqueue, i.e. from the device's own NAPI (null
    /// with --lite).
    #[serde(default)]
    pub napi_packets: Option<u64>,
    /// Polls of the device's own NAPI (null unless --napi-polls).
    #[serde(default)]
    pub napi_polls: Option<u64>,
    pub latency: Latency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub veth_hop: Option<JsonHist>,
    pub backlog_wait: Option<JsonHist>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonHist {
    pub unit: String,
    pub count: u64,
    pub sum: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: u64,
    /// Non-empty log2 buckets: `count` values fell in (previous bucket's le, le].
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub le: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonCpu {
    pub cpu: u32,
    pub softirqs: BTreeMap<String, JsonVector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonVector {
    pub raises: Option<u64>,
    pub runs: Option<u64>,
    pub run_ns: Option<u64>,
    pub ksoftirqd_runs: Option<u64>,
    pub run_hist: Option<JsonHist>,
    pub raise_to_run_hist: Option<JsonHist>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLoss {
    pub ringbuf_dropped: u64,
    pub inflight_evicted: u64,
    #[serde(default)]
    pub iface_table_full: u64,
    #[serde(default)]
    pub raises_unattributed: u64,
    #[serde(default)]
    pub stack_lost: u64,
    #[serde(default)]
    pub inflight_stale: u64,
    #[serde(default)]
    pub drop_reasons_full: u64,
    #[serde(default)]
    pub path_table_full: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overhead {
    /// Whether kernel BPF run-time stats were on (`--bpf-stats`); if not, run_count and
    /// run_time_ns are null.
    #[serde(default)]
    pub stats_enabled: bool,
    pub programs: Vec<JsonProgram>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonProgram {
    pub name: String,
    pub hook: String,
    pub backend: String,
    pub run_count: Option<u64>,
    pub run_time_ns: Option<u64>,
}

impl JsonHist {
    pub fn from_hist(h: &Histogram) -> JsonHist {
        JsonHist {
            unit: "ns".into(),
            count: h.count,
            sum: h.sum,
            p50: h.quantile(0.50),
            p90: h.quantile(0.90),
            p99: h.quantile(0.99),
            max: h.max,
            buckets: h
                .nonzero_buckets()
                .map(|(le, count)| Bucket { le, count })
                .collect(),
        }
    }

    /// Back to a histogram (for diffs of two captures).
    pub fn to_hist(&self) -> Histogram {
        let mut h = Histogram::from_parts(self.count, self.sum, self.max, Default::default());
        // Counts come from a file: saturate rather than overflow.
        for b in &self.buckets {
            let slot = &mut h.buckets[crate::model::hist::bucket_of(b.le)];
            *slot = slot.saturating_add(b.count);
        }
        h
    }
}

fn opt<T>(available: bool, v: T) -> Option<T> {
    available.then_some(v)
}

fn interface(i: &Interface, a: &Availability) -> JsonInterface {
    JsonInterface {
        netns_inode: i.key.netns,
        netns_cookie: i.key.cookie,
        netns_name: i.netns_name.clone(),
        netns_label: Some(i.netns_label.clone()),
        container: i.container.clone(),
        ifindex: i.key.ifindex,
        name: i.name.clone(),
        kind: i.kind.clone(),
        peer: i.peer.as_ref().map(|p| JsonPeer {
            netns_inode: p.netns,
            ifindex: p.ifindex,
            name: p.name.clone(),
            netns_cookie: p.cookie,
        }),
        gone: i.gone,
        tx_packets: opt(a.tx, i.counters.tx_packets),
        tx_bytes: opt(a.tx, i.counters.tx_bytes),
        rx_enqueued: opt(a.enqueue, i.counters.rx_enqueued),
        rx_packets: opt(a.receive, i.counters.rx_packets),
        net_rx_raises: opt(a.raises, i.counters.net_rx_raises),
        softirq_ns: opt(a.softirq_time, i.counters.softirq_ns),
        softirq_ns_per_packet: if a.softirq_time {
            i.softirq_ns_per_packet()
        } else {
            None
        },
        dropped: opt(a.drops, i.counters.dropped),
        drop_reasons: i.drop_reasons.clone(),
        rx_path: i.rx_path(),
        napi_packets: opt(a.backlog_wait, i.counters.napi_packets),
        napi_polls: opt(a.napi, i.counters.napi_polls),
        latency: Latency {
            veth_hop: opt(a.veth_hop, JsonHist::from_hist(&i.veth_hop)),
            backlog_wait: opt(a.backlog_wait, JsonHist::from_hist(&i.backlog_wait)),
        },
    }
}

fn json_paths(snap: &Snapshot, a: &Availability) -> Vec<JsonPath> {
    let end = |k: crate::model::IfaceKey| {
        let i = snap.interface(k);
        JsonPathEnd {
            netns_inode: k.netns,
            ifindex: k.ifindex,
            netns_cookie: k.cookie,
            name: i.map(|i| i.name.clone()),
            netns_label: i.map(|i| i.netns_label.clone()),
        }
    };
    snap.paths(a)
        .iter()
        .map(|p| JsonPath {
            from: end(p.from),
            to: end(p.to),
            hops: p.hops,
            via: p.via.iter().map(|k| end(*k)).collect(),
            packets: p.packets,
            origin_in_softirq: p.origin_softirq,
            backlog_enqueues_per_packet: p.backlog_enqueues_per_packet,
            net_rx_raises_per_packet: p.net_rx_raises_per_packet(),
            softirq_ns_per_packet: p.softirq_ns_per_packet(),
            hop_costs: p
                .hop_costs
                .iter()
                .map(|h| JsonHopCost {
                    interface: end(h.receiver),
                    backlog_enqueues_per_packet: h.backlog_enqueues_per_packet,
                    net_rx_raises_per_packet: h.net_rx_raises_per_packet,
                    softirq_ns_per_packet: h.softirq_ns_per_packet,
                })
                .collect(),
            latency: JsonHist::from_hist(&p.latency),
        })
        .collect()
}

fn vector(v: &VectorStats, a: &Availability) -> JsonVector {
    JsonVector {
        raises: opt(a.cpu_raises, v.raises),
        runs: opt(a.softirq_runs, v.runs),
        run_ns: opt(a.softirq_runs, v.run_ns),
        ksoftirqd_runs: opt(a.softirq_runs, v.ksoftirqd_runs),
        run_hist: opt(a.softirq_runs, JsonHist::from_hist(&v.run)),
        raise_to_run_hist: opt(
            a.cpu_raises && a.softirq_runs,
            JsonHist::from_hist(&v.raise_to_run),
        ),
    }
}

impl Capture {
    pub fn new(meta: &CaptureMeta, snap: &Snapshot) -> Capture {
        let a = &meta.availability;
        let mut backends = BTreeMap::new();
        let mut mechanisms = BTreeMap::new();
        for (hook, (backend, mech)) in &meta.probes.attached {
            backends.insert(hook.as_str().to_string(), backend.as_str().to_string());
            mechanisms.insert(hook.as_str().to_string(), mech.clone());
        }
        let mut interfaces: Vec<JsonInterface> = snap
            .interfaces
            .iter()
            .filter(|i| i.is_active())
            .map(|i| interface(i, a))
            .collect();
        interfaces.sort_by_key(|i| (i.netns_inode, i.ifindex));
        Capture {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "sirqtop".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            kernel: Kernel {
                release: meta.kernel_release.clone(),
                backends,
                mechanisms,
                fallbacks: meta.probes.fallbacks.clone(),
                warnings: crate::model::coverage_warnings(&meta.probes, snap),
            },
            capture: CaptureInfo {
                started_at: rfc3339(meta.started_at),
                duration_ns: snap.elapsed_ns,
                netns_filter: meta.netns_filter.clone(),
                ncpus: meta.ncpus,
            },
            interfaces,
            cpus: snap
                .cpus
                .iter()
                .map(|c| JsonCpu {
                    cpu: c.cpu,
                    softirqs: VECTOR_NAMES
                        .iter()
                        .zip(c.vectors.iter())
                        .map(|(n, v)| (n.to_string(), vector(v, a)))
                        .collect(),
                })
                .collect(),
            loss: JsonLoss {
                ringbuf_dropped: snap.loss.ringbuf_dropped,
                inflight_evicted: snap.loss.inflight_evicted,
                iface_table_full: snap.loss.iface_table_full,
                raises_unattributed: snap.loss.raises_unattributed,
                stack_lost: snap.loss.stack_lost,
                inflight_stale: snap.loss.inflight_stale,
                drop_reasons_full: snap.loss.drop_reasons_full,
                path_table_full: snap.loss.path_table_full,
            },
            overhead: Overhead {
                stats_enabled: snap.programs.iter().any(|p| p.run_count.is_some()),
                programs: snap
                    .programs
                    .iter()
                    .map(|p| JsonProgram {
                        name: p.name.clone(),
                        hook: p.hook.as_str().into(),
                        backend: p.backend.as_str().into(),
                        run_count: p.run_count,
                        run_time_ns: p.run_time_ns,
                    })
                    .collect(),
            },
            raise_sites: snap
                .raise_sites
                .iter()
                .map(|r| JsonRaiseSite {
                    interface: r.iface.map(|k| JsonIfaceRef {
                        netns_inode: k.netns,
                        ifindex: k.ifindex,
                        netns_cookie: k.cookie,
                    }),
                    vector: VECTOR_NAMES.get(r.vector).unwrap_or(&"?").to_string(),
                    count: r.count,
                    samples: r.samples,
                    frames: r.frames.clone(),
                })
                .collect(),
            paths: json_paths(snap, a),
        }
    }

    /// Reads a capture file, refusing other schema versions with a one-line error.
    pub fn from_json(text: &str) -> std::result::Result<Capture, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a sirqtop JSON capture: {e}"))?;
        match v.get("schema_version").and_then(|s| s.as_u64()) {
            Some(n) if n == SCHEMA_VERSION as u64 => {}
            Some(n) => {
                return Err(format!(
                    "unsupported schema_version {n} (this sirqtop reads {SCHEMA_VERSION})"
                ))
            }
            None => return Err("not a sirqtop JSON capture: no schema_version".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("malformed sirqtop capture: {e}"))
    }

    pub fn hook_backend(&self, hook: Hook) -> Option<&str> {
        self.kernel.backends.get(hook.as_str()).map(|s| s.as_str())
    }
}

/// Where the document goes. A file appears at its path only once complete: it is
/// written as an unnamed file in the target's directory (O_TMPFILE), so that even a
/// killed capture leaves nothing behind, and then linked in. File systems without
/// O_TMPFILE get a named temp file in the same directory, renamed over the target.
pub enum Sink {
    Stdout,
    Unnamed {
        path: PathBuf,
        file: std::fs::File,
    },
    Named {
        path: PathBuf,
        tmp: tempfile::NamedTempFile,
    },
}

impl Sink {
    /// Opens the destination now, so an unwritable path fails before any capture.
    pub fn open(path: Option<&Path>) -> Result<Sink> {
        let Some(path) = path else {
            return Ok(Sink::Stdout);
        };
        let err = |error| Error::Output {
            path: path.to_path_buf(),
            error,
        };
        if path.is_dir() {
            return Err(err(std::io::Error::other("is a directory")));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match atomic::open_unnamed(&dir) {
            Ok(file) => {
                return Ok(Sink::Unnamed {
                    path: path.to_path_buf(),
                    file,
                })
            }
            Err(e) if !atomic::unsupported(&e) => return Err(err(e)),
            Err(_) => {}
        }
        let tmp = tempfile::Builder::new()
            .prefix(".sirqtop-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(err)?;
        Ok(Sink::Named {
            path: path.to_path_buf(),
            tmp,
        })
    }

    pub fn write(self, cap: &Capture) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(cap)?;
        text.push(b'\n');
        match self {
            Sink::Stdout => Ok(crate::output::write_stdout(&text)?),
            Sink::Unnamed { path, mut file } => {
                let err = |error| Error::Output {
                    path: path.clone(),
                    error,
                };
                file.write_all(&text).map_err(err)?;
                file.sync_all().map_err(err)?;
                atomic::link_into_place(&file, &path).map_err(err)
            }
            Sink::Named { path, mut tmp } => {
                let err = |error| Error::Output {
                    path: path.clone(),
                    error,
                };
                tmp.as_file_mut().write_all(&text).map_err(err)?;
                tmp.as_file_mut().sync_all().map_err(err)?;
                tmp.persist(&path).map_err(|e| err(e.error))?;
                Ok(())
            }
        }
    }
}

/// Unnamed files (O_TMPFILE) linked in once complete.
mod atomic {
    use std::ffi::CString;
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};

    /// An unnamed regular file in `dir`, gone with the process unless linked in.
    pub fn open_unnamed(dir: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
    }

    /// The errors by which a kernel or file system says it has no O_TMPFILE.
    pub fn unsupported(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
        )
    }

    fn c_path(p: &Path) -> io::Result<CString> {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// Gives the unnamed `file` a name: `path` itself when nothing is there yet (one
    /// atomic step), else a fresh temp name in the same directory renamed over `path`.
    pub fn link_into_place(file: &File, path: &Path) -> io::Result<()> {
        match link(file, path) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            Err(_) => {}
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        for attempt in 0u32..100 {
            let tmp = dir.join(format!(".sirqtop-{}-{attempt}.tmp", std::process::id()));
            match link(file, &tmp) {
                Ok(()) => {
                    return std::fs::rename(&tmp, path).inspect_err(|_| {
                        let _ = std::fs::remove_file(&tmp);
                    })
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }

    /// linkat(2) of an open unnamed file: by its fd (AT_EMPTY_PATH, needs
    /// CAP_DAC_READ_SEARCH), else through /proc/self/fd.
    fn link(file: &File, to: &Path) -> io::Result<()> {
        let to = c_path(to)?;
        let empty = c"";
        // SAFETY: both strings are NUL-terminated and outlive the call; the fd is open.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EPERM)) {
            return Err(e);
        }
        let proc = c_path(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))?;
        // SAFETY: as above.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                proc.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// RFC 3339 UTC timestamp with microseconds, e.g. `2026-11-25T00:05:47.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, CpuStats, IfaceKey, Loss, PeerRef, ProbeReport, ProgramCost};
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
}
