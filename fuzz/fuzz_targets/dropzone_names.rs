//! What the dropzone reads of an upload: file names and stems, the `.env` file, `.rdy`
//! key-values and the manifest lines of `.err`.
#![no_main]

use argus_core::manifest::Manifest;
use webjob_drop::name::{self, Selection};
use webjob_drop::{Env, KeyValues};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Some((stem, ext)) = name::split_part_name(line) {
        assert_eq!(
            [stem, ext].join(&b'.'),
            line,
            "a name is its stem and extension"
        );
    }
    for r in name::readings(line) {
        assert!(name::is_client_id(r.client.as_bytes()));
        assert_eq!(r.stamp.len(), 14);
        assert!(r.stamp.iter().all(u8::is_ascii_digit));
        let joined = [r.client.as_bytes(), r.stamp, r.rest].join(&b'_');
        assert!(r.rest.starts_with(b"_"));
        assert_eq!(joined.len(), line.len() + 1);
    }
    let all = Selection::all(webjob_drop::DEFAULT_JOB).expect("the default job");
    let _ = all.classify(line);
    if let Ok(text) = std::str::from_utf8(line) {
        let pattern = text.split('/').next().unwrap_or_default();
        if name::check_client_pattern(pattern).is_ok() {
            if let Ok(one) = Selection::new([pattern], webjob_drop::DEFAULT_JOB) {
                let rest = data.get(line.len() + 1..).unwrap_or_default();
                let stem = rest.split(|&b| b == b'\n').next().unwrap_or_default();
                let _ = one.classify(stem);
            }
        }
    }
    let env = Env::parse(data);
    let _ = env.hostname();
    let kv = KeyValues::parse(data);
    let _ = kv.get("Hostname");
    for manifest in Manifest::find_all(data).into_iter().flatten() {
        let again: Manifest = manifest.to_string().parse().expect("a manifest reads back");
        assert_eq!(again, manifest);
    }
});
