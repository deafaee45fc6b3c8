//! Splitting argus data by the UTC day its records started: which byte ranges of an upload go to
//! which day's file, so that every flow lands in the file of the day it happened. Pure: the
//! records come from [`Records`](super::Records).
//!
//! `ra` reads a file whose first record is not a MAR/START as nothing, but reads a stream that
//! follows another stream fine. So every piece starts with the MAR/START of the stream its first
//! record belongs to, and whenever its records move to another stream, that stream's MAR/START
//! comes first: the original bytes in the first piece that needs them, a byte copy in every other
//! ([`Piece::copied_mars`] counts those). A MAR/START is a stream's header, not filed by its own
//! time; a stream that holds nothing else goes, header alone, to the day of its own time. A record
//! without a time takes the time of the record before it. The records of each day keep their
//! order.

use std::collections::BTreeMap;

use time::{Date, OffsetDateTime};

use super::{MAR_LEN, RecordInfo};
use crate::ranges::ByteRange;

/// What one day's file gets of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The UTC day.
    pub day: Date,
    /// The byte ranges of the upload appended, in order (adjacent ranges merged).
    pub segments: Vec<ByteRange>,
    /// Records of the upload filed under this day (a MAR/START where its original bytes are,
    /// not where a copy is): over all pieces, the upload's records.
    pub records: u64,
    /// MAR/STARTs that are byte copies of one filed in another piece.
    pub copied_mars: u64,
}

impl Piece {
    /// The bytes this piece appends.
    pub fn bytes(&self) -> u64 {
        ByteRange::total(&self.segments)
    }
}

/// How an upload splits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// One piece per day, oldest day first.
    pub pieces: Vec<Piece>,
    /// The earliest and the latest record time seen (Unix seconds).
    pub times: Option<(u32, u32)>,
}

/// The UTC day of a Unix time.
pub fn day_of(seconds: u32) -> Date {
    OffsetDateTime::from_unix_timestamp(i64::from(seconds)).map_or(Date::MIN, OffsetDateTime::date)
}

#[derive(Default)]
struct Building {
    segments: Vec<ByteRange>,
    records: u64,
    copied_mars: u64,
    stream: Option<u32>,
}

impl Building {
    fn push(&mut self, range: ByteRange) {
        match self.segments.last_mut() {
            Some(last) if last.offset + last.len == range.offset => last.len += range.len,
            _ => self.segments.push(range),
        }
    }
}

/// Splits the records of one upload (in order) by day; see the [module docs](self).
pub fn split_by_day(records: impl IntoIterator<Item = RecordInfo>) -> Split {
    split_appended(records.into_iter().map(|r| (r, true)))
}

/// [`split_by_day`] of the records of an upload that are appended (`true`), when some are not
/// (chunks left out as already ingested). A MAR/START that is not appended still heads the
/// records of its stream, as a copy; any other record not appended is left out.
pub fn split_appended(records: impl IntoIterator<Item = (RecordInfo, bool)>) -> Split {
    let mut days: BTreeMap<Date, Building> = BTreeMap::new();
    // Per stream: its MAR/START's offset and time, whether it is appended, and whether its
    // original bytes were filed.
    let mut headers: BTreeMap<u32, (u64, Option<u32>, bool, bool)> = BTreeMap::new();
    let mut last_time: Option<u32> = None;
    let mut times: Option<(u32, u32)> = None;
    let seen = |t: u32, times: &mut Option<(u32, u32)>| {
        *times = Some(times.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    };
    for (r, appended) in records {
        if r.opens_stream {
            headers.insert(r.stream, (r.offset, r.time, appended, false));
            if let Some(t) = r.time {
                last_time = Some(t);
                if appended {
                    seen(t, &mut times);
                }
            }
            continue;
        }
        if !appended {
            continue;
        }
        if let Some(t) = r.time {
            seen(t, &mut times);
            last_time = Some(t);
        }
        let day = day_of(last_time.unwrap_or(0));
        let piece = days.entry(day).or_default();
        if piece.stream != Some(r.stream) {
            if let Some((offset, _, appended, filed)) = headers.get_mut(&r.stream) {
                piece.push(ByteRange::new(*offset, u64::from(MAR_LEN)));
                if *filed || !*appended {
                    piece.copied_mars += 1;
                } else {
                    piece.records += 1;
                }
                *filed = true;
            }
            piece.stream = Some(r.stream);
        }
        piece.push(ByteRange::new(r.offset, u64::from(r.len)));
        piece.records += 1;
    }
    // A stream that held nothing but its header: the header alone, on the day of its time.
    for (stream, (offset, time, appended, filed)) in headers {
        if filed || !appended {
            continue;
        }
        let piece = days.entry(day_of(time.unwrap_or(0))).or_default();
        piece.push(ByteRange::new(offset, u64::from(MAR_LEN)));
        piece.records += 1;
        piece.stream = Some(stream);
    }
    Split {
        pieces: days
            .into_iter()
            .map(|(day, b)| Piece {
                day,
                segments: b.segments,
                records: b.records,
                copied_mars: b.copied_mars,
            })
            .collect(),
        times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::kind;
    use time::macros::date;

    const D1: u32 = 1_796_083_200; // 2026-12-01 00:00:00 UTC
    const DAY: u32 = 86_400;

    fn rec(offset: u64, len: u32, stream: u32, time: Option<u32>, start: bool) -> RecordInfo {
        RecordInfo {
            offset,
            len,
            kind: if start { kind::MAR } else { kind::FLOW },
            stream,
            opens_stream: start,
            time,
        }
    }

    #[test]
    fn an_upload_across_midnight_splits_with_a_mar_copy_for_the_second_day() {
        // MAR/START at 23:59:00, flows at 23:59:30, 00:00:10, 23:59:50 (late, reported after),
        // an untimed record (takes 23:59:50), and one at 00:01:00.
        let records = [
            rec(0, 128, 0, Some(D1 - 60), true),
            rec(128, 100, 0, Some(D1 - 30), false),
            rec(228, 100, 0, Some(D1 + 10), false),
            rec(328, 100, 0, Some(D1 - 10), false),
            rec(428, 40, 0, None, false),
            rec(468, 100, 0, Some(D1 + 60), false),
        ];
        let split = split_by_day(records);
        assert_eq!(split.times, Some((D1 - 60, D1 + 60)));
        let [first, second] = &split.pieces[..] else {
            panic!("two days: {split:?}");
        };
        assert_eq!(first.day, date!(2026 - 11 - 30));
        assert_eq!(
            first.segments,
            [ByteRange::new(0, 228), ByteRange::new(328, 140)],
            "the original MAR/START, then the records of the 30th in their order"
        );
        assert_eq!((first.records, first.copied_mars), (4, 0));
        assert_eq!(second.day, date!(2026 - 12 - 01));
        assert_eq!(
            second.segments,
            [
                ByteRange::new(0, 128),
                ByteRange::new(228, 100),
                ByteRange::new(468, 100)
            ],
            "a copy of the MAR/START first"
        );
        assert_eq!((second.records, second.copied_mars), (2, 1));
        // Every byte of the upload once, plus the copy.
        let total: u64 = split.pieces.iter().map(Piece::bytes).sum();
        assert_eq!(total, 568 + 128);
    }

    #[test]
    fn a_second_stream_brings_its_own_header_into_each_day() {
        let records = [
            rec(0, 128, 0, Some(D1 + 5), true),
            rec(128, 100, 0, Some(D1 + 10), false),
            rec(228, 128, 1, Some(D1 + 20), true),
            rec(356, 100, 1, Some(D1 + DAY + 5), false),
            rec(456, 100, 1, Some(D1 + 30), false),
        ];
        let split = split_by_day(records);
        let [first, second] = &split.pieces[..] else {
            panic!("{split:?}")
        };
        // Stream 0's header and record, stream 1's header (adjacent: one range), its record.
        assert_eq!(
            first.segments,
            [ByteRange::new(0, 356), ByteRange::new(456, 100)]
        );
        assert_eq!(
            first.copied_mars, 1,
            "stream 1's header was filed on day 2 first"
        );
        assert_eq!(second.segments, [ByteRange::new(228, 228)]);
        assert_eq!(second.copied_mars, 0);
    }

    #[test]
    fn a_header_in_a_chunk_left_out_heads_its_records_as_a_copy_and_is_not_filed_alone() {
        let records = [
            (rec(0, 128, 0, Some(D1 + 5), true), false),
            (rec(128, 100, 0, Some(D1 + 10), false), false),
            (rec(228, 100, 0, Some(D1 + 20), false), true),
            (rec(328, 128, 1, Some(D1 + 30), true), false),
            (rec(456, 100, 1, Some(D1 + 40), false), false),
        ];
        let split = split_appended(records);
        assert_eq!(split.pieces.len(), 1);
        let p = &split.pieces[0];
        assert_eq!(
            p.segments,
            [ByteRange::new(0, 128), ByteRange::new(228, 100)]
        );
        assert_eq!(
            (p.records, p.copied_mars),
            (1, 1),
            "only the appended record counts"
        );
        assert_eq!(split.times, Some((D1 + 20, D1 + 20)));
    }

    #[test]
    fn a_stream_of_its_header_alone_goes_to_the_day_of_its_time() {
        let split = split_by_day([rec(0, 128, 0, Some(D1 + 3 * DAY), true)]);
        assert_eq!(split.pieces.len(), 1);
        assert_eq!(split.pieces[0].day, date!(2026 - 12 - 04));
        assert_eq!(split.pieces[0].segments, [ByteRange::new(0, 128)]);
        assert_eq!(split_by_day([]), Split::default());
    }
}
