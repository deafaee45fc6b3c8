//! Appending one file to another with constant memory, and undoing it.
//!
//! The destination is written at explicit offsets from the size it had when the append began
//! (the file is *not* opened with `O_APPEND`, which `copy_file_range` refuses). That size is
//! returned as [`Appended::size_before`], so a caller can journal it first and truncate back to it
//! after a crash or a failed write ([`truncate_back`]): the basis of exactly-once ingest.
//!
//! When an append fails (a full disk, say) the destination is truncated back before the error is
//! returned, so a failed append never leaves a partial chunk behind.
//!
//! ```
//! use std::fs::{File, OpenOptions};
//! use argus_core::append::{append_file, truncate_back};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("day"), b"monday ")?;
//! std::fs::write(dir.path().join("chunk"), b"tuesday")?;
//! let day = OpenOptions::new().read(true).write(true).open(dir.path().join("day"))?;
//! let done = append_file(&day, &File::open(dir.path().join("chunk"))?)?;
//! assert_eq!((done.size_before, done.written), (7, 7));
//! assert_eq!(std::fs::read(dir.path().join("day"))?, b"monday tuesday");
//! truncate_back(&day, done.size_before)?;
//! assert_eq!(std::fs::read(dir.path().join("day"))?, b"monday ");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;

use crate::codec::Codec;
use crate::error::is_disk_full;

/// How the bytes were moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMethod {
    /// In the kernel, with `copy_file_range` (no copy through user space; reflinks where the file
    /// system can).
    CopyFileRange,
    /// Through a fixed-size user-space buffer.
    Buffered,
    /// Compressed in process through a fixed-size buffer.
    Encoded,
}

/// The result of an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The destination's size before the append: truncate back to it to undo.
    pub size_before: u64,
    /// Bytes read from the source.
    pub read: u64,
    /// Bytes added to the destination (differs from `read` when encoding).
    pub written: u64,
    /// How the bytes were moved.
    pub method: CopyMethod,
}

/// Buffer size of the user-space paths: large enough for full-speed sequential I/O, small enough
/// to keep memory flat whatever the file size.
const BUF_SIZE: usize = 256 * 1024;

/// Appends all of `src` (from its start) to the end of `dst`, using `copy_file_range` where the
/// kernel allows and a buffered copy otherwise. Does not sync.
///
/// `dst` must be open for writing without `O_APPEND`. On error `dst` is truncated back to its
/// former size (best effort; the error is returned either way).
pub fn append_file(dst: &File, src: &File) -> io::Result<Appended> {
    let size_before = dst.metadata()?.len();
    let result = copy_range(dst, src, size_before, None);
    finish(dst, size_before, result)
}

/// Appends exactly the first `len` bytes of `src` to the end of `dst`, like [`append_file`]:
/// bytes the source gained after it was checked are never copied, and a source that lost some
/// fails with [`io::ErrorKind::UnexpectedEof`] (and `dst` is truncated back). Does not sync.
pub fn append_file_exact(dst: &File, src: &File, len: u64) -> io::Result<Appended> {
    append_file_exact_at(dst, src, len, dst.metadata()?.len())
}

/// [`append_file_exact`] for a caller that knows where `dst` ends (it opened `dst`, holds it
/// under its lock and counts what it appends): the bytes go at `size_before`, without asking
/// the file's size again, and an error truncates back to it.
pub fn append_file_exact_at(
    dst: &File,
    src: &File,
    len: u64,
    size_before: u64,
) -> io::Result<Appended> {
    let result = copy_range(dst, src, size_before, Some(len)).and_then(|done| {
        if done.0 == len {
            Ok(done)
        } else {
            Err(short_source(done.0, len))
        }
    });
    finish(dst, size_before, result)
}

/// Appends `src`, encoded with `codec` as one new member or stream, to the end of `dst`. With
/// [`Codec::NONE`] the bytes are copied as they are. Does not sync.
///
/// On error `dst` is truncated back to its former size (best effort).
pub fn append_encoded<R: Read>(dst: &File, src: R, codec: Codec) -> io::Result<Appended> {
    let size_before = dst.metadata()?.len();
    let result = encode_at(dst, src, codec, size_before);
    finish(dst, size_before, result)
}

/// Like [`append_encoded`], but `src` must yield exactly `len` bytes: one that yields fewer fails
/// with [`io::ErrorKind::UnexpectedEof`], and `dst` is truncated back. Does not sync.
pub fn append_encoded_exact<R: Read>(
    dst: &File,
    src: R,
    codec: Codec,
    len: u64,
) -> io::Result<Appended> {
    let size_before = dst.metadata()?.len();
    let result = encode_at(dst, src, codec, size_before).and_then(|done| {
        if done.0 == len {
            Ok(done)
        } else {
            Err(short_source(done.0, len))
        }
    });
    finish(dst, size_before, result)
}

fn short_source(read: u64, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the source holds {read} of its {len} bytes"),
    )
}

/// Truncates `dst` back to `size_before` and syncs it, undoing appends made after that size was
/// taken. Truncating to a size at or beyond the current end does nothing.
pub fn truncate_back(dst: &File, size_before: u64) -> io::Result<()> {
    if dst.metadata()?.len() > size_before {
        dst.set_len(size_before)?;
        dst.sync_all()?;
    }
    Ok(())
}

fn finish(
    dst: &File,
    size_before: u64,
    result: io::Result<(u64, u64, CopyMethod)>,
) -> io::Result<Appended> {
    match result {
        Ok((read, written, method)) => Ok(Appended {
            size_before,
            read,
            written,
            method,
        }),
        Err(e) => {
            if let Err(undo) = dst.set_len(size_before) {
                log::error!(
                    "append failed ({e}) and truncating back to {size_before} bytes failed too: {undo}"
                );
            } else if is_disk_full(&e) {
                log::warn!("append ran out of space; truncated back to {size_before} bytes");
            }
            Err(e)
        }
    }
}

/// A large append starts the device writing each such step of it while the next is copied, so
/// that the sync that follows waits for the last step only; small appends leave it all to the
/// sync (many tiny writebacks would cost more than they overlap).
const WRITEBACK_STEP: u64 = 8 << 20;

/// Starts writing `len` bytes of `file` at `offset` to the device, without waiting. Linux's
/// `POSIX_FADV_DONTNEED` does that for dirty pages (and drops clean ones, which the day file's
/// writer never reads back). Only advice: an error changes nothing but speed.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    let _advice_only = nix::fcntl::posix_fadvise(
        file,
        offset,
        len,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// Copies `src` from its start (to its end, or at most `limit` bytes) into `dst` at `start`.
fn copy_range(
    dst: &File,
    src: &File,
    start: u64,
    limit: Option<u64>,
) -> io::Result<(u64, u64, CopyMethod)> {
    let mut off_in: i64 = 0;
    let mut off_out = i64::try_from(start).map_err(|_| io::Error::other("file too large"))?;
    let mut copied: u64 = 0;
    // Bytes copied since writeback of the destination was last started.
    let mut unstarted: u64 = 0;
    loop {
        let want = limit.map_or(WRITEBACK_STEP, |l| (l - copied).min(WRITEBACK_STEP));
        if want == 0 {
            return Ok((copied, copied, CopyMethod::CopyFileRange));
        }
        let want = usize::try_from(want).unwrap_or(1 << 30);
        match nix::fcntl::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) => return Ok((copied, copied, CopyMethod::CopyFileRange)),
            Ok(n) => {
                copied += n as u64;
                unstarted += n as u64;
                if unstarted >= WRITEBACK_STEP {
                    start_writeback(dst, start + copied - unstarted, unstarted);
                    unstarted = 0;
                }
            }
            Err(Errno::EINTR) => {}
            // Not supported here (old kernel, cross-device on some file systems, special files):
            // continue in user space from where the kernel stopped.
            Err(
                Errno::ENOSYS | Errno::EXDEV | Errno::EOPNOTSUPP | Errno::EINVAL | Errno::EBADF,
            ) => {
                let rest = buffered_copy(dst, src, copied, start + copied, limit)?;
                let total = copied + rest;
                let method = if copied == 0 {
                    CopyMethod::Buffered
                } else {
                    CopyMethod::CopyFileRange
                };
                return Ok((total, total, method));
            }
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
}

/// Copies `src` from `from` to its end (or until `limit` bytes from its start) into `dst` at
/// `at`, through a fixed buffer.
pub(crate) fn buffered_copy(
    dst: &File,
    src: &File,
    from: u64,
    at: u64,
    limit: Option<u64>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut read_pos = from;
    let mut write_pos = at;
    loop {
        let room = limit.map_or(buf.len() as u64, |l| l.saturating_sub(read_pos));
        let take = usize::try_from(room).map_or(buf.len(), |r| r.min(buf.len()));
        if take == 0 {
            return Ok(read_pos - from);
        }
        let n = match src.read_at(&mut buf[..take], read_pos) {
            Ok(0) => return Ok(read_pos - from),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all_at(&buf[..n], write_pos)?;
        read_pos += n as u64;
        write_pos += n as u64;
    }
}

fn encode_at<R: Read>(
    dst: &File,
    mut src: R,
    codec: Codec,
    start: u64,
) -> io::Result<(u64, u64, CopyMethod)> {
    let sink = BufWriter::with_capacity(
        BUF_SIZE,
        PositionedWriter {
            file: dst,
            pos: start,
        },
    );
    let mut encoder = codec.encoder(sink);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut read: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        encoder.write_all(&buf[..n])?;
        read += n as u64;
    }
    let sink = encoder.finish()?;
    let writer = sink.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok((read, writer.pos - start, CopyMethod::Encoded))
}

/// A `Write` that writes at explicit, advancing offsets (`pwrite`), independent of the file's
/// cursor and of `O_APPEND`.
#[derive(Debug)]
pub struct PositionedWriter<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> PositionedWriter<'a> {
    /// Writes into `file` starting at `pos`.
    pub fn new(file: &'a File, pos: u64) -> Self {
        PositionedWriter { file, pos }
    }

    /// The offset the next write goes to.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl Write for PositionedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Compression;
    use std::fs::OpenOptions;

    fn rw(path: &std::path::Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open")
    }

    #[test]
    fn appends_large_files_exactly_with_copy_file_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src_path = dir.path().join("src");
        // More than two writeback steps, and not a multiple of one.
        let len = 2 * WRITEBACK_STEP + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&src_path, &data).expect("write");
        let dst_path = dir.path().join("dst");
        std::fs::write(&dst_path, b"head").expect("write");
        let dst = rw(&dst_path);
        let src = File::open(&src_path).expect("open");
        let done = append_file(&dst, &src).expect("append");
        assert_eq!(done.size_before, 4);
        assert_eq!(done.read, data.len() as u64);
        assert_eq!(done.method, CopyMethod::CopyFileRange);
        let got = std::fs::read(&dst_path).expect("read");
        assert_eq!(&got[..4], b"head");
        assert!(got[4..] == data[..]);
        // An exact append that ends one byte into a step.
        let exact = WRITEBACK_STEP + 1;
        let done = append_file_exact(&dst, &src, exact).expect("append");
        assert_eq!((done.size_before, done.read), (4 + len, exact));
        let got = std::fs::read(&dst_path).expect("read");
        assert_eq!(got.len() as u64, 4 + len + exact);
        assert!(got[4 + data.len()..] == data[..got.len() - 4 - data.len()]);
    }

    #[test]
    fn falls_back_to_a_buffered_copy() {
        // copy_file_range refuses a destination opened with O_APPEND (EBADF): the fallback must
        // produce the same bytes.
        let dir = tempfile::tempdir().expect("tempdir");
        let src_path = dir.path().join("src");
        std::fs::write(&src_path, b"chunk").expect("write");
        let dst_path = dir.path().join("dst");
        std::fs::write(&dst_path, b"day:").expect("write");
        let dst = OpenOptions::new()
            .append(true)
            .open(&dst_path)
            .expect("open");
        let done = append_file(&dst, &File::open(&src_path).expect("open")).expect("append");
        assert_eq!(done.method, CopyMethod::Buffered);
        assert_eq!(std::fs::read(&dst_path).expect("read"), b"day:chunk");
    }

    #[test]
    fn exact_appends_copy_only_the_checked_length() {
        // A source that grew after it was checked: only the checked bytes go in, by either
        // path; one that shrank is refused and leaves the destination as it was.
        let dir = tempfile::tempdir().expect("tempdir");
        let src_path = dir.path().join("src");
        std::fs::write(&src_path, b"checked+grown").expect("write");
        let src = File::open(&src_path).expect("open");
        let dst_path = dir.path().join("dst");
        std::fs::write(&dst_path, b"day:").expect("write");
        let done = append_file_exact(&rw(&dst_path), &src, 7).expect("append");
        assert_eq!((done.size_before, done.read), (4, 7));
        assert_eq!(std::fs::read(&dst_path).expect("read"), b"day:checked");
        let appending = OpenOptions::new()
            .append(true)
            .open(&dst_path)
            .expect("open");
        let done = append_file_exact(&appending, &src, 7).expect("append");
        assert_eq!(done.method, CopyMethod::Buffered);
        assert_eq!(
            std::fs::read(&dst_path).expect("read"),
            b"day:checkedchecked"
        );
        let err = append_file_exact(&rw(&dst_path), &src, 100).expect_err("too short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            std::fs::read(&dst_path).expect("read"),
            b"day:checkedchecked"
        );
        // At a size the caller knows: there, and truncated back to it on a short source.
        let dst = rw(&dst_path);
        let done = append_file_exact_at(&dst, &src, 7, 18).expect("append");
        assert_eq!((done.size_before, done.read), (18, 7));
        let done = append_file_exact_at(&dst, &src, 3, 25).expect("append");
        assert_eq!(done.size_before, 25);
        assert_eq!(
            std::fs::read(&dst_path).expect("read"),
            b"day:checkedcheckedcheckedche"
        );
        let err = append_file_exact_at(&dst, &src, 100, 28).expect_err("too short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(std::fs::metadata(&dst_path).expect("stat").len(), 28);
    }

    #[test]
    fn exact_encoded_appends_refuse_a_short_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dst_path = dir.path().join("dst");
        std::fs::write(&dst_path, b"day:").expect("write");
        let dst = rw(&dst_path);
        let done = append_encoded_exact(&dst, &b"chunk"[..], Codec::NONE, 5).expect("exact");
        assert_eq!((done.size_before, done.read), (4, 5));
        let err = append_encoded_exact(&dst, &b"shor"[..], Codec::NONE, 5).expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(std::fs::read(&dst_path).expect("read"), b"day:chunk");
    }

    #[test]
    fn empty_source_appends_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("src"), b"").expect("write");
        let dst = rw(&dir.path().join("dst"));
        let done =
            append_file(&dst, &File::open(dir.path().join("src")).expect("open")).expect("append");
        assert_eq!((done.size_before, done.read, done.written), (0, 0, 0));
    }

    #[test]
    fn encoded_appends_add_decodable_members() {
        let dir = tempfile::tempdir().expect("tempdir");
        for c in Compression::ALL {
            let path = dir.path().join(format!("day{}", c.suffix()));
            let dst = rw(&path);
            let a = append_encoded(&dst, &b"first "[..], c.codec()).expect("append");
            let b = append_encoded(&dst, &b"second"[..], c.codec()).expect("append");
            assert_eq!(a.size_before, 0);
            assert_eq!(b.size_before, a.written);
            let mut out = String::new();
            crate::codec::open_decoded(&path)
                .expect("open")
                .read_to_string(&mut out)
                .expect("decode");
            assert_eq!(out, "first second", "{c}");
            truncate_back(&dst, b.size_before).expect("truncate");
            let mut out = String::new();
            crate::codec::open_decoded(&path)
                .expect("open")
                .read_to_string(&mut out)
                .expect("decode");
            assert_eq!(
                out, "first ",
                "{c}: truncating back removes exactly one member"
            );
        }
    }

    #[test]
    fn a_failing_source_leaves_the_destination_as_it_was() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("source broke"));
                }
                let n = buf.len().min(self.0).min(100_000);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("day");
        std::fs::write(&path, b"intact").expect("write");
        let dst = rw(&path);
        let err = append_encoded(&dst, Failing(1_000_000), Codec::NONE).expect_err("fails");
        assert_eq!(err.to_string(), "source broke");
        assert_eq!(std::fs::read(&path).expect("read"), b"intact");
    }
}
