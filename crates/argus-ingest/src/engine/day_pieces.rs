//! Which day file each part of an upload goes to. With `day_boundary = "upload"` the whole
//! upload goes to the day of its time stamp; with `"record"` its records are read again (from
//! the page cache: the walk has just read them) and filed by the UTC day each started, through
//! argus-core's `record::split`, after the clock window is checked. Of an upload that brings
//! chunks ingested before, only the ranges it appends are split; a piece that continues a
//! stream whose MAR/START was in such a chunk begins with a copy of it.

use std::io::{self, BufReader};

use argus_core::ranges::{ByteRange, FileRanges};
use argus_core::record::split::split_appended;
use argus_core::record::{RecordInfo, Records};
use time::{Date, OffsetDateTime};

use crate::config::{Config, DayBoundary};

/// What one day file gets of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DayPiece {
    pub(super) day: Date,
    /// The byte ranges of `.out` appended, in order.
    pub(super) segments: Vec<ByteRange>,
    /// The upload's records filed there.
    pub(super) records: u64,
    /// MAR/START copies it begins a stream with.
    pub(super) copied_mars: u64,
}

impl DayPiece {
    pub(super) fn bytes(&self) -> u64 {
        ByteRange::total(&self.segments)
    }
}

/// Why an upload is not split.
#[derive(Debug)]
pub(super) enum NotSplit {
    /// Its records are dated outside the clock window: the quarantine's reason, or, with
    /// `clock_policy = "upload_day"`, the warning of an upload filed whole under its day.
    Clock(String),
    /// Its appended ranges cannot be read as argus records from a MAR/START (data of a
    /// harvester that does not cut chunks at one): it is filed whole under its upload day.
    Unsplittable(String),
    /// Reading `.out` again failed (our side).
    Read(io::Error),
}

/// One piece: the whole of `segments`, on `day`.
pub(super) fn whole(day: Date, segments: &[ByteRange], records: u64) -> Vec<DayPiece> {
    if ByteRange::total(segments) == 0 {
        return Vec::new();
    }
    vec![DayPiece {
        day,
        segments: segments.to_vec(),
        records,
        copied_mars: 0,
    }]
}

/// What [`split_file`] needs to know of an upload besides its data.
pub(super) struct Whole {
    /// Its upload day and time stamp.
    pub(super) day: Date,
    pub(super) stamp: OffsetDateTime,
    /// Its records, all in one piece when it is not split.
    pub(super) records: u64,
}

/// The pieces of the ranges `segments` of `out`, an upload's `.out`, split by record time
/// (with `day_boundary = "upload"`, one piece). The clock policy is the caller's: this only
/// says that the records are outside the window.
pub(super) fn split_file(
    config: &Config,
    out: &std::fs::File,
    segments: &[ByteRange],
    upload: &Whole,
) -> Result<Vec<DayPiece>, NotSplit> {
    if config.day_boundary == DayBoundary::Upload || ByteRange::total(segments) == 0 {
        return Ok(whole(upload.day, segments, upload.records));
    }
    let len = segments.last().map_or(0, |s| s.offset + s.len);
    let whole_file = [ByteRange::new(0, len)];
    let mut across = Across::new(out, &whole_file, segments);
    let split = split_appended(&mut across);
    match across.failed {
        None => {}
        // Ranges that do not begin with a MAR/START (chunks of a harvester that does not cut at
        // one) cannot be split: the upload is filed whole, as by upload day, never blocking
        // the ingest.
        Some(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            return Err(NotSplit::Unsplittable(format!(
                "cannot be split by record time ({e})"
            )));
        }
        Some(e) => return Err(NotSplit::Read(e)),
    }
    if let Some((first, last)) = split.times
        && let Some(why) = outside_window(config, upload.stamp, first, last)
    {
        return Err(NotSplit::Clock(why));
    }
    Ok(split
        .pieces
        .into_iter()
        .map(|p| DayPiece {
            day: p.day,
            records: p.records,
            copied_mars: p.copied_mars,
            segments: p.segments,
        })
        .collect())
}

/// The records of an upload's `.out`, read from its first byte (so that every stream's
/// MAR/START is known, even one in a chunk left out as a duplicate), each with whether the
/// upload appends it: the MAR/STARTs always, other records only inside a range. Memory: one
/// record. The first read error ends it and is kept.
struct Across<'a> {
    records: Records<BufReader<FileRanges<'a>>>,
    segments: &'a [ByteRange],
    /// The first range that does not end before the current record.
    at: usize,
    failed: Option<io::Error>,
}

impl<'a> Across<'a> {
    fn new(file: &'a std::fs::File, whole: &'a [ByteRange; 1], segments: &'a [ByteRange]) -> Self {
        Across {
            records: Records::new(BufReader::with_capacity(
                64 * 1024,
                FileRanges::new(file, whole),
            )),
            segments,
            at: 0,
            failed: None,
        }
    }
}

impl Iterator for Across<'_> {
    /// A record, and whether the upload appends it.
    type Item = (RecordInfo, bool);

    fn next(&mut self) -> Option<(RecordInfo, bool)> {
        loop {
            let r = match self.records.next()? {
                Ok(r) => r,
                Err(e) => {
                    self.failed = Some(e);
                    return None;
                }
            };
            while let Some(seg) = self.segments.get(self.at)
                && seg.offset + seg.len <= r.offset
            {
                self.at += 1;
            }
            let inside = self
                .segments
                .get(self.at)
                .is_some_and(|seg| seg.offset <= r.offset);
            if inside || r.opens_stream {
                return Some((r, inside));
            }
        }
    }
}

/// Why records dated `first`..`last` cannot be from a sensor whose upload is stamped `stamp`,
/// if they cannot. Pure.
pub(super) fn outside_window(
    config: &Config,
    stamp: OffsetDateTime,
    first: u32,
    last: u32,
) -> Option<String> {
    let stamp_s = stamp.unix_timestamp();
    let lag = i64::try_from(config.max_record_lag.as_secs()).unwrap_or(i64::MAX);
    let skew = i64::try_from(config.max_clock_skew.as_secs()).unwrap_or(i64::MAX);
    let too_old = i64::from(first) < stamp_s.saturating_sub(lag);
    let too_new = i64::from(last) > stamp_s.saturating_add(skew);
    if !too_old && !too_new {
        return None;
    }
    let at = |t: u32| {
        OffsetDateTime::from_unix_timestamp(i64::from(t))
            .map(argus_core::stamp::format_rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    Some(format!(
        "its records are dated {} to {}, {} its time stamp {} (max_record_lag = {}, max_clock_skew = {}): check the sensor's clock",
        at(first),
        at(last),
        if too_old { "too long before" } else { "after" },
        argus_core::stamp::format_rfc3339(stamp),
        argus_core::grammar::format_duration(config.max_record_lag),
        argus_core::grammar::format_duration(config.max_clock_skew),
    ))
}
