//! Exit statuses of process_argus, from `sysexits.h` where one fits; the same shape as
//! harvest_argus's. (`status` has its own, the monitoring-plugin convention.)

/// How a run ended, for its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// Everything went well.
    Ok,
    /// The pass completed, but some upload was quarantined.
    Quarantined,
    /// A command was given something that does not exist (EX_USAGE, as clap's usage errors are
    /// 2; this one is found only once the state is read).
    Usage,
    /// An I/O failure stopped the pass (EX_IOERR); nothing is lost, the next run completes it.
    Io,
    /// Another instance holds the lock (EX_TEMPFAIL).
    Locked,
    /// The configuration is invalid (EX_CONFIG).
    Config,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Quarantined => 1,
            Exit::Usage => 64,
            Exit::Io => 74,
            Exit::Locked => 75,
            Exit::Config => 78,
        }
    }
}
