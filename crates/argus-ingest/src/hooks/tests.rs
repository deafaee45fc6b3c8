//! Unit tests of the follow-on stages: retry delays, real commands run with their arguments as
//! bytes, timeouts that kill the process group, events whose hook is gone.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{Hook, Piece};

fn hook(name: &str, program: &str, args: &[&str], timeout: Duration) -> Hook {
    Hook {
        name: name.to_owned(),
        on: Event::Ingested,
        program: program.to_owned(),
        args: args
            .iter()
            .map(|a| match a.strip_prefix('@') {
                Some(value) => vec![Piece::Value(
                    Event::Ingested
                        .placeholders()
                        .iter()
                        .copied()
                        .find(|p| *p == value)
                        .expect("placeholder"),
                )],
                None => vec![Piece::Text((*a).to_owned())],
            })
            .collect(),
        timeout,
    }
}

fn policy(hooks: Vec<Hook>, attempts: u32) -> HookPolicy {
    HookPolicy {
        hooks,
        attempts,
        concurrency: 2,
        budget: Duration::from_secs(60),
        retry_delay: Duration::from_secs(60),
    }
}

fn queued(policy: &HookPolicy, stem: &[u8]) -> Vec<Queued> {
    events(
        policy,
        Event::Ingested,
        &[("stem", stem.to_vec()), ("host", b"h1".to_vec())],
        OffsetDateTime::now_utc(),
    )
}

#[test]
fn retries_wait_a_minute_doubling_to_an_hour() {
    let minute = Duration::from_secs(60);
    let delays: Vec<i64> = (1..=9).map(|n| retry_delay(n, minute)).collect();
    assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    let second = Duration::from_secs(1);
    assert_eq!(retry_delay(1, second), 1);
    assert_eq!(retry_delay(3, second), 4);
    assert_eq!(retry_delay(40, second), 3600);
}

#[test]
fn a_run_gets_its_arguments_as_bytes_and_its_status_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("argv");
    let queue = Queue::open(dir.path()).expect("queue");
    // cp copies its first argument's file to its second: the stem arrives as one argument.
    let ok = hook(
        "copy",
        "/bin/cp",
        &["--", "@stem", out.to_str().expect("utf8")],
        Duration::from_secs(30),
    );
    let bad = hook("false", "/bin/false", &[], Duration::from_secs(30));
    let p = policy(vec![ok, bad], 2);
    let stem = dir.path().join("a b;$(touch x)'\"");
    std::fs::write(&stem, b"payload").expect("write");
    let stem_bytes = stem.as_os_str().as_encoded_bytes().to_vec();
    queue.enqueue(&queued(&p, &stem_bytes)).expect("enqueue");
    let stop = AtomicBool::new(false);
    let shared = Mutex::new(p);
    let until = Until::NothingDue(Instant::now() + Duration::from_secs(60));
    let drained = drain(&queue, &shared, until, &stop, &Bell::default());
    assert_eq!((drained.ran, drained.failed), (1, 1));
    assert_eq!(std::fs::read(&out).expect("copied"), b"payload");
    assert!(!dir.path().join("x").exists(), "nothing was interpreted");
    // The failed one waits a minute; not due, a second drain runs nothing.
    let listing = queue.list().expect("list");
    assert_eq!(listing.pending.len(), 1);
    let left = &listing.pending[0];
    assert_eq!((left.hook.as_str(), left.attempts), ("false", 1));
    assert_eq!(left.error.as_deref(), Some("exit status 1"));
    assert!(left.due >= OffsetDateTime::now_utc().unix_timestamp() + 50);
    let drained = drain(&queue, &shared, until, &stop, &Bell::default());
    assert_eq!(drained, Drained::default());
}

#[test]
fn a_failed_run_waits_the_whole_retry_delay_from_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = Queue::open(dir.path()).expect("queue");
    // The run fails (times out) after twice the delay: counted from the run's start, the
    // retry would be due as soon as it ends, and the same drain would run it again.
    let slow = hook("slow", "/bin/sleep", &["300"], Duration::from_secs(2));
    let mut p = policy(vec![slow], 3);
    p.retry_delay = Duration::from_secs(1);
    queue.enqueue(&queued(&p, b"s")).expect("enqueue");
    let shared = Mutex::new(p);
    let until = Until::NothingDue(Instant::now() + Duration::from_secs(60));
    let stop = AtomicBool::new(false);
    let drained = drain(&queue, &shared, until, &stop, &Bell::default());
    let ended = OffsetDateTime::now_utc();
    assert_eq!(drained.failed, 1, "run once, not retried at once");
    let listing = queue.list().expect("list");
    assert_eq!(listing.pending.len(), 1);
    assert_eq!(listing.pending[0].attempts, 1);
    assert!(
        listing.pending[0].due > ended.unix_timestamp(),
        "due {} is after the run's end {ended}",
        listing.pending[0].due
    );
}

#[test]
fn a_hanging_command_is_killed_with_its_process_group_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = Queue::open(dir.path()).expect("queue");
    let sleeper = hook("sleep", "/bin/sleep", &["300"], Duration::from_secs(1));
    let p = policy(vec![sleeper.clone()], 1);
    let event = queued(&p, b"s").remove(0);
    let started = Instant::now();
    let ran = run::run(&sleeper, &event, None);
    assert!(
        matches!(&ran, Ran::Failed(why) if why.contains("timed out after 1s")),
        "{ran:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Queued and failed for the last time (hook_attempts = 1): kept as failed.
    queue.enqueue(&[event]).expect("enqueue");
    let shared = Mutex::new(p);
    let until = Until::NothingDue(Instant::now() + Duration::from_secs(60));
    let drained = drain(
        &queue,
        &shared,
        until,
        &AtomicBool::new(false),
        &Bell::default(),
    );
    assert_eq!(drained.failed, 1);
    let listing = queue.list().expect("list");
    assert!(listing.pending.is_empty());
    assert_eq!(listing.failed.len(), 1);
}

#[test]
fn an_event_whose_hook_is_gone_is_kept_as_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = Queue::open(dir.path()).expect("queue");
    let p = policy(
        vec![hook("old", "/bin/true", &[], Duration::from_secs(5))],
        3,
    );
    queue.enqueue(&queued(&p, b"s")).expect("enqueue");
    let shared = Mutex::new(policy(Vec::new(), 3));
    let until = Until::NothingDue(Instant::now() + Duration::from_secs(60));
    drain(
        &queue,
        &shared,
        until,
        &AtomicBool::new(false),
        &Bell::default(),
    );
    let listing = queue.list().expect("list");
    assert_eq!(listing.failed.len(), 1);
    assert!(
        listing.failed[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no hook named \"old\"")),
        "{:?}",
        listing.failed[0]
    );
}

/// Collects what is logged, for the test that looks at a hook's output.
struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record.args().to_string());
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

#[test]
fn a_hooks_output_goes_to_the_log_bounded() {
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Info);
    // 100,000 bytes on stdout, and dd's own report on stderr.
    let dd = hook(
        "chatty",
        "/bin/dd",
        &["if=/dev/zero", "bs=1000", "count=100"],
        Duration::from_secs(30),
    );
    let p = policy(vec![dd.clone()], 1);
    let event = queued(&p, b"s").remove(0);
    assert_eq!(run::run(&dd, &event, None), Ran::Ok);
    let lines = CAPTURE
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains("hook chatty")).collect();
    let stdout: Vec<&&String> = ours.iter().filter(|l| l.contains(" stdout: ")).collect();
    assert!(
        stdout.iter().any(|l| l.ends_with(&format!(
            "{} more bytes not logged",
            100_000 - run::OUTPUT_LIMIT
        ))),
        "{ours:?}"
    );
    let logged: usize = stdout.iter().map(|l| l.len()).sum();
    assert!(
        logged < 5 * run::OUTPUT_LIMIT,
        "bounded: {logged} bytes of log"
    );
    assert!(
        ours.iter()
            .any(|l| l.contains(" stderr: ") && l.contains("records in")),
        "stderr logged: {ours:?}"
    );
}
