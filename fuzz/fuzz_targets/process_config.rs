//! process_argus' configuration, TOML and the recipe's `process_argus.cfg`: what validates
//! converts (`convert-config`) to TOML that validates to the same configuration.
#![no_main]

use std::path::Path;

use argus_ingest::config::file;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let name = if first & 1 == 0 {
        "process_argus.toml"
    } else {
        "process_argus.cfg"
    };
    if let Ok((config, _format, _sources)) = file::parse_with_sources(Path::new(name), text) {
        let toml = file::to_toml(&config);
        match file::parse_with_sources(Path::new("converted.toml"), &toml) {
            Ok((again, format, _)) => {
                assert_eq!(format, file::Format::Toml);
                assert_eq!(again, config, "through convert-config:\n{toml}");
            }
            Err(e) => panic!("convert-config wrote an invalid config {e}:\n{toml}"),
        }
    }
});
