//! End-to-end tests of `harvest_argus` that need no running argus: configuration errors, the
//! lock, a failing stdout, a missing argus binary, `check-config` and `convert-config`.
//! Whatever goes wrong, the exit status says so, the message names the cause, and no data is
//! lost.

use std::path::Path;
use std::process::Stdio;

use test_support::sensor::{HOST, Run, Sensor, decoded, harvest_bin, sample};

/// A sensor whose output holds a real argus file, as a dead argus would have left it, and whose
/// config (written by the test) points at a missing argus binary unless told otherwise.
fn sensor_with_data() -> (Sensor, Vec<u8>) {
    let sensor = Sensor::new(&[], "");
    std::fs::create_dir_all(sensor.output.parent().expect("dir")).expect("mkdir");
    let data = std::fs::read(sample("hostA.argus")).expect("sample");
    std::fs::write(&sensor.output, &data).expect("write output");
    (sensor, data)
}

fn config(sensor: &Sensor, lines: &str) -> std::path::PathBuf {
    let path = sensor.dir.path().join("test.toml");
    std::fs::write(&path, lines).expect("write config");
    path
}

fn paths(sensor: &Sensor) -> String {
    format!(
        "archive_dir = {:?}\noutput = {:?}\n",
        sensor.archive.display().to_string(),
        sensor.output.display().to_string()
    )
}

fn untouched(sensor: &Sensor, data: &[u8]) {
    assert!(
        std::fs::read(&sensor.output).expect("output still there") == data,
        "output changed"
    );
    assert!(sensor.staged().is_empty());
    assert!(sensor.archives().is_empty());
}

#[test]
fn a_missing_key_stops_the_run_before_anything_is_touched() {
    let (sensor, data) = sensor_with_data();
    let cfg = config(&sensor, &paths(&sensor));
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(78);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(
            "interface is missing for host sensor1: set it at the top or in [hosts.sensor1]"
        ),
        "{}",
        run.stderr
    );
    untouched(&sensor, &data);
}

#[test]
fn every_invalid_or_unknown_key_is_reported_at_once() {
    let (sensor, data) = sensor_with_data();
    let cfg = config(
        &sensor,
        &format!(
            "{}interface = \"lo\"\narchive_dayz = 3\ncompression = \"lz4\"\nargus_args = [\"-d\"]\n[hosts.{HOST}]\nargus_bin = \"argus\"\n",
            paths(&sensor)
        ),
    );
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(78);
    for needle in [
        "archive_dayz: unknown key",
        "compression: \"lz4\" is not one of none, gzip, bzip2, xz",
        "argus_args: argus argument \"-d\" is not allowed",
        "hosts.sensor1.argus_bin: \"argus\" must be an absolute path",
    ] {
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            run.stderr
        );
    }
    untouched(&sensor, &data);
    // check-config reports the same, with the same status.
    let check = sensor.harvest_with(&cfg, &["check-config"]);
    check.expect_code(78);
    assert!(check.stderr.contains("archive_dayz: unknown key"));
}

#[test]
fn a_missing_config_file_and_the_lookup_order() {
    let (sensor, data) = sensor_with_data();
    let out = std::process::Command::new(harvest_bin())
        .args(["--host", HOST])
        .env("HARVEST_ARGUS_CONFIG", sensor.dir.path().join("none.toml"))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read config file") && err.contains("none.toml"),
        "{err}"
    );
    untouched(&sensor, &data);

    // Without --config and $HARVEST_ARGUS_CONFIG: $WEBJOB_HOME/etc/harvest_argus.toml.
    let home = sensor.dir.path().join("webjob");
    std::fs::create_dir_all(home.join("etc")).expect("mkdir");
    std::fs::write(
        home.join("etc/harvest_argus.toml"),
        format!("{}interface = \"lo\"\nsupervise = false\n", paths(&sensor)),
    )
    .expect("write");
    let out = std::process::Command::new(harvest_bin())
        .args(["--host", HOST])
        .env_remove("HARVEST_ARGUS_CONFIG")
        .env("WEBJOB_HOME", &home)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == data,
        "stdout holds {} bytes, not the {} of the output",
        out.stdout.len(),
        data.len()
    );
}

#[test]
fn a_second_harvest_is_refused_while_one_runs() {
    let (sensor, data) = sensor_with_data();
    let cfg = config(&sensor, &format!("{}interface = \"lo\"\n", paths(&sensor)));
    let mut lock = sensor.output.clone().into_os_string();
    lock.push(".lock");
    let _held = argus_core::lock::Lock::acquire(lock, argus_core::lock::Contention::Fail)
        .expect("take the lock");
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(75);
    assert!(
        run.stderr.contains("another harvest_argus is running"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    untouched(&sensor, &data);
}

#[test]
fn a_failing_stdout_keeps_the_chunk_staged_for_the_next_run() {
    let (sensor, data) = sensor_with_data();
    let cfg = config(
        &sensor,
        &format!("{}interface = \"lo\"\nsupervise = false\n", paths(&sensor)),
    );
    // stdout is a pipe nobody reads: every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = sensor
        .command(&cfg)
        .stdout(Stdio::from(writer))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(
        err.contains("broken pipe") && err.contains("stays staged"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let staged = sensor.staged();
    assert_eq!(staged.len(), 1);
    assert!(
        std::fs::read(&staged[0]).expect("staged") == data,
        "staged chunk differs from the output"
    );
    assert!(
        sensor.archives().is_empty(),
        "not archived before it was shipped"
    );

    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(0);
    let chunks = run.chunks();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].0.seq, 1, "shipped again with its own number");
    assert!(chunks[0].1 == data, "shipped bytes differ from the output");
    assert!(sensor.staged().is_empty());
    let archives = sensor.archives();
    assert_eq!(archives.len(), 1);
    assert!(
        decoded(&archives[0]) == data,
        "archive differs from the output"
    );
}

#[test]
fn a_missing_argus_binary_is_reported_and_the_data_still_shipped() {
    let (sensor, data) = sensor_with_data();
    let cfg = config(
        &sensor,
        &format!(
            "{}interface = \"lo\"\nargus_bin = \"/nonexistent/sbin/argus\"\ncompression = \"bzip2\"\n",
            paths(&sensor)
        ),
    );
    let run: Run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("cannot start argus: argus binary /nonexistent/sbin/argus does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stdout == data, "stdout differs from the output");
    let chunks = run.chunks();
    assert_eq!(chunks[0].0.records, Some(323));
    let archives = sensor.archives();
    assert_eq!(archives.len(), 1);
    assert!(archives[0].to_string_lossy().ends_with(".argus.bz2"));
    assert!(
        archives[0]
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("sensor1_"))
    );
    assert!(
        decoded(&archives[0]) == data,
        "archive differs from the output"
    );
}

#[test]
fn convert_config_turns_the_recipe_into_a_valid_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/recipe_harvest_argus");
    let out = std::process::Command::new(harvest_bin())
        .arg("convert-config")
        .arg(&recipe)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).expect("utf-8");
    assert!(toml.contains("[hosts.client2]"), "{toml}");
    let cfg = dir.path().join("h.toml");
    std::fs::write(&cfg, &toml).expect("write");
    let check = std::process::Command::new(harvest_bin())
        .arg("check-config")
        .arg("--config")
        .arg(&cfg)
        .args(["--host", "client2"])
        .output()
        .expect("run");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let resolved = String::from_utf8_lossy(&check.stdout);
    // The effective settings, each with where it came from.
    for line in [
        "interface = hme1 ([hosts.client2])",
        "compression = bzip2 (",
        "compression_level = 9 (",
        "argus_bin = /usr/local/sbin/argus (",
        "stale_after = 15m (file)",
    ] {
        assert!(resolved.contains(line), "{line:?} not in:\n{resolved}");
    }
    // A script with a value that needs a shell is refused, naming the line.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "arc_dir_client1=\"$HOME/argus\"\n").expect("write");
    let out = std::process::Command::new(harvest_bin())
        .arg("convert-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: arc_dir_client1"));
}

#[test]
fn a_closed_stdout_is_no_crash_for_convert_config_or_check_config() {
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/recipe_harvest_argus");
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("h.toml");
    let toml = std::process::Command::new(harvest_bin())
        .arg("convert-config")
        .arg(&recipe)
        .output()
        .expect("run");
    std::fs::write(&cfg, &toml.stdout).expect("write");
    for args in [
        vec!["convert-config".into(), recipe.display().to_string()],
        vec![
            "check-config".into(),
            "--config".into(),
            cfg.display().to_string(),
            "--host".into(),
            "client2".into(),
        ],
    ] {
        // `| head` that has already exited: every write to stdout fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = std::process::Command::new(harvest_bin())
            .args(&args)
            .stdout(Stdio::from(writer))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn purge_removes_only_this_hosts_old_archives() {
    let (sensor, _data) = sensor_with_data();
    std::fs::create_dir_all(&sensor.archive).expect("mkdir");
    let old_ours = sensor.archive.join("sensor1_20200101000000.argus.gz");
    let old_other = sensor.archive.join("sensor10_20200101000000.argus.gz");
    let notes = sensor.archive.join("sensor1_notes.txt");
    for path in [&old_ours, &old_other, &notes] {
        std::fs::write(path, b"x").expect("write");
    }
    let cfg = config(
        &sensor,
        &format!(
            "{}interface = \"lo\"\nsupervise = false\narchive_days = 7\n",
            paths(&sensor)
        ),
    );
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(0);
    assert!(!old_ours.exists(), "{}", run.stderr);
    assert!(
        old_other.exists() && notes.exists(),
        "foreign files are never touched"
    );
    // The chunk just archived is young and stays.
    assert_eq!(sensor.archives().len(), 3);
}

#[test]
fn a_chunk_left_by_the_old_script_is_adopted_and_shipped_first() {
    let (sensor, data) = sensor_with_data();
    let mut legacy = sensor.output.clone().into_os_string();
    legacy.push(".tmp");
    let old = std::fs::read(sample("hostB.argus")).expect("sample");
    std::fs::write(&legacy, &old).expect("write");
    let cfg = config(
        &sensor,
        &format!("{}interface = \"lo\"\nsupervise = false\n", paths(&sensor)),
    );
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(0);
    let chunks = run.chunks();
    assert_eq!(chunks.len(), 2);
    assert_eq!((chunks[0].0.seq, chunks[1].0.seq), (1, 2));
    assert!(chunks[0].1 == old, "the old script's chunk first");
    assert!(chunks[1].1 == data, "then the output");
    assert!(!std::path::Path::new(&legacy).exists());
    assert_eq!(sensor.archives().len(), 2);
}

#[test]
fn check_config_refuses_a_size_or_duration_without_its_unit_and_shows_units() {
    let (sensor, data) = sensor_with_data();
    let base = format!("{}interface = \"eth0\"\n", paths(&sensor));
    for (line, said) in [
        (
            "archive_max_size = 2",
            "archive_max_size = 2: a bare number has no unit: write \"2M\", \"2G\" or, if bytes are meant, \"2B\"",
        ),
        (
            "archive_max_size = \"3\"",
            "archive_max_size = \"3\": a bare number has no unit",
        ),
        (
            "archive_max_bytes = 2",
            "archive_max_size = 2 B: a cap under 1 MiB is smaller than one hourly chunk",
        ),
        (
            "archive_max_size = \"2M\"\narchive_low_watermark = 90",
            "archive_low_watermark = 90: a bare number has no unit: write \"90%\"",
        ),
        (
            "stale_after = \"2\"",
            "stale_after = \"2\": a bare number has no unit",
        ),
    ] {
        let cfg = config(&sensor, &format!("{base}{line}\n"));
        for command in [&["check-config"][..], &[]] {
            let out = sensor.harvest_with(&cfg, command);
            assert_eq!(out.code, Some(78), "{line} {command:?}: {}", out.stderr);
            assert!(
                out.stderr.contains(said),
                "{line}: {said:?} in:\n{}",
                out.stderr
            );
        }
        // Nothing was cut or archived.
        assert_eq!(std::fs::read(&sensor.output).expect("output"), data);
        assert!(
            std::fs::read_dir(&sensor.archive).map_or(true, |mut d| d.next().is_none()),
            "no archive"
        );
    }
    let cfg = config(
        &sensor,
        &format!("{base}archive_max_size = \"2M\"\n[hosts.{HOST}]\nstale_after = \"90m\"\n"),
    );
    let out = sensor.harvest_with(&cfg, &["check-config"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let shown = String::from_utf8_lossy(&out.stdout);
    for line in [
        "archive_max_size = 2 MiB (file)",
        "archive_low_watermark = 1.8 MiB (90% of archive_max_size, default)",
        &format!("stale_after = 1h30m ([hosts.{HOST}])"),
    ] {
        assert!(shown.contains(line), "{line:?} in:\n{shown}");
    }
}

#[test]
fn a_purge_of_most_of_the_archive_is_carried_out_but_warned_about() {
    let (sensor, _data) = sensor_with_data();
    std::fs::create_dir_all(&sensor.archive).expect("mkdir");
    // One old archive of 1.5 MiB under a 1 MiB cap: the purge takes almost everything.
    let old = sensor.archive.join("sensor1_20200101000000.argus.gz");
    std::fs::write(&old, vec![0u8; 3 << 19]).expect("write");
    let metrics = sensor.dir.path().join("harvest.prom");
    let cfg = config(
        &sensor,
        &format!(
            "{}interface = \"lo\"\nsupervise = false\narchive_max_size = \"1M\"\nmetrics_file = {:?}\n",
            paths(&sensor),
            metrics.display().to_string()
        ),
    );
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(0);
    assert!(!old.exists(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("retention deletes 1 archive, 1.5 MiB of")
            && run.stderr.contains(
                "archive_max_size = 1 MiB with archive_low_watermark = 921.6 KiB decides it"
            ),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(
        text.contains(&format!(
            "argus_webjob_sensor_retention_warnings{{host=\"{HOST}\"}} 1\n"
        )),
        "{text}"
    );
    // The next harvest deletes nothing and says nothing.
    std::fs::write(
        &sensor.output,
        std::fs::read(sample("hostB.argus")).expect("sample"),
    )
    .expect("output");
    let run = sensor.harvest_with(&cfg, &[]);
    run.expect_code(0);
    assert!(!run.stderr.contains("retention deletes"), "{}", run.stderr);
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(text.contains("_retention_warnings{"), "{text}");
    assert!(
        !text.contains("_retention_warnings{host=\"sensor1\"} 1"),
        "{text}"
    );
    assert_eq!(sensor.archives().len(), 2);
}
