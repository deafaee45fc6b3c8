//! Quarantining a bad group whole (see the [module docs](crate::ops) for the steps and the crash
//! table), recovering an interrupted quarantine, and listing what the quarantine holds.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use argus_core::escape::{Escaped, EscapedPath};
use argus_core::publish::{create_dir_all_durably, rename_noreplace, sync_dir};

use crate::error::{Error, IoContext, Result};
use crate::kv::KeyValues;
use crate::safe::is_not_found;
use crate::scan::{Files, GroupFiles, Part, PartKind};

use super::{PENDING_PREFIX, REASON_FILE, failpoint, is_same_file};

/// What [`quarantine_group`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// The group's directory in quarantine, holding its parts and the [`REASON_FILE`].
    pub path: PathBuf,
    /// The parts' new paths.
    pub moved: Vec<PathBuf>,
    /// Parts the scan saw that were already gone.
    pub missing: Vec<PathBuf>,
}

/// What [`recover_quarantine`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Interrupted quarantines that had moved nothing: the group is wholly in the dropzone and
    /// the pending directory is gone.
    pub rolled_back: Vec<PathBuf>,
    /// Interrupted quarantines that were finished: the final directories.
    pub completed: Vec<PathBuf>,
    /// Interrupted requeues that were finished: the dropzone directories the groups went to.
    pub requeued: Vec<PathBuf>,
    /// Pending directories that could not be resolved and were left as they are.
    pub errors: Vec<Error>,
}

/// Order in which parts move into quarantine: `.rdy` first, so that what is left in the dropzone
/// after a kill never looks complete.
fn quarantine_rank(kind: PartKind) -> u8 {
    match kind {
        PartKind::Rdy => 0,
        PartKind::Out => 1,
        PartKind::Err => 2,
        PartKind::Env => 3,
        PartKind::Other => 4,
        PartKind::Lck => 5,
    }
}

/// Moves a whole group (every part the scan saw) into its own directory under `quarantine_dir`,
/// with a [`REASON_FILE`] holding `reason`, durably; see the [module docs](crate::ops) for the steps
/// and why a kill at any point leaves the group wholly in the dropzone or wholly in quarantine
/// (after [`recover_quarantine`]).
///
/// `quarantine_dir` is created if missing. It must be on the dropzone's file system (parts are
/// renamed, never copied) and outside the dropzone (a scan would find the group again).
pub fn quarantine_group(
    group: &impl GroupFiles,
    quarantine_dir: &Path,
    reason: &str,
) -> Result<Quarantined> {
    let files = group.files();
    create_dir_all_durably(quarantine_dir)?;
    check_quarantine_dir(files, quarantine_dir)?;

    let pending = tempfile::Builder::new()
        .prefix(PENDING_PREFIX)
        .tempdir_in(quarantine_dir)
        .at("create directory in", quarantine_dir)?
        .keep();
    failpoint::hit("created the pending directory");

    let mut parts: Vec<&Part> = files.parts().iter().collect();
    parts.sort_by_key(|p| quarantine_rank(p.kind()));
    let names: Vec<&OsStr> = parts.iter().map(|p| p.name()).collect();
    if let Err(e) = write_intent(&pending, files.dir(), files.stem(), &names, reason)
        .and_then(|()| sync_dir(quarantine_dir).map_err(Error::from))
    {
        // Nothing has moved yet: the group is wholly in the dropzone.
        if let Err(cleanup) = discard_pending(&pending) {
            log::warn!("{cleanup}");
        }
        return Err(e);
    }
    failpoint::hit("wrote the intent");

    let mut moved = Vec::new();
    let mut missing = Vec::new();
    for part in &parts {
        let to = pending.join(part.name());
        match move_part(part, &to) {
            Ok(true) => moved.push(to),
            Ok(false) => missing.push(part.path().to_path_buf()),
            Err(e) => {
                roll_back(&pending, files.dir(), &moved);
                return Err(e);
            }
        }
        failpoint::hit("moved a part");
    }
    sync_dir(&pending)?;
    sync_dir(files.dir())?;
    failpoint::hit("synced the moves");

    let path = publish_pending(&pending, quarantine_dir, files.stem())?;
    let moved = moved
        .iter()
        .filter_map(|p| p.file_name())
        .map(|name| path.join(name))
        .collect();
    log::debug!(
        "quarantined {} in {}: {}",
        files,
        EscapedPath(&path),
        Escaped(reason.as_bytes())
    );
    Ok(Quarantined {
        path,
        moved,
        missing,
    })
}

fn check_quarantine_dir(files: &Files, quarantine_dir: &Path) -> Result<()> {
    let quarantine = fs::canonicalize(quarantine_dir).at("resolve", quarantine_dir)?;
    let root = fs::canonicalize(files.root()).at("resolve", files.root())?;
    let dir = fs::canonicalize(files.dir()).at("resolve", files.dir())?;
    if quarantine.starts_with(&root) || quarantine.starts_with(&dir) {
        return Err(Error::QuarantineInsideDropzone {
            quarantine: quarantine_dir.to_path_buf(),
            dropzone: files.root().to_path_buf(),
        });
    }
    let q_dev = fs::metadata(&quarantine).at("stat", quarantine_dir)?.dev();
    let d_dev = fs::metadata(&dir).at("stat", files.dir())?.dev();
    if q_dev != d_dev {
        return Err(Error::CrossDevice {
            quarantine: quarantine_dir.to_path_buf(),
            dir: files.dir().to_path_buf(),
        });
    }
    Ok(())
}

/// Moves one part if it is still the file the scan saw. `Ok(false)`: it is gone. A part the
/// scan did not stat (see [`Part`]) is moved as it is: the group's `.out` is checked when it
/// moves, and a changed one rolls the whole move back.
fn move_part(part: &Part, to: &Path) -> Result<bool> {
    let from = part.path();
    if part.id().is_none() {
        return match rename_noreplace(from, to) {
            Ok(()) => Ok(true),
            Err(argus_core::Error::Io { source, .. }) if is_not_found(&source) => Ok(false),
            Err(e) => Err(e.into()),
        };
    }
    match fs::symlink_metadata(from) {
        Ok(meta) if is_same_file(&meta, part) => {}
        Ok(_) => {
            return Err(Error::Changed {
                path: from.to_path_buf(),
            });
        }
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => return Err(e).at("stat", from),
    }
    rename_noreplace(from, to)?;
    Ok(true)
}

/// Undoes the moves of a failed quarantine in reverse order (`.rdy` last) and removes the pending
/// directory. Failures are logged and left to [`recover_quarantine`], which rolls forward.
fn roll_back(pending: &Path, dir: &Path, moved: &[PathBuf]) {
    let result = (|| -> Result<()> {
        for to in moved.iter().rev() {
            if let Some(name) = to.file_name() {
                rename_noreplace(to, &dir.join(name))?;
            }
        }
        sync_dir(dir)?;
        discard_pending(pending)
    })();
    if let Err(e) = result {
        log::error!(
            "cannot undo the quarantine in {}; recovery will finish it: {e}",
            EscapedPath(pending)
        );
    }
}

/// Removes a pending directory that holds no part (only, perhaps, its reason file).
fn discard_pending(pending: &Path) -> Result<()> {
    let reason = pending.join(REASON_FILE);
    match fs::remove_file(&reason) {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e).at("remove", &reason),
    }
    fs::remove_dir(pending).at("remove directory", pending)?;
    if let Some(parent) = pending.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Renames the pending directory to `STEM`, or `STEM.N` for the first free N.
fn publish_pending(pending: &Path, quarantine_dir: &Path, stem: &OsStr) -> Result<PathBuf> {
    for n in 0u32..10_000 {
        let mut name = stem.to_os_string();
        if n > 0 {
            name.push(format!(".{n}"));
        }
        let path = quarantine_dir.join(&name);
        match rename_noreplace(pending, &path) {
            Ok(()) => {
                failpoint::hit("renamed the pending directory");
                sync_dir(quarantine_dir)?;
                return Ok(path);
            }
            // A directory (possibly non-empty) is in the way: try the next name. (Some file
            // systems report a non-empty target directory as ENOTEMPTY instead of EEXIST.)
            Err(argus_core::Error::Exists { .. }) => {}
            Err(e)
                if e.io_error().and_then(io::Error::raw_os_error) == Some(nix::libc::ENOTEMPTY) => {
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Recovery {
        path: pending.to_path_buf(),
        reason: "no free name for the quarantined group".to_owned(),
    })
}

fn write_intent(
    pending: &Path,
    source: &Path,
    stem: &OsStr,
    names: &[&OsStr],
    reason: &str,
) -> Result<()> {
    let text = intent_text(source, stem, names, reason);
    let path = pending.join(REASON_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .at("create", &path)?;
    file.write_all(text.as_bytes()).at("write", &path)?;
    failpoint::hit("wrote the reason file");
    file.sync_all().at("fsync", &path)?;
    sync_dir(pending)?;
    Ok(())
}

/// The reason file's text: why, where from, the stem and every part, then `End=`.
#[doc(hidden)]
pub fn intent_text(source: &Path, stem: &OsStr, names: &[&OsStr], reason: &str) -> String {
    let mut text = String::from(
        "# This upload group was moved here whole by webjob-drop; Reason says why, Source where from.\n",
    );
    // Every value is escaped: one line each, whatever bytes the names hold.
    text += &format!("Reason={}\n", Escaped(reason.as_bytes()));
    text += &format!("Source={}\n", Escaped(source.as_os_str().as_bytes()));
    text += &format!("Stem={}\n", Escaped(stem.as_bytes()));
    for name in names {
        text += &format!("Part={}\n", Escaped(name.as_bytes()));
    }
    text += "End=\n";
    text
}

/// The intent recorded in a pending directory.
#[doc(hidden)]
#[derive(Debug, PartialEq, Eq)]
pub struct Intent {
    pub source: PathBuf,
    pub stem: OsString,
    pub parts: Vec<OsString>,
}

/// Reads a pending directory's intent; `None` when it is missing or was not completely written.
pub(super) fn read_intent(pending: &Path) -> Result<Option<Intent>> {
    let path = pending.join(REASON_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e).at("read", &path),
    };
    parse_intent(&text).map_err(|reason| Error::Recovery {
        path: pending.to_path_buf(),
        reason,
    })
}

/// The intent a reason file's text records: `None` when it was not completely written, an
/// error naming the bad line when it is complete but damaged.
#[doc(hidden)]
pub fn parse_intent(text: &[u8]) -> std::result::Result<Option<Intent>, String> {
    let kv = KeyValues::parse(text);
    let complete = text.ends_with(b"\n") && kv.iter().last().is_some_and(|(k, _)| k == b"End");
    if !complete {
        return Ok(None);
    }
    let one = |key: &'static str| -> std::result::Result<OsString, String> {
        let mut values = kv.get_all(key);
        match (values.next().and_then(unescape), values.next()) {
            (Some(v), None) => Ok(OsString::from_vec(v)),
            _ => Err(format!("the {REASON_FILE} file has no valid {key} line")),
        }
    };
    let source = PathBuf::from(one("Source")?);
    let stem = one("Stem")?;
    let mut parts = Vec::new();
    for value in kv.get_all("Part") {
        let name = unescape(value)
            .filter(|n| !n.is_empty() && !n.contains(&b'/') && n != b"." && n != b"..")
            .ok_or_else(|| format!("the {REASON_FILE} file has an invalid Part line"))?;
        parts.push(OsString::from_vec(name));
    }
    Ok(Some(Intent {
        source,
        stem,
        parts,
    }))
}

/// Resolves every quarantine that a kill interrupted, in `quarantine_dir`: a pending directory
/// that holds no part is removed (the group is wholly in the dropzone); one that holds parts is
/// finished (the group ends wholly in quarantine). Call it at start, holding the lock that keeps
/// other consumers of the dropzone out. A missing `quarantine_dir` has nothing to recover.
pub fn recover_quarantine(quarantine_dir: &Path) -> Result<Recovery> {
    let mut report = Recovery::default();
    let entries = match fs::read_dir(quarantine_dir) {
        Ok(entries) => entries,
        Err(e) if is_not_found(&e) => return Ok(report),
        Err(e) => return Err(e).at("read directory", quarantine_dir),
    };
    let mut pending = Vec::new();
    for entry in entries {
        let entry = entry.at("read directory", quarantine_dir)?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && entry
                .file_name()
                .as_bytes()
                .starts_with(PENDING_PREFIX.as_bytes())
        {
            pending.push(entry.path());
        }
    }
    pending.sort();
    match super::requeue::recover_requeues(quarantine_dir) {
        Ok(requeued) => report.requeued = requeued,
        Err(e) => {
            log::error!("{e}");
            report.errors.push(e);
        }
    }
    for dir in pending {
        match recover_one(&dir, quarantine_dir) {
            Ok(Some(path)) => {
                log::warn!("finished an interrupted quarantine: {}", EscapedPath(&path));
                report.completed.push(path);
            }
            Ok(None) => {
                log::info!(
                    "rolled back an interrupted quarantine {}",
                    EscapedPath(&dir)
                );
                report.rolled_back.push(dir);
            }
            Err(e) => {
                log::error!("{e}");
                report.errors.push(e);
            }
        }
    }
    Ok(report)
}

/// `Some(final path)` when rolled forward, `None` when rolled back.
fn recover_one(pending: &Path, quarantine_dir: &Path) -> Result<Option<PathBuf>> {
    let holds_parts = fs::read_dir(pending)
        .at("read directory", pending)?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name() != REASON_FILE);
    let Some(intent) = read_intent(pending)? else {
        if holds_parts {
            return Err(Error::Recovery {
                path: pending.to_path_buf(),
                reason: format!("it holds files but its {REASON_FILE} file is incomplete"),
            });
        }
        discard_pending(pending)?;
        return Ok(None);
    };
    if !holds_parts {
        discard_pending(pending)?;
        return Ok(None);
    }
    for name in &intent.parts {
        let to = pending.join(name);
        if fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        let from = intent.source.join(name);
        match fs::symlink_metadata(&from) {
            Ok(_) => rename_noreplace(&from, &to)?,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(e).at("stat", &from),
        }
        failpoint::hit("recovered a part");
    }
    sync_dir(pending)?;
    // The source directory may be gone (a per-client directory removed since): nothing to sync.
    if intent.source.is_dir() {
        sync_dir(&intent.source)?;
    }
    publish_pending(pending, quarantine_dir, &intent.stem).map(Some)
}

/// A group in the quarantine, as its reason file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuarantinedGroup {
    /// Its directory in the quarantine.
    pub dir: PathBuf,
    /// The stem of its files, from the reason file (the directory's name when that cannot be
    /// read).
    pub stem: OsString,
    /// Why it was quarantined; `None` when the reason file is missing or damaged.
    pub reason: Option<String>,
    /// When it was quarantined: the reason file's modification time (our clock; a bad upload's
    /// name may lie about its time).
    pub at: Option<std::time::SystemTime>,
}

/// The groups in `quarantine_dir`, by name, without the pending moves of [`quarantine_group`]
/// (names starting with `.`). A missing quarantine holds none; an unreadable reason file leaves
/// the fields it gives empty.
pub fn list_quarantine(quarantine_dir: &Path) -> Result<Vec<QuarantinedGroup>> {
    let entries = match fs::read_dir(quarantine_dir) {
        Ok(entries) => entries,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e).at("read", quarantine_dir),
    };
    let mut groups = Vec::new();
    for entry in entries {
        let entry = entry.at("read", quarantine_dir)?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        let dir = entry.path();
        let reason_file = dir.join(REASON_FILE);
        let kv = fs::read(&reason_file).map(|t| KeyValues::parse(&t)).ok();
        let value = |key: &str| {
            kv.as_ref()
                .and_then(|kv| kv.get_all(key).next())
                .and_then(unescape)
        };
        groups.push(QuarantinedGroup {
            stem: value("Stem").map_or(name, OsString::from_vec),
            reason: value("Reason").map(|r| String::from_utf8_lossy(&r).into_owned()),
            at: fs::metadata(&reason_file).and_then(|m| m.modified()).ok(),
            dir,
        });
    }
    groups.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(groups)
}

/// Reverses [`Escaped`]: `\\`, `\n`, `\r`, `\t` and `\xNN`; `None` for anything else after `\`.
#[doc(hidden)]
pub fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next()? {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hi = char::from(*bytes.next()?).to_digit(16)?;
                let lo = char::from(*bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(hi << 4 | lo).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}
