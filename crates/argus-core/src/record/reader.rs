//! Reading argus data record by record, with each record's place, stream and start time: what
//! filing records by the day they happened needs. Meant for data the [`Walker`](super::Walker)
//! found clean; memory stays at one record (at most 256 KiB).
//!
//! Runs of zero words between records (see [`Report::zero_gaps`](super::Report::zero_gaps))
//! are skipped, as the walker skips them.
//!
//! A record's time is its start time in Unix seconds: for a flow record the first 4 bytes after
//! the header of its time DSR (type `0x03`), big-endian, in both versions; for a MAR its own
//! time (bytes 32..36, 36..40 in an INTERFACE MAR). A record without one (another type, a flow
//! record without a time DSR) has none; a caller gives it the previous record's.

use std::io::{self, Read};

use crate::ranges::read_full;

use super::{MAR_LEN, Version, cause, dsr_len, kind, stream_version};

/// One record, as [`Records`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Its offset in the input.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Its type ([`kind`]).
    pub kind: u8,
    /// The stream it belongs to: 0 for the first, counting MAR/STARTs.
    pub stream: u32,
    /// True for the MAR/START that opens its stream.
    pub opens_stream: bool,
    /// Its start time (Unix seconds), if it carries one.
    pub time: Option<u32>,
}

/// The records of `input`, one by one.
#[derive(Debug)]
pub struct Records<R> {
    input: R,
    buf: Vec<u8>,
    offset: u64,
    stream: Option<u32>,
    done: bool,
}

impl<R: Read> Records<R> {
    /// Records of `input`, which must start with a MAR/START.
    pub fn new(input: R) -> Self {
        Records {
            input,
            buf: Vec::with_capacity(4096),
            offset: 0,
            stream: None,
            done: false,
        }
    }

    fn next_record(&mut self) -> io::Result<Option<RecordInfo>> {
        let mut h = [0u8; 4];
        loop {
            match read_full(&mut self.input, &mut h)? {
                0 => return Ok(None),
                4 => {}
                n => return Err(short(self.offset, 4, n)),
            }
            // A zero word where a record starts, inside a stream: part of a run of zeros the
            // walker leaves out as a gap (what a power loss leaves); skipped the same way.
            if h != [0; 4] || self.stream.is_none() {
                break;
            }
            self.offset += 4;
        }
        let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
        if len < 4 || (self.stream.is_none() && len != MAR_LEN as usize) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no argus record at offset {}", self.offset),
            ));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&h);
        self.buf.resize(len, 0);
        let got = read_full(&mut self.input, &mut self.buf[4..])?;
        if got != len - 4 {
            return Err(short(self.offset, len, got + 4));
        }
        let ty = h[0] >> 4;
        let opens = ty == kind::MAR
            && h[1] >> 4 == cause::START
            && len == MAR_LEN as usize
            && stream_version(&self.buf).is_some();
        if opens {
            self.stream = Some(self.stream.map_or(0, |s| s + 1));
        }
        let info = RecordInfo {
            offset: self.offset,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            kind: ty,
            stream: self.stream.unwrap_or(0),
            opens_stream: opens,
            time: record_time(&self.buf),
        };
        self.offset += len as u64;
        Ok(Some(info))
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = io::Result<RecordInfo>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_record().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The start time of a whole record (see the module docs).
pub fn record_time(rec: &[u8]) -> Option<u32> {
    let be = |at: usize| {
        rec.get(at..at + 4)
            .map(|t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
    };
    match rec.first()? >> 4 {
        kind::MAR => {
            let why = rec.get(1)? >> 4;
            be(if why == cause::INTERFACE { 36 } else { 32 })
        }
        kind::FLOW => {
            let mut off = 4;
            while let Some(d) = rec.get(off..off + 4) {
                let d = [d[0], d[1], d[2], d[3]];
                if d[0] == 0x03 {
                    return be(off + 4);
                }
                let len = dsr_len(&d);
                if len == 0 {
                    return None;
                }
                off += len;
            }
            None
        }
        _ => None,
    }
}

/// The version of a record's header nibble, when it is one this crate knows.
pub fn record_version(rec: &[u8]) -> Option<Version> {
    Version::from_number(rec.first()? & 0x0f)
}

fn short(offset: u64, need: usize, have: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the record at offset {offset} is cut short: {have} of {need} bytes"),
    )
}
