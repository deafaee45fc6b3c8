//! Finding the argus that writes a given output file, and the processes that hold a file open.
//!
//! argus 3 writes no pid file unless told to (and then names it after the interface), so the
//! truth is in `/proc`: a live process whose executable is the configured argus binary and that
//! holds the output file open, or was started with `-w OUTPUT`. The second test matters right
//! after a rotation, when argus still holds the renamed file and the output path does not exist.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::process::ProcessId;
use crate::procfs;

/// The argus to look for: its binary and its output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    bin: PathBuf,
    output: PathBuf,
}

impl Target {
    /// A target for `bin` writing `output`. Both are resolved as far as they exist (symlinks,
    /// `..`), since `/proc` shows resolved paths.
    pub fn new(bin: &Path, output: &Path) -> Target {
        Target {
            bin: fs::canonicalize(bin).unwrap_or_else(|_| normalize(bin)),
            output: resolve(output),
        }
    }

    /// The binary, resolved.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The output file, resolved.
    pub fn output(&self) -> &Path {
        &self.output
    }
}

/// An argus process found for a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgusProcess {
    /// The process.
    pub id: ProcessId,
    /// Its executable.
    pub exe: PathBuf,
    /// It holds the output file open now.
    pub holds_output: bool,
    /// Its command line names the output file with `-w`.
    pub names_output: bool,
}

/// Finds every live process running `target`'s binary that holds its output open or names it
/// with `-w`. Processes that vanish or cannot be inspected meanwhile are skipped.
pub fn find_argus(target: &Target) -> Result<Vec<ArgusProcess>> {
    scan(target, true)
}

/// Like [`find_argus`], whatever the executable: every process that holds `target`'s output
/// open or names it with `-w` (another argus binary than the configured one, say), except this
/// process.
pub fn find_output_users(target: &Target) -> Result<Vec<ArgusProcess>> {
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    Ok(scan(target, false)?
        .into_iter()
        .filter(|p| p.id.pid != me)
        .collect())
}

fn scan(target: &Target, same_binary: bool) -> Result<Vec<ArgusProcess>> {
    let output_id = fs::metadata(&target.output)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let mut found = Vec::new();
    for pid in procfs::pids().at("read", Path::new("/proc"))? {
        let Ok(exe) = procfs::exe(pid) else { continue };
        if same_binary && exe != target.bin {
            continue;
        }
        let Some(id) = ProcessId::of(pid) else {
            continue;
        };
        let holds_output = output_id.is_some_and(|(dev, ino)| {
            procfs::open_files(pid)
                .map(|files| files.iter().any(|f| f.dev == dev && f.ino == ino))
                .unwrap_or(false)
        });
        let names_output = procfs::cmdline(pid).is_ok_and(|args| {
            let cwd = procfs::cwd(pid).ok();
            output_args(&args).into_iter().any(|w| {
                let w = Path::new(w);
                let abs = match (&cwd, w.is_absolute()) {
                    (_, true) => w.to_path_buf(),
                    (Some(cwd), false) => cwd.join(w),
                    (None, false) => return false,
                };
                resolve(&abs) == target.output
            })
        });
        if holds_output || names_output {
            found.push(ArgusProcess {
                id,
                exe,
                holds_output,
                names_output,
            });
        }
    }
    found.sort_by_key(|p| p.id.pid);
    Ok(found)
}

/// The values of every `-w` option in an argus command line (`-w FILE` or `-wFILE`); the first
/// element is the program and is skipped.
pub fn output_args(args: &[impl AsRef<OsStr>]) -> Vec<&OsStr> {
    let mut found = Vec::new();
    let mut iter = args.iter().skip(1).map(AsRef::as_ref);
    while let Some(arg) = iter.next() {
        let bytes = arg.as_bytes();
        if bytes == b"-w" {
            if let Some(value) = iter.next() {
                found.push(value);
            }
        } else if let Some(value) = bytes.strip_prefix(b"-w") {
            found.push(OsStr::from_bytes(value));
        }
    }
    found
}

/// The processes holding a file open, identified by device and inode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holders {
    /// Processes with at least one descriptor on the file.
    pub pids: Vec<ProcessId>,
    /// Processes whose descriptors could not be read (permissions, another user namespace),
    /// with their command names (`/proc/PID/stat` stays readable): any of them might hold the
    /// file too.
    pub unreadable: Vec<(ProcessId, String)>,
}

/// Finds the processes that hold the file `(dev, ino)` open: among `among` when given (a cheap
/// re-check of known holders), else among all processes.
pub fn holders(dev: u64, ino: u64, among: Option<&[ProcessId]>) -> Result<Holders> {
    let candidates: Vec<i32> = match among {
        Some(ids) => ids.iter().map(|id| id.pid).collect(),
        None => procfs::pids().at("read", Path::new("/proc"))?,
    };
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    let mut found = Holders::default();
    for pid in candidates {
        if pid == me {
            continue;
        }
        match procfs::open_files(pid) {
            Ok(files) => {
                if files.iter().any(|f| f.dev == dev && f.ino == ino) {
                    // A known holder counts only while it is the same process.
                    let Some(id) = ProcessId::of(pid) else {
                        continue;
                    };
                    if among.is_some_and(|ids| !ids.contains(&id)) {
                        continue;
                    }
                    found.pids.push(id);
                }
            }
            Err(e) if procfs::is_gone(&e) => {}
            Err(_) => {
                if let Ok(stat) = procfs::stat(pid)
                    && !stat.is_dead()
                {
                    let id = ProcessId {
                        pid,
                        start_ticks: stat.start_ticks,
                    };
                    found.unreadable.push((id, stat.comm));
                }
            }
        }
    }
    Ok(found)
}

/// Who holds a renamed chunk open, for [`argus_core::rotation::wait_final`]: one full scan of
/// `/proc` when the watch starts, then only a re-check of the processes it found (a process
/// cannot newly open the chunk: its name is the caller's alone).
///
/// A process whose descriptors cannot be read counts as a possible holder only when its
/// command name is that of the argus binary; then the count is unknown (`None`) and only the
/// re-created path and the quiet rule decide.
#[derive(Clone, Debug)]
pub struct HolderWatch {
    argus_comm: String,
    file: Option<(u64, u64)>,
    known: Vec<ProcessId>,
    complete: bool,
}

impl HolderWatch {
    /// A watch for chunks written by the argus binary `argus_bin`.
    pub fn new(argus_bin: &Path) -> HolderWatch {
        HolderWatch {
            argus_comm: comm_of(argus_bin),
            file: None,
            known: Vec::new(),
            complete: false,
        }
    }
}

impl argus_core::rotation::HolderProbe for HolderWatch {
    fn watch(&mut self, dev: u64, ino: u64) {
        self.file = Some((dev, ino));
        (self.known, self.complete) = match holders(dev, ino, None) {
            Ok(h) => (
                h.pids,
                h.unreadable.iter().all(|(_, c)| *c != self.argus_comm),
            ),
            Err(_) => (Vec::new(), false),
        };
        if !self.known.is_empty() {
            log::debug!(
                "the chunk (inode {ino}) is held open by pid {}",
                self.known
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    fn count(&mut self) -> Option<usize> {
        let (dev, ino) = self.file?;
        if !self.complete {
            return None;
        }
        holders(dev, ino, Some(&self.known))
            .ok()
            .map(|h| h.pids.len())
    }
}

/// The command name the kernel gives a process running `bin`: its file name, cut to 15 bytes.
fn comm_of(bin: &Path) -> String {
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= 15).then_some(c)
        })
        .collect()
}

/// Makes a path absolute (against the current directory) and resolves symlinks in its parent
/// directory when that exists, keeping the file name as it is (the file may not exist).
fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let abs = normalize(&abs);
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(abs),
        _ => abs,
    }
}

/// Removes `.` and resolves `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_every_output_argument() {
        let a = args(&["argus", "-i", "lo", "-w", "/a/out", "-S", "5", "-w/b/out"]);
        assert_eq!(
            output_args(&a),
            [OsStr::new("/a/out"), OsStr::new("/b/out")]
        );
        assert!(output_args(&args(&["argus", "-i", "lo"])).is_empty());
        assert!(output_args(&args(&["argus", "-w"])).is_empty());
        // The program name itself is never an option.
        assert!(output_args(&args(&["-wx"])).is_empty());
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(
            resolve(Path::new("/nonexistent-dir/x/../out")),
            PathBuf::from("/nonexistent-dir/out")
        );
    }

    #[test]
    fn command_names() {
        assert_eq!(comm_of(Path::new("/usr/sbin/argus")), "argus");
        assert_eq!(
            comm_of(Path::new("/opt/argus-3.0.8.2-build7")),
            "argus-3.0.8.2-b"
        );
    }

    use argus_core::rotation::{Final, QUIET, wait_final};
    use std::time::Duration;

    #[test]
    fn a_file_nobody_holds_is_final_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("chunk");
        fs::write(&chunk, b"data").expect("write");
        let settled = wait_final(
            &dir.path().join("out"),
            &chunk,
            Duration::ZERO,
            &mut HolderWatch::new(Path::new("/usr/sbin/argus")),
        )
        .expect("final");
        assert_eq!(settled.why, Final::Released);
        assert!(settled.waited < Duration::from_secs(5));
    }

    #[test]
    fn a_held_quiet_file_is_final_after_two_seconds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("chunk");
        fs::write(&chunk, b"data").expect("write");
        // `tail -f` holds the file open like argus would, and writes nothing to it.
        let mut tail = std::process::Command::new("tail")
            .args(["-f", "-n", "0"])
            .arg(&chunk)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn tail");
        std::thread::sleep(Duration::from_millis(200));
        let settled = wait_final(
            &dir.path().join("out"),
            &chunk,
            Duration::ZERO,
            &mut HolderWatch::new(Path::new("/usr/sbin/argus")),
        );
        let _ = tail.kill();
        let _ = tail.wait();
        let settled = settled.expect("final");
        assert_eq!(settled.why, Final::Quiet);
        assert!(settled.waited >= QUIET, "{:?}", settled.waited);
    }
}
