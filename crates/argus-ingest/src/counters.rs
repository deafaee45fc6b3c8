//! The counters a program keeps across runs of the engine: uploads, bytes and records
//! ingested, quarantined groups, duplicates, purges, hook runs, and the times of the last run
//! and the last success, in `STATE_DIR/metrics` (sealed lines), so that a cron job's counters
//! only grow. process_argus exports them as Prometheus counters.

use std::collections::BTreeMap;
use std::path::Path;

use argus_core::stateline::StateLines;
use time::OffsetDateTime;

use crate::report::Summary;

/// The lines of `STATE_DIR/metrics`: `NAME VALUE`, a space, then 4 bytes of SHA-256.
const LINES: StateLines = StateLines::new(b' ', 4);

/// What is kept across runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Each counter or time by name.
    pub values: BTreeMap<String, f64>,
}

impl Counters {
    fn path(state_dir: &Path) -> std::path::PathBuf {
        state_dir.join("metrics")
    }

    /// The counters of `state_dir` (none yet: all zero). A damaged line is left out.
    pub fn load(state_dir: &Path) -> Counters {
        let mut values = BTreeMap::new();
        if let Ok(bytes) = std::fs::read(Self::path(state_dir)) {
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                if let Some((k, v)) = LINES.unseal_str(line).and_then(|l| l.split_once(' '))
                    && let Ok(v) = v.parse::<f64>()
                {
                    values.insert(k.to_owned(), v);
                }
            }
        }
        Counters { values }
    }

    /// The value of `key`, if counted.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }

    fn add(&mut self, key: &str, n: u64) {
        *self.values.entry(key.to_owned()).or_default() += n as f64;
    }

    /// Counts what a run (a pass, or daemon batches) did, ending at `now` after `elapsed`.
    pub fn record(&mut self, s: &Summary, ok: bool, now: OffsetDateTime) {
        self.add("uploads_ingested_total", s.ingested);
        self.add("ingested_bytes_total", s.bytes);
        self.add("ingested_records_total", s.records);
        self.add("uploads_quarantined_total", s.quarantined);
        self.add("duplicate_chunks_total", s.duplicates);
        self.add("archives_purged_total", s.purged);
        self.add("quarantine_expired_total", s.expired);
        self.add("retention_warnings_total", s.retention_warnings);
        self.add("hook_runs_total", s.hooks_ran);
        self.add("hook_failures_total", s.hooks_failed);
        let at = now.unix_timestamp_nanos() as f64 / 1e9;
        self.values
            .insert("last_run_timestamp_seconds".to_owned(), at);
        self.values
            .insert("run_duration_seconds".to_owned(), s.elapsed.as_secs_f64());
        if ok {
            self.values
                .insert("last_success_timestamp_seconds".to_owned(), at);
        }
    }

    /// Writes them back, atomically.
    pub fn save(&self, state_dir: &Path) -> argus_core::Result<()> {
        let mut out = Vec::new();
        for (k, v) in &self.values {
            LINES.seal(format!("{k} {v}").as_bytes(), &mut out);
        }
        argus_core::publish::replace_durably(&Self::path(state_dir), &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_grow_across_runs_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Counters::load(dir.path());
        assert_eq!(c, Counters::default());
        let s = Summary {
            ingested: 3,
            bytes: 1000,
            records: 40,
            elapsed: std::time::Duration::from_millis(1500),
            ..Summary::default()
        };
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        c.record(&s, true, t);
        c.save(dir.path()).expect("save");
        let mut again = Counters::load(dir.path());
        assert_eq!(again, c);
        again.record(&s, false, t + time::Duration::minutes(5));
        assert_eq!(again.get("uploads_ingested_total"), Some(6.0));
        assert_eq!(again.get("ingested_records_total"), Some(80.0));
        assert_eq!(again.get("last_success_timestamp_seconds"), Some(1.8e9));
        assert_eq!(again.get("last_run_timestamp_seconds"), Some(1.8e9 + 300.0));
        assert_eq!(again.get("run_duration_seconds"), Some(1.5));
    }
}
