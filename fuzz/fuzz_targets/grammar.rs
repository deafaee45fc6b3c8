//! The settings grammar: durations, sizes, amounts, the recipe's shell values. What parses
//! formats back to a spelling that parses to the same value.
#![no_main]

use std::time::Duration;

use argus_core::grammar::{
    format_duration, format_size, format_size_exact, parse_amount, parse_duration, parse_size,
    shell_value,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse_duration(&text) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text:?}");
    }
    if let Ok(n) = parse_size(&text) {
        assert_eq!(parse_size(&format_size_exact(n)), Ok(n), "{text:?}");
        let shown = parse_size(&format_size(n)).expect("a shown size reads back");
        assert!(
            shown.abs_diff(n) <= n / 20 + 1,
            "{n} shown as {}",
            format_size(n)
        );
    }
    if let Ok(a) = parse_amount(&text) {
        assert_eq!(parse_amount(&a.to_string()), Ok(a), "{text:?}");
    }
    let _ = shell_value(&text);
    // Any number, formatted, reads back.
    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    let n = u64::from_le_bytes(word);
    if n > 0 {
        assert_eq!(parse_size(&format_size_exact(n)), Ok(n));
    }
    let d = Duration::from_secs(n >> 16);
    assert_eq!(parse_duration(&format_duration(d)), Ok(d));
});
