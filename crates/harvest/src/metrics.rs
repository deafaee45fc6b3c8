//! Prometheus metrics of a harvest, written atomically to `metrics_file` after each run (for
//! node_exporter's textfile collector on the sensor): when it ran and last succeeded, what it
//! shipped, whether argus runs, the free blocks argus needs, chunks left staged. The time of
//! the last success is carried over from the previous file, the sensor's only state for it;
//! `chunks_shipped_total` is the sequence counter, which only grows.

use std::fmt::Write as _;
use std::path::Path;

use argus_core::host::Hostname;
use time::OffsetDateTime;

/// What one run did, for its metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RunStats {
    /// Chunks shipped and archived in this run.
    pub(crate) chunks: u64,
    /// Their bytes and argus records.
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    /// Whether argus runs after the run (`None`: not known).
    pub(crate) argus_running: Option<bool>,
    /// Free blocks of the output's file system.
    pub(crate) free_blocks: Option<u64>,
    /// Chunks left staged for the next run.
    pub(crate) staged: u64,
    /// The last sequence number given out.
    pub(crate) last_seq: u64,
    /// Purges that deleted the chunk just archived, or over half of the archive's bytes.
    pub(crate) retention_warnings: u64,
    /// Packets argus' capture delivered and dropped, by the MARs of the chunks shipped.
    pub(crate) received: u64,
    pub(crate) dropped: u64,
    /// The argus start times of those chunks' MAR/STARTs, in order, a run of equal ones once.
    pub(crate) starts: Vec<i64>,
    /// The newest of their MARs' times.
    pub(crate) last_mar: Option<i64>,
}

impl RunStats {
    /// Adds what the MARs of a shipped chunk say of the sensor.
    pub(crate) fn note_mars(&mut self, mars: &argus_core::record::MarsSeen) {
        for run in &mars.runs {
            self.received = self.received.saturating_add(run.pkts_rcvd);
            self.dropped = self.dropped.saturating_add(run.dropped);
            let newest = i64::from(run.newest.secs);
            self.last_mar = Some(self.last_mar.map_or(newest, |l| l.max(newest)));
            if let Some(started) = run.started.map(|t| i64::from(t.secs))
                && self.starts.last() != Some(&started)
            {
                self.starts.push(started);
            }
        }
    }

    /// The argus run of the newest MAR/START, or `before` (the previous file's) when none.
    fn argus_started(&self, before: Option<f64>) -> Option<f64> {
        self.starts.last().map(|&s| s as f64).or(before)
    }

    /// Restarts: start times newer than the one known before (a reopen after the cut keeps
    /// argus' start time, so it is none).
    fn restarts(&self, before: Option<f64>) -> u64 {
        let mut known = before;
        let mut restarts = 0;
        for &s in &self.starts {
            let s = s as f64;
            match known {
                Some(k) if s <= k => {}
                Some(_) => {
                    restarts += 1;
                    known = Some(s);
                }
                None => known = Some(s),
            }
        }
        restarts
    }
}

/// What the previous metrics file said, carried over.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Previous {
    /// When the last successful harvest ended.
    pub(crate) success: Option<f64>,
    /// When the argus run it saw started.
    pub(crate) argus_started: Option<f64>,
}

/// The exposition after a run that ended at `now` after `elapsed` seconds with `exit`;
/// `last_success` is the previous success, kept when this run did not succeed.
pub(crate) fn render(
    host: &Hostname,
    stats: &RunStats,
    exit: u8,
    elapsed: f64,
    now: OffsetDateTime,
    previous: Previous,
) -> String {
    let at = now.unix_timestamp_nanos() as f64 / 1e9;
    let success = if exit == 0 {
        Some(at)
    } else {
        previous.success
    };
    let host = host.as_str().replace('\\', r"\\").replace('"', "\\\"");
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        let Some(value) = value else { return };
        let _ = writeln!(out, "# HELP argus_webjob_sensor_{name} {help}");
        let _ = writeln!(out, "# TYPE argus_webjob_sensor_{name} {kind}");
        let _ = writeln!(out, "argus_webjob_sensor_{name}{{host=\"{host}\"}} {value}");
    };
    let n = |v: u64| Some(v as f64);
    metric(
        "last_run_timestamp_seconds",
        "gauge",
        "When the last harvest ended, in Unix seconds.",
        Some(at),
    );
    metric(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last harvest that exited 0 ended, in Unix seconds.",
        success,
    );
    metric(
        "run_duration_seconds",
        "gauge",
        "How long the last harvest took.",
        Some(elapsed),
    );
    metric(
        "exit_status",
        "gauge",
        "The exit status of the last harvest.",
        Some(f64::from(exit)),
    );
    metric(
        "chunks",
        "gauge",
        "Chunks shipped and archived by the last harvest.",
        n(stats.chunks),
    );
    metric(
        "chunk_bytes",
        "gauge",
        "Bytes of the chunks the last harvest shipped.",
        n(stats.bytes),
    );
    metric(
        "chunk_records",
        "gauge",
        "argus records in the chunks the last harvest shipped.",
        n(stats.records),
    );
    metric(
        "chunks_shipped_total",
        "counter",
        "Chunks cut so far (the sensor's sequence counter).",
        n(stats.last_seq),
    );
    metric(
        "staged_chunks",
        "gauge",
        "Chunks left staged for the next harvest.",
        n(stats.staged),
    );
    metric(
        "retention_warnings",
        "gauge",
        "1 when the last harvest's purge deleted the chunk it archived or over half of the archive.",
        n(stats.retention_warnings),
    );
    metric(
        "packets_received",
        "gauge",
        "Packets argus' capture delivered, by the management records of the chunks the last harvest shipped.",
        n(stats.received),
    );
    metric(
        "packets_dropped",
        "gauge",
        "Packets argus' capture dropped, by the management records of the chunks the last harvest shipped.",
        n(stats.dropped),
    );
    metric(
        "argus_restarts",
        "gauge",
        "argus restarts in the chunks the last harvest shipped (a new start time in a MAR/START).",
        n(stats.restarts(previous.argus_started)),
    );
    metric(
        "argus_start_timestamp_seconds",
        "gauge",
        "When the argus run of the newest MAR/START started, in Unix seconds.",
        stats.argus_started(previous.argus_started),
    );
    metric(
        "last_mar_timestamp_seconds",
        "gauge",
        "The newest management record the last harvest shipped, in Unix seconds.",
        stats.last_mar.map(|t| t as f64),
    );
    metric(
        "argus_running",
        "gauge",
        "1 when argus runs after the harvest, else 0.",
        stats.argus_running.map(|r| f64::from(u8::from(r))),
    );
    metric(
        "free_blocks",
        "gauge",
        "Free blocks of the file system of argus' output (argus stops writing at 20).",
        stats.free_blocks.map(|b| b as f64),
    );
    out
}

/// What an earlier metrics file recorded that a run carries over.
pub(crate) fn previous(path: &Path) -> Previous {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Previous::default();
    };
    let value = |name: &str| {
        text.lines()
            .filter(|l| {
                l.strip_prefix("argus_webjob_sensor_")
                    .and_then(|l| l.strip_prefix(name))
                    .is_some_and(|rest| rest.starts_with('{'))
            })
            .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
    };
    Previous {
        success: value("last_success_timestamp_seconds"),
        argus_started: value("argus_start_timestamp_seconds"),
    }
}

/// Writes `text` to `path` atomically. Problems are logged, never fatal: metrics must not
/// fail a harvest.
pub(crate) fn write(path: &Path, text: &str) {
    if let Err(e) = argus_core::publish::replace_durably(path, text.as_bytes()) {
        log::warn!("cannot write the metrics: {}", argus_core::error_chain(&e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_last_success() {
        let host = Hostname::new("sensor1").expect("host");
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let stats = RunStats {
            chunks: 1,
            bytes: 300,
            records: 4,
            argus_running: Some(true),
            free_blocks: Some(1000),
            staged: 0,
            last_seq: 17,
            retention_warnings: 0,
            ..RunStats::default()
        };
        let ok = render(&host, &stats, 0, 0.5, t, Previous::default());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.prom");
        write(&path, &ok);
        assert_eq!(previous(&path).success, Some(1.8e9));
        let failed = render(
            &host,
            &stats,
            74,
            0.5,
            t + time::Duration::hours(1),
            previous(&path),
        );
        assert!(
            failed.contains(
                "argus_webjob_sensor_last_success_timestamp_seconds{host=\"sensor1\"} 1800000000\n"
            ),
            "{failed}"
        );
        assert!(failed.contains("argus_webjob_sensor_exit_status{host=\"sensor1\"} 74\n"));
        assert!(failed.contains("argus_webjob_sensor_chunks_shipped_total{host=\"sensor1\"} 17\n"));
    }

    #[test]
    fn restarts_are_counted_against_the_previous_files_argus_start() {
        let host = Hostname::new("sensor1").expect("host");
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.prom");
        // argus 3.0.8's hostD chunks: the second opens with the reopen's MAR/START, whose start
        // time is the first's (`ra` prints 1795800080.881406 for both).
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../argus-core/testdata");
        let walk = |name: &str| {
            let data = std::fs::read(testdata.join(name)).expect("sample");
            argus_core::record::walk(&data[..]).expect("walk").mars_seen
        };
        let mut first = RunStats::default();
        first.note_mars(&walk("hostD.chunk1.argus"));
        write(&path, &render(&host, &first, 0, 0.1, t, previous(&path)));
        assert_eq!(previous(&path).argus_started, Some(1_795_800_080.0));
        let mut second = RunStats::default();
        second.note_mars(&walk("hostD.chunk2.argus"));
        let text = render(&host, &second, 0, 0.1, t, previous(&path));
        assert!(
            text.contains("argus_webjob_sensor_argus_restarts{host=\"sensor1\"} 0\n"),
            "{text}"
        );
        // `ra -X -F man.rc -n -u -c , -s spkts sport state -r hostD.chunk2.argus - man`: 160 packets,
        // no drops.
        assert!(
            text.contains("argus_webjob_sensor_packets_received{host=\"sensor1\"} 160\n"),
            "{text}"
        );
        assert!(text.contains("argus_webjob_sensor_packets_dropped{host=\"sensor1\"} 0\n"));
        second.starts = vec![1_795_800_080, 1_795_900_000];
        let text = render(&host, &second, 0, 0.1, t, previous(&path));
        assert!(
            text.contains("argus_webjob_sensor_argus_restarts{host=\"sensor1\"} 1\n"),
            "{text}"
        );
    }
}
