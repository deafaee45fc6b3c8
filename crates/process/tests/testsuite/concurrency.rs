//! Concurrent instances on one configuration (SPEC §4 step 1): one pass at a time. Three started
//! at once ingest every upload exactly once, and the two that find the lock taken exit 75 with a
//! clear message; with `--wait` a second instance waits for the first and then succeeds.

use crate::support;

use std::process::Child;
use std::time::Duration;

use argus_core::lock::{Contention, Lock};
use support::{Ledger, day_start, good_samples};
use test_support::server::{Server, spawn_piped, stderr, wait_within};

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(120);

const HOSTS: [&str; 3] = ["sensor1", "sensor2", "sensor3"];

/// A server with a backlog of `n` uploads over three hosts and two days; archives compressed
/// at gzip's slowest level, so that a pass takes a while.
fn server_with_backlog(n: usize) -> (Server, Ledger) {
    let server = Server::new();
    server.write_toml(
        &["client1", "client2"],
        "archive_days = 0\narchive_compression = \"gzip\"\narchive_compression_level = 9\n",
    );
    let samples = good_samples();
    let mut ledger = Ledger::default();
    for i in 0..n {
        let at = day_start(i64::try_from(i % 2).expect("small"))
            + time::Duration::hours(1)
            + time::Duration::seconds(5 * i64::try_from(i).expect("small"));
        let client = ["client1", "client2"][i % 2];
        ledger.write(
            &server,
            client,
            HOSTS[i % 3],
            at,
            &samples[i % samples.len()],
        );
    }
    (server, ledger)
}

fn spawn(server: &Server, args: &[&str]) -> Child {
    spawn_piped(server.command().args(args))
}

#[test]
fn three_instances_at_once_ingest_exactly_once() {
    let (server, ledger) = server_with_backlog(300);
    let children: Vec<Child> = (0..3).map(|_| spawn(&server, &[])).collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| wait_within(c, DEADLINE))
        .collect();
    let mut codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    codes.sort_unstable();
    let all_stderr: Vec<String> = outs.iter().map(stderr).collect();
    assert_eq!(
        codes,
        [0, 75, 75],
        "one pass wins, the others find the lock taken: {all_stderr:#?}"
    );
    for out in outs.iter().filter(|o| o.status.code() == Some(75)) {
        let err = stderr(out);
        assert!(
            err.contains("locked by another process"),
            "a loser says why: {err}"
        );
    }
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn wait_makes_a_second_instance_wait_then_succeed() {
    let (server, ledger) = server_with_backlog(20);
    std::fs::create_dir_all(server.state_dir()).expect("state dir");
    // Another instance, as far as process_argus can tell: it holds the lock.
    let held = Lock::acquire(server.state_dir().join("lock"), Contention::Fail).expect("lock");
    let mut waiting = spawn(&server, &["--wait"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().expect("try_wait").is_none(),
        "--wait waits for the lock"
    );
    for rec in &ledger.uploads {
        assert!(rec.intact(), "{}: nothing done while waiting", rec.stem);
    }
    // Without --wait, a third one gives up at once.
    let out = wait_within(spawn(&server, &[]), DEADLINE);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    drop(held);
    let out = wait_within(waiting, DEADLINE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn wait_behind_a_real_pass_then_nothing_is_done_twice() {
    let (server, ledger) = server_with_backlog(200);
    let mut first = spawn(&server, &[]);
    // The first holds the lock (it writes its pid there) before the others start.
    let lock = server.state_dir().join("lock");
    let holder = format!("pid {}", first.id());
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&holder))
        && first.try_wait().expect("try_wait").is_none()
        && start.elapsed() < DEADLINE
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = spawn(&server, &["--wait"]);
    let third = spawn(&server, &["--wait"]);
    for (name, child) in [("first", first), ("second", second), ("third", third)] {
        let out = wait_within(child, DEADLINE);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    }
    ledger.assert_exactly_once(&server, ".gz");
}

/// A pass keeps its open files within the process's limit, whatever the backlog: here 300
/// uploads of 300 hosts (a day file each) under a limit of 128 open files, soft and hard, as a
/// tightly configured service might have. Batches shrink to fit; everything is ingested once.
#[test]
fn a_backlog_larger_than_the_open_file_limit_is_ingested() {
    if !test_support::tools::have("prlimit") {
        return;
    }
    let server = Server::new();
    let config = server.write_toml(&["client1"], "archive_compression = \"gzip\"\n");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    for i in 0..300 {
        let at = day_start(0) + time::Duration::seconds(i64::try_from(i).expect("small"));
        ledger.write(
            &server,
            "client1",
            &format!("host{i}"),
            at,
            &samples[i % samples.len()],
        );
    }
    let child = spawn_piped(
        std::process::Command::new("prlimit")
            .arg("--nofile=128:128")
            .arg("--")
            .arg(test_support::bins::bin("process_argus"))
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
    );
    let out = wait_within(child, DEADLINE);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
}
