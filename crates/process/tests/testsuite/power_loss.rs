//! A power loss on a sensor, made for real: argus (3 and 5) writes its output from a capture
//! (`argus -r`), the file gets the zeros a power loss leaves where its last blocks were never
//! written, and argus, run again on the same file, appends a new stream behind them. ra reads
//! every record around the zeros; so must the ingest, once, with the zeros left out and counted.

use crate::support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{report_client, status_report};
use test_support::pcap::{Datagram, capture};
use test_support::server::{Server, status, stderr};
use test_support::tools::{argus5_prefix, have, ra_flows};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// A capture of `n` UDP flows from `10.NET.0.x`, a second apart, from `start`.
fn flows(net: u8, start: i64, n: u8) -> Vec<u8> {
    let datagrams: Vec<Datagram> = (0..n)
        .map(|i| Datagram {
            at: (u32::try_from(start).expect("after 1970") + u32::from(i), 0),
            src: Ipv4Addr::new(10, net, 0, i + 1),
            dst: Ipv4Addr::new(10, 200, 0, 1),
            sport: 30_000 + u16::from(i),
            dport: 53,
        })
        .collect();
    capture(&datagrams)
}

/// Runs `argus -X -r CAPTURE -w OUT`, appending to OUT as argus does when it restarts.
fn argus_append(argus: &Path, capture: &Path, out: &Path) {
    let run = Command::new(argus)
        .args(["-X", "-r"])
        .arg(capture)
        .arg("-w")
        .arg(out)
        .output()
        .expect("run argus");
    assert!(
        run.status.success(),
        "{} -r: {}",
        argus.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The `(source address, source port)` of every flow `ra` reads in `file`.
fn ra_sources(ra: &Path, file: &Path) -> Vec<String> {
    let mut flows: Vec<String> = ra_flows(ra, file, &["saddr", "sport"])
        .into_iter()
        .map(|f| f.join(":"))
        .collect();
    flows.sort();
    flows
}

/// argus' output across a power loss: a stream, 8 KiB of zeros, then a restarted argus' stream.
fn power_lost_output(argus: &Path, dir: &Path, start: i64) -> PathBuf {
    let out = dir.join("argus.out");
    let before = dir.join("before.pcap");
    let after = dir.join("after.pcap");
    std::fs::write(&before, flows(1, start, 20)).expect("write a capture");
    std::fs::write(&after, flows(2, start + 60, 20)).expect("write a capture");
    argus_append(argus, &before, &out);
    let len = std::fs::metadata(&out).expect("argus' output").len();
    assert_eq!(len % 4, 0, "argus writes whole records");
    // The file's size grew, its data blocks never came: zeros at a record boundary.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&out)
        .expect("open argus' output");
    f.set_len(len + 8192).expect("extend with zeros");
    drop(f);
    argus_append(argus, &after, &out);
    out
}

#[test]
fn an_upload_with_a_power_loss_gap_is_ingested_with_every_flow_ra_reads_once() {
    let mut sensors: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    if Path::new("/usr/sbin/argus").exists() && have("ra") {
        sensors.push(("argus3", "/usr/sbin/argus".into(), "ra".into()));
    } else {
        assert!(
            !test_support::tools::in_ci(),
            "argus and ra are required under CI"
        );
    }
    if let Some(prefix) = argus5_prefix("power loss gap") {
        sensors.push(("argus5", prefix.join("sbin/argus"), prefix.join("bin/ra")));
    }
    for (name, argus, ra) in sensors {
        let server = Server::new();
        server.write_toml(
            &["client1"],
            "archive_days = 0\narchive_compression = \"none\"\n",
        );
        let work = tempfile::tempdir().expect("tempdir");
        // Flows of the last ten minutes, all of today (filed by record time, one day file).
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let midnight = now - now.rem_euclid(86_400);
        let out = power_lost_output(&argus, work.path(), (now - 600).max(midnight + 1));
        let read = ra_sources(&ra, &out);
        assert_eq!(
            read.len(),
            40,
            "{name}: ra reads both streams around the zeros"
        );
        let data = std::fs::read(&out).expect("argus' output");
        Upload::at("client1", OffsetDateTime::now_utc())
            .out(data.clone())
            .with_manifest("sensor1", 1)
            .write(&server.drop_dir())
            .expect("an upload");

        let run = server.run_within(&["--json"], std::time::Duration::from_secs(120));
        assert_eq!(status(&run), 0, "{name}: {}", stderr(&run));
        let days = Server::files(&server.oper_dir());
        assert_eq!(days.len(), 1, "{name}: {days:?}");
        let day = server.oper_dir().join(&days[0]);
        assert_eq!(ra_sources(&ra, &day), read, "{name}: every flow once");
        let day_len = std::fs::metadata(&day).expect("the day file").len();
        assert_eq!(
            day_len,
            data.len() as u64 - 8192,
            "{name}: the zeros left out"
        );
        assert!(
            stderr(&run).contains("8192 bytes at offset"),
            "{name}: the log names the run: {}",
            stderr(&run)
        );
        let (code, report) = status_report(&server, std::time::Duration::from_secs(60));
        assert_eq!(code, 0, "{name}: {report:?}");
        let c = report_client(&report, "client1");
        assert_eq!(c.get("zero_gaps").u64(), 1, "{name}");
        assert_eq!(c.get("zero_gap_bytes").u64(), 8192, "{name}");
        let archives = Server::files(&server.archive_dir());
        let archived = std::fs::read(server.archive_dir().join(&archives[0])).expect("archive");
        assert_eq!(
            archived, data,
            "{name}: the archive keeps the upload as it came"
        );
    }
}
