//! The oracle: the walker's verdict on a byte stream against what argus' own `ra` reads of it.
//!
//! Each input is read by the `ra` that applies: argus 5.0.3's `ra` always (it reads argus 3
//! and argus 5 records), Debian's `ra` 3.0.8 when it holds no argus 5 stream. ra runs as `ra -X -F RC -n -L -1 -c , -s offset proto -r [MAR-ONLY] FILE`, under a hard
//! time limit (SIGKILL), with an rc file of our own: `RA_PRINT_MAN_RECORDS=yes` and
//! `RA_PRINT_EVENT_RECORDS=yes`, so that it prints one line per record of every kind it reads.
//!
//! What ra prints, as observed and allowed for here:
//! - ra 5.0.3 takes the first file's MAR/START as its connection header and never prints it;
//!   so `MAR-ONLY` (`testdata/argus5/mar-only.argus`, one MAR/START) is read first, and every
//!   record of FILE is printed, its MAR/START included. ra 3.0.8 prints them all without it.
//! - `offset` of a management record repeats the offset of the record before it, so only the
//!   offsets of other records are compared; a management record prints `man` as its `proto`.
//! - `offset` leaves out the zero bytes ra skipped: a record after a run of zeros prints its
//!   file offset less the zeros before it.
//! - ra exits 1 on empty input.
//!
//! The checks (of the walk with [`Walker::new`]'s checks, the one data is accepted by):
//! - Clean walk: ra prints exactly `Report::records` lines, exits 0, says nothing on stderr, and
//!   its lines are the walker's records in order: a `man` line where the walk has a MAR, and
//!   where it has another record, that record's (zero-adjusted) offset.
//! - Refused walk (truncated or corrupt at `offset`, after `Report::records` good records):
//!   1. the walk of the bytes before `offset` alone is clean, with the same records;
//!   2. ra reads those records, as above (its first lines are exactly them);
//!   3. ra does not read the rest as sound data: it exits non-zero, complains on stderr or is
//!      killed at the limit, or the records from `offset` on (framed by their headers, zero
//!      words skipped) do not reach the end of the file exactly, or ra prints other lines for
//!      them than one per record at their offsets. Otherwise the walk refused data ra reads
//!      whole. It is enough that one ra that applies does not (ra 3.0.8 stops at an AFLOW
//!      record of argus 3 data, ra 5.0.3 reads it); when none does, that is a disagreement,
//!      but for two refusals the walk makes on purpose where ra reads on without a word (see
//!      `stricter_on_purpose`): a flow record whose DSRs do not fit it, and a record of
//!      another version inside a stream. Those are tallied, not failed.
//!
//! ra 3.0.8 judges data without an argus 5 stream (see `argus3_or_foreign`); ra 5.0.3 all data.
//! Both spin until killed on a file that holds 16 to 127 bytes of a MAR/START ([`SPINS_READ`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use argus_core::record::{Corruption, Report, Version, Walk, Walker, kind, walk_with};
use test_support::tools::{Bounded, argus5_prefix, have, run_bounded};

/// How long one ra run may take before it is killed (a sound run takes well under 100 ms).
const RA_LIMIT: Duration = Duration::from_secs(4);

/// The two `ra` programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ra {
    /// Debian's ra 3.0.8.
    V3,
    /// argus-clients 5.0.3's ra.
    V5,
}

/// What the streams of an input are, for the corpus' tally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Versions {
    Argus3,
    Argus5,
    Mixed,
    /// Refused before any stream opened: not argus 3 or 5 data.
    None,
}

/// The tally of what the oracle read, to be quoted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// Records the walker accepted (of clean and refused inputs alike).
    pub(crate) records: u64,
    pub(crate) clean: u64,
    pub(crate) refused: u64,
    pub(crate) versions: BTreeMap<String, u64>,
    pub(crate) ra_runs: BTreeMap<String, u64>,
    /// How ra treated the inputs the walker refused.
    pub(crate) ra_on_refused: BTreeMap<String, u64>,
}

impl Tally {
    /// One line for the test's output.
    pub(crate) fn line(&self, what: &str) -> String {
        format!(
            "ra oracle, {what}: {} files ({} bytes), {} records walked, {} clean / {} refused; \
             versions {:?}; ra runs {:?}; ra on refused input {:?}",
            self.files,
            self.bytes,
            self.records,
            self.clean,
            self.refused,
            self.versions,
            self.ra_runs,
            self.ra_on_refused
        )
    }
}

/// The `ra` programs present, and a scratch directory for the inputs.
#[derive(Debug)]
pub(crate) struct Oracle {
    ra3: Option<PathBuf>,
    ra5: Option<PathBuf>,
    mar_only: PathBuf,
    rc: PathBuf,
    dir: tempfile::TempDir,
    /// Inputs ra spins on (a partial MAR/START) still to be read; see [`SPINS_READ`].
    spins_left: usize,
    pub(crate) tally: Tally,
}

/// ra 3.0.8 and 5.0.3 spin until killed on a file whose first record is a MAR/START with a
/// valid cookie that the file cuts short (16 to 127 bytes; under 16 they exit 1). The walk
/// refuses such a file at offset 0; the oracle confirms ra spins on the first ones it meets
/// (one second each) and tallies the rest unread, so that a fuzz corpus full of them does not
/// cost minutes.
const SPINS_READ: usize = 2;

/// The time limit for an input ra is expected to spin on.
const SPIN_LIMIT: Duration = Duration::from_secs(1);

/// One line ra printed: a management record, or another record at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    Mar,
    At(u64),
    /// A line that is neither (garbage ra printed).
    Other,
}

/// A record the header framing finds, as ra would print it.
#[derive(Clone, Copy, Debug)]
struct Framed {
    line: Line,
}

impl Oracle {
    /// The oracle with whichever `ra` is installed (each missing one said loudly), or `None`
    /// when neither is.
    pub(crate) fn new(test: &str) -> Option<Oracle> {
        let ra3 = have("ra").then(|| PathBuf::from("ra"));
        let ra5 = argus5_prefix(test).map(|p| p.join("bin/ra"));
        if ra3.is_none() && ra5.is_none() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let rc = dir.path().join("ra.rc");
        std::fs::write(
            &rc,
            "RA_PRINT_MAN_RECORDS=yes\nRA_PRINT_EVENT_RECORDS=yes\n",
        )
        .expect("write the rc file");
        Some(Oracle {
            ra3,
            ra5,
            mar_only: testdata("argus5/mar-only.argus"),
            rc,
            dir,
            spins_left: SPINS_READ,
            tally: Tally::default(),
        })
    }

    /// True when argus 5.0.3's ra is there.
    pub(crate) fn has_ra5(&self) -> bool {
        self.ra5.is_some()
    }

    /// Checks `bytes` (named `name` in messages); returns every disagreement found.
    pub(crate) fn check(&mut self, name: &str, bytes: &[u8]) -> Vec<String> {
        let report = &walk_with(Walker::new(), bytes).expect("walk");
        let versions = versions(report);
        self.tally.files += 1;
        self.tally.bytes += bytes.len() as u64;
        self.tally.records += report.records;
        if report.is_clean() {
            self.tally.clean += 1;
        } else {
            self.tally.refused += 1;
        }
        *self
            .tally
            .versions
            .entry(format!("{versions:?}"))
            .or_default() += 1;

        let file = self.dir.path().join("input.argus");
        std::fs::write(&file, bytes).expect("write the input");
        let spins = matches!(report.walk, Walk::Truncated { offset: 0, .. }) && bytes.len() >= 16;
        if spins {
            if self.spins_left == 0 {
                let why = "not read: a partial MAR/START, which ra spins on";
                *self.tally.ra_on_refused.entry(why.to_owned()).or_default() += 1;
                return Vec::new();
            }
            self.spins_left -= 1;
        }
        let limit = if spins { SPIN_LIMIT } else { RA_LIMIT };
        let mut found = Vec::new();
        // For a refused input: how each ra treated it, and whether it read the rest whole.
        let mut wholly = Vec::new();
        for ra in [Ra::V3, Ra::V5] {
            let applies = match ra {
                Ra::V3 => self.ra3.is_some() && argus3_or_foreign(bytes, report),
                Ra::V5 => self.ra5.is_some(),
            };
            if !applies {
                continue;
            }
            *self.tally.ra_runs.entry(format!("{ra:?}")).or_default() += 1;
            let run = self.run(ra, &file, limit);
            if run.killed {
                eprintln!("{name}: ra {ra:?} was killed at the time limit");
            }
            match compare(report, bytes, &run, &lines(&run.stdout)) {
                Ok(None) => {}
                Ok(Some(Refusal::Justified(how))) => {
                    let how = format!("ra {ra:?} {how}");
                    *self.tally.ra_on_refused.entry(how).or_default() += 1;
                    wholly.push(None);
                }
                Ok(Some(Refusal::ReadWhole(e))) => wholly.push(Some(format!("ra {ra:?}: {e}"))),
                Err(e) => found.push(format!("{name} (ra {ra:?}): {e}")),
            }
        }
        // A refusal stands when one ra that applies loses data there (ra 3.0.8 stops at an
        // AFLOW record of argus 3 data that ra 5.0.3 reads). When every one reads on:
        if !wholly.is_empty() && wholly.iter().all(Option::is_some) {
            match stricter_on_purpose(report) {
                Some(why) => {
                    *self.tally.ra_on_refused.entry(why.to_owned()).or_default() += 1;
                }
                None => found.extend(wholly.into_iter().flatten().map(|e| format!("{name} {e}"))),
            }
        }
        found
    }

    fn run(&self, ra: Ra, file: &Path, limit: Duration) -> Bounded {
        let mut cmd = match ra {
            Ra::V3 => Command::new(self.ra3.as_ref().expect("ra 3")),
            Ra::V5 => Command::new(self.ra5.as_ref().expect("ra 5")),
        };
        cmd.arg("-X").arg("-F").arg(&self.rc);
        cmd.args(["-n", "-L", "-1", "-c", ",", "-s", "offset", "proto", "-r"]);
        if ra == Ra::V5 {
            cmd.arg(&self.mar_only);
        }
        cmd.arg(file);
        run_bounded(&mut cmd, limit).expect("run ra")
    }
}

/// A committed sample file.
pub(crate) fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn versions(report: &Report) -> Versions {
    match (
        report.has_version(Version::V3),
        report.has_version(Version::V5),
    ) {
        (true, true) => Versions::Mixed,
        (true, false) => Versions::Argus3,
        (false, true) => Versions::Argus5,
        (false, false) => Versions::None,
    }
}

/// ra 3.0.8 judges data without an argus 5 stream. It refuses a file that opens with one (exit
/// 1), and frames the records of one that follows argus 3 data but misdecodes them (hostC's
/// source id 127.0.0.3 printed as 3.0.0.127), so it is no judge of them.
fn argus3_or_foreign(bytes: &[u8], report: &Report) -> bool {
    match report.streams.first() {
        Some(_) => !report.has_version(Version::V5),
        None => bytes.first().is_none_or(|b| b & 0x0f != 5),
    }
}

fn lines(stdout: &[u8]) -> Vec<Line> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| match l.split_once(',') {
            Some((_, "man")) => Line::Mar,
            Some((off, _)) => off.trim().parse().map_or(Line::Other, Line::At),
            None => Line::Other,
        })
        .collect()
}

/// The records from `from` to the first header that does not frame (a length below 4 bytes,
/// or past the end), zero words skipped as ra skips them, each as ra prints it; `zeros` is the
/// count of zero bytes skipped before `from`. Also returns where the framing stopped, and the
/// zero bytes skipped up to there.
fn frame(bytes: &[u8], from: usize, mut zeros: u64) -> (Vec<Framed>, usize, u64) {
    let mut out = Vec::new();
    let mut at = from;
    while let Some(h) = bytes.get(at..at + 4) {
        if h == [0; 4] && at > 0 {
            zeros += 4;
            at += 4;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([h[2], h[3]])) * 4;
        if len < 4 || at + len > bytes.len() {
            break;
        }
        let line = if h[0] >> 4 == kind::MAR {
            Line::Mar
        } else {
            Line::At(at as u64 - zeros)
        };
        out.push(Framed { line });
        at += len;
    }
    (out, at, zeros)
}

fn matches(lines: &[Line], framed: &[Framed]) -> Result<(), String> {
    match lines.iter().zip(framed).position(|(l, f)| *l != f.line) {
        Some(i) => Err(format!(
            "ra's line {} is {:?} where the walk has {:?}",
            i + 1,
            lines[i],
            framed[i].line
        )),
        None => Ok(()),
    }
}

/// Compares the walk of `bytes` with what ra printed of them; for a refused walk, says how ra
/// treated the input.
fn compare(
    report: &Report,
    bytes: &[u8],
    run: &Bounded,
    lines: &[Line],
) -> Result<Option<Refusal>, String> {
    let records = usize::try_from(report.records).expect("a record count");
    let said = |what: &str| {
        format!(
            "{what}; ra {}, {} lines, stderr {:?}",
            run.describe(),
            lines.len(),
            String::from_utf8_lossy(&run.stderr[..run.stderr.len().min(200)])
        )
    };
    let (offset, why) = match report.walk {
        Walk::Clean { .. } => {
            let (framed, stop, _) = frame(bytes, 0, 0);
            assert_eq!(
                (framed.len(), stop),
                (records, bytes.len()),
                "a clean walk's records are its header framing"
            );
            if lines.len() != records {
                return Err(said(&format!("the walk accepts {records} records")));
            }
            matches(lines, &framed).map_err(|e| said(&e))?;
            let complaint = run.killed || !run.stderr.is_empty();
            if complaint || (run.code != Some(0) && !bytes.is_empty()) {
                return Err(said("ra read every record but complained"));
            }
            return Ok(None);
        }
        Walk::Truncated { offset, .. } => (offset, "truncated".to_owned()),
        Walk::Corrupt { offset, reason } => (offset, reason.to_string()),
    };
    let off = usize::try_from(offset).expect("an offset");
    let refused = format!("the walk refuses at {offset} ({why}) after {records} records");
    let prefix = walk_with(Walker::new(), &bytes[..off]).expect("walk");
    if !prefix.is_clean() || prefix.records != report.records {
        return Err(format!(
            "{refused}, but the bytes before it walk as {:?}",
            prefix.walk
        ));
    }
    let (kept, _, zeros) = frame(&bytes[..off], 0, 0);
    if lines.len() < records {
        return Err(said(&format!(
            "{refused}: ra reads fewer records before it"
        )));
    }
    matches(&lines[..records], &kept).map_err(|e| said(&format!("{refused}: {e}")))?;
    let (tail, stop, _) = frame(bytes, off, zeros);
    let whole = stop == bytes.len()
        && run.code == Some(0)
        && !run.killed
        && run.stderr.is_empty()
        && lines.len() == records + tail.len()
        && matches(&lines[records..], &tail).is_ok();
    if !whole {
        return Ok(Some(Refusal::Justified(if run.killed {
            "killed at the limit"
        } else if run.code != Some(0) || !run.stderr.is_empty() {
            "complained"
        } else if lines.len() == records {
            "read only the records before the offset"
        } else {
            "read other records past the offset"
        })));
    }
    Ok(Some(Refusal::ReadWhole(said(&format!(
        "{refused}, but ra reads all {} records after it to the end, without complaint",
        tail.len()
    )))))
}

/// How ra treated an input the walk refused.
enum Refusal {
    /// ra lost data there too, or complained: how.
    Justified(&'static str),
    /// ra read every record to the end without a word (the message says so).
    ReadWhole(String),
}

/// The refusals the walk makes on purpose although ra reads on, without a word, past the
/// damage, and why:
/// - a flow record whose DSRs do not fill it (one past its end, or a record length that cuts
///   its last DSR): this is how the walk pins a truncated record that swallowed the start of
///   the next chunk at the damaged record itself, so that a cut keeps no garbage record;
/// - a record of another version inside a stream (no MAR/START opened a stream of its
///   version): each ra frames it as one of its own and misdecodes it.
///
/// Anything else that every ra reads whole is refused wrongly.
fn stricter_on_purpose(report: &Report) -> Option<&'static str> {
    match report.walk {
        Walk::Corrupt {
            reason: Corruption::BadDsr { .. },
            ..
        } => Some("refused on purpose, ra reads on: a flow record whose DSRs do not fit it"),
        Walk::Corrupt {
            reason: Corruption::VersionMismatch { .. },
            ..
        } => Some("refused on purpose, ra reads on: a record of another version"),
        _ => None,
    }
}
