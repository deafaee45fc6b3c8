//! The progress bar of an interactive pass over a backlog (stderr a terminal, no `-q`, no
//! `--json`): uploads, bytes and rate, drawn by indicatif on stderr. Under cron or systemd
//! (stderr not a terminal) there is none, and nothing changes.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use argus_ingest::engine::Progress;

/// A bar on stderr.
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    uploads: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Bar {
    pub(crate) fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Bar {
            bar,
            uploads: 0.into(),
            total: 0.into(),
        }
    }

    fn message(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bar.set_message(format!(
            "{}/{} uploads",
            self.uploads.load(Relaxed),
            self.total.load(Relaxed)
        ));
    }
}

impl Progress for Bar {
    fn begin(&self, uploads: u64, bytes: u64) {
        // A backlog larger than a scan's window is ingested one window after another, each
        // shown from the start.
        self.bar.reset();
        self.uploads.store(0, std::sync::atomic::Ordering::Relaxed);
        self.total
            .store(uploads, std::sync::atomic::Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.message();
    }

    fn advance(&self, uploads: u64, bytes: u64) {
        self.uploads
            .fetch_add(uploads, std::sync::atomic::Ordering::Relaxed);
        self.message();
        self.bar.inc(bytes);
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}
