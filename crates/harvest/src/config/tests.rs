//! Unit tests of the harvest_argus configuration: per-host tables, every problem at once.

use std::fmt::Write as _;

use argus_core::grammar::{format_duration, format_size_exact};

use super::*;

impl Settings {
    /// The settings as TOML lines (the tests read them back).
    fn to_toml(&self) -> String {
        let s = |v: &str| Value::String(v.to_owned()).to_string();
        let p = |v: &Path| s(&v.to_string_lossy());
        let mut out = String::new();
        let _ = writeln!(out, "# resolved settings of host {}", self.host);
        let _ = writeln!(out, "archive_days = {}", self.archive_days);
        let _ = writeln!(out, "archive_dir = {}", p(&self.archive_dir));
        if let Some(max) = self.archive_max_bytes {
            let _ = writeln!(out, "archive_max_size = {}", s(&format_size_exact(max)));
        }
        if let Some(low) = self.archive_low_watermark_bytes {
            let _ = writeln!(
                out,
                "archive_low_watermark = {}",
                s(&format_size_exact(low))
            );
        }
        let _ = writeln!(out, "compression = {}", s(self.codec.compression().name()));
        let _ = writeln!(out, "compression_level = {}", self.codec.level());
        let _ = writeln!(out, "argus_bin = {}", p(&self.argus_bin));
        let args: Vec<String> = self.argus_args.iter().map(|a| s(a)).collect();
        let _ = writeln!(out, "argus_args = [{}]", args.join(", "));
        let _ = writeln!(out, "interface = {}", s(&self.interface));
        let _ = writeln!(out, "output = {}", p(&self.output));
        let _ = writeln!(out, "pid_file = {}", p(&self.pid_file));
        let log = self.argus_log.as_deref().map(p).unwrap_or_else(|| s(""));
        let _ = writeln!(out, "argus_log = {log}");
        let stale = self
            .stale_after
            .map_or_else(|| "0".to_owned(), format_duration);
        let _ = writeln!(out, "stale_after = {}", s(&stale));
        let _ = writeln!(out, "supervise = {}", self.supervise);
        if let Some(m) = &self.metrics_file {
            let _ = writeln!(out, "metrics_file = {}", p(m));
        }
        out
    }
}

fn host(name: &str) -> Hostname {
    Hostname::new(name).expect("valid host")
}

fn parse(text: &str) -> Config {
    Config::parse_text(Path::new("/etc/h.toml"), text).expect("valid TOML")
}

const GOOD: &str = r#"
archive_dir = "/var/lib/argus/archive"
output = "/var/lib/argus/argus.out"
archive_days = 30
compression = "xz"

[hosts.sensor1]
interface = "eth0"
compression_level = 1

[hosts.sensor2]
interface = "eth1"
argus_args = ["-S", "5"]
archive_max_bytes = "20G"
argus_log = ""
stale_after = "2h"
"#;

#[test]
fn resolves_defaults_and_host_overrides() {
    let config = parse(GOOD);
    let (s, warnings) = config.resolve(&host("sensor1")).expect("valid");
    assert!(warnings.is_empty());
    assert_eq!(s.interface, "eth0");
    assert_eq!(s.codec, Codec::new(Compression::Xz, 1).expect("codec"));
    assert_eq!(s.archive_days, 30);
    assert_eq!(s.argus_bin, PathBuf::from(DEFAULT_ARGUS_BIN));
    assert_eq!(s.pid_file, PathBuf::from("/var/lib/argus/argus.out.pid"));
    assert_eq!(
        s.argus_log,
        Some(PathBuf::from("/var/lib/argus/argus.out.log"))
    );
    assert_eq!(s.stale_after, Some(Duration::from_secs(900)));
    assert!(s.supervise);
    let (s, _) = config
        .resolve(&host("sensor2.example.org"))
        .expect("short name");
    assert_eq!(s.interface, "eth1");
    assert_eq!(s.argus_args, ["-S", "5"]);
    assert_eq!(s.archive_max_bytes, Some(20 << 30));
    assert_eq!(s.argus_log, None);
    assert_eq!(s.codec, Compression::Xz.codec());
    assert_eq!(s.stale_after, Some(Duration::from_secs(7200)));
    // The printed settings read back as the same settings.
    let again = parse(&s.to_toml())
        .resolve(&host("sensor2.example.org"))
        .expect("round trip")
        .0;
    assert_eq!(values(again), values(s));
    assert!(config.check_all().is_empty(), "{:?}", config.check_all());
}

#[test]
fn reports_every_problem_at_once_with_key_names() {
    let config = parse(
        r#"
archive_days = -1
compresion = "gzip"
argus_bin = "argus"
output = "/a/out"

[hosts.sensor1]
compression = "zstd"
argus_args = ["-d"]
interface = "-i"
pid_file = 7
"#,
    );
    let problems = config.resolve(&host("sensor1")).expect_err("invalid").0;
    let text = problems.join("\n");
    for needle in [
        "archive_days: -1 is out of range",
        "compresion: unknown key",
        "argus_bin: \"argus\" must be an absolute path",
        "hosts.sensor1.compression: \"zstd\" is not one of",
        "argus_args: argus argument \"-d\" is not allowed",
        "hosts.sensor1.interface: \"-i\" must not start with '-'",
        "hosts.sensor1.pid_file: must be a string, not integer",
        "archive_dir is missing for host sensor1",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(problems.iter().all(|p| p.starts_with("/etc/h.toml: ")));
}

#[test]
fn another_hosts_mistake_is_only_a_warning_but_check_all_fails() {
    let config = parse(
        r#"
archive_dir = "/arc"
output = "/a/out"
interface = "eth0"
[hosts.other]
interfac = "eth1"
"#,
    );
    let (_, warnings) = config.resolve(&host("sensor1")).expect("this host is fine");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("hosts.other.interfac: unknown key"));
    assert_eq!(config.check_all().len(), 1);
}

#[test]
fn missing_required_keys_name_the_host() {
    let config = parse("archive_dir = \"/arc\"\n");
    let problems = config.resolve(&host("s1")).expect_err("missing").0;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("interface is missing for host s1"));
    assert!(problems[0].contains("no [hosts.s1] table"));
}

#[test]
fn syntax_errors_and_bad_host_tables() {
    assert!(Config::parse_text(Path::new("x"), "a = ").is_err());
    let config = parse("hosts = 3\n");
    assert!(config.check_all()[0].contains("hosts must be a table"));
    let config = parse("[hosts.\"../x\"]\ninterface = \"lo\"\n");
    assert!(config.check_all()[0].contains("not a valid host name"));
}

#[test]
fn archive_dir_must_not_be_the_output_dir_and_levels_are_checked() {
    let config = parse(
        "archive_dir = \"/a\"\noutput = \"/a/out\"\ninterface = \"lo\"\ncompression = \"gzip\"\ncompression_level = 0\n",
    );
    let text = config.resolve(&host("s")).expect_err("bad").to_string();
    assert!(
        text.contains("archive_dir /a is the directory of output"),
        "{text}"
    );
    assert!(text.contains("compression_level"), "{text}");
}

#[test]
fn sizes_and_durations() {
    // The grammar is argus_core::grammar's; here, how the settings read it.
    let text = |s: &str| Value::String(s.to_owned());
    assert_eq!(size(&text("20G"), false), Ok(20 << 30));
    assert_eq!(size(&text("512MiB"), false), Ok(512 << 20));
    assert_eq!(size(&text("1KB"), false), Ok(1024));
    // Under a key that names bytes, a number is bytes; elsewhere it needs a unit.
    assert_eq!(size(&text("100"), true), Ok(100));
    assert_eq!(size(&Value::Integer(100), true), Ok(100));
    for bare in [text("100"), Value::Integer(100)] {
        let err = size(&bare, false).expect_err("bare");
        assert!(err.contains("a bare number has no unit"), "{err}");
    }
    for bad in ["", "G", "-1", "1X", "0", "0B"] {
        assert!(size(&text(bad), true).is_err(), "{bad}");
    }
    assert!(size(&Value::Integer(0), true).is_err());
    assert_eq!(amount(&text("90%")), Ok(Amount::Percent(90)));
    let err = amount(&Value::Integer(90)).expect_err("bare");
    assert!(
        err.contains("write \"90%\" or a size such as \"90M\""),
        "{err}"
    );
    assert_eq!(duration(&text("15m")), Ok(Some(Duration::from_secs(900))));
    assert_eq!(duration(&text("0")), Ok(None), "zero is never");
    assert_eq!(duration(&Value::Integer(0)), Ok(None), "zero is never");
    for bare in [text("90"), Value::Integer(90)] {
        let err = duration(&bare).expect_err("bare");
        assert!(
            err.contains("write \"90s\", \"90m\", \"90h\" or \"90d\""),
            "{err}"
        );
    }
    assert_eq!(
        duration(&text("1h30m")),
        Ok(Some(Duration::from_secs(5400))),
        "several units, as process_argus reads them"
    );
    assert!(duration(&text("1w")).is_err());
}

const SENSOR: &str = r#"
archive_dir = "/var/lib/argus/archive"
output = "/var/lib/argus/argus.out"
interface = "eth0"
"#;

/// Every problem `check-config` reports for SENSOR with `extra`.
fn problems_with(extra: &str) -> String {
    let config = parse(&format!("{SENSOR}{extra}\n"));
    let mut all = config.check_all();
    if let Err(p) = config.resolve(&host("sensor1")) {
        all.extend(p.0);
    }
    all.join("\n")
}

#[test]
fn a_spelling_that_could_erase_the_archive_is_refused() {
    for (line, needle) in [
        (
            "archive_max_size = 2",
            "archive_max_size = 2: a bare number has no unit: write \"2M\", \"2G\" or, if bytes are meant, \"2B\"",
        ),
        (
            "archive_max_size = \"3\"",
            "archive_max_size = \"3\": a bare number has no unit",
        ),
        (
            "archive_max_size = \"2M\"\narchive_low_watermark = 90",
            "archive_low_watermark = 90: a bare number has no unit: write \"90%\"",
        ),
        ("archive_max_bytes = 2", "smaller than one hourly chunk"),
        (
            "archive_max_size = \"100K\"",
            "would delete every archive at each harvest",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark_bytes = 90",
            "a purge down to under 1 MiB deletes every archive",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark = \"0%\"",
            "\"0%\" is not a size",
        ),
        (
            "stale_after = \"2\"",
            "stale_after = \"2\": a bare number has no unit",
        ),
        (
            "stale_after = 900",
            "stale_after = 900: a bare number has no unit",
        ),
        (
            "[hosts.sensor1]\narchive_max_size = 5",
            "hosts.sensor1.archive_max_size = 5: a bare number",
        ),
    ] {
        let all = problems_with(line);
        assert!(
            all.contains(needle),
            "{line}: missing {needle:?} in:\n{all}"
        );
    }
    let fine = "archive_max_size = \"2M\"\narchive_low_watermark = \"90%\"\nstale_after = \"15m\"";
    assert_eq!(problems_with(fine), "");
    assert_eq!(problems_with("archive_max_bytes = 20000000000"), "");
}

#[test]
fn every_setting_is_shown_in_units_with_its_source() {
    let text =
        format!("{SENSOR}archive_max_bytes = 2097152\n[hosts.sensor1]\nstale_after = \"90m\"\n");
    let (s, _) = parse(&text).resolve(&host("sensor1")).expect("valid");
    let rows = s.effective();
    let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
    for (key, _) in KEYS {
        let shown = match *key {
            "archive_max_bytes" => "archive_max_size",
            "archive_low_watermark_bytes" => "archive_low_watermark",
            k => k,
        };
        assert!(keys.contains(&shown), "{key} is not shown: {keys:?}");
    }
    let line = |key: &str| rows.iter().find(|r| r.key == key).map(|r| r.line());
    assert_eq!(
        line("archive_max_size").as_deref(),
        Some("archive_max_size = 2 MiB (file as archive_max_bytes)")
    );
    assert_eq!(
        line("archive_low_watermark").as_deref(),
        Some("archive_low_watermark = 1.8 MiB (90% of archive_max_size, default)")
    );
    assert_eq!(
        line("stale_after").as_deref(),
        Some("stale_after = 1h30m ([hosts.sensor1])")
    );
    assert_eq!(
        line("interface").as_deref(),
        Some("interface = eth0 (file)")
    );
    assert_eq!(
        line("supervise").as_deref(),
        Some("supervise = true (default)")
    );
    let json = serde_json::to_value(&rows).expect("json");
    let max = json
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == "archive_max_size"))
        .expect("row");
    assert_eq!(max["value"], 2_097_152);
    assert_eq!(max["older_key"], "archive_max_bytes");
}

/// The values of settings, without where each came from.
fn values(mut s: Settings) -> Settings {
    s.sources.clear();
    s
}

#[test]
fn the_size_cap_reads_as_process_argus_reads_it() {
    let text = r#"
archive_dir = "/var/lib/argus/archive"
output = "/var/lib/argus/argus.out"
interface = "eth0"
archive_max_size = "10G"
archive_low_watermark = "80%"
metrics_file = "/var/lib/prometheus/node-exporter/harvest_argus.prom"
[hosts.sensor2]
archive_low_watermark = "9G"
"#;
    let config = parse(text);
    let (s, _) = config.resolve(&host("sensor1")).expect("valid");
    assert_eq!(s.archive_max_bytes, Some(10 << 30));
    assert_eq!(
        s.archive_low_watermark_bytes,
        Some((10u64 << 30) * 80 / 100)
    );
    assert_eq!(
        s.metrics_file.as_deref(),
        Some(Path::new(
            "/var/lib/prometheus/node-exporter/harvest_argus.prom"
        ))
    );
    let (s2, _) = config.resolve(&host("sensor2")).expect("valid");
    assert_eq!(s2.archive_low_watermark_bytes, Some(9 << 30));
    let again = parse(&s.to_toml())
        .resolve(&host("sensor1"))
        .expect("round trip")
        .0;
    assert_eq!(values(again), values(s));
    let bad = parse(&text.replace("80%", "180%"));
    let err = bad.resolve(&host("sensor1")).expect_err("bad share");
    assert!(
        err.0.iter().any(|p| p.contains("archive_low_watermark")),
        "{err:?}"
    );
}

#[test]
fn config_lookup_order() {
    let flag = Path::new("/f.toml");
    assert_eq!(locate(Some(flag), Some("/e.toml"), Some("/w")), flag);
    assert_eq!(
        locate(None, Some("/e.toml"), Some("/w")),
        Path::new("/e.toml")
    );
    assert_eq!(
        locate(None, Some(""), Some("/w")),
        Path::new("/w/etc/harvest_argus.toml")
    );
    assert_eq!(
        locate(None, None, None),
        Path::new("/usr/local/integrity/etc/harvest_argus.toml")
    );
}
