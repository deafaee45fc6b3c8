//! Tests of removal and quarantine, including simulated kills at every step (fail points).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use argus_core::escape::Escaped;

use super::quarantine::unescape;
use super::*;
use crate::fixture::Upload;
use crate::name::Selection;
use crate::scan::Dropzone;

const STEM: &str = "client1_20030715120001_4242_harvest_argus";

struct Zone {
    _base: tempfile::TempDir,
    incoming: PathBuf,
    quarantine: PathBuf,
}

fn zone() -> Zone {
    let base = tempfile::tempdir().expect("tempdir");
    let incoming = base.path().join("in_coming");
    let quarantine = base.path().join("quarantine");
    fs::create_dir(&incoming).expect("mkdir");
    Zone {
        _base: base,
        incoming,
        quarantine,
    }
}

/// A complete group with every kind of part, including a stale `.lck` and an extra.
fn write_group(z: &Zone) -> BTreeMap<String, Vec<u8>> {
    let written = Upload::new("client1", "20030715120001")
        .pid(4242)
        .out(b"\x83\x10argus bytes".to_vec())
        .err(b"harvest_argus: log line\n".to_vec())
        .hostname("sensor1")
        .rdy("Version=nph-webjob 1.9.0\n")
        .extra("sig", b"signature".to_vec())
        .keep_lock()
        // A lock an hour old: the server that left it is gone, and holds the group no more.
        .modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .write(&z.incoming)
        .expect("write group");
    written
        .paths
        .iter()
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, fs::read(p).expect("read"))
        })
        .collect()
}

fn selection() -> Selection {
    Selection::new(["client1"], "harvest_argus").expect("selection")
}

fn scan(z: &Zone) -> crate::scan::Scan {
    Dropzone::new(&z.incoming).scan(&selection()).expect("scan")
}

fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().to_string_lossy().into_owned();
                let bytes = if e.file_type().expect("type").is_dir() {
                    b"<dir>".to_vec()
                } else {
                    fs::read(e.path()).expect("read")
                };
                (name, bytes)
            })
            .collect(),
        Err(e) if is_not_found(&e) => BTreeMap::new(),
        Err(e) => panic!("{e}"),
    }
}

/// Replaces a file by a new one (a new inode: the old one still exists while the new is written).
fn replace(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("new");
    fs::write(&temp, bytes).expect("write");
    fs::rename(&temp, path).expect("rename");
}

/// Runs `op` with a kill after its `n`-th step; true when it was killed.
fn killed_at<T>(n: usize, op: impl FnOnce() -> T) -> bool {
    failpoint::arm(n);
    let result = catch_unwind(AssertUnwindSafe(op));
    failpoint::disarm();
    result.is_err()
}

#[test]
fn removal_takes_out_first_and_rdy_last() {
    let z = zone();
    write_group(&z);
    let s = scan(&z);
    let group = &s.complete[0];
    let report = remove_group(group).expect("remove");
    let order: Vec<_> = report
        .removed
        .iter()
        .map(|p| p.extension().expect("ext").to_string_lossy().into_owned())
        .collect();
    assert_eq!(order, ["out", "err", "env", "sig", "lck", "rdy"]);
    assert!(report.missing.is_empty());
    assert!(contents(&z.incoming).is_empty());
}

#[test]
fn killed_removal_never_leaves_a_complete_looking_group() {
    let mut steps = 0;
    for n in 0.. {
        let z = zone();
        let original = write_group(&z);
        let s = scan(&z);
        let group = s.complete[0].clone();
        if !killed_at(n, || remove_group(&group)) {
            steps = n;
            assert!(contents(&z.incoming).is_empty());
            break;
        }
        // The kill came after at least `.out` was removed: no scan may offer the rest as
        // complete, and `.rdy` still names the group for the consumer's journal.
        let after = scan(&z);
        assert!(after.complete.is_empty(), "kill after step {n}");
        let left = contents(&z.incoming);
        if left.is_empty() {
            // Killed after `.rdy`, the last one, went: only the directory sync was missing.
            continue;
        }
        assert!(
            left.contains_key(&format!("{STEM}.rdy")),
            "kill after step {n}"
        );
        assert!(left.len() < original.len());
        assert_eq!(after.invalid.len(), 1);
        assert!(
            after.invalid[0]
                .reasons()
                .contains(&crate::scan::InvalidReason::Missing(PartKind::Out))
        );
        let finished = finish_removal(&z.incoming, STEM).expect("finish");
        assert_eq!(
            finished
                .removed
                .last()
                .and_then(|p| p.extension())
                .and_then(OsStr::to_str),
            Some("rdy")
        );
        assert!(contents(&z.incoming).is_empty(), "kill after step {n}");
    }
    assert_eq!(steps, 6, "one step per part");
}

#[test]
fn removal_stops_before_rdy_when_a_part_changed() {
    let z = zone();
    write_group(&z);
    let s = scan(&z);
    let env = z.incoming.join(format!("{STEM}.env"));
    replace(&env, b"Hostname=other\n");
    let err = remove_group(&s.complete[0]).expect_err("changed");
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    assert!(z.incoming.join(format!("{STEM}.rdy")).exists());
    assert_eq!(fs::read(&env).expect("env"), b"Hostname=other\n");
}

/// The scan a consumer that opens the parts itself makes: no open check.
fn lean_scan(z: &Zone) -> crate::scan::Scan {
    Dropzone::new(&z.incoming)
        .with_open_check(false)
        .scan(&selection())
        .expect("scan")
}

#[test]
fn a_lean_scan_stats_only_the_out_and_err_of_a_complete_group() {
    let z = zone();
    write_group(&z);
    // write_group leaves a stale `.lck`: a group with a lock is stat'ed whole (its age
    // matters); without it, only `.out` and `.err` are.
    let lck = z.incoming.join(format!("{STEM}.lck"));
    let stated = |parts: &[Part]| -> Vec<String> {
        parts
            .iter()
            .filter(|p| p.id().is_some())
            .map(|p| p.ext().to_string_lossy().into_owned())
            .collect()
    };
    let locked = lean_scan(&z);
    let parts = locked.complete[0].files().parts();
    assert_eq!(stated(parts).len(), parts.len(), "{parts:?}");
    fs::remove_file(&lck).expect("unlock");
    let s = lean_scan(&z);
    let group = &s.complete[0];
    assert_eq!(stated(group.files().parts()), ["out", "err"]);
    assert_eq!(
        group.out_len(),
        fs::metadata(group.out().path()).expect("stat").len()
    );
    // Unstat'ed parts are read through their descriptor: a regular file opens.
    group.read_env().expect("env");
    group.manifests().expect("err");
}

#[test]
fn a_replaced_out_stops_a_lean_removal_before_anything_is_removed() {
    let z = zone();
    write_group(&z);
    fs::remove_file(z.incoming.join(format!("{STEM}.lck"))).expect("unlock");
    let s = lean_scan(&z);
    let before = contents(&z.incoming);
    let out = z.incoming.join(format!("{STEM}.out"));
    replace(&out, b"other bytes");
    let opened = s.complete[0].open_out().expect_err("changed");
    assert!(matches!(opened, Error::Changed { .. }), "{opened}");
    let err = remove_group(&s.complete[0]).expect_err("changed");
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    let mut after = contents(&z.incoming);
    assert_eq!(
        after.remove(&format!("{STEM}.out")).as_deref(),
        Some(&b"other bytes"[..])
    );
    let mut expected = before;
    expected.remove(&format!("{STEM}.out"));
    assert_eq!(after, expected, "nothing else removed");
}

#[test]
fn a_lean_removal_is_guarded_by_the_out_alone_and_a_full_one_part_by_part() {
    // The `.err` is stat'ed by both scans (its size decides whether it is read), but once
    // the `.out` of a lean scan's group is proven the same and removed, the `.err` is not
    // stat'ed again: whatever the stem holds then is the upload that was read.
    for lean in [true, false] {
        let z = zone();
        write_group(&z);
        fs::remove_file(z.incoming.join(format!("{STEM}.lck"))).expect("unlock");
        let s = if lean { lean_scan(&z) } else { scan(&z) };
        let err = z.incoming.join(format!("{STEM}.err"));
        assert!(
            s.complete[0]
                .files()
                .parts()
                .iter()
                .any(|p| p.path() == err && p.id().is_some())
        );
        replace(&err, b"rewritten\n");
        let removed = remove_group(&s.complete[0]);
        if lean {
            removed.expect("guarded by the .out");
            assert!(contents(&z.incoming).is_empty(), "the whole group removed");
        } else {
            let e = removed.expect_err("the .err changed");
            assert!(matches!(e, Error::Changed { .. }), "{e}");
            assert!(z.incoming.join(format!("{STEM}.rdy")).exists());
        }
    }
}

#[test]
fn finishing_a_removed_group_is_harmless() {
    let z = zone();
    fs::write(z.incoming.join("unrelated.txt"), b"x").expect("write");
    let report = finish_removal(&z.incoming, STEM).expect("finish");
    assert!(report.removed.is_empty());
    assert!(z.incoming.join("unrelated.txt").exists());
}

fn assert_wholly_quarantined(z: &Zone, original: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert!(
        contents(&z.incoming).is_empty(),
        "{what}: dropzone not empty"
    );
    let q = contents(&z.quarantine);
    assert_eq!(q.keys().collect::<Vec<_>>(), [STEM], "{what}");
    let mut inside = contents(&z.quarantine.join(STEM));
    let reason = inside.remove(REASON_FILE).expect("reason file");
    assert!(
        String::from_utf8_lossy(&reason).contains("Reason=bad\\x1b host"),
        "{what}"
    );
    assert_eq!(&inside, original, "{what}: every part, unchanged");
}

fn assert_wholly_in_dropzone(z: &Zone, original: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(&contents(&z.incoming), original, "{what}");
    assert!(
        contents(&z.quarantine).is_empty(),
        "{what}: quarantine not empty"
    );
    assert_eq!(scan(z).complete.len(), 1, "{what}");
}

#[test]
fn quarantine_moves_the_whole_group_with_a_reason() {
    let z = zone();
    let original = write_group(&z);
    let s = scan(&z);
    let q = quarantine_group(&s.complete[0], &z.quarantine, "bad\x1b host").expect("quarantine");
    assert_eq!(q.path, z.quarantine.join(STEM));
    assert_eq!(q.moved.len(), original.len());
    assert!(q.moved.iter().all(|p| p.starts_with(&q.path)));
    assert_wholly_quarantined(&z, &original, "quarantine");
    let reason = fs::read_to_string(q.path.join(REASON_FILE)).expect("reason");
    assert!(reason.contains(&format!("Stem={STEM}\n")), "{reason}");
    assert!(reason.contains(&format!("Part={STEM}.rdy\n")), "{reason}");
    assert!(reason.ends_with("End=\n"));

    // The same stem again (the server accepts it once the first is gone): a second directory.
    write_group(&z);
    let s = scan(&z);
    let q2 = quarantine_group(&s.complete[0], &z.quarantine, "again").expect("quarantine");
    assert_eq!(q2.path, z.quarantine.join(format!("{STEM}.1")));

    // Listed back as written, escapes undone; a pending move and a stray directory aside.
    fs::create_dir(z.quarantine.join(".webjob-drop-pending.x")).expect("pending");
    fs::create_dir(z.quarantine.join("stray")).expect("stray");
    let listed = list_quarantine(&z.quarantine).expect("list");
    let summary: Vec<(PathBuf, OsString, Option<String>, bool)> = listed
        .into_iter()
        .map(|g| (g.dir, g.stem, g.reason, g.at.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                q.path.clone(),
                OsString::from(STEM),
                Some("bad\x1b host".to_owned()),
                true
            ),
            (
                q2.path.clone(),
                OsString::from(STEM),
                Some("again".to_owned()),
                true
            ),
            (
                z.quarantine.join("stray"),
                OsString::from("stray"),
                None,
                false
            ),
        ]
    );
    assert!(
        list_quarantine(&z.quarantine.join("none"))
            .expect("missing")
            .is_empty()
    );
}

#[test]
fn killed_quarantine_recovers_to_one_side() {
    let mut steps = 0;
    for n in 0.. {
        let z = zone();
        let original = write_group(&z);
        let s = scan(&z);
        let group = s.complete[0].clone();
        let what = format!("kill after step {n}");
        if !killed_at(n, || {
            quarantine_group(&group, &z.quarantine, "bad\x1b host")
        }) {
            steps = n;
            assert_wholly_quarantined(&z, &original, &what);
            break;
        }
        // Before recovery, a consumer never sees a complete group unless it is whole.
        let before = scan(&z);
        assert!(
            before.complete.is_empty() || contents(&z.incoming) == original,
            "{what}"
        );
        let report = recover_quarantine(&z.quarantine).expect("recover");
        assert!(report.errors.is_empty(), "{what}: {:?}", report.errors);
        if contents(&z.incoming).is_empty() {
            assert_wholly_quarantined(&z, &original, &what);
        } else {
            assert!(report.completed.is_empty(), "{what}");
            assert_wholly_in_dropzone(&z, &original, &what);
        }
        // Recovery is idempotent.
        let again = recover_quarantine(&z.quarantine).expect("recover");
        assert!(again.completed.is_empty() && again.rolled_back.is_empty());
    }
    // Pending directory, reason file, intent, 6 parts, synced moves, final rename.
    assert_eq!(steps, 11);
}

#[test]
fn killed_recovery_is_recovered_again() {
    // Kill the quarantine after the 2nd part moved, then kill recovery at every step.
    for m in 0.. {
        let z = zone();
        let original = write_group(&z);
        let s = scan(&z);
        let group = s.complete[0].clone();
        assert!(killed_at(4, || quarantine_group(
            &group,
            &z.quarantine,
            "bad\x1b host"
        )));
        let killed = killed_at(m, || recover_quarantine(&z.quarantine));
        let report = recover_quarantine(&z.quarantine).expect("recover");
        assert!(report.errors.is_empty());
        assert_wholly_quarantined(&z, &original, &format!("recovery killed after step {m}"));
        if !killed {
            break;
        }
    }
}

#[test]
fn failed_quarantine_moves_parts_back() {
    let z = zone();
    let original = write_group(&z);
    let s = scan(&z);
    // `.env` is replaced after the scan: the move stops there and is undone.
    let env = z.incoming.join(format!("{STEM}.env"));
    replace(&env, &fs::read(&env).expect("read"));
    let err = quarantine_group(&s.complete[0], &z.quarantine, "x").expect_err("changed");
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    assert_eq!(contents(&z.incoming), original);
    assert!(
        contents(&z.quarantine).is_empty(),
        "no pending directory left"
    );
}

#[test]
fn a_lean_scans_group_is_quarantined_whole_or_not_at_all() {
    let z = zone();
    let mut original = write_group(&z);
    fs::remove_file(z.incoming.join(format!("{STEM}.lck"))).expect("unlock");
    original.remove(&format!("{STEM}.lck"));
    // `.out` replaced after the scan: `.rdy` (not stat'ed) moved first, then the check of
    // `.out` undoes the move.
    let s = lean_scan(&z);
    let out = z.incoming.join(format!("{STEM}.out"));
    replace(&out, &fs::read(&out).expect("read"));
    let err = quarantine_group(&s.complete[0], &z.quarantine, "x").expect_err("changed");
    assert!(matches!(err, Error::Changed { .. }), "{err}");
    assert_eq!(contents(&z.incoming), original);
    // Scanned again, it moves whole.
    let s = lean_scan(&z);
    let q = quarantine_group(&s.complete[0], &z.quarantine, "x").expect("quarantine");
    assert_eq!(q.moved.len(), original.len());
    assert!(contents(&z.incoming).is_empty());
}

#[test]
fn quarantine_inside_the_dropzone_is_refused() {
    let z = zone();
    let original = write_group(&z);
    let s = scan(&z);
    let inside = z.incoming.join("quarantine");
    let err = quarantine_group(&s.complete[0], &inside, "x").expect_err("inside");
    assert!(
        matches!(err, Error::QuarantineInsideDropzone { .. }),
        "{err}"
    );
    let mut now = contents(&z.incoming);
    now.remove("quarantine");
    assert_eq!(now, original);
}

#[test]
fn recovery_leaves_what_it_cannot_understand() {
    let z = zone();
    fs::create_dir_all(&z.quarantine).expect("mkdir");
    // An intent cut short by a kill, nothing moved: rolled back.
    let empty = z.quarantine.join(format!("{PENDING_PREFIX}a"));
    fs::create_dir(&empty).expect("mkdir");
    fs::write(empty.join(REASON_FILE), b"Reason=x\nSource=/nowhere\nSt").expect("write");
    // Files but no intent: left for an operator.
    let odd = z.quarantine.join(format!("{PENDING_PREFIX}b"));
    fs::create_dir(&odd).expect("mkdir");
    fs::write(odd.join("x.out"), b"data").expect("write");
    // Not ours at all.
    fs::create_dir(z.quarantine.join("older_group")).expect("mkdir");

    let report = recover_quarantine(&z.quarantine).expect("recover");
    assert_eq!(report.rolled_back, std::slice::from_ref(&empty));
    assert!(report.completed.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert!(matches!(&report.errors[0], Error::Recovery { path, .. } if *path == odd));
    assert!(!empty.exists());
    assert_eq!(fs::read(odd.join("x.out")).expect("kept"), b"data");
    assert!(z.quarantine.join("older_group").is_dir());
    assert!(
        recover_quarantine(&z.incoming.join("missing"))
            .expect("nothing")
            .completed
            .is_empty()
    );
}

#[test]
fn unescape_reverses_escaped() {
    for bytes in [
        &b""[..],
        b"plain",
        b"a\\b\n\r\t",
        b"\x00\x1b\x7f\xff\xfe",
        b"/drop/in_coming/client1_x.rdy",
    ] {
        let shown = Escaped(bytes).to_string();
        assert_eq!(unescape(shown.as_bytes()).as_deref(), Some(bytes));
    }
    for bad in [&b"\\"[..], b"\\q", b"\\x", b"\\x4", b"\\xzz"] {
        assert_eq!(unescape(bad), None);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn unescape_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let shown = Escaped(&bytes).to_string();
        proptest::prop_assert_eq!(unescape(shown.as_bytes()), Some(bytes));
    }

    #[test]
    fn unescape_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let _ = unescape(&bytes);
    }
}

/// The original group without its `.lck` (a requeue drops it: it would look in flight).
fn without_lock(original: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    original
        .iter()
        .filter(|(name, _)| !name.ends_with(".lck"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn quarantined(z: &Zone) -> (BTreeMap<String, Vec<u8>>, PathBuf) {
    let original = write_group(z);
    let s = scan(z);
    let done = quarantine_group(&s.complete[0], &z.quarantine, "bad\x1b host").expect("quarantine");
    (original, done.path)
}

#[test]
fn a_requeued_group_is_back_whole_and_complete() {
    let z = zone();
    let (original, dir) = quarantined(&z);
    let back = requeue_group(&dir, &z.quarantine, &z.incoming).expect("requeue");
    assert_eq!(back.source, z.incoming);
    assert!(
        back.moved
            .last()
            .is_some_and(|p| p.extension().is_some_and(|e| e == "rdy"))
    );
    assert_eq!(contents(&z.incoming), without_lock(&original));
    assert_eq!(scan(&z).complete.len(), 1, "complete again");
    assert!(list_quarantine(&z.quarantine).expect("list").is_empty());
    assert!(contents(&z.quarantine).is_empty(), "nothing left behind");
}

#[test]
fn a_requeue_is_refused_while_a_group_of_that_stem_is_in_the_dropzone() {
    let z = zone();
    let (_, dir) = quarantined(&z);
    fs::write(z.incoming.join(format!("{STEM}.out")), b"new").expect("write");
    let err = requeue_group(&dir, &z.quarantine, &z.incoming).expect_err("refused");
    assert!(matches!(err, Error::Requeue { .. }), "{err}");
    assert!(err.to_string().contains("is in the dropzone"), "{err}");
    assert_eq!(
        list_quarantine(&z.quarantine).expect("list").len(),
        1,
        "still there"
    );
}

#[test]
fn a_requeue_never_moves_a_group_outside_the_dropzone() {
    let z = zone();
    let (_, dir) = quarantined(&z);
    let elsewhere = z.quarantine.parent().expect("base").join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let reason = dir.join(REASON_FILE);
    let text = fs::read_to_string(&reason).expect("reason");
    let source = format!(
        "Source={}",
        Escaped(z.incoming.as_os_str().as_encoded_bytes())
    );
    assert!(text.contains(&source), "{text}");
    let tampered = text.replace(
        &source,
        &format!(
            "Source={}",
            Escaped(elsewhere.as_os_str().as_encoded_bytes())
        ),
    );
    fs::write(&reason, tampered).expect("tamper");
    let err = requeue_group(&dir, &z.quarantine, &z.incoming).expect_err("refused");
    assert!(err.to_string().contains("not in the dropzone"), "{err}");
    assert!(contents(&elsewhere).is_empty(), "nothing moved there");
    assert_eq!(list_quarantine(&z.quarantine).expect("list").len(), 1);
}

#[test]
fn killed_requeue_recovers_to_one_side() {
    let mut steps = 0;
    for n in 0.. {
        let z = zone();
        let (original, dir) = quarantined(&z);
        if !killed_at(n, || requeue_group(&dir, &z.quarantine, &z.incoming)) {
            steps = n;
            break;
        }
        // The kill may leave the group half back, never complete in the dropzone before all
        // its parts are there.
        let partial = scan(&z);
        if !partial.complete.is_empty() {
            assert_eq!(
                contents(&z.incoming),
                without_lock(&original),
                "kill after {n}"
            );
        }
        recover_quarantine(&z.quarantine).expect("recover");
        let listed = list_quarantine(&z.quarantine).expect("list");
        if listed.is_empty() {
            assert_eq!(
                contents(&z.incoming),
                without_lock(&original),
                "kill after {n}"
            );
            assert!(contents(&z.quarantine).is_empty(), "kill after {n}");
        } else {
            assert_wholly_quarantined(&z, &original, &format!("kill after {n}"));
        }
    }
    assert!(steps >= 5, "the requeue has its steps: {steps}");
}

#[test]
fn an_expired_group_is_gone_even_after_a_kill() {
    for n in 0..2 {
        let z = zone();
        let (_, dir) = quarantined(&z);
        let killed = killed_at(n, || expire_group(&dir, &z.quarantine));
        assert_eq!(killed, n == 0, "one step");
        assert!(list_quarantine(&z.quarantine).expect("list").is_empty());
        recover_quarantine(&z.quarantine).expect("recover");
        assert!(contents(&z.quarantine).is_empty(), "kill after {n}");
    }
}
