//! Quarantine reason files: any text read as one, and what is written read back.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use argus_core::escape::Escaped;
use webjob_drop::ops::{Intent, intent_text, parse_intent, unescape};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_intent(data);

    let shown = Escaped(data).to_string();
    assert_eq!(unescape(shown.as_bytes()).as_deref(), Some(data));

    // Fields separated by NUL: source, stem, reason, then the parts.
    let mut fields = data.split(|&b| b == 0);
    let source = Path::new(OsStr::from_bytes(fields.next().unwrap_or_default()));
    let stem = OsStr::from_bytes(fields.next().unwrap_or_default());
    let reason = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let parts: Vec<&OsStr> = fields
        .filter(|n| !n.is_empty() && !n.contains(&b'/') && *n != b"." && *n != b"..")
        .map(OsStr::from_bytes)
        .collect();
    let text = intent_text(source, stem, &parts, &reason);
    let read = parse_intent(text.as_bytes()).expect("what is written reads back");
    let want = Intent {
        source: source.to_path_buf(),
        stem: stem.to_os_string(),
        parts: parts.iter().map(|p| p.to_os_string()).collect(),
    };
    assert_eq!(read, Some(want));
});
