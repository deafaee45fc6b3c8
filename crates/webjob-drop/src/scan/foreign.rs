//! Other clients' and other jobs' uploads counted from their names, not kept
//! ([`Dropzone::with_foreign_counted`](super::Dropzone::with_foreign_counted)).
//!
//! A WebJob server drops the uploads of every job into one `incoming` directory, and another
//! job's consumer may take its time: a scan that kept and stat'ed each of those groups would
//! cost a pass memory and calls in what other jobs leave behind (a pass over 2,000 uploads of
//! its own beside 100,000 of another job took 3.1 s and 131 MiB instead of 0.4 s and 15 MiB).
//! Counted, a foreign entry costs the parse of its name; only a `.lck` is stat'ed (its age says
//! whether the server still holds the upload), and only a fresh one is remembered until its
//! directory is listed.

use std::collections::BTreeMap;
use std::fs::DirEntry;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::ForeignReason;
use crate::name::{Selection, StemMatch, split_part_name};

/// The uploads of one client for one reason that a scan counted without keeping them: those
/// with a `.rdy` only (a foreign upload without one is not looked at further).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForeignCount {
    /// With a `.rdy`, and no `.lck` of the server's holding them.
    pub complete: u64,
    /// With a `.rdy` and a fresh `.lck`: the server is still finishing them.
    pub held: u64,
}

/// The foreign counts of one scan, and the fresh locks of the directory being listed.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Fresh `.lck` files of foreign stems in the current directory: (stem, client, reason).
    fresh_locks: Vec<(Vec<u8>, String, ForeignReason)>,
}

impl Tally {
    /// Counts `entry` (named `name`) of `dir` when it belongs to a foreign upload; returns
    /// whether it did, and the scan then keeps nothing of it.
    pub(super) fn count(
        &mut self,
        selection: &Selection,
        entry: &DirEntry,
        name: &[u8],
        stale: (SystemTime, Duration),
        counts: &mut BTreeMap<(String, ForeignReason), ForeignCount>,
    ) -> bool {
        let Some((stem, ext)) = split_part_name(name) else {
            return false;
        };
        let (client, reason) = match selection.classify(stem) {
            StemMatch::OtherClient { client } => (client, ForeignReason::OtherClient),
            StemMatch::OtherJob { client } => (client, ForeignReason::OtherJob),
            _ => return false,
        };
        match ext {
            b"rdy" => {
                counts
                    .entry((client.to_owned(), reason))
                    .or_default()
                    .complete += 1;
            }
            b"lck" => {
                let (now, stale_after) = stale;
                // As `Files::held_by_server` judges a lock: unreadable or dated in the
                // future holds too.
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_none_or(|age| age < stale_after);
                if fresh {
                    self.fresh_locks
                        .push((stem.to_vec(), client.to_owned(), reason));
                }
            }
            _ => {}
        }
        true
    }

    /// Once `dir` is listed: an upload with a `.rdy` and a fresh lock is held, not complete.
    pub(super) fn end_dir(
        &mut self,
        dir: &Path,
        counts: &mut BTreeMap<(String, ForeignReason), ForeignCount>,
    ) {
        for (stem, client, reason) in self.fresh_locks.drain(..) {
            let mut rdy = stem;
            rdy.extend_from_slice(b".rdy");
            let rdy: PathBuf = dir.join(std::ffi::OsStr::from_bytes(&rdy));
            if std::fs::symlink_metadata(&rdy).is_err() {
                continue;
            }
            if let Some(c) = counts.get_mut(&(client, reason))
                && c.complete > 0
            {
                c.complete -= 1;
                c.held += 1;
            }
        }
    }
}
