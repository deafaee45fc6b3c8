//! Logging of process_argus: readable lines on stderr (filtered by `-v`/`-q`/`RUST_LOG`) and,
//! once the configuration names a `log_dir`, time-stamped lines in `LOG_DIR/process_argus.log`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    stderr: env_logger::Logger,
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger. `verbosity` is `-v` count minus `-q` count: below 0 only errors reach
/// stderr, 0 warnings and errors (quiet under cron), 1 adds progress, 2 and more add debugging.
/// `RUST_LOG`, when set, overrides it.
pub(crate) fn init(program: &'static str, verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => LevelFilter::Error,
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |buf, record| {
        writeln!(buf, "{program}: {} {}", record.level(), record.args())
    });
    let logger = LOGGER.get_or_init(|| Logger {
        stderr: builder.build(),
        file: Mutex::new(None),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// From now on, also appends info and more severe lines to `DIR/NAME`.
pub(crate) fn log_to_file(dir: &Path, name: &str) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    if let Some(logger) = LOGGER.get() {
        *logger
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
    }
    Ok(())
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info || self.stderr.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.stderr.matches(record) {
            self.stderr.log(record);
        }
        if record.level() <= Level::Info {
            let mut file = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(f) = file.as_mut() {
                let now = argus_core::stamp::format_rfc3339(time::OffsetDateTime::now_utc());
                // One write per line, so lines from concurrent processes never interleave.
                let line = format!("{now} {} {}\n", record.level(), record.args());
                let _ignored = f.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {
        self.stderr.flush();
    }
}
