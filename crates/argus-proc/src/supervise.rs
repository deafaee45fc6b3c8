//! Keeping argus running (SPEC §3 step 8): find it through `/proc`, warn about what silently
//! loses data (no writes for a long time, a disk at argus' silent stop, a vanished interface),
//! and start it when it is not running.
//!
//! [`supervise`] returns the [`State`] it found or made, or every [`Problem`] that leaves argus
//! not running as it should; what only deserves a warning (an interface that is down, a disk
//! nearly full, an argus that has written nothing for long) is logged.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use argus_core::error_chain;
use argus_core::escape::{Escaped, EscapedPath};
use argus_core::publish::create_dir_all_durably;
use nix::unistd::User;

use crate::argus::{CONFIRM_AFTER, Launch, run_as_user, start};
use crate::disk::{ARGUS_MIN_FREE_BLOCKS, free_space};
use crate::error::Error;
use crate::find::{Target, find_argus, find_output_users};
use crate::iface::{capture_interfaces, interface_state};
use crate::pidfile;
use crate::process::ProcessId;

/// What to supervise: the argus to find or start, and when to call it stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supervision {
    /// How argus is started; its binary and output also identify the running one. Its pid file,
    /// when set, is kept pointing at the running argus.
    pub launch: Launch,
    /// Warn when argus has written nothing for this long; `None`: never.
    pub stale_after: Option<Duration>,
    /// Start argus when it is not running (else only warn).
    pub start_missing: bool,
}

/// What supervision found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// argus was running.
    Running(ProcessId),
    /// argus was not running and was started.
    Started(ProcessId),
    /// argus is not running and [`Supervision::start_missing`] says not to start it.
    LeftStopped,
}

/// What leaves argus not running as it should.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// `/proc` could not be searched.
    #[error("cannot look for argus")]
    Find(#[source] Error),
    /// The output's file system is at argus' silent stop.
    #[error(
        "the file system of {} has {free_blocks} free blocks: argus silently writes nothing at \
         {ARGUS_MIN_FREE_BLOCKS} or fewer; free some space",
        EscapedPath(dir)
    )]
    DiskFull {
        /// The output's directory.
        dir: PathBuf,
        /// Its free blocks.
        free_blocks: u64,
    },
    /// A capture interface of the running argus is gone.
    #[error("a capture interface of argus cannot be used, and argus exits when it disappears")]
    Interface(#[source] Error),
    /// Another program writes the output: no second argus is started.
    #[error(
        "{} is written by pid {pid} ({}), not by argus_bin {}; no second argus is started: set \
         argus_bin to that binary or stop it",
        EscapedPath(output),
        EscapedPath(exe),
        EscapedPath(bin)
    )]
    OtherWriter {
        /// The output.
        output: PathBuf,
        /// The other writer.
        pid: ProcessId,
        /// Its executable.
        exe: PathBuf,
        /// The configured argus binary.
        bin: PathBuf,
    },
    /// argus runs as a user (`-u`) who does not exist.
    #[error(
        "cannot start argus: argus_args make argus run as user {user:?} (-u), which does not exist"
    )]
    NoSuchUser {
        /// The user named by `-u`.
        user: String,
    },
    /// argus runs as a user (`-u`) who cannot create its output file.
    #[error(
        "cannot start argus: argus runs as user {user} (-u), who cannot create files in {}; argus \
         would exit at its start or at the first rotation: give the directory to {user}",
        EscapedPath(dir)
    )]
    UserCannotWrite {
        /// The user named by `-u`.
        user: String,
        /// The output's directory.
        dir: PathBuf,
    },
    /// Starting argus failed, or it died soon after.
    #[error("cannot start argus")]
    Start(#[source] Error),
}

/// Checks on argus and starts it when needed. `last_write` is when argus last wrote its output
/// (the mtime of the output before it was cut), if known; `now` is the time to judge it by.
pub fn supervise(
    s: &Supervision,
    last_write: Option<SystemTime>,
    now: SystemTime,
) -> Result<State, Vec<Problem>> {
    let launch = &s.launch;
    let mut problems = Vec::new();
    let target = Target::new(&launch.bin, &launch.output);
    let found = find_argus(&target).map_err(|e| vec![Problem::Find(e)])?;
    if found.len() > 1 {
        log::warn!(
            "{} argus processes write {}: pids {}; they interleave their records",
            found.len(),
            EscapedPath(&launch.output),
            found
                .iter()
                .map(|p| p.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    check_disk(&launch.output, &mut problems);
    let outcome = |state, problems: Vec<Problem>| {
        if problems.is_empty() {
            Ok(state)
        } else {
            Err(problems)
        }
    };
    if let Some(running) = found.first() {
        let id = running.id;
        log::info!("argus is running (pid {id})");
        if let Some(pid_file) = &launch.pid_file {
            refresh_pid_file(pid_file, id);
        }
        check_interfaces(&launch.interface, &mut problems);
        if let (Some(stale_after), Some(last)) = (s.stale_after, last_write)
            && let Ok(idle) = now.duration_since(last)
            && idle > stale_after
        {
            log::warn!(
                "argus (pid {id}) runs but has written nothing to {} for {}; check the interface and {}",
                EscapedPath(&launch.output),
                human(idle),
                launch
                    .log
                    .as_deref()
                    .map_or_else(|| "syslog".to_owned(), |l| EscapedPath(l).to_string())
            );
        }
        return outcome(State::Running(id), problems);
    }
    if !s.start_missing {
        log::warn!(
            "argus is not running for {}; supervise = false, so it is not started",
            EscapedPath(&launch.output)
        );
        return outcome(State::LeftStopped, problems);
    }
    // Something else writes the output (an argus under another path, started by hand or by
    // an init script): a second argus would interleave its records with it.
    let others = find_output_users(&target).map_err(|e| vec![Problem::Find(e)])?;
    if let Some(other) = others.first() {
        problems.push(Problem::OtherWriter {
            output: launch.output.clone(),
            pid: other.id,
            exe: other.exe.clone(),
            bin: launch.bin.clone(),
        });
        return Err(problems);
    }
    log::warn!(
        "argus is not running for {}; starting it",
        EscapedPath(&launch.output)
    );
    if let Err(e) = prepare_output_dir(&launch.output, &launch.extra_args) {
        problems.push(Problem::Start(e));
        return Err(problems);
    }
    if let Some(problem) = user_cannot_write(launch) {
        problems.push(problem);
        return Err(problems);
    }
    for file in launch.pid_file.iter().chain(launch.log.as_ref()) {
        if let Some(dir) = file.parent().filter(|d| !d.is_dir()) {
            log::warn!("directory {} does not exist; creating it", EscapedPath(dir));
            if let Err(e) = create_dir_all_durably(dir) {
                log::warn!("{e}");
            }
        }
    }
    match start(launch, CONFIRM_AFTER) {
        Ok(started) => {
            log::info!(
                "argus started (pid {}{}), writing {}",
                started.id,
                if started.daemonized {
                    ", daemonized by its config"
                } else {
                    ""
                },
                EscapedPath(&launch.output)
            );
            if !started.new_session {
                log::warn!(
                    "argus could not get a session of its own; it has its own process group"
                );
            }
            if let Some(e) = started.pid_file_error {
                log::warn!(
                    "argus runs, but its pid was not recorded: {}",
                    error_chain(&e)
                );
            }
            outcome(State::Started(started.id), problems)
        }
        Err(e) => {
            problems.push(Problem::Start(e));
            Err(problems)
        }
    }
}

/// Creates the directory of `output` when it is missing. When argus runs as another user
/// (`-u` in `extra_args`), a directory created here is given to that user: argus creates its
/// output file as that user, at its start and after every rotation.
pub fn prepare_output_dir(output: &Path, extra_args: &[String]) -> Result<(), Error> {
    let dir = output.parent().unwrap_or(Path::new("/"));
    if dir.is_dir() {
        return Ok(());
    }
    log::warn!(
        "output directory {} does not exist; creating it",
        EscapedPath(dir)
    );
    create_dir_all_durably(dir)?;
    if let Some(name) = run_as_user(extra_args) {
        match User::from_name(name) {
            Ok(Some(user)) => {
                nix::unistd::chown(dir, Some(user.uid), Some(user.gid)).map_err(|source| {
                    Error::Chown {
                        path: dir.to_path_buf(),
                        user: name.to_owned(),
                        source,
                    }
                })?;
                log::info!(
                    "gave {} to user {name}, as whom argus writes",
                    EscapedPath(dir)
                );
            }
            _ => log::warn!("argus is to run as user {name:?} (-u), which does not exist"),
        }
    }
    Ok(())
}

/// Why the user argus runs as (`-u`) cannot create its output file, if it cannot: argus would
/// exit at its start, or at the first rotation.
fn user_cannot_write(launch: &Launch) -> Option<Problem> {
    use std::os::unix::fs::MetadataExt;
    let name = run_as_user(&launch.extra_args)?;
    let dir = launch.output.parent().unwrap_or(Path::new("/"));
    let user = match User::from_name(name) {
        Ok(Some(user)) => user,
        _ => {
            return Some(Problem::NoSuchUser {
                user: name.to_owned(),
            });
        }
    };
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode();
    let writable = user.uid.is_root()
        || (meta.uid() == user.uid.as_raw() && mode & 0o200 != 0)
        || (meta.gid() == user.gid.as_raw() && mode & 0o020 != 0)
        || mode & 0o002 != 0;
    (!writable).then(|| Problem::UserCannotWrite {
        user: name.to_owned(),
        dir: dir.to_path_buf(),
    })
}

fn refresh_pid_file(path: &Path, id: ProcessId) {
    match pidfile::recorded_process(path) {
        Ok(Some(recorded)) if recorded == id => {}
        _ => match pidfile::write_pid_file(path, id.pid) {
            Ok(()) => log::info!("recorded argus pid {id} in {}", EscapedPath(path)),
            Err(e) => log::warn!("cannot record argus' pid: {}", error_chain(&e)),
        },
    }
}

/// Interfaces of a running argus: one that vanished makes argus exit; one that is down only
/// pauses it.
fn check_interfaces(interface: &str, problems: &mut Vec<Problem>) {
    for name in capture_interfaces(interface) {
        match interface_state(name) {
            Ok(state) if state.is_down() => log::warn!(
                "interface {} is down or has no carrier: argus captures nothing until it is back",
                Escaped(name.as_bytes())
            ),
            Ok(_) => {}
            Err(e) => problems.push(Problem::Interface(e)),
        }
    }
}

fn check_disk(output: &Path, problems: &mut Vec<Problem>) {
    let dir = output.parent().unwrap_or(Path::new("/"));
    let Ok(space) = free_space(dir) else { return };
    if space.argus_stopped() {
        problems.push(Problem::DiskFull {
            dir: dir.to_path_buf(),
            free_blocks: space.free_blocks,
        });
    } else if space.is_low() {
        log::warn!(
            "the file system of {} is nearly full ({} MiB free); argus silently stops writing at {} free blocks",
            EscapedPath(dir),
            space.free_bytes() >> 20,
            ARGUS_MIN_FREE_BLOCKS
        );
    }
}

/// A duration for messages: seconds, minutes or hours.
fn human(d: Duration) -> String {
    match d.as_secs() {
        s @ 0..120 => format!("{s} s"),
        s @ 120..7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervision(dir: &Path, bin: &str, start_missing: bool) -> Supervision {
        Supervision {
            launch: Launch {
                bin: PathBuf::from(bin),
                interface: "lo".to_owned(),
                output: dir.join("out/argus.out"),
                extra_args: Vec::new(),
                pid_file: Some(dir.join("run/argus.pid")),
                log: None,
            },
            stale_after: Some(Duration::from_secs(60)),
            start_missing,
        }
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(human(Duration::from_secs(119)), "119 s");
        assert_eq!(human(Duration::from_secs(120)), "2 min");
        assert_eq!(human(Duration::from_secs(7200)), "2 h");
    }

    #[test]
    fn a_missing_argus_is_left_stopped_when_told_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = supervision(dir.path(), "/usr/sbin/argus", false);
        let state = supervise(&s, None, SystemTime::now()).expect("no problem");
        assert_eq!(state, State::LeftStopped);
        assert!(!dir.path().join("out").exists(), "nothing is prepared");
    }

    #[test]
    fn a_missing_binary_is_a_start_problem_with_its_cause() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = supervision(dir.path(), "/nonexistent/sbin/argus", true);
        let problems = supervise(&s, None, SystemTime::now()).expect_err("cannot start");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            matches!(&problems[0], Problem::Start(Error::Binary { .. })),
            "{problems:?}"
        );
        assert_eq!(
            error_chain(&problems[0]),
            "cannot start argus: argus binary /nonexistent/sbin/argus does not exist"
        );
        // The output directory was prepared for argus before the start was refused.
        assert!(dir.path().join("out").is_dir());
    }

    #[test]
    fn the_output_directory_is_created_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join("a/b/argus.out");
        prepare_output_dir(&output, &[]).expect("created");
        assert!(dir.path().join("a/b").is_dir());
        prepare_output_dir(&output, &[]).expect("already there");
        assert!(!output.exists(), "argus creates its file itself");
    }
}
