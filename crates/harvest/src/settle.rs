//! When is a renamed chunk final? (SPEC §3 step 4; research/argus.md §2.)
//!
//! argus keeps writing through the descriptor it holds until it notices that its output path is
//! gone, which it checks at its first write of each new second; then it closes the renamed file
//! and creates the path again with a fresh MAR. So after the rename the chunk is final as soon as
//! - the output path exists again (argus closed the chunk first), or
//! - no process holds a descriptor on the chunk's inode any more, or
//! - (a quiet link, where argus' next write may be a minute away) two seconds have passed since
//!   the rename and the chunk has not changed for two seconds: argus can only write into it in
//!   the second of the rename, before the check of its next second re-opens the path.
//!
//! [`judge`] is the pure rule; [`wait_final`] observes the file system and `/proc` until it holds.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use argus_core::escape::EscapedPath;
use argus_proc::ProcessId;
use argus_proc::find::holders;

/// How long a chunk must stay unchanged, with no other sign, to count as final.
pub(crate) const QUIET: Duration = Duration::from_secs(2);

/// Longer than this and something other than argus writes the chunk: give up, keep it staged.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(90);

const POLL: Duration = Duration::from_millis(20);

/// What one look at the chunk showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    /// Time since the rename.
    pub(crate) since_rename: Duration,
    /// The output path exists again.
    pub(crate) recreated: bool,
    /// How many processes hold the chunk open, when that is known.
    pub(crate) holders: Option<usize>,
    /// Time since the chunk's size or mtime last changed (or since the rename).
    pub(crate) unchanged_for: Duration,
}

/// Why a chunk is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Final {
    /// argus created the output path again.
    Recreated,
    /// Nobody holds the chunk open.
    Released,
    /// Unchanged for [`QUIET`] since the rename (quiet link).
    Quiet,
}

impl std::fmt::Display for Final {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Final::Recreated => "argus re-created the output",
            Final::Released => "no process holds the chunk open",
            Final::Quiet => "the chunk stayed unchanged for 2 s (quiet link)",
        })
    }
}

/// The rule; see the [module docs](self).
pub(crate) fn judge(o: &Observation, quiet: Duration) -> Option<Final> {
    if o.recreated {
        Some(Final::Recreated)
    } else if o.holders == Some(0) {
        Some(Final::Released)
    } else if o.since_rename >= quiet && o.unchanged_for >= quiet {
        Some(Final::Quiet)
    } else {
        None
    }
}

/// The chunk did not become final in time.
#[derive(Debug)]
pub(crate) struct NotFinal(pub(crate) String);

/// Waits until the chunk at `chunk`, renamed from `output` `since_rename` ago, is final.
/// `argus_bin` names the argus executable: a process whose descriptors cannot be read counts as
/// a possible holder only when its command name is argus'.
pub(crate) fn wait_final(
    output: &Path,
    chunk: &Path,
    since_rename: Duration,
    argus_bin: &Path,
) -> Result<(Final, Duration), NotFinal> {
    let start = Instant::now();
    let meta = fs::metadata(chunk)
        .map_err(|e| NotFinal(format!("cannot stat {}: {e}", EscapedPath(chunk))))?;
    let (dev, ino) = (meta.dev(), meta.ino());
    // One full scan finds every holder; later looks only re-check those (a process cannot
    // newly open the chunk: its name is ours alone).
    let initial = holders(dev, ino, None);
    let comm = argus_comm(argus_bin);
    let (known, complete): (Vec<ProcessId>, bool) = match &initial {
        Ok(h) => (h.pids.clone(), h.unreadable.iter().all(|(_, c)| *c != comm)),
        Err(_) => (Vec::new(), false),
    };
    if !known.is_empty() {
        log::debug!(
            "chunk {} is held open by pid {}",
            EscapedPath(chunk),
            known
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut last = (meta.len(), meta.mtime(), meta.mtime_nsec());
    // The chunk's own mtime says how long it has been unchanged already (for a chunk left
    // staged by an earlier run, typically long).
    let age = meta
        .modified()
        .ok()
        .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO);
    let mut last_change = start.checked_sub(age).unwrap_or(start);
    loop {
        let now = Instant::now();
        let recreated = fs::symlink_metadata(output).is_ok();
        let holding = if complete {
            holders(dev, ino, Some(&known)).ok().map(|h| h.pids.len())
        } else {
            None
        };
        if let Ok(m) = fs::metadata(chunk) {
            let seen = (m.len(), m.mtime(), m.mtime_nsec());
            if seen != last {
                last = seen;
                last_change = now;
            }
        }
        let observation = Observation {
            since_rename: since_rename + (now - start),
            recreated,
            holders: holding,
            unchanged_for: now - last_change,
        };
        if let Some(why) = judge(&observation, QUIET) {
            return Ok((why, now - start));
        }
        if observation.since_rename > MAX_WAIT {
            return Err(NotFinal(format!(
                "{} is still being written {} s after it was cut; it stays staged for the next run",
                EscapedPath(chunk),
                observation.since_rename.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The command name the kernel gives a process running `bin`: its file name, cut to 15 bytes.
fn argus_comm(bin: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn obs(
        since: Duration,
        recreated: bool,
        holders: Option<usize>,
        unchanged: Duration,
    ) -> Observation {
        Observation {
            since_rename: since,
            recreated,
            holders,
            unchanged_for: unchanged,
        }
    }

    #[test]
    fn recreated_or_released_is_final_at_once() {
        assert_eq!(
            judge(&obs(Duration::ZERO, true, Some(1), Duration::ZERO), QUIET),
            Some(Final::Recreated)
        );
        assert_eq!(
            judge(&obs(Duration::ZERO, false, Some(0), Duration::ZERO), QUIET),
            Some(Final::Released)
        );
    }

    #[test]
    fn a_held_chunk_waits_for_two_quiet_seconds() {
        assert_eq!(judge(&obs(S, false, Some(1), S), QUIET), None);
        assert_eq!(
            judge(&obs(2 * S, false, Some(1), 2 * S), QUIET),
            Some(Final::Quiet)
        );
        // Written to 1 s ago: not yet, even 5 s after the rename.
        assert_eq!(judge(&obs(5 * S, false, Some(1), S), QUIET), None);
        // Unknown holders (no permission to look) fall back to the same timing rule.
        assert_eq!(judge(&obs(S, false, None, S), QUIET), None);
        assert_eq!(
            judge(&obs(3 * S, false, None, 3 * S), QUIET),
            Some(Final::Quiet)
        );
    }

    #[test]
    fn command_names() {
        assert_eq!(argus_comm(Path::new("/usr/sbin/argus")), "argus");
        assert_eq!(
            argus_comm(Path::new("/opt/argus-3.0.8.2-build7")),
            "argus-3.0.8.2-b"
        );
    }

    #[test]
    fn a_file_nobody_holds_is_final_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("chunk");
        fs::write(&chunk, b"data").expect("write");
        let (why, waited) = wait_final(
            &dir.path().join("out"),
            &chunk,
            Duration::ZERO,
            Path::new("/usr/sbin/argus"),
        )
        .expect("final");
        assert_eq!(why, Final::Released);
        assert!(waited < Duration::from_secs(5));
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
        let (why, waited) = wait_final(
            &dir.path().join("out"),
            &chunk,
            Duration::ZERO,
            Path::new("/usr/sbin/argus"),
        )
        .expect("final");
        let _ = tail.kill();
        let _ = tail.wait();
        assert_eq!(why, Final::Quiet);
        assert!(waited >= QUIET, "{waited:?}");
    }
}
