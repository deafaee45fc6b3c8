//! Readers over byte ranges of an upload: [`Segments`] reads the ranges of a file that a batch
//! appends (all of `.out`, less chunks ingested before), [`Picked`] the same ranges out of a
//! sequential reader (a decoded archive, for recovery).

use std::fs::File;
use std::io::{self, Read};

/// Reads the given byte ranges of a file, one after the other.
pub(super) struct Segments<'a> {
    pub(super) file: &'a File,
    pub(super) segments: &'a [(u64, u64)],
    /// Index of the current range.
    pub(super) at: usize,
    /// Bytes of it already read.
    pub(super) pos: u64,
}

impl Read for Segments<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, len)) = self.segments.get(self.at) {
            if self.pos == len {
                self.at += 1;
                self.pos = 0;
                continue;
            }
            let want = usize::try_from(len - self.pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = std::os::unix::fs::FileExt::read_at(
                self.file,
                &mut buf[..want],
                offset + self.pos,
            )?;
            if n == 0 {
                // The file is shorter than its manifest said: the caller notices the shortfall.
                return Ok(0);
            }
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Reads, from a stream, only the byte ranges `(offset, len)` given (sorted, not
/// overlapping), skipping the rest: the part of an upload that was appended.
pub(super) struct Picked<'a, R> {
    pub(super) inner: R,
    pub(super) segments: &'a [(u64, u64)],
    pub(super) next: usize,
    pub(super) pos: u64,
}

impl<'a, R: Read> Picked<'a, R> {
    pub(super) fn new(inner: R, segments: &'a [(u64, u64)]) -> Self {
        Picked {
            inner,
            segments,
            next: 0,
            pos: 0,
        }
    }
}

impl<R: Read> Read for Picked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, len)) = self.segments.get(self.next) {
            if self.pos >= offset + len {
                self.next += 1;
                continue;
            }
            if self.pos < offset {
                let gap = offset - self.pos;
                let skipped = io::copy(&mut (&mut self.inner).take(gap), &mut io::sink())?;
                self.pos += skipped;
                if skipped < gap {
                    return Ok(0);
                }
                continue;
            }
            let room = usize::try_from(offset + len - self.pos).unwrap_or(usize::MAX);
            let take = room.min(buf.len());
            let n = self.inner.read(&mut buf[..take])?;
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_reads_only_the_ranges_given() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut out = Vec::new();
        // A reader that hands out 3 bytes at a time, like a decoder may.
        let slow = SlowReader(&data[..]);
        Picked::new(slow, &[(0, 5), (10, 2), (97, 10)])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, [0, 1, 2, 3, 4, 10, 11, 97, 98, 99]);
        let mut none = Vec::new();
        Picked::new(&data[..], &[])
            .read_to_end(&mut none)
            .expect("read");
        assert!(none.is_empty());
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
