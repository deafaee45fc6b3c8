//! Unit tests of the ledger: gaps, duplicates, versions, reloads, compaction, torn lines.

use super::lines::push_line;
use super::*;
use std::fs;

fn chunk(host: &str, seq: u64) -> Fact {
    Fact::Chunk {
        host: host.into(),
        seq,
        client: "c1".into(),
        sha: format!("{seq:016x}"),
        version: None,
    }
}

fn sha(seq: u64) -> String {
    format!("{seq:016x}")
}

fn upload(stem: &str, at: i64, bytes: u64) -> Fact {
    Fact::Upload {
        client: "c1".into(),
        at,
        bytes,
        stem: stem.into(),
        version: None,
        health: None,
    }
}

#[test]
fn gaps_and_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(dir.path()).expect("open");
    for seq in [1, 2, 4] {
        assert_eq!(l.check("s1", seq, &sha(seq)), Seen::New);
        l.record(&[chunk("s1", seq)]).expect("record");
    }
    assert_eq!(l.hosts["s1"].gaps, [(3, 3)]);
    assert_eq!(l.check("s1", 2, &sha(2)), Seen::Duplicate);
    assert_eq!(
        l.check("s1", 2, &sha(99)),
        Seen::Reused,
        "same number, other bytes: the sensor's numbering went back"
    );
    assert_eq!(
        l.check("s1", 3, &sha(3)),
        Seen::New,
        "a late chunk fills its gap"
    );
    l.record(&[chunk("s1", 9)]).expect("record");
    assert_eq!(l.hosts["s1"].gaps, [(3, 3), (5, 8)]);
    l.record(&[chunk("s1", 6), chunk("s1", 3)]).expect("record");
    assert_eq!(l.hosts["s1"].gaps, [(5, 5), (7, 8)]);
    // Facts replayed twice change nothing.
    l.record(&[chunk("s1", 6), chunk("s1", 9)]).expect("record");
    assert_eq!(l.hosts["s1"].gaps, [(5, 5), (7, 8)]);
    l.record(&[Fact::Duplicate {
        host: "s1".into(),
        seq: 2,
    }])
    .expect("record");
    assert_eq!(l.hosts["s1"].duplicates, 1);
}

#[test]
fn a_sequence_starts_at_the_first_chunk_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(dir.path()).expect("open");
    // A sensor that shipped 41 chunks before this ledger existed: no gap for them.
    l.record(&[chunk("s1", 42), chunk("s1", 43)])
        .expect("record");
    assert!(l.hosts["s1"].gaps.is_empty());
    assert_eq!(l.check("s1", 43, &sha(43)), Seen::Duplicate);
    assert_eq!(l.check("s1", 41, &sha(41)), Seen::New, "never seen");
    // An older chunk arriving late extends the sequence down, with the gap it reveals.
    l.record(&[chunk("s1", 39)]).expect("record");
    assert_eq!(l.hosts["s1"].first_seq, Some(39));
    assert_eq!(l.hosts["s1"].gaps, [(40, 41)]);
    assert_eq!(l.check("s1", 39, &sha(39)), Seen::Duplicate);
    assert_eq!(l.check("s1", 40, &sha(40)), Seen::New);
    l.record(&[chunk("s1", 38), chunk("s1", 41)])
        .expect("record");
    assert_eq!(l.hosts["s1"].gaps, [(40, 40)]);
    let before = l.hosts.clone();
    l.compact().expect("compact");
    assert_eq!(Ledger::load(dir.path()).expect("reload").hosts, before);
}

#[test]
fn forgotten_gaps_never_turn_a_late_chunk_into_a_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(dir.path()).expect("open");
    // Every other chunk missing: one more gap than is kept.
    let facts: Vec<Fact> = (0..=MAX_GAPS as u64 + 1)
        .map(|i| chunk("s1", 1 + 2 * i))
        .collect();
    l.record(&facts).expect("record");
    let h = &l.hosts["s1"];
    assert_eq!(h.gaps.len(), MAX_GAPS);
    assert_eq!(h.gaps_dropped, 1);
    assert_eq!(
        l.check("s1", 2, &sha(2)),
        Seen::New,
        "the late chunk of a forgotten gap is appended"
    );
    assert_eq!(l.check("s1", 4, &sha(4)), Seen::New, "a known gap");
    assert_eq!(
        l.check("s1", 5, &sha(5)),
        Seen::Reused,
        "seen, but too long ago to compare its content: appended rather than left out"
    );
    let last = 1 + 2 * (MAX_GAPS as u64 + 1);
    assert_eq!(
        l.check("s1", last, &sha(last)),
        Seen::Duplicate,
        "a recent chunk"
    );
}

#[test]
fn survives_reload_compaction_and_a_torn_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(dir.path()).expect("open");
    let t = 1_800_000_000;
    l.record(&[
        chunk("s1", 1),
        chunk("s1", 5),
        chunk("s2", 7),
        Fact::Duplicate {
            host: "s2".into(),
            seq: 7,
        },
        upload("a", t, 100),
        upload("b", t + 4000, 50),
        upload("b", t + 4000, 50),
    ])
    .expect("record");
    let state = |l: &Ledger| (l.hosts.clone(), l.clients.clone());
    let before = state(&l);
    assert_eq!(l.clients["c1"].hours.values().map(|v| v.0).sum::<u64>(), 2);
    drop(l);
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("ledger.log"))
        .expect("open log");
    f.write_all(b"C s1 99 c1 dead").expect("torn");
    drop(f);
    let mut l = Ledger::open(dir.path()).expect("reload");
    assert_eq!(state(&l), before);
    l.compact().expect("compact");
    assert_eq!(
        fs::metadata(dir.path().join("ledger.log"))
            .expect("log")
            .len(),
        0
    );
    let l = Ledger::load(dir.path()).expect("reload snapshot");
    assert_eq!(state(&l), before);
    assert_eq!(l.hosts["s1"].gaps, [(2, 4)]);
}

#[test]
fn versions_follow_the_newest_data_and_a_sensor_that_went_back_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Ledger::open(dir.path()).expect("open");
    let t = 1_800_000_000;
    let up = |stem: &str, at: i64, v: u8| Fact::Upload {
        client: "c1".into(),
        at,
        bytes: 1,
        stem: stem.into(),
        version: Some(v),
        health: None,
    };
    let ch = |seq: u64, v: u8| Fact::Chunk {
        host: "s1".into(),
        seq,
        client: "c1".into(),
        sha: sha(seq),
        version: Some(v),
    };
    l.record(&[up("a", t, 3), ch(1, 3)]).expect("record");
    assert_eq!(l.clients["c1"].versions.current, Some(3));
    assert_eq!(l.clients["c1"].versions.previous, None);
    // Upgraded: the newest upload is argus 5.
    l.record(&[up("b", t + 3600, 5), ch(2, 5)]).expect("record");
    // A late upload of older data changes nothing, for the client or the host.
    l.record(&[up("late", t + 1800, 3), ch(1, 3)])
        .expect("record");
    let v = l.clients["c1"].versions;
    assert_eq!(
        (v.current, v.previous, v.went_back()),
        (Some(5), Some(3), false)
    );
    assert_eq!(l.hosts["s1"].version, Some(5));
    // Back to argus 3: spotted.
    l.record(&[up("c", t + 7200, 3), ch(3, 3)]).expect("record");
    let v = l.clients["c1"].versions;
    assert_eq!(
        (v.current, v.previous, v.went_back()),
        (Some(3), Some(5), true)
    );
    assert_eq!(l.hosts["s1"].version, Some(3));
    // Replayed facts change nothing, and the state survives a reload and a compaction.
    l.record(&[up("c", t + 7200, 3), ch(3, 3)]).expect("record");
    let state = |l: &Ledger| (l.hosts.clone(), l.clients.clone());
    let before = state(&l);
    drop(l);
    let mut l = Ledger::open(dir.path()).expect("reload");
    assert_eq!(state(&l), before);
    l.compact().expect("compact");
    assert_eq!(state(&Ledger::load(dir.path()).expect("snapshot")), before);
}

#[test]
fn lines_without_versions_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = Vec::new();
    push_line("C s1 4 c1 00000000000000aa", &mut buf);
    push_line("U c1 1800000000 10 stem1", &mut buf);
    fs::write(dir.path().join("ledger.log"), &buf).expect("write");
    let mut snap = Vec::new();
    push_line("H s0 c0 7 0 0 - 1 -", &mut snap);
    push_line("K c0 1800000000 -", &mut snap);
    fs::write(dir.path().join("ledger"), &snap).expect("write");
    let l = Ledger::load(dir.path()).expect("load");
    assert_eq!(l.hosts["s1"].max_seq, 4);
    assert_eq!(l.hosts["s1"].version, None);
    assert_eq!(l.hosts["s0"].max_seq, 7);
    assert_eq!(l.clients["c1"].versions, Versions::default());
    assert_eq!(l.clients["c0"].last_upload, Some(1_800_000_000));
}

#[test]
fn sensor_health_counts_each_upload_once_and_survives_compaction() {
    use crate::health::UploadHealth;
    let dir = tempfile::tempdir().expect("tempdir");
    let t = 1_800_000_000;
    let with = |stem: &str, at: i64, started: i64, dropped: u64| Fact::Upload {
        client: "c1".into(),
        at,
        bytes: 1,
        stem: stem.into(),
        version: None,
        health: Some(UploadHealth {
            hours: vec![(at.div_euclid(3600), 1000, dropped)],
            starts: vec![started],
            stops: 0,
            last_mar: Some(at - 20),
            gaps: Vec::new(),
        }),
    };
    let mut l = Ledger::open(dir.path()).expect("open");
    let facts = [
        with("c1_a", t, t - 7200, 5),
        with("c1_b", t + 3600, t - 7200, 0),
        with("c1_c", t + 7200, t + 7000, 10),
    ];
    l.record(&facts).expect("record");
    // Recovery records the same facts again after a crash: nothing counts twice.
    l.record(&facts).expect("record again");
    let check = |l: &Ledger| {
        let h = &l.clients["c1"].health;
        assert_eq!((h.received, h.dropped), (3000, 15));
        assert_eq!(
            h.restarts, 1,
            "the first start is not a restart; t + 7000 is"
        );
        assert_eq!(h.clock_offset, Some(-20));
        assert_eq!(h.since((t + 7200).div_euclid(3600)), (1000, 10));
    };
    check(&l);
    l.compact().expect("compact");
    drop(l);
    check(&Ledger::load(dir.path()).expect("reload"));
}

/// Found by the `ledger` fuzz target: a log line whose chunk hash held a `,` was taken, and the
/// snapshot written from it could not be read back, losing the host at the next compaction.
#[test]
fn a_chunk_hash_that_is_not_hex_is_a_damaged_line() {
    let data = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fuzz/ledger-sha-with-comma.bin"
    ));
    let mut log = Vec::new();
    for body in data.split(|&b| b == b'\n') {
        push_line(&String::from_utf8_lossy(body), &mut log);
    }
    let ledger = Ledger::from_texts(b"", &log);
    let read = Ledger::from_texts(&ledger.snapshot(), b"");
    assert_eq!(read.hosts, ledger.hosts);
    assert_eq!(read.clients, ledger.clients);
    let mut line = Vec::new();
    push_line("C s1 2 c1 00,00", &mut line);
    assert_eq!(decode_line(&line), None);
    line.clear();
    push_line("C s1 2 c1 00000000000000aa", &mut line);
    assert!(decode_line(&line).is_some());
}

/// Found by the `ledger` fuzz target: a client's hourly byte count above `i64::MAX` was written
/// to the snapshot as the u64 it is but read back as an i64, so the client's line was refused
/// and the client vanished at the next compaction.
#[test]
fn hourly_counts_past_i64_survive_the_snapshot() {
    let data = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fuzz/ledger-bytes-past-i64.bin"
    ));
    let at = data.iter().position(|&b| b == 0).expect("a NUL");
    let sealed = |text: &[u8]| {
        let mut out = Vec::new();
        for body in text.split(|&b| b == b'\n') {
            push_line(&String::from_utf8_lossy(body), &mut out);
        }
        out
    };
    let ledger = Ledger::from_texts(&sealed(&data[..at]), &sealed(&data[at + 1..]));
    assert!(!ledger.clients.is_empty());
    let read = Ledger::from_texts(&ledger.snapshot(), b"");
    assert_eq!(read.hosts, ledger.hosts);
    assert_eq!(read.clients, ledger.clients);
}

/// Found by the `ledger` fuzz target: a host whose chunks came from the client id `-` (a valid
/// one) read back from the snapshot with no client, since `-` also stands for "none yet".
#[test]
fn a_client_named_dash_survives_the_snapshot() {
    let data = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fuzz/ledger-client-dash.bin"
    ));
    let mut log = Vec::new();
    for body in data.split(|&b| b == b'\n') {
        push_line(&String::from_utf8_lossy(body), &mut log);
    }
    let ledger = Ledger::from_texts(b"", &log);
    assert_eq!(ledger.hosts["s5"].client, "-");
    let read = Ledger::from_texts(&ledger.snapshot(), b"");
    assert_eq!(read.hosts, ledger.hosts);
    let mut line = Vec::new();
    push_line("C s1 2  00000000000000aa", &mut line);
    assert_eq!(decode_line(&line), None, "a chunk from no client");
}

/// Found by the `ledger` fuzz target: log lines whose byte counts add up past `u64::MAX` in one
/// hour overflowed the hour's counter (a panic in a build with overflow checks).
#[test]
fn hourly_counts_saturate() {
    let data = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fuzz/ledger-bytes-overflow.bin"
    ));
    let mut log = Vec::new();
    for body in data.split(|&b| b == b'\n') {
        push_line(&String::from_utf8_lossy(body), &mut log);
    }
    let ledger = Ledger::from_texts(b"", &log);
    let read = Ledger::from_texts(&ledger.snapshot(), b"");
    assert_eq!(read.clients, ledger.clients);
    let mut big = Vec::new();
    for stem in ["a", "b"] {
        push_line(&format!("U C 3 {} {stem}", u64::MAX - 1), &mut big);
    }
    let ledger = Ledger::from_texts(b"", &big);
    assert_eq!(ledger.clients["C"].hours[&0], (2, u64::MAX));
}
