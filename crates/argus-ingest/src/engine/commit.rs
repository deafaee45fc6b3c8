//! Committing a batch of prepared uploads, in the order that keeps every byte exactly once:
//! journal entries (day file, size before, archive) synced first, then the appends and their
//! syncs, the archives made durable, the `ingested` hook events, the ledger facts, and the
//! removal of the groups (`.rdy` last): [`commit`] lists the steps in that order. A failed step
//! rolls the batch back through the same recovery a crash gets.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use argus_core::append::{append_encoded_exact, append_file_exact_at};
use argus_core::codec::{Codec, Compression};
use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;
use argus_core::publish::{self, Publisher, SyncMode};
use argus_core::ranges::{ByteRange, FileRanges};
use argus_core::record::Version;
use time::Date;

use crate::config::Config;
use crate::dayfile;
use crate::dropzone::{self, Rejected, Upload};
use crate::hooks::Queue;
use crate::journal::{Entry, Journal, Slot};
use crate::ledger::{Fact, Ledger};
use argus_core::failpoint;

use super::day_pieces::DayPiece;
use super::prepare::{Archive, ReadyUpload};
use crate::error::{Action, Context, Error, Store, error_chain};

/// One journal entry's worth of an upload: a piece for one day file, or, for an upload that
/// appends nothing, the upload alone.
struct Part {
    upload: usize,
    piece: Option<usize>,
    day: Option<PathBuf>,
}

/// A day file being appended to in this batch.
pub(super) struct DayTarget {
    pub(super) file: File,
    pub(super) compression: Compression,
    /// Its length when the batch started.
    pub(super) start_len: u64,
}

/// The pure part of a commit's plan: the size each upload's day file has before its append,
/// for uploads (in order) that append `len` bytes to `day` (`None`: nothing to append), given
/// each day file's length and compression when the batch starts. A plain file grows by each
/// append; the size of a new compressed member is unknown until it is written, so every upload
/// to a compressed day gets the batch's start, a safe (smaller) bound: recovery truncates a day
/// file back to the smallest `size_before` of its uploads (`journal::plan_recovery`).
pub(super) fn sizes_before(
    uploads: &[(Option<&PathBuf>, u64)],
    start: &BTreeMap<PathBuf, (u64, Compression)>,
) -> Vec<u64> {
    let mut grown: BTreeMap<&PathBuf, u64> = BTreeMap::new();
    uploads
        .iter()
        .map(|(day, len)| {
            let Some(day) = day else { return 0 };
            let (start_len, compression) =
                start.get(*day).copied().unwrap_or((0, Compression::None));
            if compression != Compression::None {
                return start_len;
            }
            let cur = grown.entry(day).or_insert(start_len);
            let before = *cur;
            *cur += len;
            before
        })
        .collect()
}

/// Steps 2-6 for validated uploads, in the order that is the invariant: nothing is removed
/// from the dropzone before its data and its archive are durable, and the journal knows every
/// day file's size before anything is appended. Returns the day files written, each with
/// whether the batch began it (it was empty).
///
/// The batch's groups are removed on a thread of their own, left in `removal`, while the next
/// batch is committed: the batch before must be gone by then, its journal file cleared
/// (this waits for it), and [`finish_removal`] waits for the last.
pub(super) fn commit(
    config: &Config,
    journal: &mut Journal,
    ledger: &mut Ledger,
    queue: &Queue,
    (good, duplicates): (Vec<ReadyUpload>, Vec<Fact>),
    removal: &mut Option<Removal>,
) -> Result<Vec<(PathBuf, bool)>, Error> {
    let started = Instant::now();
    let lap = |what: &str| log::debug!("commit: {what} after {:?}", started.elapsed());
    let plan = Plan::new(config, &good)?;
    let entries = plan.entries(&good);
    journal
        .record(&entries)
        .or_store(Action::Write, Store::Journal)?;
    failpoint::hit("journaled");
    lap("journaled");

    plan.append(config, &good, &entries)?;
    let sync = sync_mode(&good);
    plan.sync_days(config, sync)?;
    failpoint::hit("synced");
    lap("appended and synced");

    let notes = plan.sources(config, &good, &entries);
    let archived = archive(config, good, sync)?;
    failpoint::hit("archives-durable");
    lap("archived");

    // Every byte of the batch is durable: its `ingested` hook events may now be queued, and
    // must be before anything is removed (recovery queues them again from the journal when a
    // crash comes first).
    let events = crate::hooks::ingested(&config.hooks, &entries, time::OffsetDateTime::now_utc());
    queue
        .enqueue(&events)
        .or_store(Action::Write, Store::HookQueue)?;
    failpoint::hit("hooks-queued");

    // The ledger learns of the batch as soon as it is committed (every archive durable), before
    // the groups are removed and before the journal forgets it. A crash after this makes recovery
    // record the (idempotent) chunk and upload facts again; duplicates are not in the journal,
    // so recording them only after the removals would lose their count in a crash there.
    let mut facts: Vec<Fact> = crate::journal::facts(&entries);
    facts.extend(duplicates);
    ledger
        .record(&facts)
        .or_store(Action::Write, Store::Ledger)?;
    failpoint::hit("ledgered");
    lap("ledgered");

    // The journal has two files: the one the batch before was recorded in is free once its
    // groups are gone, and this batch's removal takes the file this batch was recorded in.
    finish_removal(journal, removal)?;
    lap("the batch before removed");
    let slot = journal
        .hand_over()
        .or_store(Action::Write, Store::Journal)?;
    *removal = Some(remove_groups(config, queue, archived, slot)?);
    // Only a hint for when the day closes: a note that is lost costs a compression.
    for (day, sources) in &notes {
        if let Err(e) = crate::members::note(&config.state_dir, day, sources) {
            log::warn!(
                "cannot note which archives {day} holds (it will be compressed afresh when it closes): {e}"
            );
        }
    }
    Ok(plan
        .targets
        .into_iter()
        .map(|(path, t)| (path, t.start_len == 0))
        .collect())
}

/// Where each piece of each upload of a batch goes: the day files, opened once, and the parts
/// (a journal entry each) in the order they are appended.
struct Plan {
    targets: BTreeMap<PathBuf, DayTarget>,
    parts: Vec<Part>,
}

impl Plan {
    /// Opens the batch's day files. An upload that appends nothing has one part, with no day.
    fn new(config: &Config, good: &[ReadyUpload]) -> Result<Plan, Error> {
        let mut targets: BTreeMap<PathBuf, DayTarget> = BTreeMap::new();
        let mut parts: Vec<Part> = Vec::with_capacity(good.len());
        // Which file a (host, day) goes to is looked up, and opened, once per batch.
        let mut chosen: BTreeMap<(&Hostname, Date), PathBuf> = BTreeMap::new();
        for (index, g) in good.iter().enumerate() {
            if g.pieces.is_empty() {
                parts.push(Part {
                    upload: index,
                    piece: None,
                    day: None,
                });
            }
            for (p, piece) in g.pieces.iter().enumerate() {
                let path = match chosen.get(&(&g.host, piece.day)) {
                    Some(path) => path.clone(),
                    None => {
                        let (path, compression, file) =
                            dayfile::open_target(&config.oper_dir, &g.host, piece.day).map_err(
                                |(path, e)| Error::File {
                                    action: Action::Open,
                                    path,
                                    source: e.into(),
                                },
                            )?;
                        let start_len = file.metadata().or_file(Action::Stat, &path)?.len();
                        let target = DayTarget {
                            file,
                            compression,
                            start_len,
                        };
                        targets.insert(path.clone(), target);
                        chosen.insert((&g.host, piece.day), path.clone());
                        path
                    }
                };
                parts.push(Part {
                    upload: index,
                    piece: Some(p),
                    day: Some(path),
                });
            }
        }
        Ok(Plan { targets, parts })
    }

    fn piece<'a>(&self, good: &'a [ReadyUpload], part: &Part) -> Option<&'a DayPiece> {
        part.piece.map(|p| &good[part.upload].pieces[p])
    }

    /// The journal's entries: a part each, with the size its day file has before its append.
    fn entries(&self, good: &[ReadyUpload]) -> Vec<Entry> {
        let start: BTreeMap<PathBuf, (u64, Compression)> = self
            .targets
            .iter()
            .map(|(path, t)| (path.clone(), (t.start_len, t.compression)))
            .collect();
        let appends: Vec<(Option<&PathBuf>, u64)> = self
            .parts
            .iter()
            .map(|part| {
                let bytes = self.piece(good, part).map_or(0, DayPiece::bytes);
                (part.day.as_ref(), bytes)
            })
            .collect();
        let sizes = sizes_before(&appends, &start);
        self.parts
            .iter()
            .zip(sizes)
            .map(|(part, size_before)| {
                let g = &good[part.upload];
                let piece = self.piece(good, part);
                Entry {
                    rdy: g.upload.rdy_path().to_path_buf(),
                    out: g.upload.out_path().to_path_buf(),
                    day: part.day.clone(),
                    size_before,
                    archive: g.archive_dest().to_path_buf(),
                    client: g.upload.client().to_owned(),
                    at: g.upload.uploaded_at().unix_timestamp(),
                    bytes: piece.map_or(0, DayPiece::bytes),
                    // The chunks travel with the upload's first piece.
                    chunks: if part.piece.unwrap_or(0) == 0 {
                        g.new_chunks.clone()
                    } else {
                        Vec::new()
                    },
                    segments: piece.map(|p| p.segments.clone()).unwrap_or_default(),
                    version: g.version.map(Version::number),
                    records: Some(piece.map_or(0, |p| p.records)),
                    // So do the sensor's health figures, of what it appends.
                    health: if part.piece.unwrap_or(0) == 0 {
                        crate::health::UploadHealth::of(&g.mars, &g.segments, &g.gaps)
                    } else {
                        None
                    },
                }
            })
            .collect()
    }

    /// The pieces that are whole uploads appended to plain day files, by day file name, with
    /// the archive each upload goes to: what a closed day can take from archive members
    /// ([`crate::members`]). None unless the archives and the day files use the same codec.
    fn sources(
        &self,
        config: &Config,
        good: &[ReadyUpload],
        entries: &[Entry],
    ) -> BTreeMap<String, Vec<crate::members::Source>> {
        let mut notes: BTreeMap<String, Vec<crate::members::Source>> = BTreeMap::new();
        if config.archive_codec != config.oper_codec
            || config.oper_codec.compression() == Compression::None
        {
            return notes;
        }
        for (part, entry) in self.parts.iter().zip(entries) {
            let (Some(day), Some(piece)) = (&part.day, self.piece(good, part)) else {
                continue;
            };
            let g = &good[part.upload];
            let plain = self.targets[day].compression == Compression::None;
            let whole = g.len > 0 && piece.segments == [ByteRange::new(0, g.len)];
            let names = (
                day.file_name().and_then(|n| n.to_str()),
                g.archive_dest().file_name().and_then(|n| n.to_str()),
            );
            if let (true, true, (Some(day), Some(archive))) = (plain, whole, names) {
                notes
                    .entry(day.to_owned())
                    .or_default()
                    .push(crate::members::Source {
                        offset: entry.size_before,
                        len: g.len,
                        archive: archive.to_owned(),
                    });
            }
        }
        notes
    }

    /// Appends every piece to its day file, oldest upload first: a whole upload to a plain
    /// day file at the size its journal entry gives (the day file's size when the batch
    /// opened it, plus what the batch appended before), with no `fstat` per append.
    fn append(
        &self,
        config: &Config,
        good: &[ReadyUpload],
        entries: &[Entry],
    ) -> Result<(), Error> {
        for (part, entry) in self.parts.iter().zip(entries) {
            let (Some(day), Some(piece)) = (&part.day, self.piece(good, part)) else {
                continue;
            };
            let g = &good[part.upload];
            let t = &self.targets[day];
            // Exactly the bytes that were checked: an .out that grew since (a writer that went
            // on after .rdy) must not bring unchecked bytes into the day file, and one that
            // shrank must not leave a partial chunk there.
            let whole = piece.segments == [ByteRange::new(0, g.len)];
            let appended = if t.compression == Compression::None && whole {
                append_file_exact_at(&t.file, &g.out, g.len, entry.size_before)
            } else {
                let codec = if t.compression == Compression::None {
                    Codec::NONE
                } else if config.oper_codec.compression() == t.compression {
                    config.oper_codec
                } else {
                    t.compression.codec()
                };
                let checked = FileRanges::new(&g.out, &piece.segments);
                append_encoded_exact(&t.file, checked, codec, piece.bytes())
            };
            appended.map_err(|e| Error::Append {
                upload: g.upload.display_name(),
                day: day.clone(),
                source: e.into(),
            })?;
            failpoint::hit("appended");
        }
        Ok(())
    }

    /// Makes the day files' data durable before any archive is in place (recovery takes an
    /// archived upload as complete). When they share the archives' file system and the
    /// archives are synced with one `syncfs`, which comes before their renames, that sync
    /// covers them; otherwise each is synced here.
    fn sync_days(&self, config: &Config, sync: SyncMode) -> Result<(), Error> {
        let archive_dev = fs::metadata(&config.archive_dir).map(|m| m.dev()).ok();
        let covered = sync == SyncMode::FileSystem
            && self.targets.values().all(|t| {
                archive_dev.is_some() && t.file.metadata().ok().map(|m| m.dev()) == archive_dev
            });
        if !covered {
            for (path, t) in &self.targets {
                t.file.sync_data().or_file(Action::Sync, path)?;
            }
        }
        Ok(())
    }
}

/// How a batch's archives are synced. A large batch syncs its file system once (syncfs), which
/// measured clearly faster than many file syncs; a small one (the daemon's usual batch) syncs
/// its files, so as not to wait for other writers' dirty data on the same file system.
fn sync_mode(good: &[ReadyUpload]) -> SyncMode {
    let staged = good
        .iter()
        .filter(|g| matches!(g.archive, Archive::Staged(_)))
        .count();
    if staged >= 16 {
        SyncMode::FileSystem
    } else {
        SyncMode::EachFile
    }
}

/// Puts the archives in place, durably: staged ones in one batch (their data synced together,
/// one directory sync), moves by rename.
fn archive(config: &Config, good: Vec<ReadyUpload>, sync: SyncMode) -> Result<Archived, Error> {
    let publisher = Publisher::open(&config.archive_dir)?.with_sync(sync);
    let mut batch = publisher.batch();
    let mut moves = Vec::new();
    let mut uploads = Vec::with_capacity(good.len());
    let mut salvaged = Vec::new();
    for g in good {
        let ReadyUpload {
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
        return Err(e).or_file(Action::Archive, &path);
    }
    for (from, to) in &moves {
        publish::rename_noreplace(from, to)?;
        failpoint::hit("archived");
    }
    if !moves.is_empty() {
        publisher.sync_dir()?;
    }
    Ok(Archived { uploads, salvaged })
}

/// A batch whose archives are durable: the uploads to remove, and the salvaged ones (with the
/// reason) to quarantine.
struct Archived {
    uploads: Vec<Upload>,
    salvaged: Vec<(Upload, String)>,
}

/// The removal of a committed batch's groups, running on its own thread, and the journal file
/// that holds the batch until they are gone.
#[derive(Debug)]
pub(super) struct Removal {
    thread: std::thread::JoinHandle<Result<(), Error>>,
    slot: Slot,
}

/// Waits for a batch's removal, if one runs, then clears its journal file: its uploads are
/// complete. On an error the file keeps them, for the recovery of the next start (or of the
/// rollback) to finish.
pub(super) fn finish_removal(
    journal: &mut Journal,
    removal: &mut Option<Removal>,
) -> Result<(), Error> {
    let Some(Removal { thread, slot }) = removal.take() else {
        return Ok(());
    };
    thread.join().map_err(|_| Error::Panicked)??;
    journal
        .clear_slot(slot)
        .or_store(Action::Clear, Store::Journal)
}

/// Starts removing the groups (.rdy last in each), then syncing each directory once, on a
/// thread of its own. A salvaged upload first goes to the quarantine whole, here; should that
/// fail, it is removed like the others: its archive holds it whole too.
fn remove_groups(
    config: &Config,
    queue: &Queue,
    archived: Archived,
    slot: Slot,
) -> Result<Removal, Error> {
    let Archived {
        mut uploads,
        salvaged,
    } = archived;
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
                    dropzone::remove_parts(&upload)?;
                    uploads.push(upload);
                }
            }
        }
    }
    let remove = move || -> Result<(), Error> {
        let started = Instant::now();
        remove_all(&uploads)?;
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
        log::debug!(
            "removed {} groups in {:?}",
            uploads.len(),
            started.elapsed()
        );
        Ok(())
    };
    let thread = std::thread::Builder::new()
        .name("remove".to_owned())
        .spawn(remove)
        .map_err(Error::Thread)?;
    Ok(Removal { thread, slot })
}

/// Removes finished groups on several threads; the first error is returned after all stopped.
/// An unlink mostly waits (for the device, with online discard), so more threads than cores
/// pay: 16 measured clearly faster than 4 for a batch of 256 uploads.
pub(super) fn remove_all(uploads: &[Upload]) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_before_grow_with_plain_appends_and_stay_at_the_start_of_compressed_days() {
        let plain = PathBuf::from("/o/h_20261201");
        let other = PathBuf::from("/o/g_20261201");
        let packed = PathBuf::from("/o/h_20261125.gz");
        let start = BTreeMap::from([
            (plain.clone(), (100, Compression::None)),
            (other.clone(), (0, Compression::None)),
            (packed.clone(), (5000, Compression::Gzip)),
        ]);
        let uploads = [
            (Some(&plain), 10),
            (None, 0),
            (Some(&packed), 300),
            (Some(&other), 7),
            (Some(&plain), 20),
            (Some(&packed), 400),
            (Some(&plain), 1),
        ];
        assert_eq!(
            sizes_before(&uploads, &start),
            [100, 0, 5000, 0, 110, 5000, 130]
        );
    }
}
