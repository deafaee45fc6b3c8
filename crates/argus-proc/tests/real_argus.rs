//! argus-proc against the real argus (Debian `argus-server`) on the loopback interface.
//!
//! Skipped with a loud message where argus or root is missing; under `CI=true` a missing
//! prerequisite fails the test instead.

use std::path::Path;
use std::time::{Duration, Instant};

use argus_proc::argus::{CONFIRM_AFTER, Launch, start};
use argus_proc::find::{Target, find_argus, holders};
use argus_proc::{Error, ProcessId, pidfile, procfs};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const ARGUS: &str = "/usr/sbin/argus";

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn have_argus() -> bool {
    let missing = if !Path::new(ARGUS).exists() {
        Some(format!(
            "{ARGUS} is not installed (apt-get install argus-server)"
        ))
    } else if !is_root() {
        Some("capturing on lo needs root".to_owned())
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but the real-argus tests cannot run: {why}")
        }
        Some(why) => {
            #[allow(clippy::print_stderr, reason = "a skipped test must say so loudly")]
            {
                eprintln!("SKIPPED: real-argus test: {why}");
            }
            false
        }
    }
}

fn stop(id: ProcessId) {
    let _ignored = kill(Pid::from_raw(id.pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while id.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if id.is_alive() {
        let _ignored = kill(Pid::from_raw(id.pid), Signal::SIGKILL);
    }
}

#[test]
fn starts_finds_and_identifies_a_real_argus() {
    if !have_argus() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("argus.out");
    let launch = Launch {
        bin: ARGUS.into(),
        interface: "lo".into(),
        output: output.clone(),
        extra_args: ["-X", "-S", "5", "-M", "60", "-P", "0"]
            .map(String::from)
            .to_vec(),
        pid_file: Some(dir.path().join("argus.pid")),
        log: Some(dir.path().join("argus.log")),
    };
    let started = start(&launch, CONFIRM_AFTER).expect("argus starts");
    assert!(started.id.is_alive());
    assert!(!started.daemonized);
    assert!(started.new_session);
    assert!(started.pid_file_error.is_none());
    let recorded = pidfile::recorded_process(&dir.path().join("argus.pid"))
        .expect("pid file")
        .expect("names a live process");
    assert_eq!(recorded, started.id);

    let stat = procfs::stat(started.id.pid).expect("stat");
    assert_eq!(stat.session, started.id.pid, "argus leads its own session");

    let found = find_argus(&Target::new(Path::new(ARGUS), &output)).expect("scan");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, started.id);
    assert!(found[0].holds_output && found[0].names_output);

    // Another binary path or another output is not this argus.
    assert!(
        find_argus(&Target::new(Path::new("/bin/sleep"), &output))
            .expect("scan")
            .is_empty()
    );
    assert!(
        find_argus(&Target::new(
            Path::new(ARGUS),
            &dir.path().join("other.out")
        ))
        .expect("scan")
        .is_empty()
    );

    // After a rename argus still holds the renamed file, and is still found by its -w.
    let meta = std::fs::metadata(&output).expect("argus created its output");
    let staged = dir.path().join("staged");
    std::fs::rename(&output, &staged).expect("rename");
    use std::os::unix::fs::MetadataExt;
    let held = holders(meta.dev(), meta.ino(), None).expect("scan");
    assert_eq!(held.pids, [started.id]);
    let found = find_argus(&Target::new(Path::new(ARGUS), &output)).expect("scan");
    assert_eq!(found.len(), 1);
    assert!(!found[0].holds_output && found[0].names_output);

    stop(started.id);
    assert!(!started.id.is_alive());
    assert!(
        pidfile::recorded_process(&dir.path().join("argus.pid"))
            .expect("pid file")
            .is_none(),
        "a dead argus is not running"
    );
}

#[test]
fn an_argus_that_dies_at_start_is_reported_with_its_messages() {
    if !have_argus() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // argus cannot open an output file in a missing directory; it says so and exits 0.
    let launch = Launch {
        bin: ARGUS.into(),
        interface: "lo".into(),
        output: dir.path().join("missing-dir/argus.out"),
        extra_args: ["-X", "-P", "0"].map(String::from).to_vec(),
        pid_file: Some(dir.path().join("argus.pid")),
        log: Some(dir.path().join("argus.log")),
    };
    let err = start(&launch, CONFIRM_AFTER).expect_err("argus dies");
    match &err {
        Error::Died {
            status, messages, ..
        } => {
            assert_eq!(status, "exit status 0", "argus exits 0 on fatal errors");
            let messages = messages.as_deref().unwrap_or_default();
            assert!(messages.contains("ArgusError"), "{messages}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!dir.path().join("argus.pid").exists());
}
