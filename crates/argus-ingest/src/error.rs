//! [`Error`], what stops a pass or the daemon (or, for a few, what a pass could not finish while
//! it went on), typed by what failed with its cause as the source; [`Failure`], the kind of
//! failure a program turns into its exit status; [`Problem`], what the checks before a pass find
//! wrong with the configuration.

use std::fmt;
use std::path::PathBuf;

use argus_core::escape::EscapedPath;

pub use argus_core::error_chain;

/// The cause of an [`Error`]: an I/O error, or an error of the crate that did the work.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure stopped a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// An I/O failure (a full disk, say); nothing is lost, the next run completes the work.
    Io,
    /// Another instance holds the state directory's lock.
    Locked,
    /// The configuration cannot be used (a missing dropzone, directories that overlap).
    Config,
}

/// What the engine was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Opening a file or a store.
    Open,
    /// Reading.
    Read,
    /// Asking a file's size.
    Stat,
    /// Writing.
    Write,
    /// Forcing written data to the disk.
    Sync,
    /// Cutting a day file back to its size before a batch (recovery).
    Truncate,
    /// Appending again what a rollback cut off (recovery).
    Reappend,
    /// Writing an upload's archive.
    Archive,
    /// Compressing a closed day file.
    Compress,
    /// Scanning for uploads.
    Scan,
    /// Watching for new uploads (the daemon).
    Watch,
    /// Putting back a quarantine move a crash interrupted.
    Recover,
    /// Removing an expired quarantined group.
    Expire,
    /// Emptying a store once its work is done.
    Clear,
    /// Rewriting a store without its old entries.
    Compact,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Open => "open",
            Action::Read => "read",
            Action::Stat => "stat",
            Action::Write => "write",
            Action::Sync => "sync",
            Action::Truncate => "truncate",
            Action::Reappend => "append again to",
            Action::Archive => "archive",
            Action::Compress => "compress",
            Action::Scan => "scan",
            Action::Watch => "watch",
            Action::Recover => "recover",
            Action::Expire => "expire",
            Action::Clear => "clear",
            Action::Compact => "compact",
        })
    }
}

/// A place the engine keeps or reads as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    /// The WebJob dropzone.
    Dropzone,
    /// The quarantine.
    Quarantine,
    /// The journal of the batch being committed.
    Journal,
    /// The ledger of what was ingested.
    Ledger,
    /// The queue of hook events.
    HookQueue,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Dropzone => "the dropzone",
            Store::Quarantine => "the quarantine",
            Store::Journal => "the journal",
            Store::Ledger => "the ledger",
            Store::HookQueue => "the hook queue",
        })
    }
}

/// Something about the configuration that stops a pass before it starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A value the engine refuses ([`Config::check`](crate::config::Config::check)).
    #[error(transparent)]
    Invalid(#[from] crate::config::Invalid),
    /// The dropzone is not a directory.
    #[error("drop_dir {} is not a directory", EscapedPath(.0))]
    DropzoneNotDir(PathBuf),
    /// The dropzone cannot be reached.
    #[error("drop_dir {}: {source}", EscapedPath(path))]
    DropzoneMissing {
        /// The configured dropzone.
        path: PathBuf,
        /// Why it cannot be reached.
        source: std::io::Error,
    },
    /// A directory setting names something that is not a directory.
    #[error("{key} {} is not a directory", EscapedPath(path))]
    NotDir {
        /// The setting.
        key: &'static str,
        /// Its value.
        path: PathBuf,
    },
    /// A running daemon was given another state directory (it holds the old one's lock).
    #[error(
        "state_dir cannot change while running (from {} to {}); restart instead",
        EscapedPath(from),
        EscapedPath(to)
    )]
    StateDirChanged {
        /// The state directory in use.
        from: PathBuf,
        /// The one asked for.
        to: PathBuf,
    },
    /// A directory setting names a place below a file.
    #[error("{key} {} cannot be created", EscapedPath(path))]
    CannotCreate {
        /// The setting.
        key: &'static str,
        /// Its value.
        path: PathBuf,
    },
}

/// The problems, one after the other.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A failure of the engine. Its `Display` says what failed; the cause is its
/// [`source`](std::error::Error::source) ([`error_chain`] renders them all).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(Problems),
    /// A durable write, a lock or a clean-up of argus-core failed (another instance holding the
    /// lock is [`argus_core::Error::Locked`]).
    #[error(transparent)]
    Core(#[from] argus_core::Error),
    /// A group could not be moved or removed in the dropzone or the quarantine.
    #[error(transparent)]
    Dropzone(#[from] webjob_drop::Error),
    /// Too little free space to ingest (`min_free_space`).
    #[error(transparent)]
    Shortage(#[from] crate::space::Shortage),
    /// A whole store (the dropzone, the journal, ...) could not be used.
    #[error("cannot {action} {store}")]
    Store {
        /// What was being done.
        action: Action,
        /// To what.
        store: Store,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// A file the engine owns (a day file, an archive, a directory of its own).
    #[error("cannot {action} {}", EscapedPath(path))]
    File {
        /// What was being done.
        action: Action,
        /// To which file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// An upload could not be read or archived on this side (the upload stays; the next run
    /// takes it).
    #[error("cannot {action} {upload}")]
    Upload {
        /// What was being done.
        action: Action,
        /// The upload, as logged.
        upload: String,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// An upload could not be appended to its day file.
    #[error("cannot append {upload} to {}", EscapedPath(day))]
    Append {
        /// The upload, as logged.
        upload: String,
        /// The day file.
        day: PathBuf,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// A bad upload could not be moved to the quarantine; it stays in the dropzone.
    #[error("cannot quarantine {upload} ({reason}); it stays in the dropzone")]
    NotQuarantined {
        /// The upload, as logged.
        upload: String,
        /// Why it was to be quarantined.
        reason: String,
        /// Why the move failed.
        #[source]
        source: Cause,
    },
    /// A thread of the engine panicked (a bug: the journal repairs what it left).
    #[error("a thread of the engine panicked")]
    Panicked,
    /// The system would not start a thread (out of memory or of processes).
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
}

impl Error {
    /// The kind of failure, for an exit status.
    pub fn kind(&self) -> Failure {
        match self {
            Error::Config(_) => Failure::Config,
            Error::Core(argus_core::Error::Locked { .. }) => Failure::Locked,
            _ => Failure::Io,
        }
    }
}

/// Says what failed around an error, as an [`Error`] with the error as its source.
pub(crate) trait Context<T> {
    /// Failed doing `action` to `store`.
    fn or_store(self, action: Action, store: Store) -> Result<T, Error>;
    /// Failed doing `action` to the file at `path`.
    fn or_file(self, action: Action, path: &std::path::Path) -> Result<T, Error>;
    /// Failed doing `action` to the upload named `upload`.
    fn or_upload(self, action: Action, upload: &dyn fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Cause>> Context<T> for Result<T, E> {
    fn or_store(self, action: Action, store: Store) -> Result<T, Error> {
        self.map_err(|e| Error::Store {
            action,
            store,
            source: e.into(),
        })
    }

    fn or_file(self, action: Action, path: &std::path::Path) -> Result<T, Error> {
        self.map_err(|e| Error::File {
            action,
            path: path.to_path_buf(),
            source: e.into(),
        })
    }

    fn or_upload(self, action: Action, upload: &dyn fmt::Display) -> Result<T, Error> {
        self.map_err(|e| Error::Upload {
            action,
            upload: upload.to_string(),
            source: e.into(),
        })
    }
}
