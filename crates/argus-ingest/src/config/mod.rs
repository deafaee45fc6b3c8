//! The engine's configuration as a typed value: what is ingested, from where, into where, and
//! how it is kept. A program builds a [`Config`] by hand from [`Config::new`]'s defaults, or
//! reads process_argus' own files with [`file`](mod@file) (its TOML, or the 2003 recipe's
//! `process_argus.cfg`).

use std::path::PathBuf;
use std::time::Duration;

use argus_core::codec::Codec;

mod check;
pub mod file;
mod hooks;

pub use check::Invalid;
pub use hooks::{Event, Hook, HookPolicy, Piece, parse_template};

/// What an ingest does, where: the directories, the clients taken, compression, retention,
/// day files, hooks. Built by the program that reads a configuration file (or by hand), from
/// [`Config::new`]'s documented defaults; [`Config::check`] says what the engine refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The WebJob dropzone (`drop_dir`).
    pub drop_dir: PathBuf,
    /// Per-host, per-day operational files (`oper_dir`).
    pub oper_dir: PathBuf,
    /// Archived raw uploads (`archive_dir`).
    pub archive_dir: PathBuf,
    /// Where `process_argus.log` goes; `None` logs to stderr only.
    pub log_dir: Option<PathBuf>,
    /// Client ids or globs whose uploads are processed.
    pub clients: Vec<String>,
    /// The WebJob job name that ends every stem.
    pub job: String,
    /// Archived uploads older than this many days are deleted; 0 keeps them forever.
    pub archive_days: u32,
    /// Compression of archived uploads.
    pub archive_codec: Codec,
    /// Compression of operational files of closed days.
    pub oper_codec: Codec,
    /// A day file is compressed once its day ended this many days ago.
    pub oper_compress_after_days: u32,
    /// Journal, ledger and lock.
    pub state_dir: PathBuf,
    /// Where bad upload groups are moved, with a reason.
    pub quarantine_dir: PathBuf,
    /// Data files without `.rdy` older than this are reported as orphans.
    pub orphan_after: Duration,
    /// A client with no upload for this long is reported stale.
    pub stale_after: Duration,
    /// How deep the dropzone scan descends into per-client subdirectories (0: top level only).
    pub scan_depth: u32,
    /// How often the daemon rescans the whole dropzone.
    pub rescan_interval: Duration,
    /// `damaged_uploads = "salvage"`: an upload whose argus data is damaged (and that has no
    /// chunk manifest) has its complete records appended, and goes to the quarantine whole (and
    /// to the archive, as every upload). The default, `"quarantine"`, appends nothing of it.
    pub salvage: bool,
    /// Quarantined groups older than this many days are deleted; 0 keeps them.
    pub quarantine_days: u32,
    /// The follow-on stages (`[[hook]]`) and how they run.
    pub hooks: HookPolicy,
    /// Archived uploads beyond this total (all clients) are deleted, oldest first, down to
    /// `archive_low_watermark`; `None`: no size limit.
    pub archive_max_size: Option<u64>,
    /// Where a size purge stops: a size, or a share of `archive_max_size` (90 %).
    pub archive_low_watermark: argus_core::grammar::Amount,
    /// Below this much free space (a size, or a share of the file system) on the day files' or
    /// the archives' file system, a pass ingests nothing.
    pub min_free_space: Option<argus_core::grammar::Amount>,
    /// Which day file a record goes to: the day it started (`Record`) or the upload's day.
    pub day_boundary: DayBoundary,
    /// With `Record`: records older than this before the upload's time stamp, or newer than
    /// `max_clock_skew` after it, mean a sensor clock that is wrong.
    pub max_record_lag: Duration,
    /// See `max_record_lag`.
    pub max_clock_skew: Duration,
    /// What such an upload gets: the quarantine, or filed whole under its upload day.
    pub clock_policy: ClockPolicy,
    /// A sensor whose capture dropped more than this share (in percent) of its packets over
    /// its last hour of management records is `DROPPING` in the status.
    pub drop_warn: u8,
    /// A sensor whose argus restarted more than this many times in 24 hours is `RESTARTING`.
    pub restart_warn: u32,
    /// At most this many threads compress (uploads, blocks of a large upload, closed days);
    /// 0: one per core (`available_parallelism`, the engine's `Options::threads`).
    pub compress_threads: u32,
    /// Where Prometheus metrics are written after each run (node_exporter's textfile
    /// collector reads `*.prom`); `None` writes none.
    pub metrics_file: Option<PathBuf>,
}

impl Config {
    /// The directories the engine writes, by setting: `oper_dir`, `archive_dir`, `state_dir`,
    /// `quarantine_dir`, then `log_dir` when there is one.
    pub fn own_directories(&self) -> Vec<(&'static str, &std::path::Path)> {
        let mut dirs = vec![
            ("oper_dir", self.oper_dir.as_path()),
            ("archive_dir", self.archive_dir.as_path()),
            ("state_dir", self.state_dir.as_path()),
            ("quarantine_dir", self.quarantine_dir.as_path()),
        ];
        if let Some(log_dir) = &self.log_dir {
            dirs.push(("log_dir", log_dir.as_path()));
        }
        dirs
    }

    /// A configuration that takes the uploads of `clients` (exact WebJob client ids, or globs
    /// such as `sensor-*`) from the dropzone `drop_dir` into per-host day files in `oper_dir`,
    /// archiving each raw upload in `archive_dir`. Everything else has its default, as
    /// process_argus documents it:
    ///
    /// | field | default |
    /// |---|---|
    /// | `job` | `harvest_argus` |
    /// | `archive_days`, `quarantine_days` | 30 |
    /// | `archive_codec`, `oper_codec` | gzip, level 6 |
    /// | `oper_compress_after_days` | 1 |
    /// | `state_dir`, `quarantine_dir` | `process_argus` and `quarantine` beside `drop_dir` |
    /// | `orphan_after`, `stale_after` | 6 h, 2 h |
    /// | `scan_depth`, `rescan_interval` | 2, 60 s |
    /// | `salvage` | false: a damaged upload is quarantined whole |
    /// | `hooks` | none; 10 attempts, 2 at once, a 5 min budget per pass, retried after 1 min |
    /// | `archive_max_size`, `min_free_space` | none |
    /// | `archive_low_watermark` | 90 % of `archive_max_size` |
    /// | `day_boundary` | by record time |
    /// | `max_record_lag`, `max_clock_skew`, `clock_policy` | 7 days, 1 h, quarantine |
    /// | `drop_warn`, `restart_warn` | 1 %, 3 |
    /// | `compress_threads` | 0: one per core |
    /// | `log_dir`, `metrics_file` | none |
    pub fn new(
        drop_dir: PathBuf,
        oper_dir: PathBuf,
        archive_dir: PathBuf,
        clients: Vec<String>,
    ) -> Config {
        let beside = drop_dir
            .parent()
            .map_or_else(|| PathBuf::from("/"), std::path::Path::to_path_buf);
        Config {
            state_dir: beside.join("process_argus"),
            quarantine_dir: beside.join("quarantine"),
            drop_dir,
            oper_dir,
            archive_dir,
            log_dir: None,
            clients,
            job: "harvest_argus".to_owned(),
            archive_days: 30,
            archive_codec: argus_core::codec::Compression::Gzip.codec(),
            oper_codec: argus_core::codec::Compression::Gzip.codec(),
            oper_compress_after_days: 1,
            orphan_after: Duration::from_secs(6 * 3600),
            stale_after: Duration::from_secs(2 * 3600),
            scan_depth: 2,
            rescan_interval: Duration::from_secs(60),
            salvage: false,
            quarantine_days: 30,
            hooks: HookPolicy::default(),
            archive_max_size: None,
            archive_low_watermark: argus_core::grammar::Amount::Percent(90),
            min_free_space: None,
            day_boundary: DayBoundary::Record,
            max_record_lag: Duration::from_secs(7 * 86_400),
            max_clock_skew: Duration::from_secs(3600),
            clock_policy: ClockPolicy::Quarantine,
            drop_warn: 1,
            restart_warn: 3,
            compress_threads: 0,
            metrics_file: None,
        }
    }
}

/// Which day file a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayBoundary {
    /// The UTC day the record started (the TOML default).
    Record,
    /// The UTC day of the upload's WebJob time stamp (the recipe's way, and its default).
    Upload,
}

/// What an upload whose records are dated outside the clock window gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockPolicy {
    /// The quarantine, with the records' time range in the reason.
    Quarantine,
    /// Filed whole under its upload day, with a warning.
    UploadDay,
}
