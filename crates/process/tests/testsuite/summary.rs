//! The pass summary counts what happened once: a day file that several batches append to is
//! one day file, however many batches the backlog took.

use crate::support;

use support::{Ledger, day_start, good_samples};
use test_support::json::Json;
use test_support::server::{Server, status, stderr};

#[test]
fn a_backlog_in_many_batches_counts_each_day_file_once() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let samples = good_samples();
    let mut ledger = Ledger::default();
    // 150 uploads over two days of one sensor: more than the first batches hold.
    for (i, sample) in (0..150i64).zip(samples.iter().cycle().take(3).cycle()) {
        let at = day_start(2) + time::Duration::minutes(i * 15);
        ledger.write(&server, "client1", "sensor1", at, sample);
    }
    let days: std::collections::BTreeSet<&str> =
        ledger.uploads.iter().map(|r| r.day.as_str()).collect();
    assert_eq!(days.len(), 2);
    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let summary = Json::parse(&String::from_utf8_lossy(&out.stdout)).expect("json");
    assert_eq!(summary.get("ingested").u64(), 150);
    assert_eq!(summary.get("day_files").u64(), 2, "{summary:?}");
    ledger.assert_exactly_once(&server, ".gz");
}
