//! Day files by record time (`day_boundary = "record"`), end to end, on real argus data made at
//! chosen times: a capture whose packets carry them (`test-support`'s `pcap`) read by Debian's
//! argus 3 (`argus -r`). Uploads that straddle midnight, come days late and out of order land
//! flow by flow in the file of the day each started, each day file read alone by `ra`; a kill
//! -9 at any step leaves every flow once; a sensor clock in 1970 or a year ahead is caught.

use crate::support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use support::killed;
use test_support::pcap::{Datagram, argus_of};
use test_support::server::{Server, spawn_piped, status, stderr, wait_within};
use test_support::tools::{have, ra_flows, seconds};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

const HOST: &str = "sensor1";
const RECORD: &str = "day_boundary = \"record\"\narchive_days = 0\n";

/// argus 3 data of one flow per time in `times` (from `10.NET.x.y`), as `argus -r` makes it;
/// `None` when argus is not here.
fn argus_data(net: u8, times: &[i64]) -> Option<Vec<u8>> {
    if !Path::new("/usr/sbin/argus").exists() || !have("ra") {
        assert!(
            !test_support::tools::in_ci(),
            "argus and ra are required under CI"
        );
        return None;
    }
    let datagrams: Vec<Datagram> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| Datagram {
            at: (u32::try_from(t).expect("a time after 1970"), 0),
            src: Ipv4Addr::new(
                10,
                net,
                u8::try_from(i / 250).expect("few flows"),
                u8::try_from(i % 250).expect("under 250") + 1,
            ),
            dst: Ipv4Addr::new(10, 200, 0, 1),
            sport: 20_000 + u16::try_from(i).expect("few flows"),
            dport: 53,
        })
        .collect();
    Some(argus_of(Path::new("/usr/sbin/argus"), &datagrams).expect("argus -r"))
}

/// Each flow `ra` reads in `file`: `(start second, source address)`.
fn flows(file: &Path) -> Vec<(i64, String)> {
    ra_flows(Path::new("ra"), file, &["stime", "saddr"])
        .into_iter()
        .map(|f| (seconds(&f[0]), f[1].clone()))
        .collect()
}

/// The day files of the server: day (`YYYYMMDD`) -> flows `ra` reads there.
fn day_files(server: &Server) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out = BTreeMap::new();
    for name in Server::files(&server.oper_dir()) {
        let file = server.oper_dir().join(&name);
        let name = name.to_string_lossy().into_owned();
        let day = name
            .trim_end_matches(".gz")
            .rsplit_once('_')
            .map(|(_, d)| d.to_owned())
            .expect("HOST_YYYYMMDD");
        out.insert(day, flows(&file));
    }
    out
}

fn day_of(t: i64) -> String {
    let d = OffsetDateTime::from_unix_timestamp(t).expect("time").date();
    argus_core::stamp::format_date(d)
}

fn write(server: &Server, at: OffsetDateTime, data: &[u8]) -> String {
    Upload::at("client1", at)
        .out(data.to_vec())
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload")
        .stem
}

/// Every flow of `uploads`, each once, is in the day file of the day it started.
fn assert_filed_by_start_day(server: &Server, uploads: &[Vec<u8>]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut want = Vec::new();
    for (i, data) in uploads.iter().enumerate() {
        let f = dir.path().join(format!("u{i}"));
        std::fs::write(&f, data).expect("write");
        want.extend(flows(&f));
    }
    want.sort();
    let mut got = Vec::new();
    for (day, fl) in day_files(server) {
        assert!(
            !fl.is_empty(),
            "ra reads the file of {day} from its first byte"
        );
        for f in &fl {
            assert_eq!(day_of(f.0), day, "{f:?} is in the file of {day}");
        }
        got.extend(fl);
    }
    got.sort();
    assert_eq!(got, want, "every flow once");
}

/// Today's midnight, UTC, in Unix seconds: the MARs argus writes when it reads a capture carry
/// the wall clock, so the flows are made around the most recent midnight.
fn midnight() -> i64 {
    OffsetDateTime::now_utc()
        .replace_time(time::Time::MIDNIGHT)
        .unix_timestamp()
}

#[test]
fn uploads_across_midnight_days_late_and_out_of_order_are_filed_by_record_time() {
    let m = midnight();
    // Flows from 23:50 to 00:10 (straddling), 00:10 to 00:20, and three days old.
    let Some(straddling) = argus_data(1, &(0..40).map(|i| m - 600 + i * 30).collect::<Vec<_>>())
    else {
        return;
    };
    let after =
        argus_data(2, &(0..20).map(|i| m + 600 + i * 30).collect::<Vec<_>>()).expect("argus");
    let late = argus_data(
        3,
        &(0..10)
            .map(|i| m - 3 * 86_400 + 3600 + i * 60)
            .collect::<Vec<_>>(),
    )
    .expect("argus");
    let server = Server::new();
    // An ingested hook that notes the day file and the stem of each event.
    let log = server.root.path().join("events");
    let hook = server.root.path().join("note-event");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", log.display()),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    server.write_toml(
        &["client1"],
        &format!(
            "{RECORD}[[hook]]\non = \"ingested\"\ncommand = [\"{}\", \"{{stem}}\", \"{{day_file}}\"]\n",
            hook.display()
        ),
    );
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    // Out of order: the upload of the later flows is stamped first.
    write(&server, now, &after);
    write(&server, now + time::Duration::seconds(1), &straddling);
    write(&server, now + time::Duration::seconds(2), &late);
    let out = server.run(&["--dry-run"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("split by record time"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let days = day_files(&server);
    assert!(days.len() >= 3, "{:?}", days.keys());
    assert!(days.contains_key(&day_of(m - 1)) && days.contains_key(&day_of(m)));
    assert!(
        days.contains_key(&day_of(m - 3 * 86_400)),
        "the late day: {:?}",
        days.keys()
    );
    assert_filed_by_start_day(&server, &[after, straddling, late]);
    // Each upload once in the archive.
    assert_eq!(Server::files(&server.archive_dir()).len(), 3);
    // One ingested event per day file an upload touched: the later flows' upload one, the
    // straddling one two, the late one two (its flows' day, and today for the MARs `argus -r`
    // stamps with the wall clock).
    let events = std::fs::read_to_string(&log).expect("events");
    let mut lines: Vec<&str> = events.lines().collect();
    let all = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!((all, lines.len()), (5, 5), "{events}");
}

#[test]
fn kill_9_at_any_step_of_a_split_leaves_every_flow_once() {
    let m = midnight();
    let Some(a) = argus_data(4, &(0..30).map(|i| m - 450 + i * 30).collect::<Vec<_>>()) else {
        return;
    };
    let b = argus_data(5, &(0..30).map(|i| m - 300 + i * 20).collect::<Vec<_>>()).expect("argus");
    for point in [
        "journaled",
        "appended:1",
        "appended:2",
        "appended:3",
        "synced",
        "archives-durable",
        "ledgered",
        "removed:1",
    ] {
        let server = Server::new();
        server.write_toml(&["client1"], RECORD);
        let now = OffsetDateTime::now_utc() - time::Duration::minutes(5);
        write(&server, now, &a);
        write(&server, now + time::Duration::seconds(1), &b);
        let child = spawn_piped(server.command().env("ARGUS_WEBJOB_FAILPOINT", point));
        let out = wait_within(child, Duration::from_secs(60));
        assert!(killed(&out), "{point}: {}", stderr(&out));
        let out = server.run(&[]);
        assert_eq!(status(&out), 0, "{point}: {}", stderr(&out));
        assert_filed_by_start_day(&server, &[a.clone(), b.clone()]);
        assert_eq!(Server::files(&server.archive_dir()).len(), 2, "{point}");
        assert!(Server::files(&server.drop_dir()).is_empty(), "{point}");
    }
}

#[test]
fn a_sensor_clock_in_1970_or_a_year_ahead_is_caught() {
    let year = 365 * 86_400;
    let Some(old) = argus_data(6, &[86_400 * 2, 86_400 * 2 + 60]) else {
        return;
    };
    let ahead = argus_data(7, &[midnight() + year, midnight() + year + 60]).expect("argus");
    let server = Server::new();
    server.write_toml(&["client1"], RECORD);
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let s1 = write(&server, now, &old);
    let s2 = write(&server, now + time::Duration::seconds(1), &ahead);
    let out = server.run(&[]);
    assert_eq!(status(&out), 1, "quarantined: {}", stderr(&out));
    for stem in [&s1, &s2] {
        let reason = std::fs::read_to_string(server.quarantine_dir().join(stem).join("reason"))
            .expect("reason");
        assert!(reason.contains("check the sensor's clock"), "{reason}");
    }
    assert!(
        Server::files(&server.oper_dir()).is_empty(),
        "nothing filed in 1970 or next year"
    );

    // clock_policy = "upload_day" files them whole under their upload day instead.
    let server = Server::new();
    server.write_toml(
        &["client1"],
        &format!("{RECORD}clock_policy = \"upload_day\"\n"),
    );
    write(&server, now, &old);
    write(&server, now + time::Duration::seconds(1), &ahead);
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    // Each with a warning that says why.
    assert_eq!(
        stderr(&out)
            .matches("check the sensor's clock; filed whole under its upload day")
            .count(),
        2,
        "{}",
        stderr(&out)
    );
    let days = day_files(&server);
    assert_eq!(
        days.keys().cloned().collect::<Vec<_>>(),
        [argus_core::stamp::format_date(now.date())],
        "both under the upload day"
    );
    assert_eq!(days.values().map(Vec::len).sum::<usize>(), 4);
}

#[test]
fn enospc_in_the_second_day_file_of_a_split_upload_loses_and_doubles_nothing() {
    let m = midnight();
    let Some(data) = argus_data(8, &(0..40).map(|i| m - 600 + i * 30).collect::<Vec<_>>()) else {
        return;
    };
    let server = Server::new();
    server.write_toml(&["client1"], RECORD);
    let Some(_mount) = support::Tmpfs::mount(
        &server.oper_dir(),
        "64k",
        "",
        "a day file system that fills up",
    ) else {
        return;
    };
    // One page left: the first day's new file fits, the second day's does not.
    let filler = server.oper_dir().join("filler");
    std::fs::write(&filler, vec![0u8; 15 * 4096]).expect("fill");
    let stem = write(
        &server,
        OffsetDateTime::now_utc() - time::Duration::minutes(5),
        &data,
    );
    let out = server.run(&[]);
    assert_eq!(status(&out), 74, "the disk is full: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{HOST}_{}", day_of(m))),
        "it is the second day's file that did not fit: {}",
        stderr(&out)
    );
    assert!(
        server.drop_dir().join(format!("{stem}.rdy")).exists(),
        "the upload waits in the dropzone"
    );
    std::fs::remove_file(&filler).expect("free");
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let days = day_files(&server);
    assert_eq!(days.len(), 2, "{:?}", days.keys());
    assert_filed_by_start_day(&server, &[data]);
}

#[test]
fn a_chunk_shipped_again_is_left_out_and_a_salvaged_prefix_is_split_too() {
    let m = midnight();
    let Some(c1) = argus_data(9, &(0..30).map(|i| m - 400 + i * 30).collect::<Vec<_>>()) else {
        return;
    };
    let c2 = argus_data(10, &(0..20).map(|i| m + 500 + i * 30).collect::<Vec<_>>()).expect("argus");
    let server = Server::new();
    server.write_toml(
        &["client1"],
        &format!("{RECORD}damaged_uploads = \"salvage\"\n"),
    );
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    // harvest_argus ships chunk 1, then chunk 1 again with chunk 2.
    Upload::at("client1", now)
        .out(c1.clone())
        .err(support::manifests(HOST, &[(1, &c1)]))
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload");
    let both = [c1.as_slice(), c2.as_slice()].concat();
    Upload::at("client1", now + time::Duration::seconds(1))
        .out(both)
        .err(support::manifests(HOST, &[(1, &c1), (2, &c2)]))
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload");
    // An old shell harvester's upload cut short: its whole records are appended, by day.
    let damaged =
        argus_data(11, &(0..30).map(|i| m - 450 + i * 30).collect::<Vec<_>>()).expect("argus");
    let cut = &damaged[..damaged.len() - 7];
    let whole = argus_core::record::walk(cut).expect("walk").valid_len;
    Upload::at("client1", now + time::Duration::seconds(2))
        .out(cut.to_vec())
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload");
    let out = server.run(&[]);
    assert_eq!(
        status(&out),
        1,
        "the damaged one is quarantined: {}",
        stderr(&out)
    );
    let salvaged = &damaged[..usize::try_from(whole).expect("small")];
    assert_filed_by_start_day(&server, &[c1, c2, salvaged.to_vec()]);
}

#[test]
fn kill_9_at_random_instants_of_a_split_backlog_leaves_every_flow_once() {
    let m = midnight();
    let Some(data) = argus_data(12, &(0..40).map(|i| m - 600 + i * 30).collect::<Vec<_>>()) else {
        return;
    };
    let server = Server::new();
    server.write_toml(&["client1"], RECORD);
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(30);
    for i in 0..300 {
        write(&server, now + time::Duration::seconds(i), &data);
    }
    // Kills at pseudo-random instants (a fixed sequence, so a failure can be replayed).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..12 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut child = spawn_piped(&mut server.command());
        std::thread::sleep(Duration::from_millis(5 + state % 60));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait();
    }
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(kills > 0, "some kill landed mid-pass");
    let per_upload = {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("one");
        std::fs::write(&f, &data).expect("write");
        flows(&f)
    };
    let days = day_files(&server);
    for (day, fl) in &days {
        assert!(fl.iter().all(|f| day_of(f.0) == *day), "{day}");
    }
    let total: usize = days.values().map(Vec::len).sum();
    assert_eq!(
        total,
        per_upload.len() * 300,
        "every flow of every upload once ({kills} kills)"
    );
    assert_eq!(Server::files(&server.archive_dir()).len(), 300);
}

#[test]
fn a_chunk_that_continues_a_stream_is_split_behind_a_copy_of_its_mar_start() {
    let m = midnight();
    let Some(data) = argus_data(13, &(0..20).map(|i| m - 300 + i * 30).collect::<Vec<_>>()) else {
        return;
    };
    // Cut after the MAR/START and a few records, at a record boundary: the second part does
    // not begin with a MAR/START.
    let records: Vec<_> = argus_core::record::Records::new(&data[..])
        .collect::<Result<_, _>>()
        .expect("records");
    let cut = usize::try_from(records[5].offset).expect("small");
    let (first, second) = data.split_at(cut);
    let server = Server::new();
    server.write_toml(&["client1"], RECORD);
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    Upload::at("client1", now)
        .out(first.to_vec())
        .err(support::manifests(HOST, &[(1, first)]))
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload");
    Upload::at("client1", now + time::Duration::seconds(1))
        .out(data.clone())
        .err(support::manifests(HOST, &[(1, first), (2, second)]))
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("upload");
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert!(
        Server::files(&server.drop_dir()).is_empty(),
        "both ingested"
    );
    // Chunk 1 once, chunk 2 once behind a copy of the stream's MAR/START: ra reads every day
    // file, every flow in its start day, once.
    assert_filed_by_start_day(&server, &[data]);
}
