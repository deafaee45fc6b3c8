//! The ingest journal's lines: any line, and any body sealed as the journal seals it; what
//! decodes encodes back to a line that decodes to the same entry.
#![no_main]

use argus_core::stateline::StateLines;
use argus_ingest::journal::{decode_line, encode_line};

fn round_trip(line: &[u8]) {
    if let Some(entry) = decode_line(line) {
        let mut again = Vec::new();
        encode_line(&entry, &mut again);
        assert_eq!(decode_line(&again).as_ref(), Some(&entry), "{again:?}");
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    round_trip(data);
    // The seal is a hash the fuzzer cannot forge: seal the body for it, as the journal does.
    let body = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut line = Vec::new();
    StateLines::new(b'\t', 6).seal(body, &mut line);
    round_trip(&line);
});
