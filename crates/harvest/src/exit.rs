//! Exit statuses of harvest_argus, from `sysexits.h` where one fits; the same shape as
//! process_argus's.

/// How a run ended, from best to worst; the process exit code is the worst that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// Everything shipped and archived, argus running.
    Ok,
    /// The data is safe, but argus is not running as it should (cannot be started, its disk is
    /// full, its interface vanished).
    Argus,
    /// A chunk was not shipped or not archived; it stays staged for the next run (EX_IOERR).
    NotShipped,
    /// Another harvest holds the lock (EX_TEMPFAIL).
    Locked,
    /// The configuration is invalid (EX_CONFIG).
    Config,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Argus => 1,
            Exit::NotShipped => 74,
            Exit::Locked => 75,
            Exit::Config => 78,
        }
    }
}
