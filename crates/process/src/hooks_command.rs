//! `process_argus hooks list|retry`: the queue as an operator sees it. Read-only but for
//! `retry`, which only moves failed events (never run by anyone) back to the pending list, so
//! both are safe while a pass or the daemon works.

use std::fmt::Write as _;

use crate::cli::HooksAction;
use argus_core::escape::Escaped;
use time::OffsetDateTime;

use crate::exit::Exit;
use crate::render::to_json;
use argus_ingest::config::Config;

use argus_ingest::hooks::Queue;
use argus_ingest::hooks::{Listing, Queued};

/// Runs `hooks ACTION`.
pub(crate) fn command(config: &Config, action: &HooksAction) -> Exit {
    let queue = Queue::at(&config.state_dir);
    match action {
        HooksAction::List { json } => match queue.list() {
            Ok(listing) => {
                crate::say(&if *json {
                    as_json(&listing)
                } else {
                    as_table(&listing)
                });
                Exit::Ok
            }
            Err(e) => {
                log::error!("cannot read the hook queue: {e}");
                Exit::Io
            }
        },
        HooksAction::Retry { ids, all, json } => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let listing = match queue.list() {
                Ok(l) => l,
                Err(e) => {
                    log::error!("cannot read the hook queue: {e}");
                    return Exit::Io;
                }
            };
            let unknown: Vec<&String> = ids
                .iter()
                .filter(|id| !listing.failed.iter().any(|q| &q.id == *id))
                .collect();
            for id in &unknown {
                log::error!("no failed hook event {id:?} (see `process_argus hooks list`)");
            }
            if !unknown.is_empty() {
                return Exit::Usage;
            }
            match queue.retry(|q| *all || ids.contains(&q.id), now) {
                Ok(moved) => {
                    if *json {
                        crate::say(&to_json(&QueuedAgainJson {
                            queued_again: &moved,
                        }));
                    } else {
                        for id in &moved {
                            crate::say(&format!("queued again: {id}"));
                        }
                    }
                    Exit::Ok
                }
                Err(e) => {
                    log::error!("cannot queue the events again: {e}");
                    Exit::Io
                }
            }
        }
    }
}

fn when(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(argus_core::stamp::format_rfc3339)
        .unwrap_or_else(|_| unix.to_string())
}

fn as_table(listing: &Listing) -> String {
    let mut out = String::new();
    for (title, list) in [("pending", &listing.pending), ("failed", &listing.failed)] {
        let _ = writeln!(out, "{title}: {}", list.len());
        for q in list.iter() {
            let _ = write!(
                out,
                "  {}  {}  {}  attempts {}  due {}",
                q.id,
                q.hook,
                Escaped(argus_ingest::hooks::describe(q)),
                q.attempts,
                when(q.due)
            );
            if let Some(e) = &q.error {
                let _ = write!(out, "  last error: {}", Escaped(e.as_bytes()));
            }
            out.push('\n');
        }
    }
    for d in &listing.damaged {
        let _ = writeln!(
            out,
            "damaged: {} ({})",
            argus_core::escape::EscapedPath(&d.path),
            d.why
        );
    }
    out.trim_end().to_owned()
}

fn as_json(listing: &Listing) -> String {
    to_json(&ListingJson {
        pending: listing.pending.iter().map(EventJson::of).collect(),
        failed: listing.failed.iter().map(EventJson::of).collect(),
        damaged: listing
            .damaged
            .iter()
            .map(|d| d.path.display().to_string())
            .collect(),
    })
}

/// `hooks list --json`: serde writes the keys in the order declared here.
#[derive(serde::Serialize)]
struct ListingJson<'a> {
    pending: Vec<EventJson<'a>>,
    failed: Vec<EventJson<'a>>,
    damaged: Vec<String>,
}

/// One queued event of [`ListingJson`].
#[derive(serde::Serialize)]
struct EventJson<'a> {
    id: &'a str,
    hook: &'a str,
    event: &'static str,
    attempts: u32,
    queued: String,
    due: String,
    error: Option<&'a str>,
    values: Values<'a>,
}

impl EventJson<'_> {
    fn of(q: &Queued) -> EventJson<'_> {
        EventJson {
            id: &q.id,
            hook: &q.hook,
            event: q.event.name(),
            attempts: q.attempts,
            queued: when(q.queued),
            due: when(q.due),
            error: q.error.as_deref(),
            values: Values(&q.values),
        }
    }
}

/// The placeholders' values as one object, in the order the event holds them, bytes that are not
/// UTF-8 replaced.
struct Values<'a>(&'a [(String, Vec<u8>)]);

impl serde::Serialize for Values<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, String::from_utf8_lossy(v))))
    }
}

/// `hooks retry --json`.
#[derive(serde::Serialize)]
struct QueuedAgainJson<'a> {
    queued_again: &'a [String],
}
