//! What the archive held at its last listing, so that a pass lists the archive (a `stat` of
//! every archived upload: the one cost of a pass that grows with history) only when a purge
//! may be due.
//!
//! After a purge the engine keeps the time the oldest remaining archive is judged by and the
//! bytes of them all (`STATE_DIR/archive-catalog`, JSON through serde_json); each commit adds
//! the bytes it archives before it archives them. A later pass lists the archive again only
//! when the oldest could have aged past `archive_days`, the bytes could be over
//! `archive_max_size`, the clients or job changed, or a day has passed since the listing (so
//! that files added or removed by hand are seen within a day). The catalog never deletes
//! anything by itself: every purge is planned from a fresh listing. It may only be wrong
//! towards listing too early (bytes counted that a crash did not archive); a catalog that is
//! missing or does not read means a listing.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use argus_core::retention::Sweep;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Config;

/// The file, under the state directory.
const FILE: &str = "archive-catalog";

/// A listing is trusted for at most this long.
pub const RELIST_AFTER: time::Duration = time::Duration::days(1);

/// How far a listing may lie after the `now` it is judged at: a pass takes its time once and
/// may list the archive a little later (before its ingest).
pub const CLOCK_SLACK: time::Duration = time::Duration::minutes(10);

/// The archive as of its last listing, and what was archived since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// When the archive was listed (Unix seconds).
    pub listed_at: i64,
    /// The clients the listing was judged under.
    pub clients: Vec<String>,
    /// And the job.
    pub job: String,
    /// The time the oldest of the archives is judged by (Unix seconds); none when there are
    /// none.
    pub oldest: Option<i64>,
    /// Bytes of the archives after the purge, plus what commits archived since.
    pub bytes: u64,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl Catalog {
    /// The catalog a purge leaves: what stays of the files its `sweep` judged.
    pub fn swept(config: &Config, sweep: &Sweep, now: OffsetDateTime) -> Catalog {
        Catalog {
            listed_at: now.unix_timestamp(),
            clients: config.clients.clone(),
            job: config.job.clone(),
            oldest: sweep.oldest_kept.map(OffsetDateTime::unix_timestamp),
            bytes: sweep.kept_bytes(),
        }
    }

    /// Counts archives about to be written: `bytes` in all, the oldest judged by `oldest`
    /// (its upload's time stamp, which its name carries).
    pub fn add(&mut self, bytes: u64, oldest: Option<OffsetDateTime>) {
        self.bytes = self.bytes.saturating_add(bytes);
        if let Some(t) = oldest.map(OffsetDateTime::unix_timestamp) {
            self.oldest = Some(self.oldest.map_or(t, |o| o.min(t)));
        }
    }

    /// Whether a purge may be due at `now` under `config`: the archive must be listed.
    pub fn due(&self, config: &Config, now: OffsetDateTime) -> bool {
        let now = now.unix_timestamp();
        let aged = config.archive_days > 0
            && self.oldest.is_some_and(|t| {
                now.saturating_sub(t) > i64::from(config.archive_days).saturating_mul(86_400)
            });
        let full = config.archive_max_size.is_some_and(|cap| self.bytes > cap);
        // A listing "from the future" by more than the slack means the clock was set back.
        let stale = self.listed_at.saturating_sub(now) > CLOCK_SLACK.whole_seconds()
            || now.saturating_sub(self.listed_at) >= RELIST_AFTER.whole_seconds();
        aged || full || stale || self.clients != config.clients || self.job != config.job
    }

    /// The catalog kept in `state_dir`, or none (never kept, or unreadable: list the archive).
    pub fn load(state_dir: &Path) -> Option<Catalog> {
        let text = fs::read(path(state_dir)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Keeps the catalog in `state_dir`: a temporary file renamed over the last one, not
    /// synced (a catalog lost or torn by a power loss only means a listing).
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix(argus_core::publish::TEMP_PREFIX)
            .tempfile_in(state_dir)?;
        let mut text = serde_json::to_vec(self)?;
        text.push(b'\n');
        temp.write_all(&text)?;
        temp.persist(path(state_dir)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Forgets the catalog: the next purge lists the archive.
    pub fn forget(state_dir: &Path) -> io::Result<()> {
        match fs::remove_file(path(state_dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
