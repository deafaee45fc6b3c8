//! The dropzone as process_argus sees it: webjob-drop's scan, reduced to what a pass needs.

use std::fs::File;
use std::path::{Path, PathBuf};

use argus_core::host::Hostname;
use argus_core::manifest::Manifest;
use time::{Date, OffsetDateTime};
use webjob_drop::{Dropzone, Group, OpenedPart, Selection};

use crate::config::Config;

/// A complete upload group of a configured client.
#[derive(Debug)]
pub struct Upload {
    group: Group,
}

impl Upload {
    /// The stem (`CLIENT_YYYYMMDDHHMMSS[_...]_JOB`).
    pub fn stem(&self) -> &str {
        self.group.stem()
    }

    /// The stem, printable.
    pub fn display_name(&self) -> String {
        self.group.files().to_string()
    }

    /// The directory holding the group.
    pub fn dir(&self) -> &Path {
        self.group.files().dir()
    }

    /// Size of `.out` as scanned.
    pub fn out_len(&self) -> u64 {
        self.group.out_len()
    }

    /// Path of `.rdy`.
    pub fn rdy_path(&self) -> &Path {
        self.group.rdy().path()
    }

    /// Path of `.out`.
    pub fn out_path(&self) -> &Path {
        self.group.out().path()
    }

    /// The (UTC) day of the upload, from its name: the day file it belongs to.
    pub fn day(&self) -> Date {
        self.group.uploaded_at().date()
    }

    /// The upload time from its name.
    pub fn uploaded_at(&self) -> OffsetDateTime {
        self.group.uploaded_at()
    }

    /// The client id.
    pub fn client(&self) -> &str {
        self.group.client()
    }

    /// The validated `Hostname` of `.env`, or why there is none.
    pub fn hostname(&self) -> Result<Hostname, String> {
        self.hostname_in(self.open_env())
    }

    /// [`Upload::hostname`] from a `.env` opened before (by [`Upload::open_parts`]).
    pub(crate) fn hostname_in(
        &self,
        env: Result<OpenedPart, webjob_drop::Error>,
    ) -> Result<Hostname, String> {
        let env = env
            .and_then(|env| self.group.read_env_from(env))
            .map_err(|e| format!("cannot read .env: {}", argus_core::error_chain(&e)))?;
        env.hostname().map_err(|e| format!(".env: {e}"))
    }

    fn open_env(&self) -> Result<OpenedPart, webjob_drop::Error> {
        self.group.open_env()
    }

    /// Opens `.env` and `.out` safely, as [`Upload::hostname`] and [`Upload::open_out`] do,
    /// to read them later: a read-ahead opens a batch's parts before the preparers read them.
    pub(crate) fn open_parts(&self) -> OpenedParts {
        OpenedParts {
            env: self.open_env(),
            out: self.open_out(),
        }
    }

    /// The chunk manifests of `.err` (none for uploads of the old shell harvester), or why they
    /// cannot be trusted.
    pub fn manifests(&self) -> Result<Vec<Manifest>, String> {
        if self.group.err().is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .group
            .manifests()
            .map_err(|e| format!("cannot read .err: {}", argus_core::error_chain(&e)))?;
        found
            .into_iter()
            .map(|m| m.map_err(|e| format!("damaged chunk manifest in .err: {e}")))
            .collect()
    }

    /// Opens `.out` safely (no symlink, no FIFO, the very file the scan saw).
    pub fn open_out(&self) -> Result<File, String> {
        self.group
            .open_out()
            .map_err(|e| argus_core::error_chain(&e))
    }
}

/// An upload's `.env` and `.out`, opened (or why not) by [`Upload::open_parts`].
#[derive(Debug)]
pub(crate) struct OpenedParts {
    pub(crate) env: Result<OpenedPart, webjob_drop::Error>,
    pub(crate) out: Result<File, String>,
}

impl OpenedParts {
    /// Tells the kernel that the first `bytes` of each part are about to be read, so that what
    /// is not in the page cache is read from the disk now, beside other uploads' reads, not
    /// one file at a time as the preparers come to it (`POSIX_FADV_WILLNEED`: only advice).
    pub(crate) fn read_ahead(&self, bytes: u64) {
        let len = i64::try_from(bytes).unwrap_or(i64::MAX);
        let env = self.env.as_ref().ok().map(OpenedPart::file);
        for file in [env, self.out.as_ref().ok()].into_iter().flatten() {
            let _advice_only = nix::fcntl::posix_fadvise(
                file,
                0,
                len,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            );
        }
    }
}

/// A group to quarantine: bad as scanned, or bad once read.
#[derive(Debug)]
pub enum Rejected {
    /// Reported invalid by the scan.
    Invalid(webjob_drop::Invalid),
    /// Complete, but its content is bad.
    Upload(Upload),
}

impl Rejected {
    /// Printable name.
    pub fn display_name(&self) -> String {
        match self {
            Rejected::Invalid(i) => i.files().to_string(),
            Rejected::Upload(u) => u.display_name(),
        }
    }
}

/// What a scan found, for a pass.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Complete groups, oldest first.
    pub complete: Vec<Upload>,
    /// Groups that cannot be processed, with the reason.
    pub invalid: Vec<(Rejected, String)>,
    /// Groups being uploaded.
    pub in_flight: u64,
    /// `.out` (or other part) paths of orphaned uploads.
    pub orphans: Vec<PathBuf>,
    /// Uploads of other clients or jobs: those with a `.rdy` (counted from their names, see
    /// [`webjob_drop::Dropzone::with_foreign_counted`]).
    pub foreign: u64,
    /// Uploads with a `.rdy` that the scan's window left for a later scan (see
    /// [`scan`]).
    pub deferred: u64,
}

/// The client id of a stem `CLIENT_YYYYMMDDHHMMSS[_...]`: everything before the first `_`
/// followed by 14 digits and then `_` or the end (client ids may hold `_` themselves).
pub fn client_of_stem(stem: &str) -> Option<&str> {
    let bytes = stem.as_bytes();
    (1..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        let is_stamp = rest.len() > 14
            && rest[0] == b'_'
            && rest[1..15].iter().all(u8::is_ascii_digit)
            && (rest.len() == 15 || rest[15] == b'_');
        is_stamp.then(|| &stem[..i])
    })
}

/// The configured selection of clients and job.
pub fn selection(config: &Config) -> webjob_drop::Result<Selection> {
    Selection::new(&config.clients, &config.job)
}

/// How many uploads with a `.rdy` a pass's scan holds at most by default: the oldest; the
/// pass takes the others in later scans, this many at a time, so that its memory stays flat
/// whatever the backlog (about 2 KB an upload in the window). Each scan lists the dropzone
/// twice (see [`Dropzone::with_window`]).
pub const SCAN_WINDOW: usize = 20_000;

/// Scans the dropzone (read-only): every upload, or with a `window` only the oldest that many
/// ready ones (the others counted in [`Scanned::deferred`]).
pub fn scan(
    config: &Config,
    now: OffsetDateTime,
    window: Option<usize>,
) -> webjob_drop::Result<Scanned> {
    let selection = selection(config)?;
    let mut dropzone = Dropzone::new(&config.drop_dir)
        .with_now(now.into())
        .with_max_depth(config.scan_depth as usize)
        // Every part a pass needs is opened (safely) when the upload is prepared.
        .with_open_check(false)
        // Other jobs' uploads are only counted: what they leave costs a pass little.
        .with_foreign_counted(true);
    if let Some(limit) = window {
        dropzone = dropzone.with_window(limit);
    }
    let scan = dropzone.scan(&selection)?;
    Ok(found(config, scan, now))
}

/// Scans the one group `stem` in `dir` (read-only), for the daemon. Another client's or job's
/// stem, or a name that is no upload's, finds nothing and is not looked for: finding one
/// group lists its directory, which holds every job's uploads, and the daemon is told of
/// theirs too.
pub fn scan_group(
    config: &Config,
    dir: &Path,
    stem: &std::ffi::OsStr,
) -> webjob_drop::Result<Scanned> {
    use std::os::unix::ffi::OsStrExt;
    use webjob_drop::name::StemMatch;
    let selection = selection(config)?;
    if matches!(
        selection.classify(stem.as_bytes()),
        StemMatch::OtherClient { .. } | StemMatch::OtherJob { .. } | StemMatch::NotUpload
    ) {
        return Ok(Scanned::default());
    }
    let now = OffsetDateTime::now_utc();
    let scan = Dropzone::new(&config.drop_dir)
        .with_now(now.into())
        .with_max_depth(config.scan_depth as usize)
        // Every part a pass needs is opened (safely) when the upload is prepared.
        .with_open_check(false)
        .scan_group(&selection, dir, stem)?;
    let mut found = found(config, scan, now);
    // A single group is never an orphan worth reporting here: the full rescans report those.
    found.orphans.clear();
    Ok(found)
}

fn found(config: &Config, scan: webjob_drop::Scan, now: OffsetDateTime) -> Scanned {
    for e in &scan.errors {
        log::warn!(
            "part of the dropzone could not be scanned: {}",
            argus_core::error_chain(e)
        );
    }
    let now_sys = std::time::SystemTime::from(now);
    let orphans: Vec<PathBuf> = scan
        .orphans(now_sys, config.orphan_after)
        .map(|f| f.files().dir().join(f.files().stem()))
        .collect();
    // Groups the WebJob server still holds with its `.lck` are in flight, never complete.
    let in_flight = scan.in_flight.len() as u64 - orphans.len() as u64;
    let deferred = scan.deferred_count();
    let foreign = scan.foreign_count();
    let invalid = scan
        .invalid
        .into_iter()
        .map(|i| {
            let reason = i.reason_text();
            (Rejected::Invalid(i), reason)
        })
        .collect();
    Scanned {
        complete: scan
            .complete
            .into_iter()
            .map(|group| Upload { group })
            .collect(),
        invalid,
        in_flight,
        orphans,
        foreign,
        deferred,
    }
}

/// What the dropzone holds for one client, as a pass sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounts {
    /// Complete groups a pass would take (of configured clients), or that wait for a client
    /// not configured.
    pub pending: u64,
    /// Groups being uploaded: without `.rdy`, or with the WebJob server's `.lck` still there.
    pub in_flight: u64,
    /// Data without `.rdy` older than `orphan_after`.
    pub orphans: u64,
    /// The newest upload time among the complete groups.
    pub newest: Option<OffsetDateTime>,
}

/// Per client, what the dropzone holds (read-only), by the rules a pass applies; for `status`.
/// Beyond the first [`SCAN_WINDOW`] ready uploads, each one with a `.rdy` counts as pending
/// (one the WebJob server still holds, or an invalid one, too).
pub fn census(
    config: &Config,
    now: OffsetDateTime,
) -> webjob_drop::Result<std::collections::BTreeMap<String, ClientCounts>> {
    census_within(config, now, SCAN_WINDOW)
}

fn census_within(
    config: &Config,
    now: OffsetDateTime,
    window: usize,
) -> webjob_drop::Result<std::collections::BTreeMap<String, ClientCounts>> {
    let selection = selection(config)?;
    let now_sys = std::time::SystemTime::from(now);
    let scan = Dropzone::new(&config.drop_dir)
        .with_now(now_sys)
        .with_max_depth(config.scan_depth as usize)
        .with_open_check(false)
        .with_foreign_counted(true)
        .with_window(window)
        .scan(&selection)?;
    let mut counts: std::collections::BTreeMap<String, ClientCounts> = Default::default();
    for (client, deferred) in &scan.deferred {
        let c = counts.entry(client.clone()).or_default();
        c.pending += deferred.count;
        c.newest = c.newest.max(Some(deferred.newest));
    }
    for g in &scan.complete {
        let c = counts.entry(g.client().to_owned()).or_default();
        c.pending += 1;
        c.newest = c.newest.max(Some(g.uploaded_at()));
    }
    for f in &scan.in_flight {
        let Some(client) = f.client() else { continue };
        let c = counts.entry(client.to_owned()).or_default();
        if f.is_orphan(now_sys, config.orphan_after) {
            c.orphans += 1;
        } else {
            c.in_flight += 1;
        }
    }
    for ((client, reason), n) in &scan.foreign_counted {
        if *reason == webjob_drop::ForeignReason::OtherClient && n.complete > 0 {
            counts.entry(client.clone()).or_default().pending += n.complete;
        }
    }
    Ok(counts)
}

/// Moves a bad group whole into the quarantine with its reason. Returns where it went.
pub fn quarantine(
    bad: &Rejected,
    quarantine_dir: &Path,
    reason: &str,
) -> Result<PathBuf, webjob_drop::Error> {
    let done = match bad {
        Rejected::Invalid(i) => webjob_drop::quarantine_group(i, quarantine_dir, reason)?,
        Rejected::Upload(u) => webjob_drop::quarantine_group(&u.group, quarantine_dir, reason)?,
    };
    Ok(done.path)
}

/// Removes a finished group's files (`.rdy` last) without syncing its directory; the caller
/// syncs each directory once per batch.
pub fn remove_parts(upload: &Upload) -> Result<(), webjob_drop::Error> {
    webjob_drop::ops::remove_group_unsynced(&upload.group).map(drop)
}

/// Finishes the removal of a group known only by its `.rdy` (journal recovery).
pub fn remove_by_rdy(rdy: &Path) -> Result<(), webjob_drop::Error> {
    let dir = rdy.parent().unwrap_or_else(|| Path::new("."));
    let Some(stem) = rdy.file_stem() else {
        return Ok(());
    };
    webjob_drop::finish_removal(dir, stem).map(drop)
}

/// Settles quarantine moves a crash interrupted (call under the lock, before scanning).
pub fn recover_quarantine(quarantine_dir: &Path) -> Result<(), webjob_drop::Error> {
    let r = webjob_drop::recover_quarantine(quarantine_dir)?;
    for e in &r.errors {
        log::error!("quarantine recovery: {}", argus_core::error_chain(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary server with an empty dropzone, for `clients`.
    fn dropzone_with(clients: &[&str]) -> (tempfile::TempDir, Config) {
        let root = tempfile::tempdir().expect("a temporary directory");
        let drop_dir = root.path().join("incoming");
        std::fs::create_dir(&drop_dir).expect("the dropzone");
        let config = Config::new(
            drop_dir,
            root.path().join("oper"),
            root.path().join("archive"),
            clients.iter().map(|&c| c.to_owned()).collect(),
        );
        (root, config)
    }

    #[test]
    fn a_census_beyond_its_window_counts_what_waits_per_client() {
        let (_root, config) = dropzone_with(&["s*"]);
        let drop_dir = config.drop_dir.clone();
        for (client, stamp) in [
            ("s1", "20260101000000"),
            ("s2", "20260101010000"),
            ("s1", "20260101020000"),
            ("s2", "20260101030000"),
            ("s1", "20260101040000"),
        ] {
            webjob_drop::fixture::Upload::new(client, stamp)
                .write(&drop_dir)
                .expect("an upload");
        }
        let now = OffsetDateTime::now_utc();
        let whole = census_within(&config, now, usize::MAX).expect("a census");
        assert_eq!(whole["s1"].pending, 3);
        assert_eq!(whole["s2"].pending, 2);
        for window in [0, 1, 3] {
            let windowed = census_within(&config, now, window).expect("a census");
            assert_eq!(windowed, whole, "a window of {window}");
        }
    }

    #[test]
    fn a_single_group_of_another_job_or_client_is_not_looked_for() {
        let (_root, config) = dropzone_with(&["s1"]);
        let drop_dir = config.drop_dir.clone();
        let ours = webjob_drop::fixture::Upload::new("s1", "20260101000000")
            .write(&drop_dir)
            .expect("an upload");
        let found = scan_group(&config, &drop_dir, ours.stem.as_ref()).expect("a scan");
        assert_eq!(found.complete.len(), 1, "the consumer's own group is found");
        // A directory that cannot be listed: looking for a group there fails, so the stems
        // that come back empty were not looked for.
        let gone = drop_dir.join("gone");
        assert!(scan_group(&config, &gone, ours.stem.as_ref()).is_err());
        for stem in [
            "s2_20260101000000_harvest_argus",
            "s1_20260101000000_ftimes",
            "README",
        ] {
            let found = scan_group(&config, &gone, stem.as_ref()).expect(stem);
            assert!(
                found.complete.is_empty() && found.invalid.is_empty(),
                "{stem}"
            );
        }
    }
}
