//! The dropzone daemon: ingest each upload as soon as its `.rdy` lands.
//!
//! It holds the same lock as a one-pass run for its whole life, so cron and the daemon never
//! work at the same time. inotify (through `notify`) reports each `.rdy` as it lands and the
//! group is ingested at once, by the same exactly-once path as a pass. inotify can miss events
//! (queue overflow, a dropzone on NFS, a watch limit), so the whole dropzone is also rescanned at
//! start, on overflow, and every `rescan_interval`. Retention and compression run at start and
//! then hourly. The follow-on stages run on their own workers, beside the ingest.
//!
//! The program that runs it keeps the process-wide matters: it gives [`Control`]s to whatever
//! stops the daemon or brings a new configuration (process_argus: SIGTERM, SIGINT and SIGHUP),
//! and an [`Observer`] hears of each batch (process_argus writes its metrics) and each reload.
//! A stop takes effect between two batches, never in the middle of one; a new configuration the
//! engine cannot take is reported and the old one kept.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_core::escape::EscapedPath;
use notify::{RecursiveMode, Watcher};
use time::OffsetDateTime;

use crate::config::Config;
use crate::engine::{Engine, Options};
use crate::error::{Action, Error, Store, error_chain};
use crate::hooks;
use crate::report::Summary;

/// How often retention and compression run.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// How long to wait before trying again after an I/O failure (a full disk, say).
const RETRY_AFTER: Duration = Duration::from_secs(10);

enum Msg {
    Fs(notify::Result<notify::Event>),
    Reload(Box<Config>),
    Stop,
}

/// Stops a [`Watch`] or gives it a new configuration, from any thread.
#[derive(Clone, Debug)]
pub struct Control {
    tx: mpsc::Sender<Msg>,
    stop: Arc<AtomicBool>,
}

impl Control {
    /// Asks the daemon to stop after the batch in hand.
    pub fn stop(&self) {
        // Seen by the ingest loop between batches, even while the daemon is busy.
        self.stop.store(true, Ordering::SeqCst);
        let _ignored = self.tx.send(Msg::Stop);
    }

    /// Gives the daemon a new configuration, taken between two batches (or refused, and the old
    /// one kept: a different `state_dir`, a dropzone that is gone).
    pub fn reload(&self, config: Config) {
        let _ignored = self.tx.send(Msg::Reload(Box::new(config)));
    }
}

/// Hears what a running [`Watch`] does.
pub trait Observer {
    /// What was done since the last call (at least every batch that did something, and once
    /// at the end with `last`).
    fn batch(&mut self, config: &Config, summary: Summary, last: bool) {
        let _unused = (config, summary, last);
    }

    /// A new configuration is in use.
    fn reloaded(&mut self, config: &Config) {
        let _unused = config;
    }
}

/// An [`Observer`] that does nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// A daemon about to run: hand out its [`Control`]s, then [`Watch::run`] it.
#[derive(Debug)]
pub struct Watch {
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    stop: Arc<AtomicBool>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new()
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Fs(_) => f.write_str("Fs"),
            Msg::Reload(_) => f.write_str("Reload"),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

impl Watch {
    /// A daemon, not yet running.
    pub fn new() -> Watch {
        let (tx, rx) = mpsc::channel();
        Watch {
            tx,
            rx,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A handle to stop it or reload it from elsewhere.
    pub fn control(&self) -> Control {
        Control {
            tx: self.tx.clone(),
            stop: Arc::clone(&self.stop),
        }
    }

    /// Runs the daemon until a [`Control::stop`]: takes the lock (waiting for a pass that holds
    /// it), recovers, then ingests, maintains and runs hooks as uploads arrive.
    pub fn run(
        self,
        config: Config,
        options: Options,
        observer: &mut dyn Observer,
    ) -> Result<(), Error> {
        run(self, config, options, observer)
    }
}

fn run(
    watch: Watch,
    config: Config,
    mut options: Options,
    observer: &mut dyn Observer,
) -> Result<(), Error> {
    let Watch { tx, rx, stop } = watch;
    options.wait = true;
    options.stop = Some(Arc::clone(&stop));
    log::info!("starting: watching {}", EscapedPath(&config.drop_dir));
    let mut engine = Engine::start(config, options)?;
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
    let mut watcher = start_watcher(&engine, tx).map_err(|e| Error::Store {
        action: Action::Watch,
        store: Store::Dropzone,
        source: e.into(),
    })?;

    let mut metrics = Throttle::default();
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
                Ok(msg) => rescan |= handle(msg, &mut engine, observer, &mut pending, &mut watcher),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            // Take everything that arrived meanwhile, so a burst is one batch.
            while let Ok(msg) = rx.try_recv() {
                rescan |= handle(msg, &mut engine, observer, &mut pending, &mut watcher);
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        let result = if rescan || Instant::now() >= next_rescan {
            pending.clear();
            next_rescan = Instant::now() + engine.config().rescan_interval;
            engine.drain(OffsetDateTime::now_utc(), |found| {
                for orphan in &found.orphans {
                    if reported_orphans.insert(orphan.clone()) {
                        log::warn!(
                            "orphaned upload data without .rdy (a failed upload?): {}",
                            EscapedPath(orphan)
                        );
                    }
                }
                reported_orphans.retain(|o| found.orphans.contains(o));
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
        metrics.add(report(&mut engine), engine.config(), false, observer);
        *policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine.config().hooks.clone();
        bell.ring();
    }
    metrics.add(report(&mut engine), engine.config(), true, observer);
    stop.store(true, Ordering::SeqCst);
    bell.ring();
    if workers.join().is_err() {
        log::error!("a hook worker panicked");
    }
    log::info!("stopping on request");
    Ok(())
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
    observer: &mut dyn Observer,
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
        Msg::Reload(config) => {
            reload(engine, *config, observer, watcher);
            true
        }
        Msg::Stop => false,
    }
}

fn reload(
    engine: &mut Engine,
    config: Config,
    observer: &mut dyn Observer,
    watcher: &mut notify::RecommendedWatcher,
) {
    let old_drop = engine.config().drop_dir.clone();
    match engine.reload(config) {
        Ok(()) => {
            log::info!("reloaded the configuration");
            observer.reloaded(engine.config());
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
        Err(why) => log::error!(
            "the new configuration is not used ({}); keeping the old one",
            error_chain(&why)
        ),
    }
}

/// Ingests the groups named by `.rdy` events, oldest first, as one batch.
fn ingest_groups(engine: &mut Engine, groups: &BTreeSet<(PathBuf, OsString)>) -> Result<(), Error> {
    let found = engine.scan_groups(groups.iter().map(|(d, s)| (d.as_path(), s.as_os_str())));
    engine.ingest(found)
}

fn failed(fatal: &Error, metrics: &mut Throttle) {
    let message = error_chain(fatal);
    log::error!("{message}; trying again in {} s", RETRY_AFTER.as_secs());
    metrics.counted.failed.get_or_insert(message);
}

/// Batches counted together and told to the observer at most every [`TELL_EVERY`], so that
/// a burst of small batches is one report (process_argus writes its metrics file on each).
#[derive(Default)]
struct Throttle {
    counted: Summary,
    told: Option<Instant>,
}

/// How often the observer hears of batches at most.
const TELL_EVERY: Duration = Duration::from_secs(10);

impl Throttle {
    /// When counted batches are to be told (none waiting: `None`).
    fn deadline(&self) -> Option<Instant> {
        let waiting = self.counted != Summary::default();
        self.told.filter(|_| waiting).map(|w| w + TELL_EVERY)
    }

    fn add(&mut self, summary: Summary, config: &Config, last: bool, observer: &mut dyn Observer) {
        self.counted.absorb(&summary);
        if !last && self.told.is_some_and(|w| w.elapsed() < TELL_EVERY) {
            return;
        }
        observer.batch(config, std::mem::take(&mut self.counted), last);
        self.told = Some(Instant::now());
    }
}

fn report(engine: &mut Engine) -> Summary {
    let (mut summary, trouble) = engine.take_summary();
    if let Some(t) = trouble {
        summary.failed.get_or_insert(error_chain(&t));
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
