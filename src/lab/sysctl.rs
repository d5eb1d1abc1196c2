//! Node-wide kernel settings changed for a test and put back when it ends.

use std::path::PathBuf;

use super::{io, Result};

/// A `/proc/sys` value set for as long as the guard lives: the old value is written back
/// on drop, so also when the test fails (a panic unwinds through it).
#[derive(Debug)]
pub struct SysctlGuard {
    path: PathBuf,
    old: String,
}

impl SysctlGuard {
    /// Sets `key` (dotted, e.g. `net.core.netdev_budget`) to `value`.
    pub fn set(key: &str, value: &str) -> Result<SysctlGuard> {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let old = std::fs::read_to_string(&path).map_err(io(format!("read {key}")))?;
        std::fs::write(&path, value).map_err(io(format!("set {key}={value}")))?;
        Ok(SysctlGuard {
            path,
            old: old.trim().to_string(),
        })
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.old) {
            eprintln!(
                "could not restore {} to {}: {e}",
                self.path.display(),
                self.old
            );
        }
    }
}
