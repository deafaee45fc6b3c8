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
