//! One pass over the dropzone (SPEC §4 steps 1-7), exactly once.
//!
//! Uploads are handled in batches, so that syncing, which dominates the cost of small files, is
//! paid per batch and not per upload:
//!
//! 1. **prepare** (on every core): open the parts safely, validate the host name, check the
//!    manifest (bytes and SHA-256 per chunk) and walk the argus records of `.out`, while
//!    compressing it into a temporary archive file in the same read;
//! 2. **journal**: one line per upload and day file it goes to (its day pieces, `day_pieces`: the
//!    upload's day, or split by record time), with the day file's size before the append and
//!    the archive, synced;
//! 3. **append** every `.out`, oldest first, to its day file (`copy_file_range`, or a new
//!    compressed member when the day was already compressed), then sync each day file once;
//! 4. **archive**: sync the archive data, rename the archives into place, sync the directory;
//!    then record the batch's chunks, uploads and duplicates in the ledger;
//! 5. **remove** the groups (`.rdy` last) and sync the dropzone directories;
//! 6. clear the journal.
//!
//! A crash between any two steps is repaired by [`crate::journal::plan_recovery`] at the next
//! start; a failed write (a full disk) is repaired the same way at once, and the pass stops with
//! exit status 74.
//!
//! Tuning, as measured (`cargo xtask bench`):
//! - batches hold at most 256 uploads and about 1 GiB, and grow from 32 (`batch`) so that the
//!   first commit, which nothing overlaps, starts early;
//! - a pipeline: the next batch is prepared on its own thread while one commits, and one
//!   prepared batch may wait, so up to three batches hold open files at once (about 8 per
//!   upload); batches shrink to fit the soft limit on open files (`limits`), which `main`
//!   first raises to the hard one (an embedding program keeps its own limits);
//! - a batch's parts are opened, and their reading started, ahead of the preparers
//!   (`prepare::read_ahead`): uploads whose pages the kernel dropped while they waited cost
//!   one round of reads side by side instead of a read each preparer waits for;
//! - a commit syncs its files together from a few threads, or with one `syncfs` for 16 or more,
//!   which is also the day files' sync when they share the archives' file system; groups are
//!   removed from up to 16 threads kept for the pass (an unlink with online discard waits).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argus_core::escape::EscapedPath;
use argus_core::lock::{Contention, Lock};
use argus_core::publish;
use time::OffsetDateTime;

use crate::config::Config;
use crate::content::{ArgusRecords, Content};
use crate::day_catalog::DayCatalog;
use crate::dropzone::{self, Rejected, Scanned, Upload};
use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::report::Summary;

mod batch;
mod chunks;
mod commit;
mod day_pieces;
mod drain;
mod dry_run;
mod finish;
mod limits;
mod listing;
mod maintain;
mod preflight;
mod prepare;
mod recover;
mod refused;
mod removal;
mod verify;

use crate::error::{Action, Error, Problem, Problems, Store, error_chain};
pub use limits::raise_open_file_limit;
pub use preflight::preflight;

use self::dry_run::dry_run;
pub(crate) use self::limits::compress_threads;
use self::limits::{open_file_limit, uploads_within};
use self::listing::list_days;
use self::prepare::{Prepared, prepare_all};
use self::recover::recover;
use crate::error::Context;

/// How a pass runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wait for the lock instead of failing with [`crate::Failure::Locked`] (an [`Error`] of that kind).
    pub wait: bool,
    /// Change nothing: the [`Outcome`]'s plan says what would be done.
    pub dry_run: bool,
    /// At most this many uploads per batch (one journal sync, one set of fsyncs).
    pub batch_uploads: usize,
    /// At most about this many bytes of `.out` per batch.
    pub batch_bytes: u64,
    /// Threads that validate and compress uploads, the blocks of a large upload and closed
    /// days (one per core by default); the config's `compress_threads` caps them.
    pub threads: usize,
    /// When set (by a signal), work stops between two batches.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Told of the ingest's progress (an interactive pass shows a bar).
    pub progress: Option<std::sync::Arc<dyn Progress>>,
    /// What the uploads hold and how to check it: argus records by default. Content that
    /// cannot be split by record time is filed by upload day whatever `day_boundary` says.
    pub content: std::sync::Arc<dyn Content>,
    /// At most this many ready uploads per scan ([`dropzone::SCAN_WINDOW`] by default, 0
    /// counts as 1): a larger backlog is taken in windows, so memory does not grow with it.
    pub scan_window: usize,
}

/// What follows an ingest as it goes: told the uploads and bytes to do, then each batch done.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// The ingest starts with this many uploads of this many bytes.
    fn begin(&self, uploads: u64, bytes: u64);
    /// So many more are done (ingested, quarantined or left out as duplicates).
    fn advance(&self, uploads: u64, bytes: u64);
    /// The ingest ended (done, stopped or failed).
    fn end(&self);
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: false,
            dry_run: false,
            batch_uploads: 256,
            batch_bytes: 1 << 30,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            stop: None,
            progress: None,
            content: std::sync::Arc::new(ArgusRecords),
            scan_window: dropzone::SCAN_WINDOW,
        }
    }
}

/// The result of a pass.
#[derive(Debug)]
pub struct Outcome {
    /// What was done (for a dry run: what would be).
    pub summary: Summary,
    /// What stopped the pass, or the first thing it could not finish (an upload that could
    /// not be quarantined, say); `None` when all went well. `summary.failed` holds it rendered
    /// with its causes.
    pub error: Option<Error>,
    /// A dry run's plan, a line per thing it would do; empty otherwise.
    pub plan: Vec<String>,
}

/// Runs one pass. Never panics on bad input; every failure ends up in the outcome.
pub fn run(config: &Config, options: &Options, now: OffsetDateTime) -> Outcome {
    let started = Instant::now();
    if options.dry_run {
        let mut summary = Summary::default();
        let mut plan = Vec::new();
        let config = &for_content(config.clone(), &*options.content);
        let result = dry_run(config, &*options.content, now, &mut summary, &mut plan);
        summary.elapsed = started.elapsed();
        let mut outcome = finish(summary, result.map(|()| None));
        outcome.plan = plan;
        return outcome;
    }
    let result = Engine::start(config.clone(), options.clone()).and_then(|mut engine| {
        let mut first = true;
        engine.drain(now, |found| {
            for orphan in found.orphans.iter().filter(|_| first) {
                log::warn!(
                    "orphaned upload data without .rdy (a failed upload?): {}",
                    EscapedPath(orphan)
                );
            }
            first = false;
        })?;
        engine.maintain(now)?;
        let budget = engine.config().hooks.budget;
        engine.run_hooks(budget);
        Ok(engine)
    });
    match result {
        Ok(mut engine) => {
            let (mut summary, trouble) = engine.take_summary();
            summary.elapsed = started.elapsed();
            finish(summary, Ok(trouble))
        }
        Err(fatal) => {
            let summary = Summary {
                elapsed: started.elapsed(),
                ..Summary::default()
            };
            finish(summary, Err(fatal))
        }
    }
}

/// `STATE_DIR/clean-exit`: present while no engine runs and the last one ended without a
/// crash (see [`Engine::start`]).
const CLEAN_EXIT: &str = "clean-exit";

impl Drop for Engine {
    fn drop(&mut self) {
        // An unwinding panic drops the staged files too, but is no clean end to count on.
        if !std::thread::panicking() {
            self.mark_clean_exit();
        }
    }
}

/// `config` as the engine runs it for `content`: by upload day when its records cannot be
/// split by record time.
fn for_content(mut config: Config, content: &dyn Content) -> Config {
    if !content.by_record_time() {
        config.day_boundary = crate::config::DayBoundary::Upload;
    }
    config
}

/// What happened, as an [`Outcome`].
fn finish(mut summary: Summary, result: Result<Option<Error>, Error>) -> Outcome {
    let error = match result {
        Ok(trouble) => trouble,
        Err(fatal) => {
            log::error!("{}", error_chain(&fatal));
            Some(fatal)
        }
    };
    summary.failed = error.as_ref().map(|e| error_chain(e));
    Outcome {
        summary,
        error,
        plan: Vec::new(),
    }
}

/// A process_argus that holds the lock: set up and recovered once, then ingests and maintains
/// for as long as it lives (one pass, or the daemon).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    options: Options,
    _lock: Lock,
    journal: Journal,
    ledger: Ledger,
    /// The follow-on stages' queue (`STATE_DIR/hooks`).
    queue: crate::hooks::Queue,
    summary: Summary,
    /// The archives committed by this `ingest` so far (see `finish_batch`).
    committed_archives: std::collections::BTreeSet<PathBuf>,
    /// Groups (directory, stem) taken back out of a batch, to ingest again (`refused`).
    taken_back: Vec<(PathBuf, std::ffi::OsString)>,
    /// The day files appended to since the summary was last taken.
    touched_days: std::collections::BTreeSet<PathBuf>,
    /// The archive as of its last listing ([`crate::catalog`]); none: list it.
    catalog: Option<crate::catalog::Catalog>,
    /// The day files that wait for their day to close as the last listing found them, plus
    /// those written since ([`crate::day_catalog`]): maintenance closes days from it, and lists
    /// the directory again only when it is gone (a reload) or a day old. None while nothing
    /// waits (day files plain, no `day_closed` hook).
    days: Option<DayCatalog>,
    /// Whether `STATE_DIR/day-catalog` holds `days` (a start trusts it after a clean end);
    /// otherwise it is removed.
    days_saved: bool,
    /// A non-fatal I/O problem (a group that could not be quarantined, say): work goes on but
    /// the run exits 74.
    trouble: Option<Error>,
    /// A rollback failed: the next start must clean up what it left (no clean-exit mark).
    unclean: bool,
    /// The last committed batch's groups being removed (while the next batch is committed),
    /// and the threads that unlink; `ingest` waits for it and ends them before it returns.
    removal: removal::Removals,
}

impl Engine {
    /// Checks the directories, takes the lock and repairs what an interrupted run left: temporary
    /// files, quarantine moves, the journal (rolling back or finishing appends), compressions.
    pub fn start(config: Config, mut options: Options) -> Result<Engine, Error> {
        let config = for_content(config, &*options.content);
        options.batch_uploads = options.batch_uploads.min(uploads_within(open_file_limit()));
        let problems = preflight(&config);
        if !problems.is_empty() {
            return Err(Error::Config(Problems(problems)));
        }
        for (_, dir) in config.own_directories() {
            publish::create_dir_all_durably(dir)?;
        }
        let contention = if options.wait {
            Contention::Wait
        } else {
            Contention::Fail
        };
        let lock = Lock::acquire(config.state_dir.join("lock"), contention)?;

        // Under the lock nobody else writes here: temporary files are leftovers of a crash,
        // and only a crash (or a state directory from before the marker) leaves no
        // `clean-exit`. Its removal is made durable before anything is written, so a crash of
        // this engine is always followed by a cleaning; a clean end lists no directory. The
        // cleaning comes after the journal's recovery, which looks at the temporary archives
        // its entries name.
        let clean_exit = config.state_dir.join(CLEAN_EXIT);
        let clean = match std::fs::remove_file(&clean_exit) {
            Ok(()) => {
                publish::sync_dir(&config.state_dir)?;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).or_file(Action::Clear, &clean_exit),
        };
        dropzone::recover_quarantine(&config.quarantine_dir)
            .or_store(Action::Recover, Store::Quarantine)?;
        let mut ledger = Ledger::open(&config.state_dir).or_store(Action::Open, Store::Ledger)?;
        let queue = crate::hooks::Queue::open(&config.state_dir)
            .or_store(Action::Open, Store::HookQueue)?;
        queue.clean()?;
        let (mut journal, entries) =
            Journal::open(&config.state_dir).or_store(Action::Open, Store::Journal)?;
        let recovered =
            recover(&mut journal, &entries, &mut ledger, (&queue, &config.hooks))? as u64;
        if !clean {
            for dir in [&config.archive_dir, &config.oper_dir, &config.state_dir] {
                publish::clean_temp_files(dir, Duration::ZERO, std::time::SystemTime::now())?;
            }
        }
        ledger
            .compact_if_needed()
            .or_store(Action::Compact, Store::Ledger)?;
        let now = OffsetDateTime::now_utc();
        // What waits for its day to close is kept (a catalog of every plain day file would be
        // the whole directory when none is compressed, and is kept only for an announcement).
        let closing = listing::closing(&config);
        let loaded = closing
            .filter(|_| clean)
            .and_then(|c| DayCatalog::load(&config.state_dir, c, &config.oper_dir, now));
        let (days, days_saved) = match (loaded, closing) {
            (Some(days), _) => (Some(days), true),
            (None, Some(closing)) => {
                let days = list_days(&config, closing, now)?;
                let saved = days.keep(&config.state_dir);
                (Some(days), saved)
            }
            (None, None) => {
                // Nothing waits; a crash may still have left a compression (of a
                // configuration before) to settle.
                if !clean {
                    listing::plain_day_files(&config.oper_dir)?;
                }
                crate::day_catalog::discard(&config.state_dir);
                (None, false)
            }
        };
        let catalog = crate::catalog::Catalog::load(&config.state_dir);
        Ok(Engine {
            config,
            options,
            _lock: lock,
            journal,
            ledger,
            queue,
            summary: Summary {
                recovered,
                ..Summary::default()
            },
            committed_archives: std::collections::BTreeSet::new(),
            taken_back: Vec::new(),
            touched_days: std::collections::BTreeSet::new(),
            catalog,
            days,
            days_saved,
            trouble: None,
            unclean: false,
            removal: removal::Removals::default(),
        })
    }

    /// Removes `STATE_DIR/day-catalog` once it no longer holds every plain day file: the next
    /// start lists them.
    fn forget_days(&mut self) {
        if self.days_saved {
            self.days_saved = false;
            crate::day_catalog::discard(&self.config.state_dir);
        }
    }

    /// Marks a clean end: no temporary file of this engine is left (each is removed when
    /// dropped, or, once a journal names it, by the recovery), so the next start need not look
    /// for any. Not after a failed rollback, whose leftovers the next start cleans.
    fn mark_clean_exit(&self) {
        if self.unclean {
            return;
        }
        let path = self.config.state_dir.join(CLEAN_EXIT);
        if let Err(e) = std::fs::File::create(&path) {
            log::debug!("cannot mark the clean end (the next start cleans up): {e}");
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes a new configuration (SIGHUP). The state directory cannot change while running.
    pub fn reload(&mut self, config: Config) -> Result<(), Error> {
        let config = for_content(config, &*self.options.content);
        if config.state_dir != self.config.state_dir {
            return Err(Error::Config(Problems(vec![Problem::StateDirChanged {
                from: self.config.state_dir.clone(),
                to: config.state_dir.clone(),
            }])));
        }
        let problems = preflight(&config);
        if !problems.is_empty() {
            return Err(Error::Config(Problems(problems)));
        }
        for dir in [
            &config.oper_dir,
            &config.archive_dir,
            &config.quarantine_dir,
        ] {
            publish::create_dir_all_durably(dir)?;
        }
        if let Some(log_dir) = &config.log_dir {
            publish::create_dir_all_durably(log_dir)?;
        }
        self.config = config;
        self.days = None;
        self.forget_days();
        Ok(())
    }

    /// What was done since the last call, and any non-fatal trouble.
    pub fn take_summary(&mut self) -> (Summary, Option<Error>) {
        let mut summary = std::mem::take(&mut self.summary);
        summary.day_files = std::mem::take(&mut self.touched_days).len() as u64;
        (summary, self.trouble.take())
    }

    /// Scans the dropzone (read-only): its oldest [`Options::scan_window`] ready uploads, and
    /// how many more wait ([`Scanned::deferred`]; [`Engine::drain`] takes them all).
    pub fn scan(&mut self, now: OffsetDateTime) -> Result<Scanned, Error> {
        let window = Some(self.options.scan_window.max(1));
        let found =
            dropzone::scan(&self.config, now, window).or_store(Action::Scan, Store::Dropzone)?;
        self.summary.in_flight = found.in_flight;
        self.summary.orphans = found.orphans.len() as u64;
        self.summary.foreign = found.foreign;
        Ok(found)
    }

    /// Scans one group (the daemon, on a `.rdy` event).
    pub fn scan_group(&mut self, dir: &Path, stem: &std::ffi::OsStr) -> Result<Scanned, Error> {
        dropzone::scan_group(&self.config, dir, stem).or_store(Action::Scan, Store::Dropzone)
    }

    /// Quarantines the invalid groups and ingests the complete ones, in batches, oldest first.
    /// Below `min_free_space` it first purges what retention allows, and ingests nothing when
    /// that is not enough (exit 74; the uploads wait).
    pub fn ingest(&mut self, mut found: Scanned) -> Result<(), Error> {
        loop {
            self.ingest_scanned(found)?;
            match self.taken_back() {
                Some(again) => found = again,
                None => return Ok(()),
            }
        }
    }

    fn ingest_scanned(&mut self, found: Scanned) -> Result<(), Error> {
        if crate::space::shortage(&self.config).is_some() {
            self.purge(OffsetDateTime::now_utc())?;
            if let Some(shortage) = crate::space::shortage(&self.config) {
                return Err(shortage.into());
            }
        } else if self.catalog.is_none() && !found.complete.is_empty() {
            // Without a catalog the next purge lists the archive: list it now, while it holds
            // what earlier passes left, rather than after this ingest added to it. Should that
            // fail, the maintenance lists (and reports) as usual.
            if let Err(e) = self.catalog_archive(OffsetDateTime::now_utc()) {
                log::warn!(
                    "cannot list the archive before the ingest: {}",
                    error_chain(&e)
                );
            }
        }
        for (bad, reason) in found.invalid {
            self.quarantine(&bad, &reason);
        }
        let progress = self.options.progress.clone();
        let sizes: Vec<u64> = found.complete.iter().map(Upload::out_len).collect();
        if let Some(p) = &progress
            && !found.complete.is_empty()
        {
            p.begin(found.complete.len() as u64, sizes.iter().sum());
        }
        let threads = compress_threads(&self.config, &self.options);
        let lengths = batch::plan(
            &sizes,
            self.options.batch_uploads,
            self.options.batch_bytes,
            threads,
        );
        let batches = batch::split(found.complete, &lengths);
        // A pipeline: batches are prepared (read, checked, compressed: CPU) one after the other
        // on their own threads while earlier ones are committed (syncs, renames, unlinks: mostly
        // waiting on the disk). One prepared batch may wait while the next is prepared, so the
        // cores keep busy while a commit waits on the device; at most three batches are open.
        let config = self.config.clone();
        let config = &config;
        let content = std::sync::Arc::clone(&self.options.content);
        self.committed_archives.clear();
        std::thread::scope(|scope| {
            let (ready, prepared) = std::sync::mpsc::sync_channel(1);
            let preparer = scope.spawn(move || {
                for batch in batches {
                    let result = prepare_all(config, &*content, batch, threads);
                    let failed = result.is_err();
                    // A closed channel: the committer stopped; what was prepared is dropped,
                    // which removes its temporary archives.
                    if ready.send(result).is_err() || failed {
                        break;
                    }
                }
            });
            let committed = (|| {
                for batch in &prepared {
                    let batch = batch?;
                    if self.stopping() {
                        return Ok(());
                    }
                    let (n, bytes) = (
                        batch.len() as u64,
                        batch.iter().map(Prepared::out_len).sum(),
                    );
                    self.finish_batch(batch)?;
                    if let Some(p) = &progress {
                        p.advance(n, bytes);
                    }
                }
                Ok(())
            })();
            // The last batch's groups are gone (or, on an error, left to the recovery).
            let removed = removal::finish_pass(&mut self.journal, &mut self.removal);
            let committed = committed.and(removed);
            if let Some(p) = &progress {
                p.end();
            }
            drop(prepared);
            let joined = preparer.join().map_err(|_| Error::Panicked);
            committed.and(joined)
        })
    }

    fn stopping(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Retention of archives and of the quarantine, and compression of closed days.
    pub fn maintain(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        self.purge(now)?;
        self.expire_quarantine(now)?;
        self.compress(now)
    }

    fn quarantine(&mut self, upload: &Rejected, reason: &str) {
        match crate::quarantine::quarantine_group(&self.config, &self.queue, upload, reason) {
            Ok(place) => {
                self.summary.quarantined += 1;
                log::warn!(
                    "quarantined {} to {}: {reason}",
                    upload.display_name(),
                    EscapedPath(&place)
                );
            }
            Err(e) => {
                let e = Error::NotQuarantined {
                    upload: upload.display_name().to_string(),
                    reason: reason.to_owned(),
                    source: e.into(),
                };
                log::error!("{}", error_chain(&e));
                self.trouble.get_or_insert(e);
            }
        }
    }
}
