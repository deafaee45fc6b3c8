//! The parts of an upload: the kinds of file a group is made of ([`PartKind`]), one file
//! ([`Part`]), the files of one stem ([`Files`]), and the sealed [`GroupFiles`] trait of the
//! groups a consumer may act on.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{DirEntry, File};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argus_core::escape::EscapedPath;

use crate::error::{Error, Result};
use crate::safe::{FileId, FileKind, open_regular};

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

/// One file of an upload, as the scan saw it.
///
/// Its kind of file comes from the directory listing. Its metadata (size, time, inode; taken
/// without following links) is known for every part of every group, except the `.env` and
/// `.rdy` of a complete [`Group`](super::Group) found without the open check, which the scan
/// does not stat: they are read through [`Part::open`], whose descriptor tells what they are,
/// and the removal guards the group by its `.out` (see `ops::remove_group`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub(super) path: PathBuf,
    pub(super) ext: OsString,
    pub(super) kind: PartKind,
    pub(super) file_type: FileKind,
    pub(super) meta: Option<Meta>,
}

/// What a stat of a part found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
    pub(super) id: FileId,
}

impl Meta {
    pub(super) fn of(meta: &std::fs::Metadata) -> Meta {
        Meta {
            len: meta.len(),
            modified: meta.modified().ok(),
            id: FileId::of(meta),
        }
    }
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

    /// Size in bytes when the scan stat'ed the part (see [`Part`]).
    pub fn len(&self) -> Option<u64> {
        self.meta.map(|m| m.len)
    }

    /// True when the scan found the file empty (a normal `.err`, `.rdy`, or quiet `.out`);
    /// false when it is not, or was not stat'ed.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Modification time, if the scan stat'ed the part and the file system reports one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.meta.and_then(|m| m.modified)
    }

    /// Device and inode, when the scan stat'ed the part.
    pub fn id(&self) -> Option<FileId> {
        self.meta.map(|m| m.id)
    }

    /// Opens the part for reading, safely: without following a link, without blocking on a FIFO,
    /// only if it is a regular file, and, when the scan stat'ed it, only if it is still the very
    /// file the scan saw (same inode, same size), else [`Error::Changed`].
    pub fn open(&self) -> Result<File> {
        self.open_with_len().map(|(file, _)| file)
    }

    /// [`Part::open`], with the size of what was opened.
    pub(crate) fn open_with_len(&self) -> Result<(File, u64)> {
        let (file, meta) = open_regular(&self.path)?;
        if self
            .meta
            .is_some_and(|m| m.id != FileId::of(&meta) || m.len != meta.len())
        {
            return Err(Error::Changed {
                path: self.path.clone(),
            });
        }
        Ok((file, meta.len()))
    }

    /// A part known by its directory entry alone: its kind of file from the listing (no stat
    /// where the file system reports it), no metadata yet.
    pub(super) fn from_entry(entry: &DirEntry, ext: &[u8], file_type: FileKind) -> Part {
        Part {
            path: entry.path(),
            ext: OsString::from_vec(ext.to_vec()),
            kind: PartKind::from_ext(ext),
            file_type,
            meta: None,
        }
    }

    /// Stats the part (without following a link) unless it is stat'ed already.
    pub(super) fn stat(&mut self) -> std::io::Result<()> {
        if self.meta.is_none() {
            let meta = std::fs::symlink_metadata(&self.path)?;
            self.file_type = FileKind::of(meta.file_type());
            self.meta = Some(Meta::of(&meta));
        }
        Ok(())
    }
}

/// The files of one upload: same directory, same stem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    pub(super) root: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) stem: OsString,
    pub(super) parts: Vec<Part>,
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

    /// The newest modification time of the files the scan stat'ed.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.parts.iter().filter_map(Part::modified).max()
    }

    /// Total size in bytes of the files the scan stat'ed.
    pub fn total_len(&self) -> u64 {
        self.parts.iter().filter_map(Part::len).sum()
    }

    /// True while the WebJob server's `STEM.lck` holds the upload: the lock exists and is
    /// younger than `stale_after` as of `now` (a lock dated in the future holds too). The
    /// server removes its lock only after writing `.rdy`, so a `.rdy` beside a fresh lock is
    /// not yet the end of the upload; an older lock is the leftover of a server that died.
    pub fn held_by_server(&self, now: SystemTime, stale_after: Duration) -> bool {
        self.part(PartKind::Lck).is_some_and(|lck| {
            lck.modified()
                .and_then(|m| now.duration_since(m).ok())
                .is_none_or(|age| age < stale_after)
        })
    }

    pub(super) fn sort_key(&self) -> (&Path, &OsStr) {
        (&self.dir, &self.stem)
    }
}

impl fmt::Display for Files {
    /// The stem's path (`DIR/STEM`), escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", EscapedPath(&self.dir.join(&self.stem)))
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// A set of upload files the consumer may act on: a complete, invalid or in-flight group (never a
/// [`Foreign`](super::Foreign) one). Taken by [`quarantine_group`](crate::quarantine_group).
pub trait GroupFiles: sealed::Sealed {
    /// The files.
    fn files(&self) -> &Files;
}
