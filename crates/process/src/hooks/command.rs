//! `process_argus hooks list|retry`: the queue as an operator sees it. Read-only but for
//! `retry`, which only moves failed events (never run by anyone) back to the pending list, so
//! both are safe while a pass or the daemon works.

use std::fmt::Write as _;

use crate::cli::HooksAction;
use argus_core::escape::Escaped;
use time::OffsetDateTime;

use crate::config::Config;
use crate::exit::Exit;
use crate::report::json_string;

use super::Queue;
use super::queue::{Listing, Queued};

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
                        let ids: Vec<String> = moved.iter().map(|id| json_string(id)).collect();
                        crate::say(&format!("{{\"queued_again\":[{}]}}", ids.join(",")));
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
                Escaped(super::describe(q)),
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
    let event = |q: &Queued| {
        let values: Vec<String> = q
            .values
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}:{}",
                    json_string(k),
                    json_string(&String::from_utf8_lossy(v))
                )
            })
            .collect();
        format!(
            "{{\"id\":{},\"hook\":{},\"event\":{},\"attempts\":{},\"queued\":{},\"due\":{},\"error\":{},\"values\":{{{}}}}}",
            json_string(&q.id),
            json_string(&q.hook),
            json_string(q.event.name()),
            q.attempts,
            json_string(&when(q.queued)),
            json_string(&when(q.due)),
            q.error.as_deref().map_or("null".to_owned(), json_string),
            values.join(",")
        )
    };
    let list = |l: &[Queued]| l.iter().map(event).collect::<Vec<_>>().join(",");
    let damaged: Vec<String> = listing
        .damaged
        .iter()
        .map(|d| json_string(&d.path.display().to_string()))
        .collect();
    format!(
        "{{\"pending\":[{}],\"failed\":[{}],\"damaged\":[{}]}}",
        list(&listing.pending),
        list(&listing.failed),
        damaged.join(",")
    )
}
