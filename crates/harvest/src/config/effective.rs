//! The effective settings of one host, as `check-config` shows them: every key with its value
//! in human units, where it came from (the default, the file's top level, the host's table, an
//! older name of the key) and what it means when that is not plain. `--json` gives the same rows
//! with machine values (bytes, seconds) for scripts.

use std::path::Path;

use argus_core::codec::Compression;
use argus_core::escape::EscapedPath;
use argus_core::grammar::{format_duration, format_size};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Origin, Settings};

/// One effective setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Setting {
    /// The TOML key.
    pub(crate) key: &'static str,
    /// The value for a program: bytes, seconds, a path, a number, a list, or null for none.
    pub(crate) value: Value,
    /// The value for a person, in units.
    pub(crate) shown: String,
    /// `default`, `file` (the top level) or `host` (the host's table).
    pub(crate) source: &'static str,
    /// With `host`: the table, `hosts.NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<String>,
    /// The key as written, when it is an older name of this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) older_key: Option<&'static str>,
    /// What the value means, when that is more than the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

impl Setting {
    /// `key = shown (note, source)`.
    pub(crate) fn line(&self) -> String {
        let mut source = match &self.table {
            Some(t) => format!("[{t}]"),
            None => self.source.to_owned(),
        };
        if let Some(k) = self.older_key {
            source.push_str(&format!(" as {k}"));
        }
        match &self.note {
            Some(note) => format!("{} = {} ({note}, {source})", self.key, self.shown),
            None => format!("{} = {} ({source})", self.key, self.shown),
        }
    }
}

impl Settings {
    /// Every effective setting of this host, in the order of the example configuration.
    pub(crate) fn effective(&self) -> Vec<Setting> {
        let mut rows = Vec::new();
        let mut push = |key: &'static str, value: Value, shown: String, note: Option<&str>| {
            let origin = self.sources.get(key);
            let (source, table) = match origin {
                None => ("default", None),
                Some(Origin { table, .. }) if table.is_empty() => ("file", None),
                Some(Origin { table, .. }) => ("host", Some(table.clone())),
            };
            rows.push(Setting {
                key,
                value,
                shown,
                source,
                table,
                older_key: origin.and_then(|o| o.older_key),
                note: note.map(str::to_owned),
            });
        };
        let path = |p: &Path| (json!(p.to_string_lossy()), EscapedPath(p).to_string());
        let (v, shown) = path(&self.archive_dir);
        push("archive_dir", v, shown, None);
        let (v, shown) = path(&self.output);
        push("output", v, shown, None);
        push(
            "interface",
            json!(self.interface),
            self.interface.clone(),
            None,
        );
        let days = self.archive_days;
        push(
            "archive_days",
            json!(days),
            if days == 1 {
                "1 day".to_owned()
            } else {
                format!("{days} days")
            },
            (days == 0).then_some("archives are kept forever unless a size cap removes them"),
        );
        match self.archive_max_bytes {
            Some(max) => push("archive_max_size", json!(max), format_size(max), None),
            None => push(
                "archive_max_size",
                Value::Null,
                "none".to_owned(),
                Some("no size cap"),
            ),
        }
        match (self.archive_max_bytes, self.archive_low_watermark_bytes) {
            (_, Some(low)) => {
                let note = self.archive_max_bytes.filter(|max| *max > 0).map(|max| {
                    format!(
                        "{}% of archive_max_size",
                        u128::from(low) * 100 / u128::from(max)
                    )
                });
                push(
                    "archive_low_watermark",
                    json!(low),
                    format_size(low),
                    note.as_deref(),
                );
            }
            (Some(max), None) => {
                let low = max / 10 * 9;
                push(
                    "archive_low_watermark",
                    json!(low),
                    format_size(low),
                    Some("90% of archive_max_size"),
                );
            }
            (None, None) => push(
                "archive_low_watermark",
                Value::Null,
                "none".to_owned(),
                Some("unused without archive_max_size"),
            ),
        }
        let compression = self.codec.compression();
        push(
            "compression",
            json!(compression.name()),
            compression.name().to_owned(),
            None,
        );
        if compression != Compression::None {
            push(
                "compression_level",
                json!(self.codec.level()),
                self.codec.level().to_string(),
                None,
            );
        }
        let (v, shown) = path(&self.argus_bin);
        push("argus_bin", v, shown, None);
        push(
            "argus_args",
            json!(self.argus_args),
            if self.argus_args.is_empty() {
                "none".to_owned()
            } else {
                self.argus_args.join(" ")
            },
            None,
        );
        let (v, shown) = path(&self.pid_file);
        push("pid_file", v, shown, None);
        match &self.argus_log {
            Some(log) => {
                let (v, shown) = path(log);
                push("argus_log", v, shown, None);
            }
            None => push(
                "argus_log",
                Value::Null,
                "none".to_owned(),
                Some("argus' messages are discarded"),
            ),
        }
        match self.stale_after {
            Some(d) => push("stale_after", json!(d.as_secs()), format_duration(d), None),
            None => push(
                "stale_after",
                Value::Null,
                "never".to_owned(),
                Some("an idle argus is never reported"),
            ),
        }
        push(
            "supervise",
            json!(self.supervise),
            self.supervise.to_string(),
            None,
        );
        match &self.metrics_file {
            Some(m) => {
                let (v, shown) = path(m);
                push("metrics_file", v, shown, None);
            }
            None => push(
                "metrics_file",
                Value::Null,
                "none".to_owned(),
                Some("no metrics are written"),
            ),
        }
        rows
    }
}
