//! Retention over a directory too large to hold: [`Sweep`] decides what [`plan_any`] would,
//! from counts, and deletes it in a walk of its own, so that memory does not grow with the
//! number of files kept.
//!
//! Every deletion of a plan is a prefix of the files in age order (time, then name): those too
//! old, then the oldest of the rest until the total is under the low watermark. So a plan is
//! one boundary, found in at most two walks: the first counts the bytes of the files kept by
//! age per minute of their time, which tells the minute in which the size deletion stops; the
//! second, only when the size cap is over, gathers that minute's files alone and orders them.
//! A third walk deletes. A file is stat'ed in the first walk (its size; its mtime when its name
//! has no valid time), and after that only when its minute is the boundary's or its name has
//! no valid time.
//!
//! [`plan_any`]: super::plan_any

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use time::{Duration, OffsetDateTime};

use super::{Policy, Reason, Surprise};
use crate::error::{IoContext, Result};

/// How a sweep tells its own files by name: `None` for a name that is not its own; for one of
/// its own, the time its name carries, or `Some(None)` when the name has no valid time (then
/// the file's mtime counts).
pub type Judge<'a> = dyn FnMut(&str) -> Option<Option<OffsetDateTime>> + 'a;

/// Seconds per bucket of the first walk's counts.
const BUCKET: i64 = 60;

/// What a purge of one directory deletes, decided without holding its listing: a first walk
/// counts the bytes kept per minute of the files' times, a second (only when a size cap cuts
/// inside a minute) orders that minute's files, and [`Sweep::apply`] deletes in a walk of its
/// own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    now: OffsetDateTime,
    /// Files older than this go for age (none when `max_age_days` is 0).
    age_cutoff: Option<OffsetDateTime>,
    /// The newest file (time, name) that goes for size; none when the size needs nothing.
    boundary: Option<(OffsetDateTime, String)>,
    /// Files of the sweep before it.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files and bytes that go for age.
    pub age: (u64, u64),
    /// Files and bytes that go for size.
    pub size: (u64, u64),
    /// The time the oldest file that stays is judged by; none when none stays.
    pub oldest_kept: Option<OffsetDateTime>,
    /// Files to delete that `fresh` said the same run wrote.
    pub fresh: usize,
}

/// A file of the sweep as a walk sees it.
struct Seen {
    name: String,
    time: OffsetDateTime,
    size: u64,
}

/// Bytes and the oldest time of one bucket of files kept by age.
#[derive(Clone, Copy)]
struct Bucket {
    bytes: u64,
    files: u64,
    oldest: OffsetDateTime,
}

/// Walks the regular files of `dir` that `judge` owns, with their times; `stat_all` stats each
/// (for its size), else only those whose name has no valid time (size 0 then). A file that
/// vanishes or cannot be stat'ed is skipped, as [`super::list`] does.
fn walk(
    dir: &Path,
    judge: &mut Judge<'_>,
    stat_all: impl Fn(OffsetDateTime) -> bool,
    mut each: impl FnMut(Seen),
) -> Result<()> {
    for dirent in fs::read_dir(dir).at("read directory", dir)? {
        let dirent = dirent.at("read directory", dir)?;
        let Ok(name) = dirent.file_name().into_string() else {
            continue;
        };
        let Some(named) = judge(&name) else {
            continue;
        };
        let stat = named.is_none_or(&stat_all);
        let (time, size) = if stat {
            let Some((mtime, size)) = super::regular_file(&dirent) else {
                continue;
            };
            (named.unwrap_or(mtime), size)
        } else {
            // Not stat'ed: a directory or link by that name is told by the listing.
            if dirent.file_type().is_ok_and(|t| !t.is_file()) {
                continue;
            }
            (named.unwrap_or(OffsetDateTime::UNIX_EPOCH), 0)
        };
        each(Seen { name, time, size });
    }
    Ok(())
}

fn bucket_of(time: OffsetDateTime) -> i64 {
    time.unix_timestamp().div_euclid(BUCKET)
}

impl Sweep {
    /// Surveys `dir` under `policy` at `now`: what a purge would delete, deleting nothing.
    /// `fresh` tells whether a name was written by the same run (see [`super::review`]).
    pub fn survey(
        dir: &Path,
        judge: &mut Judge<'_>,
        policy: &Policy,
        now: OffsetDateTime,
        fresh: impl Fn(&str) -> bool,
    ) -> Result<Sweep> {
        let age_cutoff =
            (policy.max_age_days > 0).then(|| now - Duration::days(i64::from(policy.max_age_days)));
        let mut sweep = Sweep {
            now,
            age_cutoff,
            boundary: None,
            files: 0,
            bytes: 0,
            age: (0, 0),
            size: (0, 0),
            oldest_kept: None,
            fresh: 0,
        };
        let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut fresh_seen: Vec<(OffsetDateTime, String)> = Vec::new();
        walk(
            dir,
            judge,
            |_| true,
            |seen| {
                sweep.files += 1;
                sweep.bytes += seen.size;
                if fresh(&seen.name) {
                    fresh_seen.push((seen.time, seen.name.clone()));
                }
                if sweep.too_old(seen.time) {
                    sweep.age.0 += 1;
                    sweep.age.1 += seen.size;
                    return;
                }
                let b = buckets.entry(bucket_of(seen.time)).or_insert(Bucket {
                    bytes: 0,
                    files: 0,
                    oldest: seen.time,
                });
                b.bytes += seen.size;
                b.files += 1;
                b.oldest = b.oldest.min(seen.time);
            },
        )?;
        let kept: u64 = buckets.values().map(|b| b.bytes).sum();
        sweep.oldest_kept = buckets.values().next().map(|b| b.oldest);
        if let Some(cap) = policy.max_total_bytes
            && kept > cap
        {
            let low = policy.low_watermark_bytes.unwrap_or(cap / 10 * 9).min(cap);
            sweep.cut(dir, judge, &buckets, kept, low)?;
        }
        sweep.fresh = fresh_seen
            .iter()
            .filter(|(time, name)| sweep.doomed(*time, name).is_some())
            .count();
        Ok(sweep)
    }

    fn too_old(&self, time: OffsetDateTime) -> bool {
        self.age_cutoff.is_some_and(|cutoff| time < cutoff)
    }

    /// Finds the size boundary: whole buckets, oldest first, while what stays is over `low`,
    /// then the files of the bucket where it stops, in age order.
    fn cut(
        &mut self,
        dir: &Path,
        judge: &mut Judge<'_>,
        buckets: &BTreeMap<i64, Bucket>,
        mut total: u64,
        low: u64,
    ) -> Result<()> {
        let mut stop = None;
        for (&key, b) in buckets {
            if total.saturating_sub(b.bytes) <= low {
                stop = Some(key);
                break;
            }
            total -= b.bytes;
            self.size.0 += b.files;
            self.size.1 += b.bytes;
        }
        // The whole of every bucket but the last would still leave too much: the last is
        // where it stops (a sum over `low` always stops in some bucket).
        let Some(stop) = stop else {
            return Ok(());
        };
        let mut minute: Vec<Seen> = Vec::new();
        walk(
            dir,
            judge,
            |time| bucket_of(time) == stop,
            |seen| {
                if !self.too_old(seen.time) && bucket_of(seen.time) == stop {
                    minute.push(seen);
                }
            },
        )?;
        minute.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
        // What stays first: the rest of this minute, or else the next bucket.
        self.oldest_kept = buckets.range(stop + 1..).next().map(|(_, b)| b.oldest);
        for seen in minute {
            if total <= low {
                self.oldest_kept = Some(seen.time);
                break;
            }
            total -= seen.size;
            self.size.0 += 1;
            self.size.1 += seen.size;
            self.boundary = Some((seen.time, seen.name));
        }
        Ok(())
    }

    /// Why the file `name`, judged by `time`, goes; `None` when it stays.
    pub fn doomed(&self, time: OffsetDateTime, name: &str) -> Option<Reason> {
        if self.too_old(time) {
            return Some(Reason::Age);
        }
        self.boundary
            .as_ref()
            .is_some_and(|(t, n)| (time, name) <= (*t, n.as_str()))
            .then_some(Reason::Size)
    }

    /// Files and bytes to delete.
    pub fn deleted(&self) -> (u64, u64) {
        (self.age.0 + self.size.0, self.age.1 + self.size.1)
    }

    /// The bytes of the files that stay.
    pub fn kept_bytes(&self) -> u64 {
        self.bytes - self.deleted().1
    }

    /// The warning [`super::review`] would give for the same plan.
    pub fn surprise(&self) -> Option<Surprise> {
        let (_, deleted_bytes) = self.deleted();
        let reason = if self.size.1 >= self.age.1 {
            Reason::Size
        } else {
            Reason::Age
        };
        (self.fresh > 0 || deleted_bytes.saturating_mul(2) > self.bytes).then_some(Surprise {
            fresh: self.fresh,
            deleted_bytes,
            total_bytes: self.bytes,
            reason,
        })
    }

    /// The time the sweep was judged at.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Walks `dir` again with the same `judge` and tells `each` every file the sweep deletes,
    /// with the time it is judged by, deleting nothing (a dry run's plan).
    pub fn each_doomed(
        &self,
        dir: &Path,
        judge: &mut Judge<'_>,
        mut each: impl FnMut(&str, OffsetDateTime, Reason),
    ) -> Result<()> {
        if self.deleted().0 == 0 {
            return Ok(());
        }
        walk(
            dir,
            judge,
            |_| false,
            |seen| {
                if let Some(reason) = self.doomed(seen.time, &seen.name) {
                    each(&seen.name, seen.time, reason);
                }
            },
        )
    }

    /// Deletes what the survey decided, walking `dir` again with the same `judge`; `each` is
    /// told every file before it goes. A file already gone is not an error; on another error
    /// the walk removes nothing more and returns it. Syncs the directory when anything went;
    /// returns how many files went.
    pub fn apply(
        &self,
        dir: &Path,
        judge: &mut Judge<'_>,
        mut each: impl FnMut(&str, Reason),
    ) -> Result<u64> {
        if self.deleted().0 == 0 {
            return Ok(0);
        }
        let mut removed = 0;
        let mut failed = None;
        // Each file is removed as the listing reaches it: an entry the listing returned may
        // go without making it skip or repeat the others.
        walk(
            dir,
            judge,
            |_| false,
            |seen| {
                if failed.is_some() {
                    return;
                }
                let Some(reason) = self.doomed(seen.time, &seen.name) else {
                    return;
                };
                each(&seen.name, reason);
                let path = dir.join(&seen.name);
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => failed = Some(Err(e).at("remove", &path)),
                }
            },
        )?;
        if removed > 0 {
            crate::publish::sync_dir(dir)?;
        }
        failed.unwrap_or(Ok(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Deletion, NamePattern, list, plan_any, review};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

    /// A file: client (0-2, 2 is another's), minute and second of its name's time (a minute
    /// of 99 writes digits that are no date: its mtime counts), size, fresh.
    type File = (u8, u16, u8, u64, bool);

    fn name(i: usize, (client, minute, second, _, _): File) -> String {
        let stamp = if minute == 99 {
            "20261399000000".to_owned()
        } else {
            let at = NOW - Duration::days(12)
                + Duration::minutes(i64::from(minute) * 97)
                + Duration::seconds(i64::from(second));
            crate::stamp::format_datetime(at)
        };
        format!("client{client}_{stamp}_{i}_harvest_argus.out.gz")
    }

    fn check(files: &[File], policy: Policy) {
        let dir = tempfile::tempdir().expect("a directory");
        let mut fresh_names = BTreeSet::new();
        for (i, f) in files.iter().enumerate() {
            let name = name(i, *f);
            let file = fs::File::create(dir.path().join(&name)).expect("a file");
            file.set_len(f.3).expect("its size");
            let mtime = NOW - Duration::hours(i64::try_from(i).expect("small") * 31);
            file.set_modified(mtime.into()).expect("its mtime");
            if f.4 {
                fresh_names.insert(name);
            }
        }
        fs::create_dir(
            dir.path()
                .join("client0_20261101000000_1_harvest_argus.out"),
        )
        .expect("a directory by an archive's name");
        let patterns = ["client0", "client1"]
            .map(|c| NamePattern::upload_archive(c, "harvest_argus").expect("a pattern"));
        let mut judge = |name: &str| {
            patterns
                .iter()
                .find_map(|p| p.matches(name))
                .map(|m| m.time)
        };
        let fresh = |name: &str| fresh_names.contains(name);

        let entries = list(dir.path()).expect("a listing");
        let plan = plan_any(&entries, &patterns, &policy, NOW);
        let sweep = Sweep::survey(dir.path(), &mut judge, &policy, NOW, fresh).expect("a sweep");
        let bytes = |d: &[Deletion], r| d.iter().filter(|d| d.reason == r).map(|d| d.size).sum();
        let count = |d: &[Deletion], r| d.iter().filter(|d| d.reason == r).count() as u64;
        assert_eq!(
            sweep.age,
            (count(&plan, Reason::Age), bytes(&plan, Reason::Age))
        );
        assert_eq!(
            sweep.size,
            (count(&plan, Reason::Size), bytes(&plan, Reason::Size))
        );
        assert_eq!(
            sweep.surprise(),
            review(&entries, &patterns, &plan, fresh),
            "{plan:?}"
        );
        let gone: BTreeSet<&str> = plan.iter().map(|d| d.name.as_str()).collect();
        let oldest = super::super::judged(&entries, &patterns)
            .into_iter()
            .find(|(_, e)| !gone.contains(e.name.as_str()))
            .map(|(t, _)| t);
        assert_eq!(sweep.oldest_kept, oldest);

        let mut listed = BTreeSet::new();
        sweep
            .each_doomed(dir.path(), &mut judge, |name, _, _| {
                listed.insert(name.to_owned());
            })
            .expect("the doomed listed");
        let mut told = BTreeSet::new();
        let removed = sweep
            .apply(dir.path(), &mut judge, |name, reason| {
                let planned = plan.iter().find(|d| d.name == name).map(|d| d.reason);
                assert_eq!(planned, Some(reason), "{name}");
                told.insert(name.to_owned());
            })
            .expect("the sweep applied");
        assert_eq!(removed, plan.len() as u64);
        assert_eq!(told, gone.iter().map(|n| (*n).to_owned()).collect());
        assert_eq!(listed, told);
        let left: BTreeSet<String> = list(dir.path())
            .expect("a listing")
            .into_iter()
            .map(|e| e.name)
            .collect();
        let before: BTreeSet<String> = entries.into_iter().map(|e| e.name).collect();
        let expected: BTreeSet<String> = before
            .into_iter()
            .filter(|n| !gone.contains(n.as_str()))
            .collect();
        assert_eq!(left, expected);
    }

    fn file() -> impl Strategy<Value = File> {
        (
            0..3_u8,
            prop_oneof![8 => 0..200_u16, 1 => Just(99_u16)],
            0..3_u8,
            0..5000_u64,
            prop::bool::weighted(0.1),
        )
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (
            prop_oneof![Just(0_u32), 1..14_u32],
            prop::option::of(0..60_000_u64),
            prop::option::of(0..60_000_u64),
        )
            .prop_map(|(max_age_days, max_total_bytes, low)| Policy {
                max_age_days,
                max_total_bytes,
                low_watermark_bytes: low,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn a_sweep_deletes_what_the_plan_of_the_whole_listing_deletes(
            files in prop::collection::vec(file(), 0..40),
            policy in policy(),
        ) {
            check(&files, policy);
        }
    }

    #[test]
    fn a_cap_that_stops_inside_a_minute_orders_it_by_time_then_name() {
        // Five files of one minute, two of one second: the cut falls between them.
        let files: Vec<File> = (0..5).map(|i| (0, 3, i / 2, 100, false)).collect();
        for low in [0, 100, 150, 250, 400, 500] {
            check(
                &files,
                Policy {
                    max_age_days: 0,
                    max_total_bytes: Some(low),
                    low_watermark_bytes: Some(low),
                },
            );
        }
    }
}
