//! The durable state of a rotation, all of it next to the live output file (same directory, so
//! a cut is a rename within one file system):
//!
//! - `OUTPUT.staged.SEQ.YYYYMMDDHHMMSS`: a chunk cut from the output and not yet delivered. Its
//!   name carries its sequence number and the UTC time of the cut, so a run that dies leaves
//!   everything the next run needs to deliver it again, unchanged, with the same `seq`.
//! - `OUTPUT.seq`: the last sequence number given to a chunk, a sealed line (`N SEAL\n`; a bare
//!   `N` written by hand is taken too), replaced atomically. The next chunk gets one more than
//!   the highest of this and every staged chunk, so a crash between the rename and the counter
//!   update never reuses a number.
//! - `OUTPUT.lock`: the single-instance lock.
//! - `OUTPUT.tmp`: what the recipe's shell script (`mv OUTPUT OUTPUT.tmp`) left behind, adopted
//!   as a staged chunk by [`Stage::adopt_legacy`](super::Stage::adopt_legacy).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::StateError;
use crate::escape::EscapedPath;
use crate::stamp::{format_datetime, parse_datetime};
use crate::stateline::StateLines;

const STAGED: &str = ".staged.";
/// The sequence counter's one line: the number, a space, 4 bytes of its SHA-256.
pub(super) const SEQ_LINE: StateLines = StateLines::new(b' ', 4);

/// A chunk cut from the output and not yet delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedChunk {
    /// Where it is: `OUTPUT.staged.SEQ.YYYYMMDDHHMMSS`.
    pub path: PathBuf,
    /// Its sequence number, given out once.
    pub seq: u64,
    /// When it was cut (UTC, whole seconds).
    pub cut: OffsetDateTime,
}

/// The state files of one live output file: staged chunks, sequence counter, lock.
#[derive(Clone, Debug)]
pub struct Stage {
    output: PathBuf,
    dir: PathBuf,
    base: OsString,
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> StateError {
    StateError::Fs(crate::Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

impl Stage {
    /// The state of `output` (an absolute file path).
    pub fn new(output: &Path) -> Stage {
        Stage {
            output: output.to_path_buf(),
            dir: output.parent().unwrap_or(Path::new("/")).to_path_buf(),
            base: output.file_name().unwrap_or_default().to_os_string(),
        }
    }

    /// The live output file.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The directory of the output file, which holds every state file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sidecar(&self, suffix: &str) -> PathBuf {
        let mut name = self.base.clone();
        name.push(suffix);
        self.dir.join(name)
    }

    /// The lock file (`OUTPUT.lock`).
    pub fn lock_path(&self) -> PathBuf {
        self.sidecar(".lock")
    }

    /// The sequence counter (`OUTPUT.seq`).
    pub fn seq_path(&self) -> PathBuf {
        self.sidecar(".seq")
    }

    /// What the recipe's `mv out out.tmp` left behind (`OUTPUT.tmp`).
    pub fn legacy_path(&self) -> PathBuf {
        self.sidecar(".tmp")
    }

    /// The path of the staged chunk `seq` cut at `cut`.
    pub fn staged_path(&self, seq: u64, cut: OffsetDateTime) -> PathBuf {
        self.sidecar(&format!("{STAGED}{seq}.{}", format_datetime(cut)))
    }

    /// Parses a staged chunk's file name into its sequence number and cut time.
    pub fn parse_name(&self, name: &OsStr) -> Option<(u64, OffsetDateTime)> {
        let rest = name.as_bytes().strip_prefix(self.base.as_bytes())?;
        let rest = rest.strip_prefix(STAGED.as_bytes())?;
        let dot = rest.iter().position(|&b| b == b'.')?;
        let (seq, stamp) = (&rest[..dot], &rest[dot + 1..]);
        if seq.is_empty() || seq.len() > 19 || !seq.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let seq: u64 = std::str::from_utf8(seq).ok()?.parse().ok()?;
        let cut = parse_datetime(stamp)?;
        Some((seq, cut))
    }

    /// Every staged chunk, lowest sequence number first.
    pub fn list(&self) -> Result<Vec<StagedChunk>, StateError> {
        let mut chunks = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(chunks),
            Err(e) => return Err(io_error("read directory", &self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("read directory", &self.dir, e))?;
            let name = entry.file_name();
            if let Some((seq, cut)) = self.parse_name(&name) {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    chunks.push(StagedChunk {
                        path: entry.path(),
                        seq,
                        cut,
                    });
                } else {
                    log::warn!(
                        "ignoring {}: a staged chunk must be a regular file",
                        EscapedPath(&entry.path())
                    );
                }
            }
        }
        chunks.sort_by_key(|c| (c.seq, c.cut));
        Ok(chunks)
    }

    /// The last sequence number given out: 0 when no chunk was ever cut. The counter is a
    /// sealed line ([`crate::stateline`]); a bare number, as an operator writes it by hand
    /// (or an older harvest_argus wrote it), is taken too. A counter that cannot be understood
    /// is an error, never silently 0: numbers must never repeat, or a consumer would take new
    /// chunks for duplicates.
    pub fn last_seq(&self) -> Result<u64, StateError> {
        let path = self.seq_path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let bare = std::str::from_utf8(&text).map(str::trim).ok();
        SEQ_LINE
            .unseal_str(&text)
            .or(bare)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StateError::BadCounter {
                path,
                found: String::from_utf8_lossy(&text).chars().take(40).collect(),
            })
    }

    /// The number for the next chunk: above the counter and above every staged chunk.
    pub fn next_seq(&self, staged: &[StagedChunk]) -> Result<u64, StateError> {
        let last = staged
            .iter()
            .map(|c| c.seq)
            .fold(self.last_seq()?, u64::max);
        last.checked_add(1).ok_or(StateError::Exhausted)
    }

    /// Records `seq` as given out, durably (temporary file, fsync, rename, fsync of the
    /// directory). Never lowers the counter.
    pub fn commit_seq(&self, seq: u64) -> Result<(), StateError> {
        if self.last_seq()? >= seq {
            return Ok(());
        }
        let mut line = Vec::new();
        SEQ_LINE.seal(seq.to_string().as_bytes(), &mut line);
        crate::publish::replace_durably(&self.seq_path(), &line).map_err(StateError::Fs)
    }
}
