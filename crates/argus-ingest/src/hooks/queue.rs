//! The durable queue of hook events: one file per event (and hook) in `STATE_DIR/hooks/pending`,
//! moved to `STATE_DIR/hooks/failed` when it has failed `hook_attempts` times.
//!
//! A file is named after its event: `EVENT.HASH`, the hash of the hook's name and the event's
//! values, so queueing the same event twice (recovery after a crash) finds it already queued.
//! Its content is sealed lines (`argus_core::stateline`): `hook`, `event`, `queued`, `attempts`,
//! `due` (Unix seconds), `error` (the last failure) and one `value KEY BYTES` per placeholder,
//! values percent-encoded. Files are published through `argus_core::publish` (data synced, then
//! renamed into place without replacing), and rewritten by an atomic replace. An event that is
//! running is locked (`flock` on its file), so no two processes or threads run it at once.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use argus_core::escape::{EscapedPath, percent_decode, percent_encode};
use argus_core::publish::{self, Publisher, SyncMode};
use argus_core::stateline::StateLines;
use sha2::{Digest, Sha256};

use crate::config::Event;

/// The lines of a queue file: a space, then 4 bytes of SHA-256.
const LINES: StateLines = StateLines::new(b' ', 4);

/// An event for one hook, as queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The file name: `EVENT.HASH`.
    pub id: String,
    /// The name of the hook it runs.
    pub hook: String,
    /// What happened.
    pub event: Event,
    /// The placeholders' values, as bytes.
    pub values: Vec<(String, Vec<u8>)>,
    /// When it was first queued (Unix seconds).
    pub queued: i64,
    /// Runs that failed so far.
    pub attempts: u32,
    /// Not run before this (Unix seconds).
    pub due: i64,
    /// How the last run failed.
    pub error: Option<String>,
}

impl Queued {
    /// A new event for `hook`, due at once.
    pub fn new(hook: &str, event: Event, values: Vec<(String, Vec<u8>)>, now: i64) -> Self {
        let mut hasher = Sha256::new();
        for part in [hook.as_bytes(), event.name().as_bytes()] {
            hasher.update(part);
            hasher.update([0]);
        }
        for (key, value) in &values {
            hasher.update(key.as_bytes());
            hasher.update([0]);
            hasher.update(value);
            hasher.update([0]);
        }
        let hash = argus_core::manifest::hex(&hasher.finalize()[..8]);
        Queued {
            id: format!("{}.{hash}", event.name()),
            hook: hook.to_owned(),
            event,
            values,
            queued: now,
            attempts: 0,
            due: now,
            error: None,
        }
    }

    /// The bytes of a placeholder (empty when the event has no such value).
    pub fn value(&self, key: &str) -> &[u8] {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&[][..], |(_, v)| v)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |body: Vec<u8>| LINES.seal(&body, &mut out);
        line(format!("hook {}", self.hook).into_bytes());
        line(format!("event {}", self.event.name()).into_bytes());
        line(format!("queued {}", self.queued).into_bytes());
        line(format!("attempts {}", self.attempts).into_bytes());
        line(format!("due {}", self.due).into_bytes());
        let mut error = b"error ".to_vec();
        match &self.error {
            Some(e) => percent_encode(e.as_bytes(), &mut error),
            None => error.push(b'-'),
        }
        line(error);
        for (key, value) in &self.values {
            let mut body = format!("value {key} ").into_bytes();
            percent_encode(value, &mut body);
            if value.is_empty() {
                body.extend_from_slice(b"%");
            }
            line(body);
        }
        out
    }

    fn decode(id: &str, bytes: &[u8]) -> Option<Queued> {
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        let mut values = Vec::new();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let body = std::str::from_utf8(LINES.unseal(line)?).ok()?;
            let (key, rest) = body.split_once(' ')?;
            if key == "value" {
                let (name, field) = rest.split_once(' ')?;
                let field = if field == "%" { "" } else { field };
                values.push((name.to_owned(), percent_decode(field.as_bytes())?));
            } else {
                fields.push((key.to_owned(), rest.as_bytes().to_vec()));
            }
        }
        let get = |key: &str| -> Option<&str> {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let error = match get("error")? {
            "-" => None,
            e => Some(String::from_utf8_lossy(&percent_decode(e.as_bytes())?).into_owned()),
        };
        Some(Queued {
            id: id.to_owned(),
            hook: get("hook")?.to_owned(),
            event: Event::parse(get("event")?)?,
            values,
            queued: get("queued")?.parse().ok()?,
            attempts: get("attempts")?.parse().ok()?,
            due: get("due")?.parse().ok()?,
            error,
        })
    }
}

/// A queue file that could not be read back.
#[derive(Debug)]
pub struct Damaged {
    pub path: PathBuf,
    pub why: String,
}

/// The queue in `STATE_DIR/hooks`.
#[derive(Clone, Debug)]
pub struct Queue {
    pending: PathBuf,
    failed: PathBuf,
}

/// The two lists of the queue, as read.
#[derive(Debug, Default)]
pub struct Listing {
    /// Events waiting to run, or to run again.
    pub pending: Vec<Queued>,
    /// Events kept as failed after `hook_attempts` runs.
    pub failed: Vec<Queued>,
    /// Files of the queue that could not be read back.
    pub damaged: Vec<Damaged>,
}

impl Queue {
    /// The queue of `state_dir`, its directories created when missing.
    pub fn open(state_dir: &Path) -> argus_core::Result<Queue> {
        let queue = Queue::at(state_dir);
        publish::create_dir_all_durably(&queue.pending)?;
        publish::create_dir_all_durably(&queue.failed)?;
        Ok(queue)
    }

    /// The queue of `state_dir`, read-only (`status`, `hooks list`): nothing is created.
    pub fn at(state_dir: &Path) -> Queue {
        let dir = state_dir.join("hooks");
        Queue {
            pending: dir.join("pending"),
            failed: dir.join("failed"),
        }
    }

    /// Removes temporary files a crash left (the caller holds the state lock).
    pub fn clean(&self) -> argus_core::Result<()> {
        for dir in [&self.pending, &self.failed] {
            publish::clean_temp_files(
                dir,
                std::time::Duration::ZERO,
                std::time::SystemTime::now(),
            )?;
        }
        Ok(())
    }

    /// Queues `events` durably, all at once (data synced together, one directory sync). An
    /// event already queued, pending or failed, is left as it is. Returns how many were new.
    pub fn enqueue(&self, events: &[Queued]) -> argus_core::Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let sync = if events.len() >= 16 {
            SyncMode::FileSystem
        } else {
            SyncMode::EachFile
        };
        let publisher = Publisher::open(&self.pending)?.with_sync(sync);
        let mut batch = publisher.batch();
        for event in events {
            if self.failed.join(&event.id).exists() {
                continue;
            }
            if let Some(staged) = stage(&publisher, event)? {
                batch.add(staged);
            }
        }
        let report = batch.commit()?;
        for (path, e) in report.failed {
            if !matches!(e, argus_core::Error::Exists { .. }) {
                return Err(argus_core::Error::Io {
                    op: "queue",
                    path,
                    source: io::Error::other(e.to_string()),
                });
            }
        }
        Ok(report.published.len())
    }

    /// Every event in the queue, each list sorted by when it is due (failed: by when queued).
    pub fn list(&self) -> io::Result<Listing> {
        let mut listing = Listing::default();
        for (dir, into_failed) in [(&self.pending, false), (&self.failed, true)] {
            for (path, read) in read_dir_files(dir)? {
                let id = path
                    .file_name()
                    .and_then(OsStr::to_str)
                    .unwrap_or_default()
                    .to_owned();
                match read.map(|bytes| Queued::decode(&id, &bytes)) {
                    Ok(Some(q)) if into_failed => listing.failed.push(q),
                    Ok(Some(q)) => listing.pending.push(q),
                    Ok(None) => listing.damaged.push(Damaged {
                        path,
                        why: "not a readable queue entry (damaged?)".to_owned(),
                    }),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => listing.damaged.push(Damaged {
                        why: e.to_string(),
                        path,
                    }),
                }
            }
        }
        // An event both pending and failed (a retry interrupted by a crash) is pending.
        let pending: std::collections::BTreeSet<String> =
            listing.pending.iter().map(|q| q.id.clone()).collect();
        listing.failed.retain(|q| !pending.contains(&q.id));
        listing
            .pending
            .sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
        listing
            .failed
            .sort_by(|a, b| (a.queued, &a.id).cmp(&(b.queued, &b.id)));
        Ok(listing)
    }

    /// Takes a pending event to run it: its file locked (`None` when another process or thread
    /// runs it, or it is gone), and its content as it is now.
    pub fn claim(&self, id: &str) -> io::Result<Option<Claim>> {
        let path = self.pending.join(id);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Finished and removed by another runner between the open and the lock: not ours.
        let still = fs::symlink_metadata(&path);
        let held = file.metadata()?;
        match still {
            Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {}
            _ => return Ok(None),
        }
        let bytes = fs::read(&path)?;
        let queued = Queued::decode(id, &bytes);
        Ok(Some(Claim {
            path,
            _lock: file,
            queued,
        }))
    }

    /// The event ran: it leaves the queue. (A crash before the removal reaches the disk runs
    /// it once more, which the contract allows.)
    pub fn done(&self, claim: Claim) -> io::Result<()> {
        match fs::remove_file(&claim.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Records a failed run: the event stays pending with its new due time, or, when `failed`,
    /// moves to the failed list.
    pub fn update(&self, claim: &Claim, q: &Queued, failed: bool) -> argus_core::Result<()> {
        publish::replace_durably(&claim.path, &q.encode())?;
        if failed {
            let to = self.failed.join(&q.id);
            // A stale failed copy (an interrupted retry) gives way to the newer one.
            let _ignored = fs::remove_file(&to);
            publish::rename_noreplace(&claim.path, &to)?;
            publish::sync_dir(&self.failed)?;
            publish::sync_dir(&self.pending)?;
        }
        Ok(())
    }

    /// Moves failed events (the ones whose id `select` takes) back to the pending list, due at
    /// once with no attempts counted. Returns the ids moved.
    pub fn retry(
        &self,
        select: impl Fn(&Queued) -> bool,
        now: i64,
    ) -> argus_core::Result<Vec<String>> {
        let listing = self.list().map_err(|e| argus_core::Error::Io {
            op: "list",
            path: self.failed.clone(),
            source: e,
        })?;
        let mut again: Vec<Queued> = listing.failed.into_iter().filter(|q| select(q)).collect();
        for q in &mut again {
            q.attempts = 0;
            q.due = now;
        }
        let publisher = Publisher::open(&self.pending)?;
        let mut moved = Vec::new();
        for q in &again {
            let Some(staged) = stage(&publisher, q)? else {
                continue;
            };
            publisher.publish(staged)?;
            let failed = self.failed.join(&q.id);
            fs::remove_file(&failed).map_err(|e| argus_core::Error::Io {
                op: "remove",
                path: failed,
                source: e,
            })?;
            moved.push(q.id.clone());
        }
        publish::sync_dir(&self.failed)?;
        Ok(moved)
    }

    /// Drops a pending event without running it (its data is gone: a quarantined group that
    /// was requeued or expired before its hook ran).
    pub fn drop_pending(&self, claim: Claim, why: &str) -> io::Result<()> {
        log::warn!("hook event {} dropped: {why}", EscapedPath(&claim.path));
        self.done(claim)
    }
}

/// A pending event taken to run: locked until dropped.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    _lock: File,
    /// Its content; `None` when the file is damaged.
    pub queued: Option<Queued>,
}

impl Claim {
    /// The queue file it holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `q` written to a temporary file of `publisher`, or `None` when an event of its id is there.
fn stage(publisher: &Publisher, q: &Queued) -> argus_core::Result<Option<publish::Staged>> {
    let mut staged = match publisher.stage(&q.id) {
        Ok(s) => s,
        Err(argus_core::Error::Exists { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    staged
        .write_all(&q.encode())
        .map_err(|e| argus_core::Error::Io {
            op: "write",
            path: staged.temp_path().to_path_buf(),
            source: e,
        })?;
    Ok(Some(staged))
}

/// The regular files of `dir` that are not temporary files, with their content.
fn read_dir_files(dir: &Path) -> io::Result<Vec<(PathBuf, io::Result<Vec<u8>>)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if publish::is_temp_name(&entry.file_name()) || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let read = fs::read(&path);
        out.push((path, read));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stem: &[u8]) -> Queued {
        Queued::new(
            "ingested-1",
            Event::Ingested,
            vec![
                ("stem".to_owned(), stem.to_vec()),
                ("records".to_owned(), Vec::new()),
            ],
            1_800_000_000,
        )
    }

    #[test]
    fn an_entry_reads_back_exactly_with_any_bytes() {
        let mut q = event(b"client1_x;$(rm -rf /)\n\xff");
        q.attempts = 3;
        q.error = Some("exit status 1: no such table\n".to_owned());
        let bytes = q.encode();
        assert_eq!(Queued::decode(&q.id, &bytes), Some(q.clone()));
        // Damage anywhere is refused.
        let mut bad = bytes.clone();
        bad[8] ^= 1;
        assert_eq!(Queued::decode(&q.id, &bad), None);
        assert_eq!(Queued::decode(&q.id, &bytes[..bytes.len() - 3]), None);
    }

    #[test]
    fn the_same_event_is_queued_once_and_failed_ones_are_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = Queue::open(dir.path()).expect("open");
        let (a, b) = (event(b"a"), event(b"b"));
        assert_ne!(a.id, b.id);
        assert_eq!(queue.enqueue(&[a.clone(), b.clone()]).expect("enqueue"), 2);
        assert_eq!(queue.enqueue(std::slice::from_ref(&a)).expect("again"), 0);
        let listing = queue.list().expect("list");
        assert_eq!(listing.pending.len(), 2);

        let claim = queue.claim(&a.id).expect("claim").expect("free");
        assert!(queue.claim(&a.id).expect("claim").is_none(), "locked");
        let mut failed = claim.queued.clone().expect("readable");
        failed.attempts = 10;
        failed.error = Some("exit status 1".to_owned());
        queue.update(&claim, &failed, true).expect("fail");
        drop(claim);
        // A failed event is not queued again by a replay.
        assert_eq!(queue.enqueue(std::slice::from_ref(&a)).expect("replay"), 0);
        let listing = queue.list().expect("list");
        assert_eq!(listing.failed.len(), 1);
        assert_eq!(listing.failed[0].error.as_deref(), Some("exit status 1"));

        assert_eq!(
            queue.retry(|_| true, 1_800_000_100).expect("retry"),
            vec![a.id.clone()]
        );
        let listing = queue.list().expect("list");
        assert!(listing.failed.is_empty());
        let again = listing
            .pending
            .iter()
            .find(|q| q.id == a.id)
            .expect("pending");
        assert_eq!((again.attempts, again.due), (0, 1_800_000_100));

        let claim = queue.claim(&b.id).expect("claim").expect("free");
        queue.done(claim).expect("done");
        assert!(queue.claim(&b.id).expect("claim").is_none(), "gone");
    }
}
