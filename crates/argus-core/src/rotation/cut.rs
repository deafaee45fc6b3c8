//! The cut: the live output renamed to a staged name that carries the next sequence number, the
//! counter recorded durably after it; adopting what the recipe's script left; removing a chunk
//! once it is delivered.
//!
//! The rename is the whole cut: a writer like argus notices at its next write of a new second
//! that its path is gone and creates it anew. The live path is never created, truncated or
//! copied here, and the writer is never signalled (every signal but USR1/USR2 stops argus).

use std::fs;
use std::io;
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

use super::{CutError, Stage, StagedChunk, StateError};
use crate::error::IoContext;
use crate::publish::{rename_noreplace, sync_dir};

/// A cut that happened: the chunk is staged under its number.
#[derive(Debug)]
#[must_use = "the chunk is staged and must be delivered"]
pub struct Cut {
    /// The staged chunk.
    pub chunk: StagedChunk,
    /// The output's size when it was renamed (the writer may add a little in that second).
    pub len: u64,
    /// When the writer last wrote the output before the cut (its mtime), if known.
    pub last_write: Option<SystemTime>,
    /// When the rename happened, the start of [`wait_final`](super::wait_final)'s clock.
    pub renamed: Instant,
    /// Whether the directory was synced after the rename; the cut stands either way.
    pub synced: Result<(), crate::Error>,
    /// Whether the counter recorded the number. When it did not, the staged name still
    /// carries it and the next cut counts from it, so no number is lost or repeated.
    pub counted: Result<(), StateError>,
}

impl Stage {
    /// Cuts the output at `now` (kept to the whole second, as names carry it): renames it to
    /// the next staged name, syncs the directory and records the number. `Ok(None)` when the
    /// output does not exist (the writer is not running, or has not re-created it since the
    /// last cut).
    pub fn cut(&self, now: OffsetDateTime) -> Result<Option<Cut>, CutError> {
        let output = self.output().to_path_buf();
        let meta = match fs::symlink_metadata(&output) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CutError::Stat {
                    path: output,
                    source,
                });
            }
        };
        if !meta.file_type().is_file() {
            return Err(CutError::NotAFile { path: output });
        }
        let seq = self
            .list()
            .and_then(|staged| self.next_seq(&staged))
            .map_err(CutError::Counter)?;
        let cut = whole_second(now);
        let staged = self.staged_path(seq, cut);
        rename_noreplace(&output, &staged).map_err(|source| CutError::Rename {
            path: output,
            source,
        })?;
        let renamed = Instant::now();
        let synced = sync_dir(self.dir());
        let counted = self.commit_seq(seq);
        Ok(Some(Cut {
            chunk: StagedChunk {
                path: staged,
                seq,
                cut,
            },
            len: meta.len(),
            last_write: meta.modified().ok(),
            renamed,
            synced,
            counted,
        }))
    }

    /// Adopts `OUTPUT.tmp`, which the recipe's script made with `mv OUTPUT OUTPUT.tmp` and
    /// overwrote at its next run: it holds data nobody archived. It becomes a staged chunk
    /// with a new number, cut at `now`. `Ok(None)` when there is no such regular file.
    pub fn adopt_legacy(&self, now: OffsetDateTime) -> Result<Option<StagedChunk>, StateError> {
        let legacy = self.legacy_path();
        match fs::symlink_metadata(&legacy) {
            Ok(m) if m.is_file() => {}
            _ => return Ok(None),
        }
        let staged = self.list()?;
        let seq = self.next_seq(&staged)?;
        let cut = whole_second(now);
        let path = self.staged_path(seq, cut);
        rename_noreplace(&legacy, &path)?;
        sync_dir(self.dir())?;
        self.commit_seq(seq)?;
        Ok(Some(StagedChunk { path, seq, cut }))
    }

    /// Removes a delivered chunk, durably (the directory is synced).
    pub fn remove(&self, chunk: &StagedChunk) -> Result<(), StateError> {
        fs::remove_file(&chunk.path).at("remove", &chunk.path)?;
        Ok(sync_dir(self.dir())?)
    }
}

impl StagedChunk {
    /// How long before `now` a chunk left staged by an earlier run was renamed: its ctime,
    /// which the rename set (the quiet rule also requires two unchanged seconds, so an estimate
    /// is enough). Zero when it cannot be told.
    pub fn renamed_ago(&self, now: SystemTime) -> Duration {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&self.path)
            .ok()
            .and_then(|m| {
                let ctime = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(m.ctime()).unwrap_or(0));
                now.duration_since(ctime).ok()
            })
            .unwrap_or(Duration::ZERO)
    }
}

/// `at` without its fraction of a second.
fn whole_second(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}
