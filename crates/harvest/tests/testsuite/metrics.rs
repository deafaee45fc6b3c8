//! harvest_argus' Prometheus metrics: written after each run, accepted by Debian's `promtool`,
//! with what the run did (a chunk of a live argus shipped, argus running) and the last success
//! kept through a run that failed.

use test_support::sensor::{ARGS, Sensor, Traffic, need_argus};
use test_support::tools::have;

fn value(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("argus_webjob_sensor_{name}{{host=\"sensor1\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

#[test]
fn a_harvest_writes_its_metrics_and_a_failed_one_keeps_the_last_success() {
    if !need_argus("a_harvest_writes_its_metrics_and_a_failed_one_keeps_the_last_success")
        || !have("promtool")
    {
        return;
    }
    let probe = tempfile::tempdir().expect("dir");
    let prom = probe.path().join("harvest.prom");
    let extra = format!("metrics_file = {:?}", prom.display().to_string());
    let sensor = Sensor::new(ARGS, &extra);
    // The first run starts argus; the second cuts what it wrote.
    sensor.harvest().expect_code(0);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let run = sensor.harvest();
    run.expect_code(0);
    let text = std::fs::read_to_string(&prom).expect("metrics file");
    test_support::tools::assert_promtool_accepts(&prom);
    let manifests = run.manifests();
    assert_eq!(value(&text, "exit_status"), Some(0.0));
    assert_eq!(value(&text, "argus_running"), Some(1.0));
    assert_eq!(
        value(&text, "chunks"),
        Some(manifests.len() as f64),
        "{text}"
    );
    let bytes: u64 = manifests.iter().map(|m| m.bytes).sum();
    assert_eq!(value(&text, "chunk_bytes"), Some(bytes as f64));
    let seq = manifests.iter().map(|m| m.seq).max().expect("a chunk");
    assert_eq!(value(&text, "chunks_shipped_total"), Some(seq as f64));
    assert!(value(&text, "free_blocks").is_some_and(|b| b > 20.0));
    let success = value(&text, "last_success_timestamp_seconds").expect("a success");

    // A run that cannot archive (the archive directory made a file) exits 74; the metrics say
    // so and keep the time of the last success.
    let traffic = Traffic::start(73, 40_773, 40);
    std::thread::sleep(std::time::Duration::from_secs(3));
    traffic.stop();
    std::fs::remove_dir_all(&sensor.archive).expect("rm archive");
    std::fs::write(&sensor.archive, b"not a directory").expect("block archive");
    let failed = sensor.harvest();
    assert_ne!(failed.code, Some(0), "{}", failed.stderr);
    let text = std::fs::read_to_string(&prom).expect("metrics file");
    assert_eq!(value(&text, "exit_status"), failed.code.map(f64::from));
    assert_eq!(
        value(&text, "last_success_timestamp_seconds"),
        Some(success)
    );
    assert!(value(&text, "last_run_timestamp_seconds").is_some_and(|t| t >= success));
    assert_eq!(
        value(&text, "staged_chunks"),
        Some(1.0),
        "the chunk waits: {text}"
    );
    sensor.kill_argus();
}
