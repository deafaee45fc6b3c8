//! argus 5 beside argus 3, end to end: process_argus ingests uploads of argus 3 sensors, argus 5
//! sensors and sensors upgraded during the day into day files that hold both, exactly once, and
//! `status` shows each client's version.
//!
//! The tests use the committed argus 5.0.3 samples and run everywhere; the day files are read
//! back with the argus 5.0.3 `ra` when `ARGUS5_PREFIX` names it. (A live argus 5 harvested by
//! harvest_argus and ingested by process_argus is in the workspace's end-to-end tests, `tests/`.)

#![allow(
    clippy::print_stderr,
    reason = "the tests say loudly what they skip and what they measured"
)]

use crate::support;

use std::time::Duration;

use argus_core::record::{Version, walk};
use support::{Ledger, day_name, day_start, read, report_client, status_report};
use test_support::bins::sample;
use test_support::server::{Server, status, stderr};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

const DEADLINE: Duration = Duration::from_secs(60);

fn v3(name: &str) -> Vec<u8> {
    read(&sample(name))
}

fn v5(name: &str) -> Vec<u8> {
    read(&sample(&format!("argus5/{name}")))
}

/// Yesterday at `hour:minute` UTC.
fn at(hour: i64, minute: i64) -> OffsetDateTime {
    day_start(1) + time::Duration::hours(hour) + time::Duration::minutes(minute)
}

/// Writes an upload of damaged argus 5 data (a truncated sample), to be quarantined.
fn write_bad5(
    server: &Server,
    ledger: &mut Ledger,
    client: &str,
    host: &str,
    when: OffsetDateTime,
) {
    let written = Upload::at(client, when)
        .out(v5("hostA.truncated.argus"))
        .hostname(host)
        .write(&server.drop_dir())
        .expect("write upload");
    ledger.bad.push(written.stem);
}

fn versions(report: &test_support::json::Json, client: &str) -> (String, String) {
    let c = report_client(report, client);
    let text = |key: &str| match c.get(key) {
        test_support::json::Json::Null => "null".to_owned(),
        v => v.u64().to_string(),
    };
    (text("argus_version"), text("previous_argus_version"))
}

#[test]
fn a_fleet_of_argus3_argus5_and_upgraded_sensors_is_ingested_exactly_once() {
    let server = Server::new();
    server.write_toml(&["old3", "new5", "upgr"], "archive_days = 0\n");
    let mut ledger = Ledger::default();
    // An argus 3 sensor, hourly.
    ledger.write_manifested(
        &server,
        "old3",
        "s-old",
        at(1, 0),
        &[],
        &[(1, &v3("hostD.chunk1.argus"))],
    );
    ledger.write_manifested(
        &server,
        "old3",
        "s-old",
        at(2, 0),
        &[],
        &[(2, &v3("hostD.chunk2.argus"))],
    );
    // An argus 5 sensor, hourly, with one damaged upload between.
    ledger.write_manifested(
        &server,
        "new5",
        "s-new",
        at(1, 0),
        &[],
        &[(1, &v5("hostD.chunk1.argus"))],
    );
    write_bad5(&server, &mut ledger, "new5", "s-new", at(1, 30));
    ledger.write_manifested(
        &server,
        "new5",
        "s-new",
        at(2, 0),
        &[],
        &[(2, &v5("hostD.chunk2.argus"))],
    );
    // A sensor upgraded from argus 3 to 5 in the morning: its 02:00 upload holds the last argus
    // 3 chunk and the first argus 5 one; an upload from a shell harvester (no manifest) too.
    ledger.write_manifested(
        &server,
        "upgr",
        "s-up",
        at(1, 0),
        &[],
        &[(1, &v3("hostB.argus"))],
    );
    let (b3, c5) = (v3("hostC.argus"), v5("hostB.argus"));
    ledger.write_manifested(
        &server,
        "upgr",
        "s-up",
        at(2, 0),
        &[],
        &[(2, &b3), (3, &c5)],
    );
    ledger.write(&server, "upgr", "s-up", at(3, 0), &v5("hostC.argus"));

    let out = server.run(&[]);
    assert_eq!(status(&out), 1, "one upload quarantined: {}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");

    // The upgraded sensor's day file: argus 3 streams, then argus 5 streams.
    let day = server.oper_dir().join(day_name("s-up", at(1, 0)));
    let data = read(&day);
    let r = walk(&data[..]).expect("walk");
    let got: Vec<Version> = r.streams.iter().map(|s| s.version).collect();
    assert_eq!(got, [Version::V3, Version::V3, Version::V5, Version::V5]);
    let reason =
        std::fs::read_to_string(server.quarantine_dir().join(&ledger.bad[0]).join("reason"))
            .expect("reason");
    assert!(reason.contains("truncated record at 42368"), "{reason}");

    let (_, report) = status_report(&server, DEADLINE);
    assert_eq!(versions(&report, "old3"), ("3".into(), "null".into()));
    assert_eq!(versions(&report, "new5"), ("5".into(), "null".into()));
    assert_eq!(versions(&report, "upgr"), ("5".into(), "3".into()));

    // The upgraded sensor goes back to argus 3: status says so.
    ledger.write_manifested(
        &server,
        "upgr",
        "s-up",
        at(4, 0),
        &[],
        &[(4, &v3("hostD.chunk1.argus"))],
    );
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
    let (_, report) = status_report(&server, DEADLINE);
    assert_eq!(versions(&report, "upgr"), ("3".into(), "5".into()));
    let table = server.run(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("upgr: went back from argus 5 to argus 3"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("new5 "))
        .expect("new5's line");
    // CLIENT STATE AGE "ago" ARGUS ...
    assert_eq!(line.split_whitespace().nth(4), Some("5"), "{text}");
}

#[test]
fn argus5_uploads_are_salvaged_and_join_compressed_days() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\ndamaged_uploads = \"salvage\"\n",
    );
    let mut ledger = Ledger::default();
    // A day compressed long ago, of argus 3 data: late argus 5 data joins it as a new member.
    let old = day_start(5) + time::Duration::hours(3);
    ledger.existing_day(
        &server,
        &day_name("sensor1", old),
        &v3("hostB.argus"),
        Some("gzip"),
    );
    ledger.write(
        &server,
        "client1",
        "sensor1",
        old + time::Duration::hours(1),
        &v5("hostC.argus"),
    );
    // A damaged argus 5 upload from a shell harvester: its whole records are appended, and it
    // goes to the quarantine whole.
    ledger.write(&server, "client1", "sensor1", at(1, 0), &v5("hostB.argus"));
    let truncated = v5("hostA.truncated.argus");
    let rec = ledger.write(&server, "client1", "sensor1", at(2, 0), &truncated);
    ledger.uploads.last_mut().expect("just written").appended = truncated[..42368].to_vec();
    ledger.bad.push(rec.stem.clone());

    let out = server.run(&[]);
    assert_eq!(status(&out), 1, "{}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
    let reason = std::fs::read_to_string(server.quarantine_dir().join(&rec.stem).join("reason"))
        .expect("reason");
    assert!(
        reason.contains("first 42368 bytes (321 complete records) were appended"),
        "{reason}"
    );
    let compressed = server
        .oper_dir()
        .join(format!("{}.gz", day_name("sensor1", old)));
    let data = support::decoded(&compressed);
    let r = walk(&data[..]).expect("walk");
    let got: Vec<Version> = r.streams.iter().map(|s| s.version).collect();
    assert_eq!(
        got,
        [Version::V3, Version::V5],
        "argus 3, then the late argus 5"
    );
}
