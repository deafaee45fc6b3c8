//! `decode_mar` on everything the samples hold and on damaged copies of their MARs: it decodes
//! every real MAR, refuses every other record with a typed error, and never panics.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use argus_core::record::{MarError, Records, Version, decode_mar, kind, record_version, walk};
use proptest::prelude::*;

/// Every uncompressed committed sample, argus 3 and argus 5, damaged ones included.
fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("argus5")] {
        for entry in std::fs::read_dir(&dir).expect("testdata") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "argus") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "samples of both versions: {files:?}");
    files
}

/// The records of `data` as `Records` frames them, up to its first error.
fn records(data: &[u8]) -> Vec<(u8, &[u8])> {
    Records::new(data)
        .map_while(Result::ok)
        .map(|r| {
            let at = usize::try_from(r.offset).expect("small");
            (r.kind, &data[at..at + r.len as usize])
        })
        .collect()
}

#[test]
fn every_record_of_every_sample_decodes_or_is_refused() {
    let mut mars = [0usize; 2];
    for path in samples() {
        let data = std::fs::read(&path).expect("read");
        let valid = usize::try_from(walk(&data[..]).expect("walk").valid_len).expect("small");
        // What the walker accepts: every MAR decodes, every other record is refused as such.
        for (ty, rec) in records(&data[..valid]) {
            match decode_mar(rec) {
                Ok(m) => {
                    assert_eq!(ty, kind::MAR, "{}", path.display());
                    assert_eq!(Some(m.version), record_version(rec));
                    assert!(m.report().is_some(), "5.0.3 writes no interface MAR");
                    mars[usize::from(m.version == Version::V5)] += 1;
                }
                Err(e) => assert_eq!(e, MarError::NotMar { kind: ty }, "{}", path.display()),
            }
        }
        // Past it, in a damaged file, whatever `Records` frames: a result, never a panic.
        for (_, rec) in records(&data) {
            let _ = decode_mar(rec);
        }
    }
    // hostA, hostB, hostC, hostD.chunk1, hostD.chunk2, mar-only, the concatenation and the
    // truncated copies: 3+3+2+1+3+1+6+2+2 argus 3 MARs, 3+3+1+1+1+3+1+6+2+2 argus 5 ones.
    assert_eq!(mars, [23, 23]);
}

/// The MARs of the clean samples of both versions, whole records.
fn real_mars() -> &'static [Vec<u8>] {
    static MARS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    MARS.get_or_init(collect_mars)
}

fn collect_mars() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for path in samples() {
        let data = std::fs::read(&path).expect("read");
        if !walk(&data[..]).expect("walk").is_clean() {
            continue;
        }
        for (ty, rec) in records(&data) {
            if ty == kind::MAR {
                out.push(rec.to_vec());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Real MARs cut short, with bytes flipped (the header included) and with any length in
    /// their header: a typed result every time, and a decoded one only from a record at least
    /// as long as the smallest MAR layout.
    #[test]
    fn damaged_real_mars_never_panic(
        pick in any::<prop::sample::Index>(),
        keep in 0usize..=160,
        flips in proptest::collection::vec((0usize..160, any::<u8>()), 0..6),
        words in proptest::option::of(any::<u16>()),
    ) {
        let mars = real_mars();
        let mut rec = mars[pick.index(mars.len())].clone();
        rec.truncate(keep);
        for (at, byte) in flips {
            if let Some(b) = rec.get_mut(at) {
                *b ^= byte;
            }
        }
        if let (Some(w), true) = (words, rec.len() >= 4) {
            rec[2..4].copy_from_slice(&w.to_be_bytes());
        }
        match decode_mar(&rec) {
            Ok(m) => {
                prop_assert!(rec.len() >= 52);
                prop_assert_eq!(Some(m.version), record_version(&rec));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Arbitrary bytes, half of them given a MAR header of a known version and their own
    /// length, so that the field reads are reached.
    #[test]
    fn arbitrary_records_never_panic(
        mut rec in proptest::collection::vec(any::<u8>(), 0..300),
        framed in any::<bool>(),
        v5 in any::<bool>(),
    ) {
        if framed && rec.len() >= 4 {
            rec.truncate(rec.len() / 4 * 4);
            rec[0] = if v5 { 0x85 } else { 0x83 };
            let words = u16::try_from(rec.len() / 4).expect("small");
            rec[2..4].copy_from_slice(&words.to_be_bytes());
        }
        if let Ok(m) = decode_mar(&rec) {
            prop_assert!(rec.len() >= 52);
            let _ = (m.source_id.to_string(), m.start.to_datetime(), m.now.to_string());
        }
    }
}
