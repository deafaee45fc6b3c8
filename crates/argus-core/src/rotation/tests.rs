//! Unit tests of the rotation: names, the counter, the settle rule, shipping.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;

use super::stage::SEQ_LINE;
use super::*;

#[test]
fn staged_names_round_trip_and_foreign_names_are_ignored() {
    let stage = Stage::new(Path::new("/var/argus/argus.out"));
    let cut = datetime!(2026-11-27 10:00:05 UTC);
    let path = stage.staged_path(42, cut);
    assert_eq!(
        path,
        PathBuf::from("/var/argus/argus.out.staged.42.20261127100005")
    );
    let name = path.file_name().expect("name");
    assert_eq!(stage.parse_name(name), Some((42, cut)));
    for foreign in [
        "argus.out",
        "argus.out.seq",
        "argus.out.staged.x.20261127100005",
        "argus.out.staged.42.2026112710000",
        "argus.out.staged.42.20261327100005",
        "argus.out.staged..20261127100005",
        "argus.out.staged.99999999999999999999.20261127100005",
        "other.out.staged.42.20261127100005",
    ] {
        assert_eq!(stage.parse_name(OsStr::new(foreign)), None, "{foreign}");
    }
}

#[test]
fn the_counter_is_sealed_and_a_hand_written_number_is_taken() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = Stage::new(&dir.path().join("argus.out"));
    stage.commit_seq(41).expect("commit");
    let written = fs::read_to_string(stage.seq_path()).expect("read");
    assert_eq!(
        SEQ_LINE.unseal_str(written.as_bytes()),
        Some("41"),
        "{written:?}"
    );
    // An operator's repair: a bare number, with or without a newline.
    for text in ["57\n", "57", " 57 \n"] {
        fs::write(stage.seq_path(), text).expect("write");
        assert_eq!(stage.last_seq().expect(text), 57);
    }
    // A sealed line edited by hand (or damaged) is refused, never read as 0 or as 42.
    fs::write(stage.seq_path(), written.replace("41", "42")).expect("write");
    let err = stage.last_seq().expect_err("edited");
    assert!(matches!(err, StateError::BadCounter { .. }), "{err:?}");
    assert!(err.to_string().contains("damaged"), "{err}");
    fs::write(stage.seq_path(), "").expect("write");
    assert!(stage.last_seq().is_err(), "an empty counter is not 0");
}

#[test]
fn sequence_numbers_never_repeat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = Stage::new(&dir.path().join("argus.out"));
    assert_eq!(stage.last_seq().expect("fresh"), 0);
    assert_eq!(stage.next_seq(&[]).expect("next"), 1);
    stage.commit_seq(5).expect("commit");
    assert_eq!(stage.last_seq().expect("read"), 5);
    stage.commit_seq(3).expect("never lowers");
    assert_eq!(stage.last_seq().expect("read"), 5);
    // A chunk staged with a number the counter does not know yet (a crash between the
    // rename and the counter update) still pushes the next number past it.
    let cut = OffsetDateTime::UNIX_EPOCH;
    let staged = stage.staged_path(9, cut);
    fs::write(&staged, b"x").expect("write");
    fs::create_dir(stage.staged_path(10, cut)).expect("a directory is not a chunk");
    let list = stage.list().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].seq, 9);
    assert_eq!(stage.next_seq(&list).expect("next"), 10);
    fs::write(stage.seq_path(), "garbage").expect("write");
    assert!(stage.last_seq().is_err());
    assert_eq!(
        fs::read_dir(dir.path()).expect("ls").count(),
        3,
        "no temporary files left"
    );
}

const S: Duration = Duration::from_secs(1);

fn obs(
    since: Duration,
    recreated: bool,
    holders: Option<usize>,
    unchanged: Duration,
) -> Observation {
    Observation {
        since_rename: since,
        recreated,
        holders,
        unchanged_for: unchanged,
    }
}

#[test]
fn recreated_or_released_is_final_at_once() {
    assert_eq!(
        judge(&obs(Duration::ZERO, true, Some(1), Duration::ZERO), QUIET),
        Some(Final::Recreated)
    );
    assert_eq!(
        judge(&obs(Duration::ZERO, false, Some(0), Duration::ZERO), QUIET),
        Some(Final::Released)
    );
}

#[test]
fn a_held_chunk_waits_for_two_quiet_seconds() {
    assert_eq!(judge(&obs(S, false, Some(1), S), QUIET), None);
    assert_eq!(
        judge(&obs(2 * S, false, Some(1), 2 * S), QUIET),
        Some(Final::Quiet)
    );
    // Written to 1 s ago: not yet, even 5 s after the rename.
    assert_eq!(judge(&obs(5 * S, false, Some(1), S), QUIET), None);
    // Unknown holders (no permission to look) fall back to the same timing rule.
    assert_eq!(judge(&obs(S, false, None, S), QUIET), None);
    assert_eq!(
        judge(&obs(3 * S, false, None, 3 * S), QUIET),
        Some(Final::Quiet)
    );
}

fn mar() -> Vec<u8> {
    let mut m = vec![0u8; 128];
    m[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
    m[8..12].copy_from_slice(&crate::record::ARGUS_V3_COOKIE.to_be_bytes());
    m
}

#[test]
fn copies_hashes_and_walks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chunk = dir.path().join("c");
    std::fs::write(&chunk, mar()).expect("write");
    let mut out = Vec::new();
    let shipped = ship(&chunk, &mut out).expect("ship");
    assert_eq!(out, mar());
    assert_eq!(shipped.bytes, 128);
    assert_eq!(shipped.sha256, crate::manifest::sha256(&mar()));
    assert!(shipped.report.is_clean());
    assert_eq!(shipped.report.records, 1);
}

struct Broken;
impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_broken_stdout_is_a_write_error_and_a_missing_chunk_a_read_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chunk = dir.path().join("c");
    std::fs::write(&chunk, mar()).expect("write");
    let err = ship(&chunk, &mut Broken).expect_err("broken");
    assert!(matches!(err, ShipError::Write(_)));
    assert!(err.to_string().contains("broken pipe"));
    let err = ship(&dir.path().join("none"), &mut Vec::new()).expect_err("missing");
    assert!(matches!(err, ShipError::Read { .. }));
}

/// A writer that behaves as argus does towards its output file: it keeps writing through the
/// descriptor it holds, and at each "second" (here every few milliseconds) it checks whether
/// its path is still there; when it is gone, it closes the renamed file and creates the path
/// anew. Every record is an 8-byte big-endian counter, so that loss, repetition and reordering
/// all show.
struct FakeWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl FakeWriter {
    fn start(output: &Path) -> FakeWriter {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, flag) = (output.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            let open = || fs::File::create_new(&path).expect("create the output");
            let mut file = open();
            let mut next = 0u64;
            while !flag.load(Ordering::SeqCst) {
                for _ in 0..16 {
                    file.write_all(&next.to_be_bytes()).expect("write");
                    next += 1;
                }
                std::thread::sleep(Duration::from_millis(3));
                // The check of a new second: the path gone means a cut.
                if !path.exists() {
                    file = open();
                }
            }
            next
        });
        FakeWriter {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the writer; returns how many records it wrote.
    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().expect("running").join().expect("writer")
    }
}

fn counters(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(bytes.len() % 8, 0, "whole records only");
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

#[test]
fn a_live_file_is_rotated_without_loss_or_repetition() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("argus.out");
    let archive_dir = dir.path().join("archive");
    let host = crate::host::Hostname::new("sensor1").expect("host");
    let writer = FakeWriter::start(&output);
    let stage = Stage::new(&output);
    let mut out = Vec::new();
    let mut manifests = Vec::new();
    let mut delivery = Delivery::new(
        stage.clone(),
        host,
        archive_dir.clone(),
        crate::codec::Compression::None.codec(),
        &mut out,
        &mut manifests,
    );
    let mut delivered = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(40));
        let cut = stage
            .cut(OffsetDateTime::now_utc())
            .expect("cut")
            .expect("the writer re-created its file");
        cut.counted.expect("counted");
        let done = delivery
            .deliver(&cut.chunk, cut.renamed.elapsed(), &mut Unknown)
            .expect("delivered");
        assert_eq!(done.settled.why, Final::Recreated);
        assert!(!done.chunk.path.exists(), "a delivered chunk is removed");
        delivered.push(done);
    }
    let written = writer.stop();
    assert_eq!(
        delivered.iter().map(|d| d.chunk.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(stage.last_seq().expect("counter"), 3);
    // What was shipped, then what is still in the live file, is every record once, in order.
    let mut all = out.clone();
    all.extend(fs::read(&output).expect("the live file"));
    assert_eq!(counters(&all), (0..written).collect::<Vec<_>>());
    // Each chunk is archived as it was shipped, and announced by its manifest line.
    let mut archived = Vec::new();
    for done in &delivered {
        let crate::archive::Archived::New(path) = &done.archived else {
            panic!("a new archive: {:?}", done.archived);
        };
        archived.extend(fs::read(path).expect("archive"));
    }
    assert_eq!(archived, out);
    let manifests = String::from_utf8(manifests).expect("text");
    assert_eq!(manifests.lines().count(), 3, "{manifests}");
    assert!(
        manifests.lines().all(|l| l.contains("sensor1")),
        "{manifests}"
    );
}

#[test]
fn a_crash_between_rename_and_counter_repeats_no_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("argus.out");
    let stage = Stage::new(&output);
    fs::write(&output, b"first").expect("write");
    let first = stage
        .cut(OffsetDateTime::now_utc())
        .expect("cut")
        .expect("cut");
    first.counted.expect("counted");
    assert_eq!(first.chunk.seq, 1);
    // A run killed right after its rename: the chunk is staged under 2, the counter still
    // says 1, and a temporary file of the counter's replacement may be left.
    let cut = datetime!(2026-11-27 10:00:05 UTC);
    fs::write(stage.staged_path(2, cut), b"second").expect("stage");
    fs::write(dir.path().join(".argus-tmp.seq"), b"9 torn").expect("leftover");
    assert_eq!(stage.last_seq().expect("counter"), 1);
    // The next run (a new Stage, as a new process has) lists both, oldest first, with their
    // own numbers, and the next cut counts past the staged one.
    let next_run = Stage::new(&output);
    let staged = next_run.list().expect("list");
    assert_eq!(
        staged.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2],
        "{staged:?}"
    );
    assert_eq!(staged[1].cut, cut);
    fs::write(&output, b"third").expect("write");
    let third = next_run
        .cut(OffsetDateTime::now_utc())
        .expect("cut")
        .expect("cut");
    third.counted.expect("counted");
    assert_eq!(third.chunk.seq, 3);
    assert_eq!(next_run.last_seq().expect("counter"), 3);
    // A leftover keeps its number when it is delivered, and the counter never goes down.
    let mut out = Vec::new();
    let mut manifests = Vec::new();
    let mut delivery = Delivery::new(
        next_run.clone(),
        crate::host::Hostname::new("sensor1").expect("host"),
        dir.path().join("archive"),
        crate::codec::Compression::None.codec(),
        &mut out,
        &mut manifests,
    );
    let done = delivery
        .deliver(
            &staged[1],
            staged[1].renamed_ago(std::time::SystemTime::now()),
            &mut Unknown,
        )
        .expect("delivered");
    assert_eq!(done.chunk.seq, 2);
    assert_eq!(out, b"second");
    assert_eq!(next_run.last_seq().expect("counter"), 3);
}

#[test]
fn a_chunk_archived_before_a_crash_is_recognised_and_nothing_follows_a_failed_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("argus.out");
    let archive_dir = dir.path().join("archive");
    let stage = Stage::new(&output);
    let cut = datetime!(2026-11-27 10:00:05 UTC);
    for (seq, bytes) in [(7, &b"seventh"[..]), (8, b"eighth")] {
        fs::write(stage.staged_path(seq, cut), bytes).expect("stage");
    }
    let staged = stage.list().expect("list");
    let host = crate::host::Hostname::new("sensor1").expect("host");
    let codec = crate::codec::Compression::None.codec();
    // A run killed after archiving chunk 7 and before removing it.
    let sha = crate::manifest::sha256(b"seventh");
    crate::archive::archive(&staged[0].path, &sha, &archive_dir, &host, cut, codec)
        .expect("archive");
    let mut manifests = Vec::new();
    let mut broken = Broken;
    let mut delivery = Delivery::new(
        stage.clone(),
        host.clone(),
        archive_dir.clone(),
        codec,
        &mut broken,
        &mut manifests,
    );
    // The output refuses the bytes: chunk 7 stays staged, and chunk 8 is not even tried.
    let err = delivery
        .deliver(&staged[0], Duration::from_secs(60), &mut Unknown)
        .expect_err("broken");
    assert!(matches!(err, DeliveryError::Ship { seq: 7, .. }), "{err:?}");
    let err = delivery
        .deliver(&staged[1], Duration::from_secs(60), &mut Unknown)
        .expect_err("after a failed write");
    assert!(
        matches!(err, DeliveryError::OutFailed { seq: 8 }),
        "{err:?}"
    );
    assert_eq!(stage.list().expect("list").len(), 2, "both stay staged");
    assert!(manifests.is_empty());
    // The next run ships chunk 7 again and finds it archived already.
    let mut out = Vec::new();
    let mut delivery = Delivery::new(
        stage.clone(),
        host,
        archive_dir.clone(),
        codec,
        &mut out,
        &mut manifests,
    );
    let done = delivery
        .deliver(&staged[0], Duration::from_secs(60), &mut Unknown)
        .expect("delivered");
    assert_eq!(
        done.archived,
        crate::archive::Archived::Already(archive_dir.join("sensor1_20261127100005.argus"))
    );
    assert_eq!(out, b"seventh");
    assert_eq!(stage.list().expect("list").len(), 1);
}

#[test]
fn the_legacy_file_is_adopted_with_a_new_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = Stage::new(&dir.path().join("argus.out"));
    assert!(
        stage
            .adopt_legacy(OffsetDateTime::now_utc())
            .expect("none")
            .is_none()
    );
    stage.commit_seq(4).expect("counter");
    fs::write(stage.legacy_path(), b"left by the script").expect("write");
    let chunk = stage
        .adopt_legacy(OffsetDateTime::now_utc())
        .expect("adopt")
        .expect("adopted");
    assert_eq!(chunk.seq, 5);
    assert_eq!(fs::read(&chunk.path).expect("read"), b"left by the script");
    assert!(!stage.legacy_path().exists());
    assert_eq!(stage.last_seq().expect("counter"), 5);
}

#[test]
fn a_missing_or_odd_output_is_not_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("argus.out");
    let stage = Stage::new(&output);
    assert!(
        stage
            .cut(OffsetDateTime::now_utc())
            .expect("nothing")
            .is_none()
    );
    fs::create_dir(&output).expect("mkdir");
    let err = stage
        .cut(OffsetDateTime::now_utc())
        .expect_err("a directory");
    assert!(matches!(err, CutError::NotAFile { .. }), "{err:?}");
    fs::remove_dir(&output).expect("rmdir");
    fs::write(&output, b"x").expect("write");
    fs::write(stage.seq_path(), "garbage").expect("write");
    let err = stage.cut(OffsetDateTime::now_utc()).expect_err("no number");
    assert!(matches!(err, CutError::Counter(_)), "{err:?}");
    assert!(output.exists(), "not cut without a number");
}
