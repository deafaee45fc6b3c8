//! The one-line summary of a pass, for people and (`--json`) for machines.

use std::fmt::Write as _;
use std::time::Duration;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Uploads appended to day files and archived.
    pub ingested: u64,
    /// Bytes of argus data appended.
    pub bytes: u64,
    /// Uploads with an empty `.out`, or only chunks ingested before (archived, nothing appended).
    pub empty: u64,
    /// Chunks that arrived again (same host and sequence number) and were not appended again.
    pub duplicates: u64,
    /// Day files that received data.
    pub day_files: u64,
    /// Groups moved to quarantine.
    pub quarantined: u64,
    /// Groups still being uploaded (data without `.rdy`), not yet orphans.
    pub in_flight: u64,
    /// Data without `.rdy` older than `orphan_after`.
    pub orphans: u64,
    /// Groups of other clients or jobs, left untouched.
    pub foreign: u64,
    /// Interrupted uploads finished or rolled back from the journal.
    pub recovered: u64,
    /// Archives deleted by retention.
    pub purged: u64,
    /// Day files compressed.
    pub compressed: u64,
    /// argus records appended.
    pub records: u64,
    /// Quarantined groups deleted by `quarantine_days`.
    pub expired: u64,
    /// Hook runs that exited 0.
    pub hooks_ran: u64,
    /// Hook runs that failed (retried later, or kept as failed).
    pub hooks_failed: u64,
    /// Purges that deleted archives written by the same pass or most of the archive's bytes.
    pub retention_warnings: u64,
    /// Wall time of the pass.
    pub elapsed: Duration,
    /// Set when the pass stopped early, with the reason.
    pub failed: Option<String>,
}

impl Summary {
    /// Adds what `other` counted (the daemon gathers batches until it writes its metrics).
    pub fn absorb(&mut self, other: &Summary) {
        let Summary {
            ingested,
            bytes,
            empty,
            duplicates,
            day_files,
            quarantined,
            in_flight: _,
            orphans: _,
            foreign: _,
            recovered,
            purged,
            compressed,
            records,
            expired,
            hooks_ran,
            hooks_failed,
            retention_warnings,
            elapsed,
            failed,
        } = other;
        self.ingested += ingested;
        self.bytes += bytes;
        self.empty += empty;
        self.duplicates += duplicates;
        self.day_files += day_files;
        self.quarantined += quarantined;
        self.recovered += recovered;
        self.purged += purged;
        self.compressed += compressed;
        self.records += records;
        self.expired += expired;
        self.hooks_ran += hooks_ran;
        self.hooks_failed += hooks_failed;
        self.retention_warnings += retention_warnings;
        self.elapsed += *elapsed;
        if self.failed.is_none() {
            self.failed.clone_from(failed);
        }
    }

    /// One line for people.
    pub fn text(&self) -> String {
        let mut s = format!(
            "ingested {} upload{} ({}) into {} day file{}",
            self.ingested,
            plural(self.ingested),
            human_bytes(self.bytes),
            self.day_files,
            plural(self.day_files)
        );
        let extras = [
            (self.empty, "empty"),
            (self.duplicates, "duplicate chunks not appended again"),
            (self.quarantined, "quarantined"),
            (self.in_flight, "in flight"),
            (self.orphans, "orphaned"),
            (self.foreign, "foreign, untouched"),
            (self.recovered, "recovered from the journal"),
            (self.purged, "archives purged"),
            (self.compressed, "day files compressed"),
            (self.expired, "quarantined groups expired"),
            (self.hooks_ran, "hook runs"),
            (self.hooks_failed, "hook runs failed"),
        ];
        for (n, what) in extras {
            if n > 0 {
                let _infallible = write!(s, "; {n} {what}");
            }
        }
        let _infallible = write!(s, "; {:.2} s", self.elapsed.as_secs_f64());
        if let Some(why) = &self.failed {
            let _infallible = write!(s, "; STOPPED: {why}");
        }
        s
    }

    /// One JSON object, keys in a fixed order (docs/OPERATIONS.md).
    pub fn json(&self) -> String {
        let json = SummaryJson {
            ingested: self.ingested,
            bytes: self.bytes,
            empty: self.empty,
            day_files: self.day_files,
            quarantined: self.quarantined,
            in_flight: self.in_flight,
            orphans: self.orphans,
            foreign: self.foreign,
            recovered: self.recovered,
            purged: self.purged,
            compressed: self.compressed,
            duplicates: self.duplicates,
            expired: self.expired,
            hooks_ran: self.hooks_ran,
            hooks_failed: self.hooks_failed,
            elapsed_ms: self.elapsed.as_millis(),
            failed: self.failed.as_deref(),
        };
        to_json(&json)
    }
}

/// [`Summary::json`]'s document: serde writes the keys in the order declared here.
#[derive(serde::Serialize)]
struct SummaryJson<'a> {
    ingested: u64,
    bytes: u64,
    empty: u64,
    day_files: u64,
    quarantined: u64,
    in_flight: u64,
    orphans: u64,
    foreign: u64,
    recovered: u64,
    purged: u64,
    compressed: u64,
    duplicates: u64,
    expired: u64,
    hooks_ran: u64,
    hooks_failed: u64,
    elapsed_ms: u128,
    failed: Option<&'a str>,
}

/// `value` as one line of compact JSON, the form every `--json` output takes.
pub fn to_json(value: &impl serde::Serialize) -> String {
    // Only a Serialize impl that fails, or a map with keys that are not strings, makes this
    // fail; the programs' documents are plain structs of numbers, strings and lists.
    serde_json::to_string(value).expect("a plain document serialises")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mentions_only_what_happened() {
        let s = Summary {
            ingested: 1,
            bytes: 41560,
            day_files: 1,
            quarantined: 2,
            elapsed: Duration::from_millis(1500),
            ..Summary::default()
        };
        assert_eq!(
            s.text(),
            "ingested 1 upload (40.6 KiB) into 1 day file; 2 quarantined; 1.50 s"
        );
    }

    #[test]
    fn json_is_stable() {
        let s = Summary {
            ingested: 3,
            failed: Some("disk \"full\"\n".into()),
            ..Summary::default()
        };
        assert_eq!(
            s.json(),
            "{\"ingested\":3,\"bytes\":0,\"empty\":0,\"day_files\":0,\"quarantined\":0,\"in_flight\":0,\"orphans\":0,\"foreign\":0,\"recovered\":0,\"purged\":0,\"compressed\":0,\"duplicates\":0,\"expired\":0,\"hooks_ran\":0,\"hooks_failed\":0,\"elapsed_ms\":0,\"failed\":\"disk \\\"full\\\"\\n\"}"
        );
    }
}
