//! [`MarsSeen`]: what a walk keeps of the management records, for a sensor's health, as runs of
//! alike MARs ([`MarRun`]): when, since when argus runs, how often it stopped, and the packets
//! the capture took and dropped. What is kept grows with the hours the data spans, not with its
//! MARs.

use super::{Mar, MarCause, MarTime};

/// At most this many runs are kept per walk (11 years of hourly runs); MARs that would start
/// another are counted in [`MarsSeen::beyond`] only, so that memory stays bounded whatever the
/// data holds.
pub const MAR_RUNS_KEPT: usize = 100_000;

/// Consecutive MARs of one clock hour, with no cut ([`MarsSeen::cut`]) between them and at
/// most one argus start time among their MAR/STARTs: what a sensor's health needs of each,
/// summed. Every MAR of a run lies on the same side of each cut, so a consumer that keeps only
/// some byte ranges of the data (bounded by cuts) keeps a run whole or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarRun {
    /// The offset of its first MAR in the bytes walked.
    pub offset: u64,
    /// The offset of its last MAR.
    pub last_offset: u64,
    /// Its MARs.
    pub mars: u64,
    /// The clock hour of their times (`now`, Unix seconds / 3600).
    pub hour: u32,
    /// The newest of their times.
    pub newest: MarTime,
    /// When argus started, by its MAR/STARTs (kept across the reopens after a harvest's cut,
    /// so a new value is a restart); `None` when it holds no MAR/START.
    pub started: Option<MarTime>,
    /// Its MAR/STOPs: clean stops of argus.
    pub stops: u64,
    /// Packets the capture delivered in its MARs' intervals.
    pub pkts_rcvd: u64,
    /// Packets the capture dropped in its MARs' intervals.
    pub dropped: u64,
}

impl MarRun {
    /// A run of `mar` alone, found at `offset`.
    fn of(mar: &Mar, offset: u64) -> MarRun {
        let counters = mar.report().map(|r| r.counters);
        MarRun {
            offset,
            last_offset: offset,
            mars: 1,
            hour: mar.now.secs / 3600,
            newest: mar.now,
            started: (mar.cause == MarCause::Start).then_some(mar.start),
            stops: u64::from(mar.cause == MarCause::Stop),
            pkts_rcvd: counters.map_or(0, |c| c.pkts_rcvd),
            dropped: counters.map_or(0, |c| u64::from(c.dropped)),
        }
    }

    /// Takes `next` (a run of the MAR after its last) in, when it is alike; gives it back when
    /// not.
    fn absorb(&mut self, next: MarRun) -> Result<(), MarRun> {
        let starts_agree = match (self.started, next.started) {
            (Some(a), Some(b)) => a.secs == b.secs,
            _ => true,
        };
        if next.hour != self.hour || !starts_agree {
            return Err(next);
        }
        self.last_offset = next.offset;
        self.mars += next.mars;
        self.newest = self.newest.max(next.newest);
        self.started = self.started.or(next.started);
        self.stops += next.stops;
        self.pkts_rcvd = self.pkts_rcvd.saturating_add(next.pkts_rcvd);
        self.dropped = self.dropped.saturating_add(next.dropped);
        Ok(())
    }
}

/// The MARs of a walk, in order, as at most [`MAR_RUNS_KEPT`] runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarsSeen {
    /// The runs kept.
    pub runs: Vec<MarRun>,
    /// MARs past [`MAR_RUNS_KEPT`] runs, not kept.
    pub beyond: u64,
    /// MARs that did not decode (a length argus does not write, say): framed, but unread.
    pub unread: u64,
    /// The next MAR begins a run.
    cut: bool,
}

impl MarsSeen {
    /// Notes one MAR record (its whole bytes) at `offset`.
    pub fn note(&mut self, record: &[u8], offset: u64) {
        let Ok(mar) = super::decode_mar(record) else {
            self.unread += 1;
            return;
        };
        let cut = std::mem::take(&mut self.cut);
        let run = MarRun::of(&mar, offset);
        let run = match self.runs.last_mut() {
            Some(last) if !cut => match last.absorb(run) {
                Ok(()) => return,
                Err(run) => run,
            },
            _ => run,
        };
        if self.runs.len() < MAR_RUNS_KEPT {
            self.runs.push(run);
        } else {
            self.beyond += 1;
        }
    }

    /// The MARs noted so far and the next one are never in one run. A walk cuts where a run of
    /// zeros begins and where its caller says chunks meet ([`crate::record::Walker::cut`]).
    pub fn cut(&mut self) {
        self.cut = true;
    }

    /// Every MAR kept, in all runs.
    pub fn mars(&self) -> u64 {
        self.runs.iter().map(|r| r.mars).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Walker;

    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn seen(mut walker: Walker, data: &[u8]) -> MarsSeen {
        walker.feed(data);
        let report = walker.finish();
        assert!(report.is_clean(), "{:?}", report.walk);
        report.mars_seen
    }

    fn offsets(seen: &MarsSeen) -> Vec<u64> {
        seen.runs.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn the_mars_of_one_hour_are_one_run_however_many_streams_hold_them() {
        for dir in ["", "argus5/"] {
            let one = sample(&format!("{dir}hostA.argus"));
            let single = seen(Walker::new(), &one);
            let [run] = single.runs[..] else {
                panic!("{dir}: {:?}", single.runs);
            };
            assert_eq!(run.mars, 3, "{dir}: MAR/START and two more");
            assert!(run.started.is_some() && run.pkts_rcvd > 0, "{dir}");
            let many = seen(Walker::new(), &one.repeat(200));
            let [sum] = many.runs[..] else {
                panic!("{dir}: memory grew with the MARs: {} runs", many.runs.len());
            };
            let len = one.len() as u64;
            assert_eq!(
                sum,
                MarRun {
                    offset: 0,
                    last_offset: 199 * len + run.last_offset,
                    mars: 600,
                    stops: 200 * run.stops,
                    pkts_rcvd: 200 * run.pkts_rcvd,
                    dropped: 200 * run.dropped,
                    ..run
                },
                "{dir}"
            );
            assert_eq!((many.mars(), many.beyond, many.unread), (600, 0, 0));
        }
    }

    #[test]
    fn a_cut_a_run_of_zeros_and_another_argus_start_each_begin_a_run() {
        for dir in ["", "argus5/"] {
            let a = sample(&format!("{dir}hostA.argus"));
            let len = a.len() as u64;
            let mut walker = Walker::new();
            walker.cut(len);
            let cut = seen(walker, &a.repeat(2));
            assert_eq!(offsets(&cut), [0, len], "{dir}: a cut where chunks meet");
            assert_eq!(cut.runs[0].mars + cut.runs[1].mars, 6);

            let mut gapped = a.clone();
            gapped.extend([0u8; 4096]);
            gapped.extend(&a);
            let zeros = seen(Walker::new(), &gapped);
            assert_eq!(offsets(&zeros), [0, len + 4096], "{dir}: a run of zeros");

            let two = seen(
                Walker::new(),
                &sample(&format!("{dir}hostA+hostB.concat.argus")),
            );
            assert_eq!(
                offsets(&two),
                [0, len],
                "{dir}: hostB's argus started apart"
            );
            assert_ne!(two.runs[0].started, two.runs[1].started, "{dir}");
        }
    }

    #[test]
    fn runs_past_the_bound_are_counted_not_kept() {
        // One MAR/START per 128 bytes, a cut between each: a run each.
        let one = sample("mar-only.argus");
        let n = MAR_RUNS_KEPT + 2;
        let mut walker = Walker::new();
        for i in 1..n {
            walker.cut((i * one.len()) as u64);
        }
        let many = seen(walker, &one.repeat(n));
        assert_eq!(many.runs.len(), MAR_RUNS_KEPT);
        assert_eq!(many.beyond, 2);
    }
}
