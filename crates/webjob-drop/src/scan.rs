//! Finding upload groups in a dropzone, and reading the parts of complete ones.
//!
//! [`Dropzone::scan`] lists the dropzone (and, up to a depth, its subdirectories), gathers the
//! files of each upload by stem and classifies every upload:
//!
//! - **complete** ([`Group`]): a `.rdy` marker and regular, readable `.out`, `.err` and `.env`
//!   files, for a selected client and the selected job; sorted oldest first (upload time from the
//!   name, then stem);
//! - **in flight** ([`InFlight`]): files without `.rdy`, being written or left by a failed upload;
//!   reported with their age, never to be touched before they are older than `orphan_after`;
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
use std::fmt;
use std::fs::{self, DirEntry, File};
use std::io::BufReader;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argus_core::escape::{Escaped, EscapedPath};
use argus_core::manifest::{Manifest, ManifestError};
use time::OffsetDateTime;

use crate::error::{Error, IoContext, Result};
use crate::kv::{Env, KeyValues, read_manifests};
use crate::name::{Selection, StemMatch, split_part_name};
use crate::safe::{FileId, FileKind, open_regular, read_limited};

/// How many levels of subdirectories a scan descends into by default (per-client and per-job
/// directories of newer WebJob servers).
pub const DEFAULT_MAX_DEPTH: usize = 2;

/// Largest `.env` or `.rdy` file read into memory.
pub const MAX_TEXT_LEN: u64 = 1024 * 1024;

/// A WebJob dropzone (the server's `incoming` directory).
#[derive(Clone, Debug)]
pub struct Dropzone {
    root: PathBuf,
    max_depth: usize,
    open_check: bool,
}

impl Dropzone {
    /// The dropzone at `root`, scanned to [`DEFAULT_MAX_DEPTH`].
    pub fn new(root: impl Into<PathBuf>) -> Dropzone {
        Dropzone {
            root: root.into(),
            max_depth: DEFAULT_MAX_DEPTH,
            open_check: true,
        }
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
        let entries = list(&self.root).at("read directory", &self.root)?;
        let ctx = Ctx {
            root: &self.root,
            selection,
            max_depth: self.max_depth,
            open_check: self.open_check,
            only: None,
        };
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
        let entries = list(dir).at("read directory", dir)?;
        let ctx = Ctx {
            root: &self.root,
            selection,
            max_depth: self.max_depth,
            open_check: self.open_check,
            only: Some(stem.as_ref().as_bytes()),
        };
        ctx.scan_dir(dir, entries, depth, &mut scan);
        scan.sort();
        Ok(scan)
    }
}

/// Everything a scan found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Scan {
    /// Complete groups of the selected clients and job, oldest first (upload time, then stem).
    pub complete: Vec<Group>,
    /// Groups without `.rdy`: being uploaded, or orphans of failed uploads.
    pub in_flight: Vec<InFlight>,
    /// Groups with `.rdy` that cannot be processed, with the reasons.
    pub invalid: Vec<Invalid>,
    /// Uploads of other clients or other jobs: never touched.
    pub foreign: Vec<Foreign>,
    /// Entries that are not uploads, and directories below the scan depth.
    pub ignored: Vec<Ignored>,
    /// Problems that kept part of the dropzone from being scanned.
    pub errors: Vec<Error>,
}

impl Scan {
    fn sort(&mut self) {
        self.complete.sort_by(|a, b| {
            (a.uploaded_at, &a.stem, &a.files.dir).cmp(&(b.uploaded_at, &b.stem, &b.files.dir))
        });
        self.in_flight
            .sort_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.invalid
            .sort_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.foreign
            .sort_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.ignored.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// The in-flight groups whose newest file is at least `orphan_after` older than `now`.
    pub fn orphans(
        &self,
        now: SystemTime,
        orphan_after: Duration,
    ) -> impl Iterator<Item = &InFlight> + '_ {
        self.in_flight
            .iter()
            .filter(move |f| f.is_orphan(now, orphan_after))
    }
}

/// What a part is, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PartKind {
    /// `.out`: the job's standard output (argus bytes), binary.
    Out,
    /// `.err`: the job's standard error (log lines and chunk manifests).
    Err,
    /// `.env`: the client's `Key=Value` record, with `Hostname=`.
    Env,
    /// `.rdy`: written last by the server; the group is complete when it exists.
    Rdy,
    /// `.lck`: the server's lock while it writes.
    Lck,
    /// Any other extension (e.g. added by a PutTrigger, or a compressed part `out.gz`).
    Other,
}

impl PartKind {
    /// The parts every complete group has.
    pub const REQUIRED: [PartKind; 4] =
        [PartKind::Out, PartKind::Err, PartKind::Env, PartKind::Rdy];

    /// The kind of a part with extension `ext`.
    pub fn from_ext(ext: &[u8]) -> PartKind {
        match ext {
            b"out" => PartKind::Out,
            b"err" => PartKind::Err,
            b"env" => PartKind::Env,
            b"rdy" => PartKind::Rdy,
            b"lck" => PartKind::Lck,
            _ => PartKind::Other,
        }
    }

    /// The extension of a known kind.
    pub fn ext(self) -> Option<&'static str> {
        match self {
            PartKind::Out => Some("out"),
            PartKind::Err => Some("err"),
            PartKind::Env => Some("env"),
            PartKind::Rdy => Some("rdy"),
            PartKind::Lck => Some("lck"),
            PartKind::Other => None,
        }
    }
}

impl fmt::Display for PartKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ext() {
            Some(ext) => write!(f, ".{ext}"),
            None => f.write_str("extra part"),
        }
    }
}

/// One file of an upload, as the scan saw it (metadata without following links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    path: PathBuf,
    ext: OsString,
    kind: PartKind,
    file_type: FileKind,
    len: u64,
    modified: Option<SystemTime>,
    id: FileId,
}

impl Part {
    /// Full path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Base name.
    pub fn name(&self) -> &OsStr {
        self.path.file_name().unwrap_or_default()
    }

    /// Extension (`out`, `rdy`, ... or e.g. `out.gz`).
    pub fn ext(&self) -> &OsStr {
        &self.ext
    }

    /// What the part is, by its extension.
    pub fn kind(&self) -> PartKind {
        self.kind
    }

    /// What kind of file system object it is.
    pub fn file_type(&self) -> FileKind {
        self.file_type
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file is empty (a normal `.err`, `.rdy`, or quiet `.out`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Modification time, if the file system reports one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    /// Device and inode.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Opens the part for reading, safely: without following a link, without blocking on a FIFO,
    /// and only if it is still the very file the scan saw (same inode, same size), else
    /// [`Error::Changed`].
    pub fn open(&self) -> Result<File> {
        let (file, meta) = open_regular(&self.path)?;
        if FileId::of(&meta) != self.id || meta.len() != self.len {
            return Err(Error::Changed {
                path: self.path.clone(),
            });
        }
        Ok(file)
    }

    fn from_entry(entry: &DirEntry, ext: &[u8]) -> std::io::Result<Part> {
        let meta = entry.metadata()?;
        Ok(Part {
            path: entry.path(),
            ext: OsString::from_vec(ext.to_vec()),
            kind: PartKind::from_ext(ext),
            file_type: FileKind::of(meta.file_type()),
            len: meta.len(),
            modified: meta.modified().ok(),
            id: FileId::of(&meta),
        })
    }
}

/// The files of one upload: same directory, same stem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    root: PathBuf,
    dir: PathBuf,
    stem: OsString,
    parts: Vec<Part>,
}

impl Files {
    /// The dropzone this upload was found in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the files (the dropzone or one of its subdirectories).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stem shared by the files, as found (possibly not UTF-8).
    pub fn stem(&self) -> &OsStr {
        &self.stem
    }

    /// Every file, ordered by kind (`.out`, `.err`, `.env`, `.rdy`, `.lck`, others by name).
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The first part of `kind`.
    pub fn part(&self, kind: PartKind) -> Option<&Part> {
        self.parts.iter().find(|p| p.kind == kind)
    }

    /// The newest modification time of the files.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.parts.iter().filter_map(|p| p.modified).max()
    }

    /// Total size of the files in bytes.
    pub fn total_len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }

    fn sort_key(&self) -> (&Path, &OsStr) {
        (&self.dir, &self.stem)
    }
}

impl fmt::Display for Files {
    /// The stem's path (`DIR/STEM`), escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", EscapedPath(&self.dir.join(&self.stem)))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A set of upload files the consumer may act on: a complete, invalid or in-flight group (never a
/// [`Foreign`] one). Taken by [`quarantine_group`](crate::quarantine_group).
pub trait GroupFiles: sealed::Sealed {
    /// The files.
    fn files(&self) -> &Files;
}

/// A complete upload of a selected client and job: `.rdy` exists and `.out`, `.err` and `.env`
/// are regular files that could be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    files: Files,
    stem: String,
    client: String,
    uploaded_at: OffsetDateTime,
    middle: Option<String>,
    job: String,
    // Indices into `files.parts`, set when the group is classified complete.
    out: usize,
    err: usize,
    env: usize,
    rdy: usize,
}

impl Group {
    /// The stem (`CLIENT_YYYYMMDDHHMMSS[_MIDDLE]_JOB`), printable UTF-8.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// The directory holding the group.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The client id.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// The upload time from the name (UTC, as the server stamps it).
    pub fn uploaded_at(&self) -> OffsetDateTime {
        self.uploaded_at
    }

    /// The field between time stamp and job in the name, if any (a pid or a run type).
    pub fn middle(&self) -> Option<&str> {
        self.middle.as_deref()
    }

    /// The job name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// All files of the group.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The `.out` part.
    pub fn out(&self) -> &Part {
        &self.files.parts[self.out]
    }

    /// The `.err` part.
    pub fn err(&self) -> &Part {
        &self.files.parts[self.err]
    }

    /// The `.env` part.
    pub fn env(&self) -> &Part {
        &self.files.parts[self.env]
    }

    /// The `.rdy` part.
    pub fn rdy(&self) -> &Part {
        &self.files.parts[self.rdy]
    }

    /// The `.lck` part, if the server has not removed its lock yet.
    pub fn lck(&self) -> Option<&Part> {
        self.files.part(PartKind::Lck)
    }

    /// Parts with other extensions.
    pub fn extras(&self) -> impl Iterator<Item = &Part> {
        self.files
            .parts
            .iter()
            .filter(|p| p.kind == PartKind::Other)
    }

    /// Opens `.out` safely (see [`Part::open`]); stream it, it may be large.
    pub fn open_out(&self) -> Result<File> {
        self.out().open()
    }

    /// Reads and parses `.env` (at most [`MAX_TEXT_LEN`] bytes). Use [`Env::hostname`] for the
    /// validated host name.
    pub fn read_env(&self) -> Result<Env> {
        read_small(self.env()).map(|bytes| Env::parse(&bytes))
    }

    /// Reads and parses `.rdy` (at most [`MAX_TEXT_LEN`] bytes; often empty).
    pub fn read_ready(&self) -> Result<KeyValues> {
        read_small(self.rdy()).map(|bytes| KeyValues::parse(&bytes))
    }

    /// Reads the chunk manifests from `.err`, streaming; see [`read_manifests`]. An empty list
    /// is normal.
    pub fn manifests(&self) -> Result<Vec<Result<Manifest, ManifestError>>> {
        let part = self.err();
        read_manifests(BufReader::new(part.open()?)).at("read", part.path())
    }
}

fn read_small(part: &Part) -> Result<Vec<u8>> {
    read_limited(part.open()?, part.path(), MAX_TEXT_LEN)
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.files.fmt(f)
    }
}

impl sealed::Sealed for Group {}
impl GroupFiles for Group {
    fn files(&self) -> &Files {
        &self.files
    }
}

/// Files of a selected client and job without `.rdy`: an upload in progress, or what a failed
/// upload left behind. Only its age tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    files: Files,
    client: Option<String>,
    uploaded_at: Option<OffsetDateTime>,
}

impl InFlight {
    /// The files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The client id, when the name is understood.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// The upload time from the name, when it is valid.
    pub fn uploaded_at(&self) -> Option<OffsetDateTime> {
        self.uploaded_at
    }

    /// True while the server's `.lck` exists.
    pub fn is_locked(&self) -> bool {
        self.files.part(PartKind::Lck).is_some()
    }

    /// Time since the newest file was modified, as of `now` (zero if in the future or unknown).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.files
            .last_modified()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// True when nothing has been written for at least `orphan_after`: the upload failed and will
    /// never complete.
    pub fn is_orphan(&self, now: SystemTime, orphan_after: Duration) -> bool {
        self.age(now) >= orphan_after
    }
}

impl fmt::Display for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.files.fmt(f)
    }
}

impl sealed::Sealed for InFlight {}
impl GroupFiles for InFlight {
    fn files(&self) -> &Files {
        &self.files
    }
}

/// Why a group with `.rdy` cannot be processed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// A required part does not exist.
    Missing(PartKind),
    /// A part is not a regular file.
    NotRegular {
        /// Which part.
        kind: PartKind,
        /// Its extension.
        ext: OsString,
        /// What it is instead.
        file_type: FileKind,
    },
    /// A part could not be opened.
    Unreadable {
        /// Which part.
        kind: PartKind,
        /// Its extension.
        ext: OsString,
        /// The operating system's message.
        error: String,
    },
    /// The 14 digits of the name are no real date-time.
    BadStamp,
    /// The name is not printable UTF-8 text.
    NotText,
    /// The name reads as the upload of more than one selected client.
    Ambiguous {
        /// The client ids it could belong to.
        clients: Vec<String>,
    },
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReason::Missing(kind) => write!(f, "{kind} is missing"),
            InvalidReason::NotRegular { ext, file_type, .. } => {
                write!(f, ".{} is a {file_type}", Escaped(ext.as_bytes()))
            }
            InvalidReason::Unreadable { ext, error, .. } => {
                write!(f, ".{} cannot be opened: {error}", Escaped(ext.as_bytes()))
            }
            InvalidReason::BadStamp => f.write_str("the time stamp in the name is invalid"),
            InvalidReason::NotText => f.write_str("the name is not printable UTF-8"),
            InvalidReason::Ambiguous { clients } => {
                write!(f, "the name fits several clients: {}", clients.join(", "))
            }
        }
    }
}

/// A group with `.rdy` of a selected client and job that cannot be processed; quarantine it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    files: Files,
    client: Option<String>,
    uploaded_at: Option<OffsetDateTime>,
    reasons: Vec<InvalidReason>,
}

impl Invalid {
    /// The files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The client id, when the name is understood.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// The upload time from the name, when it is valid.
    pub fn uploaded_at(&self) -> Option<OffsetDateTime> {
        self.uploaded_at
    }

    /// Every reason found (at least one).
    pub fn reasons(&self) -> &[InvalidReason] {
        &self.reasons
    }

    /// The reasons as one line, for a quarantine reason file or a log.
    pub fn reason_text(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.files, self.reason_text())
    }
}

impl sealed::Sealed for Invalid {}
impl GroupFiles for Invalid {
    fn files(&self) -> &Files {
        &self.files
    }
}

/// Why an upload is not the consumer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForeignReason {
    /// The selected job, uploaded by a client that is not selected.
    OtherClient,
    /// Another job.
    OtherJob,
}

/// The upload of another client or job. It is reported (and counted) but never touched: no
/// operation of this crate accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foreign {
    files: Files,
    client: String,
    reason: ForeignReason,
}

impl Foreign {
    /// The files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The client id read from the name.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Why it is not the consumer's.
    pub fn reason(&self) -> ForeignReason {
        self.reason
    }

    /// True when the upload is complete (it has a `.rdy`).
    pub fn is_complete(&self) -> bool {
        self.files.part(PartKind::Rdy).is_some()
    }
}

/// Why an entry is not part of any upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredReason {
    /// The name is not that of an upload file.
    NotAnUpload,
    /// A directory deeper than the scan depth.
    TooDeep,
}

/// A dropzone entry that is not part of any upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The entry.
    pub path: PathBuf,
    /// What it is (links are not followed).
    pub file_type: FileKind,
    /// Why it was ignored.
    pub reason: IgnoredReason,
}

struct Ctx<'a> {
    root: &'a Path,
    selection: &'a Selection,
    max_depth: usize,
    open_check: bool,
    /// Only this stem, in this directory (no recursion, nothing else reported).
    only: Option<&'a [u8]>,
}

/// Entries of a directory, sorted by name so that scans are reproducible.
fn list(dir: &Path) -> std::io::Result<Vec<DirEntry>> {
    let mut entries = fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(DirEntry::file_name);
    Ok(entries)
}

impl Ctx<'_> {
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
                match Part::from_entry(&entry, ext) {
                    Ok(part) => stems.entry(stem.to_vec()).or_default().push(part),
                    Err(e) if crate::safe::is_not_found(&e) => {}
                    Err(e) => scan.errors.push(Error::Io {
                        op: "stat",
                        path: entry.path(),
                        source: e,
                    }),
                }
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
            match list(&sub) {
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
                scan.foreign.push(Foreign {
                    files,
                    client: (*client).to_owned(),
                    reason,
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
        if files.part(PartKind::Rdy).is_none() {
            scan.in_flight.push(InFlight {
                files,
                client,
                uploaded_at,
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
                Ok((_file, meta)) => {
                    part.len = meta.len();
                    part.id = FileId::of(&meta);
                    part.modified = meta.modified().ok();
                }
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
