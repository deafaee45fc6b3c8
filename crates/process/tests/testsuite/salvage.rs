//! `damaged_uploads = "salvage"` (SPEC §2.2, the option): an upload whose argus data is damaged
//! has its complete records (the whole-record prefix before the damage) appended in its place
//! among the others, and goes to the quarantine whole, with a reason; its archive holds it whole
//! too. Uploads with chunk manifests, and data damaged from its first byte, are quarantined with
//! nothing appended. A kill at every step of such a batch still gives each byte exactly once.

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use support::{day_name, day_start, decoded, killed, manifests, read};
use test_support::bins::sample;
use test_support::server::{Server, spawn_piped, status, stderr, wait_within};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// Generous: only catches a hang.
const DEADLINE: Duration = Duration::from_secs(60);

const HOST: &str = "sensor1";

/// Where `hostA.truncated.argus` breaks (testdata README), and its records before that.
const TRUNCATED_VALID: usize = 41_220;
const TRUNCATED_RECORDS: u64 = 321;

struct Case {
    server: Server,
    /// What the day file must hold: the good uploads and the salvaged prefix, oldest first.
    day: Vec<u8>,
    day_path: PathBuf,
    /// Stems of the salvaged upload, and of those that must be quarantined with nothing appended.
    salvaged: String,
    refused: Vec<String>,
    truncated: Vec<u8>,
}

fn at(minutes: i64) -> OffsetDateTime {
    day_start(0) + time::Duration::hours(1) + time::Duration::minutes(minutes)
}

fn case(mode: &str) -> Case {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        &format!("archive_days = 0\ndamaged_uploads = \"{mode}\"\n"),
    );
    let drop = server.drop_dir();
    let write = |minutes: i64, bytes: &[u8], err: Option<Vec<u8>>| {
        let mut upload = Upload::at("client1", at(minutes))
            .out(bytes.to_vec())
            .hostname(HOST);
        if let Some(err) = err {
            upload = upload.err(err);
        }
        upload.write(&drop).expect("write upload").stem
    };
    let b = read(&sample("hostB.argus"));
    let c = read(&sample("hostC.argus"));
    let truncated = read(&sample("hostA.truncated.argus"));
    write(0, &b, None);
    let salvaged = write(1, &truncated, None);
    // Damaged, but with a manifest (its hash even matches): the sensor ships it again.
    let refused_manifest = write(2, &truncated, Some(manifests(HOST, &[(7, &truncated)])));
    // Damaged from the first byte: nothing to salvage.
    let mut garbage = b.clone();
    garbage[..4].copy_from_slice(b"\x00\x00\x00\x00");
    let refused_garbage = write(3, &garbage, None);
    write(4, &c, None);

    let day_path = server.oper_dir().join(day_name(HOST, at(0)));
    let day = [&b[..], &truncated[..TRUNCATED_VALID], &c[..]].concat();
    Case {
        server,
        day,
        day_path,
        salvaged,
        refused: vec![refused_manifest, refused_garbage],
        truncated,
    }
}

/// The quarantined group of `stem`: its directory.
fn quarantined(server: &Server, stem: &str) -> Option<PathBuf> {
    fs::read_dir(server.quarantine_dir())
        .expect("quarantine")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(format!("{stem}.out")).is_file())
}

fn archive(server: &Server, stem: &str) -> PathBuf {
    server.archive_dir().join(format!("{stem}.out.gz"))
}

#[test]
fn the_complete_records_of_a_damaged_upload_are_appended_in_place() {
    let c = case("salvage");
    // The plan says so, and changes nothing.
    let plan = c.server.run_within(&["--dry-run"], DEADLINE);
    let said = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        said.contains(&c.salvaged) && said.contains("would be appended before"),
        "{said}"
    );
    assert!(!c.day_path.exists(), "a dry run appends nothing");
    let out = c.server.run_within(&[], DEADLINE);
    assert_eq!(
        status(&out),
        1,
        "groups went to the quarantine: {}",
        stderr(&out)
    );
    let day = fs::read(&c.day_path).expect("day file");
    assert!(
        day == c.day,
        "the day file is the good uploads and the salvaged prefix, in order ({} bytes, {} expected)",
        day.len(),
        c.day.len()
    );
    let walked = argus_core::record::walk(&day[..]).expect("walk");
    assert!(walked.is_clean(), "{}", walked.walk);
    assert_eq!(walked.records, 105 + TRUNCATED_RECORDS + 89);
    if test_support::tools::have("ra") {
        assert_eq!(
            test_support::tools::ra_records(&c.day_path),
            105 + 321 + 89,
            "ra reads every record"
        );
    }

    // The salvaged upload: whole in the quarantine, with why; whole in the archive.
    let place = quarantined(&c.server, &c.salvaged).expect("salvaged group in quarantine");
    assert_eq!(
        read(&place.join(format!("{}.out", c.salvaged))),
        c.truncated
    );
    let reason = fs::read_to_string(place.join(webjob_drop::ops::REASON_FILE)).expect("reason");
    assert!(
        reason.contains("damaged") && reason.contains("41220 bytes"),
        "{reason}"
    );
    assert_eq!(decoded(&archive(&c.server, &c.salvaged)), c.truncated);
    // The others: quarantined, nothing appended, not archived.
    for stem in &c.refused {
        assert!(quarantined(&c.server, stem).is_some(), "{stem} quarantined");
        assert!(!archive(&c.server, stem).exists(), "{stem} not archived");
    }
    assert!(
        test_support::server::Server::files(&c.server.drop_dir()).is_empty(),
        "the dropzone is drained"
    );

    // Exactly once: another pass changes nothing.
    let again = c.server.run_within(&[], DEADLINE);
    assert_eq!(status(&again), 0, "{}", stderr(&again));
    assert!(fs::read(&c.day_path).expect("day file") == c.day);
}

#[test]
fn by_default_a_damaged_upload_appends_nothing() {
    let c = case("quarantine");
    let out = c.server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 1, "{}", stderr(&out));
    let b = read(&sample("hostB.argus"));
    let cc = read(&sample("hostC.argus"));
    assert!(fs::read(&c.day_path).expect("day file") == [b, cc].concat());
    assert!(quarantined(&c.server, &c.salvaged).is_some());
    assert!(!archive(&c.server, &c.salvaged).exists());
}

#[test]
fn a_kill_at_every_step_of_a_salvage_still_gives_exactly_once() {
    for point in [
        "journaled",
        "appended",
        "synced",
        // ("archived" is hit by uncompressed moves only.)
        "archives-durable",
        "ledgered",
        "removed",
    ] {
        let c = case("salvage");
        let child = spawn_piped(c.server.command().env("ARGUS_WEBJOB_FAILPOINT", point));
        let out = wait_within(child, DEADLINE);
        assert!(killed(&out), "{point}: killed there ({})", stderr(&out));
        let out = c.server.run_within(&[], DEADLINE);
        assert!(
            matches!(status(&out), 0 | 1),
            "{point}: the run after: {}",
            stderr(&out)
        );
        let day = fs::read(&c.day_path).expect("day file");
        assert!(
            day == c.day,
            "{point}: the day file holds every byte once ({} bytes, {} expected)",
            day.len(),
            c.day.len()
        );
        // Whole somewhere: the quarantine (normally) or the archive (a kill before the move).
        assert_eq!(decoded(&archive(&c.server, &c.salvaged)), c.truncated);
        assert!(
            test_support::server::Server::files(&c.server.drop_dir()).is_empty(),
            "{point}: the dropzone is drained"
        );
    }
}
