//! Crash safety of process_argus (SPEC §4.1): after `kill -9` at any instant, the next run leaves
//! every upload's bytes exactly once in its day file and exactly once in the archive.
//!
//! (a) Deterministic: the process kills itself (SIGKILL) at the N-th hit of a failpoint at each
//! step boundary of a batch (`ARGUS_WEBJOB_FAILPOINT=NAME:N`), over a backlog of several hosts
//! and days that includes a day already compressed (late data joins it as a new member); once
//! with compressed archives, once with `archive_compression = "none"` on the same file system
//! (archives are renames). Then a clean run, then the exactly-once checks.
//!
//! (b) Random: `kill -9` from outside after a random delay, many times over a growing backlog,
//! then a clean run. The PRNG is seeded per iteration and the seed printed, so a failure can be
//! replayed with `PROCESS_CRASH_SEED=N`.

#![allow(
    clippy::print_stderr,
    reason = "the random test prints its seeds and where each kill landed"
)]

use crate::support;

use std::process::{Output, Stdio};
use std::time::Duration;

use support::{Ledger, day_name, day_start, ended, good_samples, killed};
use test_support::server::{Server, spawn_piped, stderr, wait_within};
use webjob_drop::fixture::Upload;

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(60);

const CLIENTS: [&str; 3] = ["client1", "site_a", "client10"];
const HOSTS: [&str; 3] = ["sensor1", "sensor2", "sensor-3.example"];
/// Days ago: today, yesterday (open), three days ago (closed: compressed at the end of a
/// pass), five days ago (already compressed before the test).
const DAYS: [i64; 4] = [0, 1, 3, 5];

/// A server configured for the scenario, with the compressed day file of five days ago.
struct Scenario {
    server: Server,
    ledger: Ledger,
    archive_suffix: &'static str,
    /// Uploads written so far (drives names and times, which only grow).
    written: usize,
    /// Per sensor: the last chunk shipped with a manifest (seq, bytes, upload time).
    last_chunk: std::collections::BTreeMap<&'static str, (u64, Vec<u8>, time::OffsetDateTime)>,
}

impl Scenario {
    /// `moves`: no archive compression, so archives are renames from the dropzone; otherwise
    /// gzip archives, written to temporary files and published in a batch.
    fn new(moves: bool) -> Scenario {
        let server = Server::new();
        let (archive, oper, suffix) = if moves {
            ("none", "xz", "")
        } else {
            ("gzip", "gzip", ".gz")
        };
        server.write_toml(
            &CLIENTS,
            &format!(
                "archive_compression = \"{archive}\"\narchive_compression_level = 1\noper_compression = \"{oper}\"\noper_compression_level = 1\narchive_days = 0\n"
            ),
        );
        let mut ledger = Ledger::default();
        let old = day_name(HOSTS[0], day_start(5));
        let earlier = &good_samples()[4];
        ledger.existing_day(&server, &old, earlier, Some(oper));
        Scenario {
            server,
            ledger,
            archive_suffix: suffix,
            written: 0,
            last_chunk: std::collections::BTreeMap::new(),
        }
    }

    /// Writes `n` more uploads, spread over clients, hosts and days, newer than all before;
    /// every ninth is empty, and with `bad`, every thirteenth damaged (to be quarantined). Most
    /// carry a chunk manifest (as harvest_argus writes them), a quarter do not (the old shell
    /// harvester); some ship the sensor's previous chunk again before a new one, which must
    /// not be appended twice.
    fn add(&mut self, n: usize) {
        self.add_with(n, false);
    }

    fn add_with(&mut self, n: usize, bad: bool) {
        let samples = good_samples();
        for _ in 0..n {
            let i = self.written;
            self.written += 1;
            let client = CLIENTS[i % CLIENTS.len()];
            // Two in five go to the compressed day; the rest everywhere.
            let (host, days_ago) = if i.is_multiple_of(5) || i % 5 == 3 {
                (HOSTS[0], 5)
            } else {
                (HOSTS[i % HOSTS.len()], DAYS[(i / 3) % DAYS.len()])
            };
            let at = day_start(days_ago)
                + time::Duration::hours(1)
                + time::Duration::seconds(7 * i as i64);
            if bad && i % 13 == 12 {
                self.ledger.write_bad(&self.server, client, host, at);
                continue;
            }
            let bytes = if i % 9 == 8 {
                Vec::new()
            } else {
                samples[i % samples.len()].clone()
            };
            if bytes.is_empty() || i % 4 == 1 {
                self.ledger.write(&self.server, client, host, at, &bytes);
                continue;
            }
            // A chunk is shipped again only later than it was first (uploads are ingested
            // oldest first, so the later copy is the one left out).
            let (seq, reshipped) = match self.last_chunk.get(host) {
                Some((seq, prev, first)) if i % 7 == 3 && *first < at => {
                    (seq + 1, vec![(*seq, prev.as_slice())])
                }
                Some((seq, ..)) => (seq + 1, Vec::new()),
                None => (1, Vec::new()),
            };
            self.ledger.write_manifested(
                &self.server,
                client,
                host,
                at,
                &reshipped,
                &[(seq, &bytes)],
            );
            self.last_chunk.insert(host, (seq, bytes, at));
        }
    }

    fn run(&self, failpoint: Option<&str>) -> Output {
        let mut cmd = self.server.command();
        if let Some(fp) = failpoint {
            cmd.env("ARGUS_WEBJOB_FAILPOINT", fp);
        }
        let child = spawn_piped(&mut cmd);
        wait_within(child, DEADLINE)
    }

    fn clean_run(&self, context: &str) {
        let out = self.run(None);
        assert!(
            self.finished(&out),
            "{context}: the clean run after the crash: {}; stderr:\n{}",
            ended(&out),
            stderr(&out)
        );
        self.ledger
            .assert_exactly_once(&self.server, self.archive_suffix);
    }

    /// A pass that completed: exit 0, or 1 when it quarantined one of the bad uploads.
    fn finished(&self, out: &Output) -> bool {
        match out.status.code() {
            Some(0) => true,
            Some(1) => !self.ledger.bad.is_empty(),
            _ => false,
        }
    }

    fn archive_of_stem(&self, stem: &str) -> std::path::PathBuf {
        self.server
            .archive_dir()
            .join(format!("{stem}.out{}", self.archive_suffix))
    }

    fn archive_of(&self, rec: &support::Rec) -> std::path::PathBuf {
        self.server
            .archive_dir()
            .join(format!("{}.out{}", rec.stem, self.archive_suffix))
    }

    fn non_empty(&self) -> usize {
        self.ledger
            .uploads
            .iter()
            .filter(|r| !r.bytes.is_empty())
            .count()
    }
}

/// Kills the pass at `name:n` over a backlog, then checks a clean run repairs it exactly once.
fn failpoint_case(moves: bool, name: &str, n: usize) {
    failpoint_case_of(moves, 30, name, n);
}

fn failpoint_case_of(moves: bool, uploads: usize, name: &str, n: usize) {
    let mut s = Scenario::new(moves);
    s.add(uploads);
    let fp = format!("{name}:{n}");
    let context = format!(
        "failpoint {fp} (archives {})",
        if moves { "moved" } else { "gzip" }
    );
    let out = s.run(Some(&fp));
    assert!(
        killed(&out),
        "{context}: the failpoint must kill the pass, but it ended with {}; stderr:\n{}",
        ended(&out),
        stderr(&out)
    );
    s.clean_run(&context);
    // And again: nothing left to do, nothing changes.
    let before = Server::files(s.server.root.path());
    let out = s.run(None);
    assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
    assert_eq!(Server::files(s.server.root.path()), before, "{context}");
}

fn failpoints(moves: bool) {
    let probe = {
        let mut s = Scenario::new(moves);
        s.add(30);
        let old = day_name(HOSTS[0], day_start(5));
        let late = s
            .ledger
            .uploads
            .iter()
            .filter(|r| r.day == old && !r.bytes.is_empty());
        assert!(late.count() >= 2, "late data for the compressed day");
        let reshipped = s.ledger.uploads.iter().filter(|r| r.appended != r.bytes);
        assert!(reshipped.count() >= 2, "chunks shipped again");
        (s.non_empty(), s.ledger.uploads.len())
    };
    let (appends, uploads) = probe;
    let mut cases: Vec<(&str, usize)> = vec![
        ("journaled", 1),
        ("appended", 1),
        ("appended", 2),
        ("appended", appends / 2),
        ("appended", appends),
        ("synced", 1),
        ("archives-durable", 1),
        ("removed", 1),
        ("removed", uploads / 2),
        ("removed", uploads),
        // Closing the day of three days ago: its compressed form assembled (with gzip
        // archives, from their members), complete, then published.
        ("day-assembled", 1),
        ("day-published", 1),
    ];
    if !moves {
        cases.extend([("day-member", 1), ("day-member", 3)]);
    }
    if moves {
        cases.extend([
            ("archived", 1),
            ("archived", uploads / 3),
            ("archived", uploads),
        ]);
    }
    for (name, n) in cases {
        failpoint_case(moves, name, n);
    }
}

#[test]
fn failpoints_with_compressed_archives() {
    failpoints(false);
}

#[test]
fn failpoints_with_archives_moved_from_the_dropzone() {
    failpoints(true);
}

#[test]
fn failpoints_while_the_batch_before_is_removed() {
    // 80 uploads are two batches (32, then 48): the first batch's groups are removed while the
    // second is committed, its journal file kept until they are gone. A kill at any step of
    // the second batch finds the first batch's removal anywhere between not begun and done.
    for (name, n) in [
        ("journaled", 2),
        ("synced", 2),
        ("archives-durable", 2),
        ("removed", 16),
        ("removed", 40),
    ] {
        failpoint_case_of(false, 80, name, n);
    }
}

/// splitmix64: small, good enough, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn below_usize(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).expect("small");
        usize::try_from(self.below(n)).expect("below n")
    }
}

fn random_kills(moves: bool, iterations: u64, first: usize) {
    let base: u64 = std::env::var("PROCESS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_127);
    let mut s = Scenario::new(moves);
    s.add_with(first, true);
    let (mut deaths, mut mid_commit) = (0, 0);
    // Kills land uniformly in 0..cap. A run over a large backlog can take longer than the
    // initial 300 ms on a loaded machine (the first phase reads and compresses every upload
    // before anything is committed), so the cap grows while kills only ever land before the
    // commit, and shrinks back when runs finish first.
    let mut cap_ms: u64 = 300;
    for iteration in 0..iterations {
        let seed = base ^ (iteration << 32) ^ u64::from(moves);
        let mut rng = Rng(seed);
        let delay = Duration::from_millis(rng.below(cap_ms + 1));
        let pending_before = s
            .ledger
            .uploads
            .iter()
            .filter(|r| r.any_part_left())
            .count();
        let mut child = s
            .server
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process_argus");
        std::thread::sleep(delay);
        let _ignored = child.kill();
        let out = wait_within(child, DEADLINE);
        let context = format!(
            "iteration {iteration} seed {seed} (PROCESS_CRASH_SEED={base}), kill after {delay:?} of {cap_ms} ms"
        );
        // Where the kill landed, for the record.
        let journal: u64 = argus_ingest::journal::FILES
            .iter()
            .map(|name| std::fs::metadata(s.server.state_dir().join(name)).map_or(0, |m| m.len()))
            .sum();
        let pending = s
            .ledger
            .uploads
            .iter()
            .filter(|r| r.any_part_left())
            .count();
        let archived = s
            .ledger
            .uploads
            .iter()
            .filter(|r| r.any_part_left() && s.archive_of(r).exists())
            .count();
        eprintln!(
            "{context}: {}; journal {journal} bytes, {pending} uploads pending, {archived} of them archived",
            ended(&out)
        );
        if killed(&out) {
            deaths += 1;
            if journal > 0 {
                mid_commit += 1;
            }
            if pending >= pending_before && archived == 0 {
                // Killed before anything was archived: aim later next time.
                cap_ms = (cap_ms * 3 / 2).min(5_000);
            }
        } else {
            // A pass faster than the delays: aim earlier (a backlog of small uploads on a fast
            // disk can take less than the first cap).
            cap_ms = (cap_ms * 2 / 3).max(60);
            // It finished before the kill: then it must have succeeded.
            assert!(s.finished(&out), "{context}: {}", stderr(&out));
        }
        // New uploads, newer than all before, and a backlog of a random size so that the kill
        // lands in every phase of a run.
        let target = 20 + rng.below_usize(first);
        let more = 5 + rng.below_usize(10) + target.saturating_sub(pending);
        s.add_with(more, true);
    }
    assert!(
        deaths >= iterations / 3 && mid_commit >= 1,
        "too few kills landed mid-way to test anything ({deaths} of {iterations} runs killed, {mid_commit} while the journal held a batch)"
    );
    s.clean_run(&format!("random kills (base seed {base})"));
}

#[test]
fn random_kills_with_compressed_archives() {
    random_kills(false, 18, 200);
}

#[test]
fn random_kills_with_archives_moved_from_the_dropzone() {
    random_kills(true, 18, 200);
}

#[test]
fn a_reshipped_chunk_is_not_doubled_by_recovery() {
    // An upload that carries a chunk already ingested (harvest_argus shipped it again) and a
    // new one appends only the new one. Late data for a compressed day is appended as new
    // members, whose sizes the journal cannot know in advance; a crash between archiving two
    // uploads of such a day makes recovery cut the day back and append the archived one again:
    // again only its new chunk.
    for moves in [true, false] {
        let s = Scenario::new(moves);
        let host = HOSTS[0];
        let at = day_start(5) + time::Duration::hours(2);
        let old = day_name(host, at);
        let samples = good_samples();
        let (c1, c2, c3) = (&samples[2], &samples[4], &samples[3]);
        let mut want = support::decoded(
            &s.server
                .oper_dir()
                .join(format!("{old}{}", if moves { ".xz" } else { ".gz" })),
        );
        let write = |at: time::OffsetDateTime, chunks: &[(u64, &[u8])]| {
            let out: Vec<u8> = chunks.iter().flat_map(|c| c.1.to_vec()).collect();
            Upload::at("client1", at)
                .out(out)
                .hostname(host)
                .err(support::manifests(host, chunks))
                .write(&s.server.drop_dir())
                .expect("write")
        };
        // Chunk 1 arrives and is ingested.
        write(at, &[(1, c1)]);
        let out = s.run(None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        want.extend_from_slice(c1);
        // Chunk 1 again with chunk 2, then chunk 3; the pass dies after the first archive.
        let u2 = write(at + time::Duration::minutes(1), &[(1, c1), (2, c2)]);
        let u3 = write(at + time::Duration::minutes(2), &[(3, c3)]);
        let fp = if moves { "archived:1" } else { "synced:1" };
        let out = s.run(Some(fp));
        assert!(killed(&out), "{fp}: {}", ended(&out));
        if !moves {
            // Gzip archives are published together: emulate the kill between the first and
            // the second rename by renaming the first archive's temporary file, as the pass
            // would have.
            let staged = s.archive_of_stem(&u2.stem);
            assert!(!staged.exists());
            let temp = Server::files(&s.server.archive_dir())
                .into_iter()
                .find(|name| {
                    let name = name.to_string_lossy();
                    name.starts_with(argus_core::publish::TEMP_PREFIX) && name.contains(&u2.stem)
                })
                .expect("the first archive's temporary file");
            std::fs::rename(s.server.archive_dir().join(temp), &staged)
                .expect("publish the first archive");
            assert!(support::decoded(&staged) == [c1.as_slice(), c2].concat());
        }
        let out = s.run(None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        want.extend_from_slice(c2);
        want.extend_from_slice(c3);
        let day = s
            .server
            .oper_dir()
            .join(format!("{old}{}", if moves { ".xz" } else { ".gz" }));
        let got = support::decoded(&day);
        assert!(
            got == want,
            "archives {}: the day holds {} bytes, want {} (chunk 1 once, then 2 and 3)",
            if moves { "moved" } else { "gzip" },
            got.len(),
            want.len()
        );
        assert!(!u3.path("rdy").exists() && !u2.path("rdy").exists());
    }
}

#[test]
fn recovery_never_follows_a_symlink_put_in_place_of_a_day_file() {
    // Killed after the append: recovery must roll the day file back. Someone replaced the day
    // file by a symlink to another file meanwhile; recovery refuses it and leaves the target.
    let mut s = Scenario::new(false);
    s.add(4);
    let out = s.run(Some("appended:1"));
    assert!(killed(&out), "the failpoint kills: {}", ended(&out));
    let day = Server::files(&s.server.oper_dir())
        .into_iter()
        .map(|p| s.server.oper_dir().join(p))
        .find(|p| !p.to_string_lossy().ends_with(".gz"))
        .expect("a plain day file was appended to");
    let victim = s.server.state_dir().join("not-a-day-file");
    let precious = b"someone else's data, not to be truncated".repeat(1000);
    std::fs::write(&victim, &precious).expect("victim");
    std::fs::remove_file(&day).expect("remove day file");
    std::os::unix::fs::symlink(&victim, &day).expect("symlink");
    let out = s.run(None);
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot open"), "{}", stderr(&out));
    assert!(
        std::fs::read(&victim).expect("victim") == precious,
        "the symlink's target is untouched"
    );
}

/// An upload ingested before comes again, under its name, first among new ones. Nothing looks
/// for its archive's name before the rename, which finds it taken: `kill -9` anywhere from the
/// journal to that rename must leave its bytes once, and it ends in the quarantine. Recovery
/// tells this upload's archive from the one of that name by the temporary file (or the
/// `.out`, moved) it is renamed from: with the name alone, a kill after the appends kept the
/// upload's bytes a second time.
#[test]
fn kill_9_before_an_archive_name_is_found_taken_leaves_every_byte_once() {
    for moves in [false, true] {
        let mut points = vec!["journaled:1", "appended:1", "appended:3", "synced:1"];
        if moves {
            points.push("archived:1");
        }
        for fp in points {
            let context = format!(
                "failpoint {fp} (archives {})",
                if moves { "moved" } else { "gzip" }
            );
            let mut s = Scenario::new(moves);
            s.add(6);
            let again = s
                .ledger
                .uploads
                .iter()
                .find(|r| !r.bytes.is_empty() && r.appended == r.bytes)
                .expect("an upload with data")
                .clone();
            let kept = tempfile::tempdir().expect("a directory");
            let parts = ["out", "err", "env", "rdy"].map(|ext| format!("{}.{ext}", again.stem));
            for name in &parts {
                std::fs::copy(again.dir.join(name), kept.path().join(name)).expect("a copy");
            }
            s.clean_run(&context);
            let archive = s.archive_of(&again);
            let archived = std::fs::read(&archive).expect("its archive");
            for name in &parts {
                std::fs::copy(kept.path().join(name), again.dir.join(name)).expect("a copy");
            }
            s.add(5);
            let out = s.run(Some(fp));
            assert!(
                killed(&out),
                "{context}: {}; stderr:\n{}",
                ended(&out),
                stderr(&out)
            );
            let out = s.run(None);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{context}: the run after the crash: {}; stderr:\n{}",
                ended(&out),
                stderr(&out)
            );
            // Every upload once in its day file, the archive of the first ingest untouched,
            // nothing but archives in the archive directory, nothing left in the dropzone.
            let ingested = s.ledger.assert_consistent(&s.server, s.archive_suffix);
            assert_eq!(ingested, s.ledger.uploads.len(), "{context}");
            assert!(
                std::fs::read(&archive).expect("its archive") == archived,
                "{context}"
            );
            assert!(!again.any_part_left(), "{context}: left in the dropzone");
            let reason =
                std::fs::read_to_string(s.server.quarantine_dir().join(&again.stem).join("reason"))
                    .expect("a reason in the quarantine");
            assert!(reason.contains("already exists"), "{context}: {reason}");
        }
    }
}
