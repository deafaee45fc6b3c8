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
    /// Uploads of other clients or jobs (those with a `.rdy`), left untouched.
    pub foreign: u64,
    /// Interrupted uploads finished or rolled back from the journal.
    pub recovered: u64,
    /// Archives deleted by retention.
    pub purged: u64,
    /// Day files compressed.
    pub compressed: u64,
    /// Bytes of those day files whose compressed form was taken from archive members, not
    /// compressed again ([`crate::members`]).
    pub reused_bytes: u64,
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
            reused_bytes,
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
        self.reused_bytes += reused_bytes;
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
}
