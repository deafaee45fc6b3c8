//! Property tests: the walker never panics and never claims more than it saw.

use argus_core::record::{Version, Walk, Walker, walk};
use proptest::prelude::*;

fn mar_start(version: Version) -> Vec<u8> {
    let mut m = vec![0u8; 128];
    m[..4].copy_from_slice(&[0x80 | version.number(), 0x10, 0x00, 0x20]);
    m[8..12].copy_from_slice(&version.cookie().to_be_bytes());
    m
}

/// Real streams of both versions, concatenated: argus 3, argus 5, argus 3, argus 5
/// (66,444 bytes).
fn real_stream() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    [
        "hostA.argus",
        "argus5/hostB.argus",
        "hostD.chunk1.argus",
        "argus5/hostD.chunk1.argus",
    ]
    .iter()
    .flat_map(|n| std::fs::read(dir.join(n)).expect("sample"))
    .collect()
}

/// Feeds `data` to a walker in pieces cut at `cuts` (sorted, deduplicated offsets).
fn walk_in_pieces(data: &[u8], cuts: &[usize], framing_only: bool) -> argus_core::record::Report {
    let mut w = if framing_only {
        Walker::framing_only()
    } else {
        Walker::new()
    };
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&data.len())) {
        let cut = cut.clamp(from, data.len());
        w.feed(&data[from..cut]);
        from = cut;
    }
    w.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Real data, damaged at random places and fed in random pieces: the verdict never depends
    /// on how the bytes were cut (the fast path for whole records and the state machine for
    /// records cut by a buffer boundary agree exactly).
    #[test]
    fn verdicts_do_not_depend_on_buffer_boundaries(
        flips in proptest::collection::vec((0usize..66_444, any::<u8>()), 0..4),
        mut cuts in proptest::collection::vec(0usize..66_444, 0..40),
        truncate in 0usize..75_000,
        framing_only in any::<bool>(),
    ) {
        let mut data = real_stream();
        for (at, byte) in flips {
            let at = at % data.len();
            data[at] ^= byte;
        }
        data.truncate(truncate.min(data.len()));
        cuts.sort_unstable();
        let whole = walk_in_pieces(&data, &[], framing_only);
        let pieces = walk_in_pieces(&data, &cuts, framing_only);
        prop_assert_eq!(pieces, whole.clone());
        let bytewise: Vec<usize> = (0..data.len().min(2000)).collect();
        prop_assert_eq!(walk_in_pieces(&data, &bytewise, framing_only), whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let r = walk(&data[..]).expect("in-memory read");
        prop_assert!(r.valid_len <= data.len() as u64);
        if let Walk::Clean { bytes, .. } = r.walk {
            prop_assert_eq!(bytes, data.len() as u64);
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_start_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        split in 0usize..4224,
        v5 in any::<bool>(),
    ) {
        let mut data = mar_start(if v5 { Version::V5 } else { Version::V3 });
        data.extend(tail);
        let whole = walk(&data[..]).expect("read");
        // Any slicing of the input gives the same verdict.
        let split = split.min(data.len());
        let mut w = Walker::new();
        w.feed(&data[..split]);
        w.feed(&data[split..]);
        prop_assert_eq!(w.finish(), whole.clone());
        prop_assert!(whole.valid_len >= 128);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whole real streams of either version in any order and number: clean, with one listed
    /// stream per piece, each of the right version and record count, whatever the slicing.
    #[test]
    fn any_sequence_of_real_streams_walks_clean(
        picks in proptest::collection::vec(0usize..4, 1..8),
        mut cuts in proptest::collection::vec(0usize..200_000, 0..20),
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let pieces = [
            ("hostB.argus", Version::V3, 105),
            ("argus5/hostB.argus", Version::V5, 104),
            ("hostD.chunk1.argus", Version::V3, 55),
            ("argus5/hostD.chunk1.argus", Version::V5, 54),
        ];
        let mut data = Vec::new();
        let mut want = Vec::new();
        for &i in &picks {
            let (name, version, records) = pieces[i];
            want.push((data.len() as u64, version, records));
            data.extend(std::fs::read(dir.join(name)).expect("sample"));
        }
        cuts.sort_unstable();
        let r = walk_in_pieces(&data, &cuts, false);
        prop_assert!(r.is_clean(), "{}", r.walk);
        let got: Vec<(u64, Version, u64)> =
            r.streams.iter().map(|s| (s.offset, s.version, s.records)).collect();
        prop_assert_eq!(got, want);
    }
}
