//! The engine for a WebJob job that is not argus: each host's hourly upload of a job named
//! `syslog_ship` is newline-terminated text, taken exactly once into per-host day files, with a
//! check of its own through the [`Content`] seam: an upload whose last line is cut off, or that
//! holds a NUL byte, goes to the quarantine whole, with the reason.
//!
//! Run with `cargo run -p argus-ingest --example other_job`; it makes its own dropzone in a
//! temporary directory and checks what the engine did.

#![allow(clippy::print_stdout, reason = "an example program talks to its user")]

use std::error::Error;
use std::fs;
use std::sync::Arc;

use argus_ingest::config::Config;
use argus_ingest::content::{Check, Content, Damage, Verdict};
use argus_ingest::engine::{self, Options};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// Lines of text, each ended by a newline.
#[derive(Debug)]
struct TextLines;

impl Content for TextLines {
    fn check(&self) -> Box<dyn Check> {
        Box::new(LineCheck::default())
    }
}

#[derive(Default)]
struct LineCheck {
    /// Bytes seen.
    seen: u64,
    /// The length up to the last newline.
    whole: u64,
    /// Newlines seen.
    lines: u64,
    /// Where a NUL byte was found.
    nul_at: Option<u64>,
}

impl Check for LineCheck {
    fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if b == 0 {
                self.nul_at.get_or_insert(self.seen);
                return;
            }
            self.seen += 1;
            if b == b'\n' {
                self.lines += 1;
                self.whole = self.seen;
            }
        }
    }

    fn failed(&self) -> bool {
        self.nul_at.is_some()
    }

    fn finish(self: Box<Self>) -> Verdict {
        let damage = match self.nul_at {
            Some(at) => Some(format!("a NUL byte at offset {at}: not text")),
            None if self.whole < self.seen => Some(format!(
                "the last line is cut off after {} bytes",
                self.seen - self.whole
            )),
            None => None,
        };
        Verdict {
            records: self.lines,
            damage: damage.map(|reason| Damage {
                reason,
                valid_len: self.whole,
            }),
            ..Verdict::default()
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = tempfile::tempdir()?;
    let drop_dir = root.path().join("incoming");
    fs::create_dir_all(&drop_dir)?;
    let at = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let good = b"Dec  6 02:00:01 web1 sshd[811]: Accepted publickey for ops\n\
                 Dec  6 02:13:44 web1 cron[902]: (root) CMD (logrotate)\n";
    let cut = b"Dec  6 03:00:02 web1 kernel: eth0: link up\nDec  6 03:0";
    let first = Upload::at("web1", at)
        .job("syslog_ship")
        .out(&good[..])
        .hostname("web1.example.org")
        .write(&drop_dir)?;
    let second = Upload::at("web1", at + time::Duration::hours(1))
        .job("syslog_ship")
        .out(&cut[..])
        .hostname("web1.example.org")
        .write(&drop_dir)?;

    let mut config = Config::new(
        drop_dir,
        root.path().join("days"),
        root.path().join("archive"),
        vec!["web*".to_owned()],
    );
    config.job = "syslog_ship".to_owned();
    let options = Options {
        content: Arc::new(TextLines),
        ..Options::default()
    };
    let outcome = engine::run(&config, &options, OffsetDateTime::now_utc());
    assert_eq!(outcome.summary.ingested, 1, "{:?}", outcome.summary);
    assert_eq!(outcome.summary.records, 2);
    assert_eq!(outcome.summary.quarantined, 1);

    // The good upload is its host's day, once; the cut one is in the quarantine with why.
    let day = config
        .oper_dir
        .join(format!("web1.example.org_{}", first_day(at)));
    assert_eq!(fs::read(&day)?, good);
    assert!(!first.path("rdy").exists() && !second.path("rdy").exists());
    let reasons: Vec<String> = fs::read_dir(&config.quarantine_dir)?
        .flatten()
        .filter_map(|group| fs::read_to_string(group.path().join("reason")).ok())
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("the last line is cut off after 11 bytes"),
        "{reasons:?}"
    );

    // Shipped again, the same upload is not appended again: its archive says it was taken.
    Upload::at("web1", at)
        .job("syslog_ship")
        .out(&good[..])
        .hostname("web1.example.org")
        .write(&config.drop_dir)?;
    let again = engine::run(&config, &options, OffsetDateTime::now_utc());
    assert_eq!(again.summary.ingested, 0);
    assert_eq!(fs::read(&day)?, good);
    let reason = reasons[0]
        .lines()
        .find_map(|l| l.strip_prefix("Reason="))
        .unwrap_or_default();
    println!(
        "ingested {} lines into {}; quarantined one upload: {reason}",
        outcome.summary.records,
        day.display(),
    );
    Ok(())
}

/// `YYYYMMDD` of `at`, the day file's suffix.
fn first_day(at: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day())
}
