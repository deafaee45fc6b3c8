//! The [`Walker`]: argus record framing checked as bytes arrive, in constant memory (see the
//! [module docs](super)).

use super::mar::MarsSeen;
use super::{ARGUS_V2_COOKIE, MAR_LEN, Report, STREAMS_LISTED, Stream, Version, cause, kind};
use super::{Corruption, Walk, ZERO_GAPS_KEPT};
use crate::ranges::ByteRange;

/// The first bytes of a record kept for inspection: a whole MAR (its cookie at 8..12, its `now`
/// time at 32..36, or 36..40 in an interface MAR, its counters).
const HEAD: usize = MAR_LEN as usize;

/// A push-based argus record walker; see the [module docs](super).
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
    mars_seen: MarsSeen,
    /// Offsets past the current record where the MAR runs are to be cut, ascending.
    cuts: std::collections::VecDeque<u64>,
    zero_gaps: Vec<ByteRange>,
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
            mars_seen: MarsSeen::default(),
            cuts: std::collections::VecDeque::new(),
            zero_gaps: Vec::new(),
            version: None,
            streams: Vec::new(),
            listing: false,
            failed: None,
            check_dsrs,
        }
    }

    /// Keeps the MARs before `offset` (of the bytes walked) and those after it in separate
    /// runs ([`MarsSeen::cut`]): a caller that keeps byte ranges bounded there (the chunks of an
    /// upload) finds each run wholly inside or outside them.
    pub fn cut(&mut self, offset: u64) {
        if offset <= self.rec_start {
            // Every MAR noted so far lies before it.
            self.mars_seen.cut();
            return;
        }
        let at = self.cuts.partition_point(|&c| c < offset);
        if self.cuts.get(at) != Some(&offset) {
            self.cuts.insert(at, offset);
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
            mars_seen: self.mars_seen,
            zero_gaps: self.zero_gaps,
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
            if h == [0; 4] {
                let run = buf[at..]
                    .chunks_exact(4)
                    .take_while(|w| *w == [0; 4])
                    .count()
                    * 4;
                self.zeros(run);
                if self.failed.is_some() {
                    return at;
                }
                at += run;
                continue;
            }
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
            // Only a 128-byte MAR/START opens a stream: a shorter one is no stream header (and
            // the day splitter copies a header as 128 bytes).
            if why == cause::START
                && len == HEAD
                && let Some(v) = stream_version(head)
            {
                self.open_stream(v);
            }
            if head.len() == len {
                let passed = self.cuts.partition_point(|&c| c <= self.rec_start);
                if passed > 0 {
                    self.cuts.drain(..passed);
                    self.mars_seen.cut();
                }
                self.mars_seen.note(head, self.rec_start);
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
        if h == [0; 4] {
            // A zero word where a record starts: part of a run of zeros, skipped as ra does.
            self.zeros(4);
            self.rec_pos = 0;
            self.head = [0; HEAD];
            return;
        }
        let ty = h[0] >> 4;
        if !readable(ty, version) || len < 4 {
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

    /// Skips `n` zero bytes (whole words) where a record would start: a power loss leaves such
    /// runs in a file being appended to, and `ra` reads the records around them. Each run is
    /// kept, so that what appends the data can leave it out.
    fn zeros(&mut self, n: usize) {
        let n = n as u64;
        let kept = self.zero_gaps.len();
        match self.zero_gaps.last_mut() {
            Some(last) if last.end() == self.rec_start => last.len += n,
            _ if kept >= ZERO_GAPS_KEPT => {
                self.fail(Corruption::TooManyZeroGaps);
                return;
            }
            _ => {
                // What leaves the run out must not leave out MARs on either side of it.
                self.mars_seen.cut();
                self.zero_gaps.push(ByteRange::new(self.rec_start, n));
            }
        }
        self.rec_start += n;
    }

    fn fail(&mut self, reason: Corruption) {
        self.failed = Some((self.rec_start, reason));
    }
}

/// The type and byte length of a well-formed record header of `version` (its version nibble, a
/// type ra reads, at least the header long), or `None`.
fn header(h: &[u8; 4], version: Version) -> Option<(u8, usize)> {
    let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
    let ty = h[0] >> 4;
    (h[0] & 0x0f == version.number() && readable(ty, version) && len >= 4).then_some((ty, len))
}

/// True for the record types `ra` reads in a stream of `version`: flow, NetFlow, event and
/// management records, and in an argus 5 stream also AFLOW records. At a record of any other
/// type ra 3.0.8 stops silently (exit 0), losing the rest of the file, and ra 5.0.3 skips it
/// without a word (INDEX, DATASUP, ARCHIVAL) or reads AFLOW records that ra 3.0.8 stops at.
fn readable(ty: u8, version: Version) -> bool {
    matches!(ty, kind::FLOW | kind::NETFLOW | kind::EVENT | kind::MAR)
        || (ty == kind::AFLOW && version == Version::V5)
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
pub(crate) fn stream_version(head: &[u8]) -> Option<Version> {
    let c = head.get(8..12)?;
    let v = Version::from_cookie([c[0], c[1], c[2], c[3]])?;
    (head[0] & 0x0f == v.number()).then_some(v)
}

/// The length in bytes of the DSR with this header, as argus' clients compute it: 4 for an
/// immediate DSR (type bit 0x80), else the 16-bit length of bytes 2..4 when the subtype has
/// `ARGUS_LEN_16BITS` (0x80), else byte 3; in words.
pub(crate) fn dsr_len(d: &[u8; 4]) -> usize {
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
