//! Byte ranges of a file, and readers that yield only those ranges, in order, as one `Read`:
//! what a consumer appends of an upload when some of its chunks were ingested before.
//!
//! [`FileRanges`] reads the ranges of a file by position (`pread`, sharing no cursor);
//! [`StreamRanges`] picks them out of a sequential reader (a decompressed archive, say),
//! skipping the bytes between them.
//!
//! ```
//! use std::io::Read;
//! use argus_core::ranges::{ByteRange, StreamRanges};
//!
//! let data: Vec<u8> = (0..10).collect();
//! let ranges = [ByteRange::new(1, 2), ByteRange::new(6, 3)];
//! let mut out = Vec::new();
//! StreamRanges::new(&data[..], &ranges).read_to_end(&mut out)?;
//! assert_eq!(out, [1, 2, 6, 7, 8]);
//! assert_eq!(ByteRange::total(&ranges), 5);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{self, Read};

/// `len` bytes from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    /// Where the range starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

impl ByteRange {
    /// `len` bytes from `offset`.
    pub fn new(offset: u64, len: u64) -> ByteRange {
        ByteRange { offset, len }
    }

    /// The offset just past the range.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }

    /// The bytes in all of `ranges`.
    /// The parts of `ranges` (sorted, not overlapping) that lie outside `holes` (sorted, not
    /// overlapping), in order.
    pub fn without(ranges: &[ByteRange], holes: &[ByteRange]) -> Vec<ByteRange> {
        let mut out = Vec::new();
        for r in ranges {
            let mut start = r.offset;
            for h in holes {
                if h.end() <= start || h.offset >= r.end() {
                    continue;
                }
                if h.offset > start {
                    out.push(ByteRange::new(start, h.offset - start));
                }
                start = start.max(h.end());
            }
            if start < r.end() {
                out.push(ByteRange::new(start, r.end() - start));
            }
        }
        out
    }

    /// The bytes of `ranges` in all.
    pub fn total(ranges: &[ByteRange]) -> u64 {
        ranges.iter().map(|r| r.len).sum()
    }
}

/// Reads the given byte ranges of a file, one after the other, by position. A file shorter
/// than its ranges ends the reading early: the caller notices the shortfall.
#[derive(Debug)]
pub struct FileRanges<'a> {
    file: &'a File,
    ranges: &'a [ByteRange],
    /// Index of the current range.
    at: usize,
    /// Bytes of it already read.
    pos: u64,
}

impl<'a> FileRanges<'a> {
    /// A reader of `ranges` of `file`.
    pub fn new(file: &'a File, ranges: &'a [ByteRange]) -> FileRanges<'a> {
        FileRanges {
            file,
            ranges,
            at: 0,
            pos: 0,
        }
    }
}

impl Read for FileRanges<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.ranges.get(self.at) {
            if self.pos == r.len {
                self.at += 1;
                self.pos = 0;
                continue;
            }
            let want = usize::try_from(r.len - self.pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = std::os::unix::fs::FileExt::read_at(
                self.file,
                &mut buf[..want],
                r.offset + self.pos,
            )?;
            if n == 0 {
                return Ok(0);
            }
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Reads, from a stream, only the given byte ranges (sorted, not overlapping), skipping the
/// rest.
#[derive(Debug)]
pub struct StreamRanges<'a, R> {
    inner: R,
    ranges: &'a [ByteRange],
    next: usize,
    pos: u64,
}

impl<'a, R: Read> StreamRanges<'a, R> {
    /// A reader of `ranges` of what `inner` yields.
    pub fn new(inner: R, ranges: &'a [ByteRange]) -> Self {
        StreamRanges {
            inner,
            ranges,
            next: 0,
            pos: 0,
        }
    }
}

impl<R: Read> Read for StreamRanges<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.ranges.get(self.next) {
            if self.pos >= r.end() {
                self.next += 1;
                continue;
            }
            if self.pos < r.offset {
                let gap = r.offset - self.pos;
                let skipped = io::copy(&mut (&mut self.inner).take(gap), &mut io::sink())?;
                self.pos += skipped;
                if skipped < gap {
                    return Ok(0);
                }
                continue;
            }
            let room = usize::try_from(r.end() - self.pos).unwrap_or(usize::MAX);
            let take = room.min(buf.len());
            let n = self.inner.read(&mut buf[..take])?;
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Reads into `buf` until it is full or the input ends (retrying interrupted reads): the
/// bytes read, fewer than `buf.len()` only at the end of the input.
pub fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64, len: u64) -> ByteRange {
        ByteRange::new(offset, len)
    }

    #[test]
    fn stream_ranges_read_only_the_ranges_given() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut out = Vec::new();
        // A reader that hands out 3 bytes at a time, like a decoder may.
        let slow = SlowReader(&data[..]);
        StreamRanges::new(slow, &[r(0, 5), r(10, 2), r(97, 10)])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, [0, 1, 2, 3, 4, 10, 11, 97, 98, 99]);
        let mut none = Vec::new();
        StreamRanges::new(&data[..], &[])
            .read_to_end(&mut none)
            .expect("read");
        assert!(none.is_empty());
    }

    #[test]
    fn file_ranges_read_by_position_and_stop_at_the_end_of_the_file() {
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, &(0..50u8).collect::<Vec<_>>()).expect("write");
        let mut out = Vec::new();
        FileRanges::new(&file, &[r(2, 3), r(5, 0), r(40, 20)])
            .read_to_end(&mut out)
            .expect("read");
        let mut want = vec![2, 3, 4];
        want.extend(40..50u8);
        assert_eq!(out, want, "the last range runs past the end: cut short");
    }

    struct SlowReader<'a>(&'a [u8]);

    impl Read for SlowReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
}
