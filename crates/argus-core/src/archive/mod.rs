//! The local archive of delivered chunks:
//! `ARCHIVE_DIR/HOST_YYYYMMDDHHMMSS.argus[.gz|.bz2|.xz]` (UTC time of the cut), published
//! atomically and never replacing a file, and its purge by [`crate::retention`].
//!
//! [`archive`] writes a chunk compressed with any [`Codec`] (one whose cargo feature is off fails
//! at its first write); a taken name holding the same bytes means the chunk is already
//! archived, any other taken name moves it to the next second. [`purge`] deletes what a
//! retention [`Policy`] no longer keeps, of one host only, and says when that is a surprise.
//!
//! ```
//! use argus_core::archive::{Archived, archive, purge};
//! use argus_core::codec::Compression;
//! use argus_core::host::Hostname;
//! use argus_core::retention::Policy;
//! use time::macros::datetime;
//!
//! let dir = tempfile::tempdir()?;
//! let chunk = dir.path().join("argus.out.staged.1.20261127100005");
//! std::fs::write(&chunk, b"argus bytes")?;
//! let host = Hostname::new("sensor1")?;
//! let cut = datetime!(2026-11-27 10:00:05 UTC);
//! let sha = argus_core::manifest::sha256(b"argus bytes");
//! let archive_dir = dir.path().join("archive");
//! let codec = Compression::None.codec();
//! let Archived::New(path) = archive(&chunk, &sha, &archive_dir, &host, cut, codec)? else {
//!     unreachable!("a fresh archive");
//! };
//! assert!(path.ends_with("sensor1_20261127100005.argus"));
//!
//! // Ten days later, a week's retention deletes it.
//! let policy = Policy { max_age_days: 7, ..Policy::default() };
//! let purged = purge(&archive_dir, &host, &policy, cut + time::Duration::days(10), &[])?;
//! assert_eq!(purged.removed, [path]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error as CoreError;
use crate::codec::{Codec, open_decoded};
use crate::escape::EscapedPath;
use crate::host::Hostname;
use crate::publish::{Publisher, clean_temp_files, create_dir_all_durably};
use crate::retention::{self, NamePattern, Policy};
use crate::stamp::format_datetime;

/// How many later seconds are tried when the name of the cut's second is taken.
pub const MAX_NAME_TRIES: i64 = 120;

/// Where a chunk went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Archived {
    /// Published under this path.
    New(PathBuf),
    /// This file already holds exactly the chunk (an earlier run archived it and died before it
    /// removed the staged chunk).
    Already(PathBuf),
}

/// Why the chunk was not archived.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Creating, publishing or syncing the archive failed.
    #[error(transparent)]
    Publish(#[from] CoreError),
    /// The staged chunk could not be read.
    #[error("cannot read {}", EscapedPath(path))]
    Read {
        /// The staged chunk.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the compressed archive failed.
    #[error("cannot write {}", EscapedPath(path))]
    Write {
        /// The archive being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Every name within [`MAX_NAME_TRIES`] seconds of the cut is taken by another chunk.
    #[error("no free archive name for {host} within {MAX_NAME_TRIES} s of {}", format_datetime(*cut))]
    NoName {
        /// The sensor.
        host: Hostname,
        /// The cut time.
        cut: OffsetDateTime,
    },
}

impl ArchiveError {
    /// True when the file system is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            ArchiveError::Publish(e) => e.is_disk_full(),
            ArchiveError::Write { source, .. } => crate::is_disk_full(source),
            ArchiveError::Read { .. } | ArchiveError::NoName { .. } => false,
        }
    }
}

/// What a purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// The archives deleted, oldest first.
    pub removed: Vec<PathBuf>,
    /// Temporary files a crashed run had left, deleted.
    pub leftovers: Vec<PathBuf>,
    /// Set when the purge deleted a fresh archive or most of the archive's bytes.
    pub surprise: Option<retention::Surprise>,
}

/// The archive name for a chunk of `host` cut at `at`.
pub fn archive_name(host: &Hostname, at: OffsetDateTime, codec: Codec) -> String {
    format!("{host}_{}.argus{}", format_datetime(at), codec.suffix())
}

/// Archives `chunk` (whose SHA-256 is `sha256`) compressed with `codec` into `dir`.
///
/// The name carries the cut time; when a file of that name exists, it either holds this very
/// chunk (then nothing is written) or the next second's name is tried, so the name always stays
/// within the naming retention recognises and nothing is ever replaced.
pub fn archive(
    chunk: &Path,
    sha256: &[u8; 32],
    dir: &Path,
    host: &Hostname,
    cut: OffsetDateTime,
    codec: Codec,
) -> Result<Archived, ArchiveError> {
    if !dir.is_dir() {
        log::warn!(
            "archive directory {} does not exist; creating it",
            EscapedPath(dir)
        );
        create_dir_all_durably(dir)?;
    }
    let publisher = Publisher::open(dir)?;
    for k in 0..MAX_NAME_TRIES {
        let name = archive_name(host, cut + time::Duration::seconds(k), codec);
        let path = dir.join(&name);
        if path.exists() {
            if holds(&path, sha256) {
                return Ok(Archived::Already(path));
            }
            continue;
        }
        let mut staged = match publisher.stage(&name) {
            Ok(s) => s,
            Err(CoreError::Exists { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let io = |source: io::Error| ArchiveError::Write {
            path: path.clone(),
            source,
        };
        let mut input = File::open(chunk).map_err(|source| ArchiveError::Read {
            path: chunk.to_path_buf(),
            source,
        })?;
        let mut encoder = codec.encoder(&mut staged);
        io::copy(&mut input, &mut encoder).map_err(io)?;
        encoder.finish().map_err(io)?;
        match publisher.publish(staged) {
            Ok(path) => return Ok(Archived::New(path)),
            Err(CoreError::Exists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ArchiveError::NoName {
        host: host.clone(),
        cut,
    })
}

/// True when the archive file decompresses to bytes with this SHA-256.
fn holds(path: &Path, sha256: &[u8; 32]) -> bool {
    let Ok(mut decoder) = open_decoded(path) else {
        return false;
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let digest: [u8; 32] = hasher.finalize().into();
    &digest == sha256
}

/// Deletes this host's archives that the policy no longer keeps, as of `now`. Also removes
/// temporary files a crashed run left in the archive (older than an hour, as another host's
/// harvest might share the directory). `fresh` names the archives this run wrote: a purge that
/// deletes one of them, or more than half of the archive's bytes, comes back with a
/// [`retention::Surprise`] to warn about. A directory that does not exist holds nothing to
/// purge.
pub fn purge(
    dir: &Path,
    host: &Hostname,
    policy: &Policy,
    now: OffsetDateTime,
    fresh: &[String],
) -> Result<Purged, CoreError> {
    let mut purged = Purged::default();
    if !dir.is_dir() {
        return Ok(purged);
    }
    purged.leftovers = clean_temp_files(dir, std::time::Duration::from_secs(3600), now.into())?;
    for path in &purged.leftovers {
        log::info!(
            "removed a temporary file left by a crash: {}",
            EscapedPath(path)
        );
    }
    if policy.max_age_days == 0 && policy.max_total_bytes.is_none() {
        return Ok(purged);
    }
    let pattern = NamePattern::harvest_archive(host.as_str())?;
    let entries = retention::list(dir)?;
    let doomed = retention::plan(&entries, &pattern, policy, now);
    for d in &doomed {
        log::info!(
            "purging {} ({} bytes, {:?}: {})",
            EscapedPath(&dir.join(&d.name)),
            d.size,
            d.reason,
            crate::stamp::format_rfc3339(d.time)
        );
    }
    purged.surprise = retention::review(&entries, std::slice::from_ref(&pattern), &doomed, |n| {
        fresh.iter().any(|f| f == n)
    });
    purged.removed = retention::apply(dir, &doomed)?;
    Ok(purged)
}

#[cfg(test)]
mod tests;
