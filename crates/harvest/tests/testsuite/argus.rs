//! End-to-end tests of `harvest_argus` with the real argus (Debian `argus-server`) on `lo`.
//!
//! Each test has its own sensor directory, argus process, UDP port and source address range, so
//! the tests run in parallel; every argus sees the others' traffic on `lo`, and each test only
//! counts its own flows. Tests that need argus, `ra` or root skip loudly without them, and fail
//! under `CI=true`.

#![allow(
    clippy::print_stderr,
    reason = "the tests report what they measured: flows sent and recovered, time taken"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use test_support::sensor::{
    ARGS, Sensor, Traffic, assert_no_flow_lost, check_shipped, decoded, flow_sources, need_argus,
    sample, write_chunks,
};

#[test]
fn no_flow_is_lost_under_repeated_harvests() {
    if !need_argus("no_flow_is_lost_under_repeated_harvests") {
        return;
    }
    const PORT: u16 = 40_711;
    let sensor = Sensor::new(ARGS, "compression = \"xz\"\ncompression_level = 1");
    // harvest_argus starts argus itself.
    let first = sensor.harvest();
    first.expect_code(0);
    assert!(first.stdout.is_empty(), "nothing to ship before argus ran");
    assert!(
        first.stderr.contains("argus started (pid"),
        "{}",
        first.stderr
    );
    assert_eq!(sensor.argus_pids().len(), 1);

    let traffic = Traffic::start(11, PORT, 150);
    let mut runs = sensor.harvest_every(Duration::from_secs(10));
    let sent = traffic.stop();
    // Let argus report the last flows (-S 1), then stop it: SIGTERM makes it write every cached
    // flow and a final MAR.
    std::thread::sleep(Duration::from_secs(2));
    sensor.stop_argus();
    let last = sensor.final_harvest(ARGS, "compression = \"xz\"\ncompression_level = 1");
    assert!(last.stderr.contains("supervise = false"), "{}", last.stderr);
    runs.push(last);

    let chunks = check_shipped(&sensor, &runs, 1);
    // Each run waits until argus has re-created its output, so runs on a busy link find one
    // to cut; allow for a slow machine all the same.
    assert!(
        chunks.len() * 2 >= runs.len(),
        "only {} chunks from {} runs",
        chunks.len(),
        runs.len()
    );
    let files = write_chunks(sensor.dir.path(), &chunks);
    let mut seen = BTreeSet::new();
    for file in &files {
        seen.extend(flow_sources(file, PORT));
    }
    assert_no_flow_lost("no-loss", runs.len(), chunks.len(), &sent, &seen, 1000);
    assert!(sensor.staged().is_empty());
}

#[test]
fn a_quiet_link_rotates_within_seconds() {
    if !need_argus("a_quiet_link_rotates_within_seconds") {
        return;
    }
    // A filter that matches nothing: this argus writes its initial MAR and then nothing until
    // its next MAR, 60 s later, whatever the other tests send on lo.
    let quiet: &[&str] = &["-X", "-P", "0", "-M", "60", "-", "host", "127.254.254.254"];
    // A silly short stale_after, to see the warning about an argus that writes nothing.
    let sensor = Sensor::new(quiet, "stale_after = \"1s\"");
    sensor.harvest().expect_code(0);
    std::thread::sleep(Duration::from_millis(2500));
    let run = sensor.harvest_with(&sensor.config, &["-v"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("runs but has written nothing to"),
        "{}",
        run.stderr
    );
    let chunks = run.chunks();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].0.records, Some(1), "only the initial MAR");
    assert!(
        run.stderr.contains("quiet link") || run.stderr.contains("re-created"),
        "{}",
        run.stderr
    );
    eprintln!(
        "quiet link: the harvest took {:.1} s",
        run.took.as_secs_f64()
    );
    assert!(
        run.took < Duration::from_secs(30),
        "a quiet link must not wait for the 60 s MAR: {:?}",
        run.took
    );
    // argus has not re-created its output yet, and the next harvest copes with that.
    let next = sensor.harvest();
    next.expect_code(0);
    assert_eq!(
        sensor.argus_pids().len(),
        1,
        "argus still runs and was not started twice"
    );
}

#[test]
fn stdout_reaches_eof_while_the_started_argus_runs() {
    if !need_argus("stdout_reaches_eof_while_the_started_argus_runs") {
        return;
    }
    use std::io::Read;
    use std::process::Stdio;
    let sensor = Sensor::new(ARGS, "");
    let mut child = sensor
        .command(&sensor.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = stderr.read_to_end(&mut err);
        let _ = tx.send((out, err));
    });
    // Both pipes reach EOF although the argus this run started keeps running: argus holds
    // neither (the WebJob client waits for exactly this EOF).
    let (out, err) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stdout and stderr reach EOF");
    let status = child.wait().expect("wait");
    let err = String::from_utf8_lossy(&err);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("argus started"), "{err}");
    let pids = sensor.argus_pids();
    assert_eq!(
        pids.len(),
        1,
        "argus keeps running after harvest_argus exited"
    );
    let stat = argus_proc::procfs::stat(pids[0]).expect("stat");
    assert_eq!(stat.session, pids[0], "argus leads a session of its own");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", pids[0]))
        .expect("fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(
        fds.iter()
            .all(|l| !l.to_string_lossy().starts_with("pipe:")),
        "argus holds no pipe: {fds:?}"
    );
    assert!(
        fds.iter().all(|l| !l.to_string_lossy().ends_with(".lock")),
        "argus does not hold the harvest lock: {fds:?}"
    );
}

#[test]
fn a_killed_harvest_is_shipped_again_with_the_same_seq() {
    if !need_argus("a_killed_harvest_is_shipped_again_with_the_same_seq") {
        return;
    }
    const PORT: u16 = 40_712;
    let sensor = Sensor::new(ARGS, "");
    sensor.harvest().expect_code(0);
    let traffic = Traffic::start(12, PORT, 100);
    std::thread::sleep(Duration::from_secs(2));

    // Killed after the cut, before anything was shipped: the chunk is staged as seq 1.
    let killed = sensor.harvest_killed_at("after-rotate");
    assert!(killed.stdout.is_empty());
    let staged = sensor.staged();
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(staged[0].to_string_lossy().contains(".staged.1."));
    // argus may still be appending to it: the run was killed before it waited for argus to
    // let go. What is there now is never overwritten, only completed.
    let staged_prefix = std::fs::read(&staged[0]).expect("staged chunk");

    std::thread::sleep(Duration::from_secs(1));
    // The next run ships the staged chunk first, with its own number; killed after shipping
    // it and before archiving it, it leaves it staged again, unchanged.
    let killed2 = sensor.harvest_killed_at("after-ship");
    let shipped2 = killed2.chunks();
    assert_eq!(shipped2.len(), 1);
    assert_eq!(shipped2[0].0.seq, 1);
    assert!(
        shipped2[0].1.starts_with(&staged_prefix),
        "the staged chunk was never overwritten"
    );
    assert_eq!(sensor.staged(), staged);
    assert!(sensor.archives().is_empty());

    // Killed after archiving it, before removing it: the next run finds it archived and
    // writes no second copy.
    let killed3 = sensor.harvest_killed_at("after-archive");
    let shipped3 = killed3.chunks();
    assert_eq!(shipped3.len(), 1);
    assert_eq!(shipped3[0].0.seq, 1);
    assert_eq!(sensor.archives().len(), 1);
    assert_eq!(sensor.staged(), staged);

    let sent = traffic.stop();
    std::thread::sleep(Duration::from_secs(2));
    sensor.stop_argus();
    let last_config = sensor.dir.path().join("final.toml");
    sensor.write_config(&last_config, ARGS, "supervise = false");
    let last = sensor.harvest_with(&last_config, &[]);
    last.expect_code(0);
    assert!(
        last.stderr.contains("was already archived"),
        "{}",
        last.stderr
    );
    let seqs: Vec<u64> = last.manifests().iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2], "the staged chunk first, then the new cut");
    assert!(
        sensor.staged().is_empty(),
        "everything shipped and archived"
    );

    // Across all runs, each seq's bytes are the same every time it was shipped, the archive
    // holds each chunk once, and the union of the chunks holds every flow.
    let mut by_seq: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
    for run in [&killed2, &killed3, &last] {
        for (m, bytes) in run.chunks() {
            if let Some(earlier) = by_seq.insert(m.seq, bytes.clone()) {
                assert!(
                    earlier == bytes,
                    "seq={} shipped twice with different bytes",
                    m.seq
                );
            }
        }
    }
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no reuse"
    );
    let archived: Vec<Vec<u8>> = sensor.archives().iter().map(|p| decoded(p)).collect();
    assert_eq!(
        archived.len(),
        by_seq.len(),
        "each chunk archived exactly once"
    );
    assert!(
        archived.into_iter().collect::<BTreeSet<_>>()
            == by_seq.values().cloned().collect::<BTreeSet<_>>(),
        "the archive holds exactly the shipped chunks"
    );
    let files = write_chunks(sensor.dir.path(), &by_seq.into_values().collect::<Vec<_>>());
    let mut seen = BTreeSet::new();
    for file in &files {
        seen.extend(flow_sources(file, PORT));
    }
    let missing = sent.difference(&seen).count();
    eprintln!(
        "kill -9: {} chunks, {} flows sent, {missing} missing",
        files.len(),
        sent.len()
    );
    assert_eq!(missing, 0);
}

#[test]
fn a_missing_interface_is_reported_and_the_data_still_shipped() {
    if !need_argus("a_missing_interface_is_reported_and_the_data_still_shipped") {
        return;
    }
    let sensor = Sensor::new(ARGS, "");
    let config = sensor.dir.path().join("nosuch.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(&sensor.config)
            .expect("config")
            .replace("interface = \"lo\"", "interface = \"nosuch0\""),
    )
    .expect("write");
    // Data an argus left behind before the interface went away.
    std::fs::create_dir_all(sensor.output.parent().expect("dir")).expect("mkdir");
    let data = std::fs::read(sample("hostA.argus")).expect("sample");
    std::fs::write(&sensor.output, &data).expect("write output");
    let run = sensor.harvest_with(&config, &[]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("network interface \"nosuch0\" does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stdout == data, "the data is shipped all the same");
    assert_eq!(check_shipped(&sensor, &[run], 1).len(), 1);
    assert!(sensor.argus_pids().is_empty());
}

#[test]
fn an_argus_that_dies_at_start_is_reported_with_its_own_words() {
    if !need_argus("an_argus_that_dies_at_start_is_reported_with_its_own_words") {
        return;
    }
    // -B with an address argus cannot bind makes it exit (status 0) right after its start.
    let sensor = Sensor::new(&["-X", "-P", "5612", "-B", "192.0.2.1"], "");
    let run = sensor.harvest();
    run.expect_code(1);
    assert!(
        run.stderr.contains("cannot start argus: argus (pid"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exited within"), "{}", run.stderr);
    assert!(sensor.argus_pids().is_empty());
}

#[test]
fn an_argus_config_that_daemonizes_it_is_still_supervised() {
    if !need_argus("an_argus_config_that_daemonizes_it_is_still_supervised") {
        return;
    }
    use std::io::Read;
    use std::process::Stdio;
    // ARGUS_DAEMON=yes in the config argus reads makes it daemonize without -d: the process
    // harvest_argus started exits 0 after half a second and a daemon runs on.
    let sensor = Sensor::new(&[], "");
    let conf = sensor.dir.path().join("argus.conf");
    std::fs::write(&conf, "ARGUS_DAEMON=yes\nARGUS_ACCESS_PORT=0\n").expect("write");
    let conf = conf.display().to_string();
    sensor.write_config(&sensor.config, &["-F", &conf], "");
    let mut child = sensor
        .command(&sensor.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut err = String::new();
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send(err);
    });
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stdout and stderr reach EOF although argus daemonized");
    assert_eq!(child.wait().expect("wait").code(), Some(0), "{err}");
    assert!(err.contains("argus daemonized itself"), "{err}");
    let pids = sensor.argus_pids();
    assert_eq!(pids.len(), 1);
    let recorded =
        std::fs::read_to_string(format!("{}.pid", sensor.output.display())).expect("pid file");
    assert_eq!(
        recorded.trim(),
        pids[0].to_string(),
        "the daemon's pid is recorded"
    );
    // The next harvest finds it and starts no second argus.
    let run = sensor.harvest();
    run.expect_code(0);
    assert!(
        run.stderr
            .contains(&format!("argus is running (pid {})", pids[0])),
        "{}",
        run.stderr
    );
    assert_eq!(sensor.argus_pids(), pids);
}

#[test]
fn an_output_written_by_another_argus_binary_gets_no_second_argus() {
    if !need_argus("an_output_written_by_another_argus_binary_gets_no_second_argus") {
        return;
    }
    let sensor = Sensor::new(ARGS, "");
    // An argus under another path writes the output (an old install, an init script).
    let other = sensor.dir.path().join("argus-other");
    std::fs::copy(test_support::sensor::ARGUS, &other).expect("copy argus");
    let other_cfg = sensor.dir.path().join("other.toml");
    std::fs::write(
        &other_cfg,
        std::fs::read_to_string(&sensor.config)
            .expect("config")
            .replace(
                &format!("argus_bin = {:?}", test_support::sensor::ARGUS),
                &format!("argus_bin = {:?}", other.display().to_string()),
            ),
    )
    .expect("write");
    sensor.harvest_with(&other_cfg, &[]).expect_code(0);
    let pids = sensor.argus_pids();
    assert_eq!(pids.len(), 1);

    // The configured binary is /usr/sbin/argus: its data is harvested, but no second argus
    // is started next to the one that writes the output.
    std::thread::sleep(Duration::from_millis(500));
    let run = sensor.harvest();
    run.expect_code(1);
    assert!(
        run.stderr.contains("no second argus is started"),
        "{}",
        run.stderr
    );
    assert_eq!(run.chunks().len(), 1);
    assert_eq!(sensor.argus_pids(), pids);
}

#[test]
fn an_argus_that_drops_privileges_keeps_writing_after_rotations() {
    if !need_argus("an_argus_that_drops_privileges_keeps_writing_after_rotations") {
        return;
    }
    // argus -u creates (and after each rotation re-creates) its output as that user: the
    // output directory harvest_argus creates must belong to it.
    let sensor = Sensor::new(&["-X", "-P", "0", "-S", "1", "-u", "nobody"], "");
    sensor.harvest().expect_code(0);
    // Traffic makes argus write, and so re-create its output, within a second of each cut.
    let traffic = Traffic::start(13, 40_713, 50);
    let pids = sensor.argus_pids();
    assert_eq!(pids.len(), 1);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1500));
        let run = sensor.harvest();
        run.expect_code(0);
        assert!(run.stderr.contains("argus is running"), "{}", run.stderr);
    }
    assert_eq!(sensor.argus_pids(), pids, "argus survived the rotations");
    use std::os::unix::fs::MetadataExt;
    // After a rotation, argus has re-created its output as nobody (it does so at its next write).
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sensor.output.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let owner = std::fs::metadata(&sensor.output).expect("output").uid();
    assert_ne!(owner, 0, "the output is written by the unprivileged user");
    traffic.stop();
}
