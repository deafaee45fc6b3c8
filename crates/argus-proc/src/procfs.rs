//! Reading `/proc`: process status, start time, executable, command line and open files.
//!
//! Only what supervision needs, parsed strictly. A process can vanish between any two reads, so
//! every reader returns `io::Result` and callers treat `NotFound` (and `ESRCH`) as "gone".

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PROC: &str = "/proc";

/// The fields of `/proc/PID/stat` that supervision uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Process id (field 1).
    pub pid: i32,
    /// Command name, at most 15 bytes, possibly holding spaces and parentheses (field 2).
    pub comm: String,
    /// State letter: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ... (field 3).
    pub state: char,
    /// Parent pid (field 4).
    pub ppid: i32,
    /// Process group (field 5).
    pub pgrp: i32,
    /// Session id (field 6).
    pub session: i32,
    /// Start time in clock ticks since boot (field 22): with the pid, it identifies a process
    /// instance, since a pid is reused only by a later process.
    pub start_ticks: u64,
}

impl Stat {
    /// True for a zombie or dead process: it runs no more code.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/PID/stat`. The command name may hold anything, including `) `, so
/// the fields after it are found from the *last* `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&text[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    // Fields 3.. follow the command name; field N is at index N - 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn proc_path(pid: i32, what: &str) -> PathBuf {
    Path::new(PROC).join(pid.to_string()).join(what)
}

/// Reads and parses `/proc/PID/stat`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    let text = fs::read(proc_path(pid, "stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse /proc/{pid}/stat"),
        )
    })
}

/// Every pid in `/proc`, unordered.
pub fn pids() -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir(PROC)? {
        let entry = entry?;
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The executable of a process (`/proc/PID/exe`), without the ` (deleted)` the kernel appends
/// when the file was replaced or removed since (an upgraded argus is still argus).
pub fn exe(pid: i32) -> io::Result<PathBuf> {
    let target = fs::read_link(proc_path(pid, "exe"))?;
    Ok(strip_deleted(target))
}

fn strip_deleted(path: PathBuf) -> PathBuf {
    const DELETED: &[u8] = b" (deleted)";
    let bytes = path.as_os_str().as_bytes();
    match bytes.strip_suffix(DELETED) {
        Some(stem) => PathBuf::from(OsString::from_vec(stem.to_vec())),
        None => path,
    }
}

/// The command line of a process, one entry per argument.
pub fn cmdline(pid: i32) -> io::Result<Vec<OsString>> {
    let raw = fs::read(proc_path(pid, "cmdline"))?;
    Ok(split_cmdline(&raw))
}

/// Splits the NUL-separated `/proc/PID/cmdline` text into arguments.
pub fn split_cmdline(raw: &[u8]) -> Vec<OsString> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

/// The working directory of a process (to resolve a relative `-w` argument).
pub fn cwd(pid: i32) -> io::Result<PathBuf> {
    fs::read_link(proc_path(pid, "cwd"))
}

/// A file a process holds open, identified by device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    /// The descriptor number.
    pub fd: i32,
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
}

/// The files a process holds open. Descriptors closed while they are listed are skipped.
pub fn open_files(pid: i32) -> io::Result<Vec<OpenFile>> {
    let dir = proc_path(pid, "fd");
    let mut files = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // `metadata` follows the magic link to the open file itself, even when its name is gone.
        match fs::metadata(entry.path()) {
            Ok(meta) => files.push(OpenFile {
                fd,
                dev: meta.dev(),
                ino: meta.ino(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(files)
}

/// The system's boot time (`btime` in `/proc/stat`).
pub fn boot_time() -> io::Result<SystemTime> {
    let text = fs::read_to_string(Path::new(PROC).join("stat"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no btime in /proc/stat"))
}

/// Clock ticks per second of the `/proc` start times: the kernel reports them in `USER_HZ`,
/// which is 100 on every architecture Linux sensors run on (it is part of the `/proc` ABI, not
/// the kernel's internal tick rate).
pub fn ticks_per_second() -> u64 {
    100
}

/// True when an error means the process (or the file asked about) no longer exists.
pub fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(nix::libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_command_names() {
        let line = b"4242 (ar) gus) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, "ar) gus) (x");
        assert_eq!(stat.state, 'S');
        assert_eq!((stat.ppid, stat.pgrp, stat.session), (1, 4242, 4242));
        assert_eq!(stat.start_ticks, 987654);
        assert!(!stat.is_dead());
    }

    #[test]
    fn refuses_garbage_stat() {
        for bad in [
            &b""[..],
            b"12 (x",
            b"x (y) S 1 2 3",
            b"12 (x) S 1 2 3 4",
            b"12 (x) S a b c",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn splits_cmdline() {
        assert_eq!(
            split_cmdline(b"/usr/sbin/argus\0-w\0/tmp/a b\0"),
            ["/usr/sbin/argus", "-w", "/tmp/a b"].map(OsString::from)
        );
        assert!(split_cmdline(b"").is_empty());
        assert_eq!(split_cmdline(b"x"), [OsString::from("x")]);
    }

    #[test]
    fn strips_deleted_suffix() {
        assert_eq!(
            strip_deleted(PathBuf::from("/usr/sbin/argus (deleted)")),
            PathBuf::from("/usr/sbin/argus")
        );
        assert_eq!(
            strip_deleted(PathBuf::from("/usr/sbin/argus")),
            PathBuf::from("/usr/sbin/argus")
        );
    }

    #[test]
    fn reads_this_process() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let stat = stat(me).expect("own stat");
        assert_eq!(stat.pid, me);
        assert!(stat.start_ticks > 0);
        assert!(!cmdline(me).expect("own cmdline").is_empty());
        assert!(exe(me).expect("own exe").is_absolute());
        assert!(pids().expect("pids").contains(&me));
        assert!(boot_time().expect("btime") < SystemTime::now());
        let file = tempfile::tempfile().expect("temp file");
        let meta = file.metadata().expect("meta");
        let open = open_files(me).expect("own fds");
        assert!(
            open.iter()
                .any(|f| f.dev == meta.dev() && f.ino == meta.ino())
        );
    }
}
