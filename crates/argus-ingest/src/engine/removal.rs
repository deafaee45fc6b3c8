//! The removal of a committed batch's groups from the dropzone (`.rdy` last in each), on a
//! thread of its own while the next batch is committed, and the journal file that holds the
//! batch until they are durably gone. The unlinks run on threads kept for the whole pass.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use argus_core::escape::EscapedPath;
use argus_core::failpoint;
use argus_core::publish;

use crate::config::Config;
use crate::dropzone::{self, Rejected, Upload};
use crate::error::{Action, Context, Error, Store, error_chain};
use crate::hooks::Queue;
use crate::journal::{Journal, Slot};

/// The removal of a committed batch's groups, running on its own thread, and the journal file
/// that holds the batch until they are gone.
#[derive(Debug)]
pub(super) struct Removal {
    /// Gives the unlinking threads back with what the removal ended with.
    thread: JoinHandle<(Result<(), Error>, Unlinkers)>,
    slot: Slot,
}

/// The removals of a pass: the batch's being removed, if any, and the threads that unlink
/// (lent to that removal while it runs).
#[derive(Debug, Default)]
pub(super) struct Removals {
    running: Option<Removal>,
    unlinkers: Unlinkers,
}

/// Waits for a batch's removal, if one runs, then clears its journal file: its uploads are
/// complete. On an error the file keeps them, for the recovery of the next start (or of the
/// rollback) to finish.
pub(super) fn finish_removal(journal: &mut Journal, removals: &mut Removals) -> Result<(), Error> {
    let Some(Removal { thread, slot }) = removals.running.take() else {
        return Ok(());
    };
    let (removed, unlinkers) = thread.join().map_err(|_| Error::Panicked)?;
    removals.unlinkers = unlinkers;
    removed?;
    journal
        .clear_slot(slot)
        .or_store(Action::Clear, Store::Journal)
}

/// [`finish_removal`] at the end of a pass, which also ends the unlinking threads: an engine
/// kept between passes (a daemon's) keeps none idle.
pub(super) fn finish_pass(journal: &mut Journal, removals: &mut Removals) -> Result<(), Error> {
    let finished = finish_removal(journal, removals);
    removals.unlinkers = Unlinkers::default();
    finished
}

/// Starts removing the groups (.rdy last in each), then syncing each directory once, on a
/// thread of its own, left in `removals` (whose last removal must be finished). A salvaged
/// upload first goes to the quarantine whole, here; should that fail, it is removed like the
/// others: its archive holds it whole too.
pub(super) fn remove_groups(
    config: &Config,
    queue: &Queue,
    archived: Archived,
    slot: Slot,
    removals: &mut Removals,
) -> Result<(), Error> {
    let Archived {
        mut uploads,
        salvaged,
        taken: _,
    } = archived;
    for upload in quarantine_salvaged(config, queue, salvaged) {
        dropzone::remove_parts(&upload)?;
        uploads.push(upload);
    }
    let mut unlinkers = std::mem::take(&mut removals.unlinkers);
    unlinkers.grow(Unlinkers::THREADS.min(uploads.len()))?;
    let remove = move || {
        let removed = remove_synced(&unlinkers, uploads);
        (removed, unlinkers)
    };
    let thread = std::thread::Builder::new()
        .name("remove".to_owned())
        .spawn(remove)
        .map_err(Error::Thread)?;
    removals.running = Some(Removal { thread, slot });
    Ok(())
}

/// Removes the groups of `uploads`, then syncs each of their directories once.
fn remove_synced(unlinkers: &Unlinkers, uploads: Vec<Upload>) -> Result<(), Error> {
    let started = Instant::now();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for upload in &uploads {
        let dir = upload.dir().to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let n = uploads.len();
    unlinkers.remove_all(uploads)?;
    for dir in &dirs {
        publish::sync_dir(dir)?;
    }
    log::debug!("removed {n} groups in {:?}", started.elapsed());
    Ok(())
}

/// Moves each salvaged upload (its archive durable) to the quarantine whole, with its reason.
/// Returns those that could not be moved, still in the dropzone: their archives keep them.
pub(super) fn quarantine_salvaged(
    config: &Config,
    queue: &Queue,
    salvaged: Vec<(Upload, String)>,
) -> Vec<Upload> {
    let mut left = Vec::new();
    for (upload, reason) in salvaged {
        let name = upload.display_name();
        let bad = Rejected::Upload(upload);
        match crate::quarantine::quarantine_group(config, queue, &bad, &reason) {
            Ok(place) => log::warn!(
                "salvaged {name}: {reason}; moved to {}",
                EscapedPath(&place)
            ),
            Err(e) => {
                log::error!(
                    "cannot quarantine the salvaged {name} ({}); removed, its archive keeps it whole",
                    error_chain(&e)
                );
                if let Rejected::Upload(upload) = bad {
                    left.push(upload);
                }
            }
        }
    }
    left
}

/// Threads that unlink the parts of finished groups, started as a pass first needs them and
/// kept to its end. An unlink mostly waits (for the device, with online discard), so more
/// threads than cores pay: 16 measured clearly faster than 4 for a batch of 256 uploads.
/// Started for each batch, they cost about 18 system calls each.
#[derive(Debug, Default)]
pub(super) struct Unlinkers {
    /// Each thread's queue of jobs: one wake-up per thread and job.
    queues: Vec<mpsc::Sender<Arc<Job>>>,
    threads: Vec<JoinHandle<()>>,
}

/// The groups of one batch, taken one by one by every thread that gets a copy of the job.
struct Job {
    uploads: Vec<Upload>,
    next: AtomicUsize,
    /// The copies still running: the last one to end sends what the job ended with.
    running: AtomicUsize,
    failure: Mutex<Option<webjob_drop::Error>>,
    /// Dropped unsent (with the last copy) when a thread panicked.
    done: mpsc::Sender<Result<(), webjob_drop::Error>>,
}

impl Unlinkers {
    const THREADS: usize = 16;

    /// Starts threads until there are `n`.
    fn grow(&mut self, n: usize) -> Result<(), Error> {
        while self.threads.len() < n {
            let (queue, jobs) = mpsc::channel::<Arc<Job>>();
            let thread = std::thread::Builder::new()
                .name("unlink".to_owned())
                .spawn(move || {
                    for job in jobs {
                        job.run();
                    }
                })
                .map_err(Error::Thread)?;
            self.queues.push(queue);
            self.threads.push(thread);
        }
        Ok(())
    }

    /// Removes the groups of `uploads` on every thread; the first error is returned after all
    /// stopped.
    fn remove_all(&self, uploads: Vec<Upload>) -> Result<(), Error> {
        let copies = self.queues.len().min(uploads.len());
        if copies == 0 {
            return Ok(());
        }
        let (done, finished) = mpsc::channel();
        let job = Arc::new(Job {
            uploads,
            next: AtomicUsize::new(0),
            running: AtomicUsize::new(copies),
            failure: Mutex::new(None),
            done,
        });
        for queue in &self.queues[..copies] {
            queue.send(Arc::clone(&job)).map_err(|_| Error::Panicked)?;
        }
        // Only the copies hold the job now, so a panic closes `finished`.
        drop(job);
        finished.recv().map_err(|_| Error::Panicked)??;
        Ok(())
    }
}

impl Job {
    fn run(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(upload) = self.uploads.get(i) else {
                break;
            };
            if let Err(e) = dropzone::remove_parts(upload) {
                self.failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(e);
                break;
            }
            failpoint::hit("removed");
        }
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            let failure = self
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            // The caller waits for this; it cannot have gone.
            let _sent = self.done.send(failure.map_or(Ok(()), Err));
        }
    }
}

impl Drop for Unlinkers {
    fn drop(&mut self) {
        // Each thread ends when its queue closes.
        self.queues.clear();
        for thread in self.threads.drain(..) {
            let _panicked = thread.join();
        }
    }
}

/// A batch whose archives are durable: the uploads to remove, and the salvaged ones (with the
/// reason) to quarantine; and those whose archive name was taken, with that name.
pub(super) struct Archived {
    pub(super) uploads: Vec<Upload>,
    pub(super) salvaged: Vec<(Upload, String)>,
    pub(super) taken: Vec<(Upload, PathBuf)>,
}

#[cfg(test)]
mod tests {
    use std::fs;

    use time::OffsetDateTime;
    use webjob_drop::fixture;

    use super::*;

    /// `n` uploads scanned from a dropzone of their own.
    fn uploads(n: i64) -> (tempfile::TempDir, Config, Vec<Upload>) {
        let dir = tempfile::tempdir().expect("a directory");
        let drop_dir = dir.path().join("incoming");
        fs::create_dir(&drop_dir).expect("the dropzone");
        let at = OffsetDateTime::now_utc() - time::Duration::hours(1);
        for i in 0..n {
            fixture::Upload::at("sensor-1", at + time::Duration::seconds(i))
                .out(b"data".to_vec())
                .write(&drop_dir)
                .expect("an upload");
        }
        let config = Config::new(
            drop_dir,
            dir.path().join("operational"),
            dir.path().join("archive"),
            vec!["sensor-*".to_owned()],
        );
        let found = dropzone::scan(&config, OffsetDateTime::now_utc(), None).expect("a scan");
        assert_eq!(found.complete.len(), usize::try_from(n).expect("a count"));
        (dir, config, found.complete)
    }

    fn left(config: &Config) -> usize {
        fs::read_dir(&config.drop_dir)
            .expect("the dropzone")
            .count()
    }

    #[test]
    fn the_unlinking_threads_serve_batch_after_batch_and_report_a_failure() {
        // Started as needed: one thread, then every one; more groups than threads in each
        // batch, a single one, and none.
        let mut unlinkers = Unlinkers::default();
        unlinkers.grow(1).expect("a thread");
        let (_dir, config, mut all) = uploads(45);
        let mut second = all.split_off(20);
        let third = second.split_off(24);
        unlinkers.remove_all(all).expect("the first batch");
        assert_eq!(left(&config), 25 * 4);
        unlinkers.grow(Unlinkers::THREADS).expect("the threads");
        unlinkers.grow(2).expect("no more threads");
        assert_eq!(unlinkers.threads.len(), Unlinkers::THREADS);

        // A `.out` replaced after the scan is not the file that was read: it stays, the error
        // comes back after every other group of the batch is gone.
        let replaced = second[7].out_path().to_path_buf();
        fs::remove_file(&replaced).expect("remove");
        fs::write(&replaced, b"another file").expect("write");
        let failed = unlinkers.remove_all(second).expect_err("a changed upload");
        assert!(
            error_chain(&failed).contains(&replaced.display().to_string()),
            "{}",
            error_chain(&failed)
        );
        assert_eq!(
            left(&config),
            4 + 4,
            "the changed group and the third batch"
        );

        unlinkers.remove_all(third).expect("the third batch");
        unlinkers.remove_all(Vec::new()).expect("an empty batch");
        assert_eq!(left(&config), 4, "only the changed group");
        // Dropping them ends the threads (the test would hang otherwise).
        drop(unlinkers);
    }
}
