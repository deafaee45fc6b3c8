//! Validation: the values as read ([`Raw`]) become one [`Config`], with every problem of the
//! file collected at once (required keys, ranges, codecs, clients, directories that must be
//! distinct and outside the dropzone).

use std::path::PathBuf;
use std::time::Duration;

use argus_core::codec::{Codec, Compression};
use argus_core::grammar::{Amount, Kind, ValueError, parse_amount, parse_duration, parse_size};

use super::{ClockPolicy, Config, DayBoundary, HookPolicy, RECIPE_KEYS, Raw, Source, Sources};

impl Raw {
    /// Where each key the file sets came from: the file itself, or one of the recipe's keys.
    fn sources(&self) -> Sources {
        let mut given: Vec<&'static str> = self
            .strings
            .keys()
            .chain(self.numbers.keys())
            .chain(self.commands.keys())
            .copied()
            .collect();
        if self.clients.is_some() {
            given.push("clients");
        }
        if !self.hooks.is_empty() {
            given.push("hook");
        }
        given
            .into_iter()
            .map(|key| {
                let source = self
                    .legacy
                    .get(key)
                    .map_or(Source::File, |recipe| Source::Legacy(recipe));
                (key, source)
            })
            .collect()
    }

    /// The configuration the values make, with where each came from, or every problem.
    pub(super) fn validate(mut self) -> Result<(Config, Sources), Vec<String>> {
        let mut problems = std::mem::take(&mut self.problems);
        // The library's documented defaults, for every key the file leaves out.
        let defaults = Config::new(PathBuf::new(), PathBuf::new(), PathBuf::new(), Vec::new());
        let sources = self.sources();
        let clients_missing = self.clients.is_none();
        let paths = self.paths(&mut problems);
        let (clients, job) = self.clients_and_job(&mut problems);
        let (day_boundary, clock_policy, salvage) = self.choices(&mut problems);
        let counts = self.counts(&mut problems, &defaults);
        let (archive_max_size, archive_low_watermark, min_free_space, drop_warn) =
            self.space(&mut problems);
        let times = self.durations(&mut problems, &defaults);
        self.leftovers(&mut problems);
        let (mut config, mut missing) = placed(paths, clients);
        if clients_missing {
            missing.push("clients");
        }
        config.job = job;
        config.archive_days = counts.archive_days;
        config.archive_codec = counts.archive_codec;
        config.oper_codec = counts.oper_codec;
        config.oper_compress_after_days = counts.oper_compress_after_days;
        config.orphan_after = times.orphan_after;
        config.stale_after = times.stale_after;
        config.scan_depth = counts.scan_depth;
        config.rescan_interval = times.rescan_interval;
        config.salvage = salvage;
        config.quarantine_days = counts.quarantine_days;
        config.hooks = HookPolicy {
            hooks: self.hooks,
            attempts: counts.hook_attempts,
            concurrency: counts.hook_concurrency,
            budget: times.hook_budget,
            retry_delay: times.hook_retry_delay,
        };
        config.archive_max_size = archive_max_size;
        config.archive_low_watermark = archive_low_watermark;
        config.min_free_space = min_free_space;
        config.day_boundary = day_boundary;
        config.max_record_lag = times.max_record_lag;
        config.max_clock_skew = times.max_clock_skew;
        config.clock_policy = clock_policy;
        config.drop_warn = drop_warn;
        config.restart_warn = counts.restart_warn;
        config.compress_threads = counts.compress_threads;
        // What the engine refuses, but for what a missing directory (reported) would cause.
        for invalid in config.check() {
            if !invalid.settings().iter().any(|s| missing.contains(s)) {
                problems.push(invalid.to_string());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((config, sources))
    }

    /// The directories and files, the first three required ([`Config::check`] refuses a
    /// relative one).
    fn paths(&mut self, problems: &mut Vec<String>) -> Paths {
        let mut path = |key: &'static str, required: bool| -> Option<PathBuf> {
            match self.strings.remove(key) {
                Some(s) if s.is_empty() => {
                    if required {
                        problems.push(format!("{key} is empty"));
                    }
                    None
                }
                Some(s) => Some(PathBuf::from(s)),
                None => {
                    if required {
                        problems.push(format!("{key} is required"));
                    }
                    None
                }
            }
        };
        // In this order: the problems are reported in it.
        Paths {
            drop_dir: path("drop_dir", true),
            oper_dir: path("oper_dir", true),
            archive_dir: path("archive_dir", true),
            log_dir: path("log_dir", false),
            state_dir: path("state_dir", false),
            quarantine_dir: path("quarantine_dir", false),
            metrics_file: path("metrics_file", false),
        }
    }

    /// The clients (ids or globs) and the job name.
    fn clients_and_job(&mut self, problems: &mut Vec<String>) -> (Vec<String>, String) {
        let clients = match self.clients.take() {
            Some(c) => c,
            None => {
                problems
                    .push("clients is required (client ids or globs; [\"*\"] for all)".to_owned());
                Vec::new()
            }
        };
        let job = self
            .strings
            .remove("job")
            .unwrap_or_else(|| "harvest_argus".to_owned());

        (clients, job)
    }

    /// `day_boundary`, `clock_policy` and `damaged_uploads`.
    fn choices(&mut self, problems: &mut Vec<String>) -> (DayBoundary, ClockPolicy, bool) {
        let day_boundary = match self.strings.remove("day_boundary").as_deref() {
            None => self.default_boundary.unwrap_or(DayBoundary::Record),
            Some("record") => DayBoundary::Record,
            Some("upload") => DayBoundary::Upload,
            Some(other) => {
                problems.push(format!(
                    "day_boundary: {other:?} is not one of \"record\", \"upload\""
                ));
                DayBoundary::Record
            }
        };
        let clock_policy = match self.strings.remove("clock_policy").as_deref() {
            None | Some("quarantine") => ClockPolicy::Quarantine,
            Some("upload_day") => ClockPolicy::UploadDay,
            Some(other) => {
                problems.push(format!(
                    "clock_policy: {other:?} is not one of \"quarantine\", \"upload_day\""
                ));
                ClockPolicy::Quarantine
            }
        };
        let salvage = match self.strings.remove("damaged_uploads").as_deref() {
            None | Some("quarantine") => false,
            Some("salvage") => true,
            Some(other) => {
                problems.push(format!(
                    "damaged_uploads: {other:?} is not one of \"quarantine\", \"salvage\""
                ));
                false
            }
        };

        (day_boundary, clock_policy, salvage)
    }

    /// The counts (days, depth, attempts) and the two codecs with their levels.
    fn counts(&mut self, problems: &mut Vec<String>, defaults: &Config) -> Counts {
        let has_archive_level = self.numbers.contains_key("archive_compression_level");
        let has_oper_level = self.numbers.contains_key("oper_compression_level");
        let mut number = |key: &'static str, default: u32, max: u32| -> u32 {
            match self.numbers.remove(key) {
                None => default,
                Some(n) if n < 0 || n > i64::from(max) => {
                    problems.push(format!("{key} must be between 0 and {max}, not {n}"));
                    default
                }
                Some(n) => u32::try_from(n).unwrap_or(default),
            }
        };
        let archive_days = number("archive_days", defaults.archive_days, 100_000);
        let oper_compress_after_days = number(
            "oper_compress_after_days",
            defaults.oper_compress_after_days,
            100_000,
        );
        let scan_depth = number("scan_depth", defaults.scan_depth, 16);
        let quarantine_days = number("quarantine_days", defaults.quarantine_days, 100_000);
        let hook_attempts = number("hook_attempts", defaults.hooks.attempts, 1000).max(1);
        let restart_warn = number("restart_warn", defaults.restart_warn, 100_000);
        let compress_threads = number("compress_threads", defaults.compress_threads, 1024);
        let hook_concurrency = number("hook_concurrency", 2, 64).max(1) as usize;
        let archive_level = has_archive_level.then(|| number("archive_compression_level", 6, 9));
        let oper_level = has_oper_level.then(|| number("oper_compression_level", 6, 9));

        let mut codec = |key: &'static str, level: Option<u32>| -> Codec {
            if let Some(command) = self.commands.remove(key) {
                return match Codec::from_recipe_command(&command) {
                    Ok(c) => c,
                    Err(e) => {
                        let recipe_key = RECIPE_KEYS
                            .iter()
                            .find(|(_, tk)| *tk == key)
                            .map_or(key, |(rk, _)| rk);
                        problems.push(format!("{recipe_key}: {e}"));
                        Codec::NONE
                    }
                };
            }
            let name = self
                .strings
                .remove(key)
                .unwrap_or_else(|| "gzip".to_owned());
            let compression = match name.parse::<Compression>() {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{key}: {e}"));
                    return Codec::NONE;
                }
            };
            let level = level.unwrap_or_else(|| compression.default_level());
            match Codec::new(compression, level) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{key}: {e}"));
                    Codec::NONE
                }
            }
        };
        let archive_codec = codec("archive_compression", archive_level);
        let oper_codec = codec("oper_compression", oper_level);

        Counts {
            archive_days,
            oper_compress_after_days,
            scan_depth,
            quarantine_days,
            hook_attempts,
            hook_concurrency,
            restart_warn,
            compress_threads,
            archive_codec,
            oper_codec,
        }
    }

    /// Retention by size, the free-space floor ([`Config::check`] refuses what would delete
    /// every archive or protect nothing) and the drop share that makes a sensor `DROPPING`.
    fn space(&mut self, problems: &mut Vec<String>) -> (Option<u64>, Amount, Option<Amount>, u8) {
        let mut amount = |key: &'static str, kind: Kind| -> Option<Amount> {
            let parse = |s: &str| match kind {
                Kind::Size => parse_size(s).map(Amount::Bytes),
                _ => parse_amount(s),
            };
            let (parsed, shown) = match (self.strings.remove(key), self.numbers.remove(key)) {
                (Some(s), _) => (parse(&s), toml::Value::String(s).to_string()),
                (None, Some(n)) => (Err(ValueError::bare(kind, n)), n.to_string()),
                (None, None) => return None,
            };
            parsed
                .map_err(|e| problems.push(format!("{key} = {shown}: {e}")))
                .ok()
        };
        let max_size = amount("archive_max_size", Kind::Size);
        let low_watermark = amount("archive_low_watermark", Kind::Amount);
        let min_free_space = amount("min_free_space", Kind::Amount);
        let drop_warn = match amount("drop_warn", Kind::Amount) {
            None => 1,
            Some(Amount::Percent(p)) => p,
            Some(Amount::Bytes(_)) => {
                problems.push(
                    "drop_warn is a share of the packets, such as \"1%\", not a size".to_owned(),
                );
                1
            }
        };
        let archive_max_size = match max_size {
            Some(Amount::Bytes(n)) => Some(n),
            // A share is refused by the parse (a cap is a size).
            Some(Amount::Percent(_)) | None => None,
        };
        if low_watermark.is_some() && max_size.is_none() {
            problems.push(
                "archive_low_watermark is set without archive_max_size, the cap it is a part of"
                    .to_owned(),
            );
        }
        let archive_low_watermark = low_watermark.unwrap_or(Amount::Percent(90));

        (
            archive_max_size,
            archive_low_watermark,
            min_free_space,
            drop_warn,
        )
    }

    /// The durations ([`Config::check`] refuses zero where it would stop ingest or make every
    /// sensor stale).
    fn durations(&mut self, problems: &mut Vec<String>, defaults: &Config) -> Durations {
        let mut duration = |key: &'static str, default: Duration| -> Duration {
            let (parsed, shown) = match (self.strings.remove(key), self.numbers.remove(key)) {
                (Some(s), _) => (parse_duration(&s), toml::Value::String(s).to_string()),
                (None, Some(n)) => (Err(ValueError::bare(Kind::Duration, n)), n.to_string()),
                (None, None) => return default,
            };
            parsed.unwrap_or_else(|e| {
                problems.push(format!("{key} = {shown}: {e}"));
                default
            })
        };
        let orphan_after = duration("orphan_after", defaults.orphan_after);
        let stale_after = duration("stale_after", defaults.stale_after);
        let rescan_interval = duration("rescan_interval", defaults.rescan_interval);
        let hook_budget = duration("hook_budget", defaults.hooks.budget);
        let max_record_lag = duration("max_record_lag", defaults.max_record_lag);
        let max_clock_skew = duration("max_clock_skew", defaults.max_clock_skew);
        let hook_retry_delay = duration("hook_retry_delay", defaults.hooks.retry_delay);
        Durations {
            orphan_after,
            stale_after,
            rescan_interval,
            hook_budget,
            max_record_lag,
            max_clock_skew,
            hook_retry_delay,
        }
    }

    /// Keys of a known name whose value has the wrong type.
    fn leftovers(&self, problems: &mut Vec<String>) {
        for (key, value) in &self.strings {
            problems.push(format!("{key} has the wrong type (a string: {value:?})"));
        }
        for (key, value) in &self.numbers {
            problems.push(format!("{key} has the wrong type (a number: {value})"));
        }
    }
}

/// The paths as read.
struct Paths {
    drop_dir: Option<PathBuf>,
    oper_dir: Option<PathBuf>,
    archive_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    quarantine_dir: Option<PathBuf>,
    metrics_file: Option<PathBuf>,
}

/// The counts and codecs as read.
struct Counts {
    archive_days: u32,
    oper_compress_after_days: u32,
    scan_depth: u32,
    quarantine_days: u32,
    hook_attempts: u32,
    hook_concurrency: usize,
    restart_warn: u32,
    compress_threads: u32,
    archive_codec: Codec,
    oper_codec: Codec,
}

/// The durations as read.
struct Durations {
    orphan_after: Duration,
    stale_after: Duration,
    rescan_interval: Duration,
    hook_budget: Duration,
    max_record_lag: Duration,
    max_clock_skew: Duration,
    hook_retry_delay: Duration,
}

/// The configuration of these directories and clients (the state and quarantine directories
/// beside the dropzone unless given, as `Config::new` places them), with the directories not
/// to report again: required ones that are missing (already reported; empty in the
/// configuration), and those placed beside a dropzone that is not an absolute path.
fn placed(paths: Paths, clients: Vec<String>) -> (Config, Vec<&'static str>) {
    let Paths {
        drop_dir,
        oper_dir,
        archive_dir,
        log_dir,
        state_dir,
        quarantine_dir,
        metrics_file,
    } = paths;
    let mut missing = Vec::new();
    let mut required = |key, dir: Option<PathBuf>| {
        dir.unwrap_or_else(|| {
            missing.push(key);
            PathBuf::new()
        })
    };
    let drop_dir = required("drop_dir", drop_dir);
    let oper_dir = required("oper_dir", oper_dir);
    let archive_dir = required("archive_dir", archive_dir);
    // Placed beside the dropzone, these follow it: a missing or relative dropzone is reported
    // once, for itself.
    for (key, given) in [
        ("state_dir", state_dir.is_some()),
        ("quarantine_dir", quarantine_dir.is_some()),
    ] {
        if !given && !drop_dir.is_absolute() {
            missing.push(key);
        }
    }
    let mut config = Config::new(drop_dir, oper_dir, archive_dir, clients);
    config.log_dir = log_dir;
    config.metrics_file = metrics_file;
    if let Some(dir) = state_dir {
        config.state_dir = dir;
    }
    if let Some(dir) = quarantine_dir {
        config.quarantine_dir = dir;
    }
    (config, missing)
}
