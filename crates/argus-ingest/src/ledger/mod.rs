//! The chunk ledger: which chunks of which sensor have been ingested, and when each client last
//! uploaded. It answers "did we lose a chunk anywhere?" (gaps in a host's sequence numbers), keeps
//! a reshipped chunk from being appended twice (duplicates), and feeds `process_argus status`.
//!
//! Durability and speed with thousands of hosts: the state lives in `STATE_DIR/ledger` (a
//! snapshot, rewritten atomically now and then) plus `STATE_DIR/ledger.log` (facts appended and
//! synced once per ingest batch). Loading replays the log over the snapshot. Every fact is
//! idempotent except a duplicate's count, so a fact written twice (the batch's log write, then
//! journal recovery after a crash) never changes the answer; a torn last line is ignored.
//!
//! Per host, the seen sequence numbers are kept as the first and highest seen plus the ranges
//! between them never seen (gaps), so memory stays small however many chunks a host ships. A
//! host's sequence starts at the first chunk this ledger sees: a sensor that shipped chunks
//! before process_argus (or this ledger) was installed shows no gap for them; a lower seq that
//! arrives later extends the sequence down (its own gap below the first is recorded then).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Gap ranges kept per host; beyond this the oldest are forgotten (and counted).
const MAX_GAPS: usize = 1000;

/// Log lines after which the snapshot is rewritten and the log emptied.
const COMPACT_AFTER: usize = 20_000;

/// Chunks per host whose content hash is remembered, to tell a chunk shipped again (same
/// number, same bytes) from a sensor whose numbering went back (same number, other bytes).
const RECENT: usize = 512;

/// How long per-hour upload counts are kept (status reports the last 24 hours).
const KEEP_HOURS: i64 = 26;

/// What the ledger knows of one sensor (by the `host` of its manifests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// The client id its chunks last came from.
    pub client: String,
    /// The lowest sequence number seen (the sequence starts there); `None` before any chunk.
    pub first_seq: Option<u64>,
    /// The highest sequence number seen.
    pub max_seq: u64,
    /// Ranges `(first, last)` between `first_seq` and `max_seq` never seen: chunks missing.
    pub gaps: Vec<(u64, u64)>,
    /// Gap ranges forgotten because there were too many.
    pub gaps_dropped: u64,
    /// Chunks that arrived again and were not appended again.
    pub duplicates: u64,
    /// The content hashes (first 8 bytes of SHA-256) of the most recent chunks, by number.
    pub recent: RecentChunks,
    /// The argus record version (3 or 5) of its highest-numbered chunk, when known.
    pub version: Option<u8>,
}

/// What the ledger knows of one client (by WebJob client id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// Upload time (from the stem, Unix seconds) of the newest upload ingested.
    pub last_upload: Option<i64>,
    /// Per hour (Unix seconds / 3600): uploads and bytes ingested.
    pub hours: BTreeMap<i64, (u64, u64)>,
    /// The argus version of its data: see [`Versions`].
    pub versions: Versions,
    /// What its argus management records say: capture drops, restarts, the clock.
    pub health: crate::health::SensorHealth,
}

/// The argus record version of a client's newest upload, and the one it had before, so that a
/// fleet's upgrade can be watched and a sensor that went back spotted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// The version (3 or 5) of the newest upload (by its time stamp) that held argus data.
    pub current: Option<u8>,
    /// That upload's time stamp (Unix seconds).
    pub at: i64,
    /// The version before the last change, if it ever changed.
    pub previous: Option<u8>,
}

impl Versions {
    /// Notes an upload stamped `at` of version `v` (idempotent; an older upload changes nothing).
    pub fn note(&mut self, v: u8, at: i64) {
        if self.current.is_some() && at < self.at {
            return;
        }
        if let Some(old) = self.current.filter(|&old| old != v) {
            self.previous = Some(old);
        }
        self.current = Some(v);
        self.at = at;
    }

    /// True when the newest upload is of an older version than the one before.
    pub fn went_back(&self) -> bool {
        matches!((self.current, self.previous), (Some(c), Some(p)) if c < p)
    }

    fn encode(&self) -> String {
        match self.current {
            None => "-".to_owned(),
            Some(v) => format!(
                "{v}:{}:{}",
                self.at,
                self.previous.map_or("-".to_owned(), |p| p.to_string())
            ),
        }
    }

    fn decode(s: &str) -> Option<Versions> {
        if s == "-" {
            return Some(Versions::default());
        }
        let mut it = s.split(':');
        let (Some(v), Some(at), Some(prev), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return None;
        };
        Some(Versions {
            current: Some(v.parse().ok()?),
            at: at.parse().ok()?,
            previous: if prev == "-" {
                None
            } else {
                Some(prev.parse().ok()?)
            },
        })
    }
}

/// What a chunk turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Never seen before (possibly filling a gap).
    New,
    /// Already ingested, same bytes: not to be appended again.
    Duplicate,
    /// Its number was seen, but with other bytes (or too long ago to compare): the sensor's
    /// numbering went back (its state was reset) or collided. Appended, and reported: data is
    /// never left out on the strength of a number alone.
    Reused,
}

/// One fact, as appended to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A chunk of `host` with sequence number `seq` was ingested from `client`.
    Chunk {
        /// Sensor.
        host: String,
        /// Sequence number.
        seq: u64,
        /// Client id it came from.
        client: String,
        /// The first 8 bytes of its SHA-256, in hex (`-` when unknown).
        sha: String,
        /// The argus version of the upload it came in (of its last stream), when known.
        version: Option<u8>,
    },
    /// A chunk arrived again and was not appended.
    Duplicate {
        /// Sensor.
        host: String,
        /// Sequence number.
        seq: u64,
    },
    /// An upload of `client`, stamped `at` (Unix seconds), of `bytes` bytes, was ingested.
    Upload {
        /// Client id.
        client: String,
        /// Upload time from its name.
        at: i64,
        /// Bytes appended.
        bytes: u64,
        /// Its stem: the same upload recorded twice counts once.
        stem: String,
        /// The argus version of its last stream, when it held any record.
        version: Option<u8>,
        /// What its argus management records say of the sensor.
        health: Option<crate::health::UploadHealth>,
    },
}

/// The ledger, in memory, with its files.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    /// Per host.
    pub hosts: BTreeMap<String, HostState>,
    /// Per client.
    pub clients: BTreeMap<String, ClientState>,
    /// Stems of uploads counted recently, so a fact replayed twice counts once.
    recent_stems: RecentStems,
    log: Option<File>,
    log_lines: usize,
}

impl Ledger {
    /// Loads the ledger of `state_dir` (empty when there is none yet), for reading only.
    pub fn load(state_dir: &Path) -> io::Result<Ledger> {
        let mut ledger = Ledger {
            dir: state_dir.to_path_buf(),
            hosts: BTreeMap::new(),
            clients: BTreeMap::new(),
            recent_stems: RecentStems::new(KEEP_HOURS * 3600),
            log: None,
            log_lines: 0,
        };
        for name in ["ledger", "ledger.log"] {
            let path = state_dir.join(name);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut lines = 0;
            for line in BufReader::new(file).split(b'\n') {
                let line = line?;
                lines += 1;
                let ok = ledger.replay_line(name == "ledger", &line);
                if !ok {
                    log::warn!(
                        "{} line {lines} is damaged (a crash while it was written?) and is ignored",
                        path.display()
                    );
                }
            }
            if name == "ledger.log" {
                ledger.log_lines = lines;
            }
        }
        Ok(ledger)
    }

    /// One line of the snapshot (`snapshot`) or of the log, applied; false when it is damaged.
    fn replay_line(&mut self, snapshot: bool, line: &[u8]) -> bool {
        if snapshot {
            self.load_snapshot_line(line)
        } else if let Some(fact) = decode(line) {
            self.apply(&fact);
            true
        } else {
            false
        }
    }

    /// The ledger the texts of a snapshot and a log describe, damaged lines skipped: what
    /// [`Ledger::load`] reads, without the files. Not an API: the fuzz targets' way in.
    #[doc(hidden)]
    pub fn from_texts(snapshot: &[u8], log: &[u8]) -> Ledger {
        let mut ledger = Ledger {
            dir: PathBuf::new(),
            hosts: BTreeMap::new(),
            clients: BTreeMap::new(),
            recent_stems: RecentStems::new(KEEP_HOURS * 3600),
            log: None,
            log_lines: 0,
        };
        for line in snapshot.split(|&b| b == b'\n') {
            ledger.replay_line(true, line);
        }
        for line in log.split(|&b| b == b'\n') {
            ledger.replay_line(false, line);
        }
        ledger
    }

    /// Loads the ledger and opens its log for appending (the writer holds the state lock).
    pub fn open(state_dir: &Path) -> io::Result<Ledger> {
        let mut ledger = Ledger::load(state_dir)?;
        ledger.log = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(state_dir.join("ledger.log"))?,
        );
        Ok(ledger)
    }

    /// Whether a chunk (number and content hash, see [`short_hash`]) was already ingested,
    /// without recording anything.
    pub fn check(&self, host: &str, seq: u64, sha: &str) -> Seen {
        match self.hosts.get(host) {
            Some(h)
                if h.first_seq.is_some_and(|first| first <= seq)
                    && seq <= h.max_seq
                    && !in_gaps(&h.gaps, seq) =>
            {
                if h.recent
                    .get(seq)
                    .is_some_and(|known| Some(known) == parse_hash(sha))
                {
                    Seen::Duplicate
                } else {
                    Seen::Reused
                }
            }
            _ => Seen::New,
        }
    }

    /// Applies a fact to the in-memory state (idempotent but for duplicate counts).
    pub fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Chunk {
                host,
                seq,
                client,
                sha,
                version,
            } => {
                let h = self.hosts.entry(host.clone()).or_default();
                h.client.clone_from(client);
                let seq = *seq;
                if version.is_some() && (h.first_seq.is_none() || seq >= h.max_seq) {
                    h.version = *version;
                }
                if let Some(hash) = parse_hash(sha) {
                    h.recent.insert(seq, hash);
                }
                match h.first_seq {
                    // The first chunk of this host: its sequence starts here.
                    None => {
                        h.first_seq = Some(seq);
                        h.max_seq = seq;
                        return;
                    }
                    Some(first) if seq < first => {
                        if seq + 1 < first {
                            h.gaps.insert(0, (seq + 1, first - 1));
                        }
                        h.first_seq = Some(seq);
                        return;
                    }
                    Some(_) => {}
                }
                if seq > h.max_seq {
                    if seq > h.max_seq + 1 {
                        h.gaps.push((h.max_seq + 1, seq - 1));
                        if h.gaps.len() > MAX_GAPS {
                            // Forget the oldest gap by moving the start of the known sequence past
                            // it: a late chunk from there is then taken as new and appended. A
                            // chunk is never left out on the strength of a forgotten record.
                            let (_, last) = h.gaps.remove(0);
                            h.first_seq = Some(last + 1);
                            h.gaps_dropped += 1;
                        }
                    }
                    h.max_seq = seq;
                } else {
                    fill_gap(&mut h.gaps, seq);
                }
            }
            Fact::Duplicate { host, .. } => {
                self.hosts.entry(host.clone()).or_default().duplicates += 1;
            }
            Fact::Upload {
                client,
                at,
                bytes,
                stem,
                version,
                health,
            } => {
                if !self.recent_stems.note(stem, *at) {
                    return;
                }
                let c = self.clients.entry(client.clone()).or_default();
                if let Some(h) = health {
                    c.health.note(h, *at);
                }
                if let Some(v) = version {
                    c.versions.note(*v, *at);
                }
                c.last_upload = Some(c.last_upload.map_or(*at, |l| l.max(*at)));
                let hour = at.div_euclid(3600);
                let slot = c.hours.entry(hour).or_insert((0, 0));
                // Saturating: a hand-edited log line must not overflow a counter.
                slot.0 = slot.0.saturating_add(1);
                slot.1 = slot.1.saturating_add(*bytes);
                let newest = c.hours.keys().next_back().copied().unwrap_or(hour);
                c.hours
                    .retain(|h, _| *h > newest.saturating_sub(KEEP_HOURS));
            }
        }
    }

    /// Applies facts and appends them to the log, durably (one sync for all of them).
    pub fn record(&mut self, facts: &[Fact]) -> io::Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for f in facts {
            encode(f, &mut buf);
        }
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| io::Error::other("the ledger was opened read-only"))?;
        log.write_all(&buf)?;
        log.sync_data()?;
        for f in facts {
            self.apply(f);
        }
        self.log_lines += facts.len();
        Ok(())
    }

    /// Rewrites the snapshot when the log has grown long. Call it only when no journal
    /// recovery is pending (the snapshot does not remember which uploads it counted).
    pub fn compact_if_needed(&mut self) -> io::Result<()> {
        if self.log_lines >= COMPACT_AFTER {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the snapshot from memory (atomically) and empties the log.
    pub fn compact(&mut self) -> io::Result<()> {
        let buf = self.snapshot();
        argus_core::publish::replace_durably(&self.dir.join("ledger"), &buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(log) = self.log.as_mut() {
            log.set_len(0)?;
            log.sync_data()?;
        }
        self.log_lines = 0;
        Ok(())
    }
}

fn in_gaps(gaps: &[(u64, u64)], seq: u64) -> bool {
    gaps.iter().any(|&(a, b)| a <= seq && seq <= b)
}

fn fill_gap(gaps: &mut Vec<(u64, u64)>, seq: u64) {
    if let Some(i) = gaps.iter().position(|&(a, b)| a <= seq && seq <= b) {
        let (a, b) = gaps[i];
        gaps.remove(i);
        if seq < b {
            gaps.insert(i, (seq + 1, b));
        }
        if a < seq {
            gaps.insert(i, (a, seq - 1));
        }
    }
}

/// One log line read back: the fact it holds, or `None` when it is damaged. Not an API: the
/// fuzz targets' way in to the line format.
#[doc(hidden)]
pub fn decode_line(line: &[u8]) -> Option<Fact> {
    decode(line)
}

/// A fact as one sealed log line, newline included. Not an API: see [`decode_line`].
#[doc(hidden)]
pub fn encode_line(fact: &Fact, out: &mut Vec<u8>) {
    encode(fact, out);
}

/// The short content hash the ledger keeps per chunk: the first 8 bytes of its SHA-256, hex.
pub fn short_hash(sha256: &[u8; 32]) -> String {
    argus_core::manifest::hex(&sha256[..8])
}

mod lines;
mod recent;
mod snapshot;
mod stems;

pub(crate) use lines::is_short_hash;
use lines::{decode, encode};
pub use recent::RecentChunks;
use recent::parse_hash;
use stems::RecentStems;

#[cfg(test)]
mod tests;
