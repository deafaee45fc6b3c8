//! Property tests: the walker never panics and never claims more than it saw.

use argus_core::record::{Walk, Walker, walk};
use proptest::prelude::*;

fn mar_start() -> Vec<u8> {
    let mut m = vec![0u8; 128];
    m[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
    m[8..12].copy_from_slice(&argus_core::record::ARGUS_COOKIE.to_be_bytes());
    m
}

fn real_stream() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    ["hostA.argus", "hostB.argus", "hostD.chunk1.argus"]
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
        flips in proptest::collection::vec((0usize..71_544, any::<u8>()), 0..4),
        mut cuts in proptest::collection::vec(0usize..71_544, 0..40),
        truncate in 0usize..80_000,
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
        prop_assert_eq!(pieces, whole);
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
    ) {
        let mut data = mar_start();
        data.extend(tail);
        let whole = walk(&data[..]).expect("read");
        // Any slicing of the input gives the same verdict.
        let split = split.min(data.len());
        let mut w = Walker::new();
        w.feed(&data[..split]);
        w.feed(&data[split..]);
        prop_assert_eq!(w.finish(), whole);
        prop_assert!(whole.valid_len >= 128);
    }
}
