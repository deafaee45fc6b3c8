//! What a scan finds, group by group: complete uploads ([`Group`], whose parts can be read),
//! uploads in flight ([`InFlight`]), invalid ones with their reasons ([`Invalid`]), other
//! clients' and jobs' uploads ([`Foreign`]) and entries that are no uploads ([`Ignored`]).

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argus_core::escape::Escaped;
use argus_core::manifest::{Manifest, ManifestError};
use time::OffsetDateTime;

use super::part::sealed;
use super::{Files, GroupFiles, MAX_TEXT_LEN, Part, PartKind};
use crate::error::{IoContext, Result};
use crate::kv::{Env, KeyValues, read_manifests};
use crate::safe::{FileKind, read_limited};

/// A complete upload of a selected client and job: `.rdy` exists and `.out`, `.err` and `.env`
/// are regular files that could be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub(super) files: Files,
    pub(super) stem: String,
    pub(super) client: String,
    pub(super) uploaded_at: OffsetDateTime,
    pub(super) middle: Option<String>,
    pub(super) job: String,
    // Indices into `files.parts`, set when the group is classified complete.
    pub(super) out: usize,
    pub(super) err: usize,
    pub(super) env: usize,
    pub(super) rdy: usize,
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

    /// The size of `.out` as the scan saw it (a complete group's `.out` is always stat'ed; the
    /// reading checks the size again).
    pub fn out_len(&self) -> u64 {
        self.out().len().unwrap_or_default()
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
        self.open_env().and_then(|env| self.read_env_from(env))
    }

    /// Opens `.env` safely (see [`Part::open`]), to be read later by [`Group::read_env_from`]:
    /// for a caller that opens the parts of many uploads ahead of reading them.
    pub fn open_env(&self) -> Result<OpenedPart> {
        self.env()
            .open_with_len()
            .map(|(file, len)| OpenedPart { file, len })
    }

    /// [`Group::read_env`] of a `.env` opened by [`Group::open_env`].
    pub fn read_env_from(&self, env: OpenedPart) -> Result<Env> {
        read_limited(env.file, self.env().path(), MAX_TEXT_LEN, env.len).map(|b| Env::parse(&b))
    }

    /// Reads and parses `.rdy` (at most [`MAX_TEXT_LEN`] bytes; often empty).
    pub fn read_ready(&self) -> Result<KeyValues> {
        read_small(self.rdy()).map(|bytes| KeyValues::parse(&bytes))
    }

    /// Reads the chunk manifests from `.err`, streaming; see [`read_manifests`]. An empty list
    /// is normal.
    pub fn manifests(&self) -> Result<Vec<Result<Manifest, ManifestError>>> {
        let part = self.err();
        // The size opened, no probe for more.
        let (file, len) = part.open_with_len()?;
        read_manifests(BufReader::new(file.take(len))).at("read", part.path())
    }
}

/// A part opened safely, with the size it had when opened ([`Group::open_env`]).
#[derive(Debug)]
pub struct OpenedPart {
    file: File,
    len: u64,
}

impl OpenedPart {
    /// The open file (to give the kernel advice on it, say).
    pub fn file(&self) -> &File {
        &self.file
    }
}

pub(super) fn read_small(part: &Part) -> Result<Vec<u8>> {
    let (file, len) = part.open_with_len()?;
    read_limited(file, part.path(), MAX_TEXT_LEN, len)
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

/// Files of a selected client and job without `.rdy`, or held by the server's fresh `.lck`: an
/// upload in progress, or what a failed upload left behind. Only its age tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub(super) files: Files,
    pub(super) client: Option<String>,
    pub(super) uploaded_at: Option<OffsetDateTime>,
    pub(super) held: bool,
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

    /// True when the scan found the server's `.lck` fresh (see
    /// [`Files::held_by_server`]): the server is at work on the upload, which is never an
    /// orphan then.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Time since the newest file was modified, as of `now` (zero if in the future or unknown).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.files
            .last_modified()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// True when nothing has been written for at least `orphan_after` and the server holds no
    /// fresh lock on it: the upload failed and will never complete.
    pub fn is_orphan(&self, now: SystemTime, orphan_after: Duration) -> bool {
        !self.held && self.age(now) >= orphan_after
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
    pub(super) files: Files,
    pub(super) client: Option<String>,
    pub(super) uploaded_at: Option<OffsetDateTime>,
    pub(super) reasons: Vec<InvalidReason>,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub(super) files: Files,
    pub(super) client: String,
    pub(super) reason: ForeignReason,
    pub(super) held: bool,
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

    /// True when the upload is complete: it has a `.rdy`, and the server's `.lck` no longer
    /// holds it (see [`Files::held_by_server`]).
    pub fn is_complete(&self) -> bool {
        !self.held && self.files.part(PartKind::Rdy).is_some()
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
