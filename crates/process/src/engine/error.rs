//! [`Fatal`], the failure that stops a pass or the daemon with an exit status, and the
//! rendering of an error with its causes (argus-core's, shared with harvest_argus).

pub(crate) use argus_core::error_chain;

use crate::exit::Exit;

/// A failure that stops the pass (or the daemon).
#[derive(Debug)]
pub(crate) struct Fatal {
    /// The exit status it calls for.
    pub(crate) exit: Exit,
    /// What happened.
    pub(crate) message: String,
}

impl Fatal {
    pub(crate) fn io(what: impl std::fmt::Display) -> Self {
        Fatal {
            exit: Exit::Io,
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
        let exit = match e {
            argus_core::Error::Locked { .. } => Exit::Locked,
            _ => Exit::Io,
        };
        Fatal {
            exit,
            message: error_chain(&e),
        }
    }
}
