//! One argus management record (MAR) of either version, decoded.
#![no_main]

use argus_core::record::{MarSeen, decode_mar};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(mar) = decode_mar(data) {
        let _ = MarSeen::of(&mar, 0);
        let _ = mar.report();
    }
});
