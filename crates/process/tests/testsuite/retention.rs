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
        "archive_days = 0\narchive_max_size = \"10K\"\narchive_low_watermark = \"60%\"\n",
    );
    // 12 KiB of old archives of two clients, 1 KiB each, alternating, oldest first by name.
    for day in 10..22 {
        let client = if day % 2 == 0 { "client1" } else { "client2" };
        archive(
            &server,
            &format!("{client}_202611{day}120000_harvest_argus.out.gz"),
            1024,
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
    // The new upload's archive joins: ours total 12 KiB + its size, over 10 KiB: the oldest
    // go until at most 6 KiB are left.
    let ours_left: u64 = after
        .iter()
        .filter(|n| n.starts_with("client1_") || n.starts_with("client2_"))
        .map(|n| {
            fs::metadata(server.archive_dir().join(n))
                .expect("size")
                .len()
        })
        .sum();
    assert!(ours_left <= 6 * 1024, "{ours_left} bytes left: {after:?}");
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
