//! The day files of the day-file directory that wait for their day to close, as of its last
//! listing, so that a pass lists that directory (every day file of every host ever kept: the
//! one name list of a pass that grows with history) only when it cannot trust what the passes
//! before it left.
//!
//! A day file waits for one of two things ([`Closing`]): its compression, or, when day files
//! stay plain and a `day_closed` hook is configured, its `day_closed` event. Without either,
//! nothing waits and no catalog is kept. The engine keeps the names of the day files that wait
//! (`STATE_DIR/day-catalog`, JSON through serde_json): those of the last listing, plus every
//! day file a commit created (or, for compression, appended to) since, less the days closed.
//! Closed days are found in it, and it is all they are found in: a day file closed before is
//! never read for that. A start lists the directory instead
//! when the last engine did not end cleanly (a crash may have created a day file the catalog
//! does not name, or left a compression half done for the listing to settle), when the catalog
//! is missing, unreadable or of another directory, and when a day has passed since the listing
//! (so that day files added by hand are seen within a day). The catalog only decides when a day
//! file is compressed, never whether data is kept: a day file it does not name stays as it is
//! until the next listing.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::catalog::{CLOCK_SLACK, RELIST_AFTER};

/// The file, under the state directory.
const FILE: &str = "day-catalog";

/// What a closed day is waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Closing {
    /// Its compression: every plain day file waits.
    Compress,
    /// Its `day_closed` event (day files stay plain): the day files not yet announced wait.
    Announce,
}

/// The day files that wait, and when the directory was last listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DayCatalog {
    /// What they wait for; a catalog kept for the other is not trusted.
    pub(crate) closing: Closing,
    /// When the directory was listed (Unix seconds).
    pub(crate) listed_at: i64,
    /// The directory listed.
    pub(crate) oper_dir: PathBuf,
    /// The names of its plain day files that wait, and of those written since.
    pub(crate) plain: BTreeSet<String>,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl DayCatalog {
    /// Whether the listing is still to be trusted at `now`: for `closing`, of `oper_dir`,
    /// less than a day old, and not from a clock ahead of this one.
    pub(crate) fn fresh(&self, closing: Closing, oper_dir: &Path, now: OffsetDateTime) -> bool {
        let now = now.unix_timestamp();
        self.closing == closing
            && self.oper_dir == oper_dir
            && self.listed_at <= now + CLOCK_SLACK.whole_seconds()
            && now - self.listed_at < RELIST_AFTER.whole_seconds()
    }

    /// The catalog kept in `state_dir`, when it is fresh for `closing` and `oper_dir` at
    /// `now`; none means a listing.
    pub(crate) fn load(
        state_dir: &Path,
        closing: Closing,
        oper_dir: &Path,
        now: OffsetDateTime,
    ) -> Option<Self> {
        let text = fs::read(path(state_dir)).ok()?;
        let catalog: DayCatalog = serde_json::from_slice(&text).ok()?;
        catalog.fresh(closing, oper_dir, now).then_some(catalog)
    }

    /// Keeps the catalog in `state_dir`; whether it was (one that cannot be saved is removed,
    /// with a warning: the next start lists the day files).
    pub(crate) fn keep(&self, state_dir: &Path) -> bool {
        match self.save(state_dir) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("cannot keep the day files' catalog (the next start lists them): {e}");
                discard(state_dir);
                false
            }
        }
    }

    /// The catalog in `state_dir`: a temporary file, synced, renamed over the last one.
    fn save(&self, state_dir: &Path) -> io::Result<()> {
        let mut temp = tempfile::Builder::new()
            .prefix(argus_core::publish::TEMP_PREFIX)
            .tempfile_in(state_dir)?;
        // Whole, so that a failed write is an error here (a BufWriter's last flush would be
        // dropped with its error).
        let mut text = serde_json::to_vec(self)?;
        text.push(b'\n');
        temp.write_all(&text)?;
        temp.as_file().sync_data()?;
        temp.persist(path(state_dir)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Forgets the catalog: the next start lists the directory.
    fn forget(state_dir: &Path) -> io::Result<()> {
        match fs::remove_file(path(state_dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Removes the catalog kept in `state_dir`, if any (it no longer names every plain day file);
/// a failure is a warning.
pub(crate) fn discard(state_dir: &Path) {
    if let Err(e) = DayCatalog::forget(state_dir) {
        log::warn!("cannot remove the day files' catalog: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).expect("a time")
    }

    #[test]
    fn a_catalog_is_trusted_for_a_day_of_its_own_directory() {
        let state = tempfile::tempdir().expect("tempdir");
        let oper = Path::new("/srv/operational");
        let listed = 1_800_000_000;
        let catalog = DayCatalog {
            closing: Closing::Compress,
            listed_at: listed,
            oper_dir: oper.to_path_buf(),
            plain: ["h_20270115".to_owned()].into(),
        };
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Compress, oper, at(listed)),
            None
        );
        catalog.save(state.path()).expect("save");
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Compress, oper, at(listed + 3600)),
            Some(catalog.clone())
        );
        let day = RELIST_AFTER.whole_seconds();
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Compress, oper, at(listed + day)),
            None
        );
        assert_eq!(
            DayCatalog::load(
                state.path(),
                Closing::Compress,
                Path::new("/srv/other"),
                at(listed)
            ),
            None
        );
        // Kept while day files were compressed: not what waits for an announcement.
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Announce, oper, at(listed)),
            None
        );
        // Listed by a clock ahead of this one: not to be trusted for a day from now.
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Compress, oper, at(listed - day)),
            None
        );
        fs::write(path(state.path()), b"{\"listed_at\":").expect("tear it");
        assert_eq!(
            DayCatalog::load(state.path(), Closing::Compress, oper, at(listed)),
            None
        );
        DayCatalog::forget(state.path()).expect("forget");
        assert!(!path(state.path()).exists());
        DayCatalog::forget(state.path()).expect("forget again");
    }
}
