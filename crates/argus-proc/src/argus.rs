//! Starting argus for one output file and confirming that it runs.
//!
//! argus is started in the foreground mode (no `-d`) as a [detached](crate::spawn) child: its
//! pid is known at once, its messages go to a log file instead of only to syslog, and nothing
//! depends on how `-d` toggles against `ARGUS_DAEMON` in its config file. Because argus exits
//! with status 0 even on fatal errors (a missing interface makes it exit about 1.1 s after its
//! start), it is watched for a while after the start and counts as started only if it still runs
//! then. Should its config file daemonize it anyway (`ARGUS_DAEMON=yes` without `-d`), the
//! foreground process exits 0 after about 0.5 s, and the daemon is found through `/proc`.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argus_core::escape::{Escaped, EscapedPath};

use crate::error::{BinaryProblem, Error, Result};
use crate::find::{Target, find_argus};
use crate::iface::{capture_interfaces, interface_state};
use crate::pidfile::write_pid_file;
use crate::process::ProcessId;
use crate::spawn::Detached;

/// How long after its start argus must still run to count as started: longer than the ~1.1 s it
/// takes to die of a missing interface, and than the 0.5 s its `-d` parent waits.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(2);

/// A log file larger than this is moved to `LOG.old` before argus is started again.
pub const MAX_LOG_BYTES: u64 = 1 << 20;

/// Everything needed to start argus for one output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The argus binary (absolute path).
    pub bin: PathBuf,
    /// The `-i` value: an interface, or an argus interface list such as `ind:eth0,eth1`.
    pub interface: String,
    /// The `-w` file.
    pub output: PathBuf,
    /// Extra arguments, placed before `-i` and `-w` (so that `-X` or `-F` cannot undo them);
    /// checked by [`check_extra_args`].
    pub extra_args: Vec<String>,
    /// Where to record the pid, if anywhere.
    pub pid_file: Option<PathBuf>,
    /// Where argus' stdout and stderr go (`/dev/null` when `None`).
    pub log: Option<PathBuf>,
}

impl Launch {
    /// The argument vector after the program name: `EXTRA... -i INTERFACE -w OUTPUT`.
    ///
    /// `-i` swallows the words after it that do not start with `-`, so nothing follows the
    /// interface but `-w`; and the output comes last, so no extra word can become its filter.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = self.extra_args.iter().map(OsString::from).collect();
        argv.push("-i".into());
        argv.push(self.interface.clone().into());
        argv.push("-w".into());
        argv.push(self.output.clone().into_os_string());
        argv
    }

    /// The command line for messages, with untrusted bytes escaped.
    pub fn display(&self) -> String {
        let mut s = EscapedPath(&self.bin).to_string();
        for a in self.argv() {
            s.push(' ');
            s.push_str(&Escaped(a.as_encoded_bytes()).to_string());
        }
        s
    }
}

/// Checks that `bin` is an absolute path to an executable regular file.
pub fn check_binary(bin: &Path) -> Result<()> {
    let problem = |problem| Error::Binary {
        path: bin.to_path_buf(),
        problem,
    };
    if !bin.is_absolute() {
        return Err(problem(BinaryProblem::Relative));
    }
    let meta = match fs::metadata(bin) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(problem(BinaryProblem::Missing));
        }
        Err(source) => {
            return Err(Error::Io {
                op: "stat",
                path: bin.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(problem(BinaryProblem::NotAFile));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(problem(BinaryProblem::NotExecutable));
    }
    Ok(())
}

/// Refuses extra argus arguments that would break supervision or rotation:
/// `-d` (argus is kept in the foreground as a detached child; `-d` would toggle against
/// `ARGUS_DAEMON`), `-i` and `-w` (set from the interface and output settings), `-r` (reads a
/// capture file instead of an interface) and `-c` (chroot: the output path would be relative to
/// it, and the harvest could not find it).
pub fn check_extra_args(args: &[String]) -> Result<()> {
    for arg in args {
        let reason = match arg.as_bytes() {
            [b'-', b'd', ..] => Some(
                "harvest keeps argus in the foreground as a detached process; -d toggles against ARGUS_DAEMON and hides its pid",
            ),
            [b'-', b'i', ..] => Some("the interface is set by the interface setting"),
            [b'-', b'w', ..] => Some("the output file is set by the output setting"),
            [b'-', b'r', ..] => Some("argus must capture live, not read a file"),
            [b'-', b'c', ..] => Some(
                "a chroot makes the output path relative to it, which the harvest cannot follow",
            ),
            _ if arg.contains('\0') => Some("an argument cannot hold a NUL byte"),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(Error::BadArgument {
                arg: arg.clone(),
                reason,
            });
        }
    }
    Ok(())
}

/// The user argus switches to after opening its interface (`-u USER` or `-uUSER` among the
/// extra arguments): it creates its output file, and re-creates it after every rotation, as
/// that user.
pub fn run_as_user(args: &[String]) -> Option<&str> {
    let mut iter = args.iter();
    let mut user = None;
    while let Some(arg) = iter.next() {
        if arg == "-u" {
            user = iter.next().map(String::as_str);
        } else if let Some(name) = arg.strip_prefix("-u") {
            user = Some(name);
        }
    }
    user.filter(|u| !u.is_empty())
}

/// A started and confirmed argus.
#[derive(Debug)]
pub struct Started {
    /// The running argus.
    pub id: ProcessId,
    /// It daemonized itself (its config file says `ARGUS_DAEMON=yes`): `id` is the daemon found
    /// through `/proc`, not the process that was started.
    pub daemonized: bool,
    /// It runs in its own session (else only in its own process group).
    pub new_session: bool,
    /// Why the pid file could not be written, if it could not. argus runs all the same.
    pub pid_file_error: Option<Error>,
}

/// Starts argus as described by `launch` and confirms after `confirm_after` (normally
/// [`CONFIRM_AFTER`]) that it still runs. Checks the binary, the arguments and the interfaces
/// first; an interface that is down is only logged, since argus waits for it. Records the pid.
pub fn start(launch: &Launch, confirm_after: Duration) -> Result<Started> {
    check_binary(&launch.bin)?;
    check_extra_args(&launch.extra_args)?;
    for name in capture_interfaces(&launch.interface) {
        let state = interface_state(name)?;
        if state.is_down() {
            log::warn!(
                "interface {} is down or has no carrier; argus will wait for it",
                Escaped(name.as_bytes())
            );
        }
    }
    let log_start = match &launch.log {
        Some(log) => prepare_log(log),
        None => 0,
    };
    let mut command = Detached::new(&launch.bin).args(launch.argv());
    if let Some(log) = &launch.log {
        command = command.log(log);
    }
    log::info!("starting argus: {}", launch.display());
    let mut child = command.spawn()?;
    let started = Instant::now();
    let target = Target::new(&launch.bin, &launch.output);

    let (id, daemonized) = match child.watch(confirm_after) {
        None => match child.id().filter(ProcessId::is_alive) {
            Some(id) => (id, false),
            None => {
                return Err(died(
                    launch,
                    child.pid(),
                    "ended, status unknown",
                    started,
                    log_start,
                ));
            }
        },
        Some(exit) if exit.code == Some(0) => {
            // Perhaps it daemonized itself: give the daemon the rest of the period to prove it
            // lives, then look for it.
            let rest = confirm_after.saturating_sub(started.elapsed());
            std::thread::sleep(rest);
            match find_argus(&target)?.into_iter().find(|p| p.id.is_alive()) {
                Some(daemon) => {
                    log::info!(
                        "argus daemonized itself (ARGUS_DAEMON=yes in its config?); its daemon has pid {}",
                        daemon.id
                    );
                    (daemon.id, true)
                }
                None => return Err(died(launch, child.pid(), &exit.status, started, log_start)),
            }
        }
        Some(exit) => return Err(died(launch, child.pid(), &exit.status, started, log_start)),
    };
    let pid_file_error = launch
        .pid_file
        .as_deref()
        .and_then(|path| write_pid_file(path, id.pid).err());
    Ok(Started {
        id,
        daemonized,
        new_session: child.new_session(),
        pid_file_error,
    })
}

fn died(launch: &Launch, pid: i32, status: &str, started: Instant, log_start: u64) -> Error {
    Error::Died {
        pid,
        status: status.to_owned(),
        waited: started.elapsed(),
        messages: launch
            .log
            .as_deref()
            .and_then(|log| last_messages(log, log_start)),
    }
}

/// Moves an oversized log aside and returns the offset at which this start's messages begin.
fn prepare_log(log: &Path) -> u64 {
    let size = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    if size > MAX_LOG_BYTES {
        let mut old = log.as_os_str().to_owned();
        old.push(".old");
        match fs::rename(log, &old) {
            Ok(()) => return 0,
            Err(e) => log::warn!("cannot move {} aside: {e}", EscapedPath(log)),
        }
    }
    size
}

/// The last few lines written to `log` after `from`, joined with `; `, escaped.
fn last_messages(log: &Path, from: u64) -> Option<String> {
    let mut file = fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    let start = from.max(len.saturating_sub(4096));
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.take(4096).read_to_end(&mut tail).ok()?;
    let lines: Vec<String> = tail
        .split(|&b| b == b'\n')
        .map(|l| Escaped(l.trim_ascii()).to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let keep = &lines[lines.len().saturating_sub(5)..];
    (!keep.is_empty()).then(|| keep.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn builds_the_command_line_with_output_last() {
        let launch = Launch {
            bin: "/usr/sbin/argus".into(),
            interface: "eth0".into(),
            output: "/var/argus/argus.out".into(),
            extra_args: strings(&["-X", "-S", "5", "-", "ip"]),
            pid_file: None,
            log: None,
        };
        assert_eq!(
            launch.argv(),
            [
                "-X",
                "-S",
                "5",
                "-",
                "ip",
                "-i",
                "eth0",
                "-w",
                "/var/argus/argus.out"
            ]
            .map(OsString::from)
        );
        assert_eq!(
            launch.display(),
            "/usr/sbin/argus -X -S 5 - ip -i eth0 -w /var/argus/argus.out"
        );
    }

    #[test]
    fn refuses_arguments_that_break_supervision() {
        assert!(check_extra_args(&strings(&["-X", "-S", "5", "-M", "60", "-P", "0", "-"])).is_ok());
        for bad in ["-d", "-i", "-ieth1", "-w", "-wfile", "-r", "-cd", "a\0b"] {
            let err = check_extra_args(&strings(&["-S", "5", bad])).expect_err(bad);
            assert!(matches!(err, Error::BadArgument { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn finds_the_user_argus_runs_as() {
        assert_eq!(
            run_as_user(&strings(&["-S", "5", "-u", "argus"])),
            Some("argus")
        );
        assert_eq!(
            run_as_user(&strings(&["-uargus", "-g", "x"])),
            Some("argus")
        );
        assert_eq!(run_as_user(&strings(&["-S", "5"])), None);
        assert_eq!(run_as_user(&strings(&["-u"])), None);
    }

    #[test]
    fn checks_the_binary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("plain");
        fs::write(&plain, "x").expect("write");
        let cases = [
            (PathBuf::from("argus"), BinaryProblem::Relative),
            (dir.path().join("missing"), BinaryProblem::Missing),
            (dir.path().to_path_buf(), BinaryProblem::NotAFile),
            (plain, BinaryProblem::NotExecutable),
        ];
        for (path, want) in cases {
            match check_binary(&path) {
                Err(Error::Binary { problem, .. }) => assert_eq!(problem, want, "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert!(check_binary(Path::new("/bin/sh")).is_ok());
    }

    #[test]
    fn last_messages_reads_only_this_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("argus.log");
        fs::write(&log, "old line\n  ArgusWarning: No such device exists\n\n").expect("write");
        assert_eq!(
            last_messages(&log, 9).as_deref(),
            Some("ArgusWarning: No such device exists")
        );
        assert_eq!(last_messages(&log, 1000), None);
        assert_eq!(last_messages(&dir.path().join("none"), 0), None);
    }

    #[test]
    fn a_program_that_exits_at_once_did_not_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("x.log");
        let launch = Launch {
            // `false` exits 1 whatever its arguments.
            bin: "/bin/false".into(),
            interface: "lo".into(),
            output: dir.path().join("out"),
            extra_args: Vec::new(),
            pid_file: Some(dir.path().join("x.pid")),
            log: Some(log),
        };
        let err = start(&launch, Duration::from_secs(2)).expect_err("dies");
        assert!(
            matches!(&err, Error::Died { status, .. } if status == "exit status 1"),
            "{err}"
        );
        assert!(!dir.path().join("x.pid").exists());
        let missing = Launch {
            interface: "nosuch0".into(),
            ..launch
        };
        assert!(matches!(
            start(&missing, Duration::from_secs(2)),
            Err(Error::NoSuchInterface { .. })
        ));
    }
}
