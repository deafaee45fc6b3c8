//! Operational day files `OPER_DIR/HOST_YYYYMMDD[.gz|.bz2|.xz]`: naming, choosing the file an
//! upload joins, and compressing the files of closed days.
//!
//! A day has exactly one file. While the day is open it is plain, so appends are a
//! `copy_file_range`. Once the day is closed it is compressed atomically; data that arrives later
//! joins the compressed file as a new member, never a second file.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use argus_core::codec::{Codec, Compression, open_decoded};
use argus_core::escape::EscapedPath;
use argus_core::failpoint;
use argus_core::host::Hostname;
use argus_core::publish::{Publisher, SyncMode};
use argus_core::stamp;
use time::{Date, Duration, OffsetDateTime};

use crate::members::{self, Assembled};

/// The base name of a host's day file (without compression suffix).
pub fn day_name(host: &Hostname, day: Date) -> String {
    format!("{host}_{}", stamp::format_date(day))
}

/// Opens (creating) a day file to append to, as a pass and recovery open it: read-write, mode
/// 0644, never through a symbolic link (one put in place of a day file is refused: its target is
/// not ours to append to or truncate).
pub fn open_for_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// The file an upload of `host` on `day` is appended to, and its compression: the existing
/// compressed file if the day was already compressed, else the plain file (created on demand).
pub fn target(oper_dir: &Path, host: &Hostname, day: Date) -> (PathBuf, Compression) {
    let name = day_name(host, day);
    for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz] {
        let path = oper_dir.join(format!("{name}{}", c.suffix()));
        if fs::symlink_metadata(&path).is_ok() {
            return (path, c);
        }
    }
    (oper_dir.join(name), Compression::None)
}

/// Opens the file an upload of `host` on `day` is appended to, as [`target`] chooses it, in as
/// few calls as an open day allows: the plain file is opened first (one call when it exists,
/// as it does for every batch of an open day after its first), and only when it does not are
/// the compressed names looked for, then the plain file created. On failure, the path that
/// could not be opened.
pub fn open_target(
    oper_dir: &Path,
    host: &Hostname,
    day: Date,
) -> Result<(PathBuf, Compression, File), (PathBuf, std::io::Error)> {
    use std::os::unix::fs::OpenOptionsExt;
    let plain = oper_dir.join(day_name(host, day));
    let existing = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&plain);
    match existing {
        Ok(file) => return Ok((plain, Compression::None, file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err((plain, e)),
    }
    let (path, compression) = target(oper_dir, host, day);
    match open_for_append(&path) {
        Ok(file) => Ok((path, compression, file)),
        Err(e) => Err((path, e)),
    }
}

/// A day file name taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayFile {
    /// Base name as found.
    pub name: String,
    /// The host part.
    pub host: Hostname,
    /// The day.
    pub day: Date,
    /// Its compression suffix.
    pub compression: Compression,
}

/// Parses `HOST_YYYYMMDD[.gz|.bz2|.xz]`; anything else is not a day file.
pub fn parse_day_file(name: &str) -> Option<DayFile> {
    let (base, compression) = Compression::split_suffix(name);
    let (host, digits) = base.rsplit_once('_')?;
    let day = stamp::parse_date(digits.as_bytes())?;
    let host = Hostname::new(host).ok()?;
    Some(DayFile {
        name: name.to_owned(),
        host,
        day,
        compression,
    })
}

/// Plain day files whose day ended at least `after_days` days before `now`: the ones to compress.
/// Pure; sorted by name.
pub fn closed_days<S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
    now: OffsetDateTime,
    after_days: u32,
) -> Vec<DayFile> {
    let mut out: Vec<DayFile> = names
        .into_iter()
        .filter_map(|n| parse_day_file(n.as_ref()))
        .filter(|d| d.compression == Compression::None)
        .filter(|d| {
            d.day
                .next_day()
                .map(|end| end.midnight().assume_utc() + Duration::days(i64::from(after_days)))
                .is_some_and(|due| due <= now)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// What compressing day files did.
#[derive(Debug, Default)]
pub struct Compressed {
    /// Files compressed (the new paths).
    pub done: Vec<PathBuf>,
    /// Files that could not be compressed, with the reason (left as they were).
    pub failed: Vec<(PathBuf, argus_core::Error)>,
    /// Bytes of those day files whose compressed form was taken from archive members.
    pub reused: u64,
    /// Bytes compressed afresh.
    pub compressed: u64,
}

/// Where the compressed form of a closed day may be taken from: the archives of its uploads,
/// with the notes ([`crate::members`]) the commit kept of which piece is which upload.
#[derive(Clone, Copy, Debug)]
pub struct FromArchives<'a> {
    /// Where the notes are (`state_dir`).
    pub state_dir: &'a Path,
    /// Where the archives are (`archive_dir`).
    pub archive_dir: &'a Path,
}

/// Compresses each listed plain day file of `oper_dir` with `codec`, atomically (the compressed
/// file is published, then the plain one removed), on up to `threads` threads. A file that fails
/// is left untouched.
pub fn compress_days(
    oper_dir: &Path,
    days: &[DayFile],
    codec: Codec,
    threads: usize,
) -> Compressed {
    compress_days_from(oper_dir, days, codec, threads, None)
}

/// [`compress_days`], taking what it can from archive members (`from`): every piece of a day
/// that is a whole upload whose archive, in `codec`'s format, decodes to the piece's bytes is
/// copied, not compressed again; the notes of each compressed day are then forgotten.
pub fn compress_days_from(
    oper_dir: &Path,
    days: &[DayFile],
    codec: Codec,
    threads: usize,
    from: Option<FromArchives<'_>>,
) -> Compressed {
    if codec.compression() == Compression::None || days.is_empty() {
        return Compressed::default();
    }
    let next = AtomicUsize::new(0);
    let result = Mutex::new(Compressed::default());
    let workers = threads.clamp(1, days.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(day) = days.get(i) else { break };
                    let plain = oper_dir.join(&day.name);
                    let outcome = compress_one(oper_dir, &plain, codec, from);
                    let mut r = result
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match outcome {
                        Ok((path, assembled)) => {
                            r.done.push(path);
                            r.reused += assembled.reused;
                            r.compressed += assembled.compressed;
                        }
                        Err(e) => r.failed.push((plain, e)),
                    }
                }
            });
        }
    });
    let mut r = result
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    r.done.sort();
    r
}

fn compress_one(
    oper_dir: &Path,
    plain: &Path,
    codec: Codec,
    from: Option<FromArchives<'_>>,
) -> argus_core::Result<(PathBuf, Assembled)> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| argus_core::Error::Io { op, path, source }
    };
    let publisher = Publisher::open(oper_dir)?.with_sync(SyncMode::EachFile);
    let base = plain
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{base}{}", codec.suffix());
    let mut staged = publisher.stage(&name)?;
    let src = File::open(plain).map_err(io("open", plain))?;
    let len = src.metadata().map_err(io("stat", plain))?.len();
    let sources = from.map_or_else(Vec::new, |f| members::noted(f.state_dir, &base));
    let archive_dir = from.map_or(oper_dir, |f| f.archive_dir);
    let temp = staged.temp_path().to_path_buf();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, &mut staged);
    let assembled = members::assemble(&src, len, codec, archive_dir, &sources, &mut out)
        .map_err(io("compress", plain))?;
    out.into_inner()
        .map(|_| ())
        .map_err(io::IntoInnerError::into_error)
        .map_err(io("write", &temp))?;
    failpoint::hit("day-assembled");
    let published = publisher.publish(staged)?;
    failpoint::hit("day-published");
    fs::remove_file(plain).map_err(io("remove", plain))?;
    publisher.sync_dir()?;
    if let Some(f) = from {
        members::forget(f.state_dir, &base);
    }
    log::info!(
        "compressed {} to {} ({} bytes taken from archive members, {} compressed)",
        EscapedPath(plain),
        EscapedPath(&published),
        assembled.reused,
        assembled.compressed
    );
    Ok((published, assembled))
}

/// Settles the one state a crash during compression can leave: a plain day file next to its
/// compressed copy. When the compressed file decodes to exactly the plain file's bytes, the plain
/// file is removed; otherwise both are kept and reported (never guessed). Returns what was removed.
///
/// `names` is the directory's listing: a compressed copy is looked up in it, not probed for
/// on disk.
pub fn settle(oper_dir: &Path, names: &[String]) -> argus_core::Result<Vec<PathBuf>> {
    let listed: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut removed = Vec::new();
    for name in names {
        let Some(day) = parse_day_file(name) else {
            continue;
        };
        if day.compression != Compression::None {
            continue;
        }
        for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz] {
            let packed_name = format!("{name}{}", c.suffix());
            if !listed.contains(packed_name.as_str()) {
                continue;
            }
            let packed = oper_dir.join(packed_name);
            let plain = oper_dir.join(name);
            if same_content(&plain, &packed).unwrap_or(false) {
                fs::remove_file(&plain).map_err(|source| argus_core::Error::Io {
                    op: "remove",
                    path: plain.clone(),
                    source,
                })?;
                argus_core::publish::sync_dir(oper_dir)?;
                log::info!(
                    "removed {} left by an interrupted compression ({} holds the same data)",
                    EscapedPath(&plain),
                    EscapedPath(&packed)
                );
                removed.push(plain);
            } else {
                log::error!(
                    "{} and {} both exist with different data; both are kept, resolve by hand",
                    EscapedPath(&plain),
                    EscapedPath(&packed)
                );
            }
        }
    }
    Ok(removed)
}

fn same_content(plain: &Path, packed: &Path) -> io::Result<bool> {
    let mut a = BufReader::with_capacity(128 * 1024, File::open(plain)?);
    let mut b = open_decoded(packed).map_err(|e| io::Error::other(e.to_string()))?;
    let mut x = vec![0u8; 64 * 1024];
    let mut y = vec![0u8; 64 * 1024];
    loop {
        let n = argus_core::ranges::read_full(&mut a, &mut x)?;
        let m = argus_core::ranges::read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn host(h: &str) -> Hostname {
        Hostname::new(h).expect("host")
    }

    #[test]
    fn names_parse_back() {
        let name = day_name(&host("sensor-1.a"), date!(2026 - 11 - 27));
        assert_eq!(name, "sensor-1.a_20261127");
        let d = parse_day_file(&format!("{name}.xz")).expect("parse");
        assert_eq!(
            (d.host.as_str(), d.day, d.compression),
            ("sensor-1.a", date!(2026 - 11 - 27), Compression::Xz)
        );
        for bad in [
            "x_2026112",
            "_20261127",
            "x_20261327",
            "x_20261127.zst",
            "x_20261127_1",
            "../x_20261127",
        ] {
            assert!(parse_day_file(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_plain_files_of_closed_days_are_compressed() {
        let names: Vec<String> = [
            "h_20261125",
            "h_20261126",
            "h_20261124.gz",
            "notes",
            "g_20261120",
        ]
        .map(String::from)
        .to_vec();
        let now = datetime!(2026-11-27 00:00 UTC);
        let names_of = |v: Vec<DayFile>| v.into_iter().map(|d| d.name).collect::<Vec<_>>();
        assert_eq!(
            names_of(closed_days(&names, now, 1)),
            ["g_20261120", "h_20261125"]
        );
        assert_eq!(
            names_of(closed_days(&names, now, 0)),
            ["g_20261120", "h_20261125", "h_20261126"]
        );
        assert_eq!(
            names_of(closed_days(&names, now - Duration::seconds(1), 0)),
            ["g_20261120", "h_20261125"]
        );
    }

    #[test]
    fn compression_is_atomic_and_late_data_joins_the_compressed_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = host("h");
        let day = date!(2026 - 11 - 20);
        let (path, c) = target(dir.path(), &h, day);
        assert_eq!(
            (path.clone(), c),
            (dir.path().join("h_20261120"), Compression::None)
        );
        fs::write(&path, b"monday's flows").expect("write");
        let days = closed_days(
            &["h_20261120".to_owned()],
            datetime!(2026-11-27 0:00 UTC),
            1,
        );
        let r = compress_days(dir.path(), &days, Compression::Xz.codec(), 2);
        assert!(r.failed.is_empty());
        assert_eq!(r.done, [dir.path().join("h_20261120.xz")]);
        assert!(!path.exists());
        let (late, c) = target(dir.path(), &h, day);
        assert_eq!(
            (late, c),
            (dir.path().join("h_20261120.xz"), Compression::Xz)
        );
    }

    #[test]
    fn settle_removes_only_an_identical_plain_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("h_20261120"), b"same").expect("write");
        fs::write(dir.path().join("g_20261120"), b"differs").expect("write");
        for (name, data) in [("h_20261120.gz", &b"same"[..]), ("g_20261120.gz", b"other")] {
            let mut e = Compression::Gzip.codec().encoder(Vec::new());
            std::io::Write::write_all(&mut e, data).expect("write");
            fs::write(dir.path().join(name), e.finish().expect("finish")).expect("write");
        }
        let names =
            ["h_20261120", "g_20261120", "h_20261120.gz", "g_20261120.gz"].map(String::from);
        let removed = settle(dir.path(), &names).expect("settle");
        assert_eq!(removed, [dir.path().join("h_20261120")]);
        assert!(
            dir.path().join("g_20261120").exists(),
            "different data is never removed"
        );
    }
}
