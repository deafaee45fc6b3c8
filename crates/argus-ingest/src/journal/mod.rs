//! The ingest journal: what makes ingest exactly-once across crashes.
//!
//! Before any byte of a batch of uploads is appended to a day file, one line per upload is
//! written to the journal and synced: the upload's `.rdy` and `.out`, the day file, its size
//! before the append, the archive path, and the name the archive is renamed from. Then, per
//! batch: append every `.out` in order, sync the day files and archive data, publish the
//! archives, remove the groups (`.rdy` last), and clear the batch's lines. The removal runs
//! while the next batch is committed, so the journal is two files ([`FILES`]) that batches take
//! in turn: one holds the batch being committed, the other the batch before it until its groups
//! are gone (and are durably so). A crash anywhere leaves either a journal the next run can act
//! on, or nothing to do; recovery reads both files as one.
//!
//! On start, [`plan_recovery`] decides from each entry's facts:
//!
//! - an upload is **complete** when its archive is in place (archives are published only after
//!   the day file's data is durable) or its `.rdy` is gone (groups are removed only after their
//!   archive is durable). Its archive is in place when the archive's name exists and the name
//!   it was renamed from (its temporary file, or the `.out` moved) does not: a file of that
//!   name from before, which the rename refused to replace, is not it. A complete upload whose
//!   group is still there only needs removing.
//! - every other upload is **incomplete**: its day file is truncated back to the smallest
//!   `size_before` among the incomplete uploads of that file, and the normal pass redoes them.
//! - a complete upload whose data lies beyond that cut (possible only if a file system reordered
//!   renames on power loss) is re-appended after the cut, from its `.out` or from its archive.
//!
//! Lines are sealed (`argus_core::stateline`), so a line torn by a crash while the journal was being written is
//! recognised and ignored: its batch had not appended anything yet.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use argus_core::escape::{percent_decode, percent_encode};
use argus_core::ranges::ByteRange;
use argus_core::stateline::StateLines;

/// One upload being ingested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The group's `.rdy`: while it exists, the group is in the dropzone.
    pub rdy: PathBuf,
    /// The group's `.out`.
    pub out: PathBuf,
    /// The day file it is appended to (`None` for an empty `.out`, which appends nothing).
    pub day: Option<PathBuf>,
    /// The day file's size before the append.
    pub size_before: u64,
    /// Where the raw upload is archived.
    pub archive: PathBuf,
    /// The client id it came from.
    pub client: String,
    /// Its upload time (from the stem), Unix seconds.
    pub at: i64,
    /// Bytes appended to the day file.
    pub bytes: u64,
    /// The new chunks it brings, from its manifest (none without
    /// one).
    pub chunks: Vec<ChunkRef>,
    /// The byte ranges `(offset, len)` of `.out` appended: all of it, less chunks ingested
    /// before. Recovery appends exactly these again when it must.
    pub segments: Segments,
    /// The argus record version (3 or 5) of its last stream, if it holds any record.
    pub version: Option<u8>,
    /// The argus records appended (`None` in lines written before records were recorded).
    pub records: Option<u64>,
    /// What its argus management records say of the sensor (on an upload's first piece).
    pub health: Option<crate::health::UploadHealth>,
    /// What tells that the file at `archive` is this upload's archive, not one of that name
    /// from before.
    pub archive_from: ArchiveFrom,
}

/// Where an upload's archive comes from until it is renamed into place: while that name
/// exists, the file at the archive's name (if any) is not this upload's archive. A name from
/// before (an upload of that name ingested earlier) is only found by the rename, which refuses
/// to replace it; nothing looks for it beforehand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ArchiveFrom {
    /// A line written before this was recorded: only names probed free were journaled, so the
    /// archive's existence alone tells.
    #[default]
    Unknown,
    /// The archive is written under this temporary name in the archive directory.
    Temp(PathBuf),
    /// The `.out` itself is renamed to the archive.
    Out,
}

/// A chunk an upload brings, by its manifest: its sensor, sequence number and short content
/// hash (see `ledger::short_hash`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// The sensor (`host` of the manifest).
    pub host: String,
    /// Its sequence number.
    pub seq: u64,
    /// The first 8 bytes of its SHA-256, in hex (`-` when unknown).
    pub sha: String,
}

impl Entry {
    /// The ledger facts of this upload once complete.
    pub fn facts(&self) -> Vec<crate::ledger::Fact> {
        let mut facts: Vec<crate::ledger::Fact> = self
            .chunks
            .iter()
            .map(|c| crate::ledger::Fact::Chunk {
                host: c.host.clone(),
                seq: c.seq,
                client: self.client.clone(),
                sha: c.sha.clone(),
                version: self.version,
            })
            .collect();
        let stem = self
            .rdy
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        facts.push(crate::ledger::Fact::Upload {
            client: self.client.clone(),
            at: self.at,
            bytes: self.bytes,
            stem,
            version: self.version,
            health: self.health.clone(),
        });
        facts
    }
}

/// The ledger facts of complete uploads, from their entries: the pieces of one upload (entries
/// of one `.rdy`, one per day file it was split over) make one upload fact, their bytes summed,
/// and bring their chunks once.
pub fn facts<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<crate::ledger::Fact> {
    let mut merged: Vec<Entry> = Vec::new();
    for e in entries {
        match merged.last_mut() {
            Some(last) if last.rdy == e.rdy => {
                last.bytes += e.bytes;
                last.chunks.extend(e.chunks.iter().cloned());
                if last.health.is_none() {
                    last.health.clone_from(&e.health);
                }
            }
            _ => merged.push(e.clone()),
        }
    }
    merged.iter().flat_map(Entry::facts).collect()
}

/// The journal's two files, in `STATE_DIR`: batches take them in turn, so that the groups of
/// one batch are removed while the next is committed, its entries kept until they are gone.
pub const FILES: [&str; 2] = ["journal", "journal.2"];

/// The journal: two files, one taking the batch being committed while the other may still hold
/// the batch before it, whose groups are being removed.
#[derive(Debug)]
pub struct Journal {
    files: [File; 2],
    lens: [u64; 2],
    /// The file the next batch is recorded in.
    current: usize,
}

/// One of the journal's files, handed over with the batch it holds (see [`Journal::hand_over`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

impl Journal {
    /// Opens (creating) the journal's files and returns the entries they hold from an
    /// interrupted run: the first file's, then the second's, each in order. Damaged lines are
    /// skipped with a warning.
    pub fn open(state_dir: &Path) -> io::Result<(Journal, Vec<Entry>)> {
        let mut entries = Vec::new();
        let [a, b] = FILES.map(|name| open_one(&state_dir.join(name), &mut entries));
        let (a, b) = (a?, b?);
        Ok((
            Journal {
                lens: [a.1, b.1],
                files: [a.0, b.0],
                current: 0,
            },
            entries,
        ))
    }

    /// True when the journal holds nothing.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lens == [0, 0]
    }

    /// Appends entries and makes them durable before returning.
    pub fn record(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            encode(e, &mut buf);
        }
        let (file, len) = (&mut self.files[self.current], &mut self.lens[self.current]);
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            // Leave no half-written batch behind: it would only be skipped as damaged, but a clean
            // journal is easier to read for an operator.
            let _ignored = file.set_len(*len);
            return Err(e);
        }
        *len += buf.len() as u64;
        Ok(())
    }

    /// Hands over the file holding the batch recorded so far (complete, its groups about to be
    /// removed): later batches are recorded in the other file, which must be empty (its batch
    /// cleared with [`clear_slot`](Self::clear_slot)); when it is not, nothing changes and the
    /// error says so (two batches in one file would be forgotten together).
    pub fn hand_over(&mut self) -> io::Result<Slot> {
        let other = 1 - self.current;
        if self.lens[other] != 0 {
            return Err(io::Error::other(format!(
                "the journal file {} still holds a batch whose uploads are not all removed",
                FILES[other]
            )));
        }
        let slot = Slot(self.current);
        self.current = other;
        Ok(slot)
    }

    /// Empties one file, durably: every upload it recorded is complete and removed.
    pub fn clear_slot(&mut self, slot: Slot) -> io::Result<()> {
        let (file, len) = (&mut self.files[slot.0], &mut self.lens[slot.0]);
        if *len == 0 {
            return Ok(());
        }
        file.set_len(0)?;
        file.sync_data()?;
        *len = 0;
        Ok(())
    }

    /// Empties the journal, durably: every recorded upload is complete.
    pub fn clear(&mut self) -> io::Result<()> {
        self.clear_slot(Slot(0))?;
        self.clear_slot(Slot(1))?;
        self.current = 0;
        Ok(())
    }
}

/// Opens (creating) one journal file, adding the entries it holds to `entries`; returns it and
/// its length.
fn open_one(path: &Path, entries: &mut Vec<Entry>) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut reader = BufReader::new(&file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        match decode(&line) {
            Some(entry) => entries.push(entry),
            None => log::warn!(
                "journal {} line {number} is damaged (a crash while it was written?) and is ignored",
                path.display()
            ),
        }
    }
    let len = file.metadata()?.len();
    Ok((file, len))
}

const FIELDS: usize = 14;

/// The journal's lines: a tab, then 6 bytes of SHA-256.
const LINES: StateLines = StateLines::new(b'\t', 6);

fn encode(e: &Entry, line: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(256);
    let out = &mut body;
    out.extend_from_slice(b"A\t");
    escape(e.rdy.as_os_str(), out);
    out.push(b'\t');
    escape(e.out.as_os_str(), out);
    out.push(b'\t');
    match &e.day {
        Some(day) => escape(day.as_os_str(), out),
        None => out.push(b'-'),
    }
    out.push(b'\t');
    out.extend_from_slice(e.size_before.to_string().as_bytes());
    out.push(b'\t');
    escape(e.archive.as_os_str(), out);
    out.push(b'\t');
    escape(OsStr::new(&e.client), out);
    out.extend_from_slice(format!("\t{}\t{}\t", e.at, e.bytes).as_bytes());
    if e.chunks.is_empty() {
        out.push(b'-');
    }
    for (i, ChunkRef { host, seq, sha }) in e.chunks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape(OsStr::new(host), out);
        out.extend_from_slice(format!(":{seq}:").as_bytes());
        escape(OsStr::new(sha), out);
    }
    out.push(b'\t');
    if e.segments.is_empty() {
        out.push(b'-');
    }
    for (i, ByteRange { offset, len }) in e.segments.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{offset}+{len}").as_bytes());
    }
    out.push(b'\t');
    match e.version {
        Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b'\t');
    match e.records {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b'\t');
    match &e.health {
        Some(h) => out.extend_from_slice(h.encode().as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b'\t');
    // `escape` writes a lone `-` as `%2D`, not a lone `=`: a path of that one byte (never a
    // temporary file's, but lines must read back as written) is written `%3D`.
    match &e.archive_from {
        ArchiveFrom::Unknown => out.push(b'-'),
        ArchiveFrom::Out => out.push(b'='),
        ArchiveFrom::Temp(temp) if temp.as_os_str() == "=" => out.extend_from_slice(b"%3D"),
        ArchiveFrom::Temp(temp) => escape(temp.as_os_str(), out),
    }
    LINES.seal(&body, line);
}

fn decode(line: &[u8]) -> Option<Entry> {
    // A line without its newline was torn, even if its seal is whole.
    let body = LINES.unseal(line.strip_suffix(b"\n")?)?;
    let mut fields = body.split(|&b| b == b'\t');
    if fields.next()? != b"A" {
        return None;
    }
    let values: Vec<&[u8]> = fields.collect();
    // Lines of the format before segments (9 fields) appended whole uploads; lines before
    // versions (10 fields) have none, nor do lines before records (11 fields), before the
    // sensor's health (12 fields) or before the archive's origin (13 fields).
    if !(FIELDS - 5..=FIELDS).contains(&values.len()) {
        return None;
    }
    let path = |v: &[u8]| percent_decode(v).map(|b| PathBuf::from(OsStr::from_bytes(&b)));
    Some(Entry {
        rdy: path(values[0])?,
        out: path(values[1])?,
        day: if values[2] == b"-" {
            None
        } else {
            Some(path(values[2])?)
        },
        size_before: std::str::from_utf8(values[3]).ok()?.parse().ok()?,
        archive: path(values[4])?,
        client: String::from_utf8(percent_decode(values[5])?).ok()?,
        at: std::str::from_utf8(values[6]).ok()?.parse().ok()?,
        bytes: std::str::from_utf8(values[7]).ok()?.parse().ok()?,
        chunks: if values[8] == b"-" {
            Vec::new()
        } else {
            values[8]
                .split(|&b| b == b',')
                .map(|c| {
                    let mut parts = c.split(|&b| b == b':');
                    let host = String::from_utf8(percent_decode(parts.next()?)?).ok()?;
                    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
                    let sha = String::from_utf8(percent_decode(parts.next()?)?).ok()?;
                    let sha = crate::ledger::is_short_hash(&sha).then_some(sha)?;
                    parts
                        .next()
                        .is_none()
                        .then_some(ChunkRef { host, seq, sha })
                })
                .collect::<Option<Vec<_>>>()?
        },
        segments: match values.get(9).copied() {
            None => {
                let bytes: u64 = std::str::from_utf8(values[7]).ok()?.parse().ok()?;
                if bytes == 0 {
                    Vec::new()
                } else {
                    vec![ByteRange::new(0, bytes)]
                }
            }
            Some([b'-']) => Vec::new(),
            Some(v) => v
                .split(|&b| b == b',')
                .map(|seg| {
                    let (offset, len) = std::str::from_utf8(seg).ok()?.split_once('+')?;
                    Some(ByteRange::new(offset.parse().ok()?, len.parse().ok()?))
                })
                .collect::<Option<Vec<_>>>()?,
        },
        version: match values.get(10).copied() {
            None | Some([b'-']) => None,
            Some(v) => Some(std::str::from_utf8(v).ok()?.parse().ok()?),
        },
        records: match values.get(11).copied() {
            None | Some([b'-']) => None,
            Some(v) => Some(std::str::from_utf8(v).ok()?.parse().ok()?),
        },
        health: match values.get(12).copied() {
            None | Some([b'-']) => None,
            Some(v) => Some(crate::health::UploadHealth::decode(
                std::str::from_utf8(v).ok()?,
            )?),
        },
        archive_from: match values.get(13).copied() {
            None | Some([b'-']) => ArchiveFrom::Unknown,
            Some([b'=']) => ArchiveFrom::Out,
            Some(v) => ArchiveFrom::Temp(path(v)?),
        },
    })
}

/// One journal line read back (its newline included): the entry, or `None` when it is torn or
/// damaged. Not an API: the fuzz targets' way in to the line format.
#[doc(hidden)]
pub fn decode_line(line: &[u8]) -> Option<Entry> {
    decode(line)
}

/// An entry as one sealed journal line, newline included. Not an API: see [`decode_line`].
#[doc(hidden)]
pub fn encode_line(entry: &Entry, out: &mut Vec<u8>) {
    encode(entry, out);
}

fn escape(s: &OsStr, out: &mut Vec<u8>) {
    percent_encode(s.as_bytes(), out);
}

/// What the file system says about one entry now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The group's `.rdy` still exists.
    pub rdy_present: bool,
    /// The group's `.out` still exists.
    pub out_present: bool,
    /// This upload's archive is in place: a file exists at the archive's name, and the name it
    /// came from ([`ArchiveFrom`]) no longer does. See [`Facts::of`].
    pub archived: bool,
}

impl Facts {
    /// The facts of `entry`, given which paths exist now.
    pub fn of(entry: &Entry, exists: impl Fn(&Path) -> bool) -> Facts {
        let out_present = exists(&entry.out);
        let moved_in = match &entry.archive_from {
            ArchiveFrom::Unknown => true,
            ArchiveFrom::Out => !out_present,
            ArchiveFrom::Temp(temp) => !exists(temp),
        };
        Facts {
            rdy_present: exists(&entry.rdy),
            out_present,
            archived: moved_in && exists(&entry.archive),
        }
    }
}

/// Where to take an upload's bytes from when it must be appended again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `.out` in the dropzone.
    Out(PathBuf),
    /// The archive (decoded).
    Archive(PathBuf),
}

/// Byte ranges `(offset, len)` of an upload's `.out`.
pub type Segments = Vec<ByteRange>;

/// What recovery must do, in order: truncate, re-append, finish removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Day files to truncate back, and to which size.
    pub truncate: Vec<(PathBuf, u64)>,
    /// Complete uploads whose data was cut off by a truncation: append again, in this order,
    /// the byte ranges of the source given (those it appended the first time).
    pub reappend: Vec<(PathBuf, Source, Segments)>,
    /// Complete uploads whose group is still in the dropzone: remove the group.
    pub remove: Vec<Entry>,
    /// Incomplete uploads: rolled back; the normal pass ingests them again.
    pub redo: Vec<Entry>,
    /// Complete uploads whose data must be re-appended but whose bytes are nowhere (neither
    /// `.out` nor archive exists): reported, never guessed.
    pub lost: Vec<Entry>,
}

/// Decides recovery from the journal's entries and their facts (see the module docs). Pure.
pub fn plan_recovery(entries: &[Entry], facts: impl Fn(&Entry) -> Facts) -> Recovery {
    let mut plan = Recovery::default();
    let states: Vec<(&Entry, Facts)> = entries.iter().map(|e| (e, facts(e))).collect();
    let complete = |f: &Facts| f.archived || !f.rdy_present;

    // The cut per day file: the smallest size_before of its incomplete uploads.
    let mut cuts: BTreeMap<&Path, u64> = BTreeMap::new();
    for (e, f) in &states {
        if let (Some(day), false) = (&e.day, complete(f)) {
            let cut = cuts.entry(day.as_path()).or_insert(e.size_before);
            *cut = (*cut).min(e.size_before);
        }
    }
    plan.truncate = cuts.iter().map(|(p, c)| (p.to_path_buf(), *c)).collect();

    // Re-appended in the order they were first appended: by their size before, which grows
    // from batch to batch (the journal's two files may hold two batches, in either order).
    let mut reappend: Vec<(u64, PathBuf, Source, Segments)> = Vec::new();
    for (e, f) in &states {
        if !complete(f) {
            plan.redo.push((*e).clone());
            continue;
        }
        let beyond_cut = |day: &PathBuf| {
            cuts.get(day.as_path())
                .is_some_and(|&cut| e.size_before >= cut)
        };
        if let Some(day) = e.day.as_ref().filter(|d| beyond_cut(d)) {
            let source = if f.out_present {
                Some(Source::Out(e.out.clone()))
            } else if f.archived {
                Some(Source::Archive(e.archive.clone()))
            } else {
                None
            };
            match source {
                Some(s) => reappend.push((e.size_before, day.clone(), s, e.segments.clone())),
                None => plan.lost.push((*e).clone()),
            }
        }
        if f.rdy_present {
            plan.remove.push((*e).clone());
        }
    }
    reappend.sort_by_key(|r| r.0);
    plan.reappend = reappend
        .into_iter()
        .map(|(_, day, source, segments)| (day, source, segments))
        .collect();
    plan
}

#[cfg(test)]
mod tests;
