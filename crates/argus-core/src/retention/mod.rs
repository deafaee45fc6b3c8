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

/// The smallest size cap (and low watermark) the programs accept: an hourly upload of a quiet
/// sensor is tens of kilobytes, a busy one's megabytes, so a cap under this would delete every
/// archive at each purge, which is never what a setting meant.
pub const MIN_CAP_BYTES: u64 = 1 << 20;

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
    let ours = judged(entries, patterns);
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

/// The entries any of `patterns` matches, each with the time its age is judged by (from the
/// name, or the mtime as fallback), oldest first (ties broken by name).
pub fn judged<'a>(
    entries: &'a [Entry],
    patterns: &[NamePattern],
) -> Vec<(OffsetDateTime, &'a Entry)> {
    let mut ours: Vec<(OffsetDateTime, &Entry)> = entries
        .iter()
        .filter_map(|e| {
            let matched = patterns.iter().find_map(|p| p.matches(&e.name))?;
            Some((matched.time.unwrap_or(e.mtime), e))
        })
        .collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    ours
}

fn deletion(entry: &Entry, time: OffsetDateTime, reason: Reason) -> Deletion {
    Deletion {
        name: entry.name.clone(),
        size: entry.size,
        time,
        reason,
    }
}

/// A purge worth a warning: it deletes files written by the same run, or more than half of the
/// bytes it looks after at once. A sound setting rarely does either; a mistaken one does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Surprise {
    /// Files deleted that the same run wrote.
    pub fresh: usize,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// Bytes of all the files the patterns match, before the purge.
    pub total_bytes: u64,
    /// The reason behind most of the deleted bytes: the setting to look at.
    pub reason: Reason,
}

/// Looks at a `plan` for `entries` (under `patterns`) before it is applied; `fresh` tells
/// whether a name was written by the same run. `None` when nothing is surprising.
pub fn review(
    entries: &[Entry],
    patterns: &[NamePattern],
    plan: &[Deletion],
    fresh: impl Fn(&str) -> bool,
) -> Option<Surprise> {
    let total_bytes: u64 = entries
        .iter()
        .filter(|e| patterns.iter().any(|p| p.matches(&e.name).is_some()))
        .map(|e| e.size)
        .sum();
    let deleted_bytes: u64 = plan.iter().map(|d| d.size).sum();
    let fresh = plan.iter().filter(|d| fresh(&d.name)).count();
    let by = |reason| {
        plan.iter()
            .filter(|d| d.reason == reason)
            .map(|d| d.size)
            .sum::<u64>()
    };
    let reason = if by(Reason::Size) >= by(Reason::Age) {
        Reason::Size
    } else {
        Reason::Age
    };
    (fresh > 0 || deleted_bytes.saturating_mul(2) > total_bytes).then_some(Surprise {
        fresh,
        deleted_bytes,
        total_bytes,
        reason,
    })
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
        let Some((mtime, size)) = regular_file(&dirent) else {
            continue;
        };
        entries.push(Entry { name, size, mtime });
    }
    Ok(entries)
}

/// The modification time and size of a directory entry that is a regular file (not following
/// a symlink); `None` for anything else, or for a file gone since it was listed.
fn regular_file(dirent: &fs::DirEntry) -> Option<(OffsetDateTime, u64)> {
    let meta = dirent.metadata().ok().filter(|m| m.file_type().is_file())?;
    let mtime = meta
        .modified()
        .map(OffsetDateTime::from)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Some((mtime, meta.len()))
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

mod sweep;
pub use sweep::{Judge, Sweep};

#[cfg(test)]
mod tests;
