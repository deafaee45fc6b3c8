//! argus record framing, versions 3 and 5: walking a stream of records to tell clean data from
//! truncated or corrupt data, in constant memory.
//!
//! An argus file is a sequence of records, each starting with a 4-byte big-endian header:
//! byte 0 is `type << 4 | version`, byte 1 is `cause << 4 | options`, bytes 2..4 the length in
//! 32-bit words including the header. argus 3 writes version 3 (`0x83` management record "MAR",
//! `0x13` flow record "FAR"), argus 5 version 5 (`0x85`, `0x15`); the framing is otherwise the
//! same. A stream starts with a 128-byte MAR of cause START whose cookie at bytes 8..12 names the
//! version: [`ARGUS_V3_COOKIE`] or [`ARGUS_V5_COOKIE`]. That record fixes the stream's
//! [`Version`]: every later record carries it, until a new MAR/START with a valid cookie starts
//! the next stream, of either version (uploads concatenated in a day file, a sensor upgraded
//! during the day). A flow record is made of DSRs ("data specific records") that fill it exactly.
//!
//! This matters because `ra` silently stops at the first framing error and loses everything after
//! it: a truncated chunk appended to a day file hides all later chunks. So every chunk is walked
//! before it is shipped or appended.
//!
//! [`Walker`] is push-based (feed it any slices, e.g. while copying or hashing the same bytes);
//! [`walk`] drives it from any `Read`. [`decode_mar`] reads what a MAR says about its sensor.
//!
//! ```
//! use argus_core::record::{walk, Version, Walk};
//!
//! let mut mar = vec![0u8; 128];
//! mar[..4].copy_from_slice(&[0x85, 0x10, 0x00, 0x20]);
//! mar[8..12].copy_from_slice(&Version::V5.cookie().to_be_bytes());
//! let report = walk(&mar[..])?;
//! assert_eq!(report.walk, Walk::Clean { records: 1, mars: 1, bytes: 128 });
//! assert_eq!(report.version, Some(Version::V5));
//!
//! let report = walk(&mar[..100])?;
//! assert_eq!(report.walk, Walk::Truncated { offset: 0, need: 128, have: 100 });
//! assert_eq!(report.valid_len, 0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read};

mod mar;
mod reader;
pub mod split;
#[cfg(test)]
mod tests;
mod verdict;
mod walker;

pub use mar::{
    MAR_RUNS_KEPT, Mar, MarBody, MarCause, MarCounters, MarError, MarInterface, MarReport, MarRun,
    MarTime, MarsSeen, SourceId, decode_mar,
};
pub use reader::{RecordInfo, Records, record_time, record_version};
pub use verdict::{Corruption, Report, Stream, Walk};
pub use walker::Walker;
pub(crate) use walker::{dsr_len, stream_version};

/// The cookie of an argus 3 stream, at bytes 8..12 of its initial MAR.
pub const ARGUS_V3_COOKIE: u32 = 0xE571_2DCB;

/// The cookie of an argus 5 stream, at bytes 8..12 of its initial MAR.
pub const ARGUS_V5_COOKIE: u32 = 0xE571_50CB;

/// The cookie of argus 2 data, whose record format differs and is not supported.
pub const ARGUS_V2_COOKIE: u32 = 0xE561_7ACB;

/// Size of the MAR/START that opens a stream (and of argus' other MARs but the interface ones).
pub const MAR_LEN: u32 = 128;

/// Runs of zero bytes between records a walk keeps; more is corruption.
pub const ZERO_GAPS_KEPT: usize = 1000;

/// Streams listed one by one in a [`Report`]; further ones are only counted, so that memory
/// stays flat whatever the input.
pub const STREAMS_LISTED: usize = 1024;

/// Record type nibbles (`byte 0 >> 4`), the same in versions 3 and 5 (`include/argus_def.h`).
pub mod kind {
    /// Flow record (FAR).
    pub const FLOW: u8 = 0x1;
    /// Index record.
    pub const INDEX: u8 = 0x2;
    /// NetFlow record.
    pub const NETFLOW: u8 = 0x3;
    /// Event record.
    pub const EVENT: u8 = 0x4;
    /// Flow/metric record of things other than argus flows (`ARGUS_AFLOW`).
    pub const AFLOW: u8 = 0x5;
    /// Data supplement record.
    pub const DATASUP: u8 = 0x6;
    /// Archival record.
    pub const ARCHIVAL: u8 = 0x7;
    /// Management record (MAR).
    pub const MAR: u8 = 0x8;
}

/// Record cause nibbles (`byte 1 >> 4`).
pub mod cause {
    /// The initial record of a stream (on a MAR: the one with the cookie).
    pub const START: u8 = 0x1;
    /// A periodic status report.
    pub const STATUS: u8 = 0x2;
    /// The last record argus writes when it stops.
    pub const STOP: u8 = 0x3;
    /// A flow that timed out.
    pub const TIMEOUT: u8 = 0x4;
    /// A flush of the flow cache.
    pub const FLUSH: u8 = 0x5;
    /// An administrative shutdown (a flow cut by argus stopping).
    pub const SHUTDOWN: u8 = 0x6;
    /// argus initiated the shutdown.
    pub const CLOSED: u8 = 0x7;
    /// An error.
    pub const ERROR: u8 = 0x8;
    /// A supplemental MAR (argus 5).
    pub const SUPPLEMENTAL: u8 = 0x9;
    /// A per-interface MAR (argus 5): its `now` time is at bytes 36..40, not 32..36.
    pub const INTERFACE: u8 = 0xA;
}

/// Cause nibble of a START record (`byte 1 >> 4`).
pub const CAUSE_START: u8 = cause::START;

/// An argus record format version this walker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// argus 3 (Debian's and Ubuntu's argus 3.0.8): version nibble 3, cookie `E5712DCB`.
    V3,
    /// argus 5 (upstream's 5.0.x): version nibble 5, cookie `E57150CB`.
    V5,
}

impl Version {
    /// Both versions, oldest first.
    pub const ALL: [Version; 2] = [Version::V3, Version::V5];

    /// The version nibble of its record headers (3 or 5).
    pub fn number(self) -> u8 {
        match self {
            Version::V3 => 3,
            Version::V5 => 5,
        }
    }

    /// The version with this number, if it is one this walker knows.
    pub fn from_number(n: u8) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.number() == n)
    }

    /// The cookie of its initial MAR/START.
    pub fn cookie(self) -> u32 {
        match self {
            Version::V3 => ARGUS_V3_COOKIE,
            Version::V5 => ARGUS_V5_COOKIE,
        }
    }

    /// The version whose cookie this is (in either byte order, as `ra` accepts it).
    pub fn from_cookie(bytes: [u8; 4]) -> Option<Version> {
        let (be, le) = (u32::from_be_bytes(bytes), u32::from_le_bytes(bytes));
        Version::ALL
            .into_iter()
            .find(|v| v.cookie() == be || v.cookie() == le)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "argus {}", self.number())
    }
}

/// Walks everything `input` yields (or up to the first corruption) with a fixed 128 KiB buffer,
/// with [`Walker::new`]'s checks.
pub fn walk<R: Read>(input: R) -> io::Result<Report> {
    walk_with(Walker::new(), input)
}

/// Walks `input` with the given walker (e.g. [`Walker::framing_only`]).
pub fn walk_with<R: Read>(mut walker: Walker, mut input: R) -> io::Result<Report> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        walker.feed(&buf[..n]);
        if walker.is_failed() {
            break;
        }
    }
    Ok(walker.finish())
}
