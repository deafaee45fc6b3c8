//! `process_argus watch`: the library's daemon ([`argus_ingest::watch`]) as a service. This
//! module keeps what is about the process: signals, the log file, the metrics file.
//!
//! Signals are blocked in every thread and read from a `signalfd`: SIGTERM and SIGINT stop the
//! daemon between two batches (never in the middle of one), SIGHUP reloads the configuration
//! file (a bad one is reported and the old one kept).

use std::path::Path;

use argus_core::escape::EscapedPath;
use argus_ingest::config::Config;
use argus_ingest::engine::Options;
use argus_ingest::report::Summary;
use argus_ingest::watch::{Control, Observer, Watch};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use time::OffsetDateTime;

use crate::exit::Exit;

/// Runs the daemon until SIGTERM or SIGINT. Returns the exit status.
pub(crate) fn run(config_path: &Path, config: Config) -> Exit {
    // Block the signals before any thread exists, so every thread inherits the mask and the
    // signalfd below is their only way in.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        log::error!("cannot block signals: {e}");
        return Exit::Io;
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot read signals: {e}");
            return Exit::Io;
        }
    };
    if let Err(exit) = crate::open_log(&config) {
        return exit;
    }
    let watch = Watch::new();
    let control = watch.control();
    let path = config_path.to_path_buf();
    std::thread::spawn(move || listen(&signals, &control, &path));
    log::info!("starting: watching {}", EscapedPath(&config.drop_dir));
    match watch.run(config, Options::default(), &mut Service) {
        Ok(()) => Exit::Ok,
        Err(fatal) => {
            log::error!("{}", argus_ingest::error_chain(&fatal));
            crate::exit_for(fatal.kind())
        }
    }
}

/// Turns signals into the daemon's controls.
fn listen(signals: &SignalFd, control: &Control, config_path: &Path) {
    while let Ok(Some(info)) = signals.read_signal() {
        let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) else {
            continue;
        };
        match sig {
            Signal::SIGTERM | Signal::SIGINT => control.stop(),
            Signal::SIGHUP => match argus_ingest::config::file::load(config_path) {
                Ok((config, _)) => {
                    log::info!(
                        "reloading the configuration from {}",
                        EscapedPath(config_path)
                    );
                    control.reload(config);
                }
                Err(e) => {
                    log::error!("the new configuration is not used; keeping the old one: {e}");
                }
            },
            _ => {}
        }
    }
}

/// The program's side of the daemon: the metrics file after batches, the log file after a
/// reload.
struct Service;

impl Observer for Service {
    fn batch(&mut self, config: &Config, summary: Summary, _last: bool) {
        let ok = summary.failed.is_none();
        argus_ingest::metrics::after_run(config, Some((&summary, ok)), OffsetDateTime::now_utc());
    }

    fn reloaded(&mut self, config: &Config) {
        if let Err(Exit::Io) = crate::open_log(config) {
            log::error!("logging goes on where it went");
        }
    }
}
