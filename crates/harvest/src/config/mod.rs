//! The TOML configuration: top-level defaults, `[hosts.NAME]` overrides, validated all at once.
//!
//! ```toml
//! archive_dir = "/var/lib/argus/archive"   # required
//! interface = "eth0"                       # required
//! output = "/var/lib/argus/argus.out"      # required
//! archive_days = 30                        # 0 = keep forever (default)
//! archive_max_size = "20G"                 # optional cap on this host's archives
//! archive_low_watermark = "90%"            # purge down to this: a size or a share of the cap
//!                                          # (archive_max_bytes, archive_low_watermark_bytes:
//!                                          # the same, as sizes)
//! compression = "gzip"                     # none | gzip | bzip2 | xz (default gzip)
//! compression_level = 6                    # default: the format's own default
//! argus_bin = "/usr/sbin/argus"            # default
//! argus_args = ["-S", "5", "-e", "\"sen1\""] # extra arguments, before -i and -w
//! pid_file = "/var/lib/argus/argus.out.pid" # default: OUTPUT.pid
//! argus_log = "/var/lib/argus/argus.out.log" # argus' own messages; "" = none (default: OUTPUT.log)
//! stale_after = "15m"                      # warn when argus wrote nothing for this long; "0" = never
//! supervise = true                         # start argus when it is not running (default)
//!
//! [hosts.sensor2]
//! interface = "eth1"
//! ```
//!
//! No value is ever run by a shell. Every problem is reported, with the key's full name, before
//! anything happens; unknown keys are errors (a typo must not silently become a default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argus_core::codec::{Codec, Compression};
use argus_core::escape::EscapedPath;
use argus_core::grammar::{Amount, format_size};
use argus_core::host::Hostname;
use argus_core::retention::MIN_CAP_BYTES;
use toml::Value;

/// Where `WEBJOB_HOME` points when it is not set (the WebJob client's own default).
pub(crate) const DEFAULT_WEBJOB_HOME: &str = "/usr/local/integrity";

/// The argus binary Debian's `argus-server` installs.
pub(crate) const DEFAULT_ARGUS_BIN: &str = "/usr/sbin/argus";

const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Every key a table may hold, with what it takes (for messages).
const KEYS: &[(&str, &str)] = &[
    ("archive_days", "a whole number of days, 0 = keep forever"),
    ("archive_dir", "an absolute directory path"),
    (
        "archive_max_bytes",
        "a number of bytes such as 20000000000, or a size such as \"20G\" (older name of archive_max_size)",
    ),
    (
        "archive_low_watermark_bytes",
        "a number of bytes, or a size such as \"18G\" (older name of archive_low_watermark)",
    ),
    ("archive_max_size", "a size with a unit such as \"20G\""),
    (
        "archive_low_watermark",
        "a size such as \"18G\", or a share of the cap such as \"90%\"",
    ),
    ("compression", "one of none, gzip, bzip2, xz"),
    ("compression_level", "a whole number in the format's range"),
    ("argus_bin", "an absolute path to the argus binary"),
    ("argus_args", "an array of strings"),
    ("interface", "a network interface name, e.g. \"eth0\""),
    ("output", "an absolute path to argus' output file"),
    ("pid_file", "an absolute path"),
    ("argus_log", "an absolute path, or \"\" for none"),
    (
        "stale_after",
        "a duration with a unit such as \"15m\", \"2h\", \"90s\", or \"0\" for never",
    ),
    ("supervise", "true or false"),
    (
        "metrics_file",
        "an absolute path, e.g. in node_exporter's textfile directory",
    ),
];

/// The settings of one harvest, fully resolved and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) host: Hostname,
    pub(crate) archive_days: u32,
    pub(crate) archive_dir: PathBuf,
    pub(crate) archive_max_bytes: Option<u64>,
    pub(crate) archive_low_watermark_bytes: Option<u64>,
    pub(crate) codec: Codec,
    pub(crate) argus_bin: PathBuf,
    pub(crate) argus_args: Vec<String>,
    pub(crate) interface: String,
    pub(crate) output: PathBuf,
    pub(crate) pid_file: PathBuf,
    pub(crate) argus_log: Option<PathBuf>,
    pub(crate) stale_after: Option<Duration>,
    pub(crate) supervise: bool,
    /// Where Prometheus metrics are written after each run; `None` writes none.
    pub(crate) metrics_file: Option<PathBuf>,
    /// Where each key set in the file came from; a key not here has its default.
    pub(crate) sources: BTreeMap<&'static str, Origin>,
}

/// Where a setting's value was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `""` for the top level, or `hosts.NAME`.
    pub(crate) table: String,
    /// The key as written, when it is an older name of the setting (`archive_max_bytes`).
    pub(crate) older_key: Option<&'static str>,
}

/// The values one table sets, each checked on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Partial {
    archive_days: Option<u32>,
    archive_dir: Option<PathBuf>,
    archive_max_bytes: Option<u64>,
    archive_low_watermark_bytes: Option<Amount>,
    compression: Option<Compression>,
    compression_level: Option<u32>,
    argus_bin: Option<PathBuf>,
    argus_args: Option<Vec<String>>,
    interface: Option<String>,
    output: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    argus_log: Option<Option<PathBuf>>,
    stale_after: Option<Option<Duration>>,
    supervise: Option<bool>,
    metrics_file: Option<PathBuf>,
    /// Where each value was written: its setting's name -> origin.
    origins: BTreeMap<&'static str, Origin>,
}

impl Partial {
    /// `self` with `over`'s values where it has them.
    fn overridden_by(&self, over: &Partial) -> Partial {
        let mut origins = self.origins.clone();
        origins.extend(over.origins.clone());
        macro_rules! pick {
            ($($f:ident),*) => {
                Partial { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* origins }
            };
        }
        pick!(
            archive_days,
            archive_dir,
            archive_max_bytes,
            archive_low_watermark_bytes,
            compression,
            compression_level,
            argus_bin,
            argus_args,
            interface,
            output,
            pid_file,
            argus_log,
            stale_after,
            supervise,
            metrics_file
        )
    }
}

/// A parsed configuration file: the defaults and every host table, with the problems found in
/// each (kept apart, so a mistake in another host's table does not stop this host's harvest).
#[derive(Debug)]
pub(crate) struct Config {
    path: PathBuf,
    top: Partial,
    top_problems: Vec<String>,
    hosts: BTreeMap<String, (Partial, Vec<String>)>,
}

/// Problems that stop a run: each line names the file and the key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

/// Where the configuration is, by the documented lookup order: `--config`, then
/// `$HARVEST_ARGUS_CONFIG`, then `$WEBJOB_HOME/etc/harvest_argus.toml`.
pub(crate) fn locate(
    flag: Option<&Path>,
    env_config: Option<&str>,
    webjob_home: Option<&str>,
) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(path) = env_config.filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = webjob_home
        .filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_WEBJOB_HOME);
    Path::new(home).join("etc/harvest_argus.toml")
}

impl Config {
    /// Reads and checks a configuration file. Only an unreadable file or a TOML syntax error is
    /// an error here; problems with values are kept for [`Config::resolve`] and
    /// [`Config::check_all`].
    pub(crate) fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![format!(
                "cannot read config file {}: {e}",
                EscapedPath(path)
            )])
        })?;
        Config::parse_text(path, &text)
    }

    pub(crate) fn parse_text(path: &Path, text: &str) -> Result<Config, Problems> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Problems(vec![format!(
                "config file {} is not valid TOML: {}",
                EscapedPath(path),
                e.to_string().trim_end().replace('\n', " | ")
            )])
        })?;
        let mut top_problems = Vec::new();
        let mut hosts = BTreeMap::new();
        let mut top_table = table.clone();
        if let Some(value) = top_table.remove("hosts") {
            match value {
                Value::Table(list) => {
                    for (name, value) in list {
                        let mut problems = Vec::new();
                        let place = format!("hosts.{}", toml_key(&name));
                        if let Err(e) = Hostname::new(&name) {
                            problems
                                .push(format!("[{place}]: {name:?} is not a valid host name: {e}"));
                        }
                        let partial = match value {
                            Value::Table(t) => parse_table(&t, &format!("{place}."), &mut problems),
                            other => {
                                problems.push(format!(
                                    "{place} must be a table ([{place}]), not {}",
                                    other.type_str()
                                ));
                                Partial::default()
                            }
                        };
                        hosts.insert(name, (partial, problems));
                    }
                }
                other => top_problems.push(format!(
                    "hosts must be a table of [hosts.NAME] tables, not {}",
                    other.type_str()
                )),
            }
        }
        let top = parse_table(&top_table, "", &mut top_problems);
        Ok(Config {
            path: path.to_path_buf(),
            top,
            top_problems,
            hosts,
        })
    }

    /// The host table that applies to `host`: its exact name, else its short name (up to the
    /// first dot), as the recipe's per-host variables used `hostname`'s output.
    fn host_table(&self, host: &Hostname) -> Option<(&str, &(Partial, Vec<String>))> {
        let name = host.as_str();
        let short = name.split('.').next().unwrap_or(name);
        self.hosts
            .get_key_value(name)
            .or_else(|| self.hosts.get_key_value(short))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The settings of `host`, or every problem that stops its harvest. Problems in other hosts'
    /// tables are returned as warnings.
    pub(crate) fn resolve(&self, host: &Hostname) -> Result<(Settings, Vec<String>), Problems> {
        let table = self.host_table(host);
        let mut problems: Vec<String> = self.top_problems.clone();
        let mut partial = self.top.clone();
        if let Some((_, (host_partial, host_problems))) = table {
            problems.extend(host_problems.iter().cloned());
            partial = partial.overridden_by(host_partial);
        }
        let settings = finish(host, &partial, table.is_some(), &mut problems);
        let problems: Vec<String> = problems
            .into_iter()
            .map(|p| format!("{}: {p}", EscapedPath(&self.path)))
            .collect();
        let warnings = self
            .hosts
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != table.map(|t| t.0))
            .flat_map(|(_, (_, p))| p.iter())
            .map(|p| format!("{}: {p} (another host's table)", EscapedPath(&self.path)))
            .collect();
        match settings {
            Some(s) if problems.is_empty() => Ok((s, warnings)),
            _ => Err(Problems(problems)),
        }
    }

    /// Every problem in the file: the defaults, each host table, and each host's resolved
    /// settings (`check-config` fails on any of them).
    pub(crate) fn check_all(&self) -> Vec<String> {
        let mut all = self.top_problems.clone();
        for (name, (partial, problems)) in &self.hosts {
            all.extend(problems.iter().cloned());
            if let Ok(host) = Hostname::new(name) {
                let merged = self.top.overridden_by(partial);
                let mut resolve = Vec::new();
                finish(&host, &merged, true, &mut resolve);
                all.extend(
                    resolve
                        .into_iter()
                        .filter(|p| !self.top_problems.contains(p) && !problems.contains(p)),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        all.retain(|p| seen.insert(p.clone()));
        all.into_iter()
            .map(|p| format!("{}: {p}", EscapedPath(&self.path)))
            .collect()
    }

    /// The host table names in the file.
    pub(crate) fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }
}

/// Quotes a TOML key when it needs quotes.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        name.to_owned()
    } else {
        Value::String(name.to_owned()).to_string()
    }
}

fn parse_table(table: &toml::Table, prefix: &str, problems: &mut Vec<String>) -> Partial {
    let mut p = Partial::default();
    for (key, value) in table {
        let name = format!("{prefix}{}", toml_key(key));
        let before = problems.len();
        // A value in units is shown as written, so that the message says what was read.
        let with_value = UNIT_KEYS.contains(&key.as_str());
        let mut bad = |what: String| {
            problems.push(if with_value {
                format!("{name} = {value}: {what}")
            } else {
                format!("{name}: {what}")
            });
        };
        match key.as_str() {
            "archive_days" => p.archive_days = int_in(value, 0, 100_000).map_err(&mut bad).ok(),
            "archive_dir" => p.archive_dir = abs_path(value).map_err(&mut bad).ok(),
            "archive_max_bytes" => {
                p.archive_max_bytes = size(value, true).map_err(&mut bad).ok();
            }
            "archive_max_size" => p.archive_max_bytes = size(value, false).map_err(&mut bad).ok(),
            "archive_low_watermark" => {
                p.archive_low_watermark_bytes = amount(value).map_err(&mut bad).ok();
            }
            "archive_low_watermark_bytes" => {
                p.archive_low_watermark_bytes =
                    size(value, true).map(Amount::Bytes).map_err(&mut bad).ok();
            }
            "compression" => {
                p.compression = string(value)
                    .and_then(|s| {
                        s.parse::<Compression>()
                            .map_err(|_| format!("{s:?} is not one of none, gzip, bzip2, xz"))
                    })
                    .map_err(&mut bad)
                    .ok();
            }
            "compression_level" => p.compression_level = int_in(value, 0, 9).map_err(&mut bad).ok(),
            "argus_bin" => p.argus_bin = abs_path(value).map_err(&mut bad).ok(),
            "argus_args" => p.argus_args = args(value).map_err(&mut bad).ok(),
            "interface" => p.interface = interface(value).map_err(&mut bad).ok(),
            "output" => p.output = output(value).map_err(&mut bad).ok(),
            "pid_file" => p.pid_file = abs_path(value).map_err(&mut bad).ok(),
            "argus_log" => {
                p.argus_log = match string(value) {
                    Ok("") => Some(None),
                    Ok(_) => abs_path(value).map(Some).map_err(&mut bad).ok(),
                    Err(e) => {
                        bad(e);
                        None
                    }
                };
            }
            "stale_after" => p.stale_after = duration(value).map_err(&mut bad).ok(),
            "metrics_file" => p.metrics_file = abs_path(value).map_err(&mut bad).ok(),
            "supervise" => {
                p.supervise = value
                    .as_bool()
                    .ok_or_else(|| format!("must be true or false, not {}", value.type_str()))
                    .map_err(&mut bad)
                    .ok();
            }
            _ => {
                let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                let hint = if prefix.is_empty() {
                    ", or [hosts.NAME] tables"
                } else {
                    ""
                };
                bad(format!(
                    "unknown key (known keys: {}{hint})",
                    known.join(", ")
                ));
            }
        }
        if problems.len() == before
            && let Some((setting, older_key)) = setting_of(key)
        {
            let table = prefix.strip_suffix('.').unwrap_or(prefix).to_owned();
            p.origins.insert(setting, Origin { table, older_key });
        }
    }
    p
}

/// The keys whose values carry units (sizes, shares, durations).
const UNIT_KEYS: [&str; 5] = [
    "archive_max_size",
    "archive_low_watermark",
    "archive_max_bytes",
    "archive_low_watermark_bytes",
    "stale_after",
];

/// The setting a key sets, and the key itself when it is an older name of that setting.
fn setting_of(key: &str) -> Option<(&'static str, Option<&'static str>)> {
    let (key, _) = KEYS.iter().find(|(k, _)| *k == key)?;
    Some(match *key {
        "archive_max_bytes" => ("archive_max_size", Some(*key)),
        "archive_low_watermark_bytes" => ("archive_low_watermark", Some(*key)),
        k => (k, None),
    })
}

/// Applies defaults and cross-checks to merged values.
fn finish(
    host: &Hostname,
    p: &Partial,
    has_table: bool,
    problems: &mut Vec<String>,
) -> Option<Settings> {
    let mut missing = |key: &str| {
        let hint = if has_table {
            String::new()
        } else {
            format!(" (and there is no [hosts.{host}] table)")
        };
        problems.push(format!(
            "{key} is missing for host {host}: set it at the top or in [hosts.{host}]{hint}; it takes {}",
            KEYS.iter().find(|(k, _)| *k == key).map_or("a value", |(_, d)| d)
        ));
    };
    let archive_dir = p.archive_dir.clone();
    let interface = p.interface.clone();
    let output = p.output.clone();
    if archive_dir.is_none() {
        missing("archive_dir");
    }
    if interface.is_none() {
        missing("interface");
    }
    if output.is_none() {
        missing("output");
    }
    let compression = p.compression.unwrap_or(Compression::Gzip);
    let codec = match p.compression_level {
        Some(level) => match Codec::new(compression, level) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(format!("compression_level: {e}"));
                None
            }
        },
        None => Some(compression.codec()),
    };
    if let Some(args) = &p.argus_args
        && let Err(e) = argus_proc::argus::check_extra_args(args)
    {
        problems.push(format!("argus_args: {e}"));
    }
    let low_watermark = p
        .archive_low_watermark_bytes
        .zip(p.archive_max_bytes)
        .map(|(low, max)| low.of(max));
    if let (Some(max), Some(low)) = (p.archive_max_bytes, low_watermark)
        && low > max
    {
        problems.push(format!(
            "archive_low_watermark_bytes ({low}) is larger than archive_max_bytes ({max})"
        ));
    }
    if let Some(max) = p.archive_max_bytes
        && max < MIN_CAP_BYTES
    {
        problems.push(format!(
            "archive_max_size = {}: a cap under {} is smaller than one hourly chunk and would \
             delete every archive at each harvest (write a size such as \"20G\")",
            format_size(max),
            format_size(MIN_CAP_BYTES)
        ));
    }
    if let Some(low) = low_watermark
        && low < MIN_CAP_BYTES
    {
        problems.push(format!(
            "archive_low_watermark = {}: a purge down to under {} deletes every archive \
             (write a share such as \"90%\" or a size such as \"18G\")",
            format_size(low),
            format_size(MIN_CAP_BYTES)
        ));
    }
    if p.archive_low_watermark_bytes.is_some() && p.archive_max_bytes.is_none() {
        problems.push(
            "archive_low_watermark_bytes is set without archive_max_bytes, which it is a fraction of"
                .to_owned(),
        );
    }
    if let (Some(out), Some(dir)) = (&output, &archive_dir)
        && out.parent() == Some(dir.as_path())
    {
        problems.push(format!(
                "archive_dir {} is the directory of output: keep the archive apart from argus' live file",
                EscapedPath(dir)
            ));
    }
    let (archive_dir, interface, output, codec) = (archive_dir?, interface?, output?, codec?);
    let sidecar = |suffix: &str| {
        let mut name = output.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    Some(Settings {
        host: host.clone(),
        archive_days: p.archive_days.unwrap_or(0),
        archive_dir,
        archive_max_bytes: p.archive_max_bytes,
        archive_low_watermark_bytes: low_watermark,
        codec,
        argus_bin: p
            .argus_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ARGUS_BIN)),
        argus_args: p.argus_args.clone().unwrap_or_default(),
        interface,
        pid_file: p.pid_file.clone().unwrap_or_else(|| sidecar(".pid")),
        argus_log: p.argus_log.clone().unwrap_or_else(|| Some(sidecar(".log"))),
        stale_after: p.stale_after.unwrap_or(Some(DEFAULT_STALE_AFTER)),
        supervise: p.supervise.unwrap_or(true),
        metrics_file: p.metrics_file.clone(),
        output,
        sources: p.origins.clone(),
    })
}

mod effective;
mod values;

use values::{abs_path, amount, args, duration, int_in, interface, output, size, string};

#[cfg(test)]
mod tests;
