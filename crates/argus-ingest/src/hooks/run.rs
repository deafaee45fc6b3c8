//! Running one hook command: no shell, stdin `/dev/null`, its own process group, the event in
//! its arguments and in `ARGUS_WEBJOB_*` variables, stdout and stderr to the log (bounded), and
//! the whole group killed at the timeout or when the daemon stops.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_core::escape::Escaped;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::config::Hook;

use super::queue::Queued;

/// At most this much of each of a run's stdout and stderr goes to the log.
pub(super) const OUTPUT_LIMIT: usize = 16 * 1024;
/// After SIGTERM, the group gets this long before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran {
    /// Exit status 0.
    Ok,
    /// Anything else, said in a few words (`exit status 3`, `killed by signal 9`, `timed out
    /// after 10m`, `cannot start: ...`).
    Failed(String),
    /// Stopped because the process is stopping: not counted as an attempt.
    Interrupted,
}

/// Runs `hook` for `event` to its end, its timeout, or `stop`.
pub(super) fn run(hook: &Hook, event: &Queued, stop: Option<&AtomicBool>) -> Ran {
    let args = hook.expand(|name| event.value(name));
    let mut cmd = Command::new(&hook.program);
    cmd.args(args.into_iter().map(OsString::from_vec))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env("ARGUS_WEBJOB_EVENT", event.event.name())
        .env("ARGUS_WEBJOB_HOOK", &hook.name)
        .env("ARGUS_WEBJOB_EVENT_ID", &event.id);
    for (key, value) in &event.values {
        cmd.env(
            format!("ARGUS_WEBJOB_{}", key.to_ascii_uppercase()),
            OsString::from_vec(value.clone()),
        );
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ran::Failed(format!("cannot start {}: {e}", hook.program)),
    };
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let output: Vec<mpsc::Receiver<(Vec<u8>, u64)>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(read_bounded)
    .collect();

    let deadline = started + hook.timeout;
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                log::error!("hook {}: cannot wait for it: {e}", hook.name);
                break None;
            }
        }
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            kill_group(&mut child, pgid);
            log_output(hook, event, &output);
            return Ran::Interrupted;
        }
        if Instant::now() >= deadline {
            kill_group(&mut child, pgid);
            log_output(hook, event, &output);
            return Ran::Failed(format!(
                "timed out after {}; its process group was killed",
                argus_core::grammar::format_duration(hook.timeout)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // What the command left behind in its group may still hold its output open: it gets a
    // moment, then the group is killed, so that a run always ends.
    let _ignored = killpg(pgid, None::<Signal>).map(|()| {
        std::thread::sleep(Duration::from_millis(100));
        let _ = killpg(pgid, Signal::SIGKILL);
    });
    log_output(hook, event, &output);
    match ended {
        Some(status) if status.success() => Ran::Ok,
        Some(status) => Ran::Failed(match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => "ended abnormally".to_owned(),
        }),
        None => Ran::Failed("lost track of the command".to_owned()),
    }
}

/// SIGTERM to the group, SIGKILL after [`GRACE`], and the leader reaped.
fn kill_group(child: &mut Child, pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGTERM);
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_))) && killpg(pgid, None::<Signal>).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Reads a stream to its end on its own thread, keeping the first [`OUTPUT_LIMIT`] bytes and
/// counting the rest. A reader left blocked by a process that escaped the group is abandoned.
fn read_bounded(mut stream: Box<dyn Read + Send>) -> mpsc::Receiver<(Vec<u8>, u64)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut dropped = 0u64;
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&buf[..room]);
                    dropped += (n - room) as u64;
                }
            }
        }
        let _ = tx.send((kept, dropped));
    });
    rx
}

fn log_output(hook: &Hook, event: &Queued, output: &[mpsc::Receiver<(Vec<u8>, u64)>]) {
    for (stream, rx) in ["stdout", "stderr"].iter().zip(output) {
        let Ok((kept, dropped)) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        for line in kept.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            log::info!(
                "hook {} ({}) {stream}: {}",
                hook.name,
                event.id,
                Escaped(line)
            );
        }
        if dropped > 0 {
            log::info!(
                "hook {} ({}) {stream}: {dropped} more bytes not logged",
                hook.name,
                event.id
            );
        }
    }
}
