//! The way out of the quarantine: sending a group back to the dropzone it came from (after a
//! fix: a new argus version understood, a sensor's host name corrected), and expiring old ones.
//!
//! [`requeue_group`] is the quarantine's protocol run backwards:
//!
//! 1. check that the group's source directory exists and holds no file of its stem, and lock its
//!    `reason` file (a second requeue of the same group is refused while this one runs);
//! 2. rename the group's directory to `QUARANTINE/.webjob-drop-requeue.*` and fsync the
//!    quarantine directory: the decision is durable, and the group is no longer listed;
//! 3. rename its parts into the source directory, **`.rdy` last** (so the dropzone never shows a
//!    complete-looking group before every part is back), dropping a `.lck`; fsync the source
//!    directory before and after the `.rdy`;
//! 4. remove the `reason` file and the directory, fsync the quarantine directory.
//!
//! A kill after step 2 leaves a requeue directory, which [`recover_quarantine`] (or the next
//! requeue) finishes unless its `reason` file is locked by a requeue still running: the group
//! ends **wholly in the dropzone**. Before step 2 it is wholly in the quarantine.
//!
//! [`expire_group`] renames a group's directory to `QUARANTINE/.webjob-drop-expired.*`, then
//! deletes it; a kill in between leaves a directory that recovery deletes.
//!
//! [`recover_quarantine`]: super::recover_quarantine

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use argus_core::escape::EscapedPath;
use argus_core::publish::{rename_noreplace, sync_dir};

use crate::error::{Error, IoContext, Result};
use crate::name::split_part_name;
use crate::safe::is_not_found;
use crate::scan::PartKind;

use super::quarantine::read_intent;
use super::{REASON_FILE, failpoint, removal_rank};

/// Prefix of the directories of requeues in progress (or interrupted).
pub const REQUEUE_PREFIX: &str = ".webjob-drop-requeue.";
/// Prefix of the directories of expired groups being deleted.
pub const EXPIRED_PREFIX: &str = ".webjob-drop-expired.";

/// What [`requeue_group`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requeued {
    /// The dropzone directory the group went back to.
    pub source: PathBuf,
    /// Its stem.
    pub stem: OsString,
    /// The parts' new paths, `.rdy` last.
    pub moved: Vec<PathBuf>,
}

/// Sends the quarantined group in `dir` back to the directory of `dropzone` it came from; see
/// the module docs. Refused when the group's `reason` file does not say where it came
/// from, or names a directory outside `dropzone` (nothing is moved out of the dropzone's tree),
/// when that directory is gone, or holds a file of the group's stem.
pub fn requeue_group(dir: &Path, quarantine_dir: &Path, dropzone: &Path) -> Result<Requeued> {
    let refuse = |reason: String| Error::Requeue {
        path: dir.to_path_buf(),
        reason,
    };
    let intent = read_intent(dir)?.ok_or_else(|| {
        refuse(format!(
            "its {REASON_FILE} file does not say where it came from"
        ))
    })?;
    if !intent.source.is_dir() {
        return Err(refuse(format!(
            "its dropzone directory {} is gone",
            EscapedPath(&intent.source)
        )));
    }
    let root = fs::canonicalize(dropzone).at("resolve", dropzone)?;
    let source = fs::canonicalize(&intent.source).at("resolve", &intent.source)?;
    if !source.starts_with(&root) {
        return Err(refuse(format!(
            "it came from {}, which is not in the dropzone {}",
            EscapedPath(&intent.source),
            EscapedPath(dropzone)
        )));
    }
    if let Some(clash) = files_of_stem(&intent.source, &intent.stem)?.first() {
        return Err(refuse(format!(
            "{} is in the dropzone: a group of that name is there already",
            EscapedPath(clash)
        )));
    }
    let lock = lock_reason(dir)?.ok_or_else(|| refuse("it is being requeued".to_owned()))?;
    let pending = quarantine_dir.join(unique_name(REQUEUE_PREFIX));
    rename_noreplace(dir, &pending)?;
    sync_dir(quarantine_dir)?;
    failpoint::hit("renamed for the requeue");
    let moved = finish_requeue(&pending, &intent.source, quarantine_dir)?;
    drop(lock);
    log::debug!(
        "requeued {} to {}",
        EscapedPath(dir),
        EscapedPath(&intent.source)
    );
    Ok(Requeued {
        source: intent.source,
        stem: intent.stem,
        moved,
    })
}

/// Deletes the quarantined group in `dir` for good: renamed out of the listing first, so that a
/// kill leaves nothing half-deleted in sight (recovery deletes the rest).
pub fn expire_group(dir: &Path, quarantine_dir: &Path) -> Result<()> {
    let doomed = quarantine_dir.join(unique_name(EXPIRED_PREFIX));
    rename_noreplace(dir, &doomed)?;
    sync_dir(quarantine_dir)?;
    failpoint::hit("renamed for the expiry");
    fs::remove_dir_all(&doomed).at("remove", &doomed)?;
    sync_dir(quarantine_dir)?;
    Ok(())
}

/// Finishes interrupted requeues (unless one is still running) and deletions of expired groups
/// in `quarantine_dir`; [`recover_quarantine`](super::recover_quarantine) calls it. Unlike that,
/// it is safe while a consumer works. Returns the directories the requeued groups went back to.
pub fn recover_requeues(quarantine_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut done = Vec::new();
    let entries = match fs::read_dir(quarantine_dir) {
        Ok(entries) => entries,
        Err(e) if is_not_found(&e) => return Ok(done),
        Err(e) => return Err(e).at("read directory", quarantine_dir),
    };
    let mut found: Vec<(PathBuf, bool)> = Vec::new();
    for entry in entries {
        let entry = entry.at("read directory", quarantine_dir)?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.starts_with(REQUEUE_PREFIX.as_bytes()) {
            found.push((entry.path(), true));
        } else if name.starts_with(EXPIRED_PREFIX.as_bytes()) {
            found.push((entry.path(), false));
        }
    }
    found.sort();
    for (path, requeue) in found {
        if !requeue {
            fs::remove_dir_all(&path).at("remove", &path)?;
            sync_dir(quarantine_dir)?;
            continue;
        }
        let Some(_lock) = lock_reason(&path)? else {
            continue; // a requeue still running
        };
        let Some(intent) = read_intent(&path)? else {
            return Err(Error::Recovery {
                path,
                reason: format!("an interrupted requeue without a complete {REASON_FILE} file"),
            });
        };
        finish_requeue(&path, &intent.source, quarantine_dir)?;
        log::warn!(
            "finished an interrupted requeue to {}",
            EscapedPath(&intent.source)
        );
        done.push(intent.source);
    }
    Ok(done)
}

/// Steps 3 and 4: the parts back to `source`, `.rdy` last, then the directory removed.
fn finish_requeue(pending: &Path, source: &Path, quarantine_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts: Vec<(u8, OsString)> = Vec::new();
    for entry in fs::read_dir(pending).at("read directory", pending)? {
        let entry = entry.at("read directory", pending)?;
        let name = entry.file_name();
        if name == REASON_FILE {
            continue;
        }
        let kind = split_part_name(name.as_bytes())
            .map_or(PartKind::Other, |(_, ext)| PartKind::from_ext(ext));
        // The removal's order: data first, `.rdy` last.
        parts.push((removal_rank(kind), name));
    }
    parts.sort();
    let mut moved = Vec::new();
    for (rank, name) in &parts {
        let from = pending.join(name);
        if *rank == removal_rank(PartKind::Lck) {
            // The uploader's lock of long ago would make the group look in flight.
            fs::remove_file(&from).at("remove", &from)?;
            continue;
        }
        if *rank == removal_rank(PartKind::Rdy) {
            sync_dir(source)?;
        }
        let to = source.join(name);
        rename_noreplace(&from, &to)?;
        failpoint::hit("moved a part back");
        moved.push(to);
    }
    sync_dir(source)?;
    let reason = pending.join(REASON_FILE);
    match fs::remove_file(&reason) {
        Err(e) if !is_not_found(&e) => return Err(e).at("remove", &reason),
        _ => {}
    }
    fs::remove_dir(pending).at("remove directory", pending)?;
    sync_dir(quarantine_dir)?;
    Ok(moved)
}

/// The files of `dir` named `STEM.EXT`.
fn files_of_stem(dir: &Path, stem: &OsStr) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        if split_part_name(entry.file_name().as_bytes()).is_some_and(|(s, _)| s == stem.as_bytes())
        {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Locks `dir`'s reason file; `None` when another process holds it.
fn lock_reason(dir: &Path) -> Result<Option<File>> {
    let path = dir.join(REASON_FILE);
    let file = File::open(&path).at("open", &path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e).at("lock", &path),
    }
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}{}.{nanos}", std::process::id())
}
