//! [`Fatal`], the failure that stops a pass or the daemon, with the kind of failure it is
//! ([`Failure`]) for the program to turn into its exit status, and the rendering of an error
//! with its causes (argus-core's, shared with harvest_argus).

pub use argus_core::error_chain;

/// What kind of failure stopped a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Something asked for does not exist (a quarantined group to requeue, say).
    Usage,
    /// An I/O failure (a full disk, say); nothing is lost, the next run completes the work.
    Io,
    /// Another instance holds the state directory's lock.
    Locked,
    /// The configuration cannot be used (a missing dropzone, directories that overlap).
    Config,
}

/// A failure that stops the pass (or the daemon).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Fatal {
    /// What kind of failure it is.
    pub kind: Failure,
    /// What happened, with its causes.
    pub message: String,
}

impl Fatal {
    /// An I/O failure described by `what`.
    pub fn io(what: impl std::fmt::Display) -> Self {
        Fatal {
            kind: Failure::Io,
            message: what.to_string(),
        }
    }
}

impl From<webjob_drop::Error> for Fatal {
    fn from(e: webjob_drop::Error) -> Self {
        Fatal::io(error_chain(&e))
    }
}

impl From<argus_core::Error> for Fatal {
    fn from(e: argus_core::Error) -> Self {
        let kind = match e {
            argus_core::Error::Locked { .. } => Failure::Locked,
            _ => Failure::Io,
        };
        Fatal {
            kind,
            message: error_chain(&e),
        }
    }
}
