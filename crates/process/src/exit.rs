//! Exit statuses of process_argus, from `sysexits.h` where one fits.

/// Everything went well.
pub(crate) const OK: u8 = 0;
/// The pass completed, but some upload was quarantined.
pub(crate) const QUARANTINED: u8 = 1;
/// An I/O failure stopped the pass (EX_IOERR); nothing is lost, the next run completes it.
pub(crate) const IO: u8 = 74;
/// Another instance holds the lock (EX_TEMPFAIL).
pub(crate) const LOCKED: u8 = 75;
/// The configuration is invalid (EX_CONFIG).
pub(crate) const CONFIG: u8 = 78;
