//! The pid file: `PID\n`, like argus' own, written atomically.
//!
//! A pid file is only a hint: the process it names may be gone and its pid reused. So a recorded
//! pid counts only when that process still runs and started no later than the file was written
//! (the start-time check); anything else is stale.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{IoContext, Result};
use crate::process::ProcessId;

/// What a pid file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidFile {
    /// The recorded pid.
    pub pid: i32,
    /// When the file was written (its mtime).
    pub written: SystemTime,
}

/// Writes `pid` to `path` atomically (temporary file, fsync, rename over the old file, fsync of
/// the directory). The directory must exist.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let temp = temp_name(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .at("create", &temp)?;
        writeln!(file, "{pid}").at("write", &temp)?;
        file.sync_all().at("fsync", &temp)?;
        fs::rename(&temp, path).at("rename", &temp)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .at("fsync directory", dir)
    })();
    if result.is_err() {
        let _ignored = fs::remove_file(&temp);
    }
    result
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Reads a pid file: `None` when it does not exist; an error when it cannot be read or does not
/// hold a positive pid on its first line.
pub fn read_pid_file(path: &Path) -> Result<Option<PidFile>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at("read", path),
    };
    let written = fs::metadata(path)
        .and_then(|m| m.modified())
        .at("stat", path)?;
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no pid on the first line"))
        .at("parse pid file", path)?;
    Ok(Some(PidFile { pid, written }))
}

/// The process a pid file names, if it still runs and passes the start-time check. The file's
/// clock tick and second granularity are allowed for.
pub fn recorded_process(path: &Path) -> Result<Option<ProcessId>> {
    let Some(file) = read_pid_file(path)? else {
        return Ok(None);
    };
    let Some(id) = ProcessId::of(file.pid) else {
        return Ok(None);
    };
    Ok(started_before(id, file.written).then_some(id))
}

fn started_before(id: ProcessId, written: SystemTime) -> bool {
    id.started_at()
        .is_some_and(|started| started <= written + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_start_time_check() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("argus.pid");
        assert_eq!(read_pid_file(&path).expect("missing is fine"), None);
        let me = i32::try_from(std::process::id()).expect("pid fits");
        write_pid_file(&path, me).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), format!("{me}\n"));
        assert_eq!(read_pid_file(&path).expect("read").map(|f| f.pid), Some(me));
        let id = recorded_process(&path).expect("read").expect("alive");
        assert_eq!(id.pid, me);
        // A file written before this process started names an earlier process with the same
        // pid: not this one.
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!started_before(id, long_ago));
        // Rewriting replaces atomically and leaves no temporary file.
        write_pid_file(&path, 1).expect("rewrite");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("argus.pid");
        for bad in ["", "abc\n", "-4\n", "0\n"] {
            fs::write(&path, bad).expect("write");
            assert!(read_pid_file(&path).is_err(), "{bad:?}");
        }
    }
}
