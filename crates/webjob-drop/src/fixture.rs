//! Writes upload groups the way a WebJob server does, for tests, demos and benchmarks (cargo
//! feature `fixture`).
//!
//! What the server does, and so what [`Upload::write`] does (see the research notes on the
//! dropzone): it takes a `STEM.lck` lock, writes the data files directly under their final names
//! and never over an existing file (`451 File Already Exists`), writes `STEM.rdy` **last** (empty,
//! or holding `Key=Value` lines), then removes the lock; files are mode 0644. A failed upload
//! leaves data files without `.rdy` ([`Upload::orphan`]).
//!
//! The `.env` written by default holds only `Hostname=CLIENT`: that key is the only one attested
//! for real WebJob clients; anything else a test adds is hypothetical.
//!
//! ```
//! use webjob_drop::fixture::Upload;
//! use webjob_drop::{Dropzone, Selection};
//!
//! let dropzone = tempfile::tempdir()?;
//! let written = Upload::new("client1", "20030715120001")
//!     .pid(4242)
//!     .out(b"argus bytes".to_vec())
//!     .hostname("sensor1")
//!     .with_manifest("sensor1", 1)
//!     .write(dropzone.path())?;
//! assert_eq!(written.stem, "client1_20030715120001_4242_harvest_argus");
//!
//! let scan = Dropzone::new(dropzone.path()).scan(&Selection::new(["client1"], "harvest_argus")?)?;
//! let group = &scan.complete[0];
//! assert_eq!(group.read_env()?.hostname()?.as_str(), "sensor1");
//! assert_eq!(group.manifests()?[0].as_ref().map(|m| m.bytes), Ok(11));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use argus_core::host::Hostname;
use argus_core::manifest::{Manifest, sha256};
use time::OffsetDateTime;

use crate::name::DEFAULT_JOB;
use crate::scan::PartKind;

/// One upload to write; a builder.
#[derive(Clone, Debug)]
pub struct Upload {
    client: String,
    stamp: String,
    middle: Option<String>,
    job: String,
    out: Vec<u8>,
    err: Vec<u8>,
    env: Option<Vec<u8>>,
    rdy: Vec<u8>,
    manifests: Vec<(String, u64)>,
    extras: Vec<(String, Vec<u8>)>,
    without: Vec<PartKind>,
    subdir: Option<PathBuf>,
    keep_lock: bool,
    orphan: bool,
    modified: Option<SystemTime>,
}

/// What [`Upload::write`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// The directory the files are in.
    pub dir: PathBuf,
    /// The stem.
    pub stem: String,
    /// Every file written and left in place, in the order written.
    pub paths: Vec<PathBuf>,
}

impl Written {
    /// The path of the part with extension `ext` (whether it exists or not).
    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.stem))
    }
}

impl Upload {
    /// An upload by `client` with the time stamp `stamp` (normally 14 digits `YYYYMMDDHHMMSS`; any
    /// text is accepted so that tests can write broken names), of the job `harvest_argus`, with
    /// no middle field, an empty `.out`, `.err` and `.rdy`, and `Hostname=CLIENT` in `.env`.
    pub fn new(client: &str, stamp: &str) -> Upload {
        Upload {
            client: client.to_owned(),
            stamp: stamp.to_owned(),
            middle: None,
            job: DEFAULT_JOB.to_owned(),
            out: Vec::new(),
            err: Vec::new(),
            env: None,
            rdy: Vec::new(),
            manifests: Vec::new(),
            extras: Vec::new(),
            without: Vec::new(),
            subdir: None,
            keep_lock: false,
            orphan: false,
            modified: None,
        }
    }

    /// An upload by `client` stamped with `at` (converted to UTC).
    pub fn at(client: &str, at: OffsetDateTime) -> Upload {
        Upload::new(client, &argus_core::stamp::format_datetime(at))
    }

    /// Sets the middle field of the name (a run type such as `snapshot`, or anything).
    pub fn middle(mut self, middle: &str) -> Upload {
        self.middle = Some(middle.to_owned());
        self
    }

    /// Sets a pid as the middle field of the name.
    pub fn pid(self, pid: u32) -> Upload {
        self.middle(&pid.to_string())
    }

    /// Sets the job name (default `harvest_argus`).
    pub fn job(mut self, job: &str) -> Upload {
        self.job = job.to_owned();
        self
    }

    /// Sets the `.out` bytes (the job's standard output).
    pub fn out(mut self, bytes: impl Into<Vec<u8>>) -> Upload {
        self.out = bytes.into();
        self
    }

    /// Sets the `.err` bytes (the job's standard error); manifests are appended after them.
    pub fn err(mut self, bytes: impl Into<Vec<u8>>) -> Upload {
        self.err = bytes.into();
        self
    }

    /// Sets the `.env` bytes exactly (for hostile or unusual records).
    pub fn env(mut self, bytes: impl Into<Vec<u8>>) -> Upload {
        self.env = Some(bytes.into());
        self
    }

    /// Sets `.env` to `Hostname=HOST` (CRLF-free, one line).
    pub fn hostname(self, host: &str) -> Upload {
        self.env(format!("Hostname={host}\n"))
    }

    /// Sets the `.rdy` bytes (FTimes-style servers write `Key=Value` lines there).
    pub fn rdy(mut self, bytes: impl Into<Vec<u8>>) -> Upload {
        self.rdy = bytes.into();
        self
    }

    /// Appends a chunk manifest line for the final `.out` bytes to `.err`, as harvest_argus
    /// writes it (host and seq as given; `host` must be a valid host name).
    pub fn with_manifest(mut self, host: &str, seq: u64) -> Upload {
        self.manifests.push((host.to_owned(), seq));
        self
    }

    /// Adds a part with another extension (as `webjob-compress-upload -x` would).
    pub fn extra(mut self, ext: &str, bytes: impl Into<Vec<u8>>) -> Upload {
        self.extras.push((ext.to_owned(), bytes.into()));
        self
    }

    /// Does not write the part of `kind` (a damaged group).
    pub fn without(mut self, kind: PartKind) -> Upload {
        self.without.push(kind);
        self
    }

    /// Writes into `dir` below the dropzone (per-client subdirectories of newer servers),
    /// creating it.
    pub fn in_subdir(mut self, dir: impl Into<PathBuf>) -> Upload {
        self.subdir = Some(dir.into());
        self
    }

    /// Leaves the `.lck` file in place (the server is still writing, or died holding it).
    pub fn keep_lock(mut self) -> Upload {
        self.keep_lock = true;
        self
    }

    /// Writes no `.rdy`: a failed upload (or one still in flight).
    pub fn orphan(mut self) -> Upload {
        self.orphan = true;
        self
    }

    /// Sets the modification time of every file written (to age orphans in tests).
    pub fn modified(mut self, at: SystemTime) -> Upload {
        self.modified = Some(at);
        self
    }

    /// The stem the upload is written under.
    pub fn stem(&self) -> String {
        match &self.middle {
            Some(middle) => format!("{}_{}_{middle}_{}", self.client, self.stamp, self.job),
            None => format!("{}_{}_{}", self.client, self.stamp, self.job),
        }
    }

    /// Writes the upload into `dropzone` like the server: `.lck`, then `.out`, `.err`, `.env`
    /// (and extras), then `.rdy` last, then the lock is removed. Never replaces a file: an
    /// existing part fails with `AlreadyExists`, like the server's 451.
    pub fn write(&self, dropzone: &Path) -> io::Result<Written> {
        let dir = match &self.subdir {
            Some(sub) => dropzone.join(sub),
            None => dropzone.to_path_buf(),
        };
        fs::create_dir_all(&dir)?;
        let stem = self.stem();
        let path = |ext: &str| dir.join(format!("{stem}.{ext}"));
        let mut written = Written {
            dir: dir.clone(),
            stem: stem.clone(),
            paths: Vec::new(),
        };

        let lock = path("lck");
        create(&lock, b"", None)?;
        let mut err = self.err.clone();
        for (host, seq) in &self.manifests {
            let host =
                Hostname::new(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let manifest = Manifest {
                host,
                seq: *seq,
                start: None,
                end: None,
                bytes: u64::try_from(self.out.len()).unwrap_or(u64::MAX),
                records: None,
                sha256: sha256(&self.out),
            };
            if !err.is_empty() && !err.ends_with(b"\n") {
                err.push(b'\n');
            }
            err.extend_from_slice(format!("{manifest}\n").as_bytes());
        }
        let env = self
            .env
            .clone()
            .unwrap_or_else(|| format!("Hostname={}\n", self.client).into_bytes());
        let mut parts: Vec<(String, &[u8], PartKind)> = vec![
            ("out".to_owned(), &self.out, PartKind::Out),
            ("err".to_owned(), &err, PartKind::Err),
            ("env".to_owned(), &env, PartKind::Env),
        ];
        parts.extend(
            self.extras
                .iter()
                .map(|(ext, bytes)| (ext.clone(), bytes.as_slice(), PartKind::Other)),
        );
        if !self.orphan {
            parts.push(("rdy".to_owned(), &self.rdy, PartKind::Rdy));
        }
        for (ext, bytes, kind) in parts {
            if self.without.contains(&kind) {
                continue;
            }
            let p = path(&ext);
            create(&p, bytes, self.modified)?;
            written.paths.push(p);
        }
        if self.keep_lock {
            if let Some(at) = self.modified {
                File::options().write(true).open(&lock)?.set_modified(at)?;
            }
            written.paths.push(lock);
        } else {
            fs::remove_file(&lock)?;
        }
        Ok(written)
    }
}

/// Creates a new file (never replacing one) with mode 0644 whatever the umask.
fn create(path: &Path, bytes: &[u8], modified: Option<SystemTime>) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_permissions(Permissions::from_mode(0o644))?;
    if let Some(at) = modified {
        file.set_modified(at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_like_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Upload::new("c1", "20030715120001")
            .middle("snapshot")
            .rdy("Version=nph-webjob 1.9.0\n")
            .write(dir.path())
            .expect("write");
        assert_eq!(w.stem, "c1_20030715120001_snapshot_harvest_argus");
        let exts: Vec<_> = w
            .paths
            .iter()
            .map(|p| p.extension().expect("ext").to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            exts,
            ["out", "err", "env", "rdy"],
            ".rdy last, no .lck left"
        );
        assert_eq!(fs::read(w.path("env")).expect("env"), b"Hostname=c1\n");
        assert_eq!(
            fs::metadata(w.path("rdy")).expect("rdy").mode() & 0o777,
            0o644
        );
        // Like the server's 451: never over an existing upload.
        let again = Upload::new("c1", "20030715120001")
            .middle("snapshot")
            .write(dir.path());
        assert_eq!(
            again.expect_err("exists").kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn orphans_and_locks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Upload::new("c1", "20030715120001")
            .orphan()
            .keep_lock()
            .without(PartKind::Env)
            .write(dir.path())
            .expect("write");
        let exts: Vec<_> = w
            .paths
            .iter()
            .map(|p| p.extension().expect("ext").to_string_lossy().into_owned())
            .collect();
        assert_eq!(exts, ["out", "err", "lck"]);
        assert!(!w.path("rdy").exists());
        assert!(!w.path("env").exists());
    }
}
