//! One pass over the dropzone (SPEC §4 steps 1-7), exactly once.
//!
//! Uploads are handled in batches, so that syncing, which dominates the cost of small files, is
//! paid per batch and not per upload:
//!
//! 1. **prepare** (on every core): open the parts safely, validate the host name, check the
//!    manifest (bytes and SHA-256 per chunk) and walk the argus records of `.out`, while
//!    compressing it into a temporary archive file in the same read;
//! 2. **journal**: one line per upload (day file, its size before the append, archive), synced;
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

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use argus_core::append::{append_encoded_exact, append_file_exact, truncate_back};
use argus_core::codec::{Codec, Compression, open_decoded};
use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;
use argus_core::lock::{Contention, Lock};
use argus_core::manifest::Manifest;
use argus_core::publish::{self, Publisher, Staged, SyncMode};
use argus_core::record::{Version, Walk, Walker};
use argus_core::retention;
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};

use crate::config::Config;
use crate::dayfile;
use crate::dropzone::{self, Bad, Found, Upload};
use crate::exit;
use crate::failpoint;
use crate::journal::{self, Entry, Facts, Journal, Source};
use crate::ledger::{Fact, Ledger, Seen};
use crate::report::Summary;

/// How a pass runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wait for the lock instead of failing with [`exit::LOCKED`].
    pub wait: bool,
    /// Report what would be done on stdout; change nothing.
    pub dry_run: bool,
    /// At most this many uploads per batch (one journal sync, one set of fsyncs).
    pub batch_uploads: usize,
    /// At most about this many bytes of `.out` per batch.
    pub batch_bytes: u64,
    /// Threads that validate and compress uploads.
    pub threads: usize,
    /// When set (by a signal), work stops between two batches.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
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
        }
    }
}

/// The result of a pass.
#[derive(Debug)]
pub struct Outcome {
    /// What was done.
    pub summary: Summary,
    /// The exit status for the process.
    pub exit_code: u8,
}

/// A failure that stops the pass (or the daemon).
#[derive(Debug)]
pub struct Fatal {
    /// The exit status it calls for.
    pub code: u8,
    /// What happened.
    pub message: String,
}

impl Fatal {
    fn io(what: impl std::fmt::Display) -> Self {
        Fatal {
            code: exit::IO,
            message: what.to_string(),
        }
    }
}

impl From<webjob_drop::Error> for Fatal {
    fn from(e: webjob_drop::Error) -> Self {
        Fatal::io(error_chain(&e))
    }
}

impl From<argus_core::Error> for Fatal {
    fn from(e: argus_core::Error) -> Self {
        let code = match e {
            argus_core::Error::Locked { .. } => exit::LOCKED,
            _ => exit::IO,
        };
        Fatal {
            code,
            message: error_chain(&e),
        }
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        cur = cause.source();
    }
    if find_io(e).is_some_and(argus_core::is_disk_full) {
        s.push_str(" (the disk is full: free space, then run again; nothing was lost)");
    }
    s
}

fn find_io<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// Problems that would stop a pass before it starts (for `check-config`): the dropzone must
/// exist; the other directories must exist or be creatable.
pub fn preflight(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    match fs::metadata(&config.drop_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => problems.push(format!(
            "drop_dir {} is not a directory",
            EscapedPath(&config.drop_dir)
        )),
        Err(e) => problems.push(format!("drop_dir {}: {e}", EscapedPath(&config.drop_dir))),
    }
    let mut dirs = vec![
        ("oper_dir", &config.oper_dir),
        ("archive_dir", &config.archive_dir),
        ("state_dir", &config.state_dir),
        ("quarantine_dir", &config.quarantine_dir),
    ];
    if let Some(log_dir) = &config.log_dir {
        dirs.push(("log_dir", log_dir));
    }
    for (name, dir) in dirs {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => problems.push(format!("{name} {} is not a directory", EscapedPath(dir))),
            Err(_) => {
                let existing = dir.ancestors().find(|a| a.exists());
                if existing.is_some_and(|a| !a.is_dir()) {
                    problems.push(format!("{name} {} cannot be created", EscapedPath(dir)));
                }
            }
        }
    }
    problems
}

/// Runs one pass. Never panics on bad input; every failure ends up in the outcome.
pub fn run(config: &Config, options: &Options, now: OffsetDateTime) -> Outcome {
    let started = Instant::now();
    if options.dry_run {
        let mut summary = Summary::default();
        let result = dry_run(config, now, &mut summary);
        summary.elapsed = started.elapsed();
        return finish(summary, result.map(|()| None));
    }
    let result = Engine::start(config.clone(), options.clone()).and_then(|mut engine| {
        let found = engine.scan(now)?;
        for orphan in &found.orphans {
            log::warn!(
                "orphaned upload data without .rdy (a failed upload?): {}",
                EscapedPath(orphan)
            );
        }
        engine.ingest(found)?;
        engine.maintain(now)?;
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

/// Maps what happened to an exit status.
fn finish(mut summary: Summary, result: Result<Option<String>, Fatal>) -> Outcome {
    let exit_code = match result {
        Ok(Some(message)) => {
            summary.failed = Some(message);
            exit::IO
        }
        Ok(None) if summary.quarantined > 0 => exit::QUARANTINED,
        Ok(None) => exit::OK,
        Err(fatal) => {
            log::error!("{}", fatal.message);
            summary.failed = Some(fatal.message);
            fatal.code
        }
    };
    Outcome { summary, exit_code }
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
    summary: Summary,
    /// The archives committed by this `ingest` so far (see `finish_batch`).
    committed_archives: std::collections::BTreeSet<PathBuf>,
    /// A non-fatal I/O problem (a group that could not be quarantined, say): work goes on but
    /// the run exits 74.
    trouble: Option<String>,
}

impl Engine {
    /// Checks the directories, takes the lock and repairs what an interrupted run left: temporary
    /// files, quarantine moves, the journal (rolling back or finishing appends), compressions.
    pub fn start(config: Config, mut options: Options) -> Result<Engine, Fatal> {
        options.batch_uploads = options.batch_uploads.min(uploads_within(open_file_limit()));
        let problems = preflight(&config);
        if !problems.is_empty() {
            return Err(Fatal {
                code: exit::CONFIG,
                message: problems.join("; "),
            });
        }
        let mut dirs = vec![
            &config.oper_dir,
            &config.archive_dir,
            &config.state_dir,
            &config.quarantine_dir,
        ];
        if let Some(log_dir) = &config.log_dir {
            dirs.push(log_dir);
        }
        for dir in dirs {
            publish::create_dir_all_durably(dir)?;
        }
        if let Some(log_dir) = &config.log_dir {
            crate::logging::log_to_file(log_dir, "process_argus.log").map_err(|e| {
                Fatal::io(format!(
                    "cannot open the log in {}: {e}",
                    EscapedPath(log_dir)
                ))
            })?;
        }
        let contention = if options.wait {
            Contention::Wait
        } else {
            Contention::Fail
        };
        let lock = Lock::acquire(config.state_dir.join("lock"), contention)?;

        // Under the lock nobody else writes here: temporary files are leftovers of a crash.
        for dir in [&config.archive_dir, &config.oper_dir] {
            publish::clean_temp_files(dir, Duration::ZERO, std::time::SystemTime::now())?;
        }
        dropzone::recover_quarantine(&config.quarantine_dir).map_err(|e| {
            Fatal::io(format!(
                "cannot recover the quarantine: {}",
                error_chain(&e)
            ))
        })?;
        let mut ledger = Ledger::open(&config.state_dir)
            .map_err(|e| Fatal::io(format!("cannot open the ledger: {}", error_chain(&e))))?;
        let (mut journal, entries) = Journal::open(&config.state_dir)
            .map_err(|e| Fatal::io(format!("cannot open the journal: {}", error_chain(&e))))?;
        let recovered = recover(&mut journal, &entries, &mut ledger)? as u64;
        ledger
            .compact_if_needed()
            .map_err(|e| Fatal::io(format!("cannot compact the ledger: {}", error_chain(&e))))?;
        let names = dir_names(&config.oper_dir)?;
        dayfile::settle(&config.oper_dir, &names)?;
        Ok(Engine {
            config,
            options,
            _lock: lock,
            journal,
            ledger,
            summary: Summary {
                recovered,
                ..Summary::default()
            },
            committed_archives: std::collections::BTreeSet::new(),
            trouble: None,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes a new configuration (SIGHUP). The state directory cannot change while running.
    pub fn reload(&mut self, config: Config) -> Result<(), String> {
        if config.state_dir != self.config.state_dir {
            return Err(format!(
                "state_dir cannot change while running (from {} to {}); restart instead",
                EscapedPath(&self.config.state_dir),
                EscapedPath(&config.state_dir)
            ));
        }
        let problems = preflight(&config);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        for dir in [
            &config.oper_dir,
            &config.archive_dir,
            &config.quarantine_dir,
        ] {
            publish::create_dir_all_durably(dir).map_err(|e| error_chain(&e))?;
        }
        if let Some(log_dir) = &config.log_dir {
            publish::create_dir_all_durably(log_dir).map_err(|e| error_chain(&e))?;
            crate::logging::log_to_file(log_dir, "process_argus.log")
                .map_err(|e| format!("cannot open the log: {e}"))?;
        }
        self.config = config;
        Ok(())
    }

    /// What was done since the last call, and any non-fatal trouble.
    pub fn take_summary(&mut self) -> (Summary, Option<String>) {
        (std::mem::take(&mut self.summary), self.trouble.take())
    }

    /// Scans the whole dropzone (read-only).
    pub fn scan(&mut self, now: OffsetDateTime) -> Result<Found, Fatal> {
        let found = dropzone::scan(&self.config, now)
            .map_err(|e| Fatal::io(format!("cannot scan the dropzone: {e}")))?;
        self.summary.in_flight = found.in_flight;
        self.summary.orphans = found.orphans.len() as u64;
        self.summary.foreign = found.foreign;
        Ok(found)
    }

    /// Scans one group (the daemon, on a `.rdy` event).
    pub fn scan_group(&mut self, dir: &Path, stem: &std::ffi::OsStr) -> Result<Found, Fatal> {
        dropzone::scan_group(&self.config, dir, stem)
            .map_err(|e| Fatal::io(format!("cannot scan the dropzone: {e}")))
    }

    /// Quarantines the invalid groups and ingests the complete ones, in batches, oldest first.
    pub fn ingest(&mut self, found: Found) -> Result<(), Fatal> {
        for (bad, reason) in found.invalid {
            self.quarantine(&bad, &reason);
        }
        // Batches grow from an eighth of the full size, so that the first commit, which nothing
        // overlaps, starts soon.
        let mut batches: Vec<Vec<Upload>> = Vec::new();
        let mut batch: Vec<Upload> = Vec::new();
        let mut batch_bytes = 0;
        let mut cap = (self.options.batch_uploads / 8).max(1);
        for upload in found.complete {
            batch_bytes += upload.out_len();
            batch.push(upload);
            if batch.len() >= cap || batch_bytes >= self.options.batch_bytes {
                batches.push(std::mem::take(&mut batch));
                batch_bytes = 0;
                cap = (cap * 2).min(self.options.batch_uploads);
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        // A pipeline: batches are prepared (read, checked, compressed: CPU) one after the other
        // on their own threads while earlier ones are committed (syncs, renames, unlinks: mostly
        // waiting on the disk). One prepared batch may wait while the next is prepared, so the
        // cores keep busy while a commit waits on the device; at most three batches are open.
        let config = self.config.clone();
        let config = &config;
        let threads = self.options.threads;
        self.committed_archives.clear();
        std::thread::scope(|scope| {
            let (ready, prepared) = std::sync::mpsc::sync_channel(1);
            let preparer = scope.spawn(move || {
                for batch in batches {
                    let result = prepare_all(config, batch, threads);
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
                    self.finish_batch(batch)?;
                }
                Ok(())
            })();
            drop(prepared);
            let joined = preparer
                .join()
                .map_err(|_| Fatal::io("a thread preparing uploads panicked"));
            committed.and(joined)
        })
    }

    fn stopping(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Retention of archives and compression of closed days.
    pub fn maintain(&mut self, now: OffsetDateTime) -> Result<(), Fatal> {
        self.purge(now)?;
        self.compress(now)
    }

    fn quarantine(&mut self, upload: &Bad, reason: &str) {
        match dropzone::quarantine(upload, &self.config.quarantine_dir, reason) {
            Ok(place) => {
                self.summary.quarantined += 1;
                log::warn!(
                    "quarantined {} to {}: {reason}",
                    upload.display_name(),
                    EscapedPath(&place)
                );
            }
            Err(e) => {
                let message = format!(
                    "cannot quarantine {} ({reason}): {}; it stays in the dropzone",
                    upload.display_name(),
                    error_chain(&e)
                );
                log::error!("{message}");
                self.trouble.get_or_insert(message);
            }
        }
    }

    /// Quarantines what preparing found bad, leaves out chunks already ingested, and commits.
    fn finish_batch(&mut self, prepared: Vec<Prepared>) -> Result<(), Fatal> {
        let mut good = Vec::new();
        let mut archives = std::collections::BTreeSet::new();
        for p in prepared {
            match p {
                // Prepared while an earlier batch was committed, which took the same archive
                // name (same stem in another directory): it waits in the quarantine.
                Prepared::Good(g) if self.committed_archives.contains(g.archive_dest()) => {
                    let reason = already_archived(g.archive_dest());
                    self.quarantine(&Bad::Upload(g.upload), &reason);
                }
                // Two groups of one name (in two directories) would share an archive, and the
                // journal could not tell them apart: the second waits in the quarantine.
                Prepared::Good(g) if !archives.insert(g.archive_dest().to_path_buf()) => {
                    let reason = format!(
                        "an upload of the same name, from another directory, is ingested in this pass and takes the archive {}",
                        EscapedPath(g.archive_dest())
                    );
                    self.quarantine(&Bad::Upload(g.upload), &reason);
                }
                Prepared::Good(g) => good.push(*g),
                Prepared::Bad(upload, reason) => self.quarantine(&Bad::Upload(upload), &reason),
                Prepared::Failed(upload, e) => {
                    return Err(Fatal::io(format!(
                        "cannot prepare {}: {e}",
                        upload.display_name()
                    )));
                }
            }
        }
        if good.is_empty() {
            return Ok(());
        }
        let duplicates = self.sort_out_chunks(&mut good);
        let done: Vec<(String, u64, u64, String, bool)> = good
            .iter()
            .map(|g| {
                (
                    g.upload.display_name(),
                    g.append_len(),
                    g.records,
                    g.host.to_string(),
                    g.salvaged.is_some(),
                )
            })
            .collect();
        let dup_count = duplicates.len() as u64;
        self.committed_archives
            .extend(good.iter().map(|g| g.archive_dest().to_path_buf()));
        let result = commit(
            &self.config,
            &mut self.journal,
            &mut self.ledger,
            good,
            duplicates,
        );
        match result {
            Ok(days) => {
                for (name, len, records, host, salvaged) in done {
                    if salvaged {
                        // In the quarantine (logged there), though its records were appended.
                        self.summary.quarantined += 1;
                        self.summary.bytes += len;
                        continue;
                    }
                    if len == 0 {
                        self.summary.empty += 1;
                    } else {
                        self.summary.ingested += 1;
                        self.summary.bytes += len;
                    }
                    let s = if records == 1 { "" } else { "s" };
                    log::info!(
                        "ingested {name} ({len} bytes, {records} record{s}) for host {host}"
                    );
                }
                self.summary.day_files += days;
                self.summary.duplicates += dup_count;
                Ok(())
            }
            Err(fatal) => {
                // Roll back what the journal knows right away, so nothing half done stays.
                match Journal::open(&self.config.state_dir) {
                    Ok((mut journal, entries)) => {
                        if let Err(again) = recover(&mut journal, &entries, &mut self.ledger) {
                            log::error!(
                                "rolling back after the failure failed too ({}); the next start repairs it from the journal",
                                again.message
                            );
                        }
                        self.journal = journal;
                    }
                    Err(e) => log::error!(
                        "cannot reopen the journal to roll back ({e}); the next start repairs it"
                    ),
                }
                Err(fatal)
            }
        }
    }

    /// Decides, chunk by chunk (from the manifests), what each upload appends: chunks the ledger
    /// (or an earlier upload of this batch) already has are left out and returned as duplicate
    /// facts; the rest are the upload's new chunks.
    fn sort_out_chunks(&self, good: &mut [Good]) -> Vec<Fact> {
        let mut duplicates = Vec::new();
        let mut in_batch: BTreeMap<(String, u64), String> = BTreeMap::new();
        for g in good.iter_mut() {
            if g.manifests.is_empty() {
                continue;
            }
            let mut segments: Vec<(u64, u64)> = Vec::new();
            let mut offset = 0;
            for m in &g.manifests {
                let key = (m.host.to_string(), m.seq);
                let sha = crate::ledger::short_hash(&m.sha256);
                let seen = match in_batch.get(&key) {
                    Some(known) if *known == sha => Seen::Duplicate,
                    Some(_) => Seen::Reused,
                    None => self.ledger.check(&key.0, key.1, &sha),
                };
                if seen == Seen::Reused {
                    log::warn!(
                        "{}: chunk seq {} of host {} was seen before with other content (was the sensor's state reset?); appended",
                        g.upload.display_name(),
                        m.seq,
                        m.host
                    );
                }
                if seen == Seen::Duplicate {
                    log::warn!(
                        "{}: chunk seq {} of host {} was ingested before; not appended again",
                        g.upload.display_name(),
                        m.seq,
                        m.host
                    );
                    duplicates.push(Fact::Duplicate {
                        host: key.0,
                        seq: key.1,
                    });
                } else {
                    in_batch.insert(key.clone(), sha.clone());
                    g.new_chunks.push((key.0, key.1, sha));
                    match segments.last_mut() {
                        Some(last) if last.0 + last.1 == offset => last.1 += m.bytes,
                        _ if m.bytes > 0 => segments.push((offset, m.bytes)),
                        _ => {}
                    }
                }
                offset += m.bytes;
            }
            g.segments = segments;
        }
        duplicates
    }

    fn purge(&mut self, now: OffsetDateTime) -> Result<(), Fatal> {
        let config = &self.config;
        if config.archive_days == 0 {
            return Ok(());
        }
        let entries = retention::list(&config.archive_dir)?;
        let selection = dropzone::selection(config).map_err(Fatal::io)?;
        let mut clients: Vec<String> = entries
            .iter()
            .filter_map(|e| archive_client(&e.name, &config.job))
            .filter(|c| selection.matches_client(c))
            .map(str::to_owned)
            .collect();
        clients.sort();
        clients.dedup();
        let policy = retention::Policy {
            max_age_days: config.archive_days,
            ..retention::Policy::default()
        };
        for client in clients {
            let pattern = retention::NamePattern::upload_archive(&client, &config.job)?;
            let plan = retention::plan(&entries, &pattern, &policy, now);
            for d in &plan {
                log::info!(
                    "purging archive {} (older than {} days)",
                    d.name,
                    config.archive_days
                );
            }
            self.summary.purged += retention::apply(&config.archive_dir, &plan)?.len() as u64;
        }
        Ok(())
    }

    fn compress(&mut self, now: OffsetDateTime) -> Result<(), Fatal> {
        let config = &self.config;
        let names = dir_names(&config.oper_dir)?;
        let days = dayfile::closed_days(&names, now, config.oper_compress_after_days);
        let done = dayfile::compress_days(
            &config.oper_dir,
            &days,
            config.oper_codec,
            self.options.threads,
        );
        self.summary.compressed += done.done.len() as u64;
        for (path, e) in done.failed {
            let message = format!(
                "cannot compress {}: {}",
                EscapedPath(&path),
                error_chain(&e)
            );
            log::error!("{message}");
            self.trouble.get_or_insert(message);
        }
        Ok(())
    }
}

/// `--dry-run`: what a pass would do, on stdout; changes nothing.
fn dry_run(config: &Config, now: OffsetDateTime, summary: &mut Summary) -> Result<(), Fatal> {
    let problems = preflight(config);
    if !problems.is_empty() {
        return Err(Fatal {
            code: exit::CONFIG,
            message: problems.join("; "),
        });
    }
    {
        let found = dropzone::scan(config, now)
            .map_err(|e| Fatal::io(format!("cannot scan the dropzone: {e}")))?;
        let mut out = io::stdout().lock();
        let mut say = |line: String| {
            let _ignored = writeln!(out, "{line}");
        };
        for (upload, reason) in &found.invalid {
            say(format!(
                "would quarantine {}: {reason}",
                upload.display_name()
            ));
            summary.quarantined += 1;
        }
        for upload in found.complete {
            match check_only(config, &upload) {
                Ok((host, len)) => {
                    let (day, _) = dayfile::target(&config.oper_dir, &host, upload.day());
                    if len == 0 {
                        say(format!(
                            "would archive {} (empty: nothing to append)",
                            upload.display_name()
                        ));
                        summary.empty += 1;
                    } else {
                        say(format!(
                            "would append {} ({len} bytes) to {}",
                            upload.display_name(),
                            EscapedPath(&day)
                        ));
                        summary.ingested += 1;
                        summary.bytes += len;
                    }
                }
                Err(reason) => {
                    say(format!(
                        "would quarantine {}: {reason}",
                        upload.display_name()
                    ));
                    summary.quarantined += 1;
                }
            }
        }
        for orphan in &found.orphans {
            say(format!("orphaned (no .rdy): {}", EscapedPath(orphan)));
        }
        let names = dir_names(&config.oper_dir).unwrap_or_default();
        for d in dayfile::closed_days(&names, now, config.oper_compress_after_days) {
            if config.oper_codec.compression() != Compression::None {
                say(format!("would compress {} ({})", d.name, config.oper_codec));
            }
        }
        Ok(())
    }
}

/// The client id of an archived upload's name `CLIENT_YYYYMMDDHHMMSS[_...]_JOB.out[.sfx]`.
fn archive_client<'a>(name: &'a str, job: &str) -> Option<&'a str> {
    let (base, _) = Compression::split_suffix(name);
    let stem = base.strip_suffix(".out")?;
    stem.strip_suffix(job)?.strip_suffix('_')?;
    dropzone::client_of_stem(stem)
}

fn dir_names(dir: &Path) -> Result<Vec<String>, Fatal> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| {
        Fatal::io(format!(
            "cannot read {}: {}",
            EscapedPath(dir),
            error_chain(&e)
        ))
    })? {
        let entry = entry.map_err(|e| {
            Fatal::io(format!(
                "cannot read {}: {}",
                EscapedPath(dir),
                error_chain(&e)
            ))
        })?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// An upload validated and ready to commit.
#[derive(Debug)]
struct Good {
    upload: Upload,
    host: Hostname,
    day: Date,
    out: File,
    len: u64,
    records: u64,
    /// The argus version of its last stream.
    version: Option<Version>,
    archive: Archive,
    manifests: Vec<Manifest>,
    /// Byte ranges `(offset, len)` of `.out` to append: all of it, less chunks already ingested.
    segments: Vec<(u64, u64)>,
    /// Chunks `(host, seq)` this upload brings for the first time.
    new_chunks: Vec<(String, u64, String)>,
    /// Why it goes to the quarantine after its complete records were appended (salvage).
    salvaged: Option<String>,
}

impl Good {
    fn archive_dest(&self) -> &Path {
        match &self.archive {
            Archive::Staged(s) => s.dest(),
            Archive::Move(p) => p,
        }
    }

    fn append_len(&self) -> u64 {
        self.segments.iter().map(|s| s.1).sum()
    }
}

/// How the raw upload reaches the archive.
#[derive(Debug)]
enum Archive {
    /// Compressed (or copied) into a temporary file in the archive directory.
    Staged(Staged),
    /// Renamed from the dropzone (no compression, same file system): free.
    Move(PathBuf),
}

#[derive(Debug)]
enum Prepared {
    Good(Box<Good>),
    /// Bad input: quarantine it.
    Bad(Upload, String),
    /// Our side failed (e.g. the archive disk is full): stop.
    Failed(Upload, String),
}

/// Prepares uploads on `threads` threads; results keep the uploads' order.
fn prepare_all(
    config: &Config,
    uploads: Vec<Upload>,
    threads: usize,
) -> Result<Vec<Prepared>, Fatal> {
    let started = Instant::now();
    let shared = Shared {
        config,
        publisher: Publisher::open(&config.archive_dir)?,
        archive_dev: fs::metadata(&config.archive_dir).map(|m| m.dev()).ok(),
    };
    let n = uploads.len();
    let slots: Vec<Mutex<Option<Prepared>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let inputs: Vec<Mutex<Option<Upload>>> =
        uploads.into_iter().map(|u| Mutex::new(Some(u))).collect();
    let next = AtomicUsize::new(0);
    let workers = threads.clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let Some(upload) = take(&inputs[i]) else {
                        continue;
                    };
                    let result = prepare(&shared, upload);
                    *slots[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                }
            });
        }
    });
    log::debug!("prepared {n} uploads in {:?}", started.elapsed());
    Ok(slots.into_iter().filter_map(|slot| take(&slot)).collect())
}

/// What every prepare thread shares: set up once per batch, not once per upload.
struct Shared<'a> {
    config: &'a Config,
    publisher: Publisher,
    archive_dev: Option<u64>,
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Validation common to a real pass and a dry run: the host name and the safely opened `.out`.
fn open_checked(upload: &Upload) -> Result<(Hostname, File, u64, Vec<Manifest>), String> {
    let host = upload.hostname()?;
    let manifests = upload.manifests()?;
    // Opening checks that it is the very file the scan saw, size included.
    let out = upload
        .open_out()
        .map_err(|e| format!("cannot open .out: {e}"))?;
    let len = upload.out_len();
    let claimed: u64 = manifests.iter().map(|m| m.bytes).sum();
    if !manifests.is_empty() && claimed != len {
        return Err(format!(
            "manifest claims {claimed} bytes in {} chunk(s), .out has {len}",
            manifests.len()
        ));
    }
    Ok((host, out, len, manifests))
}

fn check_only(config: &Config, upload: &Upload) -> Result<(Hostname, u64), String> {
    let (host, out, len, manifests) = open_checked(upload)?;
    let archive = config
        .archive_dir
        .join(archive_name(upload, config.archive_codec));
    if archive.exists() {
        return Err(already_archived(&archive));
    }
    let mut sink = io::sink();
    verify(&out, len, &manifests, &mut sink, false).map_err(|e| match e {
        VerifyError::Damaged {
            reason,
            valid_len,
            records,
            ..
        } if salvageable(config, &manifests, valid_len) => format!(
            "{reason}; its first {valid_len} bytes ({records} complete records) would be appended before (damaged_uploads = \"salvage\")"
        ),
        VerifyError::Bad(reason) | VerifyError::Damaged { reason, .. } => reason,
        VerifyError::Read(e) => format!("cannot read .out: {e}"),
        VerifyError::Write(e) => format!("cannot write: {e}"),
    })?;
    Ok((host, len))
}

/// Whether a damaged upload has its complete records appended: when configured, for an upload
/// without chunk manifests (a harvest_argus sensor ships a damaged chunk again instead) whose
/// data begins with whole records.
fn salvageable(config: &Config, manifests: &[Manifest], valid_len: u64) -> bool {
    config.salvage && manifests.is_empty() && valid_len > 0
}

fn archive_name(upload: &Upload, codec: Codec) -> String {
    format!("{}.out{}", upload.stem(), codec.suffix())
}

fn already_archived(archive: &Path) -> String {
    format!(
        "{} already exists: this upload looks ingested before (e.g. the journal was removed); not appended again, to avoid doubling",
        EscapedPath(archive)
    )
}

fn prepare(shared: &Shared<'_>, upload: Upload) -> Prepared {
    let config = shared.config;
    let (host, out, len, manifests) = match open_checked(&upload) {
        Ok(v) => v,
        Err(reason) => return Prepared::Bad(upload, reason),
    };
    let codec = config.archive_codec;
    let name = archive_name(&upload, codec);
    if name.len() > 255 {
        let reason = format!(
            "its archive name would be {} bytes long, more than a file name can be",
            name.len()
        );
        return Prepared::Bad(upload, reason);
    }
    // Salvage keeps the whole upload in the quarantine, so its archive must be a copy.
    let move_only = codec.compression() == Compression::None
        && !config.salvage
        && shared.archive_dev.is_some()
        && out.metadata().map(|m| m.dev()).ok() == shared.archive_dev;
    let (archive, verified) = if move_only {
        let archive_path = config.archive_dir.join(&name);
        if fs::symlink_metadata(&archive_path).is_ok() {
            let reason = already_archived(&archive_path);
            return Prepared::Bad(upload, reason);
        }
        let v = verify(&out, len, &manifests, &mut io::sink(), false);
        (Some(Archive::Move(archive_path)), v)
    } else {
        let staged = match shared.publisher.stage(&name) {
            Ok(s) => s,
            Err(argus_core::Error::Exists { path }) => {
                return Prepared::Bad(upload, already_archived(&path));
            }
            // A stem so long that its archive name cannot exist: the upload's problem, not ours.
            Err(e @ argus_core::Error::InvalidName { .. }) => {
                return Prepared::Bad(upload, format!("cannot be archived: {e}"));
            }
            Err(e) => return Prepared::Failed(upload, error_chain(&e)),
        };
        let mut staged = staged;
        let v = {
            let mut sink = io::BufWriter::with_capacity(buffer_size(len), &mut staged);
            let mut encoder = codec.encoder(&mut sink);
            let v = verify(&out, len, &manifests, &mut encoder, config.salvage);
            // A salvaged upload is archived whole, like any other.
            let archived = match &v {
                Ok(_) => true,
                Err(VerifyError::Damaged { valid_len, .. }) => {
                    salvageable(config, &manifests, *valid_len)
                }
                Err(_) => false,
            };
            let finished = archived.then(|| encoder.finish().map(drop));
            match (v, finished) {
                (v, Some(Ok(()))) => sink.flush().map_err(VerifyError::Write).and(v),
                (_, Some(Err(e))) => Err(VerifyError::Write(e)),
                (Err(e), None) => Err(e),
                (Ok(_), None) => Err(VerifyError::Write(io::Error::other("unreachable"))),
            }
        };
        (Some(Archive::Staged(staged)), v)
    };
    let mut segments = if len == 0 { Vec::new() } else { vec![(0, len)] };
    let mut salvaged = None;
    let walked = match verified {
        Ok(walked) => walked,
        Err(VerifyError::Damaged {
            reason,
            valid_len,
            records,
            version,
        }) if salvageable(config, &manifests, valid_len) => {
            segments = vec![(0, valid_len)];
            salvaged = Some(format!(
                "{reason}; its first {valid_len} bytes ({records} complete records) were appended (damaged_uploads = \"salvage\")"
            ));
            Walked { records, version }
        }
        Err(VerifyError::Bad(reason) | VerifyError::Damaged { reason, .. }) => {
            return Prepared::Bad(upload, reason);
        }
        // The .out is on our own disk and was opened fine: failing to read it (EIO) is our
        // side's failure, not the upload's. Stop; the upload waits for the next run.
        Err(VerifyError::Read(e)) => {
            return Prepared::Failed(upload, format!("cannot read its .out: {}", error_chain(&e)));
        }
        Err(VerifyError::Write(e)) => {
            return Prepared::Failed(
                upload,
                format!("cannot write the archive: {}", error_chain(&e)),
            );
        }
    };
    let Some(archive) = archive else {
        return Prepared::Failed(upload, "no archive".to_owned());
    };
    let day = upload.day();
    Prepared::Good(Box::new(Good {
        upload,
        host,
        day,
        out,
        len,
        records: walked.records,
        version: walked.version,
        archive,
        manifests,
        segments,
        new_chunks: Vec::new(),
        salvaged,
    }))
}

/// The size of an upload's read and write buffers: 256 KiB, or less for a smaller upload (most
/// are a few dozen KiB, and a zeroed buffer costs its whole size).
fn buffer_size(len: u64) -> usize {
    const MAX: usize = 256 * 1024;
    usize::try_from(len).map_or(MAX, |l| l.clamp(4096, MAX))
}

#[derive(Debug)]
enum VerifyError {
    /// The upload is bad.
    Bad(String),
    /// The argus data is damaged (or not argus data) after `valid_len` bytes of `records`
    /// complete records, whose last stream is of `version`.
    Damaged {
        reason: String,
        valid_len: u64,
        records: u64,
        version: Option<Version>,
    },
    /// Reading the upload failed.
    Read(io::Error),
    /// Writing our copy failed.
    Write(io::Error),
}

/// What walking an upload found.
#[derive(Clone, Copy, Debug)]
struct Walked {
    /// Its complete records.
    records: u64,
    /// The argus version of its last stream (`None` when it holds no record).
    version: Option<Version>,
}

/// Reads `.out` once: walks the argus records, checks each manifest chunk's SHA-256, and copies
/// the bytes to `sink` (the archive encoder).
fn verify(
    out: &File,
    len: u64,
    manifests: &[Manifest],
    sink: &mut dyn Write,
    whole: bool,
) -> Result<Walked, VerifyError> {
    let mut reader = ReadAt { file: out, pos: 0 };
    let mut walker = Walker::new();
    let mut buf = vec![0u8; buffer_size(len)];
    let mut chunk = 0;
    let mut left = manifests.first().map_or(u64::MAX, |m| m.bytes);
    let mut hasher = Sha256::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VerifyError::Read(e)),
        };
        let data = &buf[..n];
        if !walker.is_failed() {
            walker.feed(data);
            // Damaged: the rest matters only to a copy of the whole upload.
            if walker.is_failed() && !whole {
                break;
            }
        }
        if !manifests.is_empty() {
            let mut rest = data;
            while !rest.is_empty() {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                hasher.update(&rest[..take]);
                rest = &rest[take..];
                left -= take as u64;
                if left == 0 {
                    check_chunk(&manifests[chunk], &mut hasher)?;
                    chunk += 1;
                    left = manifests.get(chunk).map_or(u64::MAX, |m| m.bytes);
                }
            }
        }
        sink.write_all(data).map_err(VerifyError::Write)?;
    }
    // Zero-length chunks at the end are checked too.
    while chunk < manifests.len() && manifests[chunk].bytes == 0 {
        check_chunk(&manifests[chunk], &mut hasher)?;
        chunk += 1;
    }
    let report = walker.finish();
    if !report.is_clean() {
        let reason = match report.walk {
            // argus 2, or no argus at all: named as such, not as damage.
            Walk::Corrupt { reason, .. } if reason.is_foreign() => reason.to_string(),
            walk => format!("argus data is damaged: {walk}"),
        };
        return Err(VerifyError::Damaged {
            reason,
            valid_len: if report.starts > 0 {
                report.valid_len
            } else {
                0
            },
            records: report.records,
            version: report.version,
        });
    }
    Ok(Walked {
        records: report.records,
        version: report.version,
    })
}

fn check_chunk(m: &Manifest, hasher: &mut Sha256) -> Result<(), VerifyError> {
    let digest: [u8; 32] = std::mem::take(hasher).finalize().into();
    if digest != m.sha256 {
        return Err(VerifyError::Bad(format!(
            "chunk seq {} of host {} does not match its manifest (sha256 differs)",
            m.seq, m.host
        )));
    }
    Ok(())
}

/// Reads a file from a position without moving (or sharing) its cursor.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the given byte ranges of a file, one after the other.
struct Segments<'a> {
    file: &'a File,
    segments: &'a [(u64, u64)],
    /// Index of the current range.
    at: usize,
    /// Bytes of it already read.
    pos: u64,
}

impl Read for Segments<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, len)) = self.segments.get(self.at) {
            if self.pos == len {
                self.at += 1;
                self.pos = 0;
                continue;
            }
            let want = usize::try_from(len - self.pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = std::os::unix::fs::FileExt::read_at(
                self.file,
                &mut buf[..want],
                offset + self.pos,
            )?;
            if n == 0 {
                // The file is shorter than its manifest said: the caller notices the shortfall.
                return Ok(0);
            }
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Reads, from a stream, only the byte ranges `(offset, len)` given (sorted, not
/// overlapping), skipping the rest: the part of an upload that was appended.
struct Picked<'a, R> {
    inner: R,
    segments: &'a [(u64, u64)],
    next: usize,
    pos: u64,
}

impl<'a, R: Read> Picked<'a, R> {
    fn new(inner: R, segments: &'a [(u64, u64)]) -> Self {
        Picked {
            inner,
            segments,
            next: 0,
            pos: 0,
        }
    }
}

impl<R: Read> Read for Picked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(offset, len)) = self.segments.get(self.next) {
            if self.pos >= offset + len {
                self.next += 1;
                continue;
            }
            if self.pos < offset {
                let gap = offset - self.pos;
                let skipped = io::copy(&mut (&mut self.inner).take(gap), &mut io::sink())?;
                self.pos += skipped;
                if skipped < gap {
                    return Ok(0);
                }
                continue;
            }
            let room = usize::try_from(offset + len - self.pos).unwrap_or(usize::MAX);
            let take = room.min(buf.len());
            let n = self.inner.read(&mut buf[..take])?;
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// A day file being appended to in this batch.
struct DayTarget {
    file: File,
    compression: Compression,
    start_len: u64,
    cur_len: u64,
}

/// Steps 2-6 for validated uploads. Returns the number of day files written.
fn commit(
    config: &Config,
    journal: &mut Journal,
    ledger: &mut Ledger,
    good: Vec<Good>,
    duplicates: Vec<Fact>,
) -> Result<u64, Fatal> {
    // Where each upload goes, and the size its day file will have before it.
    let mut targets: BTreeMap<PathBuf, DayTarget> = BTreeMap::new();
    let mut entries = Vec::with_capacity(good.len());
    let mut plan: Vec<Option<PathBuf>> = Vec::with_capacity(good.len());
    // Which file a (host, day) goes to is looked up once per batch.
    let mut chosen: BTreeMap<(&Hostname, Date), (PathBuf, Compression)> = BTreeMap::new();
    for g in &good {
        let archive = match &g.archive {
            Archive::Staged(s) => s.dest().to_path_buf(),
            Archive::Move(p) => p.clone(),
        };
        let day = if g.append_len() == 0 {
            None
        } else {
            let (path, compression) = chosen
                .entry((&g.host, g.day))
                .or_insert_with(|| dayfile::target(&config.oper_dir, &g.host, g.day))
                .clone();
            if !targets.contains_key(&path) {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| {
                        Fatal::io(format!(
                            "cannot open {}: {}",
                            EscapedPath(&path),
                            error_chain(&e)
                        ))
                    })?;
                let len = file
                    .metadata()
                    .map_err(|e| {
                        Fatal::io(format!(
                            "cannot stat {}: {}",
                            EscapedPath(&path),
                            error_chain(&e)
                        ))
                    })?
                    .len();
                targets.insert(
                    path.clone(),
                    DayTarget {
                        file,
                        compression,
                        start_len: len,
                        cur_len: len,
                    },
                );
            }
            Some(path)
        };
        let size_before = match &day {
            None => 0,
            Some(path) => {
                let t = targets
                    .get_mut(path)
                    .ok_or_else(|| Fatal::io("day file vanished"))?;
                if t.compression == Compression::None {
                    let before = t.cur_len;
                    t.cur_len += g.append_len();
                    before
                } else {
                    // A compressed member's size is unknown until written: the batch start is
                    // a safe (smaller) bound; see journal::plan_recovery.
                    t.start_len
                }
            }
        };
        entries.push(Entry {
            rdy: g.upload.rdy_path().to_path_buf(),
            out: g.upload.out_path().to_path_buf(),
            day: day.clone(),
            size_before,
            archive,
            client: g.upload.client().to_owned(),
            at: g.upload.uploaded_at().unix_timestamp(),
            bytes: g.append_len(),
            chunks: g.new_chunks.clone(),
            segments: g.segments.clone(),
            version: g.version.map(Version::number),
        });
        plan.push(day);
    }
    let started = Instant::now();
    let lap = |what: &str| log::debug!("commit: {what} after {:?}", started.elapsed());
    journal
        .record(&entries)
        .map_err(|e| Fatal::io(format!("cannot write the journal: {}", error_chain(&e))))?;
    failpoint::hit("journaled");
    lap("journaled");

    for (g, day) in good.iter().zip(&plan) {
        let Some(day) = day else { continue };
        let t = targets
            .get(day)
            .ok_or_else(|| Fatal::io("day file vanished"))?;
        // Exactly the bytes that were checked: an .out that grew since (a writer that went on
        // after .rdy) must not bring unchecked bytes into the day file, and one that shrank
        // must not leave a partial chunk there.
        let whole = g.segments == [(0, g.len)];
        let want = g.append_len();
        let appended = if t.compression == Compression::None && whole {
            append_file_exact(&t.file, &g.out, g.len)
        } else {
            let codec = if t.compression == Compression::None {
                Codec::NONE
            } else if config.oper_codec.compression() == t.compression {
                config.oper_codec
            } else {
                t.compression.codec()
            };
            let checked = Segments {
                file: &g.out,
                segments: &g.segments,
                at: 0,
                pos: 0,
            };
            append_encoded_exact(&t.file, checked, codec, want)
        };
        appended.map_err(|e| {
            Fatal::io(format!(
                "cannot append {} to {}: {}",
                g.upload.display_name(),
                EscapedPath(day),
                error_chain(&e)
            ))
        })?;
        failpoint::hit("appended");
    }
    // Archives: staged ones in one batch (their data synced together, one directory sync),
    // moves by rename. A large batch syncs its file system once (syncfs), which measured
    // clearly faster than many file syncs; a small one (the daemon's usual batch) syncs its
    // files, so as not to wait for other writers' dirty data on the same file system.
    let staged = good
        .iter()
        .filter(|g| matches!(g.archive, Archive::Staged(_)))
        .count();
    let sync = if staged >= 16 {
        SyncMode::FileSystem
    } else {
        SyncMode::EachFile
    };
    // The day files' data must be durable before any archive is in place (recovery takes an
    // archived upload as complete). When they share the archives' file system, the syncfs
    // below, which comes before the renames, makes them so; otherwise each is synced here.
    let archive_dev = fs::metadata(&config.archive_dir).map(|m| m.dev()).ok();
    let covered = sync == SyncMode::FileSystem
        && targets.values().all(|t| {
            archive_dev.is_some() && t.file.metadata().ok().map(|m| m.dev()) == archive_dev
        });
    if !covered {
        for (path, t) in &targets {
            t.file.sync_data().map_err(|e| {
                Fatal::io(format!(
                    "cannot sync {}: {}",
                    EscapedPath(path),
                    error_chain(&e)
                ))
            })?;
        }
    }
    failpoint::hit("synced");
    lap("appended and synced");
    let publisher = Publisher::open(&config.archive_dir)?.with_sync(sync);
    let mut batch = publisher.batch();
    let mut moves = Vec::new();
    let mut uploads = Vec::with_capacity(good.len());
    let mut salvaged = Vec::new();
    for g in good {
        let Good {
            upload,
            archive,
            salvaged: why,
            ..
        } = g;
        match archive {
            Archive::Staged(staged) => batch.add(staged),
            Archive::Move(dest) => moves.push((upload.out_path().to_path_buf(), dest)),
        }
        match why {
            Some(reason) => salvaged.push((upload, reason)),
            None => uploads.push(upload),
        }
    }
    let report = batch.commit()?;
    if let Some((path, e)) = report.failed.into_iter().next() {
        return Err(Fatal::io(format!(
            "cannot archive {}: {}",
            EscapedPath(&path),
            error_chain(&e)
        )));
    }
    for (from, to) in &moves {
        publish::rename_noreplace(from, to)?;
        failpoint::hit("archived");
    }
    if !moves.is_empty() {
        publisher.sync_dir()?;
    }
    failpoint::hit("archives-durable");
    lap("archived");

    // The ledger learns of the batch as soon as it is committed (every archive durable), before
    // the groups are removed and before the journal forgets it. A crash after this makes recovery
    // record the (idempotent) chunk and upload facts again; duplicates are not in the journal,
    // so recording them only after the removals would lose their count in a crash there.
    let mut facts: Vec<Fact> = entries.iter().flat_map(Entry::facts).collect();
    facts.extend(duplicates);
    ledger
        .record(&facts)
        .map_err(|e| Fatal::io(format!("cannot write the ledger: {}", error_chain(&e))))?;
    failpoint::hit("ledgered");
    lap("ledgered");

    // Remove the groups (.rdy last in each), then sync each directory once. Unlinking waits on
    // the device on some file systems (online discard), so it runs on several threads; the order
    // across groups does not matter to recovery, which judges each upload on its own.
    remove_all(&uploads)?;
    // A salvaged upload goes to the quarantine whole. Should that fail, it is removed like the
    // others: its archive holds it whole too.
    for (upload, reason) in salvaged {
        let name = upload.display_name();
        let bad = Bad::Upload(upload);
        match dropzone::quarantine(&bad, &config.quarantine_dir, &reason) {
            Ok(place) => log::warn!(
                "salvaged {name}: {reason}; moved to {}",
                EscapedPath(&place)
            ),
            Err(e) => {
                log::error!(
                    "cannot quarantine the salvaged {name} ({}); removed, its archive keeps it whole",
                    error_chain(&e)
                );
                if let Bad::Upload(upload) = bad {
                    dropzone::remove_parts(&upload)?;
                    uploads.push(upload);
                }
            }
        }
    }
    lap("removed");
    let mut dirs: Vec<PathBuf> = Vec::new();
    for upload in &uploads {
        let dir = upload.dir().to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        publish::sync_dir(dir)?;
    }
    journal
        .clear()
        .map_err(|e| Fatal::io(format!("cannot clear the journal: {}", error_chain(&e))))?;
    Ok(targets.len() as u64)
}

/// Raises the process's soft limit on open files to its hard limit (at most 65,536): a cron job
/// or a service starts with a soft limit of 1,024, far below what the kernel allows it, and a
/// pass sizes its batches by it ([`Engine::start`]). For the program's `main`: a library that
/// embeds the engine keeps its own limits.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const ENOUGH: u64 = 1 << 16;
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(ENOUGH);
        if want > soft
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard)
        {
            log::debug!("cannot raise the open-file limit from {soft} to {want}: {e}");
        }
    }
}

/// The soft limit on open files (1,024 when it cannot be read).
fn open_file_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

/// How many uploads a batch may hold so that the pipeline stays within `limit` open files: up
/// to three batches are open at once (one committing, one prepared, one being prepared), each
/// upload with two files (its `.out` and its staged archive) and, while committing, a day file
/// of its own at worst; plus a margin for everything else.
fn uploads_within(limit: u64) -> usize {
    const MARGIN: u64 = 64;
    usize::try_from(limit.saturating_sub(MARGIN) / 7)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Removes finished groups on several threads; the first error is returned after all stopped.
/// An unlink mostly waits (for the device, with online discard), so more threads than cores
/// pay: 16 measured clearly faster than 4 for a batch of 256 uploads.
fn remove_all(uploads: &[Upload]) -> Result<(), Fatal> {
    const THREADS: usize = 16;
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<webjob_drop::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(uploads.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(upload) = uploads.get(i) else { break };
                    if let Err(e) = dropzone::remove_parts(upload) {
                        failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert(e);
                        break;
                    }
                    failpoint::hit("removed");
                }
            });
        }
    });
    match failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Acts on the journal of an interrupted run (see [`journal::plan_recovery`]). Returns the number
/// of uploads it concerned.
fn recover(journal: &mut Journal, entries: &[Entry], ledger: &mut Ledger) -> Result<usize, Fatal> {
    if entries.is_empty() {
        journal
            .clear()
            .map_err(|e| Fatal::io(format!("cannot clear the journal: {}", error_chain(&e))))?;
        return Ok(0);
    }
    let plan = journal::plan_recovery(entries, |e| Facts {
        rdy_present: fs::symlink_metadata(&e.rdy).is_ok(),
        out_present: fs::symlink_metadata(&e.out).is_ok(),
        archived: fs::symlink_metadata(&e.archive).is_ok(),
    });
    // Day files are opened as a pass opens them: a symlink put in place of one is refused,
    // never followed (its target is not ours to truncate or append to).
    for (path, size) in &plan.truncate {
        match OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if len > *size {
                    log::warn!(
                        "recovery: truncating {} from {len} back to {size} bytes (an interrupted append)",
                        EscapedPath(path)
                    );
                }
                truncate_back(&file, *size).map_err(|e| {
                    Fatal::io(format!(
                        "cannot truncate {}: {}",
                        EscapedPath(path),
                        error_chain(&e)
                    ))
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Fatal::io(format!(
                    "cannot open {}: {}",
                    EscapedPath(path),
                    error_chain(&e)
                )));
            }
        }
    }
    for (day, source, segments) in &plan.reappend {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(day)
            .map_err(|e| {
                Fatal::io(format!(
                    "cannot open {}: {}",
                    EscapedPath(day),
                    error_chain(&e)
                ))
            })?;
        let (_, compression) = Compression::split_suffix(&day.to_string_lossy());
        let codec = if compression == Compression::None {
            Codec::NONE
        } else {
            compression.codec()
        };
        // Exactly the ranges appended the first time: chunks ingested before (a reshipped
        // chunk) were left out then and stay out now.
        let source: io::Result<Box<dyn Read>> = match source {
            Source::Out(out) => OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(out)
                .map(|f| Box::new(f) as Box<dyn Read>),
            Source::Archive(archive) => open_decoded(archive)
                .map(|d| Box::new(d) as Box<dyn Read>)
                .map_err(|e| io::Error::other(e.to_string())),
        };
        let want: u64 = segments.iter().map(|s| s.1).sum();
        let result = source
            .and_then(|src| append_encoded_exact(&file, Picked::new(src, segments), codec, want));
        result.map_err(|e| {
            Fatal::io(format!(
                "cannot re-append to {}: {}",
                EscapedPath(day),
                error_chain(&e)
            ))
        })?;
        file.sync_data().map_err(|e| {
            Fatal::io(format!(
                "cannot sync {}: {}",
                EscapedPath(day),
                error_chain(&e)
            ))
        })?;
        log::warn!(
            "recovery: appended again to {} data cut off by the rollback",
            EscapedPath(day)
        );
    }
    for e in &plan.lost {
        log::error!(
            "recovery: the data of {} is in neither the dropzone nor the archive; it cannot be restored",
            EscapedPath(&e.rdy)
        );
    }
    for e in &plan.remove {
        dropzone::remove_by_rdy(&e.rdy)?;
        log::info!("recovery: finished removing {}", EscapedPath(&e.rdy));
    }
    // Uploads that completed are known to the ledger (again: recording is idempotent).
    let facts: Vec<Fact> = entries
        .iter()
        .filter(|e| !plan.redo.contains(e))
        .flat_map(Entry::facts)
        .collect();
    ledger
        .record(&facts)
        .map_err(|e| Fatal::io(format!("cannot write the ledger: {}", error_chain(&e))))?;
    for e in &plan.redo {
        log::warn!(
            "recovery: rolled back the interrupted ingest of {}; it stays in the dropzone and is ingested again",
            EscapedPath(&e.rdy)
        );
    }
    journal
        .clear()
        .map_err(|e| Fatal::io(format!("cannot clear the journal: {}", error_chain(&e))))?;
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_reads_only_the_ranges_given() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut out = Vec::new();
        // A reader that hands out 3 bytes at a time, like a decoder may.
        let slow = SlowReader(&data[..]);
        Picked::new(slow, &[(0, 5), (10, 2), (97, 10)])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, [0, 1, 2, 3, 4, 10, 11, 97, 98, 99]);
        let mut none = Vec::new();
        Picked::new(&data[..], &[])
            .read_to_end(&mut none)
            .expect("read");
        assert!(none.is_empty());
    }

    struct SlowReader<'a>(&'a [u8]);

    impl Read for SlowReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_failure_is_ours_not_the_uploads() {
        // A descriptor whose reads fail (a directory gives EISDIR; a failing disk EIO).
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::open(dir.path()).expect("open");
        let verified = verify(&file, 128, &[], &mut io::sink(), false);
        assert!(
            matches!(verified, Err(VerifyError::Read(_))),
            "{verified:?}"
        );
    }

    #[test]
    fn archive_names_give_their_client() {
        let job = "harvest_argus";
        assert_eq!(
            archive_client("client1_20261127000000_harvest_argus.out.gz", job),
            Some("client1")
        );
        assert_eq!(
            archive_client("site_2_20261127000000_4242_harvest_argus.out", job),
            Some("site_2")
        );
        assert_eq!(
            archive_client("a.b-c_20261127000000_x_y_harvest_argus.out.xz", job),
            Some("a.b-c")
        );
        assert_eq!(
            archive_client("client1_20261127000000_other.out.gz", job),
            None
        );
        assert_eq!(
            archive_client("client1_2026112700000_harvest_argus.out", job),
            None
        );
        assert_eq!(
            archive_client("_20261127000000_harvest_argus.out", job),
            None
        );
    }
}
