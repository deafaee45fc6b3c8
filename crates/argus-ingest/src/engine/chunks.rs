//! Which chunks of a batch are appended: the pure de-duplication plan of each upload's chunk
//! manifests against the ledger and against the batch itself.
//!
//! A chunk the ledger (or an earlier upload of the same batch) holds with the same content hash
//! is a duplicate and left out; a number seen with other content is appended and reported
//! (data is never left out on the strength of a number alone); everything else is new. The
//! plan gives each upload the byte ranges of `.out` to append, contiguous ranges merged.

use std::collections::BTreeMap;

use argus_core::manifest::Manifest;
use argus_core::ranges::ByteRange;

use crate::ledger::{Seen, short_hash};

/// A chunk by the name its sensor gave it: `(host, seq)`.
pub(super) type ChunkId = (String, u64);

/// What one upload appends, and what its chunks turned out to be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct UploadPlan {
    /// Byte ranges `(offset, len)` of `.out` to append.
    pub(super) segments: Vec<ByteRange>,
    /// The chunks appended: id and short content hash.
    pub(super) new: Vec<(ChunkId, String)>,
    /// Chunks left out: ingested before with the same content.
    pub(super) duplicates: Vec<ChunkId>,
    /// Chunks appended although their number was seen before with other content.
    pub(super) reused: Vec<ChunkId>,
}

/// Plans every upload of a batch, in order, from its manifests (`None` for an upload without
/// any: it is appended whole) and `check`, the ledger's verdict on a chunk `(host, seq, hash)`.
pub(super) fn plan<'a>(
    uploads: impl IntoIterator<Item = &'a [Manifest]>,
    check: impl Fn(&str, u64, &str) -> Seen,
) -> Vec<Option<UploadPlan>> {
    let mut in_batch: BTreeMap<ChunkId, String> = BTreeMap::new();
    uploads
        .into_iter()
        .map(|manifests| {
            if manifests.is_empty() {
                return None;
            }
            let mut p = UploadPlan::default();
            let mut offset = 0;
            for m in manifests {
                let id = (m.host.to_string(), m.seq);
                let sha = short_hash(&m.sha256);
                let seen = match in_batch.get(&id) {
                    Some(known) if *known == sha => Seen::Duplicate,
                    Some(_) => Seen::Reused,
                    None => check(&id.0, id.1, &sha),
                };
                match seen {
                    Seen::Duplicate => p.duplicates.push(id),
                    Seen::New | Seen::Reused => {
                        if seen == Seen::Reused {
                            p.reused.push(id.clone());
                        }
                        in_batch.insert(id.clone(), sha.clone());
                        p.new.push((id, sha));
                        match p.segments.last_mut() {
                            Some(last) if last.end() == offset => last.len += m.bytes,
                            _ if m.bytes > 0 => p.segments.push(ByteRange::new(offset, m.bytes)),
                            _ => {}
                        }
                    }
                }
                offset += m.bytes;
            }
            Some(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_core::host::Hostname;

    fn m(host: &str, seq: u64, bytes: u64, content: u8) -> Manifest {
        Manifest {
            host: Hostname::new(host).expect("host"),
            seq,
            start: None,
            end: None,
            bytes,
            records: None,
            sha256: [content; 32],
        }
    }

    fn hash(content: u8) -> String {
        short_hash(&[content; 32])
    }

    #[test]
    fn new_duplicate_and_reused_chunks() {
        // The ledger knows s1 #1 (content 1) and s1 #2 (content 2).
        let known = |host: &str, seq: u64, sha: &str| match (host, seq) {
            ("s1", 1) if sha == hash(1) => Seen::Duplicate,
            ("s1", 2) if sha == hash(2) => Seen::Duplicate,
            ("s1", 1 | 2) => Seen::Reused,
            _ => Seen::New,
        };
        // Reshipped #1, then new #3 and #4: #1 left out, #3 and #4 one merged range.
        let a = [m("s1", 1, 10, 1), m("s1", 3, 20, 3), m("s1", 4, 5, 4)];
        // #2 with other bytes (a sensor whose state was reset): appended, and reported.
        let b = [m("s1", 2, 7, 9)];
        let plans = plan([&a[..], &b[..], &[][..]], known);
        let pa = plans[0].as_ref().expect("a has manifests");
        assert_eq!(pa.segments, [ByteRange::new(10, 25)]);
        assert_eq!(pa.duplicates, [("s1".to_owned(), 1)]);
        assert_eq!(
            pa.new,
            [
                (("s1".to_owned(), 3), hash(3)),
                (("s1".to_owned(), 4), hash(4))
            ]
        );
        let pb = plans[1].as_ref().expect("b has manifests");
        assert_eq!(pb.segments, [ByteRange::new(0, 7)]);
        assert_eq!(pb.reused, [("s1".to_owned(), 2)]);
        assert_eq!(pb.new.len(), 1);
        assert_eq!(plans[2], None, "no manifest: appended whole");
    }

    #[test]
    fn a_chunk_twice_in_one_batch_is_appended_once() {
        let a = [m("s1", 5, 10, 5)];
        let b = [m("s1", 5, 10, 5), m("s1", 6, 3, 6)];
        let c = [m("s1", 6, 4, 7)];
        let plans = plan([&a[..], &b[..], &c[..]], |_, _, _| Seen::New);
        let pb = plans[1].as_ref().expect("b");
        assert_eq!(pb.duplicates, [("s1".to_owned(), 5)]);
        assert_eq!(
            pb.segments,
            [ByteRange::new(10, 3)],
            "only #6, after the 10 bytes of #5"
        );
        let pc = plans[2].as_ref().expect("c");
        assert_eq!(
            pc.reused,
            [("s1".to_owned(), 6)],
            "same number, other bytes"
        );
        assert_eq!(pc.segments, [ByteRange::new(0, 4)]);
    }

    #[test]
    fn ranges_skip_left_out_chunks_and_empty_ones() {
        let a = [
            m("s1", 1, 0, 1),
            m("s1", 2, 8, 2),
            m("s1", 3, 4, 3),
            m("s1", 4, 6, 4),
            m("s1", 5, 0, 5),
        ];
        let dup3 = |_: &str, seq: u64, _: &str| {
            if seq == 3 { Seen::Duplicate } else { Seen::New }
        };
        let plans = plan([&a[..]], dup3);
        let p = plans[0].as_ref().expect("a");
        assert_eq!(p.segments, [ByteRange::new(0, 8), ByteRange::new(12, 6)]);
        assert_eq!(
            p.new.len(),
            4,
            "empty chunks are recorded, they add no range"
        );
    }
}
