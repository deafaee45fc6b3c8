//! Committing a batch of prepared uploads, in the order that keeps every byte exactly once:
//! journal entries (day file, size before, archive) synced first, then the appends and their
//! syncs, the archives made durable, the `ingested` hook events, the ledger facts, and the
//! removal of the groups (`.rdy` last, in `removal`): [`commit`] lists the steps in that order.
//! A failed step rolls the batch back through the same recovery a crash gets, and so does an
//! archive name found taken ([`Stopped::Taken`]), after which the pass goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use argus_core::append::{append_encoded_exact, append_file_exact_at};
use argus_core::codec::{Codec, Compression};
use argus_core::host::Hostname;
use argus_core::publish::{self, Publisher, SyncMode};
use argus_core::ranges::{ByteRange, FileRanges};
use argus_core::record::Version;
use time::Date;

use crate::config::Config;
use crate::dayfile;
use crate::dropzone::Upload;
use crate::hooks::Queue;
use crate::journal::{ArchiveFrom, Entry, Journal};
use crate::ledger::{Fact, Ledger};
use argus_core::failpoint;

use super::day_pieces::DayPiece;
use super::prepare::{Archive, ReadyUpload};
use super::removal::{Archived, Removals, finish_removal, remove_groups};
use crate::error::{Action, Context, Error, Store};

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
    (mut good, duplicates): (Vec<ReadyUpload>, Vec<Fact>),
    removal: &mut Removals,
) -> Result<Vec<(PathBuf, bool)>, Stopped> {
    let started = Instant::now();
    let lap = |what: &str| log::debug!("commit: {what} after {:?}", started.elapsed());
    let plan = Plan::new(config, &good)?;
    let entries = plan.entries(&good);
    journal
        .record(&entries)
        .or_store(Action::Write, Store::Journal)?;
    // The journal names the archives' temporary files: from now on they stay until the
    // batch is committed or its recovery has looked at them (`recover`).
    for g in &mut good {
        if let Archive::Staged(staged) = &mut g.archive {
            staged.keep_on_drop()?;
        }
    }
    failpoint::hit("journaled");
    lap("journaled");

    plan.append(config, &good, &entries)?;
    let sync = sync_mode(&good);
    plan.sync_days(config, sync)?;
    failpoint::hit("synced");
    lap("appended and synced");

    let notes = plan.sources(config, &good, &entries);
    let archived = archive(config, good, sync)?;
    if !archived.taken.is_empty() {
        let days = plan
            .targets
            .into_iter()
            .map(|(path, t)| (path, t.start_len == 0));
        return Err(Stopped::Taken {
            uploads: archived.taken,
            salvaged: archived.salvaged,
            days: days.collect(),
        });
    }
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
    remove_groups(config, queue, archived, slot, removal)?;
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

/// Why a batch was not committed. Either way its journal holds it, for the rollback.
#[derive(Debug)]
pub(super) enum Stopped {
    /// A step failed: the pass stops.
    Failed(Error),
    /// The archive names of these uploads were taken before (they look ingested before), and
    /// the renames refused to replace them; every other archive is in place. Once rolled back,
    /// the batch is complete but for them, which are refused, and the pass goes on.
    Taken {
        /// Each upload with the archive name found taken.
        uploads: Vec<(Upload, PathBuf)>,
        /// The salvaged uploads whose archives are in place, each with its reason: they go to
        /// the quarantine before the rollback completes them, as after a commit.
        salvaged: Vec<(Upload, String)>,
        /// The day files the batch appended to, each with whether it began them.
        days: Vec<(PathBuf, bool)>,
    },
}

impl From<Error> for Stopped {
    fn from(e: Error) -> Self {
        Stopped::Failed(e)
    }
}

impl From<argus_core::Error> for Stopped {
    fn from(e: argus_core::Error) -> Self {
        Stopped::Failed(e.into())
    }
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
                    archive_from: match &g.archive {
                        Archive::Staged(staged) => ArchiveFrom::Temp(staged.temp_path().to_owned()),
                        Archive::Move(_) => ArchiveFrom::Out,
                    },
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
/// one directory sync), moves by rename. An archive whose name is taken is left out (its
/// temporary file, or its `.out`, stays where it is) and its upload returned as `taken`; any
/// other failure stops the commit.
fn archive(config: &Config, good: Vec<ReadyUpload>, sync: SyncMode) -> Result<Archived, Error> {
    let publisher = Publisher::open(&config.archive_dir)?.with_sync(sync);
    let mut batch = publisher.batch();
    let mut moves = Vec::new();
    let mut all = Vec::with_capacity(good.len());
    for g in good {
        let ReadyUpload {
            upload,
            archive,
            salvaged: why,
            ..
        } = g;
        let dest = match archive {
            Archive::Staged(staged) => {
                let dest = staged.dest().to_path_buf();
                batch.add(staged);
                dest
            }
            Archive::Move(dest) => {
                moves.push((upload.out_path().to_path_buf(), dest.clone()));
                dest
            }
        };
        all.push((upload, why, dest));
    }
    let report = batch.commit()?;
    let mut taken = BTreeSet::new();
    for (path, e) in report.failed {
        match e {
            argus_core::Error::Exists { .. } => {
                taken.insert(path);
            }
            e => return Err(e).or_file(Action::Archive, &path),
        }
    }
    let mut moved = false;
    for (from, to) in moves {
        match publish::rename_noreplace(&from, &to) {
            Ok(()) => moved = true,
            Err(argus_core::Error::Exists { .. }) => {
                taken.insert(to);
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        failpoint::hit("archived");
    }
    if moved {
        publisher.sync_dir()?;
    }
    let mut archived = Archived {
        uploads: Vec::with_capacity(all.len()),
        salvaged: Vec::new(),
        taken: Vec::new(),
    };
    for (upload, why, dest) in all {
        match why {
            _ if taken.contains(&dest) => archived.taken.push((upload, dest)),
            Some(reason) => archived.salvaged.push((upload, reason)),
            None => archived.uploads.push(upload),
        }
    }
    Ok(archived)
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
