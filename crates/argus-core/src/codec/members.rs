//! Data written as a series of independent members (gzip) or streams (bzip2), each compressed
//! whole in memory, on helper threads for large data: [`MemberEncoder`]. Every reader of either
//! format reads the series as one stream.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// How one member is compressed, and how large it may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Packer {
    /// A gzip member by libdeflate, at this level, of at most
    /// [`GZIP_WHOLE_LIMIT`](super::GZIP_WHOLE_LIMIT) bytes.
    #[cfg(feature = "gzip")]
    Gzip(u32),
    /// A bzip2 stream at this level, of at most [`BZIP2_MEMBER_BLOCKS`] of its blocks.
    #[cfg(feature = "bzip2")]
    Bzip2(u32),
}

/// A bzip2 stream written by [`MemberEncoder`] holds at most this many blocks of input (the
/// level's block size, 100 kB per level): bzip2 compresses each block on its own anyway, so
/// cutting streams at block multiples costs only their headers and the last blocks' partial
/// fill. Four blocks keep a member in flight at 3.6 MB at level 9.
#[cfg(feature = "bzip2")]
pub const BZIP2_MEMBER_BLOCKS: usize = 4;

impl Packer {
    /// The most input one member holds.
    fn limit(self) -> usize {
        match self {
            #[cfg(feature = "gzip")]
            Packer::Gzip(_) => super::GZIP_WHOLE_LIMIT,
            #[cfg(feature = "bzip2")]
            Packer::Bzip2(level) => {
                BZIP2_MEMBER_BLOCKS * 100_000 * usize::try_from(level.clamp(1, 9)).unwrap_or(9)
            }
        }
    }

    /// The failpoint hit after each member is compressed (tests kill there).
    fn failpoint(self) -> &'static str {
        match self {
            #[cfg(feature = "gzip")]
            Packer::Gzip(_) => "gzip-member",
            #[cfg(feature = "bzip2")]
            Packer::Bzip2(_) => "bzip2-member",
        }
    }

    /// Compresses `data` into one member in `packed` (replacing what it held).
    fn pack(self, data: &[u8], packed: &mut Vec<u8>) -> io::Result<()> {
        let done = match self {
            #[cfg(feature = "gzip")]
            Packer::Gzip(level) => super::gzip::member(level, data, packed),
            #[cfg(feature = "bzip2")]
            Packer::Bzip2(level) => {
                packed.clear();
                let mut e = bzip2::write::BzEncoder::new(
                    std::mem::take(packed),
                    bzip2::Compression::new(level),
                );
                e.write_all(data)?;
                *packed = e.finish()?;
                Ok(())
            }
        };
        crate::failpoint::hit(self.failpoint());
        done
    }
}

thread_local! {
    /// The output buffer of the caller's thread, kept between members and encoders: a member
    /// is large enough that a fresh allocation is fresh pages each time.
    static SPARE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An encoder writing members of at most its packer's limit: it buffers up to the limit and
/// compresses the buffer as one member when it is full or at [`MemberEncoder::finish`]. Data of
/// at most the limit is one standard member; larger data is several, which decode as one.
///
/// With more than one thread ([`MemberEncoder::with_threads`]), the members of data larger than
/// the limit are compressed on that many helper threads, started at the second member, at most
/// one member per thread in flight (memory stays flat: a member in flight more made one upload
/// 9 % faster and cost 1.5 MiB with gzip), and written in order by the caller's thread: the
/// output is byte for byte what one thread writes.
///
/// [`Write::flush`] only flushes the output: what is buffered is compressed when its member is
/// full or finished.
#[derive(Debug)]
pub struct MemberEncoder<W: Write> {
    packer: Packer,
    out: W,
    held: Vec<u8>,
    /// Members written (or handed to the pool) so far.
    members: u64,
    threads: usize,
    pool: Option<Pool>,
}

impl<W: Write> MemberEncoder<W> {
    pub(super) fn new(out: W, packer: Packer) -> Self {
        MemberEncoder {
            packer,
            out,
            held: Vec::new(),
            members: 0,
            threads: 1,
            pool: None,
        }
    }

    /// Compresses the members of large data on `threads` helper threads (1: on the caller's).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Writes the last member (an empty one when nothing was written at all) and returns the
    /// output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.held.is_empty() || self.members == 0 {
            self.member()?;
        }
        if let Some(pool) = &mut self.pool {
            pool.close();
            while pool.written < pool.sent {
                pool.write_ready(&mut self.out, true)?;
            }
            pool.join()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Compresses what is held as one member and writes it, or hands it to the pool.
    fn member(&mut self) -> io::Result<()> {
        self.members += 1;
        if self.threads > 1 && (self.pool.is_some() || self.held.len() == self.packer.limit()) {
            let pool = self
                .pool
                .get_or_insert_with(|| Pool::start(self.threads, self.packer));
            let spare = pool.spare.pop().unwrap_or_default();
            let block = std::mem::replace(&mut self.held, spare);
            pool.send(block)?;
            // Write what is done; wait while as many members as the pool may hold are out.
            pool.write_ready(&mut self.out, false)?;
            while pool.sent - pool.written >= self.threads as u64 {
                pool.write_ready(&mut self.out, true)?;
            }
            return Ok(());
        }
        let mut packed = SPARE.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let written = self
            .packer
            .pack(&self.held, &mut packed)
            .and_then(|()| self.out.write_all(&packed));
        // The buffer is kept for the next member (at most the bound of the limit).
        SPARE.with(|s| *s.borrow_mut() = packed);
        written?;
        self.held.clear();
        Ok(())
    }
}

impl<W: Write> Write for MemberEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.packer.limit();
        if self.held.len() == limit {
            self.member()?;
        }
        let n = buf.len().min(limit - self.held.len());
        self.held.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The helper threads of one encoder: blocks go out numbered, members come back in any order
/// and are written in order.
#[derive(Debug)]
struct Pool {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<thread::JoinHandle<()>>,
    /// Blocks sent, and members written, so far.
    sent: u64,
    written: u64,
    ready: BTreeMap<u64, (io::Result<()>, Vec<u8>)>,
    /// Input and output buffers back from the workers, for the next blocks: every buffer is
    /// allocated by the caller's thread and reused, so that memory stays at the blocks in
    /// flight whatever the size of the data.
    spare: Vec<Vec<u8>>,
    spare_packed: Vec<Vec<u8>>,
}

/// A block to compress: its number, its bytes, and a buffer for its member.
type Job = (u64, Vec<u8>, Vec<u8>);

/// A block compressed: its number, whether it went well, its input buffer and its member.
type Done = (u64, io::Result<()>, Vec<u8>, Vec<u8>);

impl Pool {
    fn start(threads: usize, packer: Packer) -> Pool {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(threads);
        let inbox = Arc::new(Mutex::new(inbox));
        let (finished, done) = mpsc::channel::<Done>();
        let workers = (0..threads)
            .map(|_| {
                let inbox = Arc::clone(&inbox);
                let finished = finished.clone();
                thread::spawn(move || {
                    loop {
                        let job = inbox
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok((n, mut block, mut packed)) = job else {
                            break;
                        };
                        let done = packer.pack(&block, &mut packed);
                        block.clear();
                        if finished.send((n, done, block, packed)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            done,
            workers,
            sent: 0,
            written: 0,
            ready: BTreeMap::new(),
            spare: Vec::new(),
            spare_packed: Vec::new(),
        }
    }

    fn send(&mut self, block: Vec<u8>) -> io::Result<()> {
        let gone = || io::Error::other("the compression threads stopped");
        let packed = self.spare_packed.pop().unwrap_or_default();
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send((self.sent, block, packed))
            .map_err(|_| gone())?;
        self.sent += 1;
        Ok(())
    }

    /// Writes every member that is next in order; with `wait`, first waits for one more.
    fn write_ready(&mut self, out: &mut impl Write, wait: bool) -> io::Result<()> {
        if wait {
            let (n, done, block, packed) = self
                .done
                .recv()
                .map_err(|_| io::Error::other("the compression threads stopped"))?;
            self.ready.insert(n, (done, packed));
            self.spare.push(block);
        }
        while let Ok((n, done, block, packed)) = self.done.try_recv() {
            self.ready.insert(n, (done, packed));
            self.spare.push(block);
        }
        while let Some((done, packed)) = self.ready.remove(&self.written) {
            done?;
            out.write_all(&packed)?;
            self.spare_packed.push(packed);
            self.written += 1;
        }
        Ok(())
    }

    /// No more blocks: the workers end once the queue is empty.
    fn close(&mut self) {
        self.jobs = None;
    }

    fn join(&mut self) -> io::Result<()> {
        self.close();
        for worker in self.workers.drain(..) {
            worker
                .join()
                .map_err(|_| io::Error::other("a compression thread panicked"))?;
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ended = self.join();
    }
}
