//! Keeping argus running (SPEC §3 step 8): find it through `/proc`, warn about what silently
//! loses data (no writes for a long time, a disk at argus' silent stop, a vanished interface),
//! and start it when it is not running.

use std::path::Path;
use std::time::SystemTime;

use argus_core::escape::{Escaped, EscapedPath};
use argus_core::publish::create_dir_all_durably;
use argus_proc::argus::{CONFIRM_AFTER, Launch, run_as_user, start};
use argus_proc::disk::{ARGUS_MIN_FREE_BLOCKS, free_space};
use argus_proc::find::{Target, find_argus, find_output_users};
use argus_proc::iface::{capture_interfaces, interface_state};
use argus_proc::{Error as ProcError, ProcessId, pidfile};
use nix::unistd::User;

use crate::config::Settings;

/// What supervision found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// argus was running.
    Running(ProcessId),
    /// argus was not running and was started.
    Started(ProcessId),
    /// argus is not running and `supervise = false` says not to start it.
    LeftStopped,
}

/// Checks on argus and starts it when needed. `last_write` is when argus last wrote its output
/// (the mtime of the output before it was cut), if known. Errors are messages for the log.
pub(crate) fn supervise(
    s: &Settings,
    last_write: Option<SystemTime>,
) -> Result<State, Vec<String>> {
    let mut problems = Vec::new();
    let target = Target::new(&s.argus_bin, &s.output);
    let found = find_argus(&target).map_err(|e| vec![message(&e)])?;
    if found.len() > 1 {
        log::warn!(
            "{} argus processes write {}: pids {}; they interleave their records",
            found.len(),
            EscapedPath(&s.output),
            found
                .iter()
                .map(|p| p.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    check_disk(s, &mut problems);
    if let Some(running) = found.first() {
        let id = running.id;
        log::info!("argus is running (pid {id})");
        refresh_pid_file(&s.pid_file, id);
        check_interfaces(s, &mut problems);
        if let (Some(stale_after), Some(last)) = (s.stale_after, last_write)
            && let Ok(idle) = SystemTime::now().duration_since(last)
            && idle > stale_after
        {
            log::warn!(
                "argus (pid {id}) runs but has written nothing to {} for {}; check the interface and {}",
                EscapedPath(&s.output),
                human(idle),
                s.argus_log
                    .as_deref()
                    .map_or_else(|| "syslog".to_owned(), |l| EscapedPath(l).to_string())
            );
        }
        return if problems.is_empty() {
            Ok(State::Running(id))
        } else {
            Err(problems)
        };
    }
    if !s.supervise {
        log::warn!(
            "argus is not running for {}; supervise = false, so it is not started",
            EscapedPath(&s.output)
        );
        return if problems.is_empty() {
            Ok(State::LeftStopped)
        } else {
            Err(problems)
        };
    }
    // Something else writes the output (an argus under another path, started by hand or by
    // an init script): a second argus would interleave its records with it.
    let others = find_output_users(&target).map_err(|e| vec![message(&e)])?;
    if let Some(other) = others.first() {
        problems.push(format!(
            "{} is written by pid {} ({}), not by argus_bin {}; no second argus is started: set argus_bin to that binary or stop it",
            EscapedPath(&s.output),
            other.id,
            EscapedPath(&other.exe),
            EscapedPath(&s.argus_bin)
        ));
        return Err(problems);
    }
    log::warn!(
        "argus is not running for {}; starting it",
        EscapedPath(&s.output)
    );
    if let Err(e) = prepare_output_dir(s) {
        problems.push(format!("cannot start argus: {e}"));
        return Err(problems);
    }
    if let Some(problem) = user_cannot_write(s) {
        problems.push(format!("cannot start argus: {problem}"));
        return Err(problems);
    }
    for file in std::iter::once(&s.pid_file).chain(s.argus_log.as_ref()) {
        if let Some(dir) = file.parent().filter(|d| !d.is_dir()) {
            log::warn!("directory {} does not exist; creating it", EscapedPath(dir));
            if let Err(e) = create_dir_all_durably(dir) {
                log::warn!("{e}");
            }
        }
    }
    let launch = Launch {
        bin: s.argus_bin.clone(),
        interface: s.interface.clone(),
        output: s.output.clone(),
        extra_args: s.argus_args.clone(),
        pid_file: Some(s.pid_file.clone()),
        log: s.argus_log.clone(),
    };
    match start(&launch, CONFIRM_AFTER) {
        Ok(started) => {
            log::info!(
                "argus started (pid {}{}), writing {}",
                started.id,
                if started.daemonized {
                    ", daemonized by its config"
                } else {
                    ""
                },
                EscapedPath(&s.output)
            );
            if !started.new_session {
                log::warn!(
                    "argus could not get a session of its own; it has its own process group"
                );
            }
            if let Some(e) = started.pid_file_error {
                log::warn!("argus runs, but its pid was not recorded: {}", message(&e));
            }
            if problems.is_empty() {
                Ok(State::Started(started.id))
            } else {
                Err(problems)
            }
        }
        Err(e) => {
            problems.push(format!("cannot start argus: {}", message(&e)));
            Err(problems)
        }
    }
}

/// Creates the output directory when it is missing. When argus runs as another user (`-u`),
/// a directory created here is given to that user: argus creates its output file as that user,
/// at its start and after every rotation.
pub(crate) fn prepare_output_dir(s: &Settings) -> Result<(), String> {
    let dir = s.output.parent().unwrap_or(Path::new("/"));
    if dir.is_dir() {
        return Ok(());
    }
    log::warn!(
        "output directory {} does not exist; creating it",
        EscapedPath(dir)
    );
    create_dir_all_durably(dir).map_err(|e| e.to_string())?;
    if let Some(name) = run_as_user(&s.argus_args) {
        match User::from_name(name) {
            Ok(Some(user)) => {
                nix::unistd::chown(dir, Some(user.uid), Some(user.gid)).map_err(|e| {
                    format!(
                        "cannot give {} to user {name} (argus runs as it): {e}",
                        EscapedPath(dir)
                    )
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
fn user_cannot_write(s: &Settings) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let name = run_as_user(&s.argus_args)?;
    let dir = s.output.parent().unwrap_or(Path::new("/"));
    let user = match User::from_name(name) {
        Ok(Some(user)) => user,
        _ => {
            return Some(format!(
                "argus_args make argus run as user {name:?} (-u), which does not exist"
            ));
        }
    };
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode();
    let writable = user.uid.is_root()
        || (meta.uid() == user.uid.as_raw() && mode & 0o200 != 0)
        || (meta.gid() == user.gid.as_raw() && mode & 0o020 != 0)
        || mode & 0o002 != 0;
    (!writable).then(|| {
        format!(
            "argus runs as user {name} (-u), who cannot create files in {}; argus would exit at its start or at the first rotation: give the directory to {name}",
            EscapedPath(dir)
        )
    })
}

fn refresh_pid_file(path: &Path, id: ProcessId) {
    match pidfile::recorded_process(path) {
        Ok(Some(recorded)) if recorded == id => {}
        _ => match pidfile::write_pid_file(path, id.pid) {
            Ok(()) => log::info!("recorded argus pid {id} in {}", EscapedPath(path)),
            Err(e) => log::warn!("cannot record argus' pid: {}", message(&e)),
        },
    }
}

/// Interfaces of a running argus: one that vanished makes argus exit; one that is down only
/// pauses it.
fn check_interfaces(s: &Settings, problems: &mut Vec<String>) {
    for name in capture_interfaces(&s.interface) {
        match interface_state(name) {
            Ok(state) if state.is_down() => log::warn!(
                "interface {} is down or has no carrier: argus captures nothing until it is back",
                Escaped(name.as_bytes())
            ),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{}; argus exits when its interface disappears",
                message(&e)
            )),
        }
    }
}

fn check_disk(s: &Settings, problems: &mut Vec<String>) {
    let dir = s.output.parent().unwrap_or(Path::new("/"));
    let Ok(space) = free_space(dir) else { return };
    if space.argus_stopped() {
        problems.push(format!(
            "the file system of {} has {} free blocks: argus silently writes nothing at {} or fewer; free some space",
            EscapedPath(dir),
            space.free_blocks,
            ARGUS_MIN_FREE_BLOCKS
        ));
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
fn human(d: std::time::Duration) -> String {
    match d.as_secs() {
        s @ 0..120 => format!("{s} s"),
        s @ 120..7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// An argus-proc error with its cause, on one line.
fn message(e: &ProcError) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
