//! Chunk accounting end to end (SPEC §2.3): the manifest lines harvest_argus writes to `.err`
//! are checked (byte count, SHA-256) and their `host`+`seq` kept in the ledger, so that a missing
//! chunk shows as a gap in `process_argus status`, a chunk shipped twice is appended once and
//! counted as a duplicate, and a crash at any step leaves no false duplicate and no false gap.
//! Uploads without a manifest (the old shell harvester) are ingested as before.

use crate::support;

use std::fs;
use std::process::Output;
use std::time::Duration;

use support::{
    Ledger, day_name, ended, good_samples, killed, manifests, read, report_client, status_report,
};
use test_support::bins::sample;
use test_support::json::Json;
use test_support::server::{Server, spawn_piped, status, stderr, wait_within};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// A recent upload time (well within `stale_after`), `i` seconds after a base 20 minutes ago.
fn recent(i: i64) -> OffsetDateTime {
    let base = OffsetDateTime::now_utc() - time::Duration::minutes(20);
    base.replace_nanosecond(0).expect("whole second") + time::Duration::seconds(i)
}

fn server(clients: &[&str]) -> Server {
    let server = Server::new();
    server.write_toml(clients, "archive_days = 0\n");
    server
}

/// One pass with `--json`: its exit status and summary.
fn pass(server: &Server) -> (i32, Json) {
    let out = server.run_within(&["--json"], DEADLINE);
    (status(&out), summary(&out))
}

fn summary(out: &Output) -> Json {
    let text = String::from_utf8_lossy(&out.stdout);
    Json::parse(&text).unwrap_or_else(|e| {
        panic!(
            "the pass prints one JSON object ({e}): {text:?}; stderr:\n{}",
            stderr(out)
        )
    })
}

/// `status --json`: its exit status and report.
fn status_json(server: &Server) -> (i32, Json) {
    status_report(server, DEADLINE)
}

/// The object of `client` in a status report.
fn client<'a>(report: &'a Json, id: &str) -> &'a Json {
    report_client(report, id)
}

/// The gaps of a client object as `(host, first, last)`.
fn gaps(client: &Json) -> Vec<(String, u64, u64)> {
    client
        .get("gaps")
        .items()
        .iter()
        .map(|g| {
            (
                g.get("host").str().to_owned(),
                g.get("first").u64(),
                g.get("last").u64(),
            )
        })
        .collect()
}

#[test]
fn seq_1_2_4_is_one_gap_until_3_arrives() {
    let server = server(&["client1"]);
    let samples = good_samples();
    let mut ledger = Ledger::default();
    for (i, seq) in [1u64, 2, 4].into_iter().enumerate() {
        ledger.write_manifested(
            &server,
            "client1",
            "sensor1",
            recent(i as i64),
            &[],
            &[(seq, &samples[i + 1])],
        );
    }
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "the pass: {done:?}");
    assert_eq!(done.get("ingested").u64(), 3);
    assert_eq!(done.get("duplicates").u64(), 0);

    let (code, report) = status_json(&server);
    let c = client(&report, "client1");
    assert_eq!(code, 1, "a gap is a warning: {report:?}");
    assert_eq!(report.get("status").str(), "warning");
    assert_eq!(c.get("state").str(), "warning");
    assert_eq!(c.get("missing_chunks").u64(), 1);
    assert_eq!(gaps(c), [("sensor1".to_owned(), 3, 3)], "one gap: seq 3");
    assert_eq!(c.get("duplicates").u64(), 0);
    assert_eq!(c.get("uploads_24h").u64(), 3);
    let bytes: usize = samples[1..4].iter().map(Vec::len).sum();
    assert_eq!(c.get("bytes_24h").u64(), bytes as u64);
    // The table says it in words, too.
    let table = server.run_within(&["status"], DEADLINE);
    assert_eq!(status(&table), 1);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("client1: host sensor1 is missing chunks 3"),
        "{text}"
    );

    // The late chunk fills the gap.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(10),
        &[],
        &[(3, &samples[4])],
    );
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 1);
    let (code, report) = status_json(&server);
    let c = client(&report, "client1");
    assert_eq!(code, 0, "the gap is filled: {report:?}");
    assert_eq!(c.get("state").str(), "ok");
    assert_eq!(c.get("missing_chunks").u64(), 0);
    assert!(gaps(c).is_empty());
    assert_eq!(c.get("uploads_24h").u64(), 4);
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn the_same_chunk_shipped_twice_is_appended_once() {
    let server = server(&["client1", "client2"]);
    let samples = good_samples();
    let chunk = &samples[5];
    let mut ledger = Ledger::default();

    // Across passes: the second copy meets the ledger.
    ledger.write_manifested(&server, "client1", "sensor1", recent(0), &[], &[(7, chunk)]);
    assert_eq!(pass(&server).0, 0);
    let again =
        ledger.write_manifested(&server, "client1", "sensor1", recent(1), &[(7, chunk)], &[]);
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("duplicates").u64(), 1, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 0, "nothing new appended");
    assert_eq!(done.get("empty").u64(), 1, "archived, nothing appended");
    let day = server.oper_dir().join(day_name("sensor1", again.at));
    assert_eq!(read(&day), *chunk, "the day file holds the chunk once");

    // In one pass: the second copy meets the first in the same batch.
    ledger.write_manifested(&server, "client2", "sensor2", recent(2), &[], &[(1, chunk)]);
    ledger.write_manifested(&server, "client2", "sensor2", recent(3), &[(1, chunk)], &[]);
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("duplicates").u64(), 1, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 1);

    let (code, report) = status_json(&server);
    assert_eq!(code, 0, "a duplicate alone is no warning: {report:?}");
    for id in ["client1", "client2"] {
        let c = client(&report, id);
        assert_eq!(c.get("duplicates").u64(), 1, "{id}: {c:?}");
        assert!(gaps(c).is_empty(), "{id}: {c:?}");
        assert_eq!(c.get("uploads_24h").u64(), 2, "{id}: both uploads count");
    }
    // Both raw uploads are archived; each day file holds the chunk once.
    ledger.assert_exactly_once(&server, ".gz");
}

/// A sensor whose numbering went back (its state was lost or reinstalled) ships new data under
/// numbers the ledger has seen: the content differs, so it is appended, never left out.
#[test]
fn a_number_seen_before_with_other_bytes_is_appended() {
    let server = server(&["client1"]);
    let samples = good_samples();
    let mut ledger = Ledger::default();
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(0),
        &[],
        &[(1, &samples[0])],
    );
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(1),
        &[],
        &[(2, &samples[1])],
    );
    assert_eq!(pass(&server).0, 0);
    // The sensor starts again at 1, with other bytes.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(2),
        &[],
        &[(1, &samples[2])],
    );
    let out = server.run_within(&["--json"], DEADLINE);
    let done = summary(&out);
    assert_eq!(status(&out), 0, "{done:?}");
    assert_eq!(done.get("duplicates").u64(), 0, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 1, "the new bytes are appended");
    assert!(
        stderr(&out).contains("with other content"),
        "the reused number is reported: {}",
        stderr(&out)
    );
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn an_upload_of_two_chunks_appends_only_the_new_one() {
    let server = server(&["client1"]);
    let samples = good_samples();
    let (chunk1, chunk2) = (&samples[3], &samples[4]);
    let mut ledger = Ledger::default();

    // sensor1: chunk 1 in one pass, then chunks 1+2 in one upload in the next.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(0),
        &[],
        &[(1, chunk1)],
    );
    assert_eq!(pass(&server).0, 0);
    let both = ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(1),
        &[(1, chunk1)],
        &[(2, chunk2)],
    );
    // sensor2: the same, both uploads in one pass.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor2",
        recent(2),
        &[],
        &[(1, chunk1)],
    );
    let both2 = ledger.write_manifested(
        &server,
        "client1",
        "sensor2",
        recent(3),
        &[(1, chunk1)],
        &[(2, chunk2)],
    );
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("duplicates").u64(), 2, "{done:?}");

    let mut want = chunk1.clone();
    want.extend_from_slice(chunk2);
    for (host, rec) in [("sensor1", &both), ("sensor2", &both2)] {
        let day = server.oper_dir().join(day_name(host, rec.at));
        assert!(
            read(&day) == want,
            "{host}: the day file is chunk 1 then chunk 2, each once"
        );
    }
    let (code, report) = status_json(&server);
    assert_eq!(code, 0, "{report:?}");
    let c = client(&report, "client1");
    assert_eq!(c.get("duplicates").u64(), 2);
    assert!(gaps(c).is_empty());
    ledger.assert_exactly_once(&server, ".gz");
}

/// The quarantined group of `stem` and its reason.
fn quarantine_reason(server: &Server, stem: &str) -> String {
    let dir = server.quarantine_dir().join(stem);
    for ext in ["out", "err", "env", "rdy"] {
        assert!(
            dir.join(format!("{stem}.{ext}")).is_file(),
            "{stem}.{ext} is in the quarantine"
        );
    }
    fs::read_to_string(dir.join("reason")).expect("reason file")
}

#[test]
fn a_tampered_out_is_quarantined_and_its_seq_stays_missing() {
    let server = server(&["client1"]);
    let honest = read(&sample("hostB.argus"));
    // One bit flipped in the last record's body: still valid argus framing, so only the
    // manifest's hash can tell.
    let mut tampered = honest.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(
        argus_core::record::walk(&tampered[..])
            .expect("walk")
            .is_clean(),
        "the tampered data still walks clean"
    );
    let hashed = Upload::at("client1", recent(0))
        .out(tampered)
        .hostname("sensor1")
        .err(manifests("sensor1", &[(1, &honest)]))
        .write(&server.drop_dir())
        .expect("write");
    // Another whose .out is longer than its manifest says.
    let mut longer = honest.clone();
    longer.extend_from_slice(&read(&sample("hostC.argus")));
    let counted = Upload::at("client1", recent(1))
        .out(longer)
        .hostname("sensor2")
        .err(manifests("sensor2", &[(1, &honest)]))
        .write(&server.drop_dir())
        .expect("write");

    // And a good one from a third sensor, so that the client is not stale.
    let mut ledger = Ledger::default();
    ledger.write(
        &server,
        "client1",
        "sensor3",
        recent(2),
        &read(&sample("hostC.argus")),
    );

    let (code, done) = pass(&server);
    assert_eq!(code, 1, "a quarantine makes the pass exit 1: {done:?}");
    assert_eq!(done.get("quarantined").u64(), 2);
    assert_eq!(done.get("ingested").u64(), 1);
    let reason = quarantine_reason(&server, &hashed.stem);
    assert!(
        reason.contains("manifest") && reason.contains("sha256"),
        "the reason names the manifest's hash: {reason}"
    );
    let reason = quarantine_reason(&server, &counted.stem);
    assert!(
        reason.contains("manifest claims"),
        "the reason names the manifest's byte count: {reason}"
    );
    assert_eq!(
        Server::files(&server.oper_dir()),
        [std::path::PathBuf::from(day_name("sensor3", recent(2)))],
        "nothing appended for the bad ones"
    );
    assert!(Server::files(&server.drop_dir()).is_empty());

    let (code, report) = status_json(&server);
    let c = client(&report, "client1");
    assert_eq!(code, 1, "quarantined groups are a warning: {report:?}");
    assert_eq!(c.get("quarantined").u64(), 2);

    // The bad copy did not count as seq 1: the honest one, shipped again, is appended.
    ledger.write_manifested(
        &server,
        "client1",
        "sensor1",
        recent(5),
        &[],
        &[(1, &honest)],
    );
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 1);
    assert_eq!(done.get("duplicates").u64(), 0, "not taken for a duplicate");
    let day = server.oper_dir().join(day_name("sensor1", recent(5)));
    assert!(read(&day) == honest);
    let (code, report) = status_json(&server);
    assert_eq!(code, 1, "the quarantined groups still count: {report:?}");
    assert_eq!(client(&report, "client1").get("missing_chunks").u64(), 0);
}

#[test]
fn uploads_without_a_manifest_still_ingest() {
    let server = server(&["client1"]);
    let samples = good_samples();
    let mut ledger = Ledger::default();
    // The old shell harvester: no manifest at all, the same bytes twice (nothing to tell them
    // apart by, so both are appended, as the recipe did), and one with other text in .err.
    ledger.write(&server, "client1", "sensor1", recent(0), &samples[2]);
    ledger.write(&server, "client1", "sensor1", recent(1), &samples[2]);
    let at = recent(2);
    let written = Upload::at("client1", at)
        .out(samples[3].clone())
        .hostname("sensor1")
        .err(b"harvest_argus: started argus on eth0\nsome other noise\n".to_vec())
        .write(&server.drop_dir())
        .expect("write");
    let (code, done) = pass(&server);
    assert_eq!(code, 0, "{done:?}");
    assert_eq!(done.get("ingested").u64(), 3);
    assert_eq!(done.get("duplicates").u64(), 0);
    let mut want = samples[2].clone();
    want.extend_from_slice(&samples[2]);
    want.extend_from_slice(&samples[3]);
    let day = server.oper_dir().join(day_name("sensor1", at));
    assert!(read(&day) == want, "every upload appended, oldest first");
    assert!(
        server
            .archive_dir()
            .join(format!("{}.out.gz", written.stem))
            .is_file()
    );

    let (code, report) = status_json(&server);
    let c = client(&report, "client1");
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(c.get("uploads_24h").u64(), 3);
    assert_eq!(c.get("missing_chunks").u64(), 0);
    assert_eq!(c.get("duplicates").u64(), 0);
}

/// Kills a pass at each failpoint of the batch's last steps, then runs it again: the ledger
/// knows every chunk once (no gap), counts the one chunk really shipped twice (no false
/// duplicate from facts recorded twice), and counts each upload once.
#[test]
fn a_crash_leaves_no_false_duplicate_and_no_gap() {
    for fp in [
        "appended:3",
        "synced:1",
        "removed:2",
        "removed:9",
        "ledgered:1",
    ] {
        let server = server(&["client1", "client2"]);
        let samples = good_samples();
        let mut ledger = Ledger::default();
        let mut n = 0;
        for seq in 1..=4u64 {
            for (client, host) in [("client1", "sensor1"), ("client2", "sensor2")] {
                let chunk = &samples[(usize::try_from(seq).expect("small") + n) % samples.len()];
                ledger.write_manifested(
                    &server,
                    client,
                    host,
                    recent(n as i64),
                    &[],
                    &[(seq, chunk)],
                );
                n += 1;
            }
        }
        // sensor1 ships chunk 4 again in front of chunk 5: one true duplicate.
        let chunk4 = ledger.uploads[6].bytes.clone();
        ledger.write_manifested(
            &server,
            "client1",
            "sensor1",
            recent(20),
            &[(4, &chunk4)],
            &[(5, &samples[1])],
        );
        let uploads = ledger.uploads.len() as u64;

        let child = spawn_piped(server.command().env("ARGUS_WEBJOB_FAILPOINT", fp));
        let out = wait_within(child, DEADLINE);
        assert!(
            killed(&out),
            "{fp}: the failpoint killed it: {}; {}",
            ended(&out),
            stderr(&out)
        );
        let (code, done) = pass(&server);
        assert_eq!(code, 0, "{fp}: the run after the crash: {done:?}");
        ledger.assert_exactly_once(&server, ".gz");

        let (code, report) = status_json(&server);
        assert_eq!(code, 0, "{fp}: all is well: {report:?}");
        let c1 = client(&report, "client1");
        let c2 = client(&report, "client2");
        for c in [c1, c2] {
            assert!(gaps(c).is_empty(), "{fp}: no gap: {c:?}");
            assert_eq!(c.get("quarantined").u64(), 0);
        }
        assert_eq!(
            c1.get("duplicates").u64(),
            1,
            "{fp}: the one reshipped chunk, counted once: {c1:?}"
        );
        assert_eq!(c2.get("duplicates").u64(), 0, "{fp}: {c2:?}");
        assert_eq!(
            c1.get("uploads_24h").u64() + c2.get("uploads_24h").u64(),
            uploads,
            "{fp}: every upload counted once"
        );
    }
}

/// An upload ingested before without a manifest comes again under its name with one, its
/// chunk new to the ledger, and a later upload ships that chunk again. The first is refused
/// (its archive's name is taken), so the later one, which left the chunk out, is taken back out
/// of the batch and ingested again: `kill -9` before, while and after that leaves the chunk in
/// its day file once, and the ledger knowing it.
#[test]
fn kill_9_around_an_upload_taken_back_out_of_its_batch_leaves_its_chunk_once() {
    let samples = good_samples();
    let (first, chunk, other) = (&samples[2], &samples[4], &samples[1]);
    let points = [
        None,
        Some("synced:1"),
        Some("taken-back:1"),
        Some("journaled:2"),
        Some("synced:2"),
        Some("ledgered:1"),
    ];
    for archive in ["gzip", "none"] {
        for fp in points {
            let context = format!("{archive} archives, failpoint {fp:?}");
            let server = Server::new();
            server.write_toml(
                &["client1"],
                &format!("archive_days = 0\narchive_compression = \"{archive}\"\n"),
            );
            let upload = |at: OffsetDateTime, bytes: &[u8], seq: Option<u64>| {
                let mut u = Upload::at("client1", at)
                    .out(bytes.to_vec())
                    .hostname("sensor1");
                if let Some(seq) = seq {
                    u = u.err(manifests("sensor1", &[(seq, bytes)]));
                }
                u.write(&server.drop_dir()).expect("write upload")
            };
            let at = recent(0);
            upload(at, first, None);
            assert_eq!(pass(&server).1.get("ingested").u64(), 1, "{context}");
            let refused = upload(at, chunk, Some(7));
            upload(recent(5), chunk, Some(7));
            upload(recent(10), other, None);
            if let Some(fp) = fp {
                let mut cmd = server.command();
                cmd.env("ARGUS_WEBJOB_FAILPOINT", fp);
                let out = wait_within(spawn_piped(&mut cmd), DEADLINE);
                assert!(killed(&out), "{context}: {}\n{}", ended(&out), stderr(&out));
            }
            let (code, done) = pass(&server);
            // 1 for the refused upload, unless the run killed quarantined it.
            assert!(matches!(code, 0 | 1), "{context}: exit {code}: {done:?}");
            let day = read(&server.oper_dir().join(day_name("sensor1", at)));
            let orders = [
                [&first[..], chunk, other].concat(),
                [&first[..], other, chunk].concat(),
            ];
            assert!(
                orders.contains(&day),
                "{context}: each upload once, chunk 7 once ({} bytes)",
                day.len()
            );
            assert!(Server::files(&server.drop_dir()).is_empty(), "{context}");
            assert!(
                server.quarantine_dir().join(&refused.stem).is_dir(),
                "{context}: the refused upload waits in the quarantine"
            );
            // The ledger knows chunk 7: shipped again, it is left out.
            upload(recent(20), chunk, Some(7));
            let (code, done) = pass(&server);
            assert_eq!(code, 0, "{context}: {done:?}");
            assert_eq!(done.get("duplicates").u64(), 1, "{context}");
            assert!(
                read(&server.oper_dir().join(day_name("sensor1", at))) == day,
                "{context}"
            );
        }
    }
}
