//! Which day file each part of an upload goes to. With `day_boundary = "upload"` the whole
//! upload goes to the day of its time stamp; with `"record"` its records are read again (from
//! the page cache: the walk has just read them) and filed by the UTC day each started, through
//! argus-core's `record::split`, after the clock window is checked. Only the byte ranges the
//! upload appends (its new chunks) are read and split.

use std::io::{self, BufReader};

use argus_core::ranges::{ByteRange, FileRanges};
use argus_core::record::split::split_by_day;
use argus_core::record::{RecordInfo, Records};
use time::{Date, OffsetDateTime};

use crate::config::{ClockPolicy, Config, DayBoundary};

use super::prepare::ReadyUpload;

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
    /// Its records are dated outside the clock window (the quarantine's reason).
    Clock(String),
    /// Reading `.out` again failed (our side).
    Read(io::Error),
}

/// The pieces of `g`, oldest day first; none when it appends nothing.
pub(super) fn pieces(config: &Config, g: &ReadyUpload) -> Result<Vec<DayPiece>, NotSplit> {
    let upload = Whole {
        name: g.upload.display_name(),
        day: g.day,
        stamp: g.upload.uploaded_at(),
        records: g.records,
    };
    split_file(config, &g.out, &g.segments, &upload)
}

/// What [`split_file`] needs to know of an upload besides its data.
pub(super) struct Whole {
    pub(super) name: String,
    /// Its upload day and time stamp.
    pub(super) day: Date,
    pub(super) stamp: OffsetDateTime,
    /// Its records, all in one piece when it is not split.
    pub(super) records: u64,
}

/// The pieces of the ranges `segments` of `out`, an upload's `.out`.
pub(super) fn split_file(
    config: &Config,
    out: &std::fs::File,
    segments: &[ByteRange],
    upload: &Whole,
) -> Result<Vec<DayPiece>, NotSplit> {
    if ByteRange::total(segments) == 0 {
        return Ok(Vec::new());
    }
    let whole = || {
        vec![DayPiece {
            day: upload.day,
            segments: segments.to_vec(),
            records: upload.records,
            copied_mars: 0,
        }]
    };
    if config.day_boundary == DayBoundary::Upload {
        return Ok(whole());
    }
    let mut across = Across {
        file: out,
        segments: segments.iter(),
        current: None,
        streams: 0,
        failed: None,
    };
    let split = split_by_day(&mut across);
    if let Some(e) = across.failed {
        return Err(NotSplit::Read(e));
    }
    if let Some((first, last)) = split.times
        && let Some(why) = outside_window(config, upload.stamp, first, last)
    {
        return match config.clock_policy {
            ClockPolicy::Quarantine => Err(NotSplit::Clock(why)),
            ClockPolicy::UploadDay => {
                log::warn!(
                    "{}: {why}; filed whole under its upload day (clock_policy = \"upload_day\")",
                    upload.name
                );
                Ok(whole())
            }
        };
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

/// The records of the appended ranges of a file, one range after the other (each is whole
/// chunks, each beginning with its MAR/START): offsets made the file's, streams numbered across
/// the ranges. Memory: one record. The first read error ends it and is kept.
struct Across<'a> {
    file: &'a std::fs::File,
    segments: std::slice::Iter<'a, ByteRange>,
    current: Option<(u64, u32, Records<BufReader<FileRanges<'a>>>)>,
    streams: u32,
    failed: Option<io::Error>,
}

impl Iterator for Across<'_> {
    type Item = RecordInfo;

    fn next(&mut self) -> Option<RecordInfo> {
        loop {
            if self.failed.is_some() {
                return None;
            }
            if let Some((offset, first, records)) = &mut self.current {
                match records.next() {
                    Some(Ok(r)) => {
                        let stream = *first + r.stream;
                        self.streams = self.streams.max(stream + 1);
                        return Some(RecordInfo {
                            offset: r.offset + *offset,
                            stream,
                            ..r
                        });
                    }
                    Some(Err(e)) => {
                        self.failed = Some(e);
                        return None;
                    }
                    None => self.current = None,
                }
            }
            let seg = self.segments.next()?;
            let reader = BufReader::with_capacity(
                64 * 1024,
                FileRanges::new(self.file, std::slice::from_ref(seg)),
            );
            self.current = Some((seg.offset, self.streams, Records::new(reader)));
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
