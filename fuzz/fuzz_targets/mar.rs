//! One argus management record (MAR) of either version, decoded, and noted three times into the
//! runs a walk keeps for a sensor's health: twice alike (one run), then after a cut (another).
#![no_main]

use argus_core::record::{MarsSeen, decode_mar};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let decoded = decode_mar(data);
    if let Ok(mar) = &decoded {
        let _ = mar.report();
    }
    let mut seen = MarsSeen::default();
    seen.note(data, 0);
    seen.note(data, 128);
    seen.cut();
    seen.note(data, 256);
    let kept = if decoded.is_ok() { 3 } else { 0 };
    assert_eq!(seen.mars(), kept);
    assert_eq!(seen.runs.len(), if decoded.is_ok() { 2 } else { 0 });
    assert_eq!(seen.unread, 3 - kept);
});
