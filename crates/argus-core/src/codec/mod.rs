//! Streaming compression: `none | gzip | bzip2 | xz`, with levels.
//!
//! Every format here can hold several members (gzip) or streams (bzip2, xz) one after another in
//! one file, and the decoders read all of them. That is what lets a late chunk join a day file that
//! was already compressed: encode the chunk as a new member at the end of the file (an encoded
//! append, which builds on this module). The stock argus `ra -r` reads such files directly, as do
//! `gzip -dc`, `bzip2 -dc` and `xz -dc`.
//!
//! Each format's encoder and decoder is compiled only with the crate feature of its name
//! (`gzip`, `bzip2`, `xz`; all three in the default `codecs`). [`Compression`] always knows
//! every format (names, suffixes, sniffing); a format compiled out is refused by [`Codec::new`]
//! with [`Error::CodecUnavailable`], and an encoder or decoder made for it anyway fails its
//! first read or write with [`io::ErrorKind::Unsupported`].
//!
//! ```
//! use std::io::{Read, Write};
//! use argus_core::codec::{Codec, Compression};
//!
//! let codec: Codec = "xz".parse::<Compression>()?.with_level(1)?;
//! let mut enc = codec.encoder(Vec::new());
//! enc.write_all(b"first member")?;
//! let mut file = enc.finish()?;
//! let mut enc = codec.encoder(Vec::new());
//! enc.write_all(b", second member")?;
//! file.extend(enc.finish()?);
//!
//! let mut text = String::new();
//! Compression::sniff(&file).decoder(&file[..]).read_to_string(&mut text)?;
//! assert_eq!(text, "first member, second member");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::error::{Error, Result};

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(any(feature = "gzip", feature = "bzip2"))]
mod members;

#[cfg(feature = "gzip")]
pub use gzip::{GZIP_WHOLE_LIMIT, GzipEncoder};
#[cfg(feature = "bzip2")]
pub use members::BZIP2_MEMBER_BLOCKS;
#[cfg(any(feature = "gzip", feature = "bzip2"))]
pub use members::MemberEncoder;

/// A compression format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// Bytes are stored as they are.
    None,
    /// gzip (RFC 1952), written with zlib-rs.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz (LZMA2), single-threaded, CRC64 check.
    Xz,
}

impl Compression {
    /// Every format, `None` first.
    pub const ALL: [Compression; 4] = [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
    ];

    /// The name used in config files: `none`, `gzip`, `bzip2` or `xz`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// The file-name suffix: empty, `.gz`, `.bz2` or `.xz`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Xz => ".xz",
        }
    }

    /// The levels the format accepts (`0..=0` for `None`).
    pub fn levels(self) -> RangeInclusive<u32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip | Compression::Bzip2 => 1..=9,
            Compression::Xz => 0..=9,
        }
    }

    /// The level used when none is given: the command-line tools' own defaults (gzip 6, bzip2 9,
    /// xz 6). On argus data gzip 9 is five times slower than 6 for 3 % smaller output.
    pub fn default_level(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Gzip | Compression::Xz => 6,
            Compression::Bzip2 => 9,
        }
    }

    /// True when this build can encode and decode the format: `None` always, the others when
    /// their cargo feature is on.
    pub const fn is_available(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Bzip2 => cfg!(feature = "bzip2"),
            Compression::Xz => cfg!(feature = "xz"),
        }
    }

    /// This format at its default level. Unlike [`Codec::new`] this does not check
    /// [`Compression::is_available`].
    pub fn codec(self) -> Codec {
        Codec {
            compression: self,
            level: self.default_level(),
        }
    }

    /// This format at `level`, checked against [`Compression::levels`].
    pub fn with_level(self, level: u32) -> Result<Codec> {
        Codec::new(self, level)
    }

    /// Recognises a compressed stream by its first bytes (as `ra` does). Anything that is not
    /// gzip, bzip2 or xz, including data too short to tell, is `None`.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// Splits a compression suffix off a file name: `("a.out", Gzip)` for `a.out.gz`, and
    /// `(name, None)` when the name carries no suffix this crate writes.
    pub fn split_suffix(name: &str) -> (&str, Compression) {
        for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz] {
            if let Some(stem) = name.strip_suffix(c.suffix()) {
                return (stem, c);
            }
        }
        (name, Compression::None)
    }

    /// A streaming decoder that reads every member or stream in `input` to the end (for a
    /// format compiled out, one whose first read fails).
    pub fn decoder<R: BufRead>(self, input: R) -> Decoder<R> {
        match self {
            Compression::None => Decoder::None(input),
            #[cfg(feature = "gzip")]
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(input)),
            #[cfg(feature = "bzip2")]
            Compression::Bzip2 => Decoder::Bzip2(bzip2::bufread::MultiBzDecoder::new(input)),
            #[cfg(feature = "xz")]
            Compression::Xz => Decoder::Xz(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            #[allow(unreachable_patterns, reason = "reached only with a codec feature off")]
            compiled_out => Decoder::Unavailable(compiled_out.name(), input),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses a config value: `none`, `gzip`, `bzip2` or `xz` (also `gz`, `bz2` and the empty
    /// string for none), case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "bzip2" | "bz2" => Ok(Compression::Bzip2),
            "xz" => Ok(Compression::Xz),
            _ => Err(Error::InvalidCompression {
                input: s.to_owned(),
                reason: "expected one of none, gzip, bzip2, xz".to_owned(),
            }),
        }
    }
}

/// A compression format with its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Codec {
    compression: Compression,
    level: u32,
}

impl Codec {
    /// No compression.
    pub const NONE: Codec = Codec {
        compression: Compression::None,
        level: 0,
    };

    /// `compression` at `level`, which must lie in [`Compression::levels`]. For `None` every level
    /// is accepted and ignored, so a config may keep its level key while turning compression off.
    /// A format whose cargo feature is off is [`Error::CodecUnavailable`].
    pub fn new(compression: Compression, level: u32) -> Result<Self> {
        if compression == Compression::None {
            return Ok(Codec::NONE);
        }
        if !compression.is_available() {
            return Err(Error::CodecUnavailable {
                format: compression.name(),
            });
        }
        let levels = compression.levels();
        if !levels.contains(&level) {
            return Err(Error::InvalidCompression {
                input: format!("{compression} level {level}"),
                reason: format!(
                    "{compression} levels are {} to {}",
                    levels.start(),
                    levels.end()
                ),
            });
        }
        Ok(Codec { compression, level })
    }

    /// The format.
    pub fn compression(self) -> Compression {
        self.compression
    }

    /// The level (0 for `None`).
    pub fn level(self) -> u32 {
        self.level
    }

    /// The file-name suffix of the format.
    pub fn suffix(self) -> &'static str {
        self.compression.suffix()
    }

    /// Parses a compression command as the 2003 recipe's configs hold it, without running it:
    /// `"/bin/gzip -9"`, `"/usr/bin/bzip2 -9"`, `"xz"`, or `""` for none.
    ///
    /// The program is recognised by its base name: `gzip`, `bzip2`, `xz`, or `compress`. The
    /// `.Z` format of `compress` is not written; it becomes gzip at the default level, which `ra`
    /// reads just as well. At most one option follows: `-N` (a level), `--fast` or `--best`.
    /// Anything else (other programs, pipes, redirections, more options) is refused, because the
    /// recipe ran these strings through `eval` and a config must never run commands.
    pub fn from_recipe_command(command: &str) -> Result<Self> {
        let refuse = |reason: String| Error::InvalidCompression {
            input: command.to_owned(),
            reason,
        };
        let mut words = command.split_ascii_whitespace();
        let Some(program) = words.next() else {
            return Ok(Codec::NONE);
        };
        let base = program.rsplit('/').next().unwrap_or(program);
        let compression = match base {
            "gzip" => Compression::Gzip,
            "bzip2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "compress" => Compression::Gzip,
            _ => {
                return Err(refuse(format!(
                    "program {base:?} is not one of gzip, bzip2, xz, compress"
                )));
            }
        };
        let option = words.next();
        if let Some(extra) = words.next() {
            return Err(refuse(format!(
                "unexpected {extra:?}: only one option (-1 .. -9, --fast, --best) is understood"
            )));
        }
        if base == "compress" {
            if let Some(option) = option {
                return Err(refuse(format!(
                    "option {option:?} of compress is not understood"
                )));
            }
            return Codec::new(compression, compression.default_level());
        }
        let level = match option {
            None => compression.default_level(),
            Some("--fast") => 1,
            Some("--best") => 9,
            Some(opt) => match opt.strip_prefix('-').map(str::as_bytes) {
                Some([d @ b'0'..=b'9']) => u32::from(d - b'0'),
                _ => {
                    return Err(refuse(format!(
                        "option {opt:?} is not understood: only -1 .. -9, --fast and --best are"
                    )));
                }
            },
        };
        Codec::new(compression, level).map_err(|e| match e {
            Error::InvalidCompression { reason, .. } => refuse(reason),
            other => other,
        })
    }

    /// A streaming encoder writing one complete member (gzip) or stream (bzip2, xz) to `out`.
    /// Call [`Encoder::finish`]: dropping the encoder leaves the member unterminated. For a
    /// format compiled out (a codec made with [`Compression::codec`]), every write fails.
    pub fn encoder<W: Write>(self, out: W) -> Encoder<W> {
        let level = self.level;
        match self.compression {
            Compression::None => Encoder::None(out),
            #[cfg(feature = "gzip")]
            Compression::Gzip => {
                Encoder::Gzip(MemberEncoder::new(out, members::Packer::Gzip(level)))
            }
            #[cfg(feature = "bzip2")]
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                out,
                bzip2::Compression::new(level),
            )),
            #[cfg(feature = "xz")]
            Compression::Xz => Encoder::Xz(liblzma::write::XzEncoder::new(out, level)),
            #[allow(unreachable_patterns, reason = "reached only with a codec feature off")]
            compiled_out => {
                let _unused = level;
                Encoder::Unavailable(compiled_out.name(), out)
            }
        }
    }

    /// [`Codec::encoder`], compressing on `threads` threads: gzip compresses data larger than
    /// one member on helper threads ([`MemberEncoder::with_threads`]), the same bytes as one
    /// thread; bzip2 writes streams of [`BZIP2_MEMBER_BLOCKS`] blocks, compressed on helper
    /// threads (the same bytes for any number of threads above one); xz uses liblzma's
    /// multithreaded encoder (independent blocks of three times the dictionary, the same for
    /// any number of threads above one; about three blocks of memory per thread, as `xz -T`).
    pub fn parallel_encoder<W: Write>(self, out: W, threads: usize) -> Encoder<W> {
        #[cfg(feature = "bzip2")]
        if self.compression == Compression::Bzip2 && threads > 1 {
            let packer = members::Packer::Bzip2(self.level);
            return Encoder::Bzip2Members(MemberEncoder::new(out, packer).with_threads(threads));
        }
        #[cfg(feature = "xz")]
        if self.compression == Compression::Xz && threads > 1 {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(u32::try_from(threads).unwrap_or(u32::MAX))
                .preset(self.level)
                .check(liblzma::stream::Check::Crc64)
                .encoder();
            // Without threads in this liblzma, one thread.
            if let Ok(stream) = stream {
                return Encoder::Xz(liblzma::write::XzEncoder::new_stream(out, stream));
            }
            return self.encoder(out);
        }
        match self.encoder(out) {
            #[cfg(feature = "gzip")]
            Encoder::Gzip(e) => Encoder::Gzip(e.with_threads(threads)),
            other => {
                let _one_thread = threads;
                other
            }
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.compression {
            Compression::None => f.write_str("none"),
            c => write!(f, "{c} -{}", self.level),
        }
    }
}

/// A streaming encoder for one member or stream; see [`Codec::encoder`].
#[allow(
    missing_debug_implementations,
    reason = "the codec crates' encoders do not implement Debug"
)]
pub enum Encoder<W: Write> {
    /// Pass-through.
    None(W),
    /// gzip.
    #[cfg(feature = "gzip")]
    Gzip(GzipEncoder<W>),
    /// bzip2.
    #[cfg(feature = "bzip2")]
    Bzip2(bzip2::write::BzEncoder<W>),
    /// bzip2 as a series of streams, on helper threads ([`Codec::parallel_encoder`]).
    #[cfg(feature = "bzip2")]
    Bzip2Members(MemberEncoder<W>),
    /// xz.
    #[cfg(feature = "xz")]
    Xz(liblzma::write::XzEncoder<W>),
    /// A format this build was compiled without (its name): every write fails.
    Unavailable(&'static str, W),
}

impl<W: Write> Encoder<W> {
    /// Writes the member's trailer, flushes, and returns the output.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
            Encoder::Unavailable(format, _) => Err(unavailable(format)),
            #[cfg(feature = "gzip")]
            Encoder::Gzip(e) => e.finish(),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2(e) => e.finish(),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2Members(e) => e.finish(),
            #[cfg(feature = "xz")]
            Encoder::Xz(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Unavailable(format, _) => Err(unavailable(format)),
            #[cfg(feature = "gzip")]
            Encoder::Gzip(e) => e.write(buf),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2(e) => e.write(buf),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2Members(e) => e.write(buf),
            #[cfg(feature = "xz")]
            Encoder::Xz(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.write_all(buf),
            Encoder::Unavailable(format, _) => Err(unavailable(format)),
            #[cfg(feature = "gzip")]
            Encoder::Gzip(e) => e.write_all(buf),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2(e) => e.write_all(buf),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2Members(e) => e.write_all(buf),
            #[cfg(feature = "xz")]
            Encoder::Xz(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Unavailable(_, w) => w.flush(),
            #[cfg(feature = "gzip")]
            Encoder::Gzip(e) => e.flush(),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2(e) => e.flush(),
            #[cfg(feature = "bzip2")]
            Encoder::Bzip2Members(e) => e.flush(),
            #[cfg(feature = "xz")]
            Encoder::Xz(e) => e.flush(),
        }
    }
}

/// A streaming decoder reading all members or streams; see [`Compression::decoder`].
#[allow(
    missing_debug_implementations,
    reason = "the codec crates' decoders do not implement Debug"
)]
pub enum Decoder<R: BufRead> {
    /// Pass-through.
    None(R),
    /// gzip, all members.
    #[cfg(feature = "gzip")]
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    /// bzip2, all streams.
    #[cfg(feature = "bzip2")]
    Bzip2(bzip2::bufread::MultiBzDecoder<R>),
    /// xz, all streams.
    #[cfg(feature = "xz")]
    Xz(liblzma::bufread::XzDecoder<R>),
    /// A format this build was compiled without (its name): every read fails.
    Unavailable(&'static str, R),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Unavailable(format, _) => Err(unavailable(format)),
            #[cfg(feature = "gzip")]
            Decoder::Gzip(d) => d.read(buf),
            #[cfg(feature = "bzip2")]
            Decoder::Bzip2(d) => d.read(buf),
            #[cfg(feature = "xz")]
            Decoder::Xz(d) => d.read(buf),
        }
    }
}

/// The error of an encoder or decoder for a format compiled out.
fn unavailable(format: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{format} is not compiled into this build (cargo feature `{format}` of argus-core)"
        ),
    )
}

/// Opens a possibly compressed file for reading, choosing the decoder by the file's first bytes
/// (not its name), as `ra -r` does.
pub fn open_decoded(path: &std::path::Path) -> Result<Decoder<io::BufReader<std::fs::File>>> {
    use crate::error::IoContext;
    let file = std::fs::File::open(path).at("open", path)?;
    let mut reader = io::BufReader::with_capacity(128 * 1024, file);
    let head = reader.fill_buf().at("read", path)?;
    let compression = Compression::sniff(head);
    Ok(compression.decoder(reader))
}

#[cfg(test)]
mod tests;
