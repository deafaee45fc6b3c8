//! The JSON documents the program prints: one line of compact JSON each (serde_json), keys in
//! the order the docs give.

use argus_ingest::report::Summary;

pub(crate) use argus_ingest::report::human_bytes;

/// A pass summary as one JSON object, keys in a fixed order (docs/OPERATIONS.md).
pub(crate) fn summary_json(s: &Summary) -> String {
    let json = SummaryJson {
        ingested: s.ingested,
        bytes: s.bytes,
        empty: s.empty,
        day_files: s.day_files,
        quarantined: s.quarantined,
        in_flight: s.in_flight,
        orphans: s.orphans,
        foreign: s.foreign,
        recovered: s.recovered,
        purged: s.purged,
        compressed: s.compressed,
        reused_bytes: s.reused_bytes,
        duplicates: s.duplicates,
        expired: s.expired,
        hooks_ran: s.hooks_ran,
        hooks_failed: s.hooks_failed,
        elapsed_ms: s.elapsed.as_millis(),
        failed: s.failed.as_deref(),
    };
    to_json(&json)
}

/// [`summary_json`]'s document: serde writes the keys in the order declared here.
#[derive(serde::Serialize)]
struct SummaryJson<'a> {
    ingested: u64,
    bytes: u64,
    empty: u64,
    day_files: u64,
    quarantined: u64,
    in_flight: u64,
    orphans: u64,
    foreign: u64,
    recovered: u64,
    purged: u64,
    compressed: u64,
    reused_bytes: u64,
    duplicates: u64,
    expired: u64,
    hooks_ran: u64,
    hooks_failed: u64,
    elapsed_ms: u128,
    failed: Option<&'a str>,
}

/// `value` as one line of compact JSON, the form every `--json` output takes.
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    // Only a Serialize impl that fails, or a map with keys that are not strings, makes this
    // fail; the programs' documents are plain structs of numbers, strings and lists.
    serde_json::to_string(value).expect("a plain document serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_stable() {
        let s = Summary {
            ingested: 3,
            failed: Some("disk \"full\"\n".into()),
            ..Summary::default()
        };
        assert_eq!(
            summary_json(&s),
            "{\"ingested\":3,\"bytes\":0,\"empty\":0,\"day_files\":0,\"quarantined\":0,\"in_flight\":0,\"orphans\":0,\"foreign\":0,\"recovered\":0,\"purged\":0,\"compressed\":0,\"reused_bytes\":0,\"duplicates\":0,\"expired\":0,\"hooks_ran\":0,\"hooks_failed\":0,\"elapsed_ms\":0,\"failed\":\"disk \\\"full\\\"\\n\"}"
        );
    }
}
