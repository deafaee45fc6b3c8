//! `process_argus status` (SPEC §4, issue 6): per client the last upload, uploads and bytes of
//! the last 24 hours, gaps, duplicates, quarantined groups, orphans and pending groups; STALE
//! when nothing of a configured client arrived for `stale_after` (or never did; a quarantined
//! upload arrived too, and is a warning); exit 0 all well,
//! 1 warnings, 2 stale, 3 unknown, like a monitoring plugin; a table for people and a JSON
//! object whose keys are documented in docs/OPERATIONS.md, in that order.

use crate::support;

use std::fs;
use std::time::{Duration, SystemTime};

use support::{Ledger, good_samples, report_client, status_report};
use test_support::bins::workspace;
use test_support::json::Json;
use test_support::server::{Server, status, stderr};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// The documented key order (docs/OPERATIONS.md, Monitoring).
const TOP_KEYS: [&str; 8] = [
    "now",
    "status",
    "stale_after_s",
    "hooks_pending",
    "hooks_failed",
    "ingest_stopped",
    "retention_warning",
    "clients",
];
const CLIENT_KEYS: [&str; 25] = [
    "client",
    "configured",
    "state",
    "last_upload",
    "age_s",
    "uploads_24h",
    "bytes_24h",
    "pending",
    "in_flight",
    "orphans",
    "quarantined",
    "duplicates",
    "missing_chunks",
    "argus_version",
    "previous_argus_version",
    "packets_24h",
    "dropped_24h",
    "drop_ratio_1h",
    "restarts_24h",
    "stops",
    "last_mar",
    "clock_offset_s",
    "zero_gaps",
    "zero_gap_bytes",
    "gaps",
];
const GAP_KEYS: [&str; 3] = ["host", "first", "last"];

/// Now, to the second, minus `minutes`.
fn minutes_ago(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole second")
        - time::Duration::minutes(minutes)
}

fn pass(server: &Server) {
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 0, "the pass: {}", stderr(&out));
}

/// `status --json`: exit status and report.
fn report(server: &Server) -> (i32, Json) {
    status_report(server, DEADLINE)
}

/// `status` (the table): exit status and text.
fn table(server: &Server) -> (i32, String) {
    let out = server.run_within(&["status"], DEADLINE);
    (
        status(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn client<'a>(report: &'a Json, id: &str) -> &'a Json {
    report_client(report, id)
}

fn client_ids(report: &Json) -> Vec<String> {
    report
        .get("clients")
        .items()
        .iter()
        .map(|c| c.get("client").str().to_owned())
        .collect()
}

/// The table line of `id` (it starts with the id and a space).
fn table_line<'a>(text: &'a str, id: &str) -> &'a str {
    text.lines()
        .find(|l| l.strip_prefix(id).is_some_and(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{text}"))
}

#[test]
fn a_client_three_days_silent_is_stale() {
    let server = Server::new();
    server.write_toml(&["client1", "client2"], "archive_days = 0\n");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    // client1's last upload was stamped three days ago (the ledger keeps the time of the name,
    // not of the ingest, which is now); client2 uploaded a while ago, within stale_after.
    let old = minutes_ago(3 * 24 * 60);
    ledger.write_manifested(&server, "client1", "sensor1", old, &[], &[(1, &samples[2])]);
    ledger.write(&server, "client2", "sensor2", minutes_ago(30), &samples[3]);
    pass(&server);

    let (code, r) = report(&server);
    assert_eq!(code, 2, "a stale client is critical: {r:?}");
    assert_eq!(r.get("status").str(), "stale");
    assert_eq!(r.get("stale_after_s").u64(), 7200, "the default, 2 h");
    let c1 = client(&r, "client1");
    assert_eq!(c1.get("state").str(), "stale");
    assert_eq!(
        c1.get("last_upload").str(),
        argus_core::stamp::format_rfc3339(old),
        "the upload time from the name"
    );
    let age = c1.get("age_s").u64();
    assert!(
        (3 * 86_400..3 * 86_400 + 600).contains(&age),
        "three days old: {age} s"
    );
    assert_eq!(c1.get("uploads_24h").u64(), 0, "nothing in the last 24 h");
    let c2 = client(&r, "client2");
    assert_eq!(c2.get("state").str(), "ok");
    assert_eq!(c2.get("uploads_24h").u64(), 1);
    assert_eq!(c2.get("bytes_24h").u64(), samples[3].len() as u64);

    let (code, text) = table(&server);
    assert_eq!(code, 2);
    assert!(table_line(&text, "client1").contains(" STALE "), "{text}");
    assert!(table_line(&text, "client2").contains(" OK "), "{text}");

    // A new upload from client1 makes it fresh again.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        minutes_ago(5),
        &[],
        &[(2, &samples[4])],
    );
    // Waiting in the dropzone already counts as an upload...
    let (code, r) = report(&server);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(client(&r, "client1").get("pending").u64(), 1);
    // ... and so does it once ingested.
    pass(&server);
    let (code, r) = report(&server);
    assert_eq!(code, 0, "{r:?}");
    let c1 = client(&r, "client1");
    assert_eq!(c1.get("state").str(), "ok");
    assert_eq!(c1.get("pending").u64(), 0);
    assert_eq!(c1.get("uploads_24h").u64(), 1);
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn a_configured_client_never_seen_is_stale() {
    let server = Server::new();
    // A glob selects clients but names none, so it is not listed by itself.
    server.write_toml(&["client1", "never1", "site*"], "");
    let mut ledger = Ledger::default();
    ledger.write(
        &server,
        "client1",
        "sensor1",
        minutes_ago(10),
        &good_samples()[2],
    );
    pass(&server);
    let (code, r) = report(&server);
    assert_eq!(code, 2, "{r:?}");
    assert_eq!(client_ids(&r), ["client1", "never1"]);
    let never = client(&r, "never1");
    assert_eq!(never.get("state").str(), "stale");
    assert_eq!(never.get("configured"), &Json::Bool(true));
    assert_eq!(never.get("last_upload"), &Json::Null);
    assert_eq!(never.get("age_s"), &Json::Null);
    assert_eq!(client(&r, "client1").get("state").str(), "ok");
    let (code, text) = table(&server);
    assert_eq!(code, 2);
    let line = table_line(&text, "never1");
    assert!(line.contains(" STALE ") && line.contains("never"), "{line}");
}

#[test]
fn the_json_is_stable_and_documented() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    for (i, seq) in [1u64, 3].into_iter().enumerate() {
        ledger.write_manifested(
            &server,
            "client1",
            "sensor1",
            minutes_ago(20 - i as i64),
            &[],
            &[(seq, &samples[i + 2])],
        );
    }
    pass(&server);
    let (code, r) = report(&server);
    assert_eq!(code, 1, "a gap: {r:?}");
    assert_eq!(r.keys(), TOP_KEYS, "top-level keys, in order");
    let c = client(&r, "client1");
    assert_eq!(c.keys(), CLIENT_KEYS, "a client's keys, in order");
    let gaps = c.get("gaps").items();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].keys(), GAP_KEYS, "a gap's keys, in order");
    assert_eq!(gaps[0].get("host").str(), "sensor1");
    assert_eq!(
        (gaps[0].get("first").u64(), gaps[0].get("last").u64()),
        (2, 2)
    );
    assert!(
        OffsetDateTime::parse(
            r.get("now").str(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "now is RFC 3339: {r:?}"
    );

    // The example in docs/OPERATIONS.md has the same keys in the same order.
    let doc = fs::read_to_string(workspace().join("docs/OPERATIONS.md")).expect("read the docs");
    let example = doc
        .split("```json\n")
        .skip(1)
        .filter_map(|s| s.split("```").next())
        .find(|s| s.contains("\"stale_after_s\""))
        .expect("the status JSON example in docs/OPERATIONS.md");
    let documented = Json::parse(example).expect("the documented example is valid JSON");
    assert_eq!(documented.keys(), TOP_KEYS, "documented top-level keys");
    let dc = &documented.get("clients").items()[0];
    assert_eq!(dc.keys(), CLIENT_KEYS, "documented client keys");
    assert_eq!(
        dc.get("gaps").items()[0].keys(),
        GAP_KEYS,
        "documented gap keys"
    );
    // And every key has a line in the table of meanings below the example (`clients`, the
    // list itself, is explained by its members).
    for key in TOP_KEYS[..3].iter().chain(&CLIENT_KEYS) {
        assert!(
            doc.lines()
                .any(|l| l.starts_with("| `") && l.contains(&format!("`{key}`"))),
            "{key} is explained in docs/OPERATIONS.md"
        );
    }
}

#[test]
fn the_table_has_a_header_and_a_line_per_client() {
    let server = Server::new();
    server.write_toml(&["client1", "client2", "never1"], "");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", "sensor1", minutes_ago(9), &samples[2]);
    ledger.write(&server, "client2", "sensor2", minutes_ago(8), &samples[3]);
    pass(&server);
    // An unconfigured client's upload, waiting in the dropzone.
    Upload::at("other7", minutes_ago(7))
        .out(samples[4].clone())
        .write(&server.drop_dir())
        .expect("write");
    let (_, r) = report(&server);
    let ids = client_ids(&r);
    assert_eq!(ids, ["client1", "client2", "never1", "other7"]);
    let (code, text) = table(&server);
    assert_eq!(code, 2, "never1 is stale:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header.first().copied(),
        Some("CLIENT"),
        "a header first:\n{text}"
    );
    assert!(header.contains(&"STATE"), "{text}");
    // Then one line per client, in the order of the JSON.
    for (i, id) in ids.iter().enumerate() {
        let line = lines.get(i + 1).copied().unwrap_or_default();
        assert_eq!(
            line.split_whitespace().next(),
            Some(id.as_str()),
            "line {} is {id}'s:\n{text}",
            i + 2
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.split_whitespace().next() == Some(id.as_str()))
                .count(),
            1,
            "one line for {id}:\n{text}"
        );
    }
    let states: Vec<&str> = ids
        .iter()
        .map(|id| {
            table_line(&text, id)
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(states, ["OK", "OK", "STALE", "unconfigured"], "{text}");
}

#[test]
fn a_client_whose_uploads_are_quarantined_has_not_gone_quiet() {
    // Its sensor sends, but every upload is damaged: that needs a look (a warning, with the
    // quarantined groups), not a search for a silent sensor. Once even bad uploads stop
    // arriving for stale_after, it is stale again.
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write(
        &server,
        "client1",
        "sensor1",
        minutes_ago(3 * 24 * 60),
        &samples[2],
    );
    pass(&server);
    let (code, _) = report(&server);
    assert_eq!(code, 2, "three days without an upload: stale");

    let damaged = samples[2][..samples[2].len() - 7].to_vec();
    Upload::at("client1", minutes_ago(20))
        .out(damaged)
        .hostname("sensor1")
        .write(&server.drop_dir())
        .expect("write");
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(
        status(&out),
        1,
        "the damaged upload is quarantined: {}",
        stderr(&out)
    );
    let (code, r) = report(&server);
    assert_eq!(code, 1, "a warning: {r:?}");
    let c = client(&r, "client1");
    assert_eq!(c.get("state").str(), "warning");
    assert_eq!(c.get("quarantined").u64(), 1);

    // Quarantined long ago: nothing has arrived since, stale again.
    let days_ago = SystemTime::now() - Duration::from_secs(3 * 86_400);
    for entry in fs::read_dir(server.quarantine_dir())
        .expect("quarantine")
        .flatten()
    {
        let reason = entry.path().join(webjob_drop::ops::REASON_FILE);
        if reason.is_file() {
            fs::File::options()
                .write(true)
                .open(&reason)
                .and_then(|f| f.set_modified(days_ago))
                .expect("backdate");
        }
    }
    let (code, r) = report(&server);
    assert_eq!(code, 2, "{r:?}");
    assert_eq!(client(&r, "client1").get("state").str(), "stale");
}

#[test]
fn an_orphan_is_a_warning() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", "sensor1", minutes_ago(10), &samples[2]);
    pass(&server);
    // A failed upload: data without .rdy. Young, it is an upload in flight: no warning.
    let orphan = Upload::at("client1", minutes_ago(3))
        .out(samples[3].clone())
        .hostname("sensor1")
        .orphan()
        .write(&server.drop_dir())
        .expect("write");
    let (code, r) = report(&server);
    assert_eq!(code, 0, "in flight is no warning: {r:?}");
    let c = client(&r, "client1");
    assert_eq!((c.get("in_flight").u64(), c.get("orphans").u64()), (1, 0));

    // Older than orphan_after, it is an orphan.
    server.write_toml(&["client1"], "orphan_after = \"1s\"\n");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in &orphan.paths {
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(an_hour_ago))
            .expect("backdate");
    }
    let (code, r) = report(&server);
    assert_eq!(code, 1, "an orphan is a warning: {r:?}");
    assert_eq!(r.get("status").str(), "warning");
    let c = client(&r, "client1");
    assert_eq!((c.get("in_flight").u64(), c.get("orphans").u64()), (0, 1));
    assert_eq!(c.get("state").str(), "warning");
    let (code, text) = table(&server);
    assert_eq!(code, 1);
    assert!(table_line(&text, "client1").contains(" WARNING "), "{text}");
    // Status only looks: the orphan is where it was.
    assert!(orphan.paths.iter().all(|p| p.is_file()));
}

#[test]
fn unconfigured_clients_are_listed_and_do_not_change_the_exit_status() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", "sensor1", minutes_ago(10), &samples[2]);
    pass(&server);
    // client10 (client1 is a prefix of it, and must not match) uploads, three days ago, and
    // leaves an orphan: were it configured, it would be stale and warned about.
    Upload::at("client10", minutes_ago(3 * 24 * 60))
        .out(samples[3].clone())
        .write(&server.drop_dir())
        .expect("write");
    Upload::at("client10", minutes_ago(5 * 24 * 60))
        .out(samples[3].clone())
        .orphan()
        .modified(SystemTime::now() - Duration::from_secs(3 * 86_400))
        .write(&server.drop_dir())
        .expect("write");
    let (code, r) = report(&server);
    assert_eq!(code, 0, "unconfigured clients do not count: {r:?}");
    assert_eq!(r.get("status").str(), "ok");
    let other = client(&r, "client10");
    assert_eq!(other.get("configured"), &Json::Bool(false));
    assert_eq!(other.get("state").str(), "unconfigured");
    assert_eq!(other.get("pending").u64(), 1);
    let (code, text) = table(&server);
    assert_eq!(code, 0);
    assert!(
        table_line(&text, "client10").contains(" unconfigured "),
        "{text}"
    );
    // A pass leaves them alone.
    pass(&server);
    let (_, r) = report(&server);
    assert_eq!(client(&r, "client10").get("pending").u64(), 1);
}

#[test]
fn an_unreadable_ledger_is_unknown() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    fs::create_dir_all(server.state_dir().join("ledger")).expect("a directory in its place");
    let (code, text) = table(&server);
    assert_eq!(code, 3, "unknown, like a monitoring plugin: {text}");
}

#[test]
fn a_group_the_webjob_server_still_locks_is_in_flight_as_for_a_pass() {
    let server = Server::new();
    server.write_toml(&["client1"], "");
    let samples = good_samples();
    // The server wrote .rdy but has not removed its .lck yet: a pass leaves the group alone,
    // and status counts it in flight, not pending.
    Upload::at("client1", minutes_ago(2))
        .out(samples[2].clone())
        .keep_lock()
        .write(&server.drop_dir())
        .expect("write");
    Upload::at("client1", minutes_ago(1))
        .out(samples[3].clone())
        .write(&server.drop_dir())
        .expect("write");
    let (_, r) = report(&server);
    let c = client(&r, "client1");
    assert_eq!(
        (c.get("pending").u64(), c.get("in_flight").u64()),
        (1, 1),
        "{r:?}"
    );
    pass(&server);
    let (_, r) = report(&server);
    let c = client(&r, "client1");
    assert_eq!(
        (c.get("pending").u64(), c.get("in_flight").u64()),
        (0, 1),
        "the pass took the unlocked group only: {r:?}"
    );
}

#[test]
fn host_shows_one_sensor_hour_by_hour() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        minutes_ago(90),
        &[],
        &[(1, &samples[2])],
    );
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        minutes_ago(5),
        &[],
        &[(2, &samples[3])],
    );
    pass(&server);

    let out = server.run_within(&["status", "--host", "client1", "--json"], DEADLINE);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let doc = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("JSON");
    assert_eq!(doc.get("client").str(), "client1");
    let hours = doc.get("hours").items();
    assert_eq!(hours.len(), 24, "the last 24 clock hours");
    let uploads: Vec<u64> = hours.iter().map(|h| h.get("uploads").u64()).collect();
    assert_eq!(uploads.iter().sum::<u64>(), 2);
    let starts: Vec<&str> = hours.iter().map(|h| h.get("start").str()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {starts:?}"
    );
    let this_hour = argus_core::stamp::format_rfc3339(minutes_ago(0));
    assert_eq!(starts[23][..13], this_hour[..13], "the current hour last");
    let (code, text) = {
        let out = server.run_within(&["status", "--host", "client1"], DEADLINE);
        (
            status(&out),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, 0);
    assert!(text.starts_with("client1: the last 24 hours\n"), "{text}");
    assert_eq!(
        text.lines().count(),
        26,
        "a title, a header and 24 hours: {text}"
    );

    let out = server.run_within(&["status", "--host", "nobody"], DEADLINE);
    assert_eq!(status(&out), 3, "an unknown sensor is unknown");
    assert!(stderr(&out).contains("\"nobody\""), "{}", stderr(&out));
}
