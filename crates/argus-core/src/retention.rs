//! Retention: which archived files to delete, decided by a pure function.
//!
//! [`plan`] takes directory entries (name, size, mtime), `now` and a [`Policy`] and returns the
//! files to delete, oldest first. It only ever selects names that match the caller's
//! [`NamePattern`]: an exact id followed by `_` and a time stamp, so `client1` never matches
//! `client10_...`, and foreign files in the same directory are never touched, whatever their
//! compression suffix. Age is judged by the time in the name; only when that is not a real date
//! does the file's mtime count. [`list`] and [`apply`] are the small executors around it.
//!
//! ```
//! use argus_core::retention::{plan, Entry, NamePattern, Policy};
//! use time::macros::datetime;
//!
//! let now = datetime!(2026-11-27 12:00 UTC);
//! let entry = |name: &str| Entry { name: name.into(), size: 100, mtime: now };
//! let entries = [
//!     entry("sensor1_20261101000000.argus.gz"),  // 26 days old: goes
//!     entry("sensor1_20261126000000.argus.xz"),  // 1 day old: stays
//!     entry("sensor10_20261101000000.argus.gz"), // another host: never touched
//!     entry("notes.txt"),                        // not ours: never touched
//! ];
//! let policy = Policy { max_age_days: 7, ..Policy::default() };
//! let doomed = plan(&entries, &NamePattern::harvest_archive("sensor1")?, &policy, now);
//! assert_eq!(doomed.len(), 1);
//! assert_eq!(doomed[0].name, "sensor1_20261101000000.argus.gz");
//! # Ok::<(), argus_core::Error>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::codec::Compression;
use crate::error::{Error, IoContext, Result};
use crate::stamp;

/// A file in the directory being purged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub mtime: OffsetDateTime,
}

/// The kind of time stamp that follows the id in a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// `YYYYMMDD`: the file covers that whole (UTC) day, so its age counts from the day's end.
    Date,
    /// `YYYYMMDDHHMMSS` (UTC).
    DateTime,
}

impl Stamp {
    fn width(self) -> usize {
        match self {
            Stamp::Date => 8,
            Stamp::DateTime => 14,
        }
    }
}

/// The naming of the files one retention run may delete:
/// `ID_STAMP[_ANYTHING]TAIL[.gz|.bz2|.xz]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePattern {
    prefix: String,
    stamp: Stamp,
    tail: String,
    middle: bool,
}

/// What a name that matches a [`NamePattern`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matched {
    /// The time in the name (for a [`Stamp::Date`], the end of that day), or `None` when the
    /// digits are not a real date.
    pub time: Option<OffsetDateTime>,
    /// The compression suffix the name carries.
    pub compression: Compression,
}

impl NamePattern {
    /// A pattern for `ID_STAMP[_ANYTHING]TAIL` with an optional compression suffix. `middle`
    /// allows an `_`-separated middle part between the stamp and `tail`.
    ///
    /// The id must be non-empty and hold no `/` or NUL.
    pub fn new(id: &str, stamp: Stamp, tail: &str, middle: bool) -> Result<Self> {
        if id.is_empty() || id.contains(['/', '\0']) {
            return Err(Error::InvalidName {
                name: id.to_owned(),
                reason: "an id for a name pattern must be non-empty without '/' or NUL",
            });
        }
        Ok(NamePattern {
            prefix: format!("{id}_"),
            stamp,
            tail: tail.to_owned(),
            middle,
        })
    }

    /// harvest_argus' local archives: `HOST_YYYYMMDDHHMMSS.argus[.gz|.bz2|.xz]`.
    pub fn harvest_archive(host: &str) -> Result<Self> {
        NamePattern::new(host, Stamp::DateTime, ".argus", false)
    }

    /// process_argus' archived uploads: `CLIENT_YYYYMMDDHHMMSS[_MIDDLE]_JOB.out[.gz|...]`.
    pub fn upload_archive(client: &str, job: &str) -> Result<Self> {
        NamePattern::new(client, Stamp::DateTime, &format!("_{job}.out"), true)
    }

    /// process_argus' operational day files: `HOST_YYYYMMDD[.gz|.bz2|.xz]`.
    pub fn day_file(host: &str) -> Result<Self> {
        NamePattern::new(host, Stamp::Date, "", false)
    }

    /// Whether `name` has this naming, and what it says.
    pub fn matches(&self, name: &str) -> Option<Matched> {
        let rest = name.strip_prefix(&self.prefix)?;
        let width = self.stamp.width();
        let digits = rest.as_bytes().get(..width)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let (rest, compression) = Compression::split_suffix(&rest[width..]);
        let tail_ok = rest == self.tail
            || (self.middle
                && rest.len() > self.tail.len() + 1
                && rest.starts_with('_')
                && rest.ends_with(&self.tail));
        if !tail_ok {
            return None;
        }
        let time = match self.stamp {
            Stamp::DateTime => stamp::parse_datetime(digits),
            Stamp::Date => stamp::parse_date(digits)
                .and_then(|d| d.next_day())
                .map(|d| d.midnight().assume_utc()),
        };
        Some(Matched { time, compression })
    }
}

/// How long and how much to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Files older than this many days are deleted; 0 keeps them forever.
    pub max_age_days: u32,
    /// When the matching files together exceed this many bytes, the oldest are deleted...
    pub max_total_bytes: Option<u64>,
    /// ...until they total at most this many (default: 90 % of `max_total_bytes`).
    pub low_watermark_bytes: Option<u64>,
}

/// Why a file is to be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Older than `max_age_days`.
    Age,
    /// Needed to get under the size cap.
    Size,
}

/// One file to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The time its age was judged by (from the name, or the mtime as fallback).
    pub time: OffsetDateTime,
    /// Why it goes.
    pub reason: Reason,
}

/// Decides which of `entries` to delete under `policy` at `now`: only names matching `pattern`,
/// oldest first (ties broken by name).
pub fn plan(
    entries: &[Entry],
    pattern: &NamePattern,
    policy: &Policy,
    now: OffsetDateTime,
) -> Vec<Deletion> {
    plan_any(entries, std::slice::from_ref(pattern), policy, now)
}

/// [`plan`] over the entries any of `patterns` matches, as one set: the age limit applies to
/// each, the size limit to their total (oldest first, whichever pattern matched them).
pub fn plan_any(
    entries: &[Entry],
    patterns: &[NamePattern],
    policy: &Policy,
    now: OffsetDateTime,
) -> Vec<Deletion> {
    let mut ours: Vec<(OffsetDateTime, &Entry)> = entries
        .iter()
        .filter_map(|e| {
            let matched = patterns.iter().find_map(|p| p.matches(&e.name))?;
            Some((matched.time.unwrap_or(e.mtime), e))
        })
        .collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));

    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    let max_age = Duration::days(i64::from(policy.max_age_days));
    for (time, entry) in ours {
        if policy.max_age_days > 0 && now - time > max_age {
            doomed.push(deletion(entry, time, Reason::Age));
        } else {
            kept.push((time, entry));
        }
    }
    if let Some(cap) = policy.max_total_bytes {
        let low = policy.low_watermark_bytes.unwrap_or(cap / 10 * 9).min(cap);
        let mut total: u64 = kept.iter().map(|(_, e)| e.size).sum();
        if total > cap {
            for (time, entry) in kept {
                if total <= low {
                    break;
                }
                total -= entry.size;
                doomed.push(deletion(entry, time, Reason::Size));
            }
        }
    }
    doomed
}

fn deletion(entry: &Entry, time: OffsetDateTime, reason: Reason) -> Deletion {
    Deletion {
        name: entry.name.clone(),
        size: entry.size,
        time,
        reason,
    }
}

/// Lists the regular files of `dir` (not following symlinks) as [`Entry`]s. Names that are not
/// UTF-8 cannot match any pattern and are left out.
pub fn list(dir: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for dirent in fs::read_dir(dir).at("read directory", dir)? {
        let dirent = dirent.at("read directory", dir)?;
        let Ok(name) = dirent.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = dirent.metadata() else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let mtime = meta
            .modified()
            .map(OffsetDateTime::from)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        entries.push(Entry {
            name,
            size: meta.len(),
            mtime,
        });
    }
    Ok(entries)
}

/// Deletes the planned files from `dir` (a file already gone is not an error), then syncs the
/// directory. Returns the paths actually removed.
pub fn apply(dir: &Path, deletions: &[Deletion]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for d in deletions {
        let path = dir.join(&d.name);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove", &path),
        }
    }
    if !removed.is_empty() {
        crate::publish::sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

    fn entry(name: &str, size: u64) -> Entry {
        Entry {
            name: name.to_owned(),
            size,
            mtime: NOW,
        }
    }

    fn names(d: &[Deletion]) -> Vec<&str> {
        d.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn exact_ids_only_and_every_suffix() {
        let p = NamePattern::upload_archive("client1", "harvest_argus").expect("pattern");
        let ok = [
            "client1_20261101000000_harvest_argus.out",
            "client1_20261101000000_harvest_argus.out.gz",
            "client1_20261101000000_4242_harvest_argus.out.bz2",
            "client1_20261101000000_snapshot_harvest_argus.out.xz",
        ];
        let never = [
            "client10_20261101000000_harvest_argus.out.gz",
            "client1_x_20261101000000_harvest_argus.out.gz",
            "xclient1_20261101000000_harvest_argus.out.gz",
            "client1_2026110100000_harvest_argus.out.gz",
            "client1_20261101000000_other_job.out.gz",
            "client1_20261101000000_harvest_argus.err",
            "client1_20261101000000harvest_argus.out",
            "client1_20261101000000__harvest_argus.out.zst",
        ];
        for n in ok {
            assert!(p.matches(n).is_some(), "{n}");
        }
        for n in never {
            assert!(p.matches(n).is_none(), "{n}");
        }
        let h = NamePattern::harvest_archive("host-a.b").expect("pattern");
        assert!(h.matches("host-a.b_20261101000000.argus.xz").is_some());
        assert!(h.matches("host-a.b_20261101000000.argus.tmp").is_none());
        assert!(h.matches("host-a.b_20261101000000_1.argus").is_none());
        let d = NamePattern::day_file("host_a").expect("pattern");
        assert!(d.matches("host_a_20261101").is_some());
        assert!(d.matches("host_a_20261101.gz").is_some());
        assert!(d.matches("host_a_20261101_x").is_none());
        assert!(d.matches("host_a_2026110").is_none());
    }

    #[test]
    fn age_comes_from_the_name_and_falls_back_to_mtime() {
        let p = NamePattern::harvest_archive("h").expect("pattern");
        let mut stale_mtime = entry("h_20261399000000.argus", 1); // not a date: mtime decides
        stale_mtime.mtime = NOW - Duration::days(40);
        let mut fresh_mtime = entry("h_20261301000000.argus.gz", 1);
        fresh_mtime.mtime = NOW - Duration::days(1);
        let mut touched = entry("h_20260101000000.argus", 1); // old name, new mtime: name wins
        touched.mtime = NOW;
        let entries = [
            entry("h_20261120115959.argus", 1),
            entry("h_20261120120000.argus", 1),
            stale_mtime,
            fresh_mtime,
            touched,
        ];
        let policy = Policy {
            max_age_days: 7,
            ..Policy::default()
        };
        let d = plan(&entries, &p, &policy, NOW);
        assert_eq!(
            names(&d),
            [
                "h_20260101000000.argus",
                "h_20261399000000.argus",
                "h_20261120115959.argus"
            ],
            "oldest first; exactly 7 days old is kept"
        );
        assert!(d.iter().all(|d| d.reason == Reason::Age));
        let forever = Policy::default();
        assert!(
            plan(&entries, &p, &forever, NOW).is_empty(),
            "0 days keeps all"
        );
    }

    #[test]
    fn day_files_age_from_the_end_of_their_day() {
        let p = NamePattern::day_file("h").expect("pattern");
        let entries = [entry("h_20261125.gz", 1), entry("h_20261126", 1)];
        let policy = Policy {
            max_age_days: 1,
            ..Policy::default()
        };
        // 2026-11-25 ended at 11-26 00:00, 36 h before NOW; 11-26 ended 12 h ago.
        assert_eq!(names(&plan(&entries, &p, &policy, NOW)), ["h_20261125.gz"]);
    }

    #[test]
    fn a_size_cap_over_several_ids_takes_the_oldest_of_any() {
        let ps = [
            NamePattern::upload_archive("c1", "harvest_argus").expect("pattern"),
            NamePattern::upload_archive("c2", "harvest_argus").expect("pattern"),
        ];
        let entries = [
            entry("c1_20261120000000_harvest_argus.out.gz", 100),
            entry("c2_20261119000000_harvest_argus.out.gz", 100),
            entry("c1_20261121000000_harvest_argus.out.gz", 100),
            entry("c2_20261122000000_harvest_argus.out.gz", 100),
            // Not ours: never counted, never deleted.
            entry("c3_20261101000000_harvest_argus.out.gz", 100_000),
            entry("c1_20261101", 100_000),
        ];
        let policy = Policy {
            max_age_days: 0,
            max_total_bytes: Some(300),
            low_watermark_bytes: Some(200),
        };
        assert_eq!(
            names(&plan_any(&entries, &ps, &policy, NOW)),
            [
                "c2_20261119000000_harvest_argus.out.gz",
                "c1_20261120000000_harvest_argus.out.gz"
            ]
        );
    }

    #[test]
    fn size_cap_deletes_oldest_down_to_the_watermark() {
        let p = NamePattern::harvest_archive("h").expect("pattern");
        let entries: Vec<Entry> = (1..=9)
            .map(|d| entry(&format!("h_202611{:02}000000.argus.gz", 10 + d), 100))
            .chain([entry("other_20261101000000.argus", 10_000)])
            .collect();
        let policy = Policy {
            max_age_days: 0,
            max_total_bytes: Some(800),
            low_watermark_bytes: Some(500),
        };
        let d = plan(&entries, &p, &policy, NOW);
        assert_eq!(
            names(&d),
            [
                "h_20261111000000.argus.gz",
                "h_20261112000000.argus.gz",
                "h_20261113000000.argus.gz",
                "h_20261114000000.argus.gz"
            ]
        );
        assert!(d.iter().all(|d| d.reason == Reason::Size));
        let under = Policy {
            max_total_bytes: Some(900),
            ..policy
        };
        assert!(
            plan(&entries, &p, &under, NOW).is_empty(),
            "at the cap: nothing"
        );
        let default_low = Policy {
            max_total_bytes: Some(850),
            low_watermark_bytes: None,
            ..policy
        };
        // 900 > 850: delete down to 90 % of 850 = 765, i.e. two files (900 -> 700).
        assert_eq!(plan(&entries, &p, &default_low, NOW).len(), 2);
    }

    #[test]
    fn list_plan_apply_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = time::OffsetDateTime::now_utc() - Duration::days(30);
        let files = [
            "client1_20200101000000_harvest_argus.out.gz",
            "client1_20200101000000_9_harvest_argus.out.xz",
            "client1_20990101000000_harvest_argus.out.bz2",
            "client10_20200101000000_harvest_argus.out.gz",
            "client1_harvest_argus.out",
        ];
        for f in files {
            let path = dir.path().join(f);
            fs::write(&path, b"x").expect("write");
            let file = fs::File::options().write(true).open(&path).expect("open");
            file.set_modified(old.into()).expect("mtime");
        }
        std::os::unix::fs::symlink(
            "/etc/passwd",
            dir.path().join("client1_20000101000000_harvest_argus.out"),
        )
        .expect("symlink");
        let entries = list(dir.path()).expect("list");
        assert_eq!(entries.len(), files.len(), "symlinks are not listed");
        let p = NamePattern::upload_archive("client1", "harvest_argus").expect("pattern");
        let policy = Policy {
            max_age_days: 3,
            ..Policy::default()
        };
        let d = plan(&entries, &p, &policy, OffsetDateTime::now_utc());
        let removed = apply(dir.path(), &d).expect("apply");
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("read")
            .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "client10_20200101000000_harvest_argus.out.gz",
                "client1_20000101000000_harvest_argus.out",
                "client1_20990101000000_harvest_argus.out.bz2",
                "client1_harvest_argus.out",
            ]
        );
    }
}
