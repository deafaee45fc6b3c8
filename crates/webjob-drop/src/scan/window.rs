//! A scan that holds only the oldest ready groups of a backlog ([`Dropzone::with_window`]).
//!
//! A first walk reads the names alone, streaming: each selected `.rdy` offers its group to a
//! heap that keeps the `limit` oldest (upload time, then stem, then directory), and is noted by a
//! 64-bit key of its directory and stem. The second walk, the scan itself, drops every entry of
//! a group that the first walk noted and left out, before anything is kept of it. So a scan holds
//! the window's groups, the groups that are not ready (in flight, invalid, foreign, ignored: the
//! scan reports those whole, as always) and 16 bytes or so for each group left out.
//!
//! A group that is ready only by the second walk is scanned as usual, which can make the window
//! a little larger than `limit`. Keys come from a randomly seeded hash: two groups may share one
//! only by chance, and then a group not ready is left out of that scan, or one more is taken.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::Ctx;
use crate::name::{StemMatch, split_part_name};
use crate::safe::FileKind;

/// The ready groups of one client that a windowed scan left for a later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deferred {
    /// How many groups (each with a `.rdy`, not looked at further).
    pub count: u64,
    /// The newest upload time among them, from their names.
    pub newest: OffsetDateTime,
}

/// What the first walk found: the key of every selected `.rdy`, and whether its group is in the
/// window.
#[derive(Debug)]
pub(super) struct Window {
    hasher: RandomState,
    ready: HashMap<u64, bool>,
}

/// A ready group offered to the window, ordered oldest first.
type Candidate = (OffsetDateTime, Vec<u8>, PathBuf);

impl Window {
    fn key(&self, dir: &Path, stem: &[u8]) -> u64 {
        self.hasher.hash_one((dir.as_os_str().as_bytes(), stem))
    }

    /// Whether the entry `name` in `dir` belongs to a group left out of the window.
    pub(super) fn leaves_out(&self, dir: &Path, name: &[u8]) -> bool {
        split_part_name(name)
            .is_some_and(|(stem, _)| self.ready.get(&self.key(dir, stem)) == Some(&false))
    }

    /// The first walk: the oldest `limit` ready groups of the selection, from the names alone.
    /// The groups left out are counted per client into `deferred`. Entries that cannot be read
    /// are skipped: the scan that follows reports them.
    pub(super) fn index(
        ctx: &Ctx<'_>,
        dir: &Path,
        depth: usize,
        limit: usize,
        deferred: &mut BTreeMap<String, Deferred>,
    ) -> Window {
        let mut window = Window {
            hasher: RandomState::new(),
            ready: HashMap::new(),
        };
        let mut oldest: BinaryHeap<Candidate> = BinaryHeap::new();
        let mut left_out = |window: &mut Window, (at, stem, dir): Candidate| {
            let key = window.key(&dir, &stem);
            window.ready.insert(key, false);
            if let StemMatch::Ours(p) = ctx.selection.classify(&stem) {
                let d = deferred.entry(p.client.to_owned()).or_insert(Deferred {
                    count: 0,
                    newest: at,
                });
                d.count += 1;
                d.newest = d.newest.max(at);
            }
        };
        let mut dirs = vec![(dir.to_path_buf(), depth)];
        while let Some((dir, depth)) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let split = split_part_name(name.as_bytes());
                let matched = split.map(|(stem, ext)| (ctx.selection.classify(stem), ext));
                match matched {
                    Some((StemMatch::Ours(p), b"rdy")) => {
                        let key = window.key(&dir, p.stem.as_bytes());
                        if window.ready.insert(key, true).is_some() {
                            continue;
                        }
                        oldest.push((p.uploaded_at, p.stem.as_bytes().to_vec(), dir.clone()));
                        if oldest.len() > limit
                            && let Some(newest) = oldest.pop()
                        {
                            left_out(&mut window, newest);
                        }
                    }
                    Some((StemMatch::NotUpload, _)) | None
                        if depth < ctx.max_depth
                            && entry
                                .file_type()
                                .is_ok_and(|t| FileKind::of(t) == FileKind::Directory) =>
                    {
                        dirs.push((entry.path(), depth + 1));
                    }
                    _ => {}
                }
            }
        }
        window
    }
}
