//! A live argus 5 (upstream's 5.0.3, under `ARGUS5_PREFIX`) rotated by harvest_argus, its runs
//! shipped as WebJob uploads after two argus 3 uploads from the same sensor, and ingested by
//! process_argus: the day files hold both versions and every chunk exactly once, and argus 5's
//! `ra` reads back every flow sent. Needs `ARGUS5_PREFIX` and root; skips loudly without them.

use std::collections::BTreeSet;
use std::time::Duration;

use argus_core::record::{Version, walk};
use test_support::bins::sample;
use test_support::sensor::{self, Sensor, Traffic};
use test_support::server::Server;
use time::OffsetDateTime;

use crate::support::{assert_day_data, day_data, day_files, ingest, ship, upload};

fn v3(name: &str) -> Vec<u8> {
    let path = sample(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn harvest_argus_rotates_a_live_argus5_and_every_flow_reaches_a_day_file() {
    const TEST: &str = "harvest_argus_rotates_a_live_argus5_and_every_flow_reaches_a_day_file";
    let Some(prefix) = test_support::tools::argus5_prefix(TEST) else {
        return;
    };
    if !sensor::need_argus(TEST) {
        return;
    }
    const PORT: u16 = 40_751;
    let argus5 = prefix.join("sbin/argus");
    let ra5 = prefix.join("bin/ra");
    let sensor = Sensor::with_argus(&argus5, sensor::ARGS, "compression = \"gzip\"");
    let first = sensor.harvest();
    first.expect_code(0);
    assert!(
        first.stderr.contains("argus started (pid"),
        "{}",
        first.stderr
    );
    assert_eq!(sensor.argus_pids().len(), 1);

    let traffic = Traffic::start(51, PORT, 150);
    let mut runs = sensor.harvest_every(Duration::from_secs(8));
    let sent = traffic.stop();
    for run in &runs {
        // Found through /proc like an argus 3, and left running.
        assert!(run.stderr.contains("argus is running"), "{}", run.stderr);
    }
    // Let argus 5 report the last flows (-S 1) and write them out, then kill it: it does not
    // stop promptly on SIGTERM.
    std::thread::sleep(Duration::from_secs(4));
    sensor.kill_argus();
    runs.push(sensor.final_harvest(sensor::ARGS, "compression = \"gzip\""));

    // Every chunk walks clean with its record count in its manifest, and the archive holds
    // exactly the chunks shipped; every chunk is argus 5 data.
    let chunks = sensor::check_shipped(&sensor, &runs, 1);
    for chunk in &chunks {
        let report = walk(&chunk[..]).expect("walk");
        assert!(
            report.streams.iter().all(|s| s.version == Version::V5),
            "{:?}",
            report.streams
        );
    }
    assert!(
        chunks.len() >= 3,
        "only {} chunks from {} runs",
        chunks.len(),
        runs.len()
    );

    // The runs as WebJob uploads, after two argus 3 uploads from the same sensor.
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let start = OffsetDateTime::now_utc() - time::Duration::minutes(30);
    let before = [v3("hostA.argus"), v3("hostB.argus")];
    for (i, data) in (0_i64..).zip(&before) {
        upload(&server, start + time::Duration::seconds(i), data, b"");
    }
    ship(&server, &runs, start + time::Duration::seconds(2));
    ingest(&server);
    assert_day_data(&server, &[before.concat(), chunks.concat()].concat());

    // The day files hold the argus 3 streams, then only argus 5 ones; ra 5 reads every flow
    // sent back from them.
    let report = walk(&day_data(&server)[..]).expect("walk");
    let streams: Vec<Version> = report.streams.iter().map(|s| s.version).collect();
    assert_eq!(streams[..2], [Version::V3, Version::V3]);
    assert!(
        streams[2..].iter().all(|&v| v == Version::V5),
        "{streams:?}"
    );
    let mut seen = BTreeSet::new();
    for path in day_files(&server) {
        seen.extend(sensor::flow_sources_with(&ra5, &["-X"], &path, PORT));
    }
    sensor::assert_no_flow_lost(
        "argus 5 no-loss",
        runs.len(),
        chunks.len(),
        &sent,
        &seen,
        800,
    );
}
