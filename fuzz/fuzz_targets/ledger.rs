//! The ledger's log and snapshot lines: what decodes encodes back to the same fact, and a
//! ledger read from any (sealed) lines writes a snapshot that reads back as the same ledger.
#![no_main]

use argus_core::stateline::StateLines;
use argus_ingest::ledger::{Ledger, decode_line, encode_line};

const LINES: StateLines = StateLines::new(b' ', 4);

fn sealed(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for body in text.split(|&b| b == b'\n') {
        LINES.seal(body, &mut out);
    }
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for line in data
        .split(|&b| b == b'\n')
        .map(sealed)
        .chain([data.to_vec()])
    {
        if let Some(fact) = decode_line(&line) {
            let mut again = Vec::new();
            encode_line(&fact, &mut again);
            assert_eq!(decode_line(&again).as_ref(), Some(&fact), "{again:?}");
        }
    }
    // Snapshot lines before the first NUL, log lines after it.
    let (snapshot, log) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let ledger = Ledger::from_texts(&sealed(snapshot), &sealed(log));
    let written = ledger.snapshot();
    let read = Ledger::from_texts(&written, b"");
    assert_eq!(read.hosts, ledger.hosts, "hosts through the snapshot");
    assert_eq!(read.clients, ledger.clients, "clients through the snapshot");
});
