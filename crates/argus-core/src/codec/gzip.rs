//! gzip written by libdeflate as a series of members of at most [`GZIP_WHOLE_LIMIT`] bytes
//! each, on helper threads for large data: [`GzipEncoder`].

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// A gzip file is written as members of at most this many bytes each, each compressed whole, in
/// memory, by libdeflate. libdeflate compresses about twice as fast as zlib at the same level,
/// and smaller; every gzip reader reads the members as one stream (`gzip -dc`, `zcat`, `ra`,
/// [`super::Compression::decoder`]); the limit keeps memory flat in the size of the data, and
/// each member is independent work for a core. Measured on 256 MiB of argus data at level 6:
/// members of 256 KiB come out 0.2 % larger than members of 1 MiB, and 5.7 % smaller than one
/// zlib stream; memory with two helper threads stays under 10 MiB.
pub const GZIP_WHOLE_LIMIT: usize = 256 << 10;

/// A gzip encoder: buffers up to [`GZIP_WHOLE_LIMIT`] bytes and compresses them as one member
/// when the buffer is full or at [`GzipEncoder::finish`]. Data of at most the limit is one
/// standard gzip member; larger data is several, which decode as one.
///
/// With more than one thread ([`GzipEncoder::with_threads`]), the members of data larger than
/// the limit are compressed on that many helper threads, started at the second member, at most
/// one member per thread in flight (memory stays flat: a member in flight more made one upload
/// 9 % faster and cost 1.5 MiB), and written in order by the caller's thread: the output is
/// byte for byte what one thread writes.
///
/// [`Write::flush`] only flushes the output: what is buffered is compressed when its member is
/// full or finished.
#[derive(Debug)]
pub struct GzipEncoder<W: Write> {
    level: u32,
    out: W,
    held: Vec<u8>,
    /// Members written (or handed to the pool) so far.
    members: u64,
    threads: usize,
    pool: Option<Pool>,
}

impl<W: Write> GzipEncoder<W> {
    pub(super) fn new(out: W, level: u32) -> Self {
        GzipEncoder {
            level,
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
        if self.threads > 1 && (self.pool.is_some() || self.held.len() == GZIP_WHOLE_LIMIT) {
            let pool = self
                .pool
                .get_or_insert_with(|| Pool::start(self.threads, self.level));
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
        let packed = WHOLE.with(|whole| whole.borrow_mut().compress(self.level, &self.held))?;
        crate::failpoint::hit("gzip-member");
        let written = self.out.write_all(&packed);
        // The buffer is kept for the next member (at most the bound of the limit).
        WHOLE.with(|whole| whole.borrow_mut().packed = packed);
        written?;
        self.held.clear();
        Ok(())
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
    fn start(threads: usize, level: u32) -> Pool {
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
                        let done = WHOLE.with(|whole| {
                            whole.borrow_mut().compress_into(level, &block, &mut packed)
                        });
                        crate::failpoint::hit("gzip-member");
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
        let gone = || io::Error::other("the gzip compression threads stopped");
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
                .map_err(|_| io::Error::other("the gzip compression threads stopped"))?;
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
                .map_err(|_| io::Error::other("a gzip compression thread panicked"))?;
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ended = self.join();
    }
}

/// One libdeflate compressor per thread and level, kept: setting one up costs more than
/// compressing a small member, and its tables are large enough to be fresh pages each time.
struct Whole {
    compressor: Option<(u32, libdeflater::Compressor)>,
    packed: Vec<u8>,
}

thread_local! {
    static WHOLE: std::cell::RefCell<Whole> = const {
        std::cell::RefCell::new(Whole {
            compressor: None,
            packed: Vec::new(),
        })
    };
}

impl Whole {
    /// Compresses `data` into one gzip member, in the kept buffer (give it back when done).
    fn compress(&mut self, level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut packed = std::mem::take(&mut self.packed);
        self.compress_into(level, data, &mut packed)?;
        Ok(packed)
    }

    /// Compresses `data` into one gzip member in `packed` (replacing what it held).
    fn compress_into(&mut self, level: u32, data: &[u8], packed: &mut Vec<u8>) -> io::Result<()> {
        let compressor = match &mut self.compressor {
            Some((l, c)) if *l == level => c,
            slot => {
                let lvl = i32::try_from(level)
                    .ok()
                    .and_then(|l| libdeflater::CompressionLvl::new(l).ok())
                    .ok_or_else(|| io::Error::other(format!("no gzip level {level}")))?;
                &mut slot.insert((level, libdeflater::Compressor::new(lvl))).1
            }
        };
        packed.resize(compressor.gzip_compress_bound(data.len()), 0);
        let n = compressor
            .gzip_compress(data, packed)
            .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
        packed.truncate(n);
        Ok(())
    }
}

impl<W: Write> Write for GzipEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.held.len() == GZIP_WHOLE_LIMIT {
            self.member()?;
        }
        let n = buf.len().min(GZIP_WHOLE_LIMIT - self.held.len());
        self.held.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
