//! [`MarSeen`]: what a walk keeps of each management record, for a sensor's health: when, what
//! cause, since when argus runs, and the packets the capture took and dropped.

use super::{Mar, MarCause, MarTime};

/// At most this many MARs are kept per walk (69 days of 60-second MARs); later ones are
/// counted in [`MarsSeen::beyond`] only, so that memory stays bounded by the data's time span.
pub const MARS_KEPT: usize = 100_000;

/// One management record as a walk saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarSeen {
    /// Its offset in the bytes walked.
    pub offset: u64,
    /// Why it was written.
    pub cause: MarCause,
    /// In a START: when argus started, kept across the reopens after a harvest's cut, so a
    /// new value is a restart. In the others: when the interval it reports began.
    pub start: MarTime,
    /// When it was written.
    pub now: MarTime,
    /// Packets the capture delivered in its interval.
    pub pkts_rcvd: u64,
    /// Packets the capture dropped in its interval.
    pub dropped: u32,
}

impl MarSeen {
    /// What a walk keeps of `mar`, found at `offset`.
    pub fn of(mar: &Mar, offset: u64) -> MarSeen {
        let counters = mar.report().map(|r| r.counters);
        MarSeen {
            offset,
            cause: mar.cause,
            start: mar.start,
            now: mar.now,
            pkts_rcvd: counters.map_or(0, |c| c.pkts_rcvd),
            dropped: counters.map_or(0, |c| c.dropped),
        }
    }
}

/// The MARs of a walk, in order, at most [`MARS_KEPT`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarsSeen {
    /// The MARs kept.
    pub kept: Vec<MarSeen>,
    /// MARs past [`MARS_KEPT`], not kept.
    pub beyond: u64,
    /// MARs that did not decode (a length argus does not write, say): framed, but unread.
    pub unread: u64,
}

impl MarsSeen {
    /// Notes one MAR record (its whole bytes) at `offset`.
    pub fn note(&mut self, record: &[u8], offset: u64) {
        match super::decode_mar(record) {
            Ok(mar) if self.kept.len() < MARS_KEPT => self.kept.push(MarSeen::of(&mar, offset)),
            Ok(_) => self.beyond += 1,
            Err(_) => self.unread += 1,
        }
    }
}
