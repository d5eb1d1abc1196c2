//! The library's error type: every variant prints as one line a user can act on.

use std::path::PathBuf;

use crate::model::{Backend, Hook};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "sirqtop needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo"
    )]
    NotPrivileged,
    #[error("kernel BTF not found at /sys/kernel/btf/vmlinux: sirqtop needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error(
        "--probe {backend}: {hook}: {reason}; use --probe auto to pick what this kernel supports"
    )]
    ForcedBackendUnavailable {
        backend: Backend,
        hook: Hook,
        reason: String,
    },
    #[error("no probe could be attached: {0}")]
    NothingAttached(String),
    /// --filter: libpcap's refusal, or the kernel's, in one line.
    #[error("{0}")]
    Filter(String),
    #[error("loading the BPF programs failed: {0}")]
    Load(String),
    // Causes are part of the message, not a `source`: printed once with `{:#}` too.
    #[error("reading BPF map {map}: {error}")]
    Map {
        map: &'static str,
        error: libbpf_rs::Error,
    },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("cannot write {}: {}", path.display(), os_message(error))]
    Output {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot listen on {addr}: {}", os_message(error))]
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    WebConfig(#[from] crate::serve::webconfig::WebConfigError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The OS's own words for an I/O error, without the paths some wrappers append.
fn os_message(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        // tempfile appends ` at path "..."`: the path is already in our message.
        None => e
            .to_string()
            .split(" at path ")
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}
