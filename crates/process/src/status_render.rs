//! How `process_argus status` shows the report argus-ingest gathers: a table for people, one
//! JSON object for scripts (keys in a fixed order, docs/OPERATIONS.md).

use std::fmt::Write as _;
use std::time::Duration;

use argus_core::grammar::format_duration;
use argus_core::stamp;
use argus_ingest::config::Config;
use argus_ingest::status::{Hooks, Row, State};
use time::OffsetDateTime;

use crate::render::{human_bytes, to_json};

fn age(now: OffsetDateTime, t: Option<OffsetDateTime>) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) => {
            let secs = (now - t).whole_seconds().max(0).unsigned_abs();
            format!(
                "{} ago",
                format_duration(Duration::from_secs(secs - secs % 60))
            )
            .replace("0s ago", "<1m ago")
        }
    }
}

fn gaps_text(gaps: &[(u64, u64)]) -> String {
    gaps.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The human table.
pub(crate) fn render_table(rows: &[Row], config: &Config, now: OffsetDateTime) -> String {
    let mut out = format!(
        "{:<24} {:<10} {:<22} {:<5} {:>7} {:>10} {:>7} {:>5} {:>5} {:>7} {:>7} {:>8} {:>8}\n",
        "CLIENT",
        "STATE",
        "LAST UPLOAD",
        "ARGUS",
        "UP/24H",
        "BYTES/24H",
        "MISSING",
        "DUPS",
        "QUAR",
        "ORPHANS",
        "PENDING",
        "DROPS/1H",
        "RESTARTS"
    );
    for r in rows {
        let state = r
            .state(now, config)
            .map_or("unconfigured".to_owned(), |s| s.name().to_uppercase());
        let health = r.health_figures(now);
        let drops = health
            .drop_ratio_1h()
            .map_or("-".to_owned(), |d| format!("{:.2}%", d * 100.0));
        let _infallible = writeln!(
            out,
            "{:<24} {:<10} {:<22} {:<5} {:>7} {:>10} {:>7} {:>5} {:>5} {:>7} {:>7} {:>8} {:>8}",
            r.client,
            state,
            age(now, r.last_upload),
            r.versions.current.map_or("-".to_owned(), |v| v.to_string()),
            r.uploads_24h,
            human_bytes(r.bytes_24h),
            r.missing_chunks(),
            r.duplicates,
            r.quarantined,
            r.orphans,
            r.pending,
            drops,
            health.restarts_24h
        );
    }
    for r in rows {
        if let (true, Some(now_v), Some(was)) = (
            r.versions.went_back(),
            r.versions.current,
            r.versions.previous,
        ) {
            let _infallible = writeln!(
                out,
                "{}: went back from argus {was} to argus {now_v} (its newest upload is argus {now_v} data)",
                r.client
            );
        }
        for (host, gaps) in &r.gaps {
            let _infallible = writeln!(
                out,
                "{}: host {host} is missing chunks {}",
                r.client,
                gaps_text(gaps)
            );
        }
    }
    let _infallible = writeln!(
        out,
        "(stale after {}; orphans after {}; quarantine in {})",
        format_duration(config.stale_after),
        format_duration(config.orphan_after),
        config.quarantine_dir.display()
    );
    out
}

/// The JSON document: one object, keys in a fixed order (see docs/OPERATIONS.md).
pub(crate) fn render_json(
    rows: &[Row],
    config: &Config,
    now: OffsetDateTime,
    worst: State,
    hooks: Hooks,
    blocked: Option<&str>,
    retention: Option<&argus_ingest::retention_warning::RetentionWarning>,
) -> String {
    let clients = rows
        .iter()
        .map(|r| (r, r.health_figures(now)))
        .map(|(r, health)| ClientJson {
            client: &r.client,
            configured: r.configured,
            state: r.state(now, config).map_or("unconfigured", State::name),
            last_upload: r.last_upload.map(stamp::format_rfc3339),
            age_s: r.last_upload.map(|t| (now - t).whole_seconds()),
            uploads_24h: r.uploads_24h,
            bytes_24h: r.bytes_24h,
            pending: r.pending,
            in_flight: r.in_flight,
            orphans: r.orphans,
            quarantined: r.quarantined,
            duplicates: r.duplicates,
            missing_chunks: r.missing_chunks(),
            argus_version: r.versions.current,
            previous_argus_version: r.versions.previous,
            packets_24h: health.day.0,
            dropped_24h: health.day.1,
            drop_ratio_1h: health.drop_ratio_1h(),
            restarts_24h: health.restarts_24h,
            stops: r.health.stops,
            last_mar: r
                .health
                .last_mar
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .map(stamp::format_rfc3339),
            clock_offset_s: r.health.clock_offset,
            zero_gaps: r.health.zero_gaps,
            zero_gap_bytes: r.health.zero_gap_bytes,
            gaps: r
                .gaps
                .iter()
                .flat_map(|(host, gaps)| {
                    gaps.iter()
                        .map(move |&(first, last)| GapJson { host, first, last })
                })
                .collect(),
        })
        .collect();
    let report = StatusJson {
        now: stamp::format_rfc3339(now),
        status: worst.name(),
        stale_after_s: config.stale_after.as_secs(),
        hooks_pending: hooks.pending,
        hooks_failed: hooks.failed,
        ingest_stopped: blocked,
        retention_warning: retention.map(|w| RetentionJson {
            at: stamp::format_rfc3339(w.at),
            setting: &w.setting,
            message: &w.message,
        }),
        clients,
    };
    let mut out = to_json(&report);
    out.push('\n');
    out
}

/// [`render_json`]'s document: serde writes the keys in the order declared here.
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    now: String,
    status: &'static str,
    stale_after_s: u64,
    hooks_pending: usize,
    hooks_failed: usize,
    ingest_stopped: Option<&'a str>,
    retention_warning: Option<RetentionJson<'a>>,
    clients: Vec<ClientJson<'a>>,
}

/// The last retention warning of [`StatusJson`].
#[derive(serde::Serialize)]
struct RetentionJson<'a> {
    at: String,
    setting: &'a str,
    message: &'a str,
}

/// One client of [`StatusJson`].
#[derive(serde::Serialize)]
struct ClientJson<'a> {
    client: &'a str,
    configured: bool,
    state: &'static str,
    last_upload: Option<String>,
    age_s: Option<i64>,
    uploads_24h: u64,
    bytes_24h: u64,
    pending: u64,
    in_flight: u64,
    orphans: u64,
    quarantined: u64,
    duplicates: u64,
    missing_chunks: u64,
    argus_version: Option<u8>,
    previous_argus_version: Option<u8>,
    packets_24h: u64,
    dropped_24h: u64,
    drop_ratio_1h: Option<f64>,
    restarts_24h: u64,
    stops: u64,
    last_mar: Option<String>,
    clock_offset_s: Option<i64>,
    zero_gaps: u64,
    zero_gap_bytes: u64,
    gaps: Vec<GapJson<'a>>,
}

/// A run of missing chunks of one host.
#[derive(serde::Serialize)]
struct GapJson<'a> {
    host: &'a str,
    first: u64,
    last: u64,
}

/// `status --host`: one sensor's hours, as a table or as one JSON object.
pub(crate) fn render_hours(
    client: &str,
    hours: &[argus_ingest::status::Hour],
    json: bool,
) -> String {
    let start = |h: &argus_ingest::status::Hour| h.start.map(stamp::format_rfc3339);
    if json {
        let hours = hours
            .iter()
            .map(|h| HourJson {
                start: start(h),
                uploads: h.uploads,
                bytes: h.bytes,
                packets: h.received,
                dropped: h.dropped,
                restarts: h.restarts,
            })
            .collect();
        let mut out = to_json(&HostJson { client, hours });
        out.push('\n');
        return out;
    }
    let mut out = format!(
        "{client}: the last 24 hours\n{:<21} {:>7} {:>10} {:>12} {:>10} {:>8} {:>8}\n",
        "HOUR (UTC)", "UPLOADS", "BYTES", "PACKETS", "DROPPED", "DROPS", "RESTARTS"
    );
    for h in hours {
        let all = h.received.saturating_add(h.dropped);
        #[allow(clippy::cast_precision_loss, reason = "a share for people")]
        let share = if all == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}%", h.dropped as f64 * 100.0 / all as f64)
        };
        let _infallible = writeln!(
            out,
            "{:<21} {:>7} {:>10} {:>12} {:>10} {:>8} {:>8}",
            start(h).unwrap_or_default(),
            h.uploads,
            human_bytes(h.bytes),
            h.received,
            h.dropped,
            share,
            h.restarts
        );
    }
    out
}

/// `status --host --json`.
#[derive(serde::Serialize)]
struct HostJson<'a> {
    client: &'a str,
    hours: Vec<HourJson>,
}

/// One hour of [`HostJson`].
#[derive(serde::Serialize)]
struct HourJson {
    start: Option<String>,
    uploads: u64,
    bytes: u64,
    packets: u64,
    dropped: u64,
    restarts: u64,
}
