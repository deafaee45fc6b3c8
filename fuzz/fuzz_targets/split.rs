//! The day splitter over whatever records the input holds, whole or with chunks left out.
#![no_main]

use argus_core::record::Records;
use argus_core::record::split::{split_appended, split_by_day};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let records: Vec<_> = Records::new(data).map_while(Result::ok).collect();
    let end = records.last().map_or(0, |r| r.offset + u64::from(r.len));
    let split = split_by_day(records.iter().copied());
    let filed: u64 = split.pieces.iter().map(|p| p.records).sum();
    assert_eq!(filed, records.len() as u64, "every record is filed once");
    for pair in split.pieces.windows(2) {
        assert!(pair[0].day < pair[1].day, "one piece per day, oldest first");
    }
    for piece in &split.pieces {
        for s in &piece.segments {
            assert!(s.offset + s.len <= end, "{s:?} past the records");
        }
    }
    // Some records left out (already ingested), chosen by the input's bytes.
    let mask = records
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, data[i % data.len()] & 1 == 0));
    let part = split_appended(mask);
    for piece in &part.pieces {
        for s in &piece.segments {
            assert!(s.offset + s.len <= end, "{s:?} past the records");
        }
    }
});
