//! A batch rolled back for a taken archive name ([`super::commit::Stopped::Taken`]) refuses the
//! uploads whose names are taken and completes the others. An upload that left out a chunk as a
//! duplicate of one a refused upload brought would be completed without it, and the chunk would
//! be in no day file: such an upload is taken back out of the batch (its archive unmade, so that
//! the rollback undoes its appends) and ingested again once the rollback is done, when the chunk
//! is its own to bring.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use argus_core::publish;

use super::Engine;
use super::prepare::{Archive, ReadyUpload};
use crate::dropzone::Scanned;
use crate::error::{Action, Context, Error};
use crate::ledger::Fact;

/// A chunk: its sensor and number.
type ChunkId = (String, u64);

/// What each upload of a batch brings and leaves out, kept until the batch is committed.
pub(super) struct BatchChunks {
    uploads: Vec<UploadChunks>,
}

struct UploadChunks {
    name: String,
    dir: PathBuf,
    stem: OsString,
    /// The chunks it brings for the first time.
    new: Vec<ChunkId>,
    /// The chunks it leaves out as ingested before (by the ledger or by an upload before it
    /// in the batch).
    left_out: Vec<ChunkId>,
    /// Where its archive goes.
    archive: PathBuf,
    /// Its `.out`, when the archive is the `.out` moved (not compressed).
    moved_from: Option<PathBuf>,
}

impl BatchChunks {
    /// Notes `good`'s chunks, each upload with the chunks it leaves out (`left_out`, in the
    /// same order). An upload without chunks (no manifest) is no part of it.
    pub(super) fn new(good: &[ReadyUpload], left_out: &[Vec<ChunkId>]) -> BatchChunks {
        let uploads = good
            .iter()
            .zip(left_out)
            .filter(|(g, left_out)| !g.new_chunks.is_empty() || !left_out.is_empty())
            .map(|(g, left_out)| UploadChunks {
                name: g.upload.display_name(),
                dir: g.upload.dir().to_path_buf(),
                stem: g.upload.stem().into(),
                new: g
                    .new_chunks
                    .iter()
                    .map(|c| (c.host.clone(), c.seq))
                    .collect(),
                left_out: left_out.clone(),
                archive: g.archive_dest().to_path_buf(),
                moved_from: match &g.archive {
                    Archive::Move(_) => Some(g.upload.out_path().to_path_buf()),
                    Archive::Staged(_) => None,
                },
            })
            .collect();
        BatchChunks { uploads }
    }

    /// The ledger's facts of the chunks left out, by every upload for which `keep` holds.
    pub(super) fn duplicates(&self, keep: impl Fn(&str) -> bool) -> Vec<Fact> {
        self.uploads
            .iter()
            .filter(|u| keep(&u.name))
            .flat_map(|u| &u.left_out)
            .map(|(host, seq)| Fact::Duplicate {
                host: host.clone(),
                seq: *seq,
            })
            .collect()
    }

    /// The uploads (by name) that left out a chunk only a `refused` upload brought.
    pub(super) fn dependents(&self, refused: &BTreeSet<String>) -> BTreeSet<String> {
        let brought: BTreeSet<&ChunkId> = self
            .uploads
            .iter()
            .filter(|u| refused.contains(&u.name))
            .flat_map(|u| &u.new)
            .collect();
        self.uploads
            .iter()
            .filter(|u| !refused.contains(&u.name))
            .filter(|u| u.left_out.iter().any(|c| brought.contains(c)))
            .map(|u| u.name.clone())
            .collect()
    }

    /// Unmakes the archives of `leaving`, which the batch put in place: a moved `.out` goes
    /// back to its place, a compressed archive is removed (its `.out` is in the dropzone). To
    /// the rollback that follows they are then uploads whose archives never came, whose appends
    /// it undoes. Returns the groups to ingest again, as (directory, stem).
    pub(super) fn unarchive(
        &self,
        leaving: &BTreeSet<String>,
    ) -> Result<Vec<(PathBuf, OsString)>, Error> {
        let mut again = Vec::new();
        let mut changed = BTreeSet::new();
        for u in self.uploads.iter().filter(|u| leaving.contains(&u.name)) {
            match &u.moved_from {
                Some(out) => {
                    publish::rename_noreplace(&u.archive, out).or_file(Action::Archive, out)?;
                    changed.insert(u.dir.as_path());
                }
                None => std::fs::remove_file(&u.archive).or_file(Action::Clear, &u.archive)?,
            }
            changed.extend(u.archive.parent());
            again.push((u.dir.clone(), u.stem.clone()));
        }
        // Durable before the rollback cuts their appends: an archive back after a power loss
        // would mark its upload ingested, with its data gone from the day file.
        for dir in changed {
            publish::sync_dir(dir).or_file(Action::Sync, dir)?;
        }
        Ok(again)
    }

    /// The archive that `name` was to have.
    pub(super) fn archive_of(&self, name: &str) -> Option<&PathBuf> {
        self.uploads
            .iter()
            .find(|u| u.name == name)
            .map(|u| &u.archive)
    }
}

impl Engine {
    /// The groups taken back out of a batch rolled back for a taken name, scanned again to be
    /// ingested (none when the engine stops).
    pub(super) fn taken_back(&mut self) -> Option<Scanned> {
        let groups = std::mem::take(&mut self.taken_back);
        if groups.is_empty() || self.stopping() {
            return None;
        }
        let found = self.scan_groups(groups.iter().map(|(d, s)| (d.as_path(), s.as_os_str())));
        log::info!(
            "ingesting again the {} uploads taken back out of their batch",
            found.complete.len()
        );
        Some(found)
    }
}
