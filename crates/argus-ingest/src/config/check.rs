//! [`Config::check`]: the values no engine may run with, whoever built the configuration (a
//! program from its file, or an embedder by hand). Above all, retention settings that would
//! delete every archive, and directories that overlap the dropzone or each other.

use std::path::{Component, PathBuf};
use std::time::Duration;

use argus_core::escape::EscapedPath;
use argus_core::grammar::{Amount, format_duration, format_size};
use argus_core::retention::MIN_CAP_BYTES;

use super::Config;

/// A value of a [`Config`] the engine refuses, with what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// A directory that is not an absolute path without `..`.
    #[error(
        "{key} must be an absolute path without '..', not {}",
        EscapedPath(path)
    )]
    Path {
        /// The setting.
        key: &'static str,
        /// Its value.
        path: PathBuf,
    },
    /// A directory inside the dropzone, which belongs to the WebJob server.
    #[error(
        "{key} {} must be outside drop_dir {}: the dropzone belongs to the WebJob server",
        EscapedPath(dir),
        EscapedPath(drop_dir)
    )]
    InsideDropzone {
        /// The setting.
        key: &'static str,
        /// Its value.
        dir: PathBuf,
        /// The dropzone.
        drop_dir: PathBuf,
    },
    /// The dropzone inside another directory of the engine's.
    #[error("drop_dir must not be inside {key}")]
    DropzoneInside {
        /// The setting whose directory holds the dropzone.
        key: &'static str,
    },
    /// Two settings naming the same directory.
    #[error("{first} and {second} must be different directories")]
    SameDirectory {
        /// One setting.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// No client to take uploads of.
    #[error("clients is empty: list client ids or globs, or [\"*\"] for all")]
    NoClients,
    /// A client id or glob that cannot match a WebJob client.
    #[error("clients: {pattern:?} is not valid: {why}")]
    Client {
        /// The pattern.
        pattern: String,
        /// Why not.
        why: String,
    },
    /// A job name that cannot end a WebJob stem.
    #[error("job {0:?} must be letters, digits, '_', '.' or '-'")]
    Job(String),
    /// A size cap smaller than one hourly upload: every pass would delete every archive.
    #[error(
        "archive_max_size = {}: a cap under {} is smaller than one hourly upload and would delete every archive at each pass (write a size such as \"500G\")",
        format_size(*.0),
        format_size(MIN_CAP_BYTES)
    )]
    CapTooSmall(u64),
    /// A low watermark so small that a purge deletes every archive.
    #[error(
        "archive_low_watermark = {}: a purge down to under {} deletes every archive (write a share such as \"90%\" or a size such as \"450G\")",
        format_size(*.0),
        format_size(MIN_CAP_BYTES)
    )]
    WatermarkTooSmall(u64),
    /// A low watermark share of nothing, or of more than the cap.
    #[error(
        "archive_low_watermark = {0}%: a share of archive_max_size is between 1% and 100% (write \"90%\", say)"
    )]
    WatermarkShare(u8),
    /// A low watermark over the cap it purges down from.
    #[error(
        "archive_low_watermark ({}) is larger than archive_max_size ({})",
        format_size(*low),
        format_size(*max)
    )]
    WatermarkOverCap {
        /// The low watermark.
        low: u64,
        /// The cap.
        max: u64,
    },
    /// A free-space floor so small that it protects nothing.
    #[error(
        "min_free_space = {}: a floor under {} protects nothing (write a share such as \"5%\" or a size such as \"10G\")",
        format_size(*.0),
        format_size(MIN_CAP_BYTES)
    )]
    FloorTooSmall(u64),
    /// A free-space floor of no share, or of more than the whole file system.
    #[error("min_free_space = {0}%: a share of the file system is between 1% and 100%")]
    FloorShare(u8),
    /// A drop share that is no share.
    #[error("drop_warn = {0}%: a share of the packets is between 1% and 100% (write \"1%\", say)")]
    DropWarn(u8),
    /// A duration under a second where zero would stop the work or report everything.
    #[error("{key} = \"{}\": {why}; write at least \"1s\"", format_duration(*value))]
    TooShort {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: Duration,
        /// What a zero would do.
        why: &'static str,
    },
    /// A duration outside the range the setting allows.
    #[error("{key} must be between {} and {}", format_duration(*min), format_duration(*max))]
    OutOfRange {
        /// The setting.
        key: &'static str,
        /// The shortest allowed.
        min: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A duration under the shortest the setting allows.
    #[error("{key} must be at least {}", format_duration(*min))]
    AtLeast {
        /// The setting.
        key: &'static str,
        /// The shortest allowed.
        min: Duration,
    },
    /// A hook with a timeout under a second, which would kill every run.
    #[error(
        "hook {name:?}: timeout = \"{}\": a hook needs at least 1s to run (like \"10m\"); a zero timeout would kill every run and keep its event failing",
        format_duration(*timeout)
    )]
    HookTimeout {
        /// The hook's name.
        name: String,
        /// Its timeout.
        timeout: Duration,
    },
}

impl Invalid {
    /// The settings it is about (for a program to point at them in its file).
    pub fn settings(&self) -> Vec<&'static str> {
        match self {
            Invalid::Path { key, .. }
            | Invalid::TooShort { key, .. }
            | Invalid::OutOfRange { key, .. }
            | Invalid::AtLeast { key, .. } => vec![key],
            Invalid::InsideDropzone { key, .. } | Invalid::DropzoneInside { key } => {
                vec![key, "drop_dir"]
            }
            Invalid::SameDirectory { first, second } => vec![first, second],
            Invalid::NoClients | Invalid::Client { .. } => vec!["clients"],
            Invalid::Job(_) => vec!["job"],
            Invalid::CapTooSmall(_) => vec!["archive_max_size"],
            Invalid::WatermarkTooSmall(_) | Invalid::WatermarkShare(_) => {
                vec!["archive_low_watermark"]
            }
            Invalid::WatermarkOverCap { .. } => vec!["archive_low_watermark", "archive_max_size"],
            Invalid::FloorTooSmall(_) | Invalid::FloorShare(_) => vec!["min_free_space"],
            Invalid::DropWarn(_) => vec!["drop_warn"],
            Invalid::HookTimeout { .. } => vec!["hook"],
        }
    }
}

/// Durations under a second that would stop the work, with why.
const AT_LEAST_A_SECOND: [(&str, &str); 5] = [
    (
        "max_record_lag",
        "a zero clock window would refuse every record older than its upload",
    ),
    (
        "max_clock_skew",
        "a zero clock window would refuse every record newer than its upload's stamp",
    ),
    (
        "stale_after",
        "every sensor would be stale the moment it uploads",
    ),
    (
        "orphan_after",
        "every upload still being written would be reported as orphaned",
    ),
    (
        "hook_budget",
        "a cron pass would run no hook, and their events would wait forever",
    ),
];

impl Config {
    /// Every value the engine refuses, at once (empty: the configuration can run).
    /// The engine (`Engine::start`) and a dry run refuse a configuration with any.
    pub fn check(&self) -> Vec<Invalid> {
        let mut invalid = Vec::new();
        self.check_directories(&mut invalid);
        self.check_clients(&mut invalid);
        self.check_space(&mut invalid);
        self.check_durations(&mut invalid);
        invalid
    }

    fn check_directories(&self, invalid: &mut Vec<Invalid>) {
        let mut paths = vec![("drop_dir", self.drop_dir.as_path())];
        paths.extend(self.own_directories());
        if let Some(file) = &self.metrics_file {
            paths.push(("metrics_file", file.as_path()));
        }
        for (key, path) in &paths {
            if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
                invalid.push(Invalid::Path {
                    key,
                    path: path.to_path_buf(),
                });
            }
        }
        let drop_dir = &self.drop_dir;
        let dirs = &paths[1..5];
        for (key, dir) in dirs {
            if dir.starts_with(drop_dir) {
                invalid.push(Invalid::InsideDropzone {
                    key,
                    dir: dir.to_path_buf(),
                    drop_dir: drop_dir.clone(),
                });
            }
            if drop_dir.starts_with(dir) {
                invalid.push(Invalid::DropzoneInside { key });
            }
        }
        for (i, (first, a)) in dirs.iter().enumerate() {
            for (second, b) in &dirs[i + 1..] {
                if a == b {
                    invalid.push(Invalid::SameDirectory { first, second });
                }
            }
        }
    }

    fn check_clients(&self, invalid: &mut Vec<Invalid>) {
        if self.clients.is_empty() {
            invalid.push(Invalid::NoClients);
        }
        for c in &self.clients {
            if let Err(why) = webjob_drop::name::check_client_pattern(c) {
                invalid.push(Invalid::Client {
                    pattern: c.clone(),
                    why,
                });
            }
        }
        let job_ok = !self.job.is_empty()
            && self
                .job
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !job_ok {
            invalid.push(Invalid::Job(self.job.clone()));
        }
    }

    fn check_space(&self, invalid: &mut Vec<Invalid>) {
        if let Some(max) = self.archive_max_size {
            if max < MIN_CAP_BYTES {
                invalid.push(Invalid::CapTooSmall(max));
            }
            match self.archive_low_watermark {
                Amount::Bytes(low) if low < MIN_CAP_BYTES => {
                    invalid.push(Invalid::WatermarkTooSmall(low));
                }
                Amount::Bytes(low) if low > max => {
                    invalid.push(Invalid::WatermarkOverCap { low, max });
                }
                Amount::Percent(p) if p == 0 || p > 100 => {
                    invalid.push(Invalid::WatermarkShare(p));
                }
                _ => {}
            }
        }
        match self.min_free_space {
            Some(Amount::Bytes(floor)) if floor < MIN_CAP_BYTES => {
                invalid.push(Invalid::FloorTooSmall(floor));
            }
            Some(Amount::Percent(p)) if p == 0 || p > 100 => invalid.push(Invalid::FloorShare(p)),
            _ => {}
        }
        if self.drop_warn == 0 || self.drop_warn > 100 {
            invalid.push(Invalid::DropWarn(self.drop_warn));
        }
    }

    fn check_durations(&self, invalid: &mut Vec<Invalid>) {
        let values = [
            self.max_record_lag,
            self.max_clock_skew,
            self.stale_after,
            self.orphan_after,
            self.hooks.budget,
        ];
        for ((key, why), value) in AT_LEAST_A_SECOND.into_iter().zip(values) {
            if value < Duration::from_secs(1) {
                invalid.push(Invalid::TooShort { key, value, why });
            }
        }
        let second = Duration::from_secs(1);
        let hour = Duration::from_secs(3600);
        if !(second..=hour).contains(&self.hooks.retry_delay) {
            invalid.push(Invalid::OutOfRange {
                key: "hook_retry_delay",
                min: second,
                max: hour,
            });
        }
        if self.rescan_interval < second {
            invalid.push(Invalid::AtLeast {
                key: "rescan_interval",
                min: second,
            });
        }
        for hook in &self.hooks.hooks {
            if hook.timeout < second {
                invalid.push(Invalid::HookTimeout {
                    name: hook.name.clone(),
                    timeout: hook.timeout,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            PathBuf::from("/srv/incoming"),
            PathBuf::from("/srv/operational"),
            PathBuf::from("/srv/archive"),
            vec!["sensor-*".to_owned()],
        )
    }

    #[test]
    fn the_documented_defaults_pass() {
        assert_eq!(config().check(), []);
    }

    #[test]
    fn retention_that_would_delete_every_archive_is_refused() {
        let mut c = config();
        c.archive_max_size = Some(90);
        assert_eq!(c.check(), [Invalid::CapTooSmall(90)]);
        c.archive_max_size = Some(2 << 20);
        c.archive_low_watermark = Amount::Bytes(100);
        assert_eq!(c.check(), [Invalid::WatermarkTooSmall(100)]);
        c.archive_low_watermark = Amount::Bytes(3 << 20);
        assert_eq!(
            c.check(),
            [Invalid::WatermarkOverCap {
                low: 3 << 20,
                max: 2 << 20
            }]
        );
        c.archive_low_watermark = Amount::Percent(0);
        assert_eq!(c.check(), [Invalid::WatermarkShare(0)]);
        c.archive_low_watermark = Amount::Percent(90);
        c.min_free_space = Some(Amount::Bytes(5));
        assert_eq!(c.check(), [Invalid::FloorTooSmall(5)]);
        assert!(
            Invalid::CapTooSmall(90)
                .to_string()
                .starts_with("archive_max_size = 90 B: a cap under 1 MiB"),
            "{}",
            Invalid::CapTooSmall(90)
        );
    }

    #[test]
    fn directories_must_be_absolute_distinct_and_outside_the_dropzone() {
        let mut c = config();
        c.state_dir = PathBuf::from("/srv/incoming/state");
        c.quarantine_dir = PathBuf::from("relative/q");
        c.archive_dir = c.oper_dir.clone();
        let found = c.check();
        assert!(found.contains(&Invalid::InsideDropzone {
            key: "state_dir",
            dir: c.state_dir.clone(),
            drop_dir: c.drop_dir.clone()
        }));
        assert!(found.contains(&Invalid::Path {
            key: "quarantine_dir",
            path: c.quarantine_dir.clone()
        }));
        assert!(found.contains(&Invalid::SameDirectory {
            first: "oper_dir",
            second: "archive_dir"
        }));
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn zero_durations_and_bad_names_are_refused() {
        let mut c = config();
        c.stale_after = Duration::ZERO;
        c.hooks.retry_delay = Duration::from_secs(7200);
        c.job = "a job".to_owned();
        c.clients.clear();
        let found = c.check();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(matches!(
            found[..],
            [
                Invalid::NoClients,
                Invalid::Job(_),
                Invalid::TooShort {
                    key: "stale_after",
                    ..
                },
                Invalid::OutOfRange {
                    key: "hook_retry_delay",
                    ..
                }
            ]
        ));
    }
}
