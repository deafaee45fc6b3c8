//! gzip members compressed whole by libdeflate when they are small, streamed through zlib-rs
//! when they are not: [`GzipEncoder`].

use std::io::{self, Write};

/// gzip members up to this many bytes are compressed whole, in memory, by libdeflate; larger
/// ones stream through zlib. libdeflate compresses about twice as fast at the same level (and a
/// little smaller), which is what a backlog of small uploads spends its time on; the limit keeps
/// memory flat in the size of the data.
pub const GZIP_WHOLE_LIMIT: usize = 1 << 20;

/// A gzip encoder for one member: buffers up to [`GZIP_WHOLE_LIMIT`] bytes and compresses them
/// in one call at [`GzipEncoder::finish`]; once more arrives, it turns into a streaming encoder
/// fed with what it held. Either way the output is one standard gzip member.
///
/// While buffering, [`Write::flush`] only flushes the output: nothing is compressed until the
/// member is finished or the buffer overflows.
#[allow(
    missing_debug_implementations,
    reason = "flate2's encoder does not implement Debug"
)]
pub struct GzipEncoder<W: Write> {
    level: u32,
    state: GzipState<W>,
}

enum GzipState<W: Write> {
    Whole {
        out: W,
        held: Vec<u8>,
    },
    Stream(Box<flate2::write::GzEncoder<W>>),
    /// Only while switching from one to the other.
    Switching,
}

impl<W: Write> GzipEncoder<W> {
    pub(super) fn new(out: W, level: u32) -> Self {
        GzipEncoder {
            level,
            state: GzipState::Whole {
                out,
                held: Vec::new(),
            },
        }
    }

    /// Writes the whole member and returns the output.
    pub fn finish(self) -> io::Result<W> {
        match self.state {
            GzipState::Whole { mut out, held } => {
                let packed = WHOLE.with(|whole| whole.borrow_mut().compress(self.level, &held))?;
                let written = out.write_all(&packed).and_then(|()| out.flush());
                // The buffer is kept for the next member (at most the bound of the limit).
                WHOLE.with(|whole| whole.borrow_mut().packed = packed);
                written.map(|()| out)
            }
            GzipState::Stream(e) => e.finish(),
            GzipState::Switching => Err(io::Error::other("gzip encoder failed before")),
        }
    }

    fn stream(&mut self) -> io::Result<&mut flate2::write::GzEncoder<W>> {
        if let GzipState::Whole { .. } = self.state {
            let GzipState::Whole { out, held } =
                std::mem::replace(&mut self.state, GzipState::Switching)
            else {
                unreachable!("matched just above")
            };
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(self.level));
            e.write_all(&held)?;
            self.state = GzipState::Stream(Box::new(e));
        }
        match &mut self.state {
            GzipState::Stream(e) => Ok(e),
            _ => Err(io::Error::other("gzip encoder failed before")),
        }
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
        if let GzipState::Whole { held, .. } = &mut self.state
            && held.len() + buf.len() <= GZIP_WHOLE_LIMIT
        {
            held.extend_from_slice(buf);
            return Ok(buf.len());
        }
        self.stream()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            GzipState::Whole { out, .. } => out.flush(),
            GzipState::Stream(e) => e.flush(),
            GzipState::Switching => Err(io::Error::other("gzip encoder failed before")),
        }
    }
}
