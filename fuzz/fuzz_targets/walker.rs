//! The argus record walker (both versions, mixed streams), fed whole and in pieces.
#![no_main]

use argus_core::record::{self, Records, Walker, decode_mar, kind};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let whole = record::walk(data).expect("a slice never fails to read");
    assert!(whole.valid_len <= data.len() as u64, "{whole:?}");

    // Fed in pieces of any sizes (taken from the input), the walker says the same.
    let mut walker = Walker::new();
    let (mut at, mut i) = (0, 0);
    while at < data.len() && !walker.is_failed() {
        let step = 1 + usize::from(data[i % data.len()]) % 131;
        let end = (at + step).min(data.len());
        walker.feed(&data[at..end]);
        (at, i) = (end, i + 1);
    }
    assert_eq!(walker.finish(), whole, "fed in pieces");

    // Checking only the framing never keeps less.
    let framing = record::walk_with(Walker::framing_only(), data).expect("slice");
    assert!(framing.valid_len >= whole.valid_len);

    // The valid prefix is itself clean, with the same records.
    let cut = usize::try_from(whole.valid_len).expect("fits");
    let prefix = record::walk(&data[..cut]).expect("slice");
    assert!(
        prefix.is_clean(),
        "the valid prefix walks {:?}",
        prefix.walk
    );
    assert_eq!(prefix.records, whole.records);

    // Records reads clean data record by record: as many as the walk counted, back to back
    // but for the runs of zeros the walk left out.
    if whole.is_clean() {
        let (mut records, mut mars, mut starts, mut end) = (0, 0, 0, 0);
        let mut gaps = whole.zero_gaps.iter();
        let mut skip_gap = |end: &mut u64| {
            if let Some(gap) = whole.zero_gaps.iter().find(|g| g.offset == *end) {
                assert_eq!(gaps.next(), Some(gap), "the gaps in order");
                *end += gap.len;
            }
        };
        for info in Records::new(data) {
            let info = info.expect("clean data reads");
            skip_gap(&mut end);
            assert_eq!(info.offset, end);
            end += u64::from(info.len);
            records += 1;
            if info.kind == kind::MAR {
                mars += 1;
                let at = usize::try_from(info.offset).expect("fits");
                let _ = decode_mar(&data[at..at + info.len as usize]);
            }
            starts += u64::from(info.opens_stream);
        }
        skip_gap(&mut end);
        assert_eq!(end, data.len() as u64);
        assert_eq!(gaps.next(), None, "every gap stepped over");
        assert_eq!(records, whole.records);
        assert_eq!(mars, whole.mars);
        assert_eq!(starts, whole.starts);
    }
});
