//! Unit tests of the process_argus configuration: both formats, every problem at once, lookup.

use argus_core::codec::Compression;
use webjob_drop::name::check_client_pattern;

use super::*;

const RECIPE: &str = "arch_day=\"1\"\narch_dir=\"/tmp/archive\"\narch_zip=\"/bin/gzip -9\"\nclnt_lst=\"client1 client2\"\nlog_dir=\"/usr/local/integrity/log\"\ndrop_dir=\"/integrity/incoming\"\noper_dir=\"/tmp/operational\"\noper_zip=\"/bin/gzip -9\"\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn the_recipe_file_reads_as_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, format) = load(&write(dir.path(), "process_argus.cfg", RECIPE)).expect("load");
    assert_eq!(format, Format::Recipe);
    assert_eq!(c.clients, ["client1", "client2"]);
    assert_eq!(c.archive_days, 1);
    assert_eq!(
        c.archive_codec,
        Compression::Gzip.with_level(9).expect("level")
    );
    assert_eq!(
        c.oper_codec,
        Compression::Gzip.with_level(9).expect("level")
    );
    assert_eq!(c.drop_dir, Path::new("/integrity/incoming"));
    assert_eq!(
        c.log_dir.as_deref(),
        Some(Path::new("/usr/local/integrity/log"))
    );
    assert_eq!(c.state_dir, Path::new("/integrity/process_argus"));
    assert_eq!(c.quarantine_dir, Path::new("/integrity/quarantine"));
    assert_eq!(c.job, "harvest_argus");
}

#[test]
fn convert_config_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, _) = load(&write(dir.path(), "process_argus.cfg", RECIPE)).expect("load");
    let toml_path = write(dir.path(), "process_argus.toml", &to_toml(&c));
    let (again, format) = load(&toml_path).expect("converted TOML loads");
    assert_eq!(format, Format::Toml);
    assert_eq!(again, c);
}

#[test]
fn hooks_and_their_policy_round_trip_through_convert_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"
drop_dir = "/srv/drop"
oper_dir = "/srv/oper"
archive_dir = "/srv/arch"
clients = ["*"]
quarantine_days = 7
hook_attempts = 3
hook_concurrency = 4
hook_budget = "90s"
hook_retry_delay = "10s"

[[hook]]
on = "day_closed"
command = ["/usr/local/bin/report", "--day={day}", "{{literal}}", "{day_file}"]

[[hook]]
name = "load"
on = "ingested"
command = ["/usr/bin/rasqlinsert", "-r", "{day_file}"]
timeout = "2m"
"#;
    let (c, _) = load(&write(dir.path(), "a.toml", text)).expect("load");
    assert_eq!(c.quarantine_days, 7);
    assert_eq!(c.hooks.attempts, 3);
    assert_eq!(c.hooks.concurrency, 4);
    assert_eq!(c.hooks.budget, std::time::Duration::from_secs(90));
    assert_eq!(c.hooks.retry_delay, std::time::Duration::from_secs(10));
    assert_eq!(c.hooks.hooks.len(), 2);
    assert_eq!(c.hooks.hooks[0].name, "day_closed-1");
    let (again, _) = load(&write(dir.path(), "b.toml", &to_toml(&c))).expect("converted");
    assert_eq!(again, c);
    // The recipe's format has no hooks; its conversion shows an example, commented out.
    let (recipe, _) = load(&write(dir.path(), "process_argus.cfg", RECIPE)).expect("load");
    assert!(recipe.hooks.hooks.is_empty());
    assert!(to_toml(&recipe).contains("# [[hook]]"));
}

#[test]
fn toml_files_by_record_time_and_the_recipe_by_upload_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (recipe, _) = load(&write(dir.path(), "process_argus.cfg", RECIPE)).expect("recipe");
    assert_eq!(
        recipe.day_boundary,
        DayBoundary::Upload,
        "a drop-in changes nothing"
    );
    // convert-config writes it, so the converted file keeps filing by upload day.
    assert!(to_toml(&recipe).contains("day_boundary = \"upload\""));
    let (again, _) = load(&write(dir.path(), "c.toml", &to_toml(&recipe))).expect("converted");
    assert_eq!(again.day_boundary, DayBoundary::Upload);
    let toml = "drop_dir = \"/srv/d\"\noper_dir = \"/srv/o\"\narchive_dir = \"/srv/a\"\nclients = [\"*\"]\n";
    let (c, _) = load(&write(dir.path(), "t.toml", toml)).expect("toml");
    assert_eq!(c.day_boundary, DayBoundary::Record);
    assert_eq!(c.clock_policy, ClockPolicy::Quarantine);
    assert_eq!(c.max_record_lag, std::time::Duration::from_secs(7 * 86_400));
    assert_eq!(c.max_clock_skew, std::time::Duration::from_secs(3600));
    let bad = format!("{toml}day_boundary = \"midnight\"\nclock_policy = \"ignore\"\n");
    let err = load(&write(dir.path(), "b.toml", &bad)).expect_err("bad values");
    let text = err.to_string();
    assert!(
        text.contains("day_boundary") && text.contains("clock_policy"),
        "{text}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "drop_dir = \"relative/drop\"\nclients = []\narchive_compression = \"zstd\"\narch_zip = \"gzip\"\nbogus = 1\noper_compression_level = 12\norphan_after = \"soon\"\ndamaged_uploads = \"fix\"\n";
    let err = load(&write(dir.path(), "c.toml", text)).expect_err("invalid");
    let all = err.to_string();
    for needle in [
        "unknown key \"bogus\"",
        "unknown key \"arch_zip\" (the recipe's arch_zip is archive_compression in TOML)",
        "drop_dir must be an absolute path",
        "oper_dir is required",
        "archive_dir is required",
        "clients is empty",
        "archive_compression: invalid compression \"zstd\"",
        "oper_compression_level must be between 0 and 9, not 12",
        "orphan_after = \"soon\": \"soon\" is not a duration",
        "damaged_uploads: \"fix\" is not one of \"quarantine\", \"salvage\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(err.problems.len(), 10, "{all}");
}

#[test]
fn recipe_values_follow_the_grammar_harvest_argus_reads() {
    // Trailing comments, escapes and single quotes, as the sensor side always took them.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "arch_day=\"1\"  # keep a day\narch_dir='/tmp/archive'\narch_zip=\"/bin/gzip -9\"\nclnt_lst=\"client1 client2\"\nlog_dir=/usr/local/integrity/log\ndrop_dir=\"/integrity/in\\\\coming\"\noper_dir=/tmp/oper\\ational\noper_zip=\"/bin/gzip -9\"\n";
    let (config, format) = load(&write(dir.path(), "process_argus.cfg", text)).expect("valid");
    assert_eq!(format, Format::Recipe);
    assert_eq!(config.archive_days, 1);
    assert_eq!(config.archive_dir, Path::new("/tmp/archive"));
    assert_eq!(config.drop_dir, Path::new("/integrity/in\\coming"));
    assert_eq!(config.oper_dir, Path::new("/tmp/operational"));
    assert_eq!(config.clients, ["client1", "client2"]);
}

#[test]
fn recipe_files_never_reach_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (line, needle) in [
        ("arch_zip=\"/bin/gzip -9; rm -rf /\"", "arch_zip"),
        ("drop_dir=\"$HOME/incoming\"", "shell expansion"),
        ("drop_dir=\"`pwd`/incoming\"", "shell expansion"),
        ("drop_dir=/a b", "without a shell"),
        ("PATH=\"/bin\"", "unknown key \"PATH\""),
    ] {
        let text = RECIPE.to_owned() + line + "\n";
        let path = write(dir.path(), "process_argus.cfg", &text);
        let err = load(&path).expect_err(line);
        assert!(err.to_string().contains(needle), "{line}: {err}");
    }
}

#[test]
fn directories_must_stay_out_of_the_dropzone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "drop_dir = \"/d\"\noper_dir = \"/d/oper\"\narchive_dir = \"/a\"\nclients = [\"c\"]\nstate_dir = \"/a\"\n";
    let err = load(&write(dir.path(), "c.toml", text)).expect_err("invalid");
    let all = err.to_string();
    assert!(
        all.contains("oper_dir /d/oper must be outside drop_dir"),
        "{all}"
    );
    assert!(
        all.contains("archive_dir and state_dir must be different"),
        "{all}"
    );
}

#[test]
fn clients_are_ids_or_globs() {
    assert!(check_client_pattern("client_1.a-b").is_ok());
    assert!(check_client_pattern("web*").is_ok());
    assert!(check_client_pattern("*").is_ok());
    assert!(check_client_pattern("../x").is_err());
    assert!(check_client_pattern("a b").is_err());
    assert!(check_client_pattern(&"x".repeat(65)).is_err());
    assert!(check_client_pattern("[").is_err());
}

#[test]
fn lookup_order_follows_the_recipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().to_str().expect("utf8").to_owned();
    std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
    let env = |home: String, cfg: Option<String>| {
        move |k: &str| match k {
            "WEBJOB_HOME" => Some(home.clone()),
            "PROCESS_ARGUS_CONFIG" => cfg.clone(),
            _ => None,
        }
    };
    assert!(locate(None, env(home.clone(), None)).is_err());
    let cfg = write(&dir.path().join("etc"), "process_argus.cfg", RECIPE);
    assert_eq!(locate(None, env(home.clone(), None)).expect("cfg"), cfg);
    let toml = write(&dir.path().join("etc"), "process_argus.toml", "");
    assert_eq!(
        locate(None, env(home.clone(), None)).expect("toml first"),
        toml
    );
    assert_eq!(
        locate(None, env(home.clone(), Some("/x.toml".into()))).expect("env"),
        Path::new("/x.toml")
    );
    assert_eq!(
        locate(Some(Path::new("/y")), env(home, Some("/x.toml".into()))).expect("flag"),
        Path::new("/y")
    );
}

const BASE: &str =
    "drop_dir = \"/d/in\"\noper_dir = \"/o\"\narchive_dir = \"/a\"\nclients = [\"c\"]\n";

/// The problems of BASE with `extra` appended.
fn problems_with(extra: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    match load(&write(dir.path(), "p.toml", &format!("{BASE}{extra}\n"))) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bare_number_is_refused_with_the_spellings_it_could_have_meant() {
    for (line, needle) in [
        (
            "archive_max_size = \"2M\"\narchive_low_watermark = 90",
            "archive_low_watermark = 90: a bare number has no unit: write \"90%\" or a size such as \"90M\"",
        ),
        (
            "archive_max_size = 2",
            "archive_max_size = 2: a bare number has no unit: write \"2M\", \"2G\" or, if bytes are meant, \"2B\"",
        ),
        (
            "archive_max_size = \"3\"",
            "archive_max_size = \"3\": a bare number has no unit: write \"3M\"",
        ),
        (
            "min_free_space = 5",
            "min_free_space = 5: a bare number has no unit: write \"5%\"",
        ),
        (
            "stale_after = \"2\"",
            "stale_after = \"2\": a bare number has no unit: write \"2s\", \"2m\", \"2h\" or \"2d\"",
        ),
        (
            "stale_after = 7200",
            "stale_after = 7200: a bare number has no unit",
        ),
        (
            "max_clock_skew = 30",
            "max_clock_skew = 30: a bare number has no unit",
        ),
        (
            "max_record_lag = \"7\"",
            "max_record_lag = \"7\": a bare number has no unit",
        ),
        (
            "hook_budget = \"300\"",
            "hook_budget = \"300\": a bare number has no unit",
        ),
        (
            "hook_retry_delay = 60",
            "hook_retry_delay = 60: a bare number has no unit",
        ),
        (
            "rescan_interval = \"60\"",
            "rescan_interval = \"60\": a bare number has no unit",
        ),
        (
            "orphan_after = 6",
            "orphan_after = 6: a bare number has no unit",
        ),
        (
            "[[hook]]\non = \"ingested\"\ncommand = [\"/bin/true\"]\ntimeout = 600",
            "hook 1: timeout = 600: a bare number has no unit",
        ),
    ] {
        let all = problems_with(line);
        assert!(
            all.contains(needle),
            "{line}: missing {needle:?} in:\n{all}"
        );
    }
}

#[test]
fn values_that_would_destroy_data_or_stop_ingest_are_refused() {
    for (line, needle) in [
        (
            "archive_max_size = \"512K\"",
            "smaller than one hourly upload",
        ),
        (
            "archive_max_size = \"2B\"",
            "would delete every archive at each pass",
        ),
        (
            "archive_max_size = \"50%\"",
            "\"50%\" is not a size with a unit",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark = \"0%\"",
            "archive_low_watermark = \"0%\"",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark = \"0B\"",
            "archive_low_watermark = \"0B\"",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark = \"90B\"",
            "deletes every archive",
        ),
        (
            "archive_max_size = \"2G\"\narchive_low_watermark = \"3G\"",
            "larger than archive_max_size",
        ),
        (
            "archive_low_watermark = \"90%\"",
            "without archive_max_size",
        ),
        ("min_free_space = \"5B\"", "protects nothing"),
        ("max_clock_skew = \"0\"", "zero clock window"),
        ("max_record_lag = \"0s\"", "zero clock window"),
        ("stale_after = \"0\"", "every sensor would be stale"),
        ("hook_budget = \"0m\"", "a cron pass would run no hook"),
        (
            "[[hook]]\non = \"ingested\"\ncommand = [\"/bin/true\"]\ntimeout = \"0s\"",
            "a zero timeout would kill every run",
        ),
    ] {
        let all = problems_with(line);
        assert!(
            all.contains(needle),
            "{line}: missing {needle:?} in:\n{all}"
        );
    }
    // And the sound spellings of the same settings pass.
    let fine = "archive_max_size = \"2M\"\narchive_low_watermark = \"90%\"\nmin_free_space = \"5%\"\n\
                stale_after = \"2h\"\nmax_clock_skew = \"30m\"\nhook_budget = \"5m\"\nhook_retry_delay = \"1m\"\n\
                rescan_interval = \"60s\"\norphan_after = \"6h\"\nmax_record_lag = \"7d\"";
    assert_eq!(problems_with(fine), "");
}

#[test]
fn every_setting_is_shown_in_units_with_its_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{BASE}archive_max_size = \"2M\"\nstale_after = \"90m\"\n");
    let (config, _, sources) =
        load_with_sources(&write(dir.path(), "p.toml", &text)).expect("valid");
    let rows = effective(&config, &sources);
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    for key in TOML_KEYS {
        assert!(keys.contains(&key), "{key} is not shown: {keys:?}");
    }
    let line = |key: &str| {
        rows.iter()
            .find(|r| r.key == key)
            .map(Setting::line)
            .unwrap_or_default()
    };
    assert_eq!(
        line("archive_low_watermark"),
        "archive_low_watermark = 1.8 MiB (90% of archive_max_size, default)"
    );
    assert_eq!(line("archive_max_size"), "archive_max_size = 2 MiB (file)");
    assert_eq!(line("stale_after"), "stale_after = 1h30m (file)");
    assert_eq!(line("max_clock_skew"), "max_clock_skew = 1h (default)");
    assert_eq!(
        line("min_free_space"),
        "min_free_space = none (no free-space floor, default)"
    );
    let low = rows
        .iter()
        .find(|r| r.key == "archive_low_watermark")
        .expect("row");
    assert_eq!(low.value, serde_json::json!((2u64 << 20) * 9 / 10));

    // The recipe's keys are named as the source of what they set.
    let (config, _, sources) =
        load_with_sources(&write(dir.path(), "process_argus.cfg", RECIPE)).expect("recipe");
    let rows = effective(&config, &sources);
    let archive_days = rows.iter().find(|r| r.key == "archive_days").expect("row");
    assert_eq!(
        archive_days.line(),
        "archive_days = 1 day (the recipe's arch_day)"
    );
    let level = rows
        .iter()
        .find(|r| r.key == "archive_compression_level")
        .expect("row");
    assert_eq!(
        level.line(),
        "archive_compression_level = 9 (the recipe's arch_zip)"
    );
    let boundary = rows.iter().find(|r| r.key == "day_boundary").expect("row");
    assert_eq!(boundary.shown, "upload");
}

#[test]
fn compress_threads_caps_the_cores_and_zero_means_one_per_core() {
    let dir = tempfile::tempdir().expect("tempdir");
    let read = |extra: &str| {
        let text = format!("{BASE}{extra}\n");
        load_with_sources(&write(dir.path(), "p.toml", &text)).expect("valid")
    };
    let shown = |extra: &str| {
        let (config, _, sources) = read(extra);
        let line = effective(&config, &sources)
            .iter()
            .find(|r| r.key == "compress_threads")
            .map(Setting::line)
            .expect("row");
        (config.compress_threads, line)
    };
    let (threads, line) = shown("");
    assert_eq!(threads, 0);
    assert!(line.contains("one per core"), "{line}");
    let (threads, line) = shown("compress_threads = 1");
    assert_eq!(threads, 1);
    assert_eq!(line, "compress_threads = 1 (file)");
    assert!(
        problems_with("compress_threads = -1").contains("compress_threads"),
        "a negative count is refused"
    );
    assert!(problems_with("compress_threads = \"2\"").contains("compress_threads"));
}
