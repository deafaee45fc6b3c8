//! The WebJob server removes its `STEM.lck` just after writing `STEM.rdy`: until it has, the
//! group is left alone; a lock left by a server that died long ago does not hold it forever.

use std::fs::{self, File};
use std::time::{Duration, SystemTime};

use test_support::bins::sample;
use test_support::server::{Server, status, stderr};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

#[test]
fn a_group_whose_lock_is_still_there_waits_for_it() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let bytes = fs::read(sample("hostB.argus")).expect("sample");
    let locked = Upload::at("client1", OffsetDateTime::now_utc())
        .out(bytes.clone())
        .keep_lock()
        .write(&server.drop_dir())
        .expect("write");
    let lock = locked.path("lck");
    assert!(lock.exists());

    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(summary.contains("\"ingested\":0"), "{summary}");
    assert!(summary.contains("\"in_flight\":1"), "{summary}");
    assert!(
        locked.path("rdy").exists() && lock.exists(),
        "untouched while locked"
    );

    // The server removes its lock: the next pass takes the group.
    fs::remove_file(&lock).expect("unlock");
    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ingested\":1"));
    let day = fs::read_dir(server.oper_dir())
        .expect("oper dir")
        .flatten()
        .next()
        .expect("a day file");
    assert_eq!(fs::read(day.path()).expect("read"), bytes);
}

#[test]
fn a_stale_lock_does_not_hold_a_group_forever() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let written = Upload::at("client1", OffsetDateTime::now_utc())
        .out(fs::read(sample("hostC.argus")).expect("sample"))
        .keep_lock()
        .write(&server.drop_dir())
        .expect("write");
    let lock = written.path("lck");
    File::options()
        .write(true)
        .open(&lock)
        .expect("open lock")
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .expect("backdate the lock");

    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ingested\":1"));
    assert!(
        Server::files(&server.drop_dir()).is_empty(),
        "the group and its stale lock are gone"
    );
}
