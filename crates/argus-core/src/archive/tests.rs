//! Unit tests of the archive and its purge.

use super::*;
use time::macros::datetime;

#[cfg(feature = "gzip")]
fn decode_all(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    open_decoded(path)
        .expect("open")
        .read_to_end(&mut out)
        .expect("decode");
    out
}

#[test]
fn archive_errors_carry_the_os_reason_and_the_disk_full_hint() {
    // What publishing into a full archive disk returns.
    let e = CoreError::Io {
        op: "write",
        path: "/var/argus/archive/x.argus.gz".into(),
        source: io::Error::from_raw_os_error(nix::libc::ENOSPC),
    };
    let a = ArchiveError::from(e);
    assert!(a.is_disk_full());
    let text = crate::error_chain(&a);
    assert!(
        text.starts_with("cannot write /var/argus/archive/x.argus.gz: No space left on device"),
        "{text}"
    );
    assert!(text.contains("the disk is full"), "{text}");
}

fn host() -> Hostname {
    Hostname::new("sensor1").expect("host")
}

#[test]
#[cfg(feature = "gzip")]
fn archives_compressed_and_never_replaces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chunk = dir.path().join("chunk");
    std::fs::write(&chunk, b"chunk bytes").expect("write");
    let sha = crate::manifest::sha256(b"chunk bytes");
    let arc = dir.path().join("archive/sub");
    let cut = datetime!(2026-11-27 10:00:05 UTC);
    let codec = crate::codec::Compression::Gzip.codec();
    let first = archive(&chunk, &sha, &arc, &host(), cut, codec).expect("archive");
    let want = arc.join("sensor1_20261127100005.argus.gz");
    assert_eq!(first, Archived::New(want.clone()));
    assert_eq!(decode_all(&want), b"chunk bytes");
    // The same chunk again (a run that died before removing the staged chunk): recognised.
    assert_eq!(
        archive(&chunk, &sha, &arc, &host(), cut, codec).expect("again"),
        Archived::Already(want.clone())
    );
    // Another chunk cut in the same second: the next second's name, nothing replaced.
    std::fs::write(&chunk, b"other bytes").expect("write");
    let sha2 = crate::manifest::sha256(b"other bytes");
    let second = archive(&chunk, &sha2, &arc, &host(), cut, codec).expect("archive");
    assert_eq!(
        second,
        Archived::New(arc.join("sensor1_20261127100006.argus.gz"))
    );
    assert_eq!(decode_all(&want), b"chunk bytes");
}

#[test]
fn purges_only_this_hosts_old_archives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = datetime!(2026-11-27 12:00 UTC);
    for name in [
        "sensor1_20261101000000.argus.gz",
        "sensor1_20261126000000.argus.xz",
        "sensor10_20261101000000.argus.gz",
        "sensor1_notes.txt",
    ] {
        std::fs::write(dir.path().join(name), b"x").expect("write");
    }
    let policy = Policy {
        max_age_days: 7,
        ..Policy::default()
    };
    let removed = purge(dir.path(), &host(), &policy, now, &[])
        .expect("purge")
        .removed;
    assert_eq!(
        removed,
        [dir.path().join("sensor1_20261101000000.argus.gz")]
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 3);
    // Keep forever: nothing goes.
    let removed = purge(dir.path(), &host(), &Policy::default(), now, &[])
        .expect("purge")
        .removed;
    assert!(removed.is_empty());
}

#[test]
fn a_purge_removes_crash_leftovers_and_reports_a_surprising_cap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mib = 1 << 20;
    let now = OffsetDateTime::now_utc() + time::Duration::hours(2);
    let stamp = |hours_ago: i64| format_datetime(now - time::Duration::hours(hours_ago));
    let old = format!("sensor1_{}.argus", stamp(30));
    let fresh = format!("sensor1_{}.argus", stamp(0));
    std::fs::write(dir.path().join(&old), vec![0u8; 3 * mib]).expect("write");
    std::fs::write(dir.path().join(&fresh), vec![0u8; mib]).expect("write");
    std::fs::write(dir.path().join("sensor2_20261101000000.argus"), b"x").expect("write");
    // A temporary file a crashed archiving left, written over an hour before `now`.
    let leftover = dir.path().join(".argus-tmp.sensor1_x");
    std::fs::write(&leftover, b"partial").expect("write");
    // A cap of 3 MiB for 4 MiB of archives: the purge deletes the older one, most of the
    // archive, and says so; the fresh one stays.
    let policy = Policy {
        max_total_bytes: Some(3 * mib as u64),
        ..Policy::default()
    };
    let purged = purge(
        dir.path(),
        &host(),
        &policy,
        now,
        std::slice::from_ref(&fresh),
    )
    .expect("purge");
    assert_eq!(purged.removed, [dir.path().join(&old)]);
    assert_eq!(purged.leftovers, std::slice::from_ref(&leftover));
    assert!(!leftover.exists());
    let surprise = purged.surprise.expect("half of the archive goes");
    assert_eq!(surprise.fresh, 0);
    assert_eq!(surprise.deleted_bytes, 3 * mib as u64);
    assert_eq!(surprise.total_bytes, 4 * mib as u64);
    assert!(dir.path().join(&fresh).exists());
    assert!(dir.path().join("sensor2_20261101000000.argus").exists());
    // Nothing left to purge: no surprise either.
    let again = purge(dir.path(), &host(), &policy, now, &[]).expect("purge");
    assert_eq!(again, Purged::default());
}

#[test]
fn a_missing_archive_directory_has_nothing_to_purge() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = Policy {
        max_age_days: 1,
        ..Policy::default()
    };
    let purged = purge(
        &dir.path().join("none"),
        &host(),
        &policy,
        OffsetDateTime::now_utc(),
        &[],
    )
    .expect("purge");
    assert_eq!(purged, Purged::default());
}

#[test]
fn an_uncompressed_archive_is_recognised_by_its_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chunk = dir.path().join("chunk");
    std::fs::write(&chunk, b"chunk bytes").expect("write");
    let sha = crate::manifest::sha256(b"chunk bytes");
    let arc = dir.path().join("archive");
    let cut = datetime!(2026-11-27 10:00:05 UTC);
    let codec = crate::codec::Compression::None.codec();
    let first = archive(&chunk, &sha, &arc, &host(), cut, codec).expect("archive");
    assert_eq!(
        first,
        Archived::New(arc.join("sensor1_20261127100005.argus"))
    );
    assert_eq!(
        archive(&chunk, &sha, &arc, &host(), cut, codec).expect("again"),
        Archived::Already(arc.join("sensor1_20261127100005.argus"))
    );
    // A chunk that does not exist is a read error naming it, and leaves nothing behind.
    let other = crate::manifest::sha256(b"other bytes");
    let err =
        archive(&dir.path().join("none"), &other, &arc, &host(), cut, codec).expect_err("no chunk");
    assert!(matches!(err, ArchiveError::Read { .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(&arc).expect("ls").count(), 1);
}
