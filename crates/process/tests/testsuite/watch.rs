//! `process_argus watch`, the dropzone daemon (SPEC §4, issue 6), end to end.
//!
//! - groups dropped one by one are each ingested soon after their `.rdy` lands, and one dropped
//!   while a large one is being ingested is not missed;
//! - events lost on purpose are made good by a rescan: groups placed before the start, groups
//!   moved in inside a directory (inotify reports the directory, never the files already in
//!   it), and an overflowed inotify queue (root: the kernel's queue limit lowered for the
//!   daemon's inotify instance, the daemon stopped while 40 groups land);
//! - SIGTERM and SIGINT end it with exit 0 within 5 s, between batches, nothing half done;
//! - kill -9 in the middle of an ingest (a failpoint, or from outside at random instants), then
//!   a restart: every upload exactly once;
//! - SIGHUP with a bad configuration keeps the old one; with a good one, takes it.
//!
//! "Soon" is only ever a generous deadline that catches a daemon that never gets to it: the
//! latency itself is measured by `cargo xtask bench --only f`, never asserted here.

#![allow(
    clippy::print_stderr,
    reason = "the random-kill test prints its seed; the overflow test says when it skips"
)]

use crate::support;

use std::fs;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Ledger, Rec, day_name, good_samples, read};
use test_support::server::{Daemon, Server, wait_until};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// How long a daemon may take to get to a group: generous, it only catches one that never does.
const PROMPTLY: Duration = Duration::from_secs(10);
/// How long a backlog or a large upload may take.
const BACKLOG: Duration = Duration::from_secs(60);
/// SIGTERM must end the daemon within this (issue 6).
const STOP: Duration = Duration::from_secs(5);

const QUEUE_LIMIT: &str = "/proc/sys/fs/inotify/max_queued_events";

/// Held while an inotify instance may be created with a lowered queue limit (the limit is read
/// when an instance is created), so that only the overflow test's daemon gets it.
static INOTIFY_LIMIT: Mutex<()> = Mutex::new(());

fn inotify_limit() -> MutexGuard<'static, ()> {
    INOTIFY_LIMIT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the daemon and waits until its inotify watch is set up.
fn start(server: &Server) -> Daemon {
    let mut daemon = {
        let _limit = inotify_limit();
        let mut daemon = server.spawn_watch(&[]);
        wait_for_watch(&mut daemon);
        daemon
    };
    assert!(daemon.running(), "the daemon runs:\n{}", daemon.log());
    daemon
}

fn wait_for_watch(daemon: &mut Daemon) {
    let watching = wait_until(PROMPTLY, || daemon.watching() || !daemon.running());
    assert!(
        watching && daemon.running(),
        "the daemon sets up its watch:\n{}",
        daemon.log()
    );
}

/// Asks the daemon to stop with `signal` and checks it exits 0 within 5 s.
fn stop_with(daemon: &mut Daemon, signal: Signal) {
    daemon.signal(signal);
    let status = daemon.wait_within(STOP);
    assert_eq!(
        status.code(),
        Some(0),
        "{signal} ends the daemon with exit 0 ({status}):\n{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("stopping on request"),
        "{}",
        daemon.log()
    );
}

fn stop(daemon: &mut Daemon) {
    stop_with(daemon, Signal::SIGTERM);
}

/// Ingested: archived and gone from the dropzone (the daemon removes `.rdy` last).
fn ingested(server: &Server, rec: &Rec) -> bool {
    let archived = ["", ".gz", ".bz2", ".xz"].iter().any(|suffix| {
        server
            .archive_dir()
            .join(format!("{}.out{suffix}", rec.stem))
            .exists()
    });
    !rec.any_part_left() && archived
}

/// Waits until every upload of `ledger` is ingested, failing with the daemon's log.
fn wait_ingested(server: &Server, ledger: &Ledger, daemon: &Daemon, deadline: Duration) {
    let done = wait_until(deadline, || {
        ledger.uploads.iter().all(|rec| ingested(server, rec))
    });
    let left: Vec<&str> = ledger
        .uploads
        .iter()
        .filter(|rec| !ingested(server, rec))
        .map(|rec| rec.stem.as_str())
        .collect();
    assert!(
        done,
        "not ingested within {deadline:?}: {left:?}; daemon log:\n{}",
        daemon.log()
    );
}

fn journal_len(server: &Server) -> u64 {
    argus_ingest::journal::FILES
        .iter()
        .map(|name| fs::metadata(server.state_dir().join(name)).map_or(0, |m| m.len()))
        .sum()
}

/// A server for the daemon: quick gzip archives, no retention.
fn server(clients: &[&str], extra: &str) -> Server {
    let server = Server::new();
    server.write_toml(
        clients,
        &format!("archive_days = 0\narchive_compression_level = 1\n{extra}"),
    );
    server
}

/// A recent upload time, `i` seconds after a base ten minutes ago.
fn recent(i: usize) -> OffsetDateTime {
    let base = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("second")
        - time::Duration::minutes(10);
    base + time::Duration::seconds(i64::try_from(i).expect("small"))
}

/// Writes the `i`-th upload of a simple stream: client1/sensor1 with a manifest (seq 1, 2, 3,
/// ... without a gap), every third one from client2/sensor2 without a manifest.
fn drop_one(server: &Server, ledger: &mut Ledger, i: usize) -> Rec {
    let samples = good_samples();
    let bytes = &samples[i % samples.len()];
    if i % 3 == 2 {
        ledger.write(server, "client2", "sensor2", recent(i), bytes)
    } else {
        let seq = u64::try_from(i - i / 3 + 1).expect("small");
        ledger.write_manifested(
            server,
            "client1",
            "sensor1",
            recent(i),
            &[],
            &[(seq, bytes)],
        )
    }
}

#[test]
fn groups_dropped_one_by_one_are_ingested_promptly() {
    let server = server(&["client1", "client2"], "");
    let mut daemon = start(&server);
    let mut ledger = Ledger::default();
    for i in 0..12 {
        let rec = drop_one(&server, &mut ledger, i);
        let done = wait_until(PROMPTLY, || ingested(&server, &rec));
        assert!(done, "{} was not ingested:\n{}", rec.stem, daemon.log());
    }
    // The ledger saw them while the daemon runs (status takes no lock).
    let out = server.run_within(&["status", "--json"], BACKLOG);
    let report =
        test_support::json::Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    let counted: u64 = report
        .get("clients")
        .items()
        .iter()
        .map(|c| c.get("uploads_24h").u64())
        .sum();
    assert_eq!(counted, 12, "{report:?}");
    assert_eq!(test_support::server::status(&out), 0, "{report:?}");
    stop(&mut daemon);
    assert_eq!(
        daemon
            .log()
            .lines()
            .filter(|l| l.contains("INFO ingested ") && l.contains(" for host "))
            .count(),
        12,
        "one ingest line per upload:\n{}",
        daemon.log()
    );
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn a_group_dropped_while_a_large_one_is_ingested_is_not_missed() {
    // bzip2 makes the large upload take seconds even on a fast machine, so the test can see the
    // daemon busy with it however loaded the machine is.
    let server = server(&["client1", "client2"], "archive_compression = \"bzip2\"\n");
    let mut daemon = start(&server);
    let mut ledger = Ledger::default();
    // 100 MiB of real argus records.
    let unit = read(&test_support::bins::sample("hostA.argus"));
    let big: Vec<u8> = unit.repeat((100 << 20) / unit.len() + 1);
    let large = ledger.write(&server, "client1", "bigsensor", recent(0), &big);
    drop(big);
    // Once the daemon is busy with it (its archive being written, or its batch journaled) ...
    let busy = wait_until(PROMPTLY, || {
        journal_len(&server) > 0
            || fs::read_dir(server.archive_dir()).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".argus-tmp"))
            })
    });
    assert!(busy, "the daemon takes the large upload:\n{}", daemon.log());
    // ... small ones land.
    let samples = good_samples();
    let small: Vec<Rec> = (1..4)
        .map(|i| ledger.write(&server, "client2", "sensor2", recent(i), &samples[i + 1]))
        .collect();
    assert!(
        large.any_part_left(),
        "the small uploads landed while the large one was still being ingested"
    );
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    for rec in &small {
        assert!(ingested(&server, rec), "{}", rec.stem);
    }
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".bz2");
}

#[test]
fn groups_placed_before_the_start_are_ingested_at_start() {
    let server = server(&["client1", "client2"], "");
    let mut ledger = Ledger::default();
    for i in 0..30 {
        drop_one(&server, &mut ledger, i);
    }
    let mut daemon = start(&server);
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".gz");
}

/// Writes a group of `client` into `staging/client` and moves that directory into the dropzone
/// with one `rename()`: inotify reports the directory arriving, never the files already in it
/// (notify adds a watch on the new directory, which reports only what happens from then on), so
/// no `.rdy` event ever names this group. Only a rescan can find it.
fn move_in_unseen(server: &Server, ledger: &mut Ledger, client: &str, i: usize) -> Rec {
    let staging = server.root.path().join(format!("staging{i}"));
    let bytes = good_samples()[i % 6 + 1].clone();
    let at = recent(100 + i);
    let written = Upload::at(client, at)
        .out(bytes.clone())
        .hostname("sensor9")
        .in_subdir(client)
        .write(&staging)
        .expect("write");
    let dest = server.drop_dir().join(client);
    fs::rename(staging.join(client), &dest).expect("move the directory in");
    let rec = Rec {
        stem: written.stem,
        dir: dest,
        bytes: bytes.clone(),
        appended: bytes,
        at,
        day: day_name("sensor9", at),
    };
    ledger.uploads.push(rec.clone());
    rec
}

#[test]
fn groups_inotify_cannot_see_are_found_by_the_periodic_rescan() {
    // First, that the event path is truly blind to them: with the default rescan_interval
    // (60 s), a group moved in inside a directory is still there well after groups dropped
    // normally are ingested.
    let server1 = server(&["client1", "client2", "client3"], "");
    let mut daemon = start(&server1);
    let mut ledger = Ledger::default();
    // Once a group dropped now is ingested, the start's rescan is behind us.
    let seen = drop_one(&server1, &mut ledger, 0);
    assert!(wait_until(PROMPTLY, || ingested(&server1, &seen)));
    let unseen = move_in_unseen(&server1, &mut ledger, "client3", 0);
    let seen = drop_one(&server1, &mut ledger, 1);
    assert!(wait_until(PROMPTLY, || ingested(&server1, &seen)));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        unseen.intact(),
        "no event names a group moved in inside its directory:\n{}",
        daemon.log()
    );
    stop(&mut daemon);
    drop(ledger);

    // With rescan_interval = "2s", the periodic rescan finds such groups.
    let server2 = server(
        &["client1", "client2", "client3"],
        "rescan_interval = \"2s\"\n",
    );
    let mut daemon = start(&server2);
    let mut ledger = Ledger::default();
    // Once a group dropped now is ingested, the start's rescan is behind us: only a periodic
    // one can find the groups moved in next.
    let first = drop_one(&server2, &mut ledger, 0);
    assert!(wait_until(PROMPTLY, || ingested(&server2, &first)));
    for (i, client) in ["client3", "client2"].into_iter().enumerate() {
        let rec = move_in_unseen(&server2, &mut ledger, client, i + 1);
        let done = wait_until(PROMPTLY, || ingested(&server2, &rec));
        assert!(done, "{} was not found:\n{}", rec.stem, daemon.log());
    }
    stop(&mut daemon);
    ledger.assert_exactly_once(&server2, ".gz");
}

/// Restores the kernel's inotify queue limit when dropped.
struct QueueLimit {
    old: String,
}

impl QueueLimit {
    fn lower(to: u32) -> QueueLimit {
        let old = fs::read_to_string(QUEUE_LIMIT).expect("read the inotify queue limit");
        fs::write(QUEUE_LIMIT, to.to_string()).expect("lower the inotify queue limit");
        QueueLimit {
            old: old.trim().to_owned(),
        }
    }
}

impl Drop for QueueLimit {
    fn drop(&mut self) {
        let _ignored = fs::write(QUEUE_LIMIT, &self.old);
    }
}

#[test]
fn an_overflowed_event_queue_is_caught_by_the_rescan() {
    if !test_support::tools::root("lowers the kernel's inotify queue limit for the daemon") {
        return;
    }
    if fs::metadata(QUEUE_LIMIT).is_err() {
        assert!(
            !test_support::tools::in_ci(),
            "{QUEUE_LIMIT} is required under CI"
        );
        eprintln!("SKIPPED: no {QUEUE_LIMIT}");
        return;
    }
    // No periodic rescan within the test: only the overflow can trigger one.
    let server = server(&["client1", "client2"], "rescan_interval = \"1h\"\n");
    // The kernel reads the limit when an inotify instance is created: lowered while the daemon
    // starts, restored as soon as its watch is set up.
    let mut daemon = {
        let _only_this_daemon = inotify_limit();
        let _limit = QueueLimit::lower(16);
        let mut daemon = server.spawn_watch(&[]);
        wait_for_watch(&mut daemon);
        daemon
    };
    // Once a group dropped now is ingested, the start's rescan is behind us.
    let mut ledger = Ledger::default();
    let first = drop_one(&server, &mut ledger, 0);
    assert!(
        wait_until(PROMPTLY, || ingested(&server, &first)),
        "{}",
        daemon.log()
    );
    // Stopped, the daemon reads no event while 40 groups land: hundreds of events for a queue
    // of 16.
    daemon.signal(Signal::SIGSTOP);
    for i in 1..41 {
        drop_one(&server, &mut ledger, i);
    }
    daemon.signal(Signal::SIGCONT);
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    assert!(
        daemon.log().contains("the event queue overflowed"),
        "the overflow is reported:\n{}",
        daemon.log()
    );
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn sigterm_and_sigint_stop_between_batches_with_nothing_half_done() {
    // SIGINT on an idle daemon.
    let idle = server(&["client1"], "");
    let mut daemon = start(&idle);
    stop_with(&mut daemon, Signal::SIGINT);

    // SIGTERM while a backlog is being ingested, in batches of up to 256 uploads, archives
    // at gzip's slowest level so that the daemon is busy for a while.
    let server = Server::new();
    server.write_toml(
        &["client1", "client2"],
        "archive_days = 0\narchive_compression_level = 9\n",
    );
    let mut ledger = Ledger::default();
    for i in 0..900 {
        drop_one(&server, &mut ledger, i);
    }
    let mut daemon = start(&server);
    let busy = wait_until(BACKLOG, || {
        journal_len(&server) > 0 || ledger.uploads.iter().any(|r| !r.any_part_left())
    });
    assert!(busy, "the daemon starts on the backlog:\n{}", daemon.log());
    let asked = Instant::now();
    stop(&mut daemon);
    let took = asked.elapsed();
    assert_eq!(journal_len(&server), 0, "no batch left half done");
    // Every upload is wholly ingested or wholly untouched.
    let done = ledger.assert_consistent(&server, ".gz");
    eprintln!("SIGTERM: stopped in {took:?} with {done} of 900 uploads ingested");

    // A restart finishes the rest.
    let mut daemon = start(&server);
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".gz");
}

/// A small PRNG for the kill instants; seeded, and the seed printed, so a failure replays.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn kill_9_mid_ingest_and_a_restart_give_exactly_once() {
    let server = Server::new();
    server.write_toml(&["client1", "client2"], "archive_days = 0\n");
    let mut ledger = Ledger::default();
    let samples = good_samples();
    // A backlog, with a chunk shipped again in front of a new one.
    for i in 0..40 {
        drop_one(&server, &mut ledger, i);
    }
    // (sensor3 by client2, at times no upload of client2 has: 40 and 43.)
    ledger.write_manifested(
        &server,
        "client2",
        "sensor3",
        recent(40),
        &[],
        &[(1, &samples[5])],
    );
    ledger.write_manifested(
        &server,
        "client2",
        "sensor3",
        recent(43),
        &[(1, &samples[5])],
        &[(2, &samples[2])],
    );

    // (1) The daemon kills itself in the middle of appending its start's batch.
    let mut daemon = server.spawn_watch(&[("ARGUS_WEBJOB_FAILPOINT", "appended:3")]);
    let status = daemon.wait_within(BACKLOG);
    assert!(
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
        "the failpoint killed it ({status}):\n{}",
        daemon.log()
    );
    drop(daemon);

    // (2) Restarted, it dies again while removing groups that arrive one by one.
    let mut daemon = server.spawn_watch(&[("ARGUS_WEBJOB_FAILPOINT", "removed:45")]);
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    let mut i = 40;
    let died = wait_until(BACKLOG, || {
        if !daemon.running() {
            return true;
        }
        drop_one(&server, &mut ledger, i);
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
        false
    });
    assert!(died, "the failpoint killed it:\n{}", daemon.log());
    drop(daemon);

    // (3) kill -9 from outside at random instants while it works through a growing backlog.
    let seed = std::env::var("PROCESS_WATCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::from(std::process::id())
                ^ OffsetDateTime::now_utc().unix_timestamp().unsigned_abs()
                ^ u64::from(OffsetDateTime::now_utc().nanosecond())
        })
        | 1;
    eprintln!("kill -9 instants: PROCESS_WATCH_SEED={seed}");
    let mut rng = seed;
    for _ in 0..6 {
        for _ in 0..25 {
            drop_one(&server, &mut ledger, i);
            i += 1;
        }
        let mut daemon = server.spawn_watch(&[]);
        std::thread::sleep(Duration::from_millis(xorshift(&mut rng) % 400));
        daemon.signal(Signal::SIGKILL);
        let _killed = daemon.wait_within(PROMPTLY);
    }

    // A clean restart: everything exactly once.
    let mut daemon = start(&server);
    wait_ingested(&server, &ledger, &daemon, BACKLOG);
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".gz");
    let out = server.run_within(&["status", "--json"], BACKLOG);
    let report =
        test_support::json::Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    for c in report.get("clients").items() {
        assert_eq!(c.get("missing_chunks").u64(), 0, "no false gap: {c:?}");
    }
    assert_eq!(
        report
            .get("clients")
            .items()
            .iter()
            .map(|c| c.get("duplicates").u64())
            .sum::<u64>(),
        1,
        "the one reshipped chunk: {report:?}"
    );
}

#[test]
fn sighup_keeps_the_old_config_when_the_new_is_bad_and_takes_a_good_one() {
    let server = server(&["client1"], "");
    let config = server.root.path().join("etc/process_argus.toml");
    let good_text = fs::read_to_string(&config).expect("config");
    let mut daemon = start(&server);
    let mut ledger = Ledger::default();
    let samples = good_samples();
    let rec = ledger.write(&server, "client1", "sensor1", recent(0), &samples[1]);
    assert!(wait_until(PROMPTLY, || ingested(&server, &rec)));

    // A bad configuration: reported, the old one kept, the daemon goes on.
    // Settings without their units are refused too, with the spellings they could have meant.
    for (bad, said) in [
        ("clients = [\n".to_owned(), "not valid TOML"),
        (
            good_text.replace("clients = [", "rescan_interval = \"0s\"\nclients = ["),
            "rescan_interval must be at least 1s",
        ),
        (
            good_text.replace(
                "clients = [",
                "archive_max_size = \"2M\"\narchive_low_watermark = 90\nclients = [",
            ),
            "archive_low_watermark = 90: a bare number has no unit: write \"90%\"",
        ),
        (
            good_text.replace("clients = [", "stale_after = \"2\"\nclients = ["),
            "stale_after = \"2\": a bare number has no unit",
        ),
        (
            good_text.replace("clients = [", "archive_max_size = 2\nclients = ["),
            "archive_max_size = 2: a bare number has no unit",
        ),
    ] {
        fs::write(&config, bad).expect("write a bad config");
        let before = daemon.log().matches("keeping the old one").count();
        daemon.signal(Signal::SIGHUP);
        let reported = wait_until(PROMPTLY, || {
            daemon.log().matches("keeping the old one").count() > before
        });
        assert!(reported, "the bad config is reported:\n{}", daemon.log());
        assert!(
            daemon.log().contains(said),
            "{said:?} in:\n{}",
            daemon.log()
        );
        assert!(daemon.running(), "{}", daemon.log());
    }
    let rec = ledger.write(&server, "client1", "sensor1", recent(1), &samples[2]);
    assert!(
        wait_until(PROMPTLY, || ingested(&server, &rec)),
        "the old configuration still works:\n{}",
        daemon.log()
    );
    // client2 is not configured yet: its upload waits.
    let waiting = Upload::at("client2", recent(2))
        .out(samples[3].clone())
        .hostname("sensor2")
        .write(&server.drop_dir())
        .expect("write");

    // A good one: client2 is added, and its waiting upload is taken at once.
    server.write_toml(
        &["client1", "client2"],
        "archive_days = 0\narchive_compression_level = 1\n",
    );
    daemon.signal(Signal::SIGHUP);
    let reloaded = wait_until(PROMPTLY, || {
        daemon.log().contains("reloaded the configuration")
    });
    assert!(reloaded, "{}", daemon.log());
    let ingested_too = wait_until(PROMPTLY, || {
        !waiting.path("rdy").exists() && !waiting.path("out").exists()
    });
    assert!(ingested_too, "client2 is taken:\n{}", daemon.log());
    ledger.uploads.push(Rec {
        stem: waiting.stem.clone(),
        dir: waiting.dir.clone(),
        bytes: samples[3].clone(),
        appended: samples[3].clone(),
        at: recent(2),
        day: day_name("sensor2", recent(2)),
    });
    stop(&mut daemon);
    ledger.assert_exactly_once(&server, ".gz");
}
