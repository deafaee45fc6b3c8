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
}

/// The exposition after a run that ended at `now` after `elapsed` seconds with `exit`;
/// `last_success` is the previous success, kept when this run did not succeed.
pub(crate) fn render(
    host: &Hostname,
    stats: &RunStats,
    exit: u8,
    elapsed: f64,
    now: OffsetDateTime,
    last_success: Option<f64>,
) -> String {
    let at = now.unix_timestamp_nanos() as f64 / 1e9;
    let success = if exit == 0 { Some(at) } else { last_success };
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

/// The last success recorded in an earlier metrics file.
pub(crate) fn previous_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| l.starts_with("argus_webjob_sensor_last_success_timestamp_seconds"))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
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
        };
        let ok = render(&host, &stats, 0, 0.5, t, None);
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.prom");
        write(&path, &ok);
        assert_eq!(previous_success(&path), Some(1.8e9));
        let failed = render(
            &host,
            &stats,
            74,
            0.5,
            t + time::Duration::hours(1),
            previous_success(&path),
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
}
