//! A live argus 3 (Debian's `argus`) rotated by harvest_argus, each run shipped as a WebJob
//! upload into a dropzone and ingested by process_argus: `ra` reads as many records from the day
//! files as from the chunks shipped, and every flow sent. Needs argus, ra and root; skips loudly
//! without them.

use std::collections::BTreeSet;
use std::time::Duration;

use test_support::sensor::{self, Sensor, Traffic};
use test_support::server::Server;
use test_support::tools::ra_records;
use time::OffsetDateTime;

use crate::support::{assert_day_data, day_files, ingest, ship};

#[test]
fn a_live_argus3_harvested_shipped_and_ingested_reads_back_with_ra() {
    const TEST: &str = "a_live_argus3_harvested_shipped_and_ingested_reads_back_with_ra";
    if !sensor::need_argus(TEST) {
        return;
    }
    const PORT: u16 = 40_731;
    let sensor = Sensor::new(sensor::ARGS, "compression = \"gzip\"");
    sensor.harvest().expect_code(0);
    assert_eq!(sensor.argus_pids().len(), 1, "the first run started argus");

    let traffic = Traffic::start(31, PORT, 100);
    let mut runs = sensor.harvest_every(Duration::from_secs(6));
    let sent = traffic.stop();
    // Let argus report the last flows (-S 1), then stop it: on SIGTERM argus 3 writes every
    // cached flow and a last MAR, which the last run ships.
    std::thread::sleep(Duration::from_secs(2));
    sensor.stop_argus();
    runs.push(sensor.final_harvest(sensor::ARGS, "compression = \"gzip\""));
    let chunks = sensor::check_shipped(&sensor, &runs, 1);
    assert!(
        chunks.len() >= 3,
        "only {} chunks from {} runs",
        chunks.len(),
        runs.len()
    );

    let server = Server::new();
    server.write_toml(&["client1"], "");
    ship(
        &server,
        &runs,
        OffsetDateTime::now_utc() - time::Duration::minutes(10),
    );
    ingest(&server);
    assert_day_data(&server, &chunks.concat());

    // ra counts every record (flows, MARs, events) the same in the shipped chunks and in the
    // day files.
    let shipped_dir = tempfile::tempdir().expect("temp dir");
    let shipped: usize = sensor::write_chunks(shipped_dir.path(), &chunks)
        .iter()
        .map(|chunk| ra_records(chunk))
        .sum();
    let days = day_files(&server);
    assert!(!days.is_empty(), "process_argus wrote no day file");
    let ingested: usize = days.iter().map(|day| ra_records(day)).sum();
    assert!(shipped > 0, "ra read nothing from the shipped chunks");
    assert_eq!(
        ingested, shipped,
        "ra reads as many records from the day files as from the chunks shipped"
    );

    let mut seen = BTreeSet::new();
    for day in &days {
        seen.extend(sensor::flow_sources(day, PORT));
    }
    sensor::assert_no_flow_lost(
        "argus 3 end to end",
        runs.len(),
        chunks.len(),
        &sent,
        &seen,
        300,
    );
}
