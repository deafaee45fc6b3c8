//! harvest_argus' TOML configuration, checked as `check-config` does for every host.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = harvest_argus::check_config_text(text);
    }
});
