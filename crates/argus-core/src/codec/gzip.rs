//! gzip written by libdeflate as a series of members of at most [`GZIP_WHOLE_LIMIT`] bytes
//! each: [`GzipEncoder`].

use std::io::{self, Write};

/// A gzip file is written as members of at most this many bytes each, each compressed whole, in
/// memory, by libdeflate. libdeflate compresses about twice as fast as zlib at the same level
/// (and a little smaller); a member of this size costs under 0.01 % of ratio (20 bytes of
/// header and trailer, and a window that starts empty), every gzip reader reads the members as
/// one stream (`gzip -dc`, `zcat`, `ra`, [`super::Compression::decoder`]), the limit keeps
/// memory flat in the size of the data, and each member is independent work for a core.
pub const GZIP_WHOLE_LIMIT: usize = 1 << 20;

/// A gzip encoder: buffers up to [`GZIP_WHOLE_LIMIT`] bytes and compresses them as one member
/// when the buffer is full or at [`GzipEncoder::finish`]. Data of at most the limit is one
/// standard gzip member; larger data is several, which decode as one.
///
/// [`Write::flush`] only flushes the output: what is buffered is compressed when its member is
/// full or finished.
#[derive(Debug)]
pub struct GzipEncoder<W: Write> {
    level: u32,
    out: W,
    held: Vec<u8>,
    /// Members written so far.
    members: u64,
}

impl<W: Write> GzipEncoder<W> {
    pub(super) fn new(out: W, level: u32) -> Self {
        GzipEncoder {
            level,
            out,
            held: Vec::new(),
            members: 0,
        }
    }

    /// Writes the last member (an empty one when nothing was written at all) and returns the
    /// output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.held.is_empty() || self.members == 0 {
            self.member()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Compresses what is held as one member and writes it.
    fn member(&mut self) -> io::Result<()> {
        let packed = WHOLE.with(|whole| whole.borrow_mut().compress(self.level, &self.held))?;
        let written = self.out.write_all(&packed);
        // The buffer is kept for the next member (at most the bound of the limit).
        WHOLE.with(|whole| whole.borrow_mut().packed = packed);
        written?;
        self.held.clear();
        self.members += 1;
        Ok(())
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
        let mut packed = std::mem::take(&mut self.packed);
        packed.resize(compressor.gzip_compress_bound(data.len()), 0);
        let n = compressor
            .gzip_compress(data, &mut packed)
            .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
        packed.truncate(n);
        Ok(packed)
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
