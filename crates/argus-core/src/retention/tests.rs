//! Unit tests of retention planning, review and the executors on disk.

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
fn a_purge_of_fresh_files_or_of_most_bytes_is_a_surprise() {
    let p = NamePattern::harvest_archive("h").expect("pattern");
    let entries: Vec<Entry> = (1..=9)
        .map(|d| entry(&format!("h_202611{:02}000000.argus.gz", 10 + d), 100))
        .chain([entry("other_20261101000000.argus", 10_000)])
        .collect();
    let patterns = [p.clone()];
    let capped = |max: u64, low: u64| Policy {
        max_age_days: 0,
        max_total_bytes: Some(max),
        low_watermark_bytes: Some(low),
    };
    // A sound cap takes two of nine old files: nothing to warn about.
    let sound = plan(&entries, &p, &capped(850, 700), NOW);
    assert_eq!(sound.len(), 2);
    assert_eq!(review(&entries, &patterns, &sound, |_| false), None);
    // The same plan when the run wrote the oldest of them (a backlog just ingested).
    let fresh = review(&entries, &patterns, &sound, |n| {
        n.starts_with("h_2026111100")
    });
    assert_eq!(
        fresh,
        Some(Surprise {
            fresh: 1,
            deleted_bytes: 200,
            total_bytes: 900,
            reason: Reason::Size
        })
    );
    // A watermark read as a few bytes: all nine go, which is more than half.
    let all = plan(&entries, &p, &capped(850, 90), NOW);
    assert_eq!(all.len(), 9);
    let surprise = review(&entries, &patterns, &all, |_| false).expect("surprise");
    assert_eq!((surprise.deleted_bytes, surprise.total_bytes), (900, 900));
    // By age: a first purge after archive_days was set.
    let by_age = Policy {
        max_age_days: 10,
        ..Policy::default()
    };
    let old = plan(&entries, &p, &by_age, NOW);
    assert_eq!(old.len(), 7);
    let surprise = review(&entries, &patterns, &old, |_| false).expect("surprise");
    assert_eq!(surprise.reason, Reason::Age);
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
