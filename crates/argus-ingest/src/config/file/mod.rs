//! process_argus' configuration files: its TOML, or the 2003 recipe's `process_argus.cfg` read
//! as is, found where process_argus looks ([`locate`]), so that a program embedding the engine
//! runs on a site's own file with the same checks and messages.
//!
//! Both formats end in one validated [`Config`]. Every problem is collected and reported at once,
//! and no value is ever given to a shell: the recipe's `arch_zip="/bin/gzip -9"` is parsed into a
//! codec, and `$`-expansions or backquotes in a recipe file are refused with a clear message.
//! [`to_toml`] writes any config as commented TOML (`convert-config`), and [`effective`] lists
//! every setting with its unit and where it came from (`check-config`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use argus_core::grammar::shell_value;

/// Where `WEBJOB_HOME` points when unset, as in the recipe.
pub const DEFAULT_WEBJOB_HOME: &str = "/usr/local/integrity";

use super::{ClockPolicy, Config, DayBoundary, Hook, HookPolicy};

/// Where each key a file set came from; a key not here has its default.
pub type Sources = BTreeMap<&'static str, Source>;

/// Where a setting's value came from (`check-config` shows it beside the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Not in the file: the documented default.
    Default,
    /// Set in the file under its own name.
    File,
    /// Set in the recipe's `process_argus.cfg` under this key.
    Legacy(&'static str),
}

/// Which file format a config was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The TOML of this product.
    Toml,
    /// The recipe's `key="value"` shell assignments.
    Recipe,
}

/// A config that could not be used: every problem found, each on its own.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file concerned, if any.
    pub path: Option<PathBuf>,
    /// Each problem, one sentence each.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = match &self.path {
            Some(p) => format!(
                "invalid configuration {}:",
                argus_core::escape::EscapedPath(p)
            ),
            None => "invalid configuration:".to_owned(),
        };
        for p in &self.problems {
            let _infallible = write!(s, "\n  - {p}");
        }
        s
    }

    fn single(path: Option<&Path>, problem: String) -> Self {
        ConfigError {
            path: path.map(Path::to_path_buf),
            problems: vec![problem],
        }
    }
}

/// Finds the config file when `--config` is not given: `$PROCESS_ARGUS_CONFIG`, then
/// `$WEBJOB_HOME/etc/process_argus.toml`, then `$WEBJOB_HOME/etc/process_argus.cfg` (the recipe's
/// file). `env` is a lookup of environment variables (the process environment in production).
pub fn locate(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env("PROCESS_ARGUS_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = env("WEBJOB_HOME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_WEBJOB_HOME.to_owned());
    let etc = Path::new(&home).join("etc");
    let candidates = [
        etc.join("process_argus.toml"),
        etc.join("process_argus.cfg"),
    ];
    for candidate in &candidates {
        if candidate.exists() {
            return Ok(candidate.clone());
        }
    }
    Err(ConfigError::single(
        None,
        format!(
            "no configuration found: give --config FILE, set PROCESS_ARGUS_CONFIG, or create {} (or the recipe's {})",
            candidates[0].display(),
            candidates[1].display()
        ),
    ))
}

/// Reads and validates a config file; the format is chosen by content (a recipe file is made of
/// `key="value"` shell assignments, TOML is anything else) so a `.cfg` written in TOML works too.
pub fn load(path: &Path) -> Result<(Config, Format), ConfigError> {
    load_with_sources(path).map(|(config, format, _)| (config, format))
}

/// [`load`], and where each setting came from (for `check-config`).
pub fn load_with_sources(path: &Path) -> Result<(Config, Format, Sources), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::single(
            Some(path),
            format!("cannot read {}: {e}", argus_core::escape::EscapedPath(path)),
        )
    })?;
    parse_with_sources(path, &text)
}

/// [`load_with_sources`] of a file's text: `path` names it (its extension chooses TOML).
pub fn parse_with_sources(
    path: &Path,
    text: &str,
) -> Result<(Config, Format, Sources), ConfigError> {
    let format = sniff_format(path, text);
    let raw = match format {
        Format::Toml => raw_from_toml(text),
        Format::Recipe => raw_from_recipe(text),
    }
    .map_err(|problems| ConfigError {
        path: Some(path.to_path_buf()),
        problems,
    })?;
    let (config, sources) = raw.validate().map_err(|problems| ConfigError {
        path: Some(path.to_path_buf()),
        problems,
    })?;
    Ok((config, format, sources))
}

fn sniff_format(path: &Path, text: &str) -> Format {
    if path.extension().is_some_and(|e| e == "toml") {
        return Format::Toml;
    }
    // The recipe's keys are short names assigned with a quote, never TOML tables or arrays.
    let recipe_like = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .all(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            l.split_once('=').is_some_and(|(k, v)| {
                RECIPE_KEYS.iter().any(|(rk, _)| *rk == k)
                    && !v.trim_start().starts_with('[')
                    && !k.contains(' ')
            })
        });
    if recipe_like {
        Format::Recipe
    } else {
        Format::Toml
    }
}

/// The recipe's keys and their TOML names.
const RECIPE_KEYS: [(&str, &str); 8] = [
    ("arch_day", "archive_days"),
    ("arch_dir", "archive_dir"),
    ("arch_zip", "archive_compression"),
    ("clnt_lst", "clients"),
    ("drop_dir", "drop_dir"),
    ("log_dir", "log_dir"),
    ("oper_dir", "oper_dir"),
    ("oper_zip", "oper_compression"),
];

/// Every TOML key, in the order `convert-config` prints them.
const TOML_KEYS: [&str; 36] = [
    "drop_dir",
    "oper_dir",
    "archive_dir",
    "log_dir",
    "clients",
    "job",
    "archive_days",
    "archive_compression",
    "archive_compression_level",
    "oper_compression",
    "oper_compression_level",
    "oper_compress_after_days",
    "state_dir",
    "quarantine_dir",
    "orphan_after",
    "stale_after",
    "scan_depth",
    "rescan_interval",
    "damaged_uploads",
    "quarantine_days",
    "hook",
    "hook_attempts",
    "hook_concurrency",
    "hook_budget",
    "hook_retry_delay",
    "metrics_file",
    "archive_max_size",
    "archive_low_watermark",
    "min_free_space",
    "day_boundary",
    "max_record_lag",
    "max_clock_skew",
    "clock_policy",
    "drop_warn",
    "restart_warn",
    "compress_threads",
];

/// Values as read, before validation. Compression may come as a recipe command.
#[derive(Debug, Default)]
struct Raw {
    strings: BTreeMap<&'static str, String>,
    numbers: BTreeMap<&'static str, i64>,
    clients: Option<Vec<String>>,
    /// Recipe compression commands (`arch_zip`, `oper_zip`), parsed during validation.
    commands: BTreeMap<&'static str, String>,
    /// The `[[hook]]` tables, parsed.
    hooks: Vec<Hook>,
    /// Where records go when the file does not say: by record time in TOML, by upload day in
    /// the recipe's format (a drop-in must not change where data goes).
    default_boundary: Option<DayBoundary>,
    /// The recipe's key each value was read from (its format only).
    legacy: BTreeMap<&'static str, &'static str>,
    problems: Vec<String>,
}

fn key_static(key: &str) -> Option<&'static str> {
    TOML_KEYS.iter().copied().find(|k| *k == key)
}

fn raw_from_toml(text: &str) -> Result<Raw, Vec<String>> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![format!("not valid TOML: {}", e.message())])?;
    let mut raw = Raw::default();
    for (key, value) in &table {
        let Some(k) = key_static(key) else {
            let hint = RECIPE_KEYS
                .iter()
                .find(|(rk, _)| rk == key)
                .map(|(_, tk)| format!(" (the recipe's {key} is {tk} in TOML)"))
                .unwrap_or_default();
            raw.problems.push(format!("unknown key {key:?}{hint}"));
            continue;
        };
        match (k, value) {
            ("clients", toml::Value::Array(items)) => {
                let mut clients = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) => clients.push(s.to_owned()),
                        None => raw
                            .problems
                            .push(format!("clients: every entry must be a string, not {item}")),
                    }
                }
                raw.clients = Some(clients);
            }
            ("clients", toml::Value::String(s)) => {
                raw.clients = Some(s.split_whitespace().map(str::to_owned).collect());
            }
            ("hook", value) => raw.hooks = hooks::parse_hooks(value, &mut raw.problems),
            ("clients", other) => raw.problems.push(format!(
                "clients must be a list of client ids or globs, not {}",
                other.type_str()
            )),
            (_, toml::Value::String(s)) => {
                raw.strings.insert(k, s.clone());
            }
            (_, toml::Value::Integer(n)) => {
                raw.numbers.insert(k, *n);
            }
            (_, other) => raw
                .problems
                .push(format!("{k} has the wrong type ({})", other.type_str())),
        }
    }
    Ok(raw)
}

fn raw_from_recipe(text: &str) -> Result<Raw, Vec<String>> {
    let mut raw = Raw {
        default_boundary: Some(DayBoundary::Upload),
        ..Raw::default()
    };
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            raw.problems
                .push(format!("line {n}: expected key=\"value\", found {line:?}"));
            continue;
        };
        let value = match shell_value(value) {
            Ok(v) => v,
            Err(why) => {
                raw.problems.push(format!("line {n}: {key}: {why}"));
                continue;
            }
        };
        let Some((recipe_key, toml_key)) = RECIPE_KEYS.iter().find(|(rk, _)| *rk == key) else {
            raw.problems.push(format!(
                "line {n}: unknown key {key:?} (known: {})",
                RECIPE_KEYS.map(|(k, _)| k).join(", ")
            ));
            continue;
        };
        let Some(k) = key_static(toml_key) else {
            continue;
        };
        raw.legacy.insert(k, *recipe_key);
        match *recipe_key {
            "clnt_lst" => raw.clients = Some(value.split_whitespace().map(str::to_owned).collect()),
            "arch_zip" | "oper_zip" => {
                raw.commands.insert(k, value);
            }
            "arch_day" => match value.trim().parse::<i64>() {
                Ok(days) => {
                    raw.numbers.insert(k, days);
                }
                Err(_) => raw.problems.push(format!(
                    "line {n}: arch_day must be a whole number of days, not {value:?}"
                )),
            },
            _ => {
                raw.strings.insert(k, value);
            }
        }
    }
    Ok(raw)
}

mod convert;
mod effective;
mod hooks;
mod validate;

pub use convert::to_toml;
pub use effective::{Setting, effective};

#[cfg(test)]
mod tests;
