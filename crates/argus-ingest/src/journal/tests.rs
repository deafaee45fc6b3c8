//! Unit tests of the journal: line round trips, damage, reopening, and the recovery plan.

use super::*;

fn entry(n: u32, day: &str, size_before: u64) -> Entry {
    Entry {
        rdy: PathBuf::from(format!("/drop/c_2026112700000{n}_harvest_argus.rdy")),
        out: PathBuf::from(format!("/drop/c_2026112700000{n}_harvest_argus.out")),
        day: (!day.is_empty()).then(|| PathBuf::from(day)),
        size_before,
        archive: PathBuf::from(format!("/arch/c_2026112700000{n}_harvest_argus.out.gz")),
        client: "c".to_owned(),
        at: 1_800_000_000 + i64::from(n),
        bytes: 7,
        chunks: if n.is_multiple_of(2) {
            Vec::new()
        } else {
            vec![
                ChunkRef {
                    host: "sensor-1.a".to_owned(),
                    seq: u64::from(n),
                    sha: "00112233aabbccdd".to_owned(),
                },
                ChunkRef {
                    host: "s2".to_owned(),
                    seq: 9,
                    sha: "-".to_owned(),
                },
            ]
        },
        segments: if n.is_multiple_of(3) {
            vec![ByteRange::new(0, 3), ByteRange::new(5, 4)]
        } else {
            vec![ByteRange::new(0, 7)]
        },
        version: match n % 3 {
            0 => None,
            1 => Some(3),
            _ => Some(5),
        },
        records: (n % 2 == 1).then_some(u64::from(n) * 10),
        health: (n % 2 == 1).then(|| crate::health::UploadHealth {
            hours: vec![(500_000, 1044, u64::from(n)), (500_001, 7, 0)],
            starts: vec![1_800_000_000 - i64::from(n)],
            stops: u64::from(n % 3),
            last_mar: Some(1_800_000_000),
            gaps: vec![ByteRange::new(128, 4096)],
        }),
        archive_from: match n % 3 {
            0 => ArchiveFrom::Unknown,
            1 => ArchiveFrom::Temp(PathBuf::from(format!(
                "/arch/.argus-tmp.x{n}.c_2026112700000{n}_harvest_argus.out.gz"
            ))),
            _ => ArchiveFrom::Out,
        },
    }
}

const DONE: Facts = Facts {
    rdy_present: false,
    out_present: false,
    archived: true,
};
const ARCHIVED: Facts = Facts {
    rdy_present: true,
    out_present: true,
    archived: true,
};
const PENDING: Facts = Facts {
    rdy_present: true,
    out_present: true,
    archived: false,
};

#[test]
fn lines_round_trip_and_damage_is_detected() {
    let mut e = entry(1, "/oper/host a_20261127", 42);
    e.out = PathBuf::from(OsStr::from_bytes(b"/drop/\xff\tweird\n-name.out"));
    let none = entry(2, "", 0);
    let reshipped = entry(3, "/oper/h_20261127", 7);
    // Temporary names that look like the markers of the other origins.
    let mut odd = entry(4, "/oper/h_20261127", 9);
    let mut buf = Vec::new();
    encode(&e, &mut buf);
    encode(&none, &mut buf);
    encode(&reshipped, &mut buf);
    for marker in ["=", "-"] {
        odd.archive_from = ArchiveFrom::Temp(PathBuf::from(marker));
        encode(&odd, &mut buf);
    }
    let lines: Vec<&[u8]> = buf.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(decode(lines[0]), Some(e));
    assert_eq!(decode(lines[1]), Some(none));
    assert_eq!(decode(lines[2]), Some(reshipped));
    for (line, marker) in lines[3..].iter().zip(["=", "-"]) {
        odd.archive_from = ArchiveFrom::Temp(PathBuf::from(marker));
        assert_eq!(decode(line), Some(odd.clone()));
    }
    for cut in 0..lines[0].len() {
        assert_eq!(decode(&lines[0][..cut]), None, "torn at {cut}");
    }
    let mut flipped = lines[0].to_vec();
    flipped[10] ^= 1;
    assert_eq!(decode(&flipped), None);
    // Lines written before versions (10 fields), records (11 fields), the sensor's health
    // (12 fields) or the archive's origin (13 fields) were recorded read with none.
    for dropped in [1, 2, 3, 4] {
        let mut old = entry(5, "/oper/h_20261127", 7);
        old.archive_from = ArchiveFrom::Unknown;
        if dropped >= 2 {
            old.health = None;
        }
        if dropped >= 3 {
            old.records = None;
        }
        if dropped == 4 {
            old.version = None;
        }
        let mut buf = Vec::new();
        encode(&old, &mut buf);
        let fields: Vec<&[u8]> = buf[..buf.len() - 1].split(|&b| b == b'\t').collect();
        // Without the seal and the `dropped` last fields.
        let without = fields[..fields.len() - 1 - dropped].join(&b'\t');
        let mut line = Vec::new();
        LINES.seal(&without, &mut line);
        assert_eq!(decode(&line), Some(old), "{dropped} fields fewer");
    }
}

#[test]
fn journal_survives_reopen_and_clears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut j, old) = Journal::open(dir.path()).expect("open");
    assert!(old.is_empty() && j.is_empty());
    let batch = [entry(1, "/o/h_20261127", 0), entry(2, "/o/h_20261127", 10)];
    j.record(&batch).expect("record");
    drop(j);
    // A torn line at the end, as a crash mid-write leaves it.
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("journal"))
        .expect("open");
    f.write_all(b"A\t/drop/x.rdy\t/dro").expect("write");
    drop(f);
    let (mut j, old) = Journal::open(dir.path()).expect("reopen");
    assert_eq!(old, batch);
    j.clear().expect("clear");
    let (_j, old) = Journal::open(dir.path()).expect("reopen");
    assert!(old.is_empty());
}

#[test]
fn batches_take_the_two_files_in_turn_and_recovery_reads_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut j, _) = Journal::open(dir.path()).expect("open");
    let first = [entry(1, "/o/h_20261127", 0), entry(2, "/o/h_20261127", 10)];
    let second = [entry(3, "/o/h_20261127", 20)];
    let third = [entry(4, "/o/h_20261127", 30)];
    j.record(&first).expect("record");
    let first_slot = j.hand_over().expect("hand over");
    j.record(&second).expect("record");
    // The first file still holds the first batch: it cannot be taken again.
    assert!(j.hand_over().is_err(), "two batches in one file");
    // The first batch's removal is under way: both batches are there after a crash.
    let (_, old) = Journal::open(dir.path()).expect("reopen");
    assert_eq!(old, [first.as_slice(), second.as_slice()].concat());
    j.clear_slot(first_slot).expect("clear the first");
    let second_slot = j.hand_over().expect("hand over");
    j.record(&third).expect("record");
    let len = |name: &str| fs_len(&dir.path().join(name));
    assert!(
        len(FILES[0]) > 0 && len(FILES[1]) > 0,
        "third in the first file"
    );
    // Read back in file order: the third batch first, then the second.
    let (_, old) = Journal::open(dir.path()).expect("reopen");
    assert_eq!(old, [third.as_slice(), second.as_slice()].concat());
    j.clear_slot(second_slot).expect("clear the second");
    assert!(!j.is_empty());
    j.clear().expect("clear");
    assert!(j.is_empty());
    assert_eq!((len(FILES[0]), len(FILES[1])), (0, 0));
    let (_, old) = Journal::open(dir.path()).expect("reopen");
    assert!(old.is_empty());
}

fn fs_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn crash_before_any_archive_rolls_everything_back() {
    let e = [
        entry(1, "/o/h", 100),
        entry(2, "/o/h", 150),
        entry(3, "/o/g", 0),
    ];
    let plan = plan_recovery(&e, |_| PENDING);
    assert_eq!(
        plan.truncate,
        [(PathBuf::from("/o/g"), 0), (PathBuf::from("/o/h"), 100)]
    );
    assert_eq!(plan.redo, e);
    assert!(plan.reappend.is_empty() && plan.remove.is_empty());
}

#[test]
fn archived_uploads_are_kept_and_their_groups_removed() {
    let e = [
        entry(1, "/o/h", 100),
        entry(2, "/o/h", 150),
        entry(3, "/o/h", 180),
    ];
    let facts = |x: &Entry| match x.size_before {
        100 => DONE,
        150 => ARCHIVED,
        _ => PENDING,
    };
    let plan = plan_recovery(&e, facts);
    assert_eq!(plan.truncate, [(PathBuf::from("/o/h"), 180)]);
    assert_eq!(plan.remove, [e[1].clone()]);
    assert_eq!(plan.redo, [e[2].clone()]);
    assert!(plan.reappend.is_empty());
}

#[test]
fn complete_data_beyond_the_cut_is_appended_again() {
    // Upload 2 was archived but upload 1 was not: only a file system that reorders renames
    // can do that. The cut at 100 removes upload 2's bytes, so they are appended again.
    let e = [
        entry(1, "/o/h", 100),
        entry(2, "/o/h", 150),
        entry(3, "/o/h", 200),
    ];
    let facts = |x: &Entry| match x.size_before {
        100 => PENDING,
        150 => ARCHIVED,
        _ => DONE,
    };
    let plan = plan_recovery(&e, facts);
    assert_eq!(plan.truncate, [(PathBuf::from("/o/h"), 100)]);
    assert_eq!(
        plan.reappend,
        [
            (
                PathBuf::from("/o/h"),
                Source::Out(e[1].out.clone()),
                vec![ByteRange::new(0, 7)]
            ),
            (
                PathBuf::from("/o/h"),
                Source::Archive(e[2].archive.clone()),
                vec![ByteRange::new(0, 3), ByteRange::new(5, 4)]
            ),
        ]
    );
    assert_eq!(plan.redo, [e[0].clone()]);
    // The journal's two files may give the later batch (upload 3's) first: what is appended
    // again goes in the order it first went, by the sizes before.
    let files_swapped = [e[2].clone(), e[0].clone(), e[1].clone()];
    assert_eq!(plan_recovery(&files_swapped, facts), plan);
}

#[test]
fn everything_done_means_nothing_to_do() {
    let e = [entry(1, "/o/h", 0), entry(2, "", 0)];
    let plan = plan_recovery(&e, |_| DONE);
    assert_eq!(plan, Recovery::default());
}

#[test]
fn an_archive_name_taken_before_is_not_this_uploads_archive() {
    // Upload 1 is written under a temporary name, upload 2 is its `.out` moved: a file at
    // either's archive name is theirs only once the name it comes from is gone.
    let temp = entry(1, "/o/h", 100);
    let moved = entry(2, "/o/h", 150);
    let ArchiveFrom::Temp(temp_name) = temp.archive_from.clone() else {
        panic!("entry 1 is staged")
    };
    let all = [
        temp.rdy.clone(),
        temp.out.clone(),
        temp.archive.clone(),
        temp_name.clone(),
        moved.rdy.clone(),
        moved.out.clone(),
        moved.archive.clone(),
    ];
    let present = |gone: &[&PathBuf]| {
        let mut paths: Vec<PathBuf> = all.to_vec();
        paths.retain(|p| !gone.contains(&p));
        move |p: &Path| paths.iter().any(|q| q == p)
    };
    // Both archive names taken before the renames, which have not happened (a crash after the
    // appends): neither upload is complete, and both are rolled back.
    let before = present(&[]);
    let facts = |e: &Entry| Facts::of(e, &before);
    assert_eq!(Facts::of(&temp, &before), PENDING);
    assert_eq!(Facts::of(&moved, &before), PENDING);
    let plan = plan_recovery(&[temp.clone(), moved.clone()], facts);
    assert_eq!(plan.truncate, [(PathBuf::from("/o/h"), 100)]);
    assert_eq!(plan.redo, [temp.clone(), moved.clone()]);
    // The renames happened: both are in place.
    let after = present(&[&temp_name, &moved.out]);
    assert!(Facts::of(&temp, &after).archived);
    assert!(Facts::of(&moved, &after).archived);
    // Not yet renamed, no file of the name: not archived.
    let none = present(&[&temp.archive, &moved.archive]);
    assert_eq!(Facts::of(&temp, &none), PENDING);
    assert_eq!(Facts::of(&moved, &none), PENDING);
    // A line from before the origin was recorded: the name alone tells, as it did.
    let mut old = temp.clone();
    old.archive_from = ArchiveFrom::Unknown;
    assert_eq!(Facts::of(&old, &before), ARCHIVED);
}
