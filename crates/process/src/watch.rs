//! `process_argus watch`: the dropzone daemon.
//!
//! It holds the same lock as a one-pass run for its whole life, so cron and the daemon never
//! work at the same time. inotify (through `notify`) reports each `.rdy` as it lands and the
//! group is ingested at once, by the same exactly-once path as a pass. inotify can miss events
//! (queue overflow, a dropzone on NFS, a watch limit), so the whole dropzone is also rescanned at
//! start, on overflow, and every `rescan_interval`. Retention and compression run at start and
//! then hourly.
//!
//! Signals are blocked in every thread and read from a `signalfd`: SIGTERM and SIGINT stop the
//! daemon between two batches (never in the middle of one), SIGHUP reloads the configuration (a
//! bad one is reported and the old one kept).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_core::escape::EscapedPath;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use notify::{RecursiveMode, Watcher};
use time::OffsetDateTime;

use crate::config::{self, Config};
use crate::engine::{Engine, Fatal, Options};
use crate::exit::Exit;
use argus_ingest::dropzone::Scanned;
use argus_ingest::hooks;

/// How often retention and compression run.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// How long to wait before trying again after an I/O failure (a full disk, say).
const RETRY_AFTER: Duration = Duration::from_secs(10);

enum Msg {
    Fs(notify::Result<notify::Event>),
    Signal(Signal),
}

/// Runs the daemon until SIGTERM or SIGINT. Returns the exit status.
pub(crate) fn run(config_path: &Path, config: Config, mut options: Options) -> Exit {
    // Block the signals before any thread exists, so every thread inherits the mask and the
    // signalfd below is their only way in.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        log::error!("cannot block signals: {e}");
        return Exit::Io;
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot read signals: {e}");
            return Exit::Io;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Msg>();
    {
        let tx = tx.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while let Ok(Some(info)) = signals.read_signal() {
                let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) else {
                    continue;
                };
                if matches!(sig, Signal::SIGTERM | Signal::SIGINT) {
                    // Seen by the ingest loop between batches, even while the main thread is busy.
                    stop.store(true, Ordering::SeqCst);
                }
                if tx.send(Msg::Signal(sig)).is_err() {
                    break;
                }
            }
        });
    }

    options.wait = true;
    options.stop = Some(Arc::clone(&stop));
    log::info!("starting: watching {}", EscapedPath(&config.drop_dir));
    let mut engine = match Engine::start(config, options) {
        Ok(engine) => engine,
        Err(fatal) => {
            log::error!("{}", fatal.message);
            return fatal.exit;
        }
    };
    // The follow-on stages run on their own workers, beside the ingest.
    let policy = Arc::new(std::sync::Mutex::new(engine.config().hooks.clone()));
    let bell = Arc::new(hooks::Bell::default());
    let workers = {
        let (queue, policy, stop, bell) = (
            engine.hook_queue().clone(),
            Arc::clone(&policy),
            Arc::clone(&stop),
            Arc::clone(&bell),
        );
        std::thread::spawn(move || {
            hooks::drain(&queue, &policy, hooks::Until::Stopped, &stop, &bell)
        })
    };
    let mut watcher = match start_watcher(&engine, tx) {
        Ok(w) => w,
        Err(e) => {
            log::error!("cannot watch the dropzone: {e}");
            return Exit::Io;
        }
    };

    let mut metrics = Metrics::default();
    let mut next_rescan = Instant::now();
    let mut next_maintenance = Instant::now();
    let mut pending: BTreeSet<(PathBuf, OsString)> = BTreeSet::new();
    let mut reported_orphans: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let now = Instant::now();
        let mut rescan = now >= next_rescan;
        let due = rescan || now >= next_maintenance || !pending.is_empty();
        if !due {
            let wait = next_rescan
                .min(next_maintenance)
                .min(metrics.deadline().unwrap_or(next_rescan))
                .saturating_duration_since(now);
            match rx.recv_timeout(wait) {
                Ok(msg) => {
                    rescan |= handle(msg, &mut engine, config_path, &mut pending, &mut watcher)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            // Take everything that arrived meanwhile, so a burst is one batch.
            while let Ok(msg) = rx.try_recv() {
                rescan |= handle(msg, &mut engine, config_path, &mut pending, &mut watcher);
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        let result = if rescan || Instant::now() >= next_rescan {
            pending.clear();
            next_rescan = Instant::now() + engine.config().rescan_interval;
            engine.scan(OffsetDateTime::now_utc()).and_then(|found| {
                for orphan in &found.orphans {
                    if reported_orphans.insert(orphan.clone()) {
                        log::warn!(
                            "orphaned upload data without .rdy (a failed upload?): {}",
                            EscapedPath(orphan)
                        );
                    }
                }
                reported_orphans.retain(|o| found.orphans.contains(o));
                engine.ingest(found)
            })
        } else if !pending.is_empty() {
            let groups = std::mem::take(&mut pending);
            ingest_groups(&mut engine, &groups)
        } else {
            Ok(())
        };
        if let Err(fatal) = result {
            failed(&fatal, &mut metrics);
            next_rescan = Instant::now() + RETRY_AFTER;
        }
        if Instant::now() >= next_maintenance {
            next_maintenance = Instant::now() + MAINTENANCE_INTERVAL;
            if let Err(fatal) = engine.maintain(OffsetDateTime::now_utc()) {
                failed(&fatal, &mut metrics);
            }
        }
        metrics.add(report(&mut engine), engine.config(), false);
        *policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine.config().hooks.clone();
        bell.ring();
    }
    metrics.add(report(&mut engine), engine.config(), true);
    stop.store(true, Ordering::SeqCst);
    bell.ring();
    if workers.join().is_err() {
        log::error!("a hook worker panicked");
    }
    log::info!("stopping on request");
    Exit::Ok
}

fn start_watcher(
    engine: &Engine,
    tx: mpsc::Sender<Msg>,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ignored = tx.send(Msg::Fs(event));
    })?;
    let config = engine.config();
    let mode = if config.scan_depth > 0 {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(&config.drop_dir, mode)?;
    Ok(watcher)
}

/// Handles one message; returns true when a full rescan is needed.
fn handle(
    msg: Msg,
    engine: &mut Engine,
    config_path: &Path,
    pending: &mut BTreeSet<(PathBuf, OsString)>,
    watcher: &mut notify::RecommendedWatcher,
) -> bool {
    match msg {
        Msg::Fs(Ok(event)) => {
            if event.need_rescan() {
                log::warn!("the event queue overflowed: rescanning the dropzone");
                return true;
            }
            // A group is complete once its .rdy exists and the server has removed its .lck.
            for path in &event.paths {
                if path.extension().is_some_and(|e| e == "rdy" || e == "lck")
                    && let (Some(dir), Some(stem)) = (path.parent(), path.file_stem())
                {
                    pending.insert((dir.to_path_buf(), stem.to_os_string()));
                }
            }
            false
        }
        Msg::Fs(Err(e)) => {
            log::warn!("watching the dropzone: {e}; rescanning");
            true
        }
        Msg::Signal(Signal::SIGHUP) => {
            reload(engine, config_path, watcher);
            true
        }
        Msg::Signal(_) => false,
    }
}

fn reload(engine: &mut Engine, config_path: &Path, watcher: &mut notify::RecommendedWatcher) {
    let old_drop = engine.config().drop_dir.clone();
    match config::load(config_path) {
        Ok((config, _)) => match engine.reload(config) {
            Ok(()) => {
                log::info!(
                    "reloaded the configuration from {}",
                    EscapedPath(config_path)
                );
                let new_drop = engine.config().drop_dir.clone();
                if new_drop != old_drop {
                    let _ignored = watcher.unwatch(&old_drop);
                    let mode = if engine.config().scan_depth > 0 {
                        RecursiveMode::Recursive
                    } else {
                        RecursiveMode::NonRecursive
                    };
                    if let Err(e) = watcher.watch(&new_drop, mode) {
                        log::error!("cannot watch {}: {e}", EscapedPath(&new_drop));
                    }
                }
            }
            Err(why) => {
                log::error!("the new configuration is not used ({why}); keeping the old one")
            }
        },
        Err(e) => log::error!("the new configuration is not used; keeping the old one: {e}"),
    }
}

/// Ingests the groups named by `.rdy` events, oldest first, as one batch.
fn ingest_groups(engine: &mut Engine, groups: &BTreeSet<(PathBuf, OsString)>) -> Result<(), Fatal> {
    let mut found = Scanned::default();
    for (dir, stem) in groups {
        match engine.scan_group(dir, stem) {
            Ok(f) => {
                found.complete.extend(f.complete);
                found.invalid.extend(f.invalid);
            }
            // A group in a directory outside the scan depth, or gone already: the rescan judges.
            Err(fatal) => log::debug!("{}", fatal.message),
        }
    }
    found
        .complete
        .sort_by(|a, b| (a.uploaded_at(), a.stem()).cmp(&(b.uploaded_at(), b.stem())));
    engine.ingest(found)
}

fn failed(fatal: &Fatal, metrics: &mut Metrics) {
    metrics.counted.failed.get_or_insert(fatal.message.clone());
    log::error!(
        "{}; trying again in {} s",
        fatal.message,
        RETRY_AFTER.as_secs()
    );
}

/// The daemon's metrics: batches counted together, written at most every [`METRICS_EVERY`].
#[derive(Default)]
struct Metrics {
    counted: argus_ingest::report::Summary,
    written: Option<Instant>,
}

/// How often the daemon writes its metrics at most.
const METRICS_EVERY: Duration = Duration::from_secs(10);

impl Metrics {
    /// When counted batches are to be written (none waiting: `None`).
    fn deadline(&self) -> Option<Instant> {
        let waiting = self.counted != argus_ingest::report::Summary::default();
        self.written.filter(|_| waiting).map(|w| w + METRICS_EVERY)
    }

    fn add(&mut self, summary: argus_ingest::report::Summary, config: &Config, flush: bool) {
        self.counted.absorb(&summary);
        if !flush && self.written.is_some_and(|w| w.elapsed() < METRICS_EVERY) {
            return;
        }
        let counted = std::mem::take(&mut self.counted);
        let ok = counted.failed.is_none();
        crate::metrics::after_run(config, Some((&counted, ok)), OffsetDateTime::now_utc());
        self.written = Some(Instant::now());
    }
}

fn report(engine: &mut Engine) -> argus_ingest::report::Summary {
    let (mut summary, trouble) = engine.take_summary();
    if let Some(t) = trouble {
        log::error!("{t}");
        summary.failed.get_or_insert(t);
    }
    let busy = summary.ingested
        + summary.empty
        + summary.quarantined
        + summary.purged
        + summary.compressed
        + summary.recovered;
    if busy > 0 {
        log::info!("{}", summary.text());
    }
    summary
}
