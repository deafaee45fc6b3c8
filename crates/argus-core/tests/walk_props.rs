//! Property tests: the walker never panics and never claims more than it saw.

use argus_core::record::{Walk, Walker, walk};
use proptest::prelude::*;

fn mar_start() -> Vec<u8> {
    let mut m = vec![0u8; 128];
    m[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
    m[8..12].copy_from_slice(&argus_core::record::ARGUS_COOKIE.to_be_bytes());
    m
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
