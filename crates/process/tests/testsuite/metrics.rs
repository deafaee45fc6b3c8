//! Prometheus metrics end to end: the file a pass writes, checked by Debian's `promtool`, and
//! read over HTTP from Debian's real `prometheus-node-exporter` (its textfile collector pointed
//! at the file's directory, on a free 127.0.0.1 port), with the values the passes produced.

use crate::support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{Ledger, good_samples};
use test_support::server::{Server, status, stderr, wait_until};
use test_support::tools::{have, metric, ra_mars};

const HOST: &str = "sensor1";

/// node_exporter, killed when the test ends however it ends.
struct Exporter {
    child: Child,
    port: u16,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    fn start(textfile_dir: &Path) -> Exporter {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile_dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-node-exporter");
        let exporter = Exporter { child, port };
        assert!(
            wait_until(Duration::from_secs(30), || exporter.fetch().is_some()),
            "node_exporter serves /metrics"
        );
        exporter
    }

    /// `GET /metrics`, the body.
    fn fetch(&self) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
    }
}

/// Packets delivered and dropped, summed over the MARs Debian's `ra` prints from argus 3
/// `samples`.
fn ra_totals(samples: &[Vec<u8>]) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    test_support::sensor::write_chunks(dir.path(), samples)
        .iter()
        .flat_map(|path| ra_mars(None, path))
        .fold((0, 0), |(p, d), m| (p + m.pkts, d + m.dropped))
}

#[test]
fn node_exporter_serves_the_metrics_of_the_last_pass() {
    if !have("prometheus-node-exporter") || !have("promtool") || !have("ra") {
        return;
    }
    let server = Server::new();
    let textfile = server.root.path().join("textfile");
    std::fs::create_dir_all(&textfile).expect("dir");
    let prom = textfile.join("argus_webjob.prom");
    server.write_toml(
        &["client1", "client2"],
        &format!("metrics_file = {:?}\n", prom.display().to_string()),
    );
    let mut ledger = Ledger::default();
    let samples = good_samples();
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(20);
    for (i, data) in samples.iter().take(3).enumerate() {
        ledger.write(
            &server,
            "client1",
            HOST,
            now + time::Duration::seconds(i as i64),
            data,
        );
    }
    ledger.write_bad(&server, "client1", HOST, now + time::Duration::seconds(5));
    assert_eq!(status(&server.run(&[])), 1, "one quarantined");

    test_support::tools::assert_promtool_accepts(&prom);
    // The file promtool accepted holds every sensor-health series of client1, from the real
    // MARs of the samples: its packets and drops as `ra` prints them.
    let text = std::fs::read_to_string(&prom).expect("the metrics file");
    let (packets, dropped) = ra_totals(&samples[..3]);
    for (name, want) in [
        ("packets_received_total", Some(packets)),
        ("packets_dropped_total", Some(dropped)),
        ("argus_restarts_total", None),
        ("argus_stops_total", None),
        ("last_mar_timestamp_seconds", None),
        ("clock_offset_seconds", None),
    ] {
        let series = format!("argus_webjob_client_{name}{{client=\"client1\"}}");
        let got = metric(&text, &series);
        assert!(got.is_some(), "no {series} in:\n{text}");
        if let Some(want) = want {
            assert_eq!(got, Some(want as f64), "{series}");
        }
    }
    let records: u64 = ledger
        .uploads
        .iter()
        .map(|u| {
            argus_core::record::walk(&u.appended[..])
                .expect("walk")
                .records
        })
        .sum();
    let bytes: usize = ledger.uploads.iter().map(|u| u.appended.len()).sum();

    let exporter = Exporter::start(&textfile);
    let served = exporter.fetch().expect("metrics");
    for (name, want) in [
        ("argus_webjob_uploads_ingested_total", 3.0),
        ("argus_webjob_uploads_quarantined_total", 1.0),
        ("argus_webjob_ingested_records_total", records as f64),
        ("argus_webjob_ingested_bytes_total", bytes as f64),
        ("argus_webjob_quarantined_groups", 1.0),
        ("argus_webjob_uploads_pending", 0.0),
        ("argus_webjob_client_stale{client=\"client1\"}", 0.0),
        ("argus_webjob_client_stale{client=\"client2\"}", 1.0),
        (
            "argus_webjob_client_last_upload_timestamp_seconds{client=\"client1\"}",
            // The newest ingested (the quarantined one came later).
            (now + time::Duration::seconds(2)).unix_timestamp() as f64,
        ),
    ] {
        assert_eq!(metric(&served, name), Some(want), "{name} in:\n{served}");
    }
    let success = metric(&served, "argus_webjob_last_success_timestamp_seconds").expect("set");
    let age = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9 - success;
    assert!((0.0..120.0).contains(&age), "a success just now: {age}");
    assert!(
        served.contains("node_textfile_mtime_seconds{file="),
        "the collector read our file:\n{served}"
    );
    assert_eq!(metric(&served, "node_textfile_scrape_error"), Some(0.0));

    // Counters grow across passes (a cron job's process is new each time).
    ledger.write(
        &server,
        "client1",
        HOST,
        now + time::Duration::seconds(10),
        &samples[3],
    );
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let served = exporter.fetch().expect("metrics");
    assert_eq!(
        metric(&served, "argus_webjob_uploads_ingested_total"),
        Some(4.0),
        "{served}"
    );
    assert_eq!(
        metric(
            &served,
            "argus_webjob_client_packets_received_total{client=\"client1\"}"
        ),
        Some(ra_totals(&samples[..4]).0 as f64),
        "{served}"
    );

    // status --format prometheus prints the same, without changing anything.
    let out = server.run(&["status", "--format", "prometheus"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        metric(&printed, "argus_webjob_uploads_ingested_total"),
        Some(4.0),
        "{printed}"
    );
    assert_eq!(
        metric(&printed, "argus_webjob_client_stale{client=\"client2\"}"),
        Some(1.0)
    );
}

#[test]
fn the_daemon_writes_its_metrics_after_a_batch() {
    let server = Server::new();
    let prom = server.root.path().join("argus_webjob.prom");
    server.write_toml(
        &["client1"],
        &format!("metrics_file = {:?}\n", prom.display().to_string()),
    );
    let mut daemon = server.spawn_watch(&[]);
    assert!(wait_until(Duration::from_secs(60), || daemon.watching()));
    let mut ledger = Ledger::default();
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    ledger.write(&server, "client1", HOST, at, &good_samples()[0]);
    let counted = || {
        std::fs::read_to_string(&prom)
            .ok()
            .and_then(|t| metric(&t, "argus_webjob_uploads_ingested_total"))
            == Some(1.0)
    };
    // The first batch is written at once; later ones at most every 10 s.
    assert!(
        wait_until(Duration::from_secs(30), counted),
        "{}",
        daemon.log()
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(daemon.wait_within(Duration::from_secs(20)).success());
}
