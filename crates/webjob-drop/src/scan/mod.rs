//! Finding upload groups in a dropzone, and reading the parts of complete ones.
//!
//! [`Dropzone::scan`] lists the dropzone (and, up to a depth, its subdirectories), gathers the
//! files of each upload by stem and classifies every upload:
//!
//! - **complete** ([`Group`]): a `.rdy` marker and regular, readable `.out`, `.err` and `.env`
//!   files, for a selected client and the selected job; sorted oldest first (upload time from the
//!   name, then stem);
//! - **in flight** ([`InFlight`]): files without `.rdy`, being written or left by a failed upload,
//!   and any upload whose `STEM.lck` the WebJob server still holds (it removes the lock just
//!   after writing `.rdy`; a lock older than [`LOCK_STALE_AFTER`] is a dead server's leftover and
//!   holds nothing); reported with their age, never to be touched before they are older than
//!   `orphan_after`;
//! - **invalid** ([`Invalid`]): a `.rdy` with a missing part, a part that is a symbolic link,
//!   FIFO, directory or unreadable, or a name that cannot be trusted; with the reasons;
//! - **foreign** ([`Foreign`]): another client's or another job's upload, never touched;
//! - **ignored** ([`Ignored`]): entries that are not uploads at all.
//!
//! The scan never changes anything: it lists directories, reads metadata and opens (without
//! reading) the parts of groups that carry a `.rdy`, to prove they are readable regular files. A
//! bad entry never aborts a scan; only an unreadable dropzone root is an error.
//! [`Dropzone::scan_group`] does the same for one stem in one directory, for a daemon told of a
//! single new `.rdy`.
//!
//! ```
//! use std::fs;
//! use webjob_drop::{Dropzone, InvalidReason, PartKind, Selection};
//!
//! let dropzone = tempfile::tempdir()?;
//! fs::write(dropzone.path().join("client1_20030715120001_harvest_argus.rdy"), "")?;
//! fs::write(dropzone.path().join("client1_20030715130001_harvest_argus.out"), "half")?;
//! let scan = Dropzone::new(dropzone.path()).scan(&Selection::new(["client1"], "harvest_argus")?)?;
//! assert_eq!(scan.invalid[0].reasons()[0], InvalidReason::Missing(PartKind::Out));
//! assert_eq!(scan.in_flight.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirEntry};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argus_core::escape::EscapedPath;

use crate::error::{Error, IoContext, Result};
use crate::name::{Selection, StemMatch, split_part_name};
use crate::safe::{FileKind, open_regular};

mod foreign;
mod found;
mod group;
mod part;
mod window;

pub use foreign::ForeignCount;
pub use found::Scan;

pub use group::{
    Foreign, ForeignReason, Group, Ignored, IgnoredReason, InFlight, Invalid, InvalidReason,
    OpenedPart,
};
use part::Meta;
pub use part::{Files, GroupFiles, Part, PartKind};
pub use window::Deferred;
use window::Window;

/// How many levels of subdirectories a scan descends into by default (per-client and per-job
/// directories of newer WebJob servers).
pub const DEFAULT_MAX_DEPTH: usize = 2;

/// Largest `.env` or `.rdy` file read into memory.
pub const MAX_TEXT_LEN: u64 = 1024 * 1024;

/// A `STEM.lck` older than this is the leftover of a WebJob server that died, not a write in
/// progress: it no longer holds its upload (see [`Dropzone::with_lock_stale_after`]).
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(600);

/// A WebJob dropzone (the server's `incoming` directory).
#[derive(Clone, Debug)]
pub struct Dropzone {
    root: PathBuf,
    max_depth: usize,
    open_check: bool,
    now: Option<SystemTime>,
    lock_stale_after: Duration,
    window: Option<usize>,
    count_foreign: bool,
}

impl Dropzone {
    /// The dropzone at `root`, scanned to [`DEFAULT_MAX_DEPTH`].
    pub fn new(root: impl Into<PathBuf>) -> Dropzone {
        Dropzone {
            root: root.into(),
            max_depth: DEFAULT_MAX_DEPTH,
            open_check: true,
            now: None,
            lock_stale_after: LOCK_STALE_AFTER,
            window: None,
            count_foreign: false,
        }
    }

    /// Counts the uploads of other clients and jobs instead of reporting them: [`Scan::foreign`]
    /// stays empty and [`Scan::foreign_counted`] holds, per client and reason, those with a
    /// `.rdy`, judged from their names (and the age of a `.lck`) without a `stat` of each part.
    /// For a consumer that only reports how many there are: a WebJob server drops every job's
    /// uploads into one directory, and what other jobs leave there then costs a scan little.
    pub fn with_foreign_counted(mut self, counted: bool) -> Dropzone {
        self.count_foreign = counted;
        self
    }

    /// Keeps at most about `limit` ready groups of the selection (those with a `.rdy`): the
    /// oldest, by upload time, then stem. The others are counted per client in
    /// [`Scan::deferred`] and nothing else is kept of them, so that the memory a scan takes
    /// does not grow with a backlog; a consumer takes them in later scans, each one window,
    /// as it removes what it is done with. Groups that are not ready are reported whole, as
    /// always. The scan then lists each directory twice: first the names of the `.rdy` files
    /// alone, to find the window. [`Dropzone::scan_group`] ignores the window.
    pub fn with_window(mut self, limit: usize) -> Dropzone {
        self.window = Some(limit);
        self
    }

    /// The time the age of a server's `.lck` is measured against. Without it a scan reads the
    /// clock once when it starts; a caller that decides by `now` elsewhere passes the same one.
    pub fn with_now(mut self, now: SystemTime) -> Dropzone {
        self.now = Some(now);
        self
    }

    /// How old a `.lck` must be before it no longer holds its upload ([`LOCK_STALE_AFTER`]
    /// by default). Until then the upload is in flight, `.rdy` or not.
    pub fn with_lock_stale_after(mut self, stale_after: Duration) -> Dropzone {
        self.lock_stale_after = stale_after;
        self
    }

    /// Whether the scan opens every part of a complete group to prove it readable (the
    /// default). A consumer that opens every part itself anyway (with [`Part::open`], which
    /// still refuses a part that is not the file the scan saw) can turn this off and save
    /// three system calls per part; an unreadable part is then reported when opened.
    pub fn with_open_check(mut self, open_check: bool) -> Dropzone {
        self.open_check = open_check;
        self
    }

    /// Sets how many levels of subdirectories are scanned: 0 = the dropzone directory only.
    /// Symbolic links to directories are never followed.
    pub fn with_max_depth(mut self, max_depth: usize) -> Dropzone {
        self.max_depth = max_depth;
        self
    }

    /// The dropzone directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configured depth.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Scans the dropzone for the uploads of `selection`; see the [module docs](self).
    ///
    /// Fails only when the dropzone itself cannot be listed. Problems below it (an unreadable
    /// subdirectory, an entry that vanished) are collected in [`Scan::errors`].
    pub fn scan(&self, selection: &Selection) -> Result<Scan> {
        let meta = fs::metadata(&self.root).at("open dropzone", &self.root)?;
        if !meta.is_dir() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotADirectory))
                .at("open dropzone", &self.root);
        }
        let mut scan = Scan::default();
        let mut ctx = Ctx {
            root: &self.root,
            selection,
            max_depth: self.max_depth,
            open_check: self.open_check,
            now: self.now.unwrap_or_else(SystemTime::now),
            lock_stale_after: self.lock_stale_after,
            only: None,
            window: None,
            count_foreign: self.count_foreign,
        };
        let window = self
            .window
            .map(|limit| Window::index(&ctx, &self.root, 0, limit, &mut scan.deferred));
        ctx.window = window.as_ref();
        let entries = ctx
            .list(&self.root, &mut scan)
            .at("read directory", &self.root)?;
        ctx.scan_dir(&self.root, entries, 0, &mut scan);
        scan.sort();
        Ok(scan)
    }

    /// Scans a single upload: the files named `STEM.*` in `dir` (the dropzone or a subdirectory
    /// within the scan depth), classified exactly as [`Dropzone::scan`] would. For a daemon that
    /// is told of one new `.rdy` (by inotify or a PutTrigger) and must not rescan a backlog.
    ///
    /// The result holds at most one group, in whichever list applies; nothing at all when no
    /// file of that stem exists.
    pub fn scan_group(
        &self,
        selection: &Selection,
        dir: &Path,
        stem: impl AsRef<OsStr>,
    ) -> Result<Scan> {
        let depth = dir
            .strip_prefix(&self.root)
            .ok()
            .filter(|rel| {
                rel.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .map(|rel| rel.components().count())
            .filter(|&depth| depth <= self.max_depth)
            .ok_or_else(|| Error::OutsideDropzone {
                path: dir.to_path_buf(),
                dropzone: self.root.clone(),
            })?;
        let mut scan = Scan::default();
        let ctx = Ctx {
            root: &self.root,
            selection,
            max_depth: self.max_depth,
            open_check: self.open_check,
            now: self.now.unwrap_or_else(SystemTime::now),
            lock_stale_after: self.lock_stale_after,
            only: Some(stem.as_ref().as_bytes()),
            window: None,
            count_foreign: false,
        };
        let entries = ctx.list(dir, &mut scan).at("read directory", dir)?;
        ctx.scan_dir(dir, entries, depth, &mut scan);
        scan.sort();
        Ok(scan)
    }
}

struct Ctx<'a> {
    root: &'a Path,
    selection: &'a Selection,
    max_depth: usize,
    open_check: bool,
    now: SystemTime,
    lock_stale_after: Duration,
    /// Only this stem, in this directory (no recursion, nothing else reported).
    only: Option<&'a [u8]>,
    /// The groups a windowed scan takes (see [`Dropzone::with_window`]).
    window: Option<&'a Window>,
    /// Foreign uploads are counted, not reported (see [`Dropzone::with_foreign_counted`]).
    count_foreign: bool,
}

impl Ctx<'_> {
    /// Entries of a directory, sorted by name so that scans are reproducible; without those of
    /// the groups the window leaves out, and without foreign uploads when they are counted
    /// (into `scan`).
    fn list(&self, dir: &Path, scan: &mut Scan) -> std::io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        let mut tally = foreign::Tally::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.as_bytes();
            if self.window.is_some_and(|w| w.leaves_out(dir, name)) {
                continue;
            }
            if self.count_foreign
                && tally.count(
                    self.selection,
                    &entry,
                    name,
                    (self.now, self.lock_stale_after),
                    &mut scan.foreign_counted,
                )
            {
                continue;
            }
            entries.push(entry);
        }
        tally.end_dir(dir, &mut scan.foreign_counted);
        entries.sort_by_key(DirEntry::file_name);
        Ok(entries)
    }

    fn scan_dir(&self, dir: &Path, entries: Vec<DirEntry>, depth: usize, scan: &mut Scan) {
        let mut stems: BTreeMap<Vec<u8>, Vec<Part>> = BTreeMap::new();
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name();
            let file_type = match entry.file_type() {
                Ok(t) => FileKind::of(t),
                Err(e) if crate::safe::is_not_found(&e) => continue,
                Err(e) => {
                    scan.errors.push(Error::Io {
                        op: "stat",
                        path: entry.path(),
                        source: e,
                    });
                    continue;
                }
            };
            let split = split_part_name(name.as_bytes());
            if let Some(only) = self.only
                && split.is_none_or(|(stem, _)| stem != only)
            {
                continue;
            }
            let upload =
                split.filter(|(stem, _)| self.selection.classify(stem) != StemMatch::NotUpload);
            if let Some((stem, ext)) = upload {
                let part = Part::from_entry(&entry, ext, file_type);
                stems.entry(stem.to_vec()).or_default().push(part);
            } else if file_type == FileKind::Directory && depth < self.max_depth {
                subdirs.push(entry.path());
            } else {
                let reason = if file_type == FileKind::Directory {
                    IgnoredReason::TooDeep
                } else {
                    IgnoredReason::NotAnUpload
                };
                log::debug!("ignoring {}", EscapedPath(&entry.path()));
                scan.ignored.push(Ignored {
                    path: entry.path(),
                    file_type,
                    reason,
                });
            }
        }
        for (stem, mut parts) in stems {
            parts.sort_by(|a, b| (a.kind, &a.ext).cmp(&(b.kind, &b.ext)));
            let files = Files {
                root: self.root.to_path_buf(),
                dir: dir.to_path_buf(),
                stem: OsString::from_vec(stem),
                parts,
            };
            self.classify(files, scan);
        }
        for sub in subdirs {
            match self.list(&sub, scan) {
                Ok(entries) => self.scan_dir(&sub, entries, depth + 1, scan),
                Err(e) => {
                    log::warn!("cannot read directory {}: {e}", EscapedPath(&sub));
                    scan.errors.push(Error::Io {
                        op: "read directory",
                        path: sub,
                        source: e,
                    });
                }
            }
        }
    }

    fn classify(&self, mut files: Files, scan: &mut Scan) {
        let stem_bytes = files.stem.as_bytes().to_vec();
        let matched = self.selection.classify(&stem_bytes);
        let mut reasons = Vec::new();
        let (client, parsed) = match &matched {
            StemMatch::OtherClient { client } | StemMatch::OtherJob { client } => {
                let reason = if matches!(matched, StemMatch::OtherJob { .. }) {
                    ForeignReason::OtherJob
                } else {
                    ForeignReason::OtherClient
                };
                stat_parts(&mut files, ALL, scan);
                let held = files.held_by_server(self.now, self.lock_stale_after);
                scan.foreign.push(Foreign {
                    files,
                    client: (*client).to_owned(),
                    reason,
                    held,
                });
                return;
            }
            // Filtered out before grouping.
            StemMatch::NotUpload => return,
            StemMatch::Ours(p) => (Some(p.client.to_owned()), Some(*p)),
            StemMatch::BadStamp { client } => {
                reasons.push(InvalidReason::BadStamp);
                (Some((*client).to_owned()), None)
            }
            StemMatch::NotText { client } => {
                reasons.push(InvalidReason::NotText);
                (Some((*client).to_owned()), None)
            }
            StemMatch::Ambiguous { clients } => {
                reasons.push(InvalidReason::Ambiguous {
                    clients: clients.iter().map(|c| (*c).to_owned()).collect(),
                });
                (None, None)
            }
        };
        let uploaded_at = parsed.map(|p| p.uploaded_at);
        // A group that may be complete needs only its `.out` and `.err` stat'ed: the size of
        // `.out` plans the work, its identity guards the reading and the removal; an empty
        // `.err` (an old harvester's) need not be opened. Every other group is stat'ed whole
        // (ages, sizes, identities for the quarantine). A `.lck` makes it the latter.
        if files.part(PartKind::Rdy).is_some() && files.part(PartKind::Lck).is_none() {
            stat_parts(&mut files, &[PartKind::Out, PartKind::Err], scan);
        } else {
            stat_parts(&mut files, ALL, scan);
        }
        // Until the server removes its lock, it may still be writing or finishing the group:
        // neither complete nor invalid yet, whatever its parts look like now.
        let held = files.held_by_server(self.now, self.lock_stale_after);
        if held || files.part(PartKind::Rdy).is_none() {
            scan.in_flight.push(InFlight {
                files,
                client,
                uploaded_at,
                held,
            });
            return;
        }
        for part in &mut files.parts {
            if part.file_type != FileKind::Regular {
                reasons.push(not_regular(part, part.file_type));
                continue;
            }
            if !self.open_check {
                continue;
            }
            // Prove the part can be read, and take the metadata of what was opened.
            match open_regular(&part.path) {
                Ok((_file, meta)) => part.meta = Some(Meta::of(&meta)),
                Err(Error::NotRegular { file_type, .. }) => {
                    reasons.push(not_regular(part, file_type));
                }
                Err(e) => reasons.push(InvalidReason::Unreadable {
                    kind: part.kind,
                    ext: part.ext.clone(),
                    error: e
                        .io_error()
                        .map_or_else(|| e.to_string(), ToString::to_string),
                }),
            }
        }
        let index = |kind| files.parts.iter().position(|p| p.kind == kind);
        let [out, err, env, rdy] = PartKind::REQUIRED.map(index);
        for (kind, found) in PartKind::REQUIRED.iter().zip([out, err, env, rdy]) {
            if found.is_none() {
                reasons.push(InvalidReason::Missing(*kind));
            }
        }
        match (parsed, out, err, env, rdy) {
            (Some(p), Some(out), Some(err), Some(env), Some(rdy)) if reasons.is_empty() => {
                scan.complete.push(Group {
                    stem: p.stem.to_owned(),
                    client: p.client.to_owned(),
                    uploaded_at: p.uploaded_at,
                    middle: p.middle.map(str::to_owned),
                    job: self.selection.job().to_owned(),
                    files,
                    out,
                    err,
                    env,
                    rdy,
                });
            }
            _ => {
                stat_parts(&mut files, ALL, scan);
                let invalid = Invalid {
                    files,
                    client,
                    uploaded_at,
                    reasons,
                };
                log::debug!("invalid upload {invalid}");
                scan.invalid.push(invalid);
            }
        }
    }
}

/// Every kind of part, for [`stat_parts`].
const ALL: &[PartKind] = &[
    PartKind::Out,
    PartKind::Err,
    PartKind::Env,
    PartKind::Rdy,
    PartKind::Lck,
    PartKind::Other,
];

/// Stats the parts of `files` of the given kinds that are not yet. A part that is gone leaves
/// the group, as if the listing had not seen it; one that cannot be stat'ed leaves it too, with
/// an error for the scan.
fn stat_parts(files: &mut Files, kinds: &[PartKind], scan: &mut Scan) {
    files.parts.retain_mut(|part| {
        if !kinds.contains(&part.kind) {
            return true;
        }
        match part.stat() {
            Ok(()) => true,
            Err(e) if crate::safe::is_not_found(&e) => false,
            Err(e) => {
                scan.errors.push(Error::Io {
                    op: "stat",
                    path: part.path.clone(),
                    source: e,
                });
                false
            }
        }
    });
}

fn not_regular(part: &Part, file_type: FileKind) -> InvalidReason {
    InvalidReason::NotRegular {
        kind: part.kind,
        ext: part.ext.clone(),
        file_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_kinds_follow_extensions() {
        for kind in PartKind::REQUIRED.into_iter().chain([PartKind::Lck]) {
            let ext = kind.ext().expect("known");
            assert_eq!(PartKind::from_ext(ext.as_bytes()), kind);
        }
        assert_eq!(PartKind::from_ext(b"out.gz"), PartKind::Other);
        assert_eq!(PartKind::from_ext(b"OUT"), PartKind::Other);
        assert_eq!(PartKind::Rdy.to_string(), ".rdy");
    }

    #[test]
    fn invalid_reasons_escape_names() {
        let r = InvalidReason::NotRegular {
            kind: PartKind::Other,
            ext: OsString::from_vec(b"x\x1b".to_vec()),
            file_type: FileKind::Fifo,
        };
        assert_eq!(r.to_string(), r".x\x1b is a FIFO");
        assert_eq!(
            InvalidReason::Missing(PartKind::Env).to_string(),
            ".env is missing"
        );
    }
}
