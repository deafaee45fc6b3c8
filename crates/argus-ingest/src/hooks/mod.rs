//! Follow-on stages: the site's commands run when data lands (`[[hook]]` in the configuration),
//! at least once and never early.
//!
//! An event is queued durably ([`Queue`]) in the step that makes its data durable, before
//! anything it refers to can change: an `ingested` event once its upload's bytes are durable in
//! the day file and the archive (before any group is removed; recovery queues it again from the
//! journal after a crash), a `day_closed` event before the day file is compressed (it runs once
//! the compressed file is in place), a `quarantined` event once the group is in the quarantine.
//! An event leaves the queue only when its command exited 0. A run that fails or times out is
//! tried again after `hook_retry_delay` (1 minute), doubling to 1 hour; after `hook_attempts` runs it is kept as
//! failed for `hooks list` and `hooks retry`, and `status` reports it.
//!
//! Workers ([`drain`]) take due events in turn; an event being run is locked, so no two runners,
//! in one process or in two, run it at once. A cron pass drains within `hook_budget`; the daemon
//! keeps `hook_concurrency` workers beside its ingest.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use argus_core::escape::Escaped;
use time::OffsetDateTime;

use crate::config::{Event, HookPolicy};

mod events;
mod queue;
mod run;

pub use events::{day_closed, events, ingested, sensor_health, unannounced};
pub use queue::{Claim, Listing, Queue, Queued};
pub use run::Ran;

/// The delay before the next run after `attempts` failed runs: `base` (`hook_retry_delay`,
/// 1 minute by default), doubling with each failed run, at most 1 hour.
pub fn retry_delay(attempts: u32, base: Duration) -> i64 {
    let base = i64::try_from(base.as_secs()).unwrap_or(3600).clamp(1, 3600);
    let doublings = attempts.saturating_sub(1).min(12);
    (base << doublings).min(3600)
}

/// What draining the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Runs that exited 0.
    pub ran: u64,
    /// Runs that failed (to be retried or kept as failed).
    pub failed: u64,
    /// Events that failed for the last time and are now kept as failed.
    pub gave_up: u64,
}

/// Shared by the workers of one [`drain`].
#[derive(Debug, Default)]
struct Board {
    /// Ids being run by a worker of this process.
    running: BTreeSet<String>,
    drained: Drained,
}

/// Wakes the workers of a daemon when events were queued, or when it stops.
#[derive(Debug, Default)]
pub struct Bell {
    /// Rings so far: a waiter wakes when it changes.
    rings: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
    /// Wakes the workers: something may be due.
    pub fn ring(&self) {
        *self
            .rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.cond.notify_all();
    }

    fn wait(&self, at_most: Duration) {
        let guard = self
            .rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = *guard;
        let _woken = self
            .cond
            .wait_timeout_while(guard, at_most, |rings| *rings == seen)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// How long [`drain`] goes on.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Until nothing is due, starting no run after the instant (a cron pass's budget).
    NothingDue(Instant),
    /// Until `stop` is set, waiting for events when none is due (the daemon).
    Stopped,
}

/// Runs due events on `policy.concurrency` workers. `policy` is read before each run, so a
/// daemon's reload applies to the next one.
pub fn drain(
    queue: &Queue,
    policy: &Mutex<HookPolicy>,
    until: Until,
    stop: &AtomicBool,
    bell: &Bell,
) -> Drained {
    let workers = policy
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .concurrency
        .max(1);
    let board = Mutex::new(Board::default());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| worker(queue, policy, until, stop, bell, &board));
        }
    });
    board
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drained
}

fn worker(
    queue: &Queue,
    policy: &Mutex<HookPolicy>,
    until: Until,
    stop: &AtomicBool,
    bell: &Bell,
    board: &Mutex<Board>,
) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Until::NothingDue(deadline) = until
            && Instant::now() >= deadline
        {
            return;
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let listing = match queue.list() {
            Ok(l) => l,
            Err(e) => {
                log::error!("cannot read the hook queue: {e}");
                return;
            }
        };
        // The first due event no worker of this process runs, taken under the board's lock.
        let picked = {
            let mut b = lock(board);
            let next = listing
                .pending
                .iter()
                .find(|q| q.due <= now && !b.running.contains(&q.id))
                .map(|q| q.id.clone());
            if let Some(id) = &next {
                b.running.insert(id.clone());
            }
            next
        };
        let Some(id) = picked else {
            match until {
                Until::NothingDue(_) => return,
                Until::Stopped => {
                    let next_due = listing
                        .pending
                        .iter()
                        .map(|q| q.due)
                        .filter(|&d| d > now)
                        .min();
                    let wait = next_due.map_or(5, |d| (d - now).clamp(1, 5));
                    bell.wait(Duration::from_secs(wait.unsigned_abs()));
                    continue;
                }
            }
        };
        let policy_now = policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let outcome = run_one(queue, &policy_now, &id, stop);
        let mut b = lock(board);
        b.running.remove(&id);
        match outcome {
            Some(Ran::Ok) => b.drained.ran += 1,
            Some(Ran::Failed(_)) => b.drained.failed += 1,
            Some(Ran::Interrupted) | None => {}
        }
    }
}

fn lock(board: &Mutex<Board>) -> std::sync::MutexGuard<'_, Board> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Claims, runs and settles one event. `None` when it was not run (taken by another runner,
/// not due, waiting for its data, dropped).
fn run_one(queue: &Queue, policy: &HookPolicy, id: &str, stop: &AtomicBool) -> Option<Ran> {
    let claim = match queue.claim(id) {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            log::error!("cannot take hook event {id}: {e}");
            return None;
        }
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Some(mut q) = claim.queued.clone() else {
        log::error!(
            "hook event {} is damaged and cannot be run; remove it by hand",
            argus_core::escape::EscapedPath(claim.path())
        );
        return None;
    };
    if q.due > now {
        return None;
    }
    // An event's data must be in place: a day_closed event waits for its day's compression,
    // a quarantined group that is gone (requeued, expired) has nothing left to act on.
    let subject = match q.event {
        Event::DayClosed => Some("day_file"),
        Event::Quarantined => Some("dir"),
        Event::Ingested | Event::SensorHealth => None,
    };
    if let Some(key) = subject {
        let path = Path::new(OsStr::from_bytes(q.value(key)));
        if std::fs::symlink_metadata(path).is_err() {
            if q.event == Event::Quarantined && now - q.queued > 86_400 {
                let _ = queue.drop_pending(claim, "its quarantined group is gone");
            } else {
                // Just queued (a quarantine move under way in the daemon): look again soon.
                q.due = now + if now - q.queued < 60 { 2 } else { 60 };
                settle(queue, &claim, &q, false);
            }
            return None;
        }
    }
    // The day file of an `ingested` event may have been compressed since (a closed day):
    // the command gets the file as it is now.
    if q.event == Event::Ingested {
        resolve_compressed(&mut q, "day_file");
    }
    let Some(hook) = policy.named(&q.hook) else {
        q.attempts = policy.attempts;
        q.error = Some(format!(
            "no hook named {:?} in the configuration any more",
            q.hook
        ));
        log::error!("hook event {}: {}", q.id, q.error.as_deref().unwrap_or(""));
        settle(queue, &claim, &q, true);
        return Some(Ran::Failed(q.error.unwrap_or_default()));
    };
    log::info!(
        "hook {}: running for {} {}",
        hook.name,
        q.event.name(),
        Escaped(describe(&q))
    );
    let ran = run::run(hook, &q, Some(stop));
    match &ran {
        Ran::Ok => {
            log::info!("hook {}: done ({})", hook.name, q.id);
            if let Err(e) = queue.done(claim) {
                log::error!("cannot remove the finished hook event {}: {e}", q.id);
            }
        }
        Ran::Failed(why) => {
            q.attempts += 1;
            q.error = Some(why.clone());
            let last = q.attempts >= policy.attempts;
            if last {
                log::error!(
                    "hook {} failed for the last time ({} of {} runs: {why}); kept as failed, see `process_argus hooks list`",
                    hook.name,
                    q.attempts,
                    policy.attempts
                );
            } else {
                // From the end of this run, not its start (a run may take longer than the
                // delay), and from the next whole second (`due` is in seconds), so that the
                // next run waits the whole delay.
                let ended = OffsetDateTime::now_utc();
                let ended_up = ended.unix_timestamp() + i64::from(ended.nanosecond() > 0);
                let delay = retry_delay(q.attempts, policy.retry_delay);
                q.due = ended_up + delay;
                log::warn!(
                    "hook {} failed ({why}); run {} of {} in {delay}s",
                    hook.name,
                    q.attempts + 1,
                    policy.attempts,
                );
            }
            settle(queue, &claim, &q, last);
        }
        Ran::Interrupted => log::warn!(
            "hook {} stopped by shutdown; it runs again at the next start",
            hook.name
        ),
    }
    Some(ran)
}

/// Replaces the path in `key` by its compressed name (`.gz`, `.bz2`, `.xz`) when the path is
/// gone and exactly that is there.
fn resolve_compressed(q: &mut Queued, key: &str) {
    let path = Path::new(OsStr::from_bytes(q.value(key))).to_path_buf();
    if path.as_os_str().is_empty() || std::fs::symlink_metadata(&path).is_ok() {
        return;
    }
    let found = argus_core::codec::Compression::ALL.iter().find_map(|c| {
        let mut name = path.clone().into_os_string();
        name.push(c.suffix());
        let candidate = std::path::PathBuf::from(name);
        (candidate != path && std::fs::symlink_metadata(&candidate).is_ok()).then_some(candidate)
    });
    if let Some(found) = found
        && let Some(slot) = q.values.iter_mut().find(|(k, _)| k == key)
    {
        slot.1 = found.into_os_string().into_vec();
    }
}

/// Records a failed (or deferred) run.
fn settle(queue: &Queue, claim: &queue::Claim, q: &Queued, failed: bool) {
    if let Err(e) = queue.update(claim, q, failed) {
        log::error!("cannot record the run of hook event {}: {e}", q.id);
    }
}

/// The event's main value, for the log.
pub fn describe(q: &Queued) -> &[u8] {
    match q.event {
        Event::Ingested => q.value("stem"),
        Event::DayClosed => q.value("day_file"),
        Event::Quarantined => q.value("dir"),
        Event::SensorHealth => q.value("client"),
    }
}

#[cfg(test)]
mod tests;
