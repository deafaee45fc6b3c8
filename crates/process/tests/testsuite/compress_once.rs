//! Compressing each byte once: when a day closes and the day files are written as the archives
//! are (same codec, same level), its compressed form is its uploads' archive members, copied,
//! with only what is not a whole upload compressed afresh. What `gzip -dc` and `ra` read is what
//! the open day held, byte for byte; an archive that is gone, changed or of another codec, a
//! salvaged prefix, a piece of an upload split by record time and late data into a compressed
//! day all fall back to compressing, and lose or double nothing. (Crashes at each step of the
//! assembly: `crash.rs`, failpoints `day-member`, `day-assembled`, `day-published`.)

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{assert_ra_reads_every_record, compressed, day_name, day_start, decoded, read};
use test_support::bins::sample;
use test_support::json::Json;
use test_support::server::{Server, status, stderr};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// Day files stay open (plain) for a month: the pass that ingests does not close the day.
const KEEP_OPEN: &str = "oper_compress_after_days = 30\n";

/// Three days ago, `minutes` after 01:00: a closed day once `oper_compress_after_days` is 1.
fn at(minutes: i64) -> OffsetDateTime {
    day_start(3) + time::Duration::hours(1) + time::Duration::minutes(minutes)
}

fn write(server: &Server, host: &str, minutes: i64, bytes: &[u8]) -> String {
    write_at(server, host, at(minutes), bytes)
}

fn write_at(server: &Server, host: &str, at: OffsetDateTime, bytes: &[u8]) -> String {
    Upload::at("client1", at)
        .out(bytes.to_vec())
        .hostname(host)
        .write(&server.drop_dir())
        .expect("an upload")
        .stem
}

/// A pass with `--json`: its summary.
fn pass(server: &Server) -> Json {
    let out = server.run(&["--json"]);
    assert!(
        matches!(status(&out), 0 | 1),
        "the pass: exit {}; {}",
        status(&out),
        stderr(&out)
    );
    Json::parse(String::from_utf8_lossy(&out.stdout).trim()).expect("the summary")
}

fn archive(server: &Server, stem: &str) -> PathBuf {
    server.archive_dir().join(format!("{stem}.out.gz"))
}

/// What real `gzip -dc` reads from `path`.
fn gzip_dc(path: &Path) -> Vec<u8> {
    system_dc("gzip", path)
}

/// What the system's `tool -dc` (gzip, bzip2, xz) reads from `path`.
fn system_dc(tool: &str, path: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .expect("run the decompressor");
    assert!(out.status.success(), "{tool} -dc {}", path.display());
    out.stdout
}

/// The open day files of `server`, by name, with their bytes.
fn plain_days(server: &Server) -> Vec<(String, Vec<u8>)> {
    Server::files(&server.oper_dir())
        .into_iter()
        .map(|n| {
            let name = n.to_string_lossy().into_owned();
            assert!(!name.contains('.'), "{name} is still open");
            let bytes = read(&server.oper_dir().join(&n));
            (name, bytes)
        })
        .collect()
}

/// Closes the days (compression after one day), runs a pass and checks that every day of
/// `closing` is now `NAME.gz`, decoding (ours and `gzip -dc`) to exactly what it held, read whole by
/// `ra`. Returns the pass summary.
fn close_days(server: &Server, extra: &str, closing: &[(String, Vec<u8>)]) -> Json {
    server.write_toml(&["client1"], extra);
    let summary = pass(server);
    assert_eq!(
        summary.get("compressed").u64(),
        closing.len() as u64,
        "{summary:?}"
    );
    for (name, plain) in closing {
        let packed = server.oper_dir().join(format!("{name}.gz"));
        assert!(
            !server.oper_dir().join(name).exists(),
            "{name}: the open file is gone"
        );
        assert!(
            decoded(&packed) == *plain,
            "{name}: decodes to what it held"
        );
        assert!(
            gzip_dc(&packed) == *plain,
            "{name}: gzip -dc reads it whole"
        );
    }
    assert_ra_reads_every_record(&server.oper_dir());
    summary
}

#[test]
fn a_closed_day_is_its_uploads_archive_members_copied() {
    let server = Server::new();
    server.write_toml(&["client1"], KEEP_OPEN);
    // argus 3 data for one sensor, argus 5 for another: each read by its own ra.
    let mut stems = Vec::new();
    for (i, name) in [
        "hostD.chunk1.argus",
        "hostC.argus",
        "hostB.argus",
        "hostA.argus",
    ]
    .iter()
    .enumerate()
    {
        stems.push(write(&server, "sensor3", i as i64, &read(&sample(name))));
    }
    let mut stems5 = Vec::new();
    for (i, name) in [
        "argus5/hostC.argus",
        "argus5/hostB.argus",
        "argus5/hostA.argus",
    ]
    .iter()
    .enumerate()
    {
        stems5.push(write(
            &server,
            "sensor5",
            10 + i as i64,
            &read(&sample(name)),
        ));
    }
    let first = pass(&server);
    assert_eq!(first.get("ingested").u64(), 7, "{first:?}");
    let open = plain_days(&server);
    assert_eq!(open.len(), 2);
    let total: u64 = open.iter().map(|(_, b)| b.len() as u64).sum();

    // Default compression (gzip 6 for both): the days close, taken whole from the archives.
    let summary = close_days(&server, "", &open);
    assert_eq!(summary.get("reused_bytes").u64(), total, "{summary:?}");
    for (host, stems) in [("sensor3", &stems), ("sensor5", &stems5)] {
        let members: Vec<u8> = stems
            .iter()
            .flat_map(|s| read(&archive(&server, s)))
            .collect();
        let packed = server
            .oper_dir()
            .join(format!("{}.gz", day_name(host, at(0))));
        assert!(
            read(&packed) == members,
            "{host}: the day file is its archives, member after member"
        );
    }
    // Nothing is noted for days that are closed.
    let notes = server.state_dir().join("members");
    assert_eq!(Server::files(&notes), Vec::<PathBuf>::new());
}

#[test]
fn what_is_not_a_whole_archived_upload_is_compressed_afresh() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        &format!("{KEEP_OPEN}damaged_uploads = \"salvage\"\n"),
    );
    let a = read(&sample("hostA.argus"));
    let b = read(&sample("hostB.argus"));
    let c = read(&sample("hostC.argus"));
    let d = read(&sample("hostD.chunk1.argus"));
    let truncated = read(&sample("hostA.truncated.argus"));
    // sensor1: its middle archive is purged, its last replaced by other data of the same name.
    write(&server, "sensor1", 0, &a);
    let purged = write(&server, "sensor1", 1, &b);
    let replaced = write(&server, "sensor1", 2, &c);
    write(&server, "sensor1", 3, &d);
    // sensor2: a salvaged prefix between whole uploads.
    write(&server, "sensor2", 10, &c);
    write(&server, "sensor2", 11, &truncated);
    write(&server, "sensor2", 12, &d);
    let first = pass(&server);
    assert_eq!(
        (first.get("ingested").u64(), first.get("quarantined").u64()),
        (6, 1),
        "the salvaged upload is quarantined whole: {first:?}"
    );
    let open = plain_days(&server);
    assert_eq!(open.len(), 2);
    fs::remove_file(archive(&server, &purged)).expect("purge an archive");
    fs::write(
        archive(&server, &replaced),
        compressed(&b[..c.len()], "gzip"),
    )
    .expect("replace an archive");

    let summary = close_days(&server, "", &open);
    let whole = (a.len() + d.len()) + (c.len() + d.len());
    assert_eq!(
        summary.get("reused_bytes").u64(),
        whole as u64,
        "only whole uploads whose archive holds them are copied: {summary:?}"
    );

    // Late data for the closed day joins it as a new member, and notes nothing.
    write(&server, "sensor1", 20, &b);
    let late = pass(&server);
    assert_eq!(late.get("ingested").u64(), 1, "{late:?}");
    let name = day_name("sensor1", at(0));
    let packed = server.oper_dir().join(format!("{name}.gz"));
    let held = &open
        .iter()
        .find(|(n, _)| *n == name)
        .expect("sensor1's day")
        .1;
    assert!(decoded(&packed) == [held.as_slice(), &b].concat());
    assert!(gzip_dc(&packed) == [held.as_slice(), &b].concat());
    assert_eq!(
        Server::files(&server.state_dir().join("members")),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn archives_of_another_codec_or_level_are_not_copied() {
    for (archive_codec, what) in [
        ("archive_compression_level = 1\n", "another level"),
        ("archive_compression = \"xz\"\n", "another codec"),
    ] {
        let server = Server::new();
        server.write_toml(&["client1"], &format!("{KEEP_OPEN}{archive_codec}"));
        write(&server, "sensor1", 0, &read(&sample("hostA.argus")));
        write(&server, "sensor1", 1, &read(&sample("argus5/hostB.argus")));
        pass(&server);
        let open = plain_days(&server);
        let summary = close_days(&server, archive_codec, &open);
        assert_eq!(summary.get("reused_bytes").u64(), 0, "{what}: {summary:?}");
        assert_eq!(
            Server::files(&server.state_dir().join("members")),
            Vec::<PathBuf>::new(),
            "{what}: nothing noted"
        );
    }
}

/// argus 3 data (Debian's `argus -r` of a capture) of one flow a minute from `start`, `n` of
/// them; `None` (a loud skip, a failure under CI) when argus is not here.
fn flows_from(start: i64, n: u8) -> Option<Vec<u8>> {
    use test_support::pcap::{Datagram, argus_of};
    let argus = Path::new("/usr/sbin/argus");
    if !test_support::sensor::need_argus("pieces_of_an_upload_split_by_record_time") {
        return None;
    }
    let datagrams: Vec<Datagram> = (0..n)
        .map(|i| Datagram {
            at: (
                u32::try_from(start + 60 * i64::from(i)).expect("after 1970"),
                0,
            ),
            src: std::net::Ipv4Addr::new(10, 1, 0, i + 1),
            dst: std::net::Ipv4Addr::new(10, 200, 0, 1),
            sport: 20_000 + u16::from(i),
            dport: 53,
        })
        .collect();
    Some(argus_of(argus, &datagrams).expect("argus -r"))
}

#[test]
fn pieces_of_an_upload_split_by_record_time_are_compressed_afresh() {
    // Flows from 23:55 to 00:05 around the midnight three days ago: split over two closed days
    // (and today's, for the MARs `argus -r` stamps with the wall clock).
    let midnight = day_start(3).unix_timestamp();
    let Some(straddling) = flows_from(midnight - 300, 10) else {
        return;
    };
    // Whole uploads: every record of hostA.argus is on one day; hostB.argus and hostC.argus
    // with a run of zero words between them (a sensor's disk after a crash), which the day
    // file leaves out, so its piece is not the whole upload.
    let a = read(&sample("hostA.argus"));
    let b = read(&sample("hostB.argus"));
    let c = read(&sample("hostC.argus"));
    let gapped = [&b[..], &[0u8; 8192], &c[..]].concat();
    let server = Server::new();
    let record = "day_boundary = \"record\"\nmax_record_lag = \"3650d\"\n";
    server.write_toml(&["client1"], &format!("{KEEP_OPEN}{record}"));
    write(&server, "sensor1", 0, &a);
    // Stamped when made: its MARs carry the wall clock.
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    write_at(&server, "sensor1", now, &straddling);
    write(&server, "sensor1", 2, &gapped);
    let first = pass(&server);
    assert_eq!(first.get("ingested").u64(), 3, "{first:?}");
    let today = day_name("sensor1", OffsetDateTime::now_utc());
    let closing: Vec<(String, Vec<u8>)> = plain_days(&server)
        .into_iter()
        .filter(|(name, _)| *name != today)
        .collect();
    assert_eq!(closing.len(), 3, "the samples' day and two around midnight");
    let samples_day = closing
        .iter()
        .find(|(_, bytes)| bytes.starts_with(&a))
        .expect("the samples' day");
    assert_eq!(samples_day.1, [&a[..], &b[..], &c[..]].concat());
    let summary = close_days(&server, record, &closing);
    assert_eq!(
        summary.get("reused_bytes").u64(),
        a.len() as u64,
        "{summary:?}"
    );
}

/// A large upload is compressed in members on helper threads: 256 KiB gzip
/// members, bzip2 streams of four blocks. kill -9 while they work, at the first member and
/// later ones, then a clean pass: the upload once in its day file, its archive whole (ours and
/// the system's decompressor read it), nothing left behind.
#[test]
fn kill_9_in_a_parallel_compression_leaves_every_record_once() {
    if !test_support::tools::cores(2, "a compression on helper threads to kill") {
        return;
    }
    let a = read(&sample("hostA.argus"));
    let mut big = Vec::new();
    while big.len() < 12 << 20 {
        big.extend_from_slice(&a);
    }
    let small = read(&sample("argus5/hostB.argus"));
    let cases: [(&str, &str, &[usize]); 2] = [
        ("gzip", "gzip-member", &[1, 3, 6]),
        ("bzip2", "bzip2-member", &[1, 3]),
    ];
    for (codec, failpoint, members) in cases {
        for &n in members {
            let server = Server::new();
            server.write_toml(
                &["client1"],
                &format!("{KEEP_OPEN}archive_compression = \"{codec}\"\n"),
            );
            // Alone in its pass, the large upload gets every core's thread.
            let big_stem = write(&server, "sensor1", 0, &big);
            let mut cmd = server.command();
            cmd.env("ARGUS_WEBJOB_FAILPOINT", format!("{failpoint}:{n}"));
            let out = test_support::server::wait_within(
                test_support::server::spawn_piped(&mut cmd),
                std::time::Duration::from_secs(120),
            );
            assert!(
                support::killed(&out),
                "{failpoint}:{n} must kill the pass: {}",
                support::ended(&out)
            );
            let small_stem = write(&server, "sensor1", 1, &small);
            let summary = pass(&server);
            assert_eq!(summary.get("ingested").u64(), 2, "after {failpoint}:{n}");
            let day = server.oper_dir().join(day_name("sensor1", at(0)));
            assert!(
                read(&day) == [&big[..], &small[..]].concat(),
                "{failpoint}:{n}: each upload once, in order"
            );
            let suffix = if codec == "gzip" { "gz" } else { "bz2" };
            let archive = |stem: &str| server.archive_dir().join(format!("{stem}.out.{suffix}"));
            assert!(decoded(&archive(&big_stem)) == big);
            assert!(system_dc(codec, &archive(&big_stem)) == big);
            assert!(decoded(&archive(&small_stem)) == small);
            for dir in [server.drop_dir(), server.archive_dir(), server.oper_dir()] {
                for name in Server::files(&dir) {
                    let name = name.to_string_lossy().into_owned();
                    assert!(!name.starts_with(".argus-tmp"), "{name} left behind");
                }
            }
            assert_eq!(Server::files(&server.drop_dir()), Vec::<PathBuf>::new());
        }
    }
}
