//! A WebJob server's side on disk, in a temporary directory: dropzone, operational, archive,
//! state, quarantine and log directories, a config, and a way to run `process_argus` on it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bins::bin;

/// A process_argus TOML config: `drop_dir`, `oper_dir`, `archive_dir` and `log_dir` (in that
/// order), the clients, and `extra` lines. Day files go by upload day (the tests' sample data
/// is years old), unless `extra` sets `day_boundary`.
pub fn process_toml(dirs: [&Path; 4], clients: &[&str], extra: &str) -> String {
    let list = clients
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let [drop, oper, archive, log] = dirs;
    let boundary = if extra.contains("day_boundary") {
        ""
    } else {
        "day_boundary = \"upload\"\n"
    };
    format!(
        "drop_dir = {drop:?}\noper_dir = {oper:?}\narchive_dir = {archive:?}\nlog_dir = {log:?}\nclients = [{list}]\n{boundary}{extra}\n"
    )
}

/// True once process `pid` has an inotify instance with at least one watch (read from
/// `/proc/PID/fdinfo`), i.e. its watcher is set up.
pub fn inotify_watching(pid: u32) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify")
            && fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .is_ok_and(|info| info.contains("inotify wd:"))
    })
}

/// A temporary server tree.
#[derive(Debug)]
pub struct Server {
    /// Owns the tree.
    pub root: tempfile::TempDir,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A new tree with an empty dropzone. The root's path holds an `_`, as some real ones do.
    pub fn new() -> Server {
        let root = tempfile::Builder::new()
            .prefix("web_job-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir_all(root.path().join("integrity/incoming")).expect("dropzone");
        fs::create_dir_all(root.path().join("etc")).expect("etc");
        Server { root }
    }

    /// `ROOT/integrity/incoming`.
    pub fn drop_dir(&self) -> PathBuf {
        self.root.path().join("integrity/incoming")
    }

    /// `ROOT/oper`.
    pub fn oper_dir(&self) -> PathBuf {
        self.root.path().join("oper")
    }

    /// `ROOT/archive`.
    pub fn archive_dir(&self) -> PathBuf {
        self.root.path().join("archive")
    }

    /// `ROOT/integrity/quarantine` (the default next to the dropzone).
    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.path().join("integrity/quarantine")
    }

    /// `ROOT/integrity/process_argus` (the default state directory).
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("integrity/process_argus")
    }

    /// `ROOT/log`.
    pub fn log_dir(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// Writes the recipe-style `ROOT/etc/process_argus.cfg` (found through `WEBJOB_HOME`).
    pub fn write_recipe_cfg(
        &self,
        clients: &[&str],
        arch_zip: &str,
        oper_zip: &str,
        arch_day: u32,
    ) {
        let text = format!(
            "arch_day=\"{arch_day}\"\narch_dir=\"{}\"\narch_zip=\"{arch_zip}\"\nclnt_lst=\"{}\"\nlog_dir=\"{}\"\ndrop_dir=\"{}\"\noper_dir=\"{}\"\noper_zip=\"{oper_zip}\"\n",
            self.archive_dir().display(),
            clients.join(" "),
            self.log_dir().display(),
            self.drop_dir().display(),
            self.oper_dir().display(),
        );
        fs::write(self.root.path().join("etc/process_argus.cfg"), text).expect("write cfg");
    }

    /// Writes `ROOT/etc/process_argus.toml` with the directories filled in, plus `extra` lines.
    pub fn write_toml(&self, clients: &[&str], extra: &str) -> PathBuf {
        let text = process_toml(
            [
                &self.drop_dir(),
                &self.oper_dir(),
                &self.archive_dir(),
                &self.log_dir(),
            ],
            clients,
            extra,
        );
        let path = self.root.path().join("etc/process_argus.toml");
        fs::write(&path, text).expect("write toml");
        path
    }

    /// A `process_argus` command with `WEBJOB_HOME` set to the root and a clean environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin("process_argus"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WEBJOB_HOME", self.root.path())
            .current_dir(self.root.path());
        cmd
    }

    /// Runs `process_argus ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("run process_argus")
    }

    /// Runs `process_argus ARGS`, killing it and failing the test if it has not ended within
    /// `deadline` (a generous bound that only catches hangs, never a performance check).
    pub fn run_within(&self, args: &[&str], deadline: Duration) -> Output {
        wait_within(spawn_piped(self.command().args(args)), deadline)
    }

    /// Every file below `dir`, relative, sorted (empty when `dir` is missing).
    pub fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
}

/// Starts `cmd` with no input and its output captured (for [`wait_within`]).
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Waits for `child` (spawned with piped stdout and stderr) and returns its output; if it has not
/// ended within `deadline`, kills it and fails the test with what it printed so far.
pub fn wait_within(mut child: Child, deadline: Duration) -> Output {
    // Drain the pipes on threads, so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ignored = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ignored = child.kill();
            let _ignored = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "process {} still running after {deadline:?} (a hang?); killed it. stderr:\n{}",
                child.id(),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Exit status of an output, as a number (`-1` when killed by a signal).
pub fn status(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// stderr of an output, lossily.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `cond` every 10 ms until it holds or `deadline` passes; returns whether it held. For
/// generous deadlines that only catch a hang, never to measure speed.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `process_argus watch` daemon running on a server tree, its stderr kept in a file. Killed
/// (SIGKILL) and reaped when dropped, if it still runs.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Server {
    /// Starts `process_argus watch` on this tree with extra environment variables (a failpoint,
    /// say). Its stderr goes to a file of its own in the root ([`Daemon::log`]).
    pub fn spawn_watch(&self, env: &[(&str, &str)]) -> Daemon {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = self.root.path().join(format!("watch.{n}.stderr"));
        let file = fs::File::create(&stderr).expect("daemon stderr file");
        let mut cmd = self.command();
        cmd.arg("watch")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn process_argus watch");
        Daemon { child, stderr }
    }
}

impl Daemon {
    /// The daemon's pid.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"))
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).expect("signal the daemon");
    }

    /// What the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// True while the daemon runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// True once the daemon has an inotify instance with at least one watch (read from
    /// `/proc/PID/fdinfo`), i.e. its watcher is set up.
    pub fn watching(&self) -> bool {
        inotify_watching(self.child.id())
    }

    /// Waits for the daemon to end; kills it and fails the test (with its log) if it has not
    /// ended within `deadline`.
    pub fn wait_within(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the daemon") {
                return status;
            }
            if start.elapsed() > deadline {
                let _ignored = self.child.kill();
                let _ignored = self.child.wait();
                panic!(
                    "the daemon still ran {deadline:?} after it was asked to end; killed it. stderr:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ignored = self.child.kill();
            let _ignored = self.child.wait();
        }
    }
}
