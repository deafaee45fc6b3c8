//! Prometheus metrics: the text exposition format, written atomically to `metrics_file` (for
//! node_exporter's textfile collector) after each pass, each daemon batch (at most every 10 s)
//! and each maintenance, and printed by `status --format prometheus`.
//!
//! Gauges come from what `status` reads (the ledger, the dropzone, the quarantine, the hook
//! queue); counters and the times of the last run and the last success are kept across runs in
//! `STATE_DIR/metrics` (sealed lines), so that a cron job's counters only grow. Times are Unix
//! timestamps, never ages, as Prometheus' guidance for batch jobs asks; labels are the client
//! and the sensor, nothing of higher cardinality.

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::config::Config;
use crate::counters::Counters;
use crate::report::Summary;
use crate::status::{Hooks, Row, State};

/// The counters, in the order they are written, each with its help text.
const COUNTERS: [(&str, &str); 10] = [
    (
        "uploads_ingested_total",
        "Uploads appended to their day files.",
    ),
    ("ingested_bytes_total", "Bytes appended to day files."),
    (
        "ingested_records_total",
        "argus records appended to day files.",
    ),
    (
        "uploads_quarantined_total",
        "Upload groups moved to the quarantine.",
    ),
    (
        "duplicate_chunks_total",
        "Chunks that arrived again and were not appended again.",
    ),
    (
        "archives_purged_total",
        "Archived uploads deleted by retention.",
    ),
    (
        "quarantine_expired_total",
        "Quarantined groups deleted after quarantine_days.",
    ),
    (
        "retention_warnings_total",
        "Purges that deleted archives written by the same pass, or over half of the archive's bytes.",
    ),
    ("hook_runs_total", "Follow-on stage runs that exited 0."),
    (
        "hook_failures_total",
        "Follow-on stage runs that failed (retried or kept as failed).",
    ),
];

/// A label value, escaped as the text format wants (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP argus_webjob_{name} {help}");
    let _ = writeln!(out, "# TYPE argus_webjob_{name} {kind}");
}

/// The exposition: counters and run times from `counters`, gauges from the status `rows` and
/// the hook queue.
pub fn render(
    config: &Config,
    now: OffsetDateTime,
    counters: &Counters,
    rows: &[Row],
    hooks: Hooks,
) -> String {
    let mut out = String::new();
    for (name, help) in [
        (
            "last_run_timestamp_seconds",
            "When the last pass (or daemon batch) ended, in Unix seconds.",
        ),
        (
            "last_success_timestamp_seconds",
            "When the last pass that stopped on no error ended, in Unix seconds.",
        ),
        (
            "run_duration_seconds",
            "How long the last pass (or daemon batch) took.",
        ),
    ] {
        if let Some(v) = counters.get(name) {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "argus_webjob_{name} {v}");
        }
    }
    for (name, help) in COUNTERS {
        family(&mut out, name, "counter", help);
        let _ = writeln!(
            out,
            "argus_webjob_{name} {}",
            counters.get(name).unwrap_or(0.0)
        );
    }
    let sum = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    for (name, help, value) in [
        (
            "uploads_pending",
            "Complete upload groups waiting in the dropzone.",
            sum(|r| r.pending),
        ),
        (
            "uploads_in_flight",
            "Upload groups being written by the WebJob server.",
            sum(|r| r.in_flight),
        ),
        (
            "orphans",
            "Upload data without .rdy older than orphan_after.",
            sum(|r| r.orphans),
        ),
        (
            "quarantined_groups",
            "Upload groups in the quarantine.",
            sum(|r| r.quarantined),
        ),
    ] {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "argus_webjob_{name} {value}");
    }
    family(
        &mut out,
        "ingest_stopped",
        "gauge",
        "1 while a file system is under min_free_space and nothing is ingested, else 0.",
    );
    let _ = writeln!(
        out,
        "argus_webjob_ingest_stopped {}",
        u8::from(crate::space::shortage(config).is_some())
    );
    family(
        &mut out,
        "free_bytes",
        "gauge",
        "Free bytes of the file system of the day files and of the archives.",
    );
    for (dir, path) in [("oper", &config.oper_dir), ("archive", &config.archive_dir)] {
        if let Ok((free, _)) = crate::space::space(path) {
            let _ = writeln!(out, "argus_webjob_free_bytes{{dir=\"{dir}\"}} {free}");
        }
    }
    family(
        &mut out,
        "hook_events",
        "gauge",
        "Follow-on stage events waiting to run, and kept as failed.",
    );
    let _ = writeln!(
        out,
        "argus_webjob_hook_events{{state=\"pending\"}} {}",
        hooks.pending
    );
    let _ = writeln!(
        out,
        "argus_webjob_hook_events{{state=\"failed\"}} {}",
        hooks.failed
    );

    family(
        &mut out,
        "client_last_upload_timestamp_seconds",
        "gauge",
        "The newest upload of a client (from its name), in Unix seconds.",
    );
    for r in rows.iter().filter(|r| r.configured) {
        if let Some(t) = r.last_upload {
            let _ = writeln!(
                out,
                "argus_webjob_client_last_upload_timestamp_seconds{{client=\"{}\"}} {}",
                label(&r.client),
                t.unix_timestamp()
            );
        }
    }
    family(
        &mut out,
        "client_stale",
        "gauge",
        "1 when a configured client sent nothing for stale_after, else 0.",
    );
    for r in rows.iter().filter(|r| r.configured) {
        let stale = r.state(now, config) == Some(State::Stale);
        let _ = writeln!(
            out,
            "argus_webjob_client_stale{{client=\"{}\"}} {}",
            label(&r.client),
            u8::from(stale)
        );
    }
    family(
        &mut out,
        "client_duplicate_chunks",
        "gauge",
        "Chunks of a client's sensors that arrived more than once.",
    );
    for r in rows.iter().filter(|r| r.configured) {
        let _ = writeln!(
            out,
            "argus_webjob_client_duplicate_chunks{{client=\"{}\"}} {}",
            label(&r.client),
            r.duplicates
        );
    }
    health_families(&mut out, rows);
    family(
        &mut out,
        "host_missing_chunks",
        "gauge",
        "Sequence numbers missing from a sensor's chunks.",
    );
    for r in rows {
        for (host, gaps) in &r.gaps {
            let missing: u64 = gaps.iter().map(|(a, b)| b - a + 1).sum();
            let _ = writeln!(
                out,
                "argus_webjob_host_missing_chunks{{client=\"{}\",host=\"{}\"}} {missing}",
                label(&r.client),
                label(host)
            );
        }
    }
    out
}

/// The sensors' health, from their argus management records: counters of all time (alert on
/// their rates) and the newest MAR's time and clock offset.
fn health_families(out: &mut String, rows: &[Row]) {
    type Figure = fn(&crate::health::SensorHealth) -> Option<i64>;
    let families: [(&str, &str, &str, Figure); 7] = [
        (
            "client_packets_received_total",
            "counter",
            "Packets a client's argus capture delivered, by its management records.",
            |h| i64::try_from(h.received).ok(),
        ),
        (
            "client_packets_dropped_total",
            "counter",
            "Packets a client's argus capture dropped, by its management records.",
            |h| i64::try_from(h.dropped).ok(),
        ),
        (
            "client_argus_restarts_total",
            "counter",
            "Restarts of a client's argus (a management record with a new start time).",
            |h| i64::try_from(h.restarts).ok(),
        ),
        (
            "client_argus_stops_total",
            "counter",
            "Clean stops of a client's argus (MAR/STOP records).",
            |h| i64::try_from(h.stops).ok(),
        ),
        (
            "client_zero_gap_bytes_total",
            "counter",
            "Bytes of zeros between a client's argus records (a power loss on the sensor), left out of the day files.",
            |h| i64::try_from(h.zero_gap_bytes).ok(),
        ),
        (
            "client_last_mar_timestamp_seconds",
            "gauge",
            "The newest management record of a client's argus, in Unix seconds.",
            |h| h.last_mar,
        ),
        (
            "client_clock_offset_seconds",
            "gauge",
            "The newest management record's time less its upload's stamp: a sensor clock's error.",
            |h| h.clock_offset,
        ),
    ];
    for (name, kind, help, figure) in families {
        family(out, name, kind, help);
        for r in rows.iter().filter(|r| r.configured) {
            if let Some(v) = figure(&r.health) {
                let _ = writeln!(
                    out,
                    "argus_webjob_{name}{{client=\"{}\"}} {v}",
                    label(&r.client)
                );
            }
        }
    }
}

/// After a run: counts `summary` (unless it is `None`: nothing new to count), and writes
/// `metrics_file` when one is configured. Problems are logged, never fatal: metrics must not
/// stop an ingest.
pub fn after_run(config: &Config, summary: Option<(&Summary, bool)>, now: OffsetDateTime) {
    let mut counters = Counters::load(&config.state_dir);
    if let Some((summary, ok)) = summary {
        counters.record(summary, ok, now);
        if let Err(e) = counters.save(&config.state_dir) {
            log::warn!("cannot keep the metrics' counters: {e}");
        }
    }
    let Some(path) = &config.metrics_file else {
        return;
    };
    let text = match (
        crate::status::gather(config, now),
        crate::status::hooks(config),
    ) {
        (Ok(rows), Ok(hooks)) => render(config, now, &counters, &rows, hooks),
        (Err(e), _) | (_, Err(e)) => {
            log::warn!("cannot gather the metrics: {}", crate::error_chain(&e));
            return;
        }
    };
    if let Err(e) = argus_core::publish::replace_durably(path, text.as_bytes()) {
        log::warn!("cannot write the metrics to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
