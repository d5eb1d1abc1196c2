//! Faces that read snapshots: the JSON capture and the diff of two captures.
pub mod diff;
pub mod json;

use std::io::Write as _;

/// Writes to stdout and flushes. A closed pipe (`sirqtop --json | head`) is the reader's
/// choice, not a failure: it ends quietly.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
