//! Follow-on stages end to end: real uploads, real hook programs (a recording script), real
//! crashes (SIGKILL at each commit step and during a hook's run), real timeouts and process
//! groups, the daemon's workers beside its ingest.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Ledger, day_start, good_samples, killed, read};
use test_support::bins::sample;
use test_support::json::Json;
use test_support::server::{Server, spawn_piped, status, stderr, wait_until, wait_within};
use webjob_drop::fixture::Upload;

const DEADLINE: Duration = Duration::from_secs(120);
const HOST: &str = "sensor1";

/// A hook program that records each run in a file of its own under `dir`: the event, then
/// every argument, NUL-terminated; for `ingested`, whether the archive and the day file were
/// there when it ran. It exits 1 while `dir/fail` exists and sleeps `dir/sleep` seconds first
/// when that file exists.
fn recorder(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).expect("hook dir");
    let d = dir.display();
    let script = format!(
        r#"#!/bin/sh
f=$(mktemp "{d}/run.XXXXXXXX") || exit 70
printf '%s\0' "$ARGUS_WEBJOB_EVENT" "$@" > "$f.tmp"
if [ "$ARGUS_WEBJOB_EVENT" = ingested ]; then
  if [ -e "$ARGUS_WEBJOB_ARCHIVE" ] && [ -e "$ARGUS_WEBJOB_DAY_FILE" ]; then
    printf 'present\0' >> "$f.tmp"
  else
    printf 'absent\0' >> "$f.tmp"
  fi
fi
mv "$f.tmp" "$f"
if [ -e "{d}/sleep" ]; then sleep "$(cat "{d}/sleep")"; fi
if [ -e "{d}/fail" ]; then exit 1; fi
exit 0
"#
    );
    let path = dir.join("record");
    fs::write(&path, script).expect("script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The runs recorded under `dir`, each as its fields.
fn runs(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("hook dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("run.") || name.ends_with(".tmp") {
            continue;
        }
        let bytes = fs::read(entry.path()).expect("run");
        if bytes.is_empty() {
            continue;
        }
        out.push(
            bytes
                .strip_suffix(b"\0")
                .unwrap_or(&bytes)
                .split(|&b| b == 0)
                .map(<[u8]>::to_vec)
                .collect(),
        );
    }
    out
}

/// The runs of one event.
fn runs_of<'a>(all: &'a [Vec<Vec<u8>>], event: &str) -> Vec<&'a Vec<Vec<u8>>> {
    all.iter().filter(|r| r[0] == event.as_bytes()).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `[[hook]]` tables running `program` on each event, with every placeholder as an argument.
fn all_hooks(program: &Path, timeout: &str) -> String {
    let p = program.display();
    format!(
        r#"
[[hook]]
on = "ingested"
command = ["{p}", "{{stem}}", "{{client}}", "{{host}}", "{{day}}", "{{day_file}}", "{{archive}}", "{{bytes}}", "{{records}}"]
timeout = "{timeout}"

[[hook]]
on = "day_closed"
command = ["{p}", "{{day_file}}", "{{host}}", "{{day}}"]
timeout = "{timeout}"

[[hook]]
on = "quarantined"
command = ["{p}", "{{stem}}", "{{client}}", "{{dir}}", "reason: {{reason}}"]
timeout = "{timeout}"
"#
    )
}

fn hooks_list(server: &Server) -> Json {
    let out = server.run(&["hooks", "list", "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json")
}

#[test]
fn each_event_runs_once_with_its_arguments_as_plain_bytes() {
    let server = Server::new();
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    let extra = format!(
        "archive_days = 0\noper_compress_after_days = 0\n{}",
        all_hooks(&program, "30s")
    );
    server.write_toml(&["client1"], &extra);
    let mut ledger = Ledger::default();
    let samples = good_samples();
    let at = day_start(1) + time::Duration::hours(3);
    for (i, data) in samples.iter().take(3).enumerate() {
        ledger.write(
            &server,
            "client1",
            HOST,
            at + time::Duration::minutes(i as i64),
            data,
        );
    }
    // A bad upload whose host name is full of shell metacharacters: the reason carries it.
    let pwned = server.root.path().join("pwned");
    let evil = format!("evil;$(touch {})`id`", pwned.display());
    let bad = Upload::at("client1", at + time::Duration::minutes(9))
        .out(read(&sample("hostA.argus")))
        .hostname(&evil)
        .write(&server.drop_dir())
        .expect("bad upload");

    let out = server.run(&[]);
    assert_eq!(status(&out), 1, "one upload quarantined: {}", stderr(&out));
    let day_gz = server
        .oper_dir()
        .join(format!("{}.gz", ledger.uploads[0].day));
    let want: Vec<u8> = ledger
        .uploads
        .iter()
        .flat_map(|u| u.appended.clone())
        .collect();
    assert_eq!(
        support::decoded(&day_gz),
        want,
        "every upload once, in order"
    );
    assert!(ledger.uploads.iter().all(|u| !u.any_part_left()));
    let all = runs(&hooks);

    // ingested: once per upload, every placeholder in place, data present when it ran.
    let ingested = runs_of(&all, "ingested");
    assert_eq!(ingested.len(), 3, "{all:?}");
    let day = argus_core::stamp::format_date(at.date());
    let plain_day = server.oper_dir().join(format!("{HOST}_{day}"));
    let mut stems: Vec<String> = ingested.iter().map(|r| text(&r[1])).collect();
    stems.sort();
    let mut want: Vec<String> = ledger.uploads.iter().map(|u| u.stem.clone()).collect();
    want.sort();
    assert_eq!(stems, want);
    for r in &ingested {
        let rec = ledger
            .uploads
            .iter()
            .find(|u| u.stem == text(&r[1]))
            .expect("an upload");
        assert_eq!(text(&r[2]), "client1");
        assert_eq!(text(&r[3]), HOST);
        assert_eq!(text(&r[4]), day);
        // The day was compressed before the hooks ran: they get the file as it is then.
        assert_eq!(text(&r[5]), format!("{}.gz", plain_day.display()));
        assert_eq!(
            text(&r[6]),
            server
                .archive_dir()
                .join(format!("{}.out.gz", rec.stem))
                .display()
                .to_string()
        );
        assert_eq!(text(&r[7]), rec.appended.len().to_string());
        let records = argus_core::record::walk(&rec.appended[..]).expect("walk");
        assert_eq!(text(&r[8]), records.records.to_string());
        assert_eq!(text(&r[9]), "present", "the data was in place when it ran");
    }

    // day_closed: once, for the compressed day file, which exists.
    let closed = runs_of(&all, "day_closed");
    assert_eq!(closed.len(), 1, "{all:?}");
    let gz = format!("{}.gz", plain_day.display());
    assert_eq!(text(&closed[0][1]), gz);
    assert!(Path::new(&gz).is_file());
    assert_eq!(
        (text(&closed[0][2]), text(&closed[0][3])),
        (HOST.to_owned(), day.clone())
    );

    // quarantined: once, for the group's directory, the reason as plain bytes.
    let quarantined = runs_of(&all, "quarantined");
    assert_eq!(quarantined.len(), 1, "{all:?}");
    let q = quarantined[0];
    assert_eq!(text(&q[1]), bad.stem);
    assert_eq!(text(&q[2]), "client1");
    assert!(
        Path::new(&text(&q[3]))
            .join(format!("{}.rdy", bad.stem))
            .exists()
    );
    let reason = text(&q[4]);
    assert!(
        reason.starts_with("reason: ") && reason.contains("$(touch") && reason.contains("`id`"),
        "{reason}"
    );
    assert!(!pwned.exists(), "nothing was interpreted by a shell");

    // Nothing left, and a second pass runs nothing again.
    let listing = hooks_list(&server);
    assert!(listing.get("pending").items().is_empty(), "{listing:?}");
    assert_eq!(status(&server.run(&[])), 0);
    assert_eq!(runs(&hooks).len(), all.len(), "no event ran twice");
}

/// Configures `server` for client1 with day files left plain, days closing at their end, and
/// a `day_closed` hook that records its runs; returns the directory of the records.
fn plain_days_with_a_day_closed_hook(server: &Server) -> PathBuf {
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    let extra = format!(
        "oper_compression = \"none\"\noper_compress_after_days = 0\n[[hook]]\non = \"day_closed\"\ncommand = [\"{}\", \"{{day_file}}\"]\n",
        program.display()
    );
    server.write_toml(&["client1"], &extra);
    hooks
}

#[test]
fn without_compression_each_day_closes_once_and_days_closed_before_the_hook_do_not() {
    let server = Server::new();
    let hooks = plain_days_with_a_day_closed_hook(&server);
    let mut ledger = Ledger::default();
    let samples = good_samples();
    // A day closed long before the hook was configured.
    let old = support::day_name(HOST, day_start(5));
    ledger.existing_day(&server, &old, &samples[0], None);
    ledger.write(
        &server,
        "client1",
        HOST,
        day_start(1) + time::Duration::hours(2),
        &samples[1],
    );
    assert_eq!(status(&server.run(&[])), 0);
    let yesterday = server
        .oper_dir()
        .join(support::day_name(HOST, day_start(1)));
    let closed: Vec<String> = runs(&hooks).iter().map(|r| text(&r[1])).collect();
    assert_eq!(
        closed,
        [yesterday.display().to_string()],
        "only the day that closed now"
    );
    // Late data for the closed day, and more passes: no second day_closed.
    ledger.write(
        &server,
        "client1",
        HOST,
        day_start(1) + time::Duration::hours(3),
        &samples[2],
    );
    assert_eq!(status(&server.run(&[])), 0);
    assert_eq!(status(&server.run(&[])), 0);
    assert_eq!(runs(&hooks).len(), 1);
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn without_compression_kill_9_as_a_day_closes_announces_it_once() {
    // Killed after its event is queued and before hooks/closed names the day, then after.
    for point in ["day-closed-queued", "day-closed-noted"] {
        let server = Server::new();
        let hooks = plain_days_with_a_day_closed_hook(&server);
        let mut ledger = Ledger::default();
        let samples = good_samples();
        ledger.write(
            &server,
            "client1",
            HOST,
            day_start(1) + time::Duration::hours(2),
            &samples[0],
        );
        let child = spawn_piped(server.command().env("ARGUS_WEBJOB_FAILPOINT", point));
        let out = wait_within(child, DEADLINE);
        assert!(killed(&out), "{point}: {}", stderr(&out));
        assert!(runs(&hooks).is_empty(), "{point}: no hook ran yet");
        for _ in 0..2 {
            let out = server.run(&[]);
            assert_eq!(status(&out), 0, "{point}: {}", stderr(&out));
        }
        let yesterday = server
            .oper_dir()
            .join(support::day_name(HOST, day_start(1)));
        let closed: Vec<String> = runs(&hooks).iter().map(|r| text(&r[1])).collect();
        assert_eq!(closed, [yesterday.display().to_string()], "{point}");
        assert!(hooks_list(&server).get("pending").items().is_empty());
        ledger.assert_exactly_once(&server, ".gz");
    }
}

#[test]
fn kill_9_at_any_commit_step_or_during_a_hook_loses_no_event_and_none_runs_early() {
    let points = [
        "journaled",
        "appended:2",
        "synced",
        "archives-durable",
        "hooks-queued",
        "ledgered",
        "removed:2",
    ];
    for point in points {
        let server = Server::new();
        let hooks = server.root.path().join("hooks");
        let program = recorder(&hooks);
        let hook = format!(
            "archive_days = 0\n[[hook]]\non = \"ingested\"\ncommand = [\"{}\", \"{{stem}}\"]\n",
            program.display()
        );
        server.write_toml(&["client1"], &hook);
        let mut ledger = Ledger::default();
        let at = day_start(0) + time::Duration::minutes(5);
        for (i, data) in good_samples().iter().take(4).enumerate() {
            ledger.write(
                &server,
                "client1",
                HOST,
                at + time::Duration::seconds(i as i64),
                data,
            );
        }
        let child = spawn_piped(server.command().env("ARGUS_WEBJOB_FAILPOINT", point));
        let out = wait_within(child, DEADLINE);
        assert!(killed(&out), "{point}: {}", stderr(&out));
        // Nothing ran before the crash? Whatever ran had its data in place.
        let out = server.run(&[]);
        assert_eq!(status(&out), 0, "{point}: {}", stderr(&out));
        ledger.assert_exactly_once(&server, ".gz");
        let all = runs(&hooks);
        for u in &ledger.uploads {
            let n = all.iter().filter(|r| text(&r[1]) == u.stem).count();
            assert!(
                (1..=2).contains(&n),
                "{point}: {} ran {n} times: {all:?}",
                u.stem
            );
        }
        assert!(
            all.iter()
                .all(|r| r.last().is_some_and(|v| v == b"present")),
            "{point}: a hook ran before its data was in place: {all:?}"
        );
        assert!(hooks_list(&server).get("pending").items().is_empty());
    }

    // SIGKILL while a hook runs: the event stays queued and runs again.
    let server = Server::new();
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    fs::write(hooks.join("sleep"), "3").expect("sleep");
    let hook = format!(
        "[[hook]]\non = \"ingested\"\ncommand = [\"{}\", \"{{stem}}\"]\n",
        program.display()
    );
    server.write_toml(&["client1"], &hook);
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", HOST, day_start(0), &good_samples()[0]);
    let mut child = spawn_piped(&mut server.command());
    assert!(
        wait_until(DEADLINE, || !runs(&hooks).is_empty()),
        "the hook started"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    fs::remove_file(hooks.join("sleep")).expect("no more sleep");
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&hooks).len(), 2, "ran again after the crash");
    assert!(hooks_list(&server).get("pending").items().is_empty());
}

#[test]
fn a_failing_hook_is_retried_then_kept_as_failed_then_retried_by_hand() {
    let server = Server::new();
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    fs::write(hooks.join("fail"), "").expect("fail");
    let recent = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let extra = format!(
        "hook_attempts = 2\nhook_retry_delay = \"1s\"\n[[hook]]\non = \"ingested\"\nname = \"load\"\ncommand = [\"{}\", \"{{stem}}\"]\n",
        program.display()
    );
    server.write_toml(&["client1"], &extra);
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", HOST, recent, &good_samples()[0]);

    // Run 1 fails; the event waits hook_retry_delay, and a pass at once does not run it.
    assert_eq!(
        status(&server.run(&[])),
        0,
        "a hook's failure is not the pass's"
    );
    let pending = hooks_list(&server).get("pending").items().to_vec();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].get("attempts").u64(), 1);
    assert_eq!(pending[0].get("error").str(), "exit status 1");
    assert_eq!(pending[0].get("hook").str(), "load");
    server.run(&[]);
    assert_eq!(runs(&hooks).len(), 1, "not due yet");
    // Run 2, once due, fails for the last time: kept as failed, and status warns. (Due a
    // whole delay after run 1 ended, counted from the next whole second: at most 2 s.)
    std::thread::sleep(Duration::from_millis(2100));
    server.run(&[]);
    assert_eq!(runs(&hooks).len(), 2);
    let listing = hooks_list(&server);
    assert!(listing.get("pending").items().is_empty());
    let failed = listing.get("failed").items().to_vec();
    assert_eq!(failed.len(), 1);
    let id = failed[0].get("id").str().to_owned();
    let out = server.run(&["status", "--json"]);
    assert_eq!(status(&out), 1, "a failed hook is a warning");
    let report = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert_eq!(report.get("hooks_failed").u64(), 1);
    // Nothing runs it any more.
    std::thread::sleep(Duration::from_millis(1100));
    server.run(&[]);
    assert_eq!(runs(&hooks).len(), 2);

    // Fixed, and queued again by hand: it runs and leaves the queue.
    let out = server.run(&["hooks", "retry", "no-such-id"]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    fs::remove_file(hooks.join("fail")).expect("fixed");
    let out = server.run(&["hooks", "retry", "--json", &id]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let again = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert_eq!(again.get("queued_again").items()[0].str(), id);
    server.run(&[]);
    assert_eq!(runs(&hooks).len(), 3);
    let listing = hooks_list(&server);
    assert!(listing.get("pending").items().is_empty() && listing.get("failed").items().is_empty());
    assert_eq!(status(&server.run(&["status"])), 0);
}

#[test]
fn a_cron_pass_starts_no_hook_after_its_budget_and_the_next_pass_goes_on() {
    let server = Server::new();
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    fs::write(hooks.join("sleep"), "2").expect("sleep");
    let extra = format!(
        "hook_budget = \"1s\"\nhook_concurrency = 1\n[[hook]]\non = \"ingested\"\ncommand = [\"{}\", \"{{stem}}\"]\n",
        program.display()
    );
    server.write_toml(&["client1"], &extra);
    let mut ledger = Ledger::default();
    for (i, data) in good_samples().iter().take(2).enumerate() {
        let at = day_start(0) + time::Duration::seconds(i as i64);
        ledger.write(&server, "client1", HOST, at, data);
    }
    assert_eq!(status(&server.run(&[])), 0);
    assert_eq!(
        runs(&hooks).len(),
        1,
        "the second would start after the budget"
    );
    assert_eq!(hooks_list(&server).get("pending").items().len(), 1);
    assert_eq!(status(&server.run(&[])), 0);
    assert_eq!(runs(&hooks).len(), 2);
    assert!(hooks_list(&server).get("pending").items().is_empty());
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout_with_its_whole_process_group() {
    let server = Server::new();
    let dir = server.root.path().join("hooks");
    fs::create_dir_all(&dir).expect("dir");
    let d = dir.display();
    let program = dir.join("hang");
    fs::write(
        &program,
        format!(
            "#!/bin/sh\nsleep 300 &\necho $! > {d}/child.pid\necho $$ > {d}/leader.pid\nsleep 300\n"
        ),
    )
    .expect("script");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).expect("chmod");
    let extra = format!(
        "[[hook]]\non = \"ingested\"\ncommand = [\"{}\"]\ntimeout = \"2s\"\n",
        program.display()
    );
    server.write_toml(&["client1"], &extra);
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", HOST, day_start(0), &good_samples()[0]);
    let started = std::time::Instant::now();
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(60));
    for file in ["leader.pid", "child.pid"] {
        let pid: i32 = fs::read_to_string(dir.join(file))
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        let gone = wait_until(Duration::from_secs(10), || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
        });
        assert!(gone, "{file} {pid} still runs");
    }
    let pending = hooks_list(&server).get("pending").items().to_vec();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].get("error").str().contains("timed out after 2s"),
        "{:?}",
        pending[0]
    );
}

#[test]
fn the_daemon_runs_hooks_beside_its_ingest() {
    let server = Server::new();
    let hooks = server.root.path().join("hooks");
    let program = recorder(&hooks);
    fs::write(hooks.join("sleep"), "30").expect("sleep");
    let extra = format!(
        "[[hook]]\non = \"ingested\"\ncommand = [\"{}\", \"{{stem}}\"]\n",
        program.display()
    );
    server.write_toml(&["client1"], &extra);
    let mut daemon = server.spawn_watch(&[]);
    assert!(wait_until(DEADLINE, || daemon.watching()), "watching");
    let mut ledger = Ledger::default();
    let samples = good_samples();
    ledger.write(&server, "client1", HOST, day_start(0), &samples[0]);
    assert!(
        wait_until(DEADLINE, || runs(&hooks).len() == 1),
        "the first hook started: {}",
        daemon.log()
    );
    // While it sleeps 30 s, the next upload is ingested as fast as ever.
    let started = std::time::Instant::now();
    ledger.write(
        &server,
        "client1",
        HOST,
        day_start(0) + time::Duration::seconds(1),
        &samples[1],
    );
    let rec = ledger.uploads[1].clone();
    assert!(
        wait_until(DEADLINE, || !rec.any_part_left()),
        "ingested: {}",
        daemon.log()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "ingest waited for a hook: {took:?}"
    );
    // Both run at once (hook_concurrency = 2).
    assert!(wait_until(DEADLINE, || runs(&hooks).len() == 2));
    // A stop does not wait for the hooks: they are killed and stay queued.
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let code = daemon.wait_within(Duration::from_secs(20));
    assert!(code.success(), "{}", daemon.log());
    let pending = hooks_list(&server).get("pending").items().to_vec();
    assert_eq!(pending.len(), 2, "they run again at the next start");
    let stems: BTreeMap<String, usize> = runs(&hooks).iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(text(&r[1])).or_default() += 1;
        m
    });
    assert_eq!(stems.len(), 2, "{stems:?}");
}
