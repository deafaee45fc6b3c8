//! A WebJob server's side on disk, in a temporary directory: dropzone, operational, archive,
//! state, quarantine and log directories, a config, and a way to run `process_argus` on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bins::bin;

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
    pub fn write_recipe_cfg(&self, clients: &[&str], arch_zip: &str, oper_zip: &str, arch_day: u32) {
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
        let list = clients
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "drop_dir = {:?}\noper_dir = {:?}\narchive_dir = {:?}\nlog_dir = {:?}\nclients = [{list}]\n{extra}\n",
            self.drop_dir(),
            self.oper_dir(),
            self.archive_dir(),
            self.log_dir(),
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
        self.command().args(args).output().expect("run process_argus")
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
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
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
