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
//! [`judge`] is the pure rule; [`wait_final`] observes the file system until it holds. Who holds
//! the chunk open is asked of a [`HolderProbe`]: `argus-proc` reads it from `/proc`; without
//! one ([`Unknown`]) only the re-created path and the quiet rule count.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::NotFinal;

/// How long a chunk must stay unchanged, with no other sign, to count as final.
pub const QUIET: Duration = Duration::from_secs(2);

/// Longer than this and something other than argus writes the chunk: give up, keep it staged.
pub const MAX_WAIT: Duration = Duration::from_secs(90);

const POLL: Duration = Duration::from_millis(20);

/// What one look at the chunk showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Time since the rename.
    pub since_rename: Duration,
    /// The output path exists again.
    pub recreated: bool,
    /// How many processes hold the chunk open, when that is known.
    pub holders: Option<usize>,
    /// Time since the chunk's size or mtime last changed (or since the rename).
    pub unchanged_for: Duration,
}

/// Why a chunk is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
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

/// A chunk that became final: why, and how long [`wait_final`] waited for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    /// Which sign showed it.
    pub why: Final,
    /// How long the wait took.
    pub waited: Duration,
}

/// The rule: a chunk is final when the output path exists again (argus closed the chunk
/// first), else when nobody holds it open, else when both the time since the rename and the
/// time it stayed unchanged reach `quiet` ([`QUIET`]): argus writes into a renamed chunk only
/// in the second of the rename.
pub fn judge(o: &Observation, quiet: Duration) -> Option<Final> {
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

/// Tells who holds a file open. [`wait_final`] calls [`watch`](HolderProbe::watch) once with the
/// chunk's device and inode, then [`count`](HolderProbe::count) at every look.
pub trait HolderProbe {
    /// Starts watching the file `(dev, ino)`.
    fn watch(&mut self, dev: u64, ino: u64);
    /// How many processes hold the file open now; `None` when that cannot be known.
    fn count(&mut self) -> Option<usize>;
}

/// A probe that never knows: only the re-created path and the quiet rule decide.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unknown;

impl HolderProbe for Unknown {
    fn watch(&mut self, _dev: u64, _ino: u64) {}

    fn count(&mut self) -> Option<usize> {
        None
    }
}

/// Waits until the chunk at `chunk`, renamed from `output` `since_rename` ago, is final, asking
/// `holders` who holds it open. Gives up after [`MAX_WAIT`] since the rename.
pub fn wait_final(
    output: &Path,
    chunk: &Path,
    since_rename: Duration,
    holders: &mut dyn HolderProbe,
) -> Result<Settled, NotFinal> {
    let start = Instant::now();
    let meta = fs::metadata(chunk).map_err(|source| NotFinal::Stat {
        path: chunk.to_path_buf(),
        source,
    })?;
    holders.watch(meta.dev(), meta.ino());
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
        let holding = holders.count();
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
            return Ok(Settled {
                why,
                waited: now - start,
            });
        }
        if observation.since_rename > MAX_WAIT {
            return Err(NotFinal::StillWritten {
                path: chunk.to_path_buf(),
                since_rename: observation.since_rename,
            });
        }
        std::thread::sleep(POLL);
    }
}
