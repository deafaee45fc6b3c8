//! The one error type of `webjob-drop`.

use std::io;
use std::path::{Path, PathBuf};

use argus_core::escape::{Escaped, EscapedPath};

use crate::file_kind::FileKind;

/// Everything that can go wrong in `webjob-drop`.
///
/// Variants carry the path or the configuration value concerned; messages are lowercase without a
/// trailing period, untrusted names in them are escaped, and an underlying cause is exposed as the
/// error's `source`, never repeated in the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {op} {}", EscapedPath(path))]
    Io {
        /// What was attempted, e.g. `"open"` or `"read directory"`.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A part of an upload is not a regular file (a symbolic link, FIFO, directory, ...).
    #[error("{} is a {file_type}, not a regular file", EscapedPath(path))]
    NotRegular {
        /// The path concerned.
        path: PathBuf,
        /// What it is instead.
        file_type: FileKind,
    },
    /// A part is no longer the file the scan saw (replaced, moved, or its size changed).
    #[error("{} changed since the dropzone was scanned", EscapedPath(path))]
    Changed {
        /// The path concerned.
        path: PathBuf,
    },
    /// A text part (`.env`, `.rdy`) is larger than this crate reads into memory.
    #[error("{} is larger than {limit} bytes", EscapedPath(path))]
    TooLarge {
        /// The path concerned.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A configured client id or glob is not acceptable.
    #[error("invalid client selection {}: {reason}", Escaped(pattern.as_bytes()))]
    InvalidClient {
        /// The configured value.
        pattern: String,
        /// Why it is refused.
        reason: String,
    },
    /// A configured job name is not acceptable.
    #[error("invalid job name {}: {reason}", Escaped(job.as_bytes()))]
    InvalidJob {
        /// The configured value.
        job: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A directory given to [`Dropzone::scan_group`](crate::Dropzone::scan_group) is not the
    /// dropzone or one of its subdirectories within the scan depth.
    #[error(
        "{} is not within the scan depth of the dropzone {}",
        EscapedPath(path),
        EscapedPath(dropzone)
    )]
    OutsideDropzone {
        /// The directory given.
        path: PathBuf,
        /// The dropzone.
        dropzone: PathBuf,
    },
    /// The quarantine directory lies inside the dropzone, where a scan would find the quarantined
    /// groups again.
    #[error(
        "quarantine directory {} is inside the dropzone {}",
        EscapedPath(quarantine),
        EscapedPath(dropzone)
    )]
    QuarantineInsideDropzone {
        /// The quarantine directory.
        quarantine: PathBuf,
        /// The dropzone.
        dropzone: PathBuf,
    },
    /// The quarantine directory is on another file system than the group, so parts cannot be
    /// moved atomically by renaming.
    #[error(
        "quarantine directory {} is not on the file system of {}",
        EscapedPath(quarantine),
        EscapedPath(dir)
    )]
    CrossDevice {
        /// The quarantine directory.
        quarantine: PathBuf,
        /// The group's directory.
        dir: PathBuf,
    },
    /// An interrupted quarantine could not be understood and was left as it is for an operator.
    #[error(
        "interrupted quarantine {} left untouched: {reason}",
        EscapedPath(path)
    )]
    Recovery {
        /// The pending quarantine directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A quarantined group cannot be sent back to the dropzone.
    #[error("cannot requeue {}: {reason}", EscapedPath(path))]
    Requeue {
        /// The group's directory in the quarantine.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// An error of the shared building blocks (durable moves, directory syncs).
    #[error(transparent)]
    Core(#[from] argus_core::Error),
}

impl Error {
    /// The operating system error behind this error, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Core(core) => core.io_error(),
            _ => None,
        }
    }

    /// True when the underlying cause is a full file system or an exhausted quota.
    pub fn is_disk_full(&self) -> bool {
        self.io_error().is_some_and(argus_core::is_disk_full)
    }
}

/// A `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
