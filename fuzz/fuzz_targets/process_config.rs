//! process_argus' configuration, TOML and the recipe's `process_argus.cfg`: what validates
//! converts (`convert-config`) to TOML that validates to the same configuration.
#![no_main]

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
    if let Ok((config, _recipe)) = process_argus::parse_config(name, text) {
        let toml = process_argus::config_to_toml(&config);
        match process_argus::parse_config("converted.toml", &toml) {
            Ok((again, recipe)) => {
                assert!(!recipe);
                assert_eq!(again, config, "through convert-config:\n{toml}");
            }
            Err(problems) => panic!("convert-config wrote an invalid config {problems:?}:\n{toml}"),
        }
    }
});
