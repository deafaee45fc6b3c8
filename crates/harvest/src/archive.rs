//! The local archive: `ARCHIVE_DIR/HOST_YYYYMMDDHHMMSS.argus[.gz|.bz2|.xz]` (UTC time of the
//! cut), published atomically and never replacing a file, and its purge.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use argus_core::Error as CoreError;
use argus_core::codec::{Codec, open_decoded};
use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;
use argus_core::publish::{Publisher, clean_temp_files, create_dir_all_durably};
use argus_core::retention::{self, NamePattern, Policy};
use argus_core::stamp::format_datetime;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How many later seconds are tried when the name of the cut's second is taken.
const MAX_NAME_TRIES: i64 = 120;

/// Where a chunk went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Archived {
    /// Published under this path.
    New(PathBuf),
    /// This file already holds exactly the chunk (an earlier run archived it and died before it
    /// removed the staged chunk).
    Already(PathBuf),
}

/// Why the chunk was not archived.
#[derive(Debug)]
pub(crate) enum ArchiveError {
    /// Creating, publishing or syncing the archive failed.
    Publish(CoreError),
    /// The staged chunk could not be read.
    Read {
        /// The staged chunk.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// Writing the compressed archive failed.
    Write {
        /// The archive being written.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// Every name within [`MAX_NAME_TRIES`] seconds of the cut is taken by another chunk.
    NoName {
        /// The sensor.
        host: Hostname,
        /// The cut time.
        cut: OffsetDateTime,
    },
}

impl From<CoreError> for ArchiveError {
    fn from(e: CoreError) -> Self {
        ArchiveError::Publish(e)
    }
}

impl std::fmt::Display for ArchiveError {
    /// The message with every cause (and the disk-full hint), as both programs print errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Publish(e) => f.write_str(&argus_core::error_chain(e)),
            ArchiveError::Read { path, cause } => {
                write!(f, "cannot read {}: {cause}", EscapedPath(path))
            }
            ArchiveError::Write { path, cause } => write!(
                f,
                "cannot write {}: {}",
                EscapedPath(path),
                argus_core::error_chain(cause)
            ),
            ArchiveError::NoName { host, cut } => write!(
                f,
                "no free archive name for {host} within {MAX_NAME_TRIES} s of {}",
                format_datetime(*cut)
            ),
        }
    }
}

impl ArchiveError {
    /// True when the file system is full.
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            ArchiveError::Publish(e) => e.is_disk_full(),
            ArchiveError::Write { cause, .. } => argus_core::is_disk_full(cause),
            ArchiveError::Read { .. } | ArchiveError::NoName { .. } => false,
        }
    }
}

/// The archive name for a chunk of `host` cut at `at`.
pub(crate) fn archive_name(host: &Hostname, at: OffsetDateTime, codec: Codec) -> String {
    format!("{host}_{}.argus{}", format_datetime(at), codec.suffix())
}

/// Archives `chunk` (whose SHA-256 is `sha256`) compressed with `codec` into `dir`.
///
/// The name carries the cut time; when a file of that name exists, it either holds this very
/// chunk (then nothing is written) or the next second's name is tried, so the name always stays
/// within the naming retention recognises and nothing is ever replaced.
pub(crate) fn archive(
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
        let io = |cause: io::Error| ArchiveError::Write {
            path: path.clone(),
            cause,
        };
        let mut input = File::open(chunk).map_err(|cause| ArchiveError::Read {
            path: chunk.to_path_buf(),
            cause,
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

/// Deletes this host's archives that the policy no longer keeps; returns what was removed.
/// Also removes temporary files a crashed run left in the archive (older than an hour, as
/// another host's harvest might share the directory).
/// `fresh` names the archives this run wrote: a purge that deletes one of them, or more than
/// half of the archive's bytes, comes back with a [`retention::Surprise`] to warn about.
pub(crate) fn purge(
    dir: &Path,
    host: &Hostname,
    policy: &Policy,
    now: OffsetDateTime,
    fresh: &[String],
) -> Result<(Vec<PathBuf>, Option<retention::Surprise>), String> {
    if !dir.is_dir() {
        return Ok((Vec::new(), None));
    }
    let leftovers = clean_temp_files(dir, std::time::Duration::from_secs(3600), now.into())
        .map_err(|e| argus_core::error_chain(&e))?;
    for path in &leftovers {
        log::info!(
            "removed a temporary file left by a crash: {}",
            EscapedPath(path)
        );
    }
    if policy.max_age_days == 0 && policy.max_total_bytes.is_none() {
        return Ok((Vec::new(), None));
    }
    let pattern = NamePattern::harvest_archive(host.as_str()).map_err(|e| e.to_string())?;
    let entries = retention::list(dir).map_err(|e| argus_core::error_chain(&e))?;
    let doomed = retention::plan(&entries, &pattern, policy, now);
    for d in &doomed {
        log::info!(
            "purging {} ({} bytes, {:?}: {})",
            EscapedPath(&dir.join(&d.name)),
            d.size,
            d.reason,
            argus_core::stamp::format_rfc3339(d.time)
        );
    }
    let surprise = retention::review(&entries, std::slice::from_ref(&pattern), &doomed, |n| {
        fresh.iter().any(|f| f == n)
    });
    let removed = retention::apply(dir, &doomed).map_err(|e| argus_core::error_chain(&e))?;
    Ok((removed, surprise))
}

#[cfg(test)]
fn decode_all(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    open_decoded(path)
        .expect("open")
        .read_to_end(&mut out)
        .expect("decode");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::codec::Compression;

    #[test]
    fn archive_errors_carry_the_os_reason_and_the_disk_full_hint() {
        // What publishing into a full archive disk returns.
        let e = CoreError::Io {
            op: "write",
            path: "/var/argus/archive/x.argus.gz".into(),
            source: io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        let a = ArchiveError::from(e);
        assert!(a.is_disk_full());
        let text = a.to_string();
        assert!(
            text.starts_with("cannot write /var/argus/archive/x.argus.gz: No space left on device"),
            "{text}"
        );
        assert!(text.contains("the disk is full"), "{text}");
    }
    use time::macros::datetime;

    fn host() -> Hostname {
        Hostname::new("sensor1").expect("host")
    }

    #[test]
    fn archives_compressed_and_never_replaces() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("chunk");
        std::fs::write(&chunk, b"chunk bytes").expect("write");
        let sha = argus_core::manifest::sha256(b"chunk bytes");
        let arc = dir.path().join("archive/sub");
        let cut = datetime!(2026-11-27 10:00:05 UTC);
        let codec = Compression::Gzip.codec();
        let first = archive(&chunk, &sha, &arc, &host(), cut, codec).expect("archive");
        let want = arc.join("sensor1_20261127100005.argus.gz");
        assert_eq!(first, Archived::New(want.clone()));
        assert_eq!(decode_all(&want), b"chunk bytes");
        // The same chunk again (a run that died before removing the staged chunk): recognised.
        assert_eq!(
            archive(&chunk, &sha, &arc, &host(), cut, codec).expect("again"),
            Archived::Already(want.clone())
        );
        // Another chunk cut in the same second: the next second's name, nothing replaced.
        std::fs::write(&chunk, b"other bytes").expect("write");
        let sha2 = argus_core::manifest::sha256(b"other bytes");
        let second = archive(&chunk, &sha2, &arc, &host(), cut, codec).expect("archive");
        assert_eq!(
            second,
            Archived::New(arc.join("sensor1_20261127100006.argus.gz"))
        );
        assert_eq!(decode_all(&want), b"chunk bytes");
    }

    #[test]
    fn purges_only_this_hosts_old_archives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = datetime!(2026-11-27 12:00 UTC);
        for name in [
            "sensor1_20261101000000.argus.gz",
            "sensor1_20261126000000.argus.xz",
            "sensor10_20261101000000.argus.gz",
            "sensor1_notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let policy = Policy {
            max_age_days: 7,
            ..Policy::default()
        };
        let (removed, _) = purge(dir.path(), &host(), &policy, now, &[]).expect("purge");
        assert_eq!(
            removed,
            [dir.path().join("sensor1_20261101000000.argus.gz")]
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 3);
        // Keep forever: nothing goes.
        let (removed, _) = purge(dir.path(), &host(), &Policy::default(), now, &[]).expect("purge");
        assert!(removed.is_empty());
    }
}
