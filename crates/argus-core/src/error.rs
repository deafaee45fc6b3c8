//! The one error type of `argus-core`.

use std::io;
use std::path::{Path, PathBuf};

use crate::escape::EscapedPath;

/// Everything that can go wrong in `argus-core`.
///
/// File-system variants carry the path concerned; messages are lowercase without a trailing
/// period, and the underlying cause is exposed as the error's `source`, not repeated in the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {op} {}", EscapedPath(path))]
    Io {
        /// What was attempted, e.g. `"create"` or `"fsync"`.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Publishing or moving would have replaced an existing file, which this crate never does.
    #[error("{} already exists and is never replaced", EscapedPath(path))]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file name given to the publisher is not a plain, single path component.
    #[error("{name:?} is not a valid file name: {reason}")]
    InvalidName {
        /// The offending name (lossily converted for display).
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A compression setting (config value or recipe command) was not understood.
    #[error("invalid compression {input:?}: {reason}")]
    InvalidCompression {
        /// The text that was given.
        input: String,
        /// What is accepted instead.
        reason: String,
    },
    /// A compression format whose cargo feature (`gzip`, `bzip2` or `xz`) was off when this
    /// crate was built.
    #[error("{format} is not compiled into this build (cargo feature `{format}` of argus-core)")]
    CodecUnavailable {
        /// The format's name, which is also its feature's.
        format: &'static str,
    },
    /// Another process holds the lock.
    #[error("{} is locked by another process{}", EscapedPath(path), holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into the lock file (its pid), when readable.
        holder: Option<String>,
    },
}

impl Error {
    /// True when the underlying cause is a full file system or exhausted quota.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if is_disk_full(source))
    }

    /// The operating system error, if this is a file-system error.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// True when an I/O error means "no space left on device" or "disk quota exceeded".
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    ) || err.kind() == io::ErrorKind::StorageFull
        || err.kind() == io::ErrorKind::QuotaExceeded
}

/// A `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with all its causes, `a: b: c`, as both programs print errors; when the cause is a
/// full file system (or quota), a hint follows, since nothing is lost and a run after freeing
/// space catches up.
///
/// ```
/// let e = argus_core::publish::sync_dir(std::path::Path::new("/nonexistent/dir")).unwrap_err();
/// let text = argus_core::error_chain(&e);
/// // The operation and path, then the operating system's own words.
/// assert!(text.contains(" /nonexistent/dir: No such file or directory"), "{text}");
/// ```
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        cur = cause.source();
    }
    if find_io(e).is_some_and(is_disk_full) {
        s.push_str(" (the disk is full: free space, then run again; nothing was lost)");
    }
    s
}

/// The first `io::Error` in an error's chain of causes.
fn find_io<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// Attaches the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
