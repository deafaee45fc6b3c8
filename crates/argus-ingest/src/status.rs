//! `process_argus status`: which sensors went quiet, and did we lose a chunk anywhere?
//!
//! Read-only: the ledger (snapshot and log), the dropzone (scanned, never changed) and the
//! quarantine. Safe to run while a pass or the daemon works; it takes no lock.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use webjob_drop::Selection;

use crate::config::Config;
use crate::error::{Action, Context, Error, Store};
use crate::ledger::Ledger;

/// The state of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Uploading, nothing missing.
    Ok,
    /// Uploading, but something needs a look: missing chunks, quarantined groups, orphans.
    Warning,
    /// Nothing arrived for `stale_after` (or ever).
    Stale,
}

impl State {
    /// The name in the JSON and the table.
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Stale => "stale",
        }
    }
}

/// One client's line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Client id.
    pub client: String,
    /// Whether the configuration selects it (else it is listed because its uploads are here).
    pub configured: bool,
    /// Newest upload time (from its name), ingested or waiting in the dropzone.
    pub last_upload: Option<OffsetDateTime>,
    /// Uploads ingested in the last 24 hours.
    pub uploads_24h: u64,
    /// Bytes ingested in the last 24 hours.
    pub bytes_24h: u64,
    /// Complete groups waiting in the dropzone.
    pub pending: u64,
    /// Groups being uploaded.
    pub in_flight: u64,
    /// Data without `.rdy` older than `orphan_after`.
    pub orphans: u64,
    /// Groups in the quarantine.
    pub quarantined: u64,
    /// When the newest quarantined group was put there: it arrived, though bad.
    pub last_quarantined: Option<OffsetDateTime>,
    /// Chunks that arrived twice.
    pub duplicates: u64,
    /// Missing chunks per host: `(host, [(first, last)])`.
    pub gaps: Vec<(String, Vec<(u64, u64)>)>,
    /// The argus version (3 or 5) of its newest upload, and the one before the last change.
    pub versions: crate::ledger::Versions,
}

impl Row {
    /// The number of chunks known missing.
    pub fn missing_chunks(&self) -> u64 {
        self.gaps
            .iter()
            .flat_map(|(_, g)| g)
            .map(|(a, b)| b - a + 1)
            .sum()
    }

    /// The state at `now`.
    pub fn state(&self, now: OffsetDateTime, stale_after: Duration) -> Option<State> {
        if !self.configured {
            return None;
        }
        // Bad uploads arrived too: a sensor whose uploads are quarantined has not gone quiet,
        // it needs a look (a warning, for the quarantined groups).
        let arrived = self.last_upload.max(self.last_quarantined);
        let stale = arrived.is_none_or(|t| {
            (now - t).whole_seconds() > i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX)
        });
        Some(if stale {
            State::Stale
        } else if self.missing_chunks() > 0 || self.quarantined > 0 || self.orphans > 0 {
            State::Warning
        } else {
            State::Ok
        })
    }
}

fn row<'a>(
    rows: &'a mut BTreeMap<String, Row>,
    selection: &Selection,
    client: &str,
) -> &'a mut Row {
    rows.entry(client.to_owned()).or_insert_with(|| Row {
        client: client.to_owned(),
        configured: selection.matches_client(client),
        ..Row::default()
    })
}

/// Gathers the report. Pure but for reading the state directory, dropzone and quarantine.
pub fn gather(config: &Config, now: OffsetDateTime) -> Result<Vec<Row>, Error> {
    let selection = Selection::new(&config.clients, &config.job)?;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    // Every exact id configured is listed, uploads or not.
    for c in &config.clients {
        if !webjob_drop::name::is_client_glob(c) {
            row(&mut rows, &selection, c);
        }
    }

    let ledger = Ledger::load(&config.state_dir).or_store(Action::Read, Store::Ledger)?;
    let this_hour = now.unix_timestamp().div_euclid(3600);
    for (client, c) in &ledger.clients {
        let r = row(&mut rows, &selection, client);
        r.last_upload = c
            .last_upload
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        r.versions = c.versions;
        for (hour, (n, bytes)) in &c.hours {
            if *hour > this_hour - 24 {
                r.uploads_24h += n;
                r.bytes_24h += bytes;
            }
        }
    }
    for (host, h) in &ledger.hosts {
        let client = if h.client.is_empty() { "?" } else { &h.client };
        let r = row(&mut rows, &selection, client);
        r.duplicates += h.duplicates;
        if !h.gaps.is_empty() {
            r.gaps.push((host.clone(), h.gaps.clone()));
        }
    }

    if config.drop_dir.is_dir() {
        let census =
            crate::dropzone::census(config, now).or_store(Action::Scan, Store::Dropzone)?;
        for (client, c) in census {
            let r = row(&mut rows, &selection, &client);
            r.pending += c.pending;
            r.in_flight += c.in_flight;
            r.orphans += c.orphans;
            r.last_upload = r.last_upload.max(c.newest);
        }
    }

    let quarantined = webjob_drop::list_quarantine(&config.quarantine_dir)
        .or_store(Action::Read, Store::Quarantine)?;
    for q in quarantined {
        let stem = q.stem.to_string_lossy();
        let client = crate::dropzone::client_of_stem(&stem).unwrap_or("?");
        let r = row(&mut rows, &selection, client);
        r.quarantined += 1;
        r.last_quarantined = r.last_quarantined.max(q.at.map(OffsetDateTime::from));
    }
    Ok(rows.into_values().collect())
}

/// The hook queue's counts.
pub fn hooks(config: &Config) -> Result<Hooks, Error> {
    crate::hooks::Queue::at(&config.state_dir)
        .list()
        .map(|l| Hooks {
            pending: l.pending.len(),
            failed: l.failed.len() + l.damaged.len(),
        })
        .or_store(Action::Read, Store::HookQueue)
}

/// The follow-on stages' events waiting and kept as failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hooks {
    /// Events waiting to run.
    pub pending: usize,
    /// Events kept as failed (and queue files that could not be read).
    pub failed: usize,
}
