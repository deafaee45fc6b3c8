//! [`Fatal`], the failure that stops a pass or the daemon with an exit status, and the
//! rendering of an error with its causes (and the disk-full hint).

use std::io;

use crate::exit;

/// A failure that stops the pass (or the daemon).
#[derive(Debug)]
pub struct Fatal {
    /// The exit status it calls for.
    pub code: u8,
    /// What happened.
    pub message: String,
}

impl Fatal {
    pub(crate) fn io(what: impl std::fmt::Display) -> Self {
        Fatal {
            code: exit::IO,
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
        let code = match e {
            argus_core::Error::Locked { .. } => exit::LOCKED,
            _ => exit::IO,
        };
        Fatal {
            code,
            message: error_chain(&e),
        }
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        cur = cause.source();
    }
    if find_io(e).is_some_and(argus_core::is_disk_full) {
        s.push_str(" (the disk is full: free space, then run again; nothing was lost)");
    }
    s
}

pub(super) fn find_io<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}
