//! One harvest (SPEC §3 steps 2-9), its steps in order: lock, recover, cut and deliver, purge,
//! supervise. Each step is a library call (argus-core's `rotation` and `archive`, argus-proc's
//! `supervise`); this module orders them, logs their outcomes and maps them to exit statuses.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use argus_core::archive::{Archived, purge};
use argus_core::error_chain;
use argus_core::escape::EscapedPath;
use argus_core::failpoint;
use argus_core::lock::{Contention, Lock};
use argus_core::retention::{self, Policy};
use argus_core::rotation::{Delivery, DeliveryError, Stage, StagedChunk};
use argus_core::stamp::format_rfc3339;
use argus_proc::argus::Launch;
use argus_proc::find::HolderWatch;
use argus_proc::supervise::{State, Supervision, prepare_output_dir, supervise};
use time::OffsetDateTime;

use crate::config::Settings;
use crate::exit::Exit;

struct Run<'a> {
    s: &'a Settings,
    delivery: Delivery<'a>,
    exit: Exit,
    stats: crate::metrics::RunStats,
    /// The archives this run wrote (their names), which a purge should not delete.
    archived: Vec<String>,
}

/// Runs one harvest of `s`, shipping to `stdout` and writing manifest lines to `stderr`.
pub(crate) fn harvest(s: &Settings, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Exit {
    let started = std::time::Instant::now();
    let (exit, stats) = harvest_locked(s, stdout, stderr);
    if let Some(path) = &s.metrics_file {
        let text = crate::metrics::render(
            &s.host,
            &stats,
            exit.code(),
            started.elapsed().as_secs_f64(),
            OffsetDateTime::now_utc(),
            crate::metrics::previous(path),
        );
        crate::metrics::write(path, &text);
    }
    exit
}

fn harvest_locked(
    s: &Settings,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> (Exit, crate::metrics::RunStats) {
    let stage = Stage::new(&s.output);
    if let Err(e) = prepare_output_dir(&s.output, &s.argus_args) {
        log::error!("{}", error_chain(&e));
        return (Exit::NotShipped, Default::default());
    }
    let lock_path = stage.lock_path();
    let _lock = match Lock::acquire(&lock_path, Contention::Fail) {
        Ok(lock) => lock,
        Err(argus_core::Error::Locked { holder, .. }) => {
            log::error!(
                "another harvest_argus is running for {} ({}holds {}); this run does nothing",
                EscapedPath(&s.output),
                holder.map(|h| format!("{h} ")).unwrap_or_default(),
                EscapedPath(&lock_path)
            );
            return (Exit::Locked, Default::default());
        }
        Err(e) => {
            log::error!("cannot take the lock: {}", error_chain(&e));
            return (Exit::NotShipped, Default::default());
        }
    };
    // Under the lock, a temporary file next to the output is a leftover of a crash (of the
    // sequence counter's replacement); argus writes nothing of that name.
    if let Err(e) =
        argus_core::publish::clean_temp_files(stage.dir(), Duration::ZERO, SystemTime::now())
    {
        log::warn!("{}", error_chain(&e));
    }
    let mut run = Run {
        s,
        delivery: Delivery::new(
            stage,
            s.host.clone(),
            s.archive_dir.clone(),
            s.codec,
            stdout,
            stderr,
        ),
        exit: Exit::Ok,
        stats: crate::metrics::RunStats::default(),
        archived: Vec::new(),
    };
    run.recover();
    let last_write = run.rotate();
    run.purge();
    run.supervise(last_write);
    run.stats.staged = run.delivery.stage().list().map_or(0, |l| l.len() as u64);
    run.stats.last_seq = run.delivery.stage().last_seq().unwrap_or(0);
    let dir = s.output.parent().unwrap_or(Path::new("/"));
    run.stats.free_blocks = argus_proc::disk::free_space(dir)
        .ok()
        .map(|f| f.free_blocks);
    (run.exit, run.stats)
}

impl Run<'_> {
    fn fail(&mut self, exit: Exit) {
        self.exit = self.exit.max(exit);
    }

    /// Ships and archives the chunks an earlier run left staged, oldest first, with their own
    /// sequence numbers.
    fn recover(&mut self) {
        self.adopt_legacy();
        let staged = match self.delivery.stage().list() {
            Ok(s) => s,
            Err(e) => {
                log::error!("{}", error_chain(&e));
                self.fail(Exit::NotShipped);
                return;
            }
        };
        for chunk in staged {
            log::warn!(
                "shipping chunk seq={} cut at {}, left staged by an earlier run: {}",
                chunk.seq,
                format_rfc3339(chunk.cut),
                EscapedPath(&chunk.path)
            );
            // Its rename time is unknown; its ctime (set by the rename) is close enough for
            // the quiet rule, which also requires two unchanged seconds.
            let since = chunk.renamed_ago(SystemTime::now());
            self.process(&chunk, since);
        }
    }

    /// The recipe's script renamed the output to `OUTPUT.tmp` and overwrote whatever was there:
    /// such a file holds data it did not archive. It becomes a staged chunk with a new number.
    fn adopt_legacy(&mut self) {
        match self
            .delivery
            .stage()
            .adopt_legacy(OffsetDateTime::now_utc())
        {
            Ok(None) => {}
            Ok(Some(chunk)) => log::warn!(
                "adopted {}, left by the old harvest script, as {}",
                EscapedPath(&self.delivery.stage().legacy_path()),
                EscapedPath(&chunk.path)
            ),
            Err(e) => {
                log::error!(
                    "cannot adopt {}: {}",
                    EscapedPath(&self.delivery.stage().legacy_path()),
                    error_chain(&e)
                );
                self.fail(Exit::NotShipped);
            }
        }
    }

    /// Cuts the output file and ships and archives the chunk. Returns when argus last wrote
    /// the output before the cut.
    fn rotate(&mut self) -> Option<SystemTime> {
        let cut = match self.delivery.stage().cut(OffsetDateTime::now_utc()) {
            Ok(Some(cut)) => cut,
            Ok(None) => {
                log::info!(
                    "nothing to cut: {} does not exist (argus is not running, or has not re-created it since the last harvest)",
                    EscapedPath(&self.s.output)
                );
                return None;
            }
            Err(e) => {
                log::error!("{}", error_chain(&e));
                self.fail(Exit::NotShipped);
                // The output is still there, and its mtime tells the last write.
                return None;
            }
        };
        if let Err(e) = &cut.synced {
            log::warn!("{}", error_chain(e));
        }
        if let Err(e) = &cut.counted {
            // The staged name carries the number, so it is not lost; the next run counts
            // from it.
            log::error!("{}", error_chain(e));
            self.fail(Exit::NotShipped);
        }
        log::info!(
            "cut {} ({} bytes) as chunk seq={}",
            EscapedPath(&self.s.output),
            cut.len,
            cut.chunk.seq
        );
        failpoint::hit("after-rotate");
        self.process(&cut.chunk, cut.renamed.elapsed());
        cut.last_write
    }

    /// Waits until the chunk is final, ships it, prints its manifest, archives it and removes
    /// it. Whatever fails leaves it staged for the next run.
    fn process(&mut self, chunk: &StagedChunk, since_rename: Duration) {
        let mut holders = HolderWatch::new(&self.s.argus_bin);
        match self.delivery.deliver(chunk, since_rename, &mut holders) {
            Ok(done) => {
                if let Archived::New(path) = &done.archived
                    && let Some(name) = path.file_name()
                {
                    self.archived.push(name.to_string_lossy().into_owned());
                }
                self.stats.chunks += 1;
                self.stats.bytes += done.shipped.bytes;
                self.stats.records += done.shipped.report.records;
                self.stats.note_mars(&done.shipped.report.mars_seen);
            }
            Err(DeliveryError::NotFinal(e)) => {
                log::error!("{}", error_chain(&e));
                self.fail(Exit::NotShipped);
            }
            Err(e) => {
                log::error!(
                    "{}; it stays staged as {} and the next run ships it again with seq={}",
                    error_chain(&e),
                    EscapedPath(&chunk.path),
                    chunk.seq
                );
                self.fail(Exit::NotShipped);
            }
        }
    }

    fn purge(&mut self) {
        let policy = Policy {
            max_age_days: self.s.archive_days,
            max_total_bytes: self.s.archive_max_bytes,
            low_watermark_bytes: self.s.archive_low_watermark_bytes,
        };
        match purge(
            &self.s.archive_dir,
            &self.s.host,
            &policy,
            OffsetDateTime::now_utc(),
            &self.archived,
        ) {
            Ok(purged) => {
                let removed = purged.removed.len();
                if let Some(surprise) = purged.surprise {
                    self.stats.retention_warnings += 1;
                    log::warn!("{}", surprise_message(self.s, &surprise, removed));
                }
                if removed > 0 {
                    log::info!("purged {removed} old archive file(s)");
                }
            }
            Err(e) => log::warn!(
                "cannot purge {}: {}",
                EscapedPath(&self.s.archive_dir),
                error_chain(&e)
            ),
        }
    }

    fn supervise(&mut self, last_write: Option<SystemTime>) {
        // No output now and no cut means argus wrote nothing since the last harvest, or runs
        // no more; the current output's mtime is the last write otherwise.
        let last_write = last_write.or_else(|| {
            fs::metadata(Path::new(&self.s.output))
                .and_then(|m| m.modified())
                .ok()
        });
        match supervise(&supervision(self.s), last_write, SystemTime::now()) {
            Ok(state) => {
                self.stats.argus_running = Some(!matches!(state, State::LeftStopped));
            }
            Err(problems) => {
                for p in problems {
                    log::error!("{}", error_chain(&p));
                }
                self.stats.argus_running = Some(false);
                self.fail(Exit::Argus);
            }
        }
    }
}

/// What argus-proc supervises, from the settings.
fn supervision(s: &Settings) -> Supervision {
    Supervision {
        launch: Launch {
            bin: s.argus_bin.clone(),
            interface: s.interface.clone(),
            output: s.output.clone(),
            extra_args: s.argus_args.clone(),
            pid_file: Some(s.pid_file.clone()),
            log: s.argus_log.clone(),
        },
        stale_after: s.stale_after,
        start_missing: s.supervise,
    }
}

/// The warning for a purge that deletes what this harvest archived, or most of the archive,
/// naming the setting that decides it.
fn surprise_message(s: &Settings, surprise: &retention::Surprise, count: usize) -> String {
    use argus_core::grammar::format_size;
    let values = match (surprise.reason, s.archive_max_bytes) {
        (retention::Reason::Size, Some(max)) => format!(
            "archive_max_size = {} with archive_low_watermark = {}",
            format_size(max),
            format_size(s.archive_low_watermark_bytes.unwrap_or(max / 10 * 9))
        ),
        _ => format!("archive_days = {}", s.archive_days),
    };
    let setting = values.split(' ').next().unwrap_or_default();
    let fresh = match surprise.fresh {
        0 => String::new(),
        _ => ", among them the chunk this harvest archived".to_owned(),
    };
    format!(
        "retention deletes {count} archive{}, {} of {}{fresh}: {values} decides it; if that is \
         not meant, raise {setting} (harvest_argus check-config shows the effective values)",
        if count == 1 { "" } else { "s" },
        format_size(surprise.deleted_bytes),
        format_size(surprise.total_bytes)
    )
}
