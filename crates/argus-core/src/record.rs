//! argus 3 record framing: walking a stream of records to tell clean data from truncated or
//! corrupt data, in constant memory.
//!
//! An argus file is a sequence of records, each starting with a 4-byte big-endian header:
//! byte 0 is `type << 4 | version` (`0x83` management record "MAR", `0x13` flow record "FAR"),
//! byte 1 is `cause << 4 | options`, bytes 2..4 the length in 32-bit words including the header.
//! A valid stream starts with a 128-byte MAR of cause START holding the cookie `E5712DCB` at bytes
//! 8..12. A flow record is made of DSRs ("data specific records") that fill it exactly.
//!
//! This matters because `ra` silently stops at the first framing error and loses everything after
//! it: a truncated chunk appended to a day file hides all later chunks. So every chunk is walked
//! before it is shipped or appended.
//!
//! [`Walker`] is push-based (feed it any slices, e.g. while copying or hashing the same bytes);
//! [`walk`] drives it from any `Read`.
//!
//! ```
//! use argus_core::record::{walk, Walk};
//!
//! let mut mar = vec![0u8; 128];
//! mar[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
//! mar[8..12].copy_from_slice(&[0xe5, 0x71, 0x2d, 0xcb]);
//! let report = walk(&mar[..])?;
//! assert_eq!(report.walk, Walk::Clean { records: 1, mars: 1, bytes: 128 });
//!
//! let report = walk(&mar[..100])?;
//! assert_eq!(report.walk, Walk::Truncated { offset: 0, need: 128, have: 100 });
//! assert_eq!(report.valid_len, 0);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read};

/// The argus cookie, at bytes 8..12 of a stream's initial MAR.
pub const ARGUS_COOKIE: u32 = 0xE571_2DCB;

/// Size of a management record.
pub const MAR_LEN: u32 = 128;

/// Record type nibbles (`byte 0 >> 4`).
pub mod kind {
    /// Flow record (FAR).
    pub const FLOW: u8 = 0x1;
    /// Index record.
    pub const INDEX: u8 = 0x2;
    /// NetFlow record.
    pub const NETFLOW: u8 = 0x3;
    /// Event record.
    pub const EVENT: u8 = 0x4;
    /// Data supplement record.
    pub const DATASUP: u8 = 0x5;
    /// Archival record.
    pub const ARCHIVAL: u8 = 0x6;
    /// Management record (MAR).
    pub const MAR: u8 = 0x8;
}

/// Cause nibble of a START record (`byte 1 >> 4`).
pub const CAUSE_START: u8 = 0x1;

/// The verdict of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Every byte belongs to a complete, well-formed record (also true of empty input).
    Clean {
        /// Records of every type.
        records: u64,
        /// Management records among them.
        mars: u64,
        /// Bytes walked.
        bytes: u64,
    },
    /// The data ends inside a record: the last one is partial.
    Truncated {
        /// Where the partial record starts.
        offset: u64,
        /// Its length as its header gives it (4 when even the header is partial).
        need: u64,
        /// The bytes of it that are present.
        have: u64,
    },
    /// The data is not argus data, or the framing breaks.
    Corrupt {
        /// Where the offending record starts.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
}

/// Why a stream is corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The first record is not a 128-byte MAR of cause START with the argus cookie.
    NotArgus,
    /// A record header with an unknown type, a version other than 3, or a length below 4 bytes.
    BadHeader([u8; 4]),
    /// A DSR inside a flow record has length 0 or runs past the record's end.
    BadDsr {
        /// Offset of the DSR inside the record.
        at: u64,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::NotArgus => f.write_str(
                "not argus 3 data: no 128-byte MAR/START with cookie E5712DCB at the start",
            ),
            Corruption::BadHeader(h) => write!(
                f,
                "bad record header {:02x} {:02x} {:02x}{:02x}",
                h[0], h[1], h[2], h[3]
            ),
            Corruption::BadDsr { at } => {
                write!(f, "flow record data (DSR) at +{at} does not fit the record")
            }
        }
    }
}

impl fmt::Display for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Walk::Clean {
                records,
                mars,
                bytes,
            } => write!(f, "clean: {records} records ({mars} MARs), {bytes} bytes"),
            Walk::Truncated { offset, need, have } => write!(
                f,
                "truncated record at {offset}: need {need} bytes, have {have}"
            ),
            Walk::Corrupt { offset, reason } => write!(f, "corrupt at {offset}: {reason}"),
        }
    }
}

/// A walk's verdict with the facts a caller needs to act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub walk: Walk,
    /// Length of the prefix made of complete, well-formed records: where to cut to keep only
    /// whole records. Equals the input length when clean.
    pub valid_len: u64,
    /// Offset of the last complete record, if any.
    pub last_record: Option<u64>,
    /// Complete records in the valid prefix.
    pub records: u64,
    /// Complete MARs in the valid prefix.
    pub mars: u64,
    /// Stream starts (MAR/START with the cookie) in the valid prefix: more than one means
    /// concatenated files or a restarted argus.
    pub starts: u64,
    /// The `now` seconds (Unix time) of the first and last MARs in the valid prefix.
    pub mar_times: Option<(u32, u32)>,
}

impl Report {
    /// True when the whole input is complete records.
    pub fn is_clean(&self) -> bool {
        matches!(self.walk, Walk::Clean { .. })
    }
}

/// The first bytes of a record kept for inspection: the MAR cookie (8..12) and time (32..36).
const HEAD: usize = 36;

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
    dsr_next: usize,
    dsr_hdr: [u8; 4],
    dsr_hdr_len: usize,
    records: u64,
    mars: u64,
    starts: u64,
    last_record: Option<u64>,
    mar_times: Option<(u32, u32)>,
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
            dsr_next: 0,
            dsr_hdr: [0; 4],
            dsr_hdr_len: 0,
            records: 0,
            mars: 0,
            starts: 0,
            last_record: None,
            mar_times: None,
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
            if self.rec_pos == 0 && self.records > 0 {
                // Whole records inside `buf` take the fast path; the state machine below handles
                // only records cut by a buffer boundary, and the first record's extra checks.
                let used = self.whole_records(buf);
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
            if self.check_dsrs && self.head[0] >> 4 == kind::FLOW {
                self.walk_dsrs(chunk);
            }
            self.rec_pos += take;
            if self.records == 0 && self.rec_pos >= 12 && !self.first_record_ok() {
                self.fail(Corruption::NotArgus);
            } else if self.rec_pos == self.rec_len {
                self.end_record();
            }
        }
    }

    /// Ends the walk and returns the verdict.
    pub fn finish(self) -> Report {
        let valid_len = self.rec_start;
        let walk = if let Some((offset, reason)) = self.failed {
            Walk::Corrupt { offset, reason }
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
        }
    }

    /// Walks the complete records at the start of `buf` without copying them into the state
    /// machine, with exactly its checks and verdicts. Returns the bytes consumed; stops before the
    /// first record that is not wholly in `buf` or not well-formed (which the state machine then
    /// reports).
    fn whole_records(&mut self, buf: &[u8]) -> usize {
        let mut at = 0;
        while let Some(h) = buf.get(at..at + 4) {
            let Some((ty, len)) = header(&[h[0], h[1], h[2], h[3]]) else {
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
    /// (up to [`HEAD`]) are `head`.
    fn count(&mut self, ty: u8, head: &[u8], len: usize) {
        if ty == kind::MAR {
            self.mars += 1;
            if head[1] >> 4 == CAUSE_START && has_cookie(head) {
                self.starts += 1;
            }
            if let Some(t) = head.get(32..36) {
                let now = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
                self.mar_times = Some(match self.mar_times {
                    None => (now, now),
                    Some((first, _)) => (first, now),
                });
            }
        }
        self.records += 1;
        self.last_record = Some(self.rec_start);
        self.rec_start += len as u64;
    }

    fn start_record(&mut self) {
        let h = [self.head[0], self.head[1], self.head[2], self.head[3]];
        let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
        if self.records == 0
            && (h[0] != 0x83 || h[1] >> 4 != CAUSE_START || len != MAR_LEN as usize)
        {
            self.fail(Corruption::NotArgus);
            return;
        }
        if header(&h).is_none() {
            self.fail(Corruption::BadHeader(h));
            return;
        }
        self.rec_len = len;
        self.dsr_next = 4;
        self.dsr_hdr_len = 0;
        if len == 4 {
            self.end_record();
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
            let d = self.dsr_hdr;
            let len = if d[0] & 0x80 != 0 {
                4
            } else if d[0] == 0x50 {
                usize::from(u16::from_be_bytes([d[2], d[3]])) * 4
            } else {
                usize::from(d[3]) * 4
            };
            if len == 0 || self.dsr_next + len > self.rec_len {
                let at = self.dsr_next as u64;
                self.fail(Corruption::BadDsr { at });
                return;
            }
            self.dsr_next += len;
            self.dsr_hdr_len = 0;
        }
    }

    fn first_record_ok(&self) -> bool {
        has_cookie(&self.head)
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

/// The type and byte length of a well-formed record header (version 3, a known type, at least
/// the header long), or `None`.
fn header(h: &[u8; 4]) -> Option<(u8, usize)> {
    let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
    let ty = h[0] >> 4;
    let known = matches!(
        ty,
        kind::FLOW
            | kind::INDEX
            | kind::NETFLOW
            | kind::EVENT
            | kind::DATASUP
            | kind::ARCHIVAL
            | kind::MAR
    );
    (h[0] & 0x0f == 3 && known && len >= 4).then_some((ty, len))
}

/// True when bytes 8..12 hold the argus cookie (in either byte order, as `ra` accepts it).
fn has_cookie(head: &[u8]) -> bool {
    head.get(8..12).is_some_and(|c| {
        let c = [c[0], c[1], c[2], c[3]];
        u32::from_be_bytes(c) == ARGUS_COOKIE || u32::from_le_bytes(c) == ARGUS_COOKIE
    })
}

/// Checks that the DSRs of a complete flow record fill it exactly; on failure returns the offset
/// of the offending DSR inside the record.
fn dsrs_fill(rec: &[u8]) -> Result<(), usize> {
    let mut off = 4;
    while off < rec.len() {
        let Some(d) = rec.get(off..off + 4) else {
            return Err(off);
        };
        let len = if d[0] & 0x80 != 0 {
            4
        } else if d[0] == 0x50 {
            usize::from(u16::from_be_bytes([d[2], d[3]])) * 4
        } else {
            usize::from(d[3]) * 4
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mar(cause: u8) -> Vec<u8> {
        let mut m = vec![0u8; 128];
        m[..4].copy_from_slice(&[0x83, cause << 4, 0x00, 0x20]);
        m[8..12].copy_from_slice(&ARGUS_COOKIE.to_be_bytes());
        m[32..36].copy_from_slice(&1_800_000_000u32.to_be_bytes());
        m
    }

    fn far(dsrs: &[&[u8]]) -> Vec<u8> {
        let body: Vec<u8> = dsrs.concat();
        let words = u16::try_from((body.len() + 4) / 4).expect("small");
        let mut r = vec![0x13, 0x10];
        r.extend(words.to_be_bytes());
        r.extend(body);
        r
    }

    fn dsr(ty: u8, words: u8) -> Vec<u8> {
        let mut d = vec![ty, 0x01, 0x00, words];
        d.resize(usize::from(words) * 4, 0xaa);
        d
    }

    fn stream() -> Vec<u8> {
        let mut s = mar(1);
        s.extend(far(&[&dsr(0x01, 3), &dsr(0x02, 5), &[0x81, 0, 0, 0]]));
        s.extend(far(&[&{
            let mut d = vec![0x50, 0x00, 0x00, 0x02];
            d.extend([1, 2, 3, 4]);
            d
        }]));
        s.extend(mar(3));
        s
    }

    #[test]
    fn clean_stream_in_any_slicing() {
        let s = stream();
        for step in [1, 2, 3, 5, 7, 64, 1000] {
            let mut w = Walker::new();
            for piece in s.chunks(step) {
                w.feed(piece);
            }
            let r = w.finish();
            assert_eq!(
                r.walk,
                Walk::Clean {
                    records: 4,
                    mars: 2,
                    bytes: s.len() as u64
                },
                "step {step}"
            );
            assert_eq!(r.valid_len, s.len() as u64);
            assert_eq!(r.last_record, Some(s.len() as u64 - 128));
            assert_eq!(r.starts, 1);
            assert_eq!(r.mar_times, Some((1_800_000_000, 1_800_000_000)));
        }
    }

    #[test]
    fn empty_is_clean() {
        let r = walk(&[][..]).expect("walk");
        assert_eq!(
            r.walk,
            Walk::Clean {
                records: 0,
                mars: 0,
                bytes: 0
            }
        );
        assert_eq!(r.last_record, None);
    }

    #[test]
    fn every_truncation_point_is_reported_exactly() {
        let s = stream();
        let boundaries = [0usize, 128, 128 + 40, 128 + 40 + 12, s.len()];
        for cut in 0..s.len() {
            let r = walk(&s[..cut]).expect("walk");
            let start = *boundaries.iter().rev().find(|&&b| b <= cut).expect("some");
            if cut == start {
                assert!(r.is_clean(), "cut {cut}: {}", r.walk);
            } else {
                match r.walk {
                    Walk::Truncated { offset, have, .. } => {
                        assert_eq!(offset, start as u64, "cut {cut}");
                        assert_eq!(have, (cut - start) as u64, "cut {cut}");
                    }
                    other => panic!("cut {cut}: {other}"),
                }
            }
            assert_eq!(r.valid_len, start as u64, "cut {cut}");
        }
    }

    #[test]
    fn not_argus_is_refused_at_offset_zero() {
        let mut no_cookie = mar(1);
        no_cookie[8] = 0;
        let mut wrong_len = mar(1);
        wrong_len[3] = 0x21;
        for (name, data) in [
            ("no cookie", no_cookie),
            ("status MAR first", mar(2)),
            ("wrong MAR length", wrong_len),
            ("flow record first", far(&[&dsr(1, 3)])),
            ("text", b"Hostname=client1\nfoo=bar\n".to_vec()),
        ] {
            let r = walk(&data[..]).expect("walk");
            assert_eq!(
                r.walk,
                Walk::Corrupt {
                    offset: 0,
                    reason: Corruption::NotArgus
                },
                "{name}"
            );
        }
        // A little-endian cookie is accepted, as ra does.
        let mut le = mar(1);
        le[8..12].copy_from_slice(&ARGUS_COOKIE.to_le_bytes());
        assert!(walk(&le[..]).expect("walk").is_clean());
    }

    #[test]
    fn broken_framing_is_corrupt_at_the_record() {
        let mut s = mar(1);
        s.extend([0x00, 0x00, 0x00, 0x00]);
        s.extend(mar(3));
        let r = walk(&s[..]).expect("walk");
        assert_eq!(
            r.walk,
            Walk::Corrupt {
                offset: 128,
                reason: Corruption::BadHeader([0, 0, 0, 0])
            }
        );
        assert_eq!(r.valid_len, 128);

        let mut v2 = mar(1);
        v2.extend([0x12, 0x10, 0x00, 0x01]);
        let r = walk(&v2[..]).expect("walk");
        assert!(matches!(r.walk, Walk::Corrupt { offset: 128, .. }));

        // DSR lengths that do not add up to the record length.
        let mut bad = mar(1);
        let mut rec = far(&[&dsr(0x01, 3)]);
        rec[3] += 1; // the record claims 4 more bytes than its DSRs fill
        rec.extend([0, 0, 0, 0]);
        bad.extend(rec);
        let r = walk(&bad[..]).expect("walk");
        assert_eq!(
            r.walk,
            Walk::Corrupt {
                offset: 128,
                reason: Corruption::BadDsr { at: 16 }
            }
        );
    }

    #[test]
    fn concatenated_streams_count_their_starts() {
        let mut s = stream();
        s.extend(stream());
        let r = walk(&s[..]).expect("walk");
        assert!(r.is_clean());
        assert_eq!(r.starts, 2);
        assert_eq!(r.records, 8);
    }
}
