//! Quarantine management end to end: listing, requeueing after a fix (and a group still bad
//! coming back with its new reason), refusals, a kill -9 in the middle of a requeue, expiry.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use support::{Ledger, read};
use test_support::bins::sample;
use test_support::json::Json;
use test_support::server::{Server, spawn_piped, status, stderr, wait_within};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

const DEADLINE: Duration = Duration::from_secs(60);

fn recent(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::minutes(minutes)
}

fn list(server: &Server) -> Vec<Json> {
    let out = server.run(&["quarantine", "list", "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let doc = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    doc.get("groups").items().to_vec()
}

/// An upload whose `.env` names an invalid host: quarantined by a pass.
fn bad_host(server: &Server, at: OffsetDateTime) -> String {
    Upload::at("client1", at)
        .out(read(&sample("hostA.argus")))
        .hostname("bad host!")
        .write(&server.drop_dir())
        .expect("upload")
        .stem
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_fixed_group_is_requeued_and_ingested_and_a_still_bad_one_comes_back() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let fixable = bad_host(&server, recent(30));
    let mut ledger = Ledger::default();
    ledger.write_bad(&server, "client1", "sensor1", recent(29));
    let damaged = ledger.bad[0].clone();
    assert_eq!(status(&server.run(&[])), 1, "two quarantined");

    let groups = list(&server);
    assert_eq!(groups.len(), 2);
    let find = |stem: &str| {
        groups
            .iter()
            .find(|g| g.get("stem").str() == stem)
            .expect("listed")
            .clone()
    };
    let g = find(&fixable);
    assert_eq!(g.get("client").str(), "client1");
    assert!(
        g.get("reason").str().contains("not a valid host name"),
        "{g:?}"
    );
    assert!(!g.get("quarantined").str().is_empty());
    assert!(find(&damaged).get("reason").str().contains("damaged"));

    // The operator corrects the host name in the quarantined .env, then sends it back; a dry
    // run first changes nothing.
    let dir = PathBuf::from(g.get("dir").str());
    fs::write(dir.join(format!("{fixable}.env")), "Hostname=sensor9\n").expect("fix .env");
    let out = server.run(&["quarantine", "requeue", "--dry-run", &fixable]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("would requeue"));
    assert_eq!(list(&server).len(), 2);
    let out = server.run(&["quarantine", "requeue", &fixable]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let names = files_in(&server.drop_dir());
    assert!(names.contains(&format!("{fixable}.rdy")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".lck")), "{names:?}");
    assert_eq!(status(&server.run(&[])), 0, "ingested");
    let day = fs::read_dir(server.oper_dir())
        .expect("oper")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("sensor9_"));
    assert!(day, "the day file of the corrected host");
    assert_eq!(list(&server).len(), 1);

    // The damaged one, selected by its reason, comes back with its new reason after one pass
    // (and the pass does not go round in circles).
    let out = server.run(&["quarantine", "requeue", "--all", "--reason", "*damaged*"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(list(&server).is_empty());
    let out = server.run(&[]);
    assert_eq!(status(&out), 1, "{}", stderr(&out));
    let groups = list(&server);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].get("stem").str(), damaged);
    assert!(groups[0].get("reason").str().contains("damaged"));

    // Refusals: a stem unknown, a group of that stem in the dropzone.
    let out = server.run(&[
        "quarantine",
        "requeue",
        "client1_20000101000000_harvest_argus",
    ]);
    assert_eq!(status(&out), 64, "{}", stderr(&out));
    fs::write(server.drop_dir().join(format!("{damaged}.out")), b"x").expect("clash");
    let out = server.run(&["quarantine", "requeue", &damaged]);
    assert_eq!(status(&out), 74, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is in the dropzone"),
        "{}",
        stderr(&out)
    );
    assert_eq!(list(&server).len(), 1, "still quarantined");
}

#[test]
fn kill_9_in_the_middle_of_a_requeue_leaves_the_group_wholly_on_one_side() {
    for point in [
        "renamed for the requeue",
        "moved a part back:1",
        "moved a part back:3",
    ] {
        let server = Server::new();
        server.write_toml(&["client1"], "archive_days = 0\n");
        let stem = bad_host(&server, recent(30));
        assert_eq!(status(&server.run(&[])), 1);
        let dir = PathBuf::from(list(&server)[0].get("dir").str());
        fs::write(dir.join(format!("{stem}.env")), "Hostname=sensor9\n").expect("fix");
        let before: Vec<String> = files_in(&dir)
            .into_iter()
            .filter(|n| n != "reason" && !n.ends_with(".lck"))
            .collect();

        let child = spawn_piped(
            server
                .command()
                .args(["quarantine", "requeue", &stem])
                .env("ARGUS_WEBJOB_FAILPOINT", point),
        );
        let out = wait_within(child, DEADLINE);
        assert!(support::killed(&out), "{point}: {}", stderr(&out));
        // Half back: never complete-looking in the dropzone.
        let names = files_in(&server.drop_dir());
        assert!(
            !names.contains(&format!("{stem}.rdy")) || names.len() == before.len(),
            "{point}: {names:?}"
        );
        // The next pass (or the next quarantine command) finishes it: wholly in the dropzone,
        // ingested once.
        let out = server.run(&[]);
        assert_eq!(status(&out), 0, "{point}: {}", stderr(&out));
        assert!(list(&server).is_empty(), "{point}");
        assert!(files_in(&server.drop_dir()).is_empty(), "{point}: ingested");
        assert_eq!(
            files_in(&server.quarantine_dir()),
            Vec::<String>::new(),
            "{point}: nothing left behind"
        );
        let days: Vec<String> = files_in(&server.oper_dir());
        assert_eq!(days.len(), 1, "{point}: {days:?}");
        let data = support::decoded(&server.oper_dir().join(&days[0]));
        assert_eq!(data, read(&sample("hostA.argus")), "{point}: once");
    }
}

#[test]
fn quarantined_groups_expire_after_quarantine_days() {
    let server = Server::new();
    server.write_toml(&["client1"], "quarantine_days = 30\n");
    let old = bad_host(&server, recent(50));
    let young = bad_host(&server, recent(40));
    assert_eq!(status(&server.run(&[])), 1);
    // One was quarantined 31 days ago: its reason file's time says when.
    let old_dir = PathBuf::from(
        list(&server)
            .iter()
            .find(|g| g.get("stem").str() == old)
            .expect("listed")
            .get("dir")
            .str(),
    );
    let month_ago = SystemTime::now() - Duration::from_secs(31 * 86_400);
    fs::File::options()
        .write(true)
        .open(old_dir.join("reason"))
        .expect("reason")
        .set_modified(month_ago)
        .expect("set time");

    let out = server.run(&["--dry-run"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("would expire the quarantined") && said.contains(&old),
        "{said}"
    );
    assert_eq!(list(&server).len(), 2, "a dry run changes nothing");

    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let summary = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert_eq!(summary.get("expired").u64(), 1);
    let left = list(&server);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].get("stem").str(), young);
    assert!(!old_dir.exists());

    // quarantine_days = 0 keeps everything.
    server.write_toml(&["client1"], "quarantine_days = 0\n");
    let young_dir = PathBuf::from(left[0].get("dir").str());
    fs::File::options()
        .write(true)
        .open(young_dir.join("reason"))
        .expect("reason")
        .set_modified(month_ago)
        .expect("set time");
    server.run(&[]);
    assert_eq!(list(&server).len(), 1);
}
