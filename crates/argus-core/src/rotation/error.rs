//! The errors of a rotation, one enum per step: the state files ([`StateError`]), the cut
//! ([`CutError`]), the wait for the writer to let go ([`NotFinal`]) and shipping
//! ([`ShipError`]).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::escape::EscapedPath;

/// Why the state next to the output (staged chunks, sequence counter) could not be read or
/// written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The counter holds neither a sealed line nor a bare number: it is never read as 0, or
    /// numbers would repeat.
    #[error(
        "sequence counter {} holds {found:?}, not a number or a damaged line; put the last seq \
         shipped (see the manifest lines in the uploads' .err files) into it",
        EscapedPath(path)
    )]
    BadCounter {
        /// The counter file.
        path: PathBuf,
        /// Its first 40 characters.
        found: String,
    },
    /// Every number has been given out.
    #[error("the sequence counter is exhausted")]
    Exhausted,
    /// Reading the directory or the counter, renaming, syncing, replacing or removing a state
    /// file failed.
    #[error(transparent)]
    Fs(#[from] crate::Error),
}

/// Why the output was not cut.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CutError {
    /// The output could not be looked at.
    #[error("cannot stat {}", EscapedPath(path))]
    Stat {
        /// The output.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The output is a directory, a link or a special file: it is left alone.
    #[error("{} is not a regular file; it is left alone", EscapedPath(path))]
    NotAFile {
        /// The output.
        path: PathBuf,
    },
    /// No sequence number could be given out, so the output is not cut.
    #[error("no sequence number for the chunk, so the output is not cut")]
    Counter(#[source] StateError),
    /// The rename failed.
    #[error("cannot cut {}", EscapedPath(path))]
    Rename {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::Error,
    },
}

/// The chunk did not become final; it stays staged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotFinal {
    /// The staged chunk could not be looked at.
    #[error("cannot stat {}", EscapedPath(path))]
    Stat {
        /// The staged chunk.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Something still writes the chunk long after the cut.
    #[error(
        "{} is still being written {} s after it was cut; it stays staged for the next run",
        EscapedPath(path),
        since_rename.as_secs()
    )]
    StillWritten {
        /// The staged chunk.
        path: PathBuf,
        /// How long after the rename the wait gave up.
        since_rename: Duration,
    },
}

/// Why a chunk was not shipped completely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// The chunk could not be read.
    #[error("cannot read {}", EscapedPath(path))]
    Read {
        /// The staged chunk.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The output refused the bytes (its reader went away, a full disk behind a redirection).
    #[error("cannot write the chunk out{}", if .0.kind() == io::ErrorKind::BrokenPipe {
        " (broken pipe: its reader has gone away)"
    } else {
        ""
    })]
    Write(#[source] io::Error),
}

/// Why a staged chunk was not delivered; it stays staged under its number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The writer did not let go of the chunk in time.
    #[error(transparent)]
    NotFinal(#[from] NotFinal),
    /// An earlier chunk's write to the output failed, so nothing more is shipped.
    #[error("chunk seq={seq} is not shipped: writing to the output failed before")]
    OutFailed {
        /// The chunk's sequence number.
        seq: u64,
    },
    /// Shipping failed.
    #[error("chunk seq={seq} was not shipped")]
    Ship {
        /// The chunk's sequence number.
        seq: u64,
        /// Why.
        #[source]
        source: ShipError,
    },
    /// Archiving failed after the chunk was shipped.
    #[error(
        "cannot archive chunk seq={seq}{}",
        if source.is_disk_full() { " (the archive's file system is full)" } else { "" }
    )]
    Archive {
        /// The chunk's sequence number.
        seq: u64,
        /// Why.
        #[source]
        source: crate::archive::ArchiveError,
    },
}
