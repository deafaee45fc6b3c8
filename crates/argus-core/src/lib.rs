//! Building blocks for argus flow-data pipelines, shared by `harvest_argus`, `process_argus` and
//! any integrity tooling that handles argus files.
//!
//! - [`record`]: walk argus 3 and argus 5 record framing in constant memory: clean, truncated or corrupt;
//!   decode what a management record (MAR) says about its sensor.
//! - [`codec`]: streaming gzip / bzip2 / xz with levels, multi-member files, recipe commands.
//! - [`publish`]: durable atomic publishing that never replaces a file, group commit, cleanup of
//!   temporary files left by a crash, durable moves.
//! - [`append`]: constant-memory appends (`copy_file_range` or encoded), undone by truncation;
//!   [`ranges`]: byte ranges, and readers that yield only them.
//! - [`retention`]: which archives to delete, as a pure function of entries, `now` and a policy;
//!   [`archive`]: a sensor's local archive of chunks (compressed, never replacing a file) and
//!   its purge by that policy.
//! - [`rotation`]: lossless rotation of a file a live argus writes: the cut by rename, the wait
//!   until argus has let go, one-pass shipping, staged chunks with a durable sequence counter.
//! - [`lock`]: single-instance locks that die with their process.
//! - [`host`] and [`manifest`]: validated host names, and the per-chunk manifest line that
//!   harvest_argus writes and process_argus checks.
//! - [`stamp`] and [`escape`]: names with UTC time stamps, and printing untrusted names.
//! - [`stateline`]: sealed lines of text, the format of both programs' state files.
//! - [`failpoint`]: crash injection (SIGKILL at a named step) for the crash-safety tests, only
//!   with the `failpoints` feature; without it the calls compile to nothing.
//! - [`grammar`]: the value grammar both programs' configuration files share (durations, sizes,
//!   the recipe's shell values).
//!
//! # Cargo features
//!
//! - `gzip`, `bzip2`, `xz` (together `codecs`, the default): the [`codec`] encoders and
//!   decoders of each format. Without them the crate builds none of the compression libraries
//!   (libdeflate and liblzma are C); [`codec::Compression`] still names, sniffs and suffixes
//!   every format, and [`codec::Codec::new`] refuses one compiled out with
//!   [`Error::CodecUnavailable`]. A library that only publishes, locks or walks records depends
//!   on this crate with `default-features = false`.
//! - `failpoints` (off): arms [`failpoint::hit`] from `ARGUS_WEBJOB_FAILPOINT`. Turn it on for
//!   crash tests only (a `[dev-dependencies]` entry does that), never in a program you ship.
//!
//! The crate never prints and never exits; it returns values and [`Error`]s and logs through the
//! `log` facade.
//!
//! ```
//! use std::io::Write;
//! use argus_core::{codec::Compression, publish::Publisher, record};
//!
//! // A quiet link's chunk: just the initial MAR argus writes when it opens its output file.
//! let mut chunk = vec![0u8; 128];
//! chunk[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
//! chunk[8..12].copy_from_slice(&record::ARGUS_V3_COOKIE.to_be_bytes());
//! assert!(record::walk(&chunk[..])?.is_clean());
//!
//! // Archive it compressed, atomically and durably.
//! let dir = tempfile::tempdir()?;
//! let publisher = Publisher::open(dir.path())?;
//! let codec = Compression::Xz.codec();
//! let mut staged = publisher.stage(format!("sensor1_20261127100000.argus{}", codec.suffix()))?;
//! let mut encoder = codec.encoder(&mut staged);
//! encoder.write_all(&chunk)?;
//! encoder.finish()?;
//! let archived = publisher.publish(staged)?;
//! assert!(archived.ends_with("sensor1_20261127100000.argus.xz"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod append;
pub mod archive;
pub mod codec;
mod error;
pub mod escape;
pub mod failpoint;
pub mod grammar;
pub mod host;
pub mod lock;
pub mod manifest;
pub mod publish;
pub mod ranges;
pub mod record;
pub mod retention;
pub mod rotation;
pub mod stamp;
pub mod stateline;

pub use error::{Error, Result, error_chain, is_disk_full};
