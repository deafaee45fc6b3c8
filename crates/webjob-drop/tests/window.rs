//! Scans with a window: the oldest ready groups only, the rest counted, on real dropzones.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use webjob_drop::fixture::{Upload, Written};
use webjob_drop::{Dropzone, PartKind, Scan, Selection, quarantine_group, remove_group};

fn selection() -> Selection {
    Selection::new(["alpha", "beta"], "harvest_argus").expect("selection")
}

/// A ready group of the selection as the window orders them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    at: OffsetDateTime,
    stem: String,
    dir: PathBuf,
    client: &'static str,
}

/// A dropzone of ready groups (complete, one invalid, one the server still holds) of two
/// clients in the root and a subdirectory, written in no particular order, beside a group in
/// flight and another job's upload. Returns the ready ones, oldest first.
fn backlog(root: &Path) -> Vec<Ready> {
    let mut ready = Vec::new();
    let stamps = [
        "20260101120000",
        "20260101110000",
        "20260102000000",
        "20251231235959",
        "20260101120000",
        "20260101130000",
        "20260101090000",
        "20260103000000",
    ];
    for (i, stamp) in stamps.iter().enumerate() {
        let client = if i % 3 == 0 { "beta" } else { "alpha" };
        let mut upload = Upload::new(client, stamp).out(format!("upload {i}"));
        if i % 2 == 1 {
            upload = upload.in_subdir(client);
        }
        // One whose `.env` is missing (invalid), one the server still holds (in flight).
        if i == 5 {
            upload = upload.without(PartKind::Env);
        }
        if i == 6 {
            upload = upload.keep_lock();
        }
        let written = upload.write(root).expect("write");
        ready.push(ready_of(&written, client, stamp));
    }
    Upload::new("alpha", "20200101000000")
        .without(PartKind::Rdy)
        .write(root)
        .expect("in flight");
    Upload::new("alpha", "20200101000000")
        .job("other_job")
        .write(root)
        .expect("foreign");
    ready.sort();
    ready
}

fn ready_of(written: &Written, client: &'static str, stamp: &str) -> Ready {
    let at = argus_core::stamp::parse_datetime(stamp.as_bytes()).expect("a stamp");
    Ready {
        at,
        stem: written.stem.clone(),
        dir: written.dir.clone(),
        client,
    }
}

/// Every group a scan reports, by kind, as `DIR/STEM`.
fn seen(scan: &Scan) -> BTreeMap<&'static str, Vec<PathBuf>> {
    let mut seen = BTreeMap::new();
    seen.insert(
        "complete",
        scan.complete
            .iter()
            .map(|g| g.dir().join(g.stem()))
            .collect(),
    );
    let files = |f: &webjob_drop::Files| f.dir().join(f.stem());
    seen.insert(
        "in flight",
        scan.in_flight.iter().map(|g| files(g.files())).collect(),
    );
    seen.insert(
        "invalid",
        scan.invalid.iter().map(|g| files(g.files())).collect(),
    );
    seen.insert(
        "foreign",
        scan.foreign.iter().map(|g| files(g.files())).collect(),
    );
    seen
}

#[test]
fn a_window_holds_the_oldest_ready_groups_and_counts_the_rest() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("incoming");
    fs::create_dir(&root).expect("mkdir");
    let ready = backlog(&root);
    let whole = Dropzone::new(&root).scan(&selection()).expect("scan");
    assert!(whole.deferred.is_empty(), "no window, nothing deferred");
    let all = seen(&whole);
    assert_eq!(
        (all["complete"].len(), all["invalid"].len()),
        (6, 1),
        "{all:?}"
    );
    assert_eq!((all["in flight"].len(), all["foreign"].len()), (2, 1));

    for limit in 0..=ready.len() + 1 {
        let scan = Dropzone::new(&root)
            .with_window(limit)
            .scan(&selection())
            .expect("scan");
        let (taken, left) = ready.split_at(limit.min(ready.len()));
        let taken: Vec<PathBuf> = taken.iter().map(|r| r.dir.join(&r.stem)).collect();
        let left_paths: Vec<PathBuf> = left.iter().map(|r| r.dir.join(&r.stem)).collect();
        // Each list is what the whole scan found, less the groups left out, in the same order.
        let expected: BTreeMap<_, Vec<PathBuf>> = all
            .iter()
            .map(|(kind, groups)| {
                let kept = groups.iter().filter(|g| !left_paths.contains(g));
                (*kind, kept.cloned().collect())
            })
            .collect();
        assert_eq!(seen(&scan), expected, "window of {limit}");
        let in_window: usize = ["complete", "invalid", "in flight"]
            .iter()
            .map(|k| seen(&scan)[k].iter().filter(|g| taken.contains(g)).count())
            .sum();
        assert_eq!(in_window, taken.len(), "window of {limit}");
        // Nothing of a group left out is reported, not even as ignored.
        assert!(
            scan.ignored
                .iter()
                .all(|i| !left.iter().any(|r| i.path.starts_with(r.dir.join(&r.stem)))),
            "{:?}",
            scan.ignored
        );

        let mut deferred: BTreeMap<String, (u64, OffsetDateTime)> = BTreeMap::new();
        for r in left {
            let d = deferred.entry(r.client.to_owned()).or_insert((0, r.at));
            d.0 += 1;
            d.1 = d.1.max(r.at);
        }
        let found: BTreeMap<String, (u64, OffsetDateTime)> = scan
            .deferred
            .iter()
            .map(|(client, d)| (client.clone(), (d.count, d.newest)))
            .collect();
        assert_eq!(found, deferred, "window of {limit}");
        assert_eq!(scan.deferred_count(), left.len() as u64);
    }
}

#[test]
fn windows_taken_one_after_another_take_every_group_oldest_first() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("incoming");
    let quarantine = base.path().join("quarantine");
    fs::create_dir(&root).expect("mkdir");
    let ready = backlog(&root);
    let whole = Dropzone::new(&root).scan(&selection()).expect("scan");
    let everything: Vec<&str> = whole.complete.iter().map(|g| g.stem()).collect();

    // A consumer: take a window of 3, remove what it took, quarantine what is invalid, again.
    let mut taken = Vec::new();
    let mut windows = 0;
    loop {
        windows += 1;
        assert!(windows <= ready.len(), "the windows never end");
        let scan = Dropzone::new(&root)
            .with_window(3)
            .scan(&selection())
            .expect("scan");
        for group in &scan.complete {
            taken.push(group.stem().to_owned());
            remove_group(group).expect("remove");
        }
        for group in &scan.invalid {
            quarantine_group(group, &quarantine, "invalid").expect("quarantine");
        }
        if scan.deferred_count() == 0 {
            break;
        }
    }
    assert_eq!(taken, everything);
    // The group the server holds stays for the scan after its lock goes: one of the oldest,
    // it took a place in every window (3 + 2 + 2 + 2 ready groups).
    assert_eq!(windows, 4);
    let after = Dropzone::new(&root).scan(&selection()).expect("scan");
    assert!(after.complete.is_empty() && after.invalid.is_empty());
    assert_eq!(after.in_flight.len(), 2);
}
