//! The only operations that change a dropzone: removing a finished group, quarantining a bad
//! one and sending a quarantined one back ([`requeue_group`]). The scan never calls them; the
//! consumer does, explicitly.
//!
//! # Removal
//!
//! [`remove_group`] unlinks `.out` first and `.rdy` last (then extras and `.lck` before it), and
//! syncs the directory. Because `.out` goes first, a group interrupted half-way is never seen as
//! complete again: it is either untouched (and complete) or lacks `.out` (and the next scan
//! reports it invalid, never complete), and its `.rdy` still names it. A consumer that journals
//! its work (process_argus does) finishes such a group with [`finish_removal`].
//!
//! # Quarantine
//!
//! [`quarantine_group`] moves a whole group into its own directory `QUARANTINE/STEM` (or
//! `STEM.1`, `STEM.2`, ... when that name is taken) next to a `reason` file:
//!
//! 1. create a pending directory `QUARANTINE/.webjob-drop-pending.XXXXXXXX`;
//! 2. write into it the `reason` file: the reason, the source directory, the stem and the name of
//!    every part, ended by an `End=` line; fsync it, the pending directory and the quarantine
//!    directory, so this intent is durable before anything moves;
//! 3. rename the parts into the pending directory, **`.rdy` first** (so the dropzone never shows a
//!    complete-looking remainder), then `.out`, `.err`, `.env`, extras, `.lck`; fsync both
//!    directories;
//! 4. rename the pending directory to its final name and fsync the quarantine directory.
//!
//! Every step is a single rename or a write into a directory nobody else looks at, so a kill at
//! any instant leaves one of these states, each of which [`recover_quarantine`] (call it at start,
//! under the consumer's lock) turns into "wholly in the dropzone" or "wholly in quarantine":
//!
//! | interrupted in | dropzone | pending directory | recovery |
//! |---|---|---|---|
//! | 1 or 2 | whole group | no part (maybe a partial `reason`) | removes the pending directory: **wholly in the dropzone** |
//! | 3 | no `.rdy`, some parts | `reason` + some parts | moves the remaining listed parts, renames: **wholly in quarantine** |
//! | 4 | nothing | `reason` + all parts | renames: **wholly in quarantine** |
//!
//! Even without recovery, a consumer never processes a half-moved group: without its `.rdy` the
//! scan reports the remainder as in flight. After a power loss (rather than a kill) renames that
//! were not yet synced may persist out of order, so a remainder may also look invalid; the intent
//! was made durable before the first move, so recovery resolves that state the same way. This is
//! why a consumer must run [`recover_quarantine`] before it scans. When a move fails with an error (not a kill),
//! [`quarantine_group`] moves the parts back (`.rdy` last) and removes the pending directory; if
//! even that fails, recovery rolls forward later.
//!
//! The crash safety is tested with fail points: a test-only hook that panics at the N-th step (a
//! simulated kill: no clean-up code runs), for every N, followed by the invariant checks above,
//! and also with a second kill during recovery.

use std::ffi::OsStr;
use std::fs::{self};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use argus_core::publish::sync_dir;

use crate::error::{Error, IoContext, Result};
use crate::name::split_part_name;
use crate::safe::{FileId, is_not_found};
use crate::scan::{Group, Part, PartKind};

/// Prefix of the pending directories of quarantines in progress (or interrupted).
pub const PENDING_PREFIX: &str = ".webjob-drop-pending.";

/// Name of the file in each quarantined group's directory that says why, and where from.
pub const REASON_FILE: &str = "reason";

mod quarantine;
mod requeue;

/// The reason file's format, for the fuzz targets: not an API.
#[doc(hidden)]
pub use quarantine::{Intent, intent_text, parse_intent, unescape};
pub use quarantine::{
    Quarantined, QuarantinedGroup, Recovery, list_quarantine, quarantine_group, recover_quarantine,
};
pub use requeue::{
    EXPIRED_PREFIX, REQUEUE_PREFIX, Requeued, expire_group, recover_requeues, requeue_group,
};

/// What [`remove_group`] or [`finish_removal`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removed {
    /// Files removed, in order (`.rdy` last).
    pub removed: Vec<PathBuf>,
    /// Files of the group that were already gone.
    pub missing: Vec<PathBuf>,
}

/// True when `meta` (from `lstat`) still describes the file the scan saw: same inode, same size.
fn is_same_file(meta: &fs::Metadata, part: &Part) -> bool {
    part.id() == Some(FileId::of(meta)) && part.len() == Some(meta.len())
}

/// Order in which parts leave the dropzone on removal: data first, `.rdy` last.
fn removal_rank(kind: PartKind) -> u8 {
    match kind {
        PartKind::Out => 0,
        PartKind::Err => 1,
        PartKind::Env => 2,
        PartKind::Other => 3,
        PartKind::Lck => 4,
        PartKind::Rdy => 5,
    }
}

/// Removes a finished group: every part the scan saw, `.out` first and `.rdy` last, then syncs
/// the directory so the removal is durable when this returns.
///
/// A part that is no longer the file the scan saw stops the removal with [`Error::Changed`]
/// before `.rdy` is touched. See the [module docs](self) for what a kill leaves behind.
pub fn remove_group(group: &Group) -> Result<Removed> {
    let report = remove_group_unsynced(group)?;
    sync_dir(group.files().dir())?;
    Ok(report)
}

/// [`remove_group`] without the final directory sync, for a consumer that removes many groups
/// and then syncs each directory once ([`argus_core::publish::sync_dir`] on [`Group::dir`]).
/// Until that sync, a power loss may bring removed parts back; a kill may not.
pub fn remove_group_unsynced(group: &Group) -> Result<Removed> {
    let files = group.files();
    let mut parts: Vec<&Part> = files.parts().iter().collect();
    parts.sort_by_key(|p| removal_rank(p.kind()));
    let mut report = Removed::default();
    // A lean scan's group (some parts not stat'ed) is guarded by its `.out` alone; a full
    // scan's, part by part.
    let lean = parts.iter().any(|p| p.id().is_none());
    let mut out_proven = false;
    for part in parts {
        let path = part.path();
        // A part the scan did not stat (the `.env` and `.rdy` of a complete group), and in a
        // lean group any part after a `.out` proven the same (the `.err`), is guarded by that
        // `.out`, removed before it: the WebJob server writes no file of a stem while any is
        // left, so once the scanned `.out` was proven the same and removed, the rest of the
        // stem is still the upload that was read.
        if part.id().is_none() || (lean && out_proven) {
            remove(path, &mut report)?;
            continue;
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if is_same_file(&meta, part) => {}
            Ok(_) => {
                return Err(Error::Changed {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if is_not_found(&e) => {
                report.missing.push(path.to_path_buf());
                continue;
            }
            Err(e) => return Err(e).at("stat", path),
        }
        remove(path, &mut report)?;
        out_proven |= part.kind() == PartKind::Out;
    }
    log::debug!("removed upload {}", group.files());
    Ok(report)
}

/// Finishes the removal of the group `stem` in `dir` after an interruption: removes every file
/// named `STEM.EXT` there, `.out` first and `.rdy` last, and syncs the directory. Removing a group
/// that is already gone is not an error.
///
/// Unlike [`remove_group`] this trusts the caller (its journal) that the group was processed.
pub fn finish_removal(dir: &Path, stem: impl AsRef<OsStr>) -> Result<Removed> {
    let stem = stem.as_ref().as_bytes();
    let mut found: Vec<(u8, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        let name = entry.file_name();
        if let Some((s, ext)) = split_part_name(name.as_bytes())
            && s == stem
        {
            found.push((removal_rank(PartKind::from_ext(ext)), entry.path()));
        }
    }
    found.sort();
    let mut report = Removed::default();
    for (_, path) in found {
        remove(&path, &mut report)?;
    }
    sync_dir(dir)?;
    Ok(report)
}

fn remove(path: &Path, report: &mut Removed) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => report.removed.push(path.to_path_buf()),
        Err(e) if is_not_found(&e) => report.missing.push(path.to_path_buf()),
        Err(e) => return Err(e).at("remove", path),
    }
    failpoint::hit("removed a part");
    Ok(())
}

/// Fail points: in unit tests, a way to stop an operation at its N-th step as a kill would,
/// without running any clean-up code (the hook panics and the test catches the unwind).
pub(crate) mod failpoint {
    #[cfg(test)]
    thread_local! {
        static COUNTDOWN: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }

    /// Makes the `n`-th following step (from 0) of this thread panic.
    #[cfg(test)]
    pub(crate) fn arm(n: usize) {
        COUNTDOWN.with(|c| c.set(Some(n)));
    }

    /// Disarms the fail point of this thread.
    #[cfg(test)]
    pub(crate) fn disarm() {
        COUNTDOWN.with(|c| c.set(None));
    }

    #[cfg(test)]
    pub(crate) fn hit(step: &str) {
        COUNTDOWN.with(|c| match c.get() {
            Some(0) => {
                c.set(None);
                panic!("fail point: killed after '{step}'");
            }
            Some(n) => c.set(Some(n - 1)),
            None => {}
        });
    }

    /// Outside unit tests, the steps are `argus_core::failpoint`s: the end-to-end tests of a
    /// program kill it for real at one (`ARGUS_WEBJOB_FAILPOINT="moved a part back:2"`). They
    /// are empty unless argus-core's `failpoints` feature is on, which only tests turn on.
    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn hit(step: &str) {
        argus_core::failpoint::hit(step);
    }
}

#[cfg(test)]
mod tests;
