//! harvest_argus `convert-config`: the recipe's shell script read as text; what it converts is
//! a TOML configuration harvest_argus reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((toml, _warnings)) = harvest_argus::convert_script(&text) {
        if let Err(problems) = harvest_argus::check_config_text(&toml) {
            panic!("convert-config wrote what check-config cannot read {problems:?}:\n{toml}");
        }
    }
});
