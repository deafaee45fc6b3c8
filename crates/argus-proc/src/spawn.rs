//! Starting a long-lived program detached from its caller, without `unsafe` and without a shell.
//!
//! `harvest_argus` runs under the WebJob client, which uploads its stdout and stderr and waits for
//! EOF on both. A program it starts must therefore hold neither, nor any other descriptor of its
//! caller (a lock file held by argus would lock out every later harvest), nor stay in its
//! caller's session (a hang-up or a job-control signal for the caller must not reach it).
//!
//! [`Detached::spawn`] uses `posix_spawn(3)` with these attributes, all applied by the C library
//! between fork and exec, so no Rust code runs in the child:
//! - `POSIX_SPAWN_SETSID`: a new session (POSIX.1-2024, glibc >= 2.26, musl >= 1.1.24); where the
//!   C library refuses it, a new process group instead, and [`Child::new_session`] says so;
//! - stdin from `/dev/null`, stdout and stderr appended to a log file (or `/dev/null`);
//! - every other descriptor open in the caller closed (`/proc/self/fd` lists them);
//! - an empty signal mask and default dispositions for every signal (Rust ignores `SIGPIPE`, and
//!   ignored signals would otherwise survive the exec).
//!
//! The child's pid is the program's pid (no intermediate fork as with `setsid(1)` or a
//! daemonizing `-d`), so the caller can watch it and record it.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, IoContext, Result};
use crate::process::ProcessId;

/// A program to start detached; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Detached {
    program: PathBuf,
    args: Vec<OsString>,
    log: Option<PathBuf>,
}

impl Detached {
    /// `program` (an absolute path; no `PATH` search) with no arguments, output to `/dev/null`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Detached {
            program: program.into(),
            args: Vec::new(),
            log: None,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Appends the program's stdout and stderr to `path` (created with mode 0644).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments after the program name.
    pub fn arguments(&self) -> &[OsString] {
        &self.args
    }

    /// Starts the program; see the [module docs](self).
    pub fn spawn(&self) -> Result<Child> {
        let devnull = Path::new("/dev/null");
        let stdin = File::open(devnull).at("open", devnull)?;
        let out = match &self.log {
            Some(log) => OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(log)
                .at("open log file", log)?,
            None => OpenOptions::new()
                .write(true)
                .open(devnull)
                .at("open", devnull)?,
        };
        let inherited = open_descriptors();

        let spawn_error = |source: io::Error| Error::Spawn {
            program: self.program.clone(),
            source,
        };
        let errno = |e: Errno| spawn_error(io::Error::from(e));
        let mut actions = PosixSpawnFileActions::init().map_err(errno)?;
        actions.add_dup2(stdin.as_raw_fd(), 0).map_err(errno)?;
        actions.add_dup2(out.as_raw_fd(), 1).map_err(errno)?;
        actions.add_dup2(out.as_raw_fd(), 2).map_err(errno)?;
        for fd in inherited.into_iter().filter(|&fd| fd > 2) {
            // Closing a descriptor that is already closed at spawn time is not an error for
            // the C library, so the list may be a little stale.
            actions.add_close(fd).map_err(errno)?;
        }

        let argv = std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| c_string(a, "argument"))
            .collect::<Result<Vec<_>>>()?;
        let envp = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                c_string(&kv, "environment variable")
            })
            .collect::<Result<Vec<_>>>()?;

        let setsid = PosixSpawnFlags::from_bits_retain(i32::from(nix::libc::POSIX_SPAWN_SETSID));
        let attempt = |flags: PosixSpawnFlags| -> nix::Result<Pid> {
            let mut attr = PosixSpawnAttr::init()?;
            attr.set_flags(
                flags
                    | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
                    | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
            )?;
            attr.set_sigmask(&SigSet::empty())?;
            attr.set_sigdefault(&SigSet::all())?;
            if flags.contains(PosixSpawnFlags::POSIX_SPAWN_SETPGROUP) {
                attr.set_pgroup(Pid::from_raw(0))?;
            }
            posix_spawn(self.program.as_path(), &actions, &attr, &argv, &envp)
        };
        let (pid, new_session) = match attempt(setsid) {
            Ok(pid) => (pid, true),
            Err(Errno::EINVAL) => {
                log::warn!(
                    "the C library cannot start a program in a new session; {} gets its own process group only",
                    argus_core::escape::EscapedPath(&self.program)
                );
                let pid = attempt(PosixSpawnFlags::POSIX_SPAWN_SETPGROUP).map_err(errno)?;
                (pid, false)
            }
            Err(e) => return Err(errno(e)),
        };
        drop((stdin, out));
        Ok(Child {
            pid,
            id: ProcessId::of(pid.as_raw()),
            new_session,
            started: Instant::now(),
            exit: None,
        })
    }
}

fn c_string(arg: &OsStr, what: &'static str) -> Result<CString> {
    CString::new(arg.as_bytes()).map_err(|_| Error::BadArgument {
        arg: arg.to_string_lossy().into_owned(),
        reason: match what {
            "argument" => "an argument cannot hold a NUL byte",
            _ => "an environment variable cannot hold a NUL byte",
        },
    })
}

/// The descriptors open in this process, from `/proc/self/fd` (empty if that cannot be read).
fn open_descriptors() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// A started program, which this process may watch until it returns.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    id: Option<ProcessId>,
    new_session: bool,
    started: Instant,
    exit: Option<Exit>,
}

/// How a watched child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Readable status, e.g. `exit status 0` or `killed by SIGKILL`.
    pub status: String,
    /// The exit code, when it exited normally.
    pub code: Option<i32>,
    /// Time from the start until the exit was noticed.
    pub after: Duration,
}

impl Child {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The child's identity (pid and start time), when it could be read right after the start.
    pub fn id(&self) -> Option<ProcessId> {
        self.id
    }

    /// False when the C library could not give the child its own session (it got its own
    /// process group only).
    pub fn new_session(&self) -> bool {
        self.new_session
    }

    /// Watches the child for `period` after its start (polling every 50 ms). Returns `None`
    /// when it still runs at the end of the period, else how it ended (the zombie is reaped).
    pub fn watch(&mut self, period: Duration) -> Option<Exit> {
        loop {
            if let Some(exit) = self.try_exit() {
                return Some(exit);
            }
            let elapsed = self.started.elapsed();
            if elapsed >= period {
                return None;
            }
            std::thread::sleep((period - elapsed).min(Duration::from_millis(50)));
        }
    }

    /// Whether the child has ended, without waiting.
    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.exit.is_some() {
            return self.exit.clone();
        }
        let status = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some((format!("exit status {code}"), Some(code))),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                Some((format!("killed by {}", signal_name(sig)), None))
            }
            Ok(_) => None,
            // Not our child any more (reaped elsewhere): judge by /proc.
            Err(_) => match self.id {
                Some(id) if id.is_alive() => None,
                _ => Some(("ended, status unknown".to_owned(), None)),
            },
        };
        self.exit = status.map(|(status, code)| Exit {
            status,
            code,
            after: self.started.elapsed(),
        });
        self.exit.clone()
    }
}

fn signal_name(sig: Signal) -> &'static str {
    sig.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn wait_gone(child: &mut Child) -> Exit {
        child
            .watch(Duration::from_secs(30))
            .expect("child ends within 30 s")
    }

    #[test]
    fn reports_exit_status_and_missing_programs() {
        let mut child = Detached::new("/bin/false").spawn().expect("spawn false");
        let exit = wait_gone(&mut child);
        assert_eq!(exit.code, Some(1));
        assert_eq!(exit.status, "exit status 1");
        let err = Detached::new("/nonexistent/argus")
            .spawn()
            .expect_err("no such file");
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
    }

    #[test]
    fn child_gets_its_own_session_devnull_stdin_and_no_inherited_descriptors() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A descriptor without close-on-exec, as a careless parent process would leave one.
        let leaky = File::create(dir.path().join("leak")).expect("create");
        let leaked = nix::unistd::dup(&leaky).expect("dup");
        let log = dir.path().join("sleep.log");
        let mut child = Detached::new("/bin/sleep")
            .args(["30"])
            .log(&log)
            .spawn()
            .expect("spawn sleep");
        let pid = child.pid();
        assert!(child.new_session());
        // posix_spawn returns once the child has exec'd, so /proc shows the final state.
        let stat = crate::procfs::stat(pid).expect("stat");
        assert_eq!(stat.session, pid, "session leader");
        assert_eq!(stat.pgrp, pid, "process group leader");
        let fds = || -> Vec<i32> {
            let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .expect("fds")
                .map(|e| {
                    let name = e.expect("entry").file_name();
                    name.to_string_lossy().parse().expect("number")
                })
                .collect();
            fds.sort_unstable();
            fds
        };
        // The child's dynamic loader holds a descriptor of its own for a moment after the exec
        // (the library cache, libc): wait for it to go, then only the three remain. Whatever
        // is seen, none is the parent's.
        let mut seen = fds();
        for _ in 0..200 {
            if seen == [0, 1, 2] {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = fds();
        }
        for fd in seen.iter().filter(|&&fd| fd > 2) {
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
            assert!(
                !target.starts_with(dir.path()),
                "fd {fd} inherited: {target:?}"
            );
        }
        assert_eq!(seen, [0, 1, 2]);
        let stdin = std::fs::metadata(format!("/proc/{pid}/fd/0")).expect("stdin");
        let null = std::fs::metadata("/dev/null").expect("null");
        assert_eq!(stdin.rdev(), null.rdev());
        let stdout = std::fs::metadata(format!("/proc/{pid}/fd/1")).expect("stdout");
        let log_meta = std::fs::metadata(&log).expect("log");
        assert_eq!(
            (stdout.dev(), stdout.ino()),
            (log_meta.dev(), log_meta.ino())
        );
        // SIGPIPE is back to its default (Rust ignores it in this process).
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
            .expect("SigIgn line");
        assert_eq!(ignored & (1 << (nix::libc::SIGPIPE - 1)), 0);
        assert!(child.try_exit().is_none());
        nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
        let exit = wait_gone(&mut child);
        assert_eq!(exit.status, "killed by SIGKILL");
        drop(leaked);
    }
}
