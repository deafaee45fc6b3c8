//! The effective settings, as `check-config` shows them: every key with its value in human
//! units, where the value came from (the default, the file, or one of the recipe's keys), and
//! what it means when that is not plain (`archive_low_watermark = 1.8 GiB (90% of
//! archive_max_size, default)`). `--json` gives the same rows with machine values (bytes,
//! seconds) for scripts.

use std::path::Path;
use std::time::Duration;

use argus_core::codec::{Codec, Compression};
use argus_core::grammar::{Amount, format_duration, format_size};
use serde::Serialize;
use serde_json::{Value, json};

use super::{ClockPolicy, Config, DayBoundary, Source, Sources};

/// One effective setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    /// The TOML key.
    pub key: String,
    /// The value for a program: bytes, seconds, a path, a number, a list, or null for none.
    pub value: Value,
    /// The value for a person, in units.
    pub shown: String,
    /// `default`, `file` or `legacy`.
    pub source: &'static str,
    /// With `legacy`: the recipe's key it was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_key: Option<&'static str>,
    /// What the value means, when that is more than the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Setting {
    /// `key = shown (note, source)`.
    pub fn line(&self) -> String {
        let source = match self.legacy_key {
            Some(k) => format!("the recipe's {k}"),
            None => self.source.to_owned(),
        };
        match &self.note {
            Some(note) => format!("{} = {} ({note}, {source})", self.key, self.shown),
            None => format!("{} = {} ({source})", self.key, self.shown),
        }
    }
}

/// Collects the rows, each with the source of its key.
struct Rows<'c> {
    sources: &'c Sources,
    rows: Vec<Setting>,
}

impl Rows<'_> {
    fn push(&mut self, key: &str, value: Value, shown: String, note: Option<String>) {
        self.push_from(key, key, value, shown, note);
    }

    /// A row for `key` whose value was set by `source_key` (a level by a recipe command).
    fn push_from(
        &mut self,
        source_key: &str,
        key: &str,
        value: Value,
        shown: String,
        note: Option<String>,
    ) {
        let source = self
            .sources
            .get(source_key)
            .copied()
            .unwrap_or(Source::Default);
        let (source, legacy_key) = match source {
            Source::Default => ("default", None),
            Source::File => ("file", None),
            Source::Legacy(k) => ("legacy", Some(k)),
        };
        self.rows.push(Setting {
            key: key.to_owned(),
            value,
            shown,
            source,
            legacy_key,
            note,
        });
    }

    fn path(&mut self, key: &str, path: Option<&Path>, none: &str) {
        match path {
            Some(p) => self.push(
                key,
                json!(p.to_string_lossy()),
                format!("{}", argus_core::escape::EscapedPath(p)),
                None,
            ),
            None => self.push(key, Value::Null, "none".to_owned(), Some(none.to_owned())),
        }
    }

    fn duration(&mut self, key: &str, d: Duration) {
        self.push(key, json!(d.as_secs()), format_duration(d), None);
    }

    fn days(&mut self, key: &str, days: u32, zero: &str) {
        let note = (days == 0).then(|| zero.to_owned());
        let shown = match days {
            1 => "1 day".to_owned(),
            n => format!("{n} days"),
        };
        self.push(key, json!(days), shown, note);
    }

    fn number(&mut self, key: &str, n: u64) {
        self.push(key, json!(n), n.to_string(), None);
    }

    fn word(&mut self, key: &str, word: &str) {
        self.push(key, json!(word), word.to_owned(), None);
    }

    fn codec(&mut self, key: &str, codec: Codec) {
        self.word(key, codec.compression().name());
        if codec.compression() != Compression::None {
            let level_key = format!("{key}_level");
            let source_key = if self.sources.contains_key(level_key.as_str()) {
                level_key.clone()
            } else {
                key.to_owned()
            };
            self.push_from(
                &source_key,
                &level_key,
                json!(codec.level()),
                codec.level().to_string(),
                None,
            );
        }
    }
}

/// Every effective setting, in the order of the example configuration.
pub fn effective(config: &Config, sources: &Sources) -> Vec<Setting> {
    let mut r = Rows {
        sources,
        rows: Vec::new(),
    };
    r.path("drop_dir", Some(&config.drop_dir), "");
    r.path("oper_dir", Some(&config.oper_dir), "");
    r.path("archive_dir", Some(&config.archive_dir), "");
    r.path("log_dir", config.log_dir.as_deref(), "log to stderr only");
    r.push(
        "clients",
        json!(config.clients),
        config.clients.join(" "),
        config
            .clients
            .iter()
            .any(|c| c.contains(['*', '?', '[']))
            .then(|| "globs".to_owned()),
    );
    r.word("job", &config.job);
    r.days(
        "archive_days",
        config.archive_days,
        "archives are kept forever",
    );
    r.codec("archive_compression", config.archive_codec);
    r.codec("oper_compression", config.oper_codec);
    r.days(
        "oper_compress_after_days",
        config.oper_compress_after_days,
        "a day file is compressed once its day has ended",
    );
    retention_rows(config, &mut r);
    let boundary = match config.day_boundary {
        DayBoundary::Record => "record",
        DayBoundary::Upload => "upload",
    };
    r.word("day_boundary", boundary);
    r.duration("max_record_lag", config.max_record_lag);
    r.duration("max_clock_skew", config.max_clock_skew);
    let clock = match config.clock_policy {
        ClockPolicy::Quarantine => "quarantine",
        ClockPolicy::UploadDay => "upload_day",
    };
    r.word("clock_policy", clock);
    r.push(
        "drop_warn",
        json!(config.drop_warn),
        format!("{}%", config.drop_warn),
        Some("of the packets, over a sensor's last hour: DROPPING".to_owned()),
    );
    r.push(
        "restart_warn",
        json!(config.restart_warn),
        config.restart_warn.to_string(),
        Some("argus restarts in 24 hours: RESTARTING".to_owned()),
    );
    r.push(
        "compress_threads",
        json!(config.compress_threads),
        config.compress_threads.to_string(),
        (config.compress_threads == 0).then(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            format!("one per core: {cores} here")
        }),
    );
    r.path("state_dir", Some(&config.state_dir), "");
    r.path("quarantine_dir", Some(&config.quarantine_dir), "");
    r.duration("orphan_after", config.orphan_after);
    r.duration("stale_after", config.stale_after);
    r.number("scan_depth", u64::from(config.scan_depth));
    r.duration("rescan_interval", config.rescan_interval);
    r.word(
        "damaged_uploads",
        if config.salvage {
            "salvage"
        } else {
            "quarantine"
        },
    );
    r.days(
        "quarantine_days",
        config.quarantine_days,
        "quarantined groups are kept until requeued or removed by hand",
    );
    r.path(
        "metrics_file",
        config.metrics_file.as_deref(),
        "no metrics are written",
    );
    r.number("hook_attempts", u64::from(config.hooks.attempts));
    r.duration("hook_retry_delay", config.hooks.retry_delay);
    r.number("hook_concurrency", config.hooks.concurrency as u64);
    r.duration("hook_budget", config.hooks.budget);
    let hooks: Vec<Value> = config
        .hooks
        .hooks
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "on": h.on.name(),
                "program": h.program,
                "timeout": h.timeout.as_secs(),
            })
        })
        .collect();
    let shown = config
        .hooks
        .hooks
        .iter()
        .map(|h| {
            format!(
                "{} on {}: {} (timeout {})",
                h.name,
                h.on.name(),
                h.program,
                format_duration(h.timeout)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let none = hooks.is_empty();
    r.push(
        "hook",
        Value::Array(hooks),
        if none { "none".to_owned() } else { shown },
        none.then(|| "no follow-on stages".to_owned()),
    );
    r.rows
}

fn retention_rows(config: &Config, r: &mut Rows<'_>) {
    match config.archive_max_size {
        Some(max) => r.push("archive_max_size", json!(max), format_size(max), None),
        None => r.push(
            "archive_max_size",
            Value::Null,
            "none".to_owned(),
            Some("no size limit".to_owned()),
        ),
    }
    let low = config.archive_low_watermark;
    match (config.archive_max_size, low) {
        (Some(max), Amount::Percent(p)) => {
            let bytes = low.of(max).min(max);
            r.push(
                "archive_low_watermark",
                json!(bytes),
                format_size(bytes),
                Some(format!("{p}% of archive_max_size")),
            );
        }
        (_, Amount::Bytes(n)) => {
            r.push("archive_low_watermark", json!(n), format_size(n), None);
        }
        (None, Amount::Percent(p)) => r.push(
            "archive_low_watermark",
            Value::Null,
            format!("{p}%"),
            Some("of archive_max_size, unused without it".to_owned()),
        ),
    }
    match config.min_free_space {
        Some(Amount::Bytes(n)) => r.push("min_free_space", json!(n), format_size(n), None),
        Some(Amount::Percent(p)) => r.push(
            "min_free_space",
            json!(format!("{p}%")),
            format!("{p}%"),
            Some("of each file system".to_owned()),
        ),
        None => r.push(
            "min_free_space",
            Value::Null,
            "none".to_owned(),
            Some("no free-space floor".to_owned()),
        ),
    }
}
