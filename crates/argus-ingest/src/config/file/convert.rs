//! `convert-config`: a configuration, from either format, as the commented TOML of this
//! program, every key written out with its unit.

use std::path::Path;

use argus_core::codec::{Codec, Compression};
use argus_core::grammar::format_duration;

use super::{ClockPolicy, Config, DayBoundary};

/// The configuration as commented TOML (what `convert-config` prints).
pub fn to_toml(config: &Config) -> String {
    fn q(p: &Path) -> String {
        toml::Value::String(p.display().to_string()).to_string()
    }
    let clients = config
        .clients
        .iter()
        .map(|c| toml::Value::String(c.clone()).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let log_dir = match &config.log_dir {
        Some(p) => format!("log_dir = {}", q(p)),
        None => "# log_dir = \"/usr/local/integrity/log\"".to_owned(),
    };
    format!(
        "\
# process_argus configuration (TOML). Every key is top-level.

# The WebJob dropzone: where the server writes STEM.out/.err/.env/.rdy.
drop_dir = {drop}
# Per-host, per-day operational files HOST_YYYYMMDD (compressed once the day is closed).
oper_dir = {oper}
# Raw uploads, archived compressed as STEM.out.gz (or .bz2, .xz).
archive_dir = {arch}
# process_argus.log is written here; without it, logging goes to stderr only.
{log_dir}
# Client ids (exact) or globs; [\"*\"] takes every client.
clients = [{clients}]
# The WebJob job name at the end of every stem.
job = {job}

# Archived uploads older than this many days are deleted; 0 keeps them forever.
archive_days = {days}
# none | gzip | bzip2 | xz, and a level (gzip, bzip2: 1-9; xz: 0-9).
archive_compression = \"{ac}\"
archive_compression_level = {al}
oper_compression = \"{oc}\"
oper_compression_level = {ol}
# A day file is compressed once its (UTC) day ended this many days ago.
oper_compress_after_days = {ocad}
# Threads that compress (uploads, blocks of a large upload, closed days); 0: one per core.
compress_threads = {cthreads}
# Which day file a record goes to: \"record\" (the UTC day it started; each upload is split,
# every piece beginning with a copy of its MAR/START) or \"upload\" (the day of the upload's
# time stamp, as the recipe did).
day_boundary = \"{boundary}\"
# With \"record\": records dated more than max_record_lag before the upload's time stamp, or
# more than max_clock_skew after it, mean a wrong sensor clock: clock_policy = \"quarantine\"
# puts such an upload in the quarantine, \"upload_day\" files it whole under its upload day.
max_record_lag = \"{lag}\"
max_clock_skew = \"{skew}\"
clock_policy = \"{clock}\"
# Sensor health, from argus' management records: a sensor whose capture dropped more than
# drop_warn of its packets over its last hour is DROPPING; one whose argus restarted more than
# restart_warn times in 24 hours is RESTARTING (`process_argus status`).
drop_warn = \"{dropwarn}%\"
restart_warn = {restartwarn}

# Journal, ledger and lock; must be outside drop_dir.
state_dir = {state}
# Bad uploads are moved here whole, with a .reason file; must be outside drop_dir.
quarantine_dir = {quar}
# Data files without .rdy older than this are reported as orphans.
orphan_after = \"{orphan}\"
# A client with no upload for this long is reported STALE by `process_argus status`.
stale_after = \"{stale}\"
# How deep to look into per-client subdirectories of the dropzone (0: top level only).
scan_depth = {depth}
# The daemon (`process_argus watch`) rescans the whole dropzone this often.
rescan_interval = \"{rescan}\"
# An upload whose argus data is damaged: \"quarantine\" appends none of it; \"salvage\" appends
# its complete records (uploads without chunk manifests) and quarantines it whole.
damaged_uploads = \"{damaged}\"
# Archived uploads beyond this total size (all clients) are deleted, oldest first, down to
# archive_low_watermark (a size, or a share of archive_max_size).
{maxsize}
{lowmark}
# Below this free space (a size or a percentage) on the day files' or the archives' file
# system, a pass ingests nothing and exits 74; the uploads wait in the dropzone.
{minfree}
# Quarantined groups older than this many days are deleted; 0 keeps them.
quarantine_days = {qdays}
# Prometheus metrics, written after each run (node_exporter's textfile collector reads *.prom).
{metrics}

# Follow-on stages (docs/OPERATIONS.md): a failed run is retried after hook_retry_delay,
# doubling to 1h, and kept as failed after hook_attempts runs; hook_concurrency run at once in
# the daemon; a cron pass runs due hooks for at most hook_budget.
hook_attempts = {hattempts}
hook_concurrency = {hconc}
hook_budget = \"{hbudget}\"
hook_retry_delay = \"{hretry}\"
{hooks}",
        drop = q(&config.drop_dir),
        oper = q(&config.oper_dir),
        arch = q(&config.archive_dir),
        job = toml::Value::String(config.job.clone()),
        days = config.archive_days,
        ac = config.archive_codec.compression(),
        al = level_or_default(config.archive_codec),
        oc = config.oper_codec.compression(),
        ol = level_or_default(config.oper_codec),
        ocad = config.oper_compress_after_days,
        state = q(&config.state_dir),
        quar = q(&config.quarantine_dir),
        orphan = format_duration(config.orphan_after),
        stale = format_duration(config.stale_after),
        dropwarn = config.drop_warn,
        restartwarn = config.restart_warn,
        cthreads = config.compress_threads,
        depth = config.scan_depth,
        rescan = format_duration(config.rescan_interval),
        qdays = config.quarantine_days,
        boundary = match config.day_boundary {
            DayBoundary::Record => "record",
            DayBoundary::Upload => "upload",
        },
        lag = format_duration(config.max_record_lag),
        skew = format_duration(config.max_clock_skew),
        clock = match config.clock_policy {
            ClockPolicy::Quarantine => "quarantine",
            ClockPolicy::UploadDay => "upload_day",
        },
        maxsize = config.archive_max_size.map_or_else(
            || "# archive_max_size = \"500G\"".to_owned(),
            |n| format!(
                "archive_max_size = \"{}\"",
                argus_core::grammar::format_size_exact(n)
            )
        ),
        lowmark = if config.archive_max_size.is_some() {
            format!(
                "archive_low_watermark = \"{}\"",
                config.archive_low_watermark
            )
        } else {
            format!(
                "# archive_low_watermark = \"{}\"",
                config.archive_low_watermark
            )
        },
        minfree = config.min_free_space.map_or_else(
            || "# min_free_space = \"5%\"".to_owned(),
            |a| format!("min_free_space = \"{a}\"")
        ),
        metrics = match &config.metrics_file {
            Some(p) => format!("metrics_file = {}", q(p)),
            None => "# metrics_file = \"/var/lib/prometheus/node-exporter/argus_webjob.prom\""
                .to_owned(),
        },
        hattempts = config.hooks.attempts,
        hconc = config.hooks.concurrency,
        hbudget = format_duration(config.hooks.budget),
        hretry = format_duration(config.hooks.retry_delay),
        hooks = if config.hooks.hooks.is_empty() {
            "# [[hook]]\n\
             # on = \"day_closed\"           # ingested | day_closed | quarantined\n\
             # command = [\"/usr/local/bin/daily-report\", \"{day_file}\", \"{host}\", \"{day}\"]\n\
             # timeout = \"10m\"\n"
                .to_owned()
        } else {
            config
                .hooks
                .hooks
                .iter()
                .map(super::hooks::hook_to_toml)
                .collect::<Vec<_>>()
                .join("")
        },
        damaged = if config.salvage {
            "salvage"
        } else {
            "quarantine"
        },
    )
}

fn level_or_default(codec: Codec) -> u32 {
    match codec.compression() {
        Compression::None => 6,
        _ => codec.level(),
    }
}
