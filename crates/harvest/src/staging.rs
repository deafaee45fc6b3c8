//! The durable state of a harvest, all of it next to argus' output file (same directory, so a
//! rotation is a rename within one file system):
//!
//! - `OUTPUT.staged.SEQ.YYYYMMDDHHMMSS`: a chunk cut from the output and not yet shipped and
//!   archived. Its name carries its sequence number and the UTC time of the cut, so a run that
//!   dies leaves everything the next run needs to ship it again, unchanged, with the same `seq`.
//! - `OUTPUT.seq`: the last sequence number given to a chunk, a sealed line (`N SEAL\n`; a bare
//!   `N` written by hand is taken too), replaced atomically. The
//!   next chunk gets one more than the highest of this and every staged chunk, so a crash
//!   between the rename and the counter update never reuses a number.
//! - `OUTPUT.lock`: the single-instance lock.
//!
//! A chunk the recipe's shell script left behind (`OUTPUT.tmp`) is adopted as a staged chunk.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use argus_core::escape::EscapedPath;
use argus_core::stamp::{format_datetime, parse_datetime};
use argus_core::stateline::StateLines;
use time::OffsetDateTime;

const STAGED: &str = ".staged.";
/// The sequence counter's one line: the number, a space, 4 bytes of its SHA-256.
const SEQ_LINE: StateLines = StateLines::new(b' ', 4);

/// A staged chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StagedChunk {
    pub(crate) path: PathBuf,
    pub(crate) seq: u64,
    /// When it was cut (UTC, whole seconds).
    pub(crate) cut: OffsetDateTime,
}

/// The state files of one output file.
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    dir: PathBuf,
    base: OsString,
}

/// Why the state could not be read or written.
#[derive(Debug)]
pub(crate) struct StateError(pub(crate) String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn io_error(op: &str, path: &Path, e: &io::Error) -> StateError {
    StateError(format!("cannot {op} {}: {e}", EscapedPath(path)))
}

impl Stage {
    /// The state of `output` (an absolute file path).
    pub(crate) fn new(output: &Path) -> Stage {
        Stage {
            dir: output.parent().unwrap_or(Path::new("/")).to_path_buf(),
            base: output.file_name().unwrap_or_default().to_os_string(),
        }
    }

    /// The directory of the output file.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn sidecar(&self, suffix: &str) -> PathBuf {
        let mut name = self.base.clone();
        name.push(suffix);
        self.dir.join(name)
    }

    /// The lock file.
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.sidecar(".lock")
    }

    /// The sequence counter.
    pub(crate) fn seq_path(&self) -> PathBuf {
        self.sidecar(".seq")
    }

    /// What the recipe's `mv out out.tmp` left behind.
    pub(crate) fn legacy_path(&self) -> PathBuf {
        self.sidecar(".tmp")
    }

    /// The path of the staged chunk `seq` cut at `cut`.
    pub(crate) fn staged_path(&self, seq: u64, cut: OffsetDateTime) -> PathBuf {
        self.sidecar(&format!("{STAGED}{seq}.{}", format_datetime(cut)))
    }

    /// Parses a staged chunk's file name.
    pub(crate) fn parse_name(&self, name: &OsStr) -> Option<(u64, OffsetDateTime)> {
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
    pub(crate) fn list(&self) -> Result<Vec<StagedChunk>, StateError> {
        let mut chunks = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(chunks),
            Err(e) => return Err(io_error("read directory", &self.dir, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("read directory", &self.dir, &e))?;
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
    /// sealed line (`argus_core::stateline`); a bare number, as an operator writes it by hand
    /// (or an older harvest_argus wrote it), is taken too. A counter that cannot be understood is
    /// an error, never silently 0: numbers must never repeat, or process_argus would take new
    /// chunks for duplicates.
    pub(crate) fn last_seq(&self) -> Result<u64, StateError> {
        let path = self.seq_path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error("read", &path, &e)),
        };
        let bare = std::str::from_utf8(&text).map(str::trim).ok();
        SEQ_LINE
            .unseal_str(&text)
            .or(bare)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                StateError(format!(
                    "sequence counter {} holds {:?}, not a number or a damaged line; put the last seq shipped (see the manifest lines in the uploads' .err files) into it",
                    EscapedPath(&path),
                    String::from_utf8_lossy(&text).chars().take(40).collect::<String>()
                ))
            })
    }

    /// The number for the next chunk: above the counter and above every staged chunk.
    pub(crate) fn next_seq(&self, staged: &[StagedChunk]) -> Result<u64, StateError> {
        let last = staged
            .iter()
            .map(|c| c.seq)
            .fold(self.last_seq()?, u64::max);
        last.checked_add(1)
            .ok_or_else(|| StateError("the sequence counter is exhausted".to_owned()))
    }

    /// Records `seq` as given out, durably (temporary file, fsync, rename, fsync of the
    /// directory). Never lowers the counter.
    pub(crate) fn commit_seq(&self, seq: u64) -> Result<(), StateError> {
        if self.last_seq()? >= seq {
            return Ok(());
        }
        let mut line = Vec::new();
        SEQ_LINE.seal(seq.to_string().as_bytes(), &mut line);
        argus_core::publish::replace_durably(&self.seq_path(), &line)
            .map_err(|e| StateError(argus_core::error_chain(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn staged_names_round_trip_and_foreign_names_are_ignored() {
        let stage = Stage::new(Path::new("/var/argus/argus.out"));
        let cut = datetime!(2026-11-27 10:00:05 UTC);
        let path = stage.staged_path(42, cut);
        assert_eq!(
            path,
            PathBuf::from("/var/argus/argus.out.staged.42.20261127100005")
        );
        let name = path.file_name().expect("name");
        assert_eq!(stage.parse_name(name), Some((42, cut)));
        for foreign in [
            "argus.out",
            "argus.out.seq",
            "argus.out.staged.x.20261127100005",
            "argus.out.staged.42.2026112710000",
            "argus.out.staged.42.20261327100005",
            "argus.out.staged..20261127100005",
            "argus.out.staged.99999999999999999999.20261127100005",
            "other.out.staged.42.20261127100005",
        ] {
            assert_eq!(stage.parse_name(OsStr::new(foreign)), None, "{foreign}");
        }
    }

    #[test]
    fn the_counter_is_sealed_and_a_hand_written_number_is_taken() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stage = Stage::new(&dir.path().join("argus.out"));
        stage.commit_seq(41).expect("commit");
        let written = fs::read_to_string(stage.seq_path()).expect("read");
        assert_eq!(
            SEQ_LINE.unseal_str(written.as_bytes()),
            Some("41"),
            "{written:?}"
        );
        // An operator's repair: a bare number, with or without a newline.
        for text in ["57\n", "57", " 57 \n"] {
            fs::write(stage.seq_path(), text).expect("write");
            assert_eq!(stage.last_seq().expect(text), 57);
        }
        // A sealed line edited by hand (or damaged) is refused, never read as 0 or as 42.
        fs::write(stage.seq_path(), written.replace("41", "42")).expect("write");
        let err = stage.last_seq().expect_err("edited");
        assert!(err.0.contains("damaged"), "{}", err.0);
        fs::write(stage.seq_path(), "").expect("write");
        assert!(stage.last_seq().is_err(), "an empty counter is not 0");
    }

    #[test]
    fn sequence_numbers_never_repeat() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stage = Stage::new(&dir.path().join("argus.out"));
        assert_eq!(stage.last_seq().expect("fresh"), 0);
        assert_eq!(stage.next_seq(&[]).expect("next"), 1);
        stage.commit_seq(5).expect("commit");
        assert_eq!(stage.last_seq().expect("read"), 5);
        stage.commit_seq(3).expect("never lowers");
        assert_eq!(stage.last_seq().expect("read"), 5);
        // A chunk staged with a number the counter does not know yet (a crash between the
        // rename and the counter update) still pushes the next number past it.
        let cut = OffsetDateTime::UNIX_EPOCH;
        let staged = stage.staged_path(9, cut);
        fs::write(&staged, b"x").expect("write");
        fs::create_dir(stage.staged_path(10, cut)).expect("a directory is not a chunk");
        let list = stage.list().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].seq, 9);
        assert_eq!(stage.next_seq(&list).expect("next"), 10);
        fs::write(stage.seq_path(), "garbage").expect("write");
        assert!(stage.last_seq().is_err());
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            3,
            "no temporary files left"
        );
    }
}
