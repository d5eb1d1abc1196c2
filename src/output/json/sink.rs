//! Where the document goes: stdout, or a file that appears only once complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Capture;
use crate::error::{Error, Result};

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
