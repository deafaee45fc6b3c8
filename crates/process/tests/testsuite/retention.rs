//! Retention by size and the free-space floor: archived uploads deleted oldest first across
//! clients down to the watermark (never a day file, an unconfigured client's archive or an
//! upload in the dropzone), and a pass that ingests nothing below `min_free_space`, on a real
//! small tmpfs, losing nothing.

use crate::support;

use std::fs;
use std::path::Path;

use support::{Ledger, Tmpfs, day_start, good_samples};
use test_support::json::Json;
use test_support::server::{Server, status, stderr};

const HOST: &str = "sensor1";

fn archive(server: &Server, name: &str, size: usize) {
    fs::create_dir_all(server.archive_dir()).expect("archive dir");
    fs::write(server.archive_dir().join(name), vec![0x1f; size]).expect("archive");
}

fn archive_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("archive dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_archive_is_cut_down_to_its_watermark_oldest_first_across_clients() {
    let server = Server::new();
    server.write_toml(
        &["client1", "client2"],
        "archive_days = 0\narchive_max_size = \"10M\"\narchive_low_watermark = \"60%\"\n",
    );
    // 12 MiB of old archives of two clients, 1 MiB each, alternating, oldest first by name.
    for day in 10..22 {
        let client = if day % 2 == 0 { "client1" } else { "client2" };
        archive(
            &server,
            &format!("{client}_202611{day}120000_harvest_argus.out.gz"),
            1 << 20,
        );
    }
    // Not ours to delete: another client's, and a file of another shape.
    archive(
        &server,
        "client3_20261101000000_harvest_argus.out.gz",
        50_000,
    );
    archive(&server, "notes.txt", 50_000);
    let mut ledger = Ledger::default();
    ledger.write(&server, "client1", HOST, day_start(0), &good_samples()[0]);

    let out = server.run(&["--dry-run"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("would purge archive client1_20261110120000_harvest_argus.out.gz (over archive_max_size)"),
        "{said}"
    );
    let before = archive_names(&server.archive_dir());

    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let summary = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    let after = archive_names(&server.archive_dir());
    let gone: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    // The new upload's archive joins: ours total 12 MiB + its size, over 10 MiB: the oldest
    // go until at most 6 MiB are left.
    let ours_left: u64 = after
        .iter()
        .filter(|n| n.starts_with("client1_") || n.starts_with("client2_"))
        .map(|n| {
            fs::metadata(server.archive_dir().join(n))
                .expect("size")
                .len()
        })
        .sum();
    assert!(ours_left <= 6 << 20, "{ours_left} bytes left: {after:?}");
    assert_eq!(summary.get("purged").u64(), gone.len() as u64);
    let stamp = |n: &String| n.split('_').nth(1).unwrap_or_default().to_owned();
    let mut ours_before: Vec<String> = before
        .iter()
        .filter(|n| n.starts_with("client1_") || n.starts_with("client2_"))
        .cloned()
        .collect();
    ours_before.sort_by_key(stamp);
    let mut gone: Vec<String> = gone.into_iter().cloned().collect();
    gone.sort_by_key(stamp);
    assert!(gone.len() >= 6, "{gone:?}");
    assert_eq!(
        gone,
        ours_before[..gone.len()],
        "oldest first, whichever client"
    );
    for kept in [
        "client3_20261101000000_harvest_argus.out.gz",
        "notes.txt",
        &format!("{}.out.gz", ledger.uploads[0].stem),
    ] {
        assert!(after.iter().any(|n| n == kept), "{kept} kept: {after:?}");
    }
    // The upload itself went its way: appended once, gone from the dropzone.
    let day = server.oper_dir().join(&ledger.uploads[0].day);
    assert_eq!(support::decoded(&day), ledger.uploads[0].appended);
    assert!(!ledger.uploads[0].any_part_left());
}

#[test]
fn below_min_free_space_a_pass_ingests_nothing_and_loses_nothing() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\nmin_free_space = \"2M\"\n");
    let Some(_mount) = Tmpfs::mount(&server.oper_dir(), "4m", "", "a small file system") else {
        return;
    };
    let filler = server.oper_dir().join("filler");
    fs::write(&filler, vec![0u8; 3 << 20]).expect("fill");
    let mut ledger = Ledger::default();
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(30);
    for (i, data) in good_samples().iter().take(4).enumerate() {
        ledger.write(
            &server,
            "client1",
            HOST,
            now + time::Duration::seconds(i as i64),
            data,
        );
    }
    let out = server.run(&[]);
    assert_eq!(status(&out), 74, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("file system of the day files")
            && stderr(&out).contains("under min_free_space"),
        "{}",
        stderr(&out)
    );
    assert!(
        ledger.uploads.iter().all(support::Rec::intact),
        "every upload waits"
    );
    // status says why, as critical, and so do the metrics.
    let out = server.run(&["status", "--json"]);
    assert_eq!(status(&out), 2, "{}", stderr(&out));
    let report = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert!(
        report
            .get("ingest_stopped")
            .str()
            .contains("min_free_space")
    );
    let out = server.run(&["status", "--format", "prometheus"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("\nargus_webjob_ingest_stopped 1\n"), "{text}");

    // Space freed: the next pass ingests everything, exactly once.
    fs::remove_file(&filler).expect("free");
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
    let out = server.run(&["status", "--json"]);
    let report = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert!(matches!(report.get("ingest_stopped"), Json::Null));
}

/// 120 hourly uploads of one sensor, newest last, about 3 MiB of archives when stored
/// uncompressed (real argus 3 files, alternately 41 KiB and 11 KiB).
fn backlog(server: &Server) -> Ledger {
    let samples = good_samples();
    let (big, small) = (&samples[5], &samples[2]);
    let mut ledger = Ledger::default();
    // The last one this hour, so that the sensor is not stale.
    let now = time::OffsetDateTime::now_utc();
    let start = now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("hour"))
        - time::Duration::hours(119);
    for hour in 0..120 {
        let at = start + time::Duration::hours(hour);
        let bytes = if hour % 2 == 0 { big } else { small };
        ledger.write(server, "client1", HOST, at, bytes);
    }
    ledger
}

fn archive_bytes(server: &Server) -> u64 {
    fs::read_dir(server.archive_dir())
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_watermark_written_as_a_bare_number_is_refused_and_deletes_nothing() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"none\"\narchive_max_size = \"2M\"\narchive_low_watermark = 90\n",
    );
    let ledger = backlog(&server);
    let check = server.run(&["check-config"]);
    assert_eq!(status(&check), 78, "{}", stderr(&check));
    assert!(
        stderr(&check).contains(
            "archive_low_watermark = 90: a bare number has no unit: write \"90%\" or a size such as \"90M\""
        ),
        "{}",
        stderr(&check)
    );
    let pass = server.run(&[]);
    assert_eq!(status(&pass), 78, "{}", stderr(&pass));
    assert!(
        ledger.uploads.iter().all(|r| r.intact()),
        "every upload waits in the dropzone"
    );
    assert_eq!(
        archive_bytes(&server),
        0,
        "nothing archived, nothing deleted"
    );
}

#[test]
fn a_pass_over_a_backlog_keeps_the_newest_archives_under_the_cap_and_says_so() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"none\"\narchive_max_size = \"2M\"\narchive_low_watermark = \"90%\"\n",
    );
    let ledger = backlog(&server);
    let total: u64 = ledger.uploads.iter().map(|r| r.bytes.len() as u64).sum();
    assert!(total > 2_800_000, "{total} bytes of uploads");

    let check = server.run(&["check-config"]);
    let shown = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(status(&check), 0, "{}", stderr(&check));
    assert!(
        shown.contains("archive_low_watermark = 1.8 MiB (90% of archive_max_size, file)"),
        "{shown}"
    );

    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("written by this same pass")
            && stderr(&out)
                .contains("archive_max_size = 2 MiB with archive_low_watermark = 1.8 MiB"),
        "the surprising purge is named: {}",
        stderr(&out)
    );
    let left = archive_bytes(&server);
    assert!(
        (3 << 19..=2 << 20).contains(&left),
        "{left} bytes of archives left"
    );
    // The newest are kept: the archives left are exactly the latest uploads'.
    let kept = archive_names(&server.archive_dir());
    let mut newest: Vec<String> = ledger
        .uploads
        .iter()
        .rev()
        .take(kept.len())
        .map(|r| format!("{}.out", r.stem))
        .collect();
    newest.sort();
    assert_eq!(kept, newest);
    // Every upload is in its day file once, whatever its archive's fate.
    for rec in &ledger.uploads {
        assert!(!rec.any_part_left(), "{} is ingested", rec.stem);
    }
    let mut days: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    for rec in &ledger.uploads {
        days.entry(rec.day.as_str())
            .or_default()
            .extend_from_slice(&rec.appended);
    }
    for (day, bytes) in days {
        // Closed days are compressed.
        let path = [day.to_owned(), format!("{day}.gz")]
            .into_iter()
            .map(|name| server.oper_dir().join(name))
            .find(|p| p.exists())
            .expect("day file");
        assert_eq!(support::decoded(&path), bytes, "{day}");
    }

    // status shows it for a day, as a warning (exit 1), with the setting to look at.
    let (code, report) = support::status_report(&server, std::time::Duration::from_secs(60));
    assert_eq!(code, 1, "{report:?}");
    let warning = report.get("retention_warning");
    assert_eq!(warning.get("setting").str(), "archive_max_size");
    assert!(
        warning
            .get("message")
            .str()
            .contains("written by this same pass"),
        "{report:?}"
    );
    let prometheus = server.run(&["status", "--format", "prometheus"]);
    let text = String::from_utf8_lossy(&prometheus.stdout).into_owned();
    assert!(
        text.contains("argus_webjob_retention_warnings_total 1\n"),
        "{text}"
    );
}
