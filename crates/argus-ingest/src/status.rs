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
use crate::health::{Condition, HealthFigures};
use crate::ledger::Ledger;

/// The state of one client, least urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Uploading, nothing missing.
    Ok,
    /// Uploading, but something needs a look: missing chunks, quarantined groups, orphans.
    Warning,
    /// Its newest management record is dated after its upload's stamp (the WebJob server's
    /// time) by more than half of `max_clock_skew`: the sensor's clock is ahead. (A record
    /// behind the stamp may be data shipped late, which the clock window judges.)
    Clock,
    /// Its argus restarted more than `restart_warn` times in 24 hours.
    Restarting,
    /// Its capture dropped more than `drop_warn` of its packets over its last hour.
    Dropping,
    /// Nothing arrived for `stale_after` (or ever).
    Stale,
}

impl State {
    /// The name in the JSON and the table.
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Clock => "clock",
            State::Restarting => "restarting",
            State::Dropping => "dropping",
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
    /// What its argus management records say, as the ledger keeps it.
    pub health: crate::health::SensorHealth,
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

    /// Its health figures at `now`.
    pub fn health_figures(&self, now: OffsetDateTime) -> HealthFigures {
        self.health.figures(now)
    }

    /// The health state at `now` by `config`'s thresholds, if one applies.
    pub fn health_state(&self, now: OffsetDateTime, config: &Config) -> Option<State> {
        self.health.condition(now, config).map(|c| match c {
            Condition::Dropping => State::Dropping,
            Condition::Restarting => State::Restarting,
            Condition::Clock => State::Clock,
        })
    }

    /// The state at `now`, by `config`'s thresholds (`None`: a client not configured).
    pub fn state(&self, now: OffsetDateTime, config: &Config) -> Option<State> {
        let upload_state = self.upload_state(now, config.stale_after)?;
        Some(match self.health_state(now, config) {
            Some(health) if upload_state != State::Stale => health.max(upload_state),
            _ => upload_state,
        })
    }

    /// The state by the uploads alone: stale, warning (something to look at) or ok.
    fn upload_state(&self, now: OffsetDateTime, stale_after: Duration) -> Option<State> {
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
        r.health = c.health.clone();
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

/// One clock hour of one sensor, for `status --host`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hour {
    /// Its start.
    pub start: Option<OffsetDateTime>,
    /// Uploads ingested stamped in it, and their bytes.
    pub uploads: u64,
    /// Bytes of those uploads.
    pub bytes: u64,
    /// Packets the capture delivered and dropped, by the MARs dated in it.
    pub received: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// argus restarts that started in it.
    pub restarts: u64,
}

/// The last 24 clock hours of `client`, oldest first (`None`: the ledger does not know it).
pub fn last_day(
    config: &Config,
    client: &str,
    now: OffsetDateTime,
) -> Result<Option<Vec<Hour>>, Error> {
    let ledger = Ledger::load(&config.state_dir).or_store(Action::Read, Store::Ledger)?;
    let Some(c) = ledger.clients.get(client) else {
        return Ok(None);
    };
    let this_hour = now.unix_timestamp().div_euclid(3600);
    let hours = (this_hour - 23..=this_hour)
        .map(|h| {
            let (uploads, bytes) = c.hours.get(&h).copied().unwrap_or_default();
            let (received, dropped) = c.health.hours.get(&h).copied().unwrap_or_default();
            Hour {
                start: OffsetDateTime::from_unix_timestamp(h * 3600).ok(),
                uploads,
                bytes,
                received,
                dropped,
                restarts: c.health.restart_hours.get(&h).copied().unwrap_or_default(),
            }
        })
        .collect();
    Ok(Some(hours))
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::health::{SensorHealth, UploadHealth};

    fn config() -> Config {
        Config::new(
            PathBuf::from("/srv/incoming"),
            PathBuf::from("/srv/operational"),
            PathBuf::from("/srv/archive"),
            vec!["s1".to_owned()],
        )
    }

    /// A configured row that uploaded a minute before `now`, with `health`.
    fn row(now: OffsetDateTime, health: SensorHealth) -> Row {
        Row {
            client: "s1".to_owned(),
            configured: true,
            last_upload: Some(now - time::Duration::minutes(1)),
            health,
            ..Row::default()
        }
    }

    fn upload(
        now: i64,
        received: u64,
        dropped: u64,
        starts: &[i64],
        last_mar: i64,
    ) -> UploadHealth {
        UploadHealth {
            hours: vec![(now.div_euclid(3600), received, dropped)],
            starts: starts.to_vec(),
            stops: 0,
            last_mar: Some(last_mar),
            gaps: Vec::new(),
        }
    }

    #[test]
    fn drops_restarts_and_a_clock_ahead_each_warn_by_their_thresholds() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let t = now.unix_timestamp();
        let config = config();
        let mut h = SensorHealth::default();
        h.note(&upload(t, 10_000, 100, &[t - 9000], t - 30), t - 10);
        assert_eq!(
            row(now, h.clone()).state(now, &config),
            Some(State::Ok),
            "1% is not over 1%"
        );
        h.note(&upload(t, 0, 10, &[], t - 20), t);
        let dropping = row(now, h.clone());
        assert_eq!(dropping.state(now, &config), Some(State::Dropping));
        assert_eq!(dropping.health_figures(now).day, (10_000, 110));

        let mut h = SensorHealth::default();
        for (i, started) in [t - 9000, t - 8000, t - 7000, t - 6000]
            .into_iter()
            .enumerate()
        {
            h.note(&upload(t, 10, 0, &[started], t - 60), t - 60 + i as i64);
        }
        assert_eq!(h.restarts, 3, "the first start is the baseline");
        assert_eq!(
            row(now, h.clone()).state(now, &config),
            Some(State::Ok),
            "3 is the limit"
        );
        h.note(&upload(t, 10, 0, &[t - 5000], t - 60), t);
        assert_eq!(row(now, h).state(now, &config), Some(State::Restarting));

        let mut h = SensorHealth::default();
        h.note(&upload(t, 10, 0, &[t - 9000], t + 1801), t);
        assert_eq!(row(now, h.clone()).state(now, &config), Some(State::Clock));
        let mut behind = SensorHealth::default();
        behind.note(&upload(t, 10, 0, &[t - 9000], t - 86_400), t);
        assert_eq!(
            row(now, behind).state(now, &config),
            Some(State::Ok),
            "late data is the clock window's to judge"
        );
        let mut quiet = row(now, h);
        quiet.last_upload = Some(now - time::Duration::days(1));
        assert_eq!(quiet.state(now, &config), Some(State::Stale));
    }
}
