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
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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
    /// The content hashes (first 8 bytes of SHA-256, hex) of the most recent chunks, by number.
    pub recent: BTreeMap<u64, String>,
}

/// What the ledger knows of one client (by WebJob client id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// Upload time (from the stem, Unix seconds) of the newest upload ingested.
    pub last_upload: Option<i64>,
    /// Per hour (Unix seconds / 3600): uploads and bytes ingested.
    pub hours: BTreeMap<i64, (u64, u64)>,
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
    recent_stems: BTreeMap<String, i64>,
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
            recent_stems: BTreeMap::new(),
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
                let ok = if name == "ledger" {
                    ledger.load_snapshot_line(&line)
                } else if let Some(fact) = decode(&line) {
                    ledger.apply(&fact);
                    true
                } else {
                    false
                };
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
                if h.recent.get(&seq).is_some_and(|known| known == sha) {
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
            } => {
                let h = self.hosts.entry(host.clone()).or_default();
                h.client.clone_from(client);
                let seq = *seq;
                if sha != "-" {
                    h.recent.insert(seq, sha.clone());
                    while h.recent.len() > RECENT {
                        h.recent.pop_first();
                    }
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
            } => {
                if self.recent_stems.insert(stem.clone(), *at).is_some() {
                    return;
                }
                let c = self.clients.entry(client.clone()).or_default();
                c.last_upload = Some(c.last_upload.map_or(*at, |l| l.max(*at)));
                let hour = at.div_euclid(3600);
                let slot = c.hours.entry(hour).or_insert((0, 0));
                slot.0 += 1;
                slot.1 += bytes;
                let newest = c.hours.keys().next_back().copied().unwrap_or(hour);
                c.hours.retain(|h, _| *h > newest - KEEP_HOURS);
                // Stems are unique per upload; keep only the recent ones to bound memory.
                if self.recent_stems.len() > 200_000 {
                    let cutoff = at - KEEP_HOURS * 3600;
                    self.recent_stems.retain(|_, t| *t > cutoff);
                }
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
        let mut buf = Vec::new();
        for (host, h) in &self.hosts {
            let gaps: Vec<String> = h.gaps.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            let recent: Vec<String> = h.recent.iter().map(|(q, h)| format!("{q}:{h}")).collect();
            let body = format!(
                "H {host} {} {} {} {} {} {} {}",
                if h.client.is_empty() { "-" } else { &h.client },
                h.max_seq,
                h.gaps_dropped,
                h.duplicates,
                if gaps.is_empty() {
                    "-".to_owned()
                } else {
                    gaps.join(",")
                },
                h.first_seq.map_or("-".to_owned(), |f| f.to_string()),
                if recent.is_empty() {
                    "-".to_owned()
                } else {
                    recent.join(",")
                }
            );
            push_line(&body, &mut buf);
        }
        for (client, c) in &self.clients {
            let hours: Vec<String> = c
                .hours
                .iter()
                .map(|(h, (n, b))| format!("{h}:{n}:{b}"))
                .collect();
            let body = format!(
                "K {client} {} {}",
                c.last_upload.map_or("-".to_owned(), |l| l.to_string()),
                if hours.is_empty() {
                    "-".to_owned()
                } else {
                    hours.join(",")
                }
            );
            push_line(&body, &mut buf);
        }
        let tmp = self.dir.join("ledger.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join("ledger"))?;
        argus_core::publish::sync_dir(&self.dir).map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(log) = self.log.as_mut() {
            log.set_len(0)?;
            log.sync_data()?;
        }
        self.log_lines = 0;
        Ok(())
    }

    fn load_snapshot_line(&mut self, line: &[u8]) -> bool {
        let Some(body) = checked(line) else {
            return false;
        };
        let f: Vec<&str> = body.split(' ').collect();
        match f.as_slice() {
            ["H", host, client, max, dropped, dups, gaps, rest @ ..] if rest.len() <= 2 => {
                let first = &rest[..rest.len().min(1)];
                let mut recent = BTreeMap::new();
                if let Some(list) = rest.get(1).filter(|l| **l != "-") {
                    for item in list.split(',') {
                        let Some((q, h)) = item.split_once(':') else {
                            return false;
                        };
                        let Ok(q) = q.parse() else { return false };
                        recent.insert(q, h.to_owned());
                    }
                }
                let parse_gaps = || -> Option<Vec<(u64, u64)>> {
                    if *gaps == "-" {
                        return Some(Vec::new());
                    }
                    gaps.split(',')
                        .map(|g| {
                            let (a, b) = g.split_once('-')?;
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect()
                };
                let (Ok(max_seq), Ok(gaps_dropped), Ok(duplicates), Some(gaps)) = (
                    max.parse::<u64>(),
                    dropped.parse(),
                    dups.parse(),
                    parse_gaps(),
                ) else {
                    return false;
                };
                // Snapshots written before `first_seq` counted every sequence from 1.
                let first_seq = match first.first() {
                    None => (max_seq > 0).then_some(1),
                    Some(&"-") => None,
                    Some(f) => match f.parse() {
                        Ok(f) => Some(f),
                        Err(_) => return false,
                    },
                };
                self.hosts.insert(
                    (*host).to_owned(),
                    HostState {
                        client: if *client == "-" {
                            String::new()
                        } else {
                            (*client).to_owned()
                        },
                        first_seq,
                        max_seq,
                        gaps,
                        gaps_dropped,
                        duplicates,
                        recent,
                    },
                );
                true
            }
            ["K", client, last, hours] => {
                let last_upload = if *last == "-" {
                    None
                } else {
                    last.parse().ok()
                };
                let mut map = BTreeMap::new();
                if *hours != "-" {
                    for h in hours.split(',') {
                        let mut it = h.split(':').map(str::parse::<i64>);
                        let (Some(Ok(hour)), Some(Ok(n)), Some(Ok(b))) =
                            (it.next(), it.next(), it.next())
                        else {
                            return false;
                        };
                        map.insert(hour, (n.unsigned_abs(), b.unsigned_abs()));
                    }
                }
                self.clients.insert(
                    (*client).to_owned(),
                    ClientState {
                        last_upload,
                        hours: map,
                    },
                );
                true
            }
            _ => false,
        }
    }
}

fn push_line(body: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(body.as_bytes());
    out.push(b' ');
    out.extend_from_slice(checksum(body.as_bytes()).as_bytes());
    out.push(b'\n');
}

fn checked(line: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(line).ok()?;
    let (body, sum) = line.rsplit_once(' ')?;
    (checksum(body.as_bytes()) == sum).then_some(body)
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

fn encode(fact: &Fact, out: &mut Vec<u8>) {
    let body = match fact {
        Fact::Chunk {
            host,
            seq,
            client,
            sha,
        } => format!("C {host} {seq} {client} {sha}"),
        Fact::Duplicate { host, seq } => format!("D {host} {seq}"),
        Fact::Upload {
            client,
            at,
            bytes,
            stem,
        } => format!("U {client} {at} {bytes} {stem}"),
    };
    push_line(&body, out);
}

fn decode(line: &[u8]) -> Option<Fact> {
    let body = checked(line)?;
    let f: Vec<&str> = body.split(' ').collect();
    match f.as_slice() {
        ["C", host, seq, client, sha @ ..] if sha.len() <= 1 => Some(Fact::Chunk {
            host: (*host).to_owned(),
            seq: seq.parse().ok()?,
            client: (*client).to_owned(),
            sha: sha.first().map_or("-", |s| s).to_owned(),
        }),
        ["D", host, seq] => Some(Fact::Duplicate {
            host: (*host).to_owned(),
            seq: seq.parse().ok()?,
        }),
        ["U", client, at, bytes, stem] => Some(Fact::Upload {
            client: (*client).to_owned(),
            at: at.parse().ok()?,
            bytes: bytes.parse().ok()?,
            stem: (*stem).to_owned(),
        }),
        _ => None,
    }
}

/// The short content hash the ledger keeps per chunk: the first 8 bytes of its SHA-256, hex.
pub fn short_hash(sha256: &[u8; 32]) -> String {
    argus_core::manifest::hex(&sha256[..8])
}

fn checksum(bytes: &[u8]) -> String {
    argus_core::manifest::hex(&Sha256::digest(bytes)[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(host: &str, seq: u64) -> Fact {
        Fact::Chunk {
            host: host.into(),
            seq,
            client: "c1".into(),
            sha: format!("{seq:016x}"),
        }
    }

    fn sha(seq: u64) -> String {
        format!("{seq:016x}")
    }

    fn upload(stem: &str, at: i64, bytes: u64) -> Fact {
        Fact::Upload {
            client: "c1".into(),
            at,
            bytes,
            stem: stem.into(),
        }
    }

    #[test]
    fn gaps_and_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Ledger::open(dir.path()).expect("open");
        for seq in [1, 2, 4] {
            assert_eq!(l.check("s1", seq, &sha(seq)), Seen::New);
            l.record(&[chunk("s1", seq)]).expect("record");
        }
        assert_eq!(l.hosts["s1"].gaps, [(3, 3)]);
        assert_eq!(l.check("s1", 2, &sha(2)), Seen::Duplicate);
        assert_eq!(
            l.check("s1", 2, &sha(99)),
            Seen::Reused,
            "same number, other bytes: the sensor's numbering went back"
        );
        assert_eq!(
            l.check("s1", 3, &sha(3)),
            Seen::New,
            "a late chunk fills its gap"
        );
        l.record(&[chunk("s1", 9)]).expect("record");
        assert_eq!(l.hosts["s1"].gaps, [(3, 3), (5, 8)]);
        l.record(&[chunk("s1", 6), chunk("s1", 3)]).expect("record");
        assert_eq!(l.hosts["s1"].gaps, [(5, 5), (7, 8)]);
        // Facts replayed twice change nothing.
        l.record(&[chunk("s1", 6), chunk("s1", 9)]).expect("record");
        assert_eq!(l.hosts["s1"].gaps, [(5, 5), (7, 8)]);
        l.record(&[Fact::Duplicate {
            host: "s1".into(),
            seq: 2,
        }])
        .expect("record");
        assert_eq!(l.hosts["s1"].duplicates, 1);
    }

    #[test]
    fn a_sequence_starts_at_the_first_chunk_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Ledger::open(dir.path()).expect("open");
        // A sensor that shipped 41 chunks before this ledger existed: no gap for them.
        l.record(&[chunk("s1", 42), chunk("s1", 43)])
            .expect("record");
        assert!(l.hosts["s1"].gaps.is_empty());
        assert_eq!(l.check("s1", 43, &sha(43)), Seen::Duplicate);
        assert_eq!(l.check("s1", 41, &sha(41)), Seen::New, "never seen");
        // An older chunk arriving late extends the sequence down, with the gap it reveals.
        l.record(&[chunk("s1", 39)]).expect("record");
        assert_eq!(l.hosts["s1"].first_seq, Some(39));
        assert_eq!(l.hosts["s1"].gaps, [(40, 41)]);
        assert_eq!(l.check("s1", 39, &sha(39)), Seen::Duplicate);
        assert_eq!(l.check("s1", 40, &sha(40)), Seen::New);
        l.record(&[chunk("s1", 38), chunk("s1", 41)])
            .expect("record");
        assert_eq!(l.hosts["s1"].gaps, [(40, 40)]);
        let before = l.hosts.clone();
        l.compact().expect("compact");
        assert_eq!(Ledger::load(dir.path()).expect("reload").hosts, before);
    }

    #[test]
    fn forgotten_gaps_never_turn_a_late_chunk_into_a_duplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Ledger::open(dir.path()).expect("open");
        // Every other chunk missing: one more gap than is kept.
        let facts: Vec<Fact> = (0..=MAX_GAPS as u64 + 1)
            .map(|i| chunk("s1", 1 + 2 * i))
            .collect();
        l.record(&facts).expect("record");
        let h = &l.hosts["s1"];
        assert_eq!(h.gaps.len(), MAX_GAPS);
        assert_eq!(h.gaps_dropped, 1);
        assert_eq!(
            l.check("s1", 2, &sha(2)),
            Seen::New,
            "the late chunk of a forgotten gap is appended"
        );
        assert_eq!(l.check("s1", 4, &sha(4)), Seen::New, "a known gap");
        assert_eq!(
            l.check("s1", 5, &sha(5)),
            Seen::Reused,
            "seen, but too long ago to compare its content: appended rather than left out"
        );
        let last = 1 + 2 * (MAX_GAPS as u64 + 1);
        assert_eq!(
            l.check("s1", last, &sha(last)),
            Seen::Duplicate,
            "a recent chunk"
        );
    }

    #[test]
    fn survives_reload_compaction_and_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = Ledger::open(dir.path()).expect("open");
        let t = 1_800_000_000;
        l.record(&[
            chunk("s1", 1),
            chunk("s1", 5),
            chunk("s2", 7),
            Fact::Duplicate {
                host: "s2".into(),
                seq: 7,
            },
            upload("a", t, 100),
            upload("b", t + 4000, 50),
            upload("b", t + 4000, 50),
        ])
        .expect("record");
        let state = |l: &Ledger| (l.hosts.clone(), l.clients.clone());
        let before = state(&l);
        assert_eq!(l.clients["c1"].hours.values().map(|v| v.0).sum::<u64>(), 2);
        drop(l);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("ledger.log"))
            .expect("open log");
        f.write_all(b"C s1 99 c1 dead").expect("torn");
        drop(f);
        let mut l = Ledger::open(dir.path()).expect("reload");
        assert_eq!(state(&l), before);
        l.compact().expect("compact");
        assert_eq!(
            fs::metadata(dir.path().join("ledger.log"))
                .expect("log")
                .len(),
            0
        );
        let l = Ledger::load(dir.path()).expect("reload snapshot");
        assert_eq!(state(&l), before);
        assert_eq!(l.hosts["s1"].gaps, [(2, 4)]);
    }
}
