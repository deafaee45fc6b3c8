//! A full disk (SPEC §4.1, §5): the day files, the archives or the state (journal) on a small
//! tmpfs, a backlog larger than the space. The pass stops with exit 74 and a clear "disk is full"
//! message; no day file holds a partial chunk (each is its earlier content plus whole uploads,
//! and walks clean); nothing is lost (every upload is wholly in the dropzone, or in its day file
//! and the archive, exactly once). Once the space grows, the next run completes it all, exactly
//! once.
//!
//! Needs root to mount the tmpfs: skipped loudly otherwise, a failure under `CI=true`.

use crate::support;

use std::time::Duration;

use support::{Ledger, Tmpfs, day_name, day_start, good_samples, read};
use test_support::bins::sample;
use test_support::server::{Server, status, stderr};

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(120);

const HOSTS: [&str; 3] = ["sensor1", "sensor2", "sensor3"];

/// Writes `n` uploads over three hosts and three days (today, yesterday, five days ago), newer
/// than the `from` uploads written before.
fn backlog(server: &Server, ledger: &mut Ledger, from: usize, n: usize, big: bool) {
    let samples = good_samples();
    let large = [
        read(&sample("hostA.argus")),
        read(&sample("hostA+hostB.concat.argus")),
    ];
    for i in from..from + n {
        let host = HOSTS[i % HOSTS.len()];
        let days_ago = [0, 1, 5][(i / 3) % 3];
        let at = day_start(days_ago)
            + time::Duration::hours(1)
            + time::Duration::seconds(11 * i64::try_from(i).expect("small"));
        let bytes = if big {
            &large[i % large.len()]
        } else {
            &samples[i % samples.len()]
        };
        ledger.write(server, "client1", host, at, bytes);
    }
}

/// A pass that completes (exit 0) and leaves every upload exactly once.
fn clean_pass(server: &Server, ledger: &Ledger, suffix: &str) {
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));
    ledger.assert_exactly_once(server, suffix);
}

fn expect_disk_full(server: &Server, ledger: &Ledger, suffix: &str) {
    let out = server.run_within(&[], DEADLINE);
    let err = stderr(&out);
    assert_eq!(status(&out), 74, "a full disk is an I/O failure: {err}");
    assert!(
        err.contains("disk is full"),
        "the message says the disk is full: {err}"
    );
    let ingested = ledger.assert_consistent(server, suffix);
    assert!(
        ingested < ledger.uploads.len(),
        "the backlog cannot fit, yet all {ingested} uploads went in"
    );
}

#[test]
fn a_full_oper_disk_stops_the_pass_and_loses_nothing() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"gzip\"\narchive_compression_level = 1\n",
    );
    let Some(mount) = Tmpfs::mount(&server.oper_dir(), "2m", "", "day files on a full disk") else {
        return;
    };
    let mut ledger = Ledger::default();
    // A day compressed earlier: late data joins it as a new gzip member, on the full disk too.
    let old = day_name(HOSTS[0], day_start(5));
    ledger.existing_day(&server, &old, &read(&sample("hostB.argus")), Some("gzip"));

    // A first backlog fits.
    backlog(&server, &mut ledger, 0, 12, false);
    clean_pass(&server, &ledger, ".gz");

    // The next one does not: about 4 MiB for 2 MiB of space.
    backlog(&server, &mut ledger, 12, 90, true);
    expect_disk_full(&server, &ledger, ".gz");
    // Running again on a disk still full changes nothing for the worse.
    expect_disk_full(&server, &ledger, ".gz");

    mount.remount("size=64m");
    clean_pass(&server, &ledger, ".gz");
}

#[test]
fn a_full_archive_disk_stops_the_pass_and_loses_nothing() {
    let server = Server::new();
    // Uncompressed archives on another file system: each is a copy, as big as its upload.
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"none\"\n",
    );
    let Some(mount) = Tmpfs::mount(&server.archive_dir(), "2m", "", "archives on a full disk")
    else {
        return;
    };
    let mut ledger = Ledger::default();
    backlog(&server, &mut ledger, 0, 12, false);
    clean_pass(&server, &ledger, "");

    backlog(&server, &mut ledger, 12, 90, true);
    expect_disk_full(&server, &ledger, "");
    expect_disk_full(&server, &ledger, "");

    mount.remount("size=64m");
    clean_pass(&server, &ledger, "");
}

#[test]
fn a_full_disk_while_compressing_a_closed_day_keeps_the_plain_file() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\noper_compression = \"gzip\"\noper_compression_level = 1\n",
    );
    let Some(mount) = Tmpfs::mount(
        &server.oper_dir(),
        "1m",
        "",
        "compression of a closed day on a full disk",
    ) else {
        return;
    };
    // About 0.9 MiB for a day three days ago: it fits, but not with its compressed copy.
    let mut ledger = Ledger::default();
    let one = read(&sample("hostA.argus"));
    for i in 0..22 {
        let at = day_start(3) + time::Duration::minutes(i);
        ledger.write(&server, "client1", HOSTS[0], at, &one);
    }
    let out = server.run_within(&[], DEADLINE);
    let err = stderr(&out);
    assert_eq!(status(&out), 74, "{err}");
    assert!(err.contains("disk is full"), "{err}");
    // Everything is ingested, the day file stays plain and whole, no temporary file is left.
    ledger.assert_exactly_once(&server, ".gz");
    let day = day_name(HOSTS[0], day_start(3));
    assert_eq!(
        test_support::server::Server::files(&server.oper_dir()),
        [std::path::PathBuf::from(&day)]
    );

    mount.remount("size=64m");
    clean_pass(&server, &ledger, ".gz");
    assert_eq!(
        test_support::server::Server::files(&server.oper_dir()),
        [std::path::PathBuf::from(format!("{day}.gz"))],
        "compressed once there is room"
    );
}

/// Free bytes on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).expect("statvfs");
    st.blocks_available() * st.fragment_size()
}

#[test]
fn a_full_state_disk_stops_the_pass_and_loses_nothing() {
    // The journal lives in state_dir: when it is full, a batch cannot be journaled, and
    // nothing may be appended then. Exit 74 with the disk-full hint, nothing lost, and exactly
    // once when the space comes back.
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"gzip\"\narchive_compression_level = 1\n",
    );
    let Some(_mount) = Tmpfs::mount(&server.state_dir(), "1m", "", "state on a full disk") else {
        return;
    };
    let mut ledger = Ledger::default();
    backlog(&server, &mut ledger, 0, 12, false);
    clean_pass(&server, &ledger, ".gz");

    // Leave 8 KiB: less than the journal of the next batch needs.
    let filler = server.state_dir().join("filler");
    let room = free_bytes(&server.state_dir());
    std::fs::write(
        &filler,
        vec![0u8; usize::try_from(room - 8192).expect("small")],
    )
    .expect("fill");
    backlog(&server, &mut ledger, 12, 90, false);
    expect_disk_full(&server, &ledger, ".gz");
    expect_disk_full(&server, &ledger, ".gz");

    std::fs::remove_file(&filler).expect("make room");
    clean_pass(&server, &ledger, ".gz");
}
