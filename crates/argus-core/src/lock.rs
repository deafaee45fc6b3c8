//! Single-instance locks on a lock file (`flock`, through `std::fs::File::lock`).
//!
//! The lock belongs to the open file: it is released when the [`Lock`] is dropped or the process
//! dies, however it dies, so a crash never leaves a stale lock behind. The holder's pid is
//! written into the file for the operator's benefit, and emptied on release; it is never
//! trusted for more than this: a lock found held while its file names no one may have been
//! released a moment ago and still be held through a child being started, and is retried for a
//! second before it is refused.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// What to do when another process holds the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contention {
    /// Fail at once with [`Error::Locked`].
    Fail,
    /// Block until the lock is released.
    Wait,
}

impl Lock {
    /// Takes the exclusive lock on `path`, creating the file (mode 0644) when missing.
    pub fn acquire(path: impl Into<PathBuf>, contention: Contention) -> Result<Self> {
        let path = path.into();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("open lock file", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if contention == Contention::Wait => {
                log::info!(
                    "waiting for the lock on {}",
                    crate::escape::EscapedPath(&path)
                );
                file.lock().at("lock", &path)?;
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(holder) = held_by_another(&mut file).at("lock", &path)? {
                    return Err(Error::Locked {
                        path,
                        holder: (!holder.is_empty()).then(|| holder.chars().take(64).collect()),
                    });
                }
            }
            Err(TryLockError::Error(e)) => return Err(e).at("lock", &path),
        }
        // Best effort: the pid only helps an operator see who holds the lock.
        let _ignored = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "pid {}", std::process::id()));
        Ok(Lock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a lock found held by no one named may take to be released before
/// [`Contention::Fail`] gives up.
///
/// A process that spawns children shares its descriptors with each child from the fork until
/// the child's exec closes them, and the lock belongs to the open file, not the descriptor: a
/// lock released by one thread (which empties the file) is still held, for that moment, by a
/// child another thread is starting. A pass or an embedder that takes the lock again at once
/// would be refused by a process that no longer holds it.
const RELEASE_GRACE: Duration = Duration::from_secs(1);

/// Waits out a lock held while its file names no holder (released a moment ago, or taken by a
/// process that has not written its pid yet), retrying every 5 ms for [`RELEASE_GRACE`]. Returns
/// what the file says once it names a holder or the grace has passed, and `None` once the lock
/// is taken.
fn held_by_another(file: &mut File) -> std::io::Result<Option<String>> {
    let deadline = Instant::now() + RELEASE_GRACE;
    loop {
        let mut holder = String::new();
        let _ignored = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut holder));
        let holder = holder.trim();
        if !holder.is_empty() || Instant::now() >= deadline {
            return Ok(Some(holder.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(5));
        match file.try_lock() {
            Ok(()) => return Ok(None),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ignored = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let first = Lock::acquire(&path, Contention::Fail).expect("first");
        let err = Lock::acquire(&path, Contention::Fail).expect_err("held");
        match &err {
            Error::Locked { holder, .. } => {
                assert_eq!(
                    holder.as_deref(),
                    Some(format!("pid {}", std::process::id()).as_str())
                );
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("locked by another process"));
        drop(first);
        let _again = Lock::acquire(&path, Contention::Fail).expect("released");
    }

    #[test]
    fn a_lock_still_held_for_a_moment_through_a_copy_of_its_descriptor_is_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let first = Lock::acquire(&path, Contention::Fail).expect("first");
        // What a child between fork and exec holds: the same open file.
        let copy = first.file.try_clone().expect("dup");
        drop(first);
        let child = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(copy);
        });
        let again = Lock::acquire(&path, Contention::Fail);
        child.join().expect("join");
        again.expect("taken once the copy is closed");
    }

    #[test]
    fn waiting_gets_the_lock_after_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let first = Lock::acquire(&path, Contention::Fail).expect("first");
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || Lock::acquire(path, Contention::Wait).map(|_| ()))
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished(), "must block while held");
        drop(first);
        waiter
            .join()
            .expect("join")
            .expect("acquired after release");
    }
}
