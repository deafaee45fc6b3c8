//! Sensor health from argus' own management records (MARs): every MAR/STATUS reports the packets
//! the capture delivered and **dropped** in its interval, a MAR/START carries the time argus
//! started (kept across the reopens after a harvest's cut, so a new one is a restart), a
//! MAR/STOP marks a clean stop, and the newest MAR's time set against the upload's stamp shows a
//! clock that strays. The walk that checks an upload's records already decodes them
//! (argus-core's `MarsSeen`); nothing reads the data again.
//!
//! An upload's figures ([`UploadHealth`], of the byte ranges it appends only, so a chunk shipped
//! twice counts once) travel in its journal entry and its ledger upload fact, which counts an
//! upload once however often it is recorded; the ledger keeps each client's [`SensorHealth`].

use std::collections::BTreeMap;

use argus_core::ranges::ByteRange;
use argus_core::record::MarsSeen;

use crate::config::Config;

/// Hours of per-hour figures kept (the status reports the last 24).
const KEEP_HOURS: i64 = 26;

/// argus start times kept per upload: more restarts than this in one upload are not told apart.
const STARTS_KEPT: usize = 1000;

/// What one upload's MARs say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadHealth {
    /// Per clock hour of the MARs' times (Unix seconds / 3600), oldest first: packets the
    /// capture delivered, and packets it dropped.
    pub hours: Vec<(i64, u64, u64)>,
    /// The argus start times (Unix seconds) of its MAR/STARTs, in order, a run of equal ones
    /// once.
    pub starts: Vec<i64>,
    /// Its MAR/STOPs: clean stops of argus.
    pub stops: u64,
    /// The newest MAR's time (Unix seconds).
    pub last_mar: Option<i64>,
    /// Runs of zero bytes between its records, left out of the day file: what a power loss on
    /// the sensor leaves in argus' output.
    pub gaps: Vec<ByteRange>,
}

impl UploadHealth {
    /// The figures of the MARs that lie in `segments` (the byte ranges an upload appends), and
    /// its runs of zeros `gaps`; `None` when there is neither. Segments may begin and end only
    /// where the walk cut its MAR runs ([`MarsSeen::cut`]): where chunks meet (the engine's
    /// check is told where), where runs of zeros begin and end, and where whole records end
    /// (a salvaged prefix).
    pub fn of(mars: &MarsSeen, segments: &[ByteRange], gaps: &[ByteRange]) -> Option<UploadHealth> {
        let mut health = UploadHealth {
            gaps: gaps.to_vec(),
            ..UploadHealth::default()
        };
        let mut hours: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut any = false;
        // A run lies wholly inside the segments or wholly outside: the walk cut the runs where
        // chunks meet and where runs of zeros begin, the only places segments begin or end.
        for run in &mars.runs {
            let inside = segments
                .iter()
                .any(|s| s.offset <= run.offset && run.offset - s.offset < s.len);
            if !inside {
                continue;
            }
            any = true;
            let newest = i64::from(run.newest.secs);
            health.last_mar = Some(health.last_mar.map_or(newest, |l| l.max(newest)));
            if let Some(started) = run.started.map(|t| i64::from(t.secs))
                && health.starts.last() != Some(&started)
                && health.starts.len() < STARTS_KEPT
            {
                health.starts.push(started);
            }
            health.stops += run.stops;
            if run.pkts_rcvd > 0 || run.dropped > 0 {
                let slot = hours.entry(i64::from(run.hour)).or_default();
                slot.0 = slot.0.saturating_add(run.pkts_rcvd);
                slot.1 = slot.1.saturating_add(run.dropped);
            }
        }
        health.hours = hours.into_iter().map(|(h, (r, d))| (h, r, d)).collect();
        (any || !gaps.is_empty()).then_some(health)
    }

    /// One word (no spaces or tabs) for the journal and the ledger:
    /// `HOUR:RECEIVED:DROPPED,...;START,...;STOPS;LAST_MAR;OFFSET+LEN,...`, `-` for an empty
    /// list or none.
    pub fn encode(&self) -> String {
        let hours: Vec<String> = self
            .hours
            .iter()
            .map(|(h, r, d)| format!("{h}:{r}:{d}"))
            .collect();
        let starts: Vec<String> = self.starts.iter().map(i64::to_string).collect();
        let gaps: Vec<String> = self
            .gaps
            .iter()
            .map(|g| format!("{}+{}", g.offset, g.len))
            .collect();
        format!(
            "{};{};{};{};{}",
            list(&hours),
            list(&starts),
            self.stops,
            self.last_mar.map_or("-".to_owned(), |t| t.to_string()),
            list(&gaps)
        )
    }

    /// The inverse of [`UploadHealth::encode`] (words written before gaps were kept have
    /// none); `None` for anything else.
    pub fn decode(word: &str) -> Option<UploadHealth> {
        let parts: Vec<&str> = word.split(';').collect();
        let (hours, starts, stops, last, gaps) = match parts.as_slice() {
            [h, s, p, l] => (*h, *s, *p, *l, "-"),
            [h, s, p, l, g] => (*h, *s, *p, *l, *g),
            _ => return None,
        };
        Some(UploadHealth {
            hours: items(hours, |h| {
                let mut it = h.split(':');
                let (Some(hour), Some(r), Some(d), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return None;
                };
                Some((hour.parse().ok()?, r.parse().ok()?, d.parse().ok()?))
            })?,
            starts: items(starts, |s| s.parse().ok())?,
            stops: stops.parse().ok()?,
            last_mar: optional(last)?,
            gaps: items(gaps, |g| {
                let (offset, len) = g.split_once('+')?;
                Some(ByteRange::new(offset.parse().ok()?, len.parse().ok()?))
            })?,
        })
    }
}

/// What the ledger keeps of one sensor's health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorHealth {
    /// Per clock hour (Unix seconds / 3600) of the last 26: packets delivered and
    /// dropped.
    pub hours: BTreeMap<i64, (u64, u64)>,
    /// Per clock hour of the last 26: argus restarts.
    pub restart_hours: BTreeMap<i64, u64>,
    /// When the argus run of the newest MAR/START started (Unix seconds).
    pub argus_started: Option<i64>,
    /// Packets delivered, all time.
    pub received: u64,
    /// Packets dropped, all time.
    pub dropped: u64,
    /// argus restarts, all time (the first start this ledger sees is not one).
    pub restarts: u64,
    /// Clean stops, all time.
    pub stops: u64,
    /// The newest MAR's time (Unix seconds).
    pub last_mar: Option<i64>,
    /// That MAR's time less its upload's stamp, in seconds: near zero, or a little negative (up
    /// to a MAR interval), on a sensor whose clock is right.
    pub clock_offset: Option<i64>,
    /// Runs of zeros left out of its uploads (power losses on the sensor), all time.
    pub zero_gaps: u64,
    /// Their bytes.
    pub zero_gap_bytes: u64,
}

impl SensorHealth {
    /// Adds an upload stamped `at` (counted once: the ledger sees to that).
    pub fn note(&mut self, upload: &UploadHealth, at: i64) {
        for &(hour, received, dropped) in &upload.hours {
            let slot = self.hours.entry(hour).or_default();
            slot.0 = slot.0.saturating_add(received);
            slot.1 = slot.1.saturating_add(dropped);
            self.received = self.received.saturating_add(received);
            self.dropped = self.dropped.saturating_add(dropped);
        }
        for &started in &upload.starts {
            match self.argus_started {
                // A reopen after a cut (the same run), or an older upload ingested late.
                Some(known) if started <= known => {}
                Some(_) => {
                    self.restarts += 1;
                    *self
                        .restart_hours
                        .entry(started.div_euclid(3600))
                        .or_default() += 1;
                    self.argus_started = Some(started);
                }
                None => self.argus_started = Some(started),
            }
        }
        self.stops += upload.stops;
        self.zero_gaps += upload.gaps.len() as u64;
        self.zero_gap_bytes = self
            .zero_gap_bytes
            .saturating_add(ByteRange::total(&upload.gaps));
        if let Some(last) = upload.last_mar
            && self.last_mar.is_none_or(|known| last >= known)
        {
            self.last_mar = Some(last);
            self.clock_offset = Some(last - at);
        }
        if let Some(newest) = self.hours.keys().next_back().copied() {
            self.hours.retain(|h, _| *h > newest - KEEP_HOURS);
        }
        if let Some(newest) = self.restart_hours.keys().next_back().copied() {
            self.restart_hours.retain(|h, _| *h > newest - KEEP_HOURS);
        }
    }

    /// Packets delivered and dropped in the clock hours from `first` on.
    pub fn since(&self, first: i64) -> (u64, u64) {
        self.hours
            .range(first..)
            .fold((0, 0), |(r, d), (_, (r2, d2))| (r + r2, d + d2))
    }

    /// Restarts in the clock hours from `first` on.
    pub fn restarts_since(&self, first: i64) -> u64 {
        self.restart_hours.range(first..).map(|(_, n)| n).sum()
    }

    /// One word for the ledger's snapshot.
    pub fn encode(&self) -> String {
        let hours: Vec<String> = self
            .hours
            .iter()
            .map(|(h, (r, d))| format!("{h}:{r}:{d}"))
            .collect();
        let restarts: Vec<String> = self
            .restart_hours
            .iter()
            .map(|(h, n)| format!("{h}:{n}"))
            .collect();
        let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        format!(
            "{};{};{};{};{};{};{};{};{};{};{}",
            list(&hours),
            list(&restarts),
            opt(self.argus_started),
            self.received,
            self.dropped,
            self.restarts,
            self.stops,
            opt(self.last_mar),
            opt(self.clock_offset),
            self.zero_gaps,
            self.zero_gap_bytes
        )
    }

    /// The inverse of [`SensorHealth::encode`].
    pub fn decode(word: &str) -> Option<SensorHealth> {
        let p: Vec<&str> = word.split(';').collect();
        let (fields, zeros) = match p.split_at_checked(9) {
            Some((f, [])) => (f, ["0", "0"].as_slice()),
            Some((f, z @ [_, _])) => (f, z),
            _ => return None,
        };
        let [
            hours,
            restarts,
            started,
            received,
            dropped,
            restarts_n,
            stops,
            last,
            offset,
        ] = fields
        else {
            return None;
        };
        Some(SensorHealth {
            hours: items(hours, |h| {
                let mut it = h.split(':');
                let (Some(hour), Some(r), Some(d), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return None;
                };
                Some((hour.parse().ok()?, (r.parse().ok()?, d.parse().ok()?)))
            })?
            .into_iter()
            .collect(),
            restart_hours: items(restarts, |h| {
                let (hour, n) = h.split_once(':')?;
                Some((hour.parse().ok()?, n.parse().ok()?))
            })?
            .into_iter()
            .collect(),
            argus_started: optional(started)?,
            received: received.parse().ok()?,
            dropped: dropped.parse().ok()?,
            restarts: restarts_n.parse().ok()?,
            stops: stops.parse().ok()?,
            last_mar: optional(last)?,
            clock_offset: optional(offset)?,
            zero_gaps: zeros[0].parse().ok()?,
            zero_gap_bytes: zeros[1].parse().ok()?,
        })
    }
}

/// A sensor's health figures at some time, as `status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HealthFigures {
    /// Packets the capture delivered and dropped over its last hour of management records (the
    /// clock hour of its newest MAR and the one before).
    pub hour: (u64, u64),
    /// The same over the last 24 clock hours.
    pub day: (u64, u64),
    /// argus restarts in the last 24 clock hours.
    pub restarts_24h: u64,
}

impl HealthFigures {
    /// The share of packets dropped over the last hour, when any was seen.
    pub fn drop_ratio_1h(&self) -> Option<f64> {
        ratio(self.hour)
    }

    /// The share of packets dropped over 24 hours, when any was seen.
    pub fn drop_ratio_24h(&self) -> Option<f64> {
        ratio(self.day)
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "a share for people and Prometheus"
)]
fn ratio((received, dropped): (u64, u64)) -> Option<f64> {
    let all = received.saturating_add(dropped);
    (all > 0).then(|| dropped as f64 / all as f64)
}

/// A health condition worth a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Its newest MAR is dated after its upload's stamp (the WebJob server's time) by more than
    /// half of `max_clock_skew`: the sensor's clock is ahead. (A MAR behind the stamp may be
    /// data shipped late, which the clock window judges.)
    Clock,
    /// argus restarted more than `restart_warn` times in 24 hours.
    Restarting,
    /// The capture dropped more than `drop_warn` of its packets over the last hour.
    Dropping,
}

impl Condition {
    /// Its name, as `status` and the `sensor_health` hook event give it.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Clock => "clock",
            Condition::Restarting => "restarting",
            Condition::Dropping => "dropping",
        }
    }
}

impl SensorHealth {
    /// The figures at `now`: the last hour is the clock hour of the newest MAR and the one
    /// before; the last day, the 24 clock hours up to `now`.
    pub fn figures(&self, now: time::OffsetDateTime) -> HealthFigures {
        let this_hour = now.unix_timestamp().div_euclid(3600);
        let last_hour = self.last_mar.map_or(this_hour, |t| t.div_euclid(3600));
        HealthFigures {
            hour: self.since(last_hour - 1),
            day: self.since(this_hour - 23),
            restarts_24h: self.restarts_since(this_hour - 23),
        }
    }

    /// The worst condition at `now` by `config`'s thresholds: dropping, then restarting, then
    /// a clock ahead; `None` when healthy.
    pub fn condition(&self, now: time::OffsetDateTime, config: &Config) -> Option<Condition> {
        let figures = self.figures(now);
        let skew = i64::try_from(config.max_clock_skew.as_secs() / 2).unwrap_or(i64::MAX);
        if figures
            .drop_ratio_1h()
            .is_some_and(|r| r * 100.0 > f64::from(config.drop_warn))
        {
            Some(Condition::Dropping)
        } else if figures.restarts_24h > u64::from(config.restart_warn) {
            Some(Condition::Restarting)
        } else if self.clock_offset.is_some_and(|o| o > skew) {
            Some(Condition::Clock)
        } else {
            None
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

fn items<T>(word: &str, item: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    if word == "-" {
        return Some(Vec::new());
    }
    word.split(',').map(item).collect()
}

/// `-` is none; anything else must parse.
fn optional(word: &str) -> Option<Option<i64>> {
    if word == "-" {
        Some(None)
    } else {
        word.parse().ok().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use argus_core::record::walk;

    use super::*;

    fn sample(dir: &str, name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../argus-core/testdata")
            .join(dir)
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn health_of(data: &[u8]) -> UploadHealth {
        let report = walk(data).expect("walk");
        UploadHealth::of(
            &report.mars_seen,
            &[ByteRange::new(0, data.len() as u64)],
            &report.zero_gaps,
        )
        .expect("MARs")
    }

    #[test]
    fn a_reopen_after_a_cut_is_the_same_run_and_a_new_start_time_a_restart() {
        for dir in ["", "argus5"] {
            let one = health_of(&sample(dir, "hostD.chunk1.argus"));
            let two = health_of(&sample(dir, "hostD.chunk2.argus"));
            assert_eq!(one.starts.len(), 1, "{dir}");
            assert_eq!(
                one.starts, two.starts,
                "{dir}: chunk 2 opens with a reopen's START"
            );
            let mut sensor = SensorHealth::default();
            sensor.note(&one, one.last_mar.expect("a MAR"));
            sensor.note(&two, two.last_mar.expect("a MAR"));
            sensor.note(&two, two.last_mar.expect("a MAR"));
            assert_eq!(sensor.restarts, 0, "{dir}");
            let other = health_of(&sample(dir, "hostA.argus"));
            sensor.note(&other, other.last_mar.expect("a MAR") + 30);
            assert_eq!(
                sensor.restarts, 0,
                "{dir}: an older argus run is not a restart"
            );
            let last = two.last_mar.expect("a MAR");
            assert_eq!(
                sensor.clock_offset,
                Some(0),
                "{dir}: hostA's MARs are older"
            );
            let mut later = two.clone();
            later.starts = vec![two.starts[0] + 600];
            later.last_mar = Some(last + 3600);
            sensor.note(&later, last + 3600 - 45);
            assert_eq!(sensor.restarts, 1, "{dir}");
            assert_eq!(sensor.clock_offset, Some(45), "{dir}: a clock 45 s ahead");
        }
    }

    #[test]
    fn packets_are_the_sums_of_the_status_mars_as_ra_prints_them() {
        // `ra -X -F man.rc -n -u -c , -s stime spkts sport state -r FILE - man` with
        // RA_PRINT_MAN_RECORDS=yes in man.rc (argus 5.0.3's ra after a MAR-only file, which
        // it takes as the connection's header): spkts is the packets delivered, sport the
        // dropped ones.
        let three = health_of(&sample("", "hostA.argus"));
        let received: u64 = three.hours.iter().map(|h| h.1).sum();
        let dropped: u64 = three.hours.iter().map(|h| h.2).sum();
        assert_eq!((received, dropped), (1044, 0));
        assert_eq!(three.stops, 1, "argus 3 wrote a MAR/STOP at the end");
        let five = health_of(&sample("argus5", "hostA.argus"));
        let received: u64 = five.hours.iter().map(|h| h.1).sum();
        assert_eq!(received, 1056 + 184);
    }

    #[test]
    fn chunks_left_out_bring_no_mars() {
        let data = sample("", "hostA.argus");
        // As if a chunk ended after the MAR/START: the walk keeps the MARs on each side apart.
        let mut walker = argus_core::record::Walker::new();
        walker.cut(128);
        walker.feed(&data);
        let report = walker.finish();
        assert_eq!(UploadHealth::of(&report.mars_seen, &[], &[]), None);
        let past_start = [ByteRange::new(128, data.len() as u64 - 128)];
        let h = UploadHealth::of(&report.mars_seen, &past_start, &[]).expect("status MARs");
        assert!(h.starts.is_empty());
    }

    #[test]
    fn both_encodings_round_trip_and_refuse_damage() {
        let h = UploadHealth {
            hours: vec![(498_833, 1044, 3), (498_834, 7, 0)],
            starts: vec![1_795_800_046, 1_795_800_999],
            stops: 1,
            last_mar: Some(1_795_800_059),
            gaps: vec![ByteRange::new(4096, 8192)],
        };
        assert_eq!(UploadHealth::decode(&h.encode()), Some(h.clone()));
        assert_eq!(
            UploadHealth::decode(&UploadHealth::default().encode()),
            Some(UploadHealth::default())
        );
        let mut s = SensorHealth::default();
        s.note(&h, 1_795_800_100);
        assert_eq!(SensorHealth::decode(&s.encode()), Some(s.clone()));
        for bad in ["", "x;-;0;-", "-;-;0", "1:2;-;0;-", "-;-;0;-;9"] {
            assert_eq!(UploadHealth::decode(bad), None, "{bad:?}");
        }
        assert_eq!(SensorHealth::decode("-;-;-;0;0;0;0;-"), None);
    }
}
