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

pub use mar::{
    Mar, MarBody, MarCause, MarCounters, MarError, MarInterface, MarReport, MarTime, SourceId,
    decode_mar,
};
pub use reader::{RecordInfo, Records, record_time, record_version};
pub use verdict::{Corruption, Report, Stream, Walk};

/// The cookie of an argus 3 stream, at bytes 8..12 of its initial MAR.
pub const ARGUS_V3_COOKIE: u32 = 0xE571_2DCB;

/// The cookie of an argus 5 stream, at bytes 8..12 of its initial MAR.
pub const ARGUS_V5_COOKIE: u32 = 0xE571_50CB;

/// The cookie of argus 2 data, whose record format differs and is not supported.
pub const ARGUS_V2_COOKIE: u32 = 0xE561_7ACB;

/// Size of the MAR/START that opens a stream (and of argus' other MARs but the interface ones).
pub const MAR_LEN: u32 = 128;

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

/// The first bytes of a record kept for inspection: the MAR cookie (8..12) and the `now` time
/// (32..36, or 36..40 in an interface MAR).
const HEAD: usize = 40;

/// A push-based argus record walker; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Walker {
    /// Offset of the record being read.
    rec_start: u64,
    /// Bytes of the current record seen so far (header included).
    rec_pos: usize,
    /// Length of the current record in bytes, once its header is complete.
    rec_len: usize,
    head: [u8; HEAD],
    /// The current record may open a stream: its cookie (bytes 8..12) is still to be checked.
    opening: bool,
    /// The input's first record header is not a MAR/START: not argus data, unless its cookie
    /// shows argus 2 (whose header differs).
    foreign_start: bool,
    dsr_next: usize,
    dsr_hdr: [u8; 4],
    dsr_hdr_len: usize,
    records: u64,
    mars: u64,
    starts: u64,
    last_record: Option<u64>,
    mar_times: Option<(u32, u32)>,
    /// The version of the current stream (`None` before the first record).
    version: Option<Version>,
    streams: Vec<Stream>,
    /// The current stream is the last one in `streams` (not one past [`STREAMS_LISTED`]).
    listing: bool,
    failed: Option<(u64, Corruption)>,
    check_dsrs: bool,
}

impl Default for Walker {
    fn default() -> Self {
        Walker::new()
    }
}

impl Walker {
    /// A walker at the start of a stream that checks record headers and, inside flow records,
    /// that the DSRs fill each record exactly. The DSR check finds a record that swallowed the
    /// start of the next one (a truncated chunk followed by another) at the damaged record
    /// itself, where a header-only walk only notices a few hundred bytes later.
    pub fn new() -> Self {
        Walker::with_dsr_check(true)
    }

    /// A walker that checks record headers only, as `ra` frames records.
    pub fn framing_only() -> Self {
        Walker::with_dsr_check(false)
    }

    fn with_dsr_check(check_dsrs: bool) -> Self {
        Walker {
            rec_start: 0,
            rec_pos: 0,
            rec_len: 0,
            head: [0; HEAD],
            opening: false,
            foreign_start: false,
            dsr_next: 0,
            dsr_hdr: [0; 4],
            dsr_hdr_len: 0,
            records: 0,
            mars: 0,
            starts: 0,
            last_record: None,
            mar_times: None,
            version: None,
            streams: Vec::new(),
            listing: false,
            failed: None,
            check_dsrs,
        }
    }

    /// True once corruption was found; further input is ignored.
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Walks the next bytes of the stream.
    pub fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() && self.failed.is_none() {
            if self.rec_pos == 0
                && let Some(version) = self.version
            {
                // Whole records inside `buf` take the fast path; the state machine below handles
                // only records cut by a buffer boundary, a stream's first record, and records
                // of another version (a new stream, or corruption).
                let used = self.whole_records(buf, version);
                buf = &buf[used..];
                if buf.is_empty() || self.failed.is_some() {
                    break;
                }
            }
            if self.rec_pos < 4 {
                let take = (4 - self.rec_pos).min(buf.len());
                let at = self.rec_pos;
                self.head[at..at + take].copy_from_slice(&buf[..take]);
                self.rec_pos += take;
                buf = &buf[take..];
                if self.rec_pos == 4 {
                    self.start_record();
                }
                continue;
            }
            let take = (self.rec_len - self.rec_pos).min(buf.len());
            let (chunk, rest) = buf.split_at(take);
            buf = rest;
            if self.rec_pos < HEAD {
                let at = self.rec_pos;
                let n = (HEAD - at).min(chunk.len());
                self.head[at..at + n].copy_from_slice(&chunk[..n]);
            }
            if self.check_dsrs && !self.opening && self.head[0] >> 4 == kind::FLOW {
                self.walk_dsrs(chunk);
            }
            self.rec_pos += take;
            if self.opening && self.rec_pos >= 12 {
                self.check_opening();
            }
            if self.failed.is_none() && self.rec_pos == self.rec_len {
                self.end_record();
            }
        }
    }

    /// Ends the walk and returns the verdict.
    pub fn finish(self) -> Report {
        let valid_len = self.rec_start;
        let head = [self.head[0], self.head[1], self.head[2], self.head[3]];
        let walk = if let Some((offset, reason)) = self.failed {
            Walk::Corrupt { offset, reason }
        } else if self.foreign_start {
            // Too short to show a cookie, and no MAR/START header either.
            Walk::Corrupt {
                offset: 0,
                reason: Corruption::NotArgus { found: head },
            }
        } else if self.rec_pos == 0 {
            Walk::Clean {
                records: self.records,
                mars: self.mars,
                bytes: valid_len,
            }
        } else {
            let need = if self.rec_pos < 4 { 4 } else { self.rec_len };
            Walk::Truncated {
                offset: self.rec_start,
                need: need as u64,
                have: self.rec_pos as u64,
            }
        };
        Report {
            walk,
            valid_len,
            last_record: self.last_record,
            records: self.records,
            mars: self.mars,
            starts: self.starts,
            mar_times: self.mar_times,
            version: self.version,
            streams: self.streams,
        }
    }

    /// Walks the complete records of `version` at the start of `buf` without copying them into
    /// the state machine, with exactly its checks and verdicts. Returns the bytes consumed; stops
    /// before the first record that is not wholly in `buf`, not well-formed or of another version
    /// (which the state machine then handles).
    fn whole_records(&mut self, buf: &[u8], version: Version) -> usize {
        let mut at = 0;
        while let Some(h) = buf.get(at..at + 4) {
            let Some((ty, len)) = header(&[h[0], h[1], h[2], h[3]], version) else {
                break;
            };
            let Some(rec) = buf.get(at..at + len) else {
                break;
            };
            if self.check_dsrs
                && ty == kind::FLOW
                && let Err(bad) = dsrs_fill(rec)
            {
                self.failed = Some((self.rec_start, Corruption::BadDsr { at: bad as u64 }));
                return at;
            }
            self.count(ty, &rec[..len.min(HEAD)], len);
            at += len;
        }
        at
    }

    /// Counts a complete, well-formed record of type `ty` and `len` bytes, whose first bytes
    /// (up to [`HEAD`]) are `head`. A MAR/START with the cookie of its version opens a stream.
    fn count(&mut self, ty: u8, head: &[u8], len: usize) {
        if ty == kind::MAR {
            self.mars += 1;
            let why = head[1] >> 4;
            if why == cause::START
                && let Some(v) = stream_version(head)
            {
                self.open_stream(v);
            }
            let at = if why == cause::INTERFACE { 36 } else { 32 };
            if let Some(t) = head.get(at..at + 4) {
                let now = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
                self.mar_times = Some(match self.mar_times {
                    None => (now, now),
                    Some((first, _)) => (first, now),
                });
            }
        }
        if self.listing
            && let Some(s) = self.streams.last_mut()
        {
            s.records += 1;
            s.mars += u64::from(ty == kind::MAR);
            s.flows += u64::from(ty == kind::FLOW);
        }
        self.records += 1;
        self.last_record = Some(self.rec_start);
        self.rec_start += len as u64;
    }

    fn open_stream(&mut self, version: Version) {
        self.version = Some(version);
        self.starts += 1;
        self.listing = self.streams.len() < STREAMS_LISTED;
        if self.listing {
            self.streams.push(Stream {
                offset: self.rec_start,
                version,
                records: 0,
                mars: 0,
                flows: 0,
            });
        }
    }

    fn start_record(&mut self) {
        let h = [self.head[0], self.head[1], self.head[2], self.head[3]];
        let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
        let Some(version) = self.version else {
            // The first record: a 128-byte MAR/START, whose cookie is checked at 12 bytes. Any
            // other header is not argus data, but the cookie is still looked at, to name argus 2.
            self.opening = true;
            self.foreign_start = !is_start_shaped(&h);
            self.rec_len = MAR_LEN as usize;
            return;
        };
        let ty = h[0] >> 4;
        if !(kind::FLOW..=kind::MAR).contains(&ty) || len < 4 {
            self.fail(Corruption::BadHeader(h));
            return;
        }
        if h[0] & 0x0f != version.number() {
            if !is_start_header(&h) {
                self.fail(Corruption::VersionMismatch {
                    stream: version,
                    header: h,
                });
                return;
            }
            // The MAR/START of a stream of the other version, if its cookie says so.
            self.opening = true;
        }
        self.rec_len = len;
        self.dsr_next = 4;
        self.dsr_hdr_len = 0;
        if len == 4 {
            self.end_record();
        }
    }

    /// Checks the cookie of a record that may open a stream, once its first 12 bytes are in.
    fn check_opening(&mut self) {
        self.opening = false;
        let h = [self.head[0], self.head[1], self.head[2], self.head[3]];
        let bytes = [self.head[8], self.head[9], self.head[10], self.head[11]];
        let matches = stream_version(&self.head).is_some();
        match self.version {
            None => {
                let v2 = u32::from_be_bytes(bytes) == ARGUS_V2_COOKIE
                    || u32::from_le_bytes(bytes) == ARGUS_V2_COOKIE;
                if self.foreign_start && !v2 {
                    self.fail(Corruption::NotArgus { found: h });
                } else if v2 || !matches {
                    self.fail(Corruption::Unsupported {
                        header: h,
                        cookie: u32::from_be_bytes(bytes),
                    });
                }
                self.foreign_start = false;
            }
            Some(stream) if !matches => {
                self.fail(Corruption::VersionMismatch { stream, header: h });
            }
            Some(_) => {}
        }
    }

    fn walk_dsrs(&mut self, chunk: &[u8]) {
        let base = self.rec_pos;
        let end = base + chunk.len();
        loop {
            let pos = self.dsr_next + self.dsr_hdr_len;
            if pos >= end || self.dsr_next >= self.rec_len {
                return;
            }
            let n = (4 - self.dsr_hdr_len).min(end - pos);
            let from = pos - base;
            let at = self.dsr_hdr_len;
            self.dsr_hdr[at..at + n].copy_from_slice(&chunk[from..from + n]);
            self.dsr_hdr_len += n;
            if self.dsr_hdr_len < 4 {
                return;
            }
            let len = dsr_len(&self.dsr_hdr);
            if len == 0 || self.dsr_next + len > self.rec_len {
                let at = self.dsr_next as u64;
                self.fail(Corruption::BadDsr { at });
                return;
            }
            self.dsr_next += len;
            self.dsr_hdr_len = 0;
        }
    }

    fn end_record(&mut self) {
        let ty = self.head[0] >> 4;
        if self.check_dsrs && ty == kind::FLOW && self.dsr_next != self.rec_len {
            let at = self.dsr_next as u64;
            self.fail(Corruption::BadDsr { at });
            return;
        }
        let head = self.head;
        self.count(ty, &head[..self.rec_len.min(HEAD)], self.rec_len);
        self.rec_pos = 0;
        self.rec_len = 0;
        self.head = [0; HEAD];
    }

    fn fail(&mut self, reason: Corruption) {
        self.failed = Some((self.rec_start, reason));
    }
}

/// The type and byte length of a well-formed record header of `version` (its version nibble, a
/// known type, at least the header long), or `None`.
fn header(h: &[u8; 4], version: Version) -> Option<(u8, usize)> {
    let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
    let ty = h[0] >> 4;
    let known = (kind::FLOW..=kind::MAR).contains(&ty);
    (h[0] & 0x0f == version.number() && known && len >= 4).then_some((ty, len))
}

/// True when `h` is the header of a 128-byte MAR of cause START, of any version.
fn is_start_shaped(h: &[u8; 4]) -> bool {
    h[0] >> 4 == kind::MAR
        && h[1] >> 4 == cause::START
        && usize::from(u16::from_be_bytes([h[2], h[3]])) * 4 == MAR_LEN as usize
}

/// True when `h` is the header of a 128-byte MAR of cause START, of a version this walker knows.
fn is_start_header(h: &[u8; 4]) -> bool {
    is_start_shaped(h) && Version::from_number(h[0] & 0x0f).is_some()
}

/// The version of the stream a MAR/START opens: its version nibble, when bytes 8..12 hold that
/// version's cookie.
fn stream_version(head: &[u8]) -> Option<Version> {
    let c = head.get(8..12)?;
    let v = Version::from_cookie([c[0], c[1], c[2], c[3]])?;
    (head[0] & 0x0f == v.number()).then_some(v)
}

/// The length in bytes of the DSR with this header, as argus' clients compute it: 4 for an
/// immediate DSR (type bit 0x80), else the 16-bit length of bytes 2..4 when the subtype has
/// `ARGUS_LEN_16BITS` (0x80), else byte 3; in words.
fn dsr_len(d: &[u8; 4]) -> usize {
    if d[0] & 0x80 != 0 {
        4
    } else if d[1] & 0x80 != 0 {
        usize::from(u16::from_be_bytes([d[2], d[3]])) * 4
    } else {
        usize::from(d[3]) * 4
    }
}

/// Checks that the DSRs of a complete flow record fill it exactly; on failure returns the offset
/// of the offending DSR inside the record.
fn dsrs_fill(rec: &[u8]) -> Result<(), usize> {
    let mut off = 4;
    while off < rec.len() {
        let Some(d) = rec.get(off..off + 4) else {
            return Err(off);
        };
        let len = dsr_len(&[d[0], d[1], d[2], d[3]]);
        if len == 0 || off + len > rec.len() {
            return Err(off);
        }
        off += len;
    }
    Ok(())
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
