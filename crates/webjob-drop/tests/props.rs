//! Property tests: the parsers never panic on arbitrary bytes, and understand every well-formed
//! input exactly.

use proptest::prelude::*;
use webjob_drop::kv::{Env, KeyValues, read_manifests};
use webjob_drop::name::{Selection, StemMatch, readings, split_part_name};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Bytes biased towards the characters that matter to the parsers.
fn tricky(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"_=.\r\n0123456789cl/\\".to_vec()),
    ];
    prop::collection::vec(byte, 0..max)
}

fn selection() -> Selection {
    Selection::new(["client1", "c_*", "a"], "harvest_argus").expect("selection")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stem_parsing_never_panics(stem in prop_oneof![bytes(120), tricky(120)]) {
        let sel = selection();
        let _ = sel.classify(&stem);
        let _ = readings(&stem).count();
        let _ = split_part_name(&stem);
        if let StemMatch::Ours(p) = sel.classify(&stem) {
            // Whatever is accepted is printable text that starts with its client id.
            prop_assert!(!p.stem.chars().any(char::is_control));
            prop_assert!(p.stem.starts_with(p.client));
            prop_assert!(p.stem.ends_with("_harvest_argus"));
        }
    }

    #[test]
    fn well_formed_stems_round_trip(
        client in "[A-Za-z0-9.-][A-Za-z0-9_.-]{0,40}",
        year in 1970u32..2100,
        month in 1u32..=12,
        day in 1u32..=28,
        hour in 0u32..24,
        minute in 0u32..60,
        second in 0u32..60,
        middle in prop::option::of("[A-Za-z0-9]{0,12}"),
    ) {
        let stamp = format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}");
        let stem = match &middle {
            Some(m) => format!("{client}_{stamp}_{m}_harvest_argus"),
            None => format!("{client}_{stamp}_harvest_argus"),
        };
        let sel = Selection::new([client.as_str()], "harvest_argus").expect("selection");
        match sel.classify(stem.as_bytes()) {
            StemMatch::Ours(p) => {
                prop_assert_eq!(p.client, client.as_str());
                prop_assert_eq!(p.middle, middle.as_deref());
                prop_assert_eq!(u32::from(p.uploaded_at.day()), day);
                prop_assert_eq!(u32::from(p.uploaded_at.second()), second);
            }
            // A middle of 14 digits can make another reading; with one exact id it cannot be
            // ambiguous, so anything else is a bug.
            other => prop_assert!(false, "{stem}: {other:?}"),
        }
        // Another client whose id extends this one's never matches.
        let longer = format!("{client}0_{stamp}_harvest_argus");
        prop_assert!(!matches!(sel.classify(longer.as_bytes()), StemMatch::Ours(_)));
    }

    #[test]
    fn key_value_parsing_never_panics(text in prop_oneof![bytes(256), tricky(256)]) {
        let kv = KeyValues::parse(&text);
        for (k, v) in kv.iter() {
            prop_assert!(!k.is_empty());
            prop_assert!(!k.contains(&b'\n') && !v.contains(&b'\n'));
            prop_assert!(!k.contains(&b'='));
        }
        let env = Env::parse(&text);
        if let Ok(host) = env.hostname() {
            prop_assert!(!host.as_str().contains('/'));
            prop_assert!(!host.as_str().contains(".."));
        }
    }

    #[test]
    fn key_values_round_trip(
        entries in prop::collection::vec(("[A-Za-z][A-Za-z0-9]{0,8}", bytes(20)), 0..8),
        crlf in any::<bool>(),
    ) {
        // Values may hold anything but a line break (`\r` only matters at the end of a line).
        let entries: Vec<(String, Vec<u8>)> = entries
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().filter(|&b| b != b'\n' && b != b'\r').collect()))
            .collect();
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut text = Vec::new();
        for (k, v) in &entries {
            text.extend_from_slice(k.as_bytes());
            text.push(b'=');
            text.extend_from_slice(v);
            text.extend_from_slice(eol);
            text.extend_from_slice(eol);
        }
        let kv = KeyValues::parse(&text);
        let parsed: Vec<(String, Vec<u8>)> = kv
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_vec()))
            .collect();
        prop_assert_eq!(parsed, entries);
    }

    #[test]
    fn manifest_reading_never_panics(text in prop_oneof![bytes(512), tricky(512)], prefixed in any::<bool>()) {
        let mut input = Vec::new();
        if prefixed {
            input.extend_from_slice(argus_core::manifest::PREFIX.as_bytes());
        }
        input.extend_from_slice(&text);
        let found = read_manifests(&input[..]).expect("reading memory cannot fail");
        prop_assert!(found.len() <= input.split(|&b| b == b'\n').count());
    }
}
