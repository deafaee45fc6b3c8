//! Damaged variants of a clean stream, each of a kind a disk, a network or a bad append makes:
//! cuts, a damaged chunk followed by a sound one, broken record headers of every kind, broken
//! DSRs, and zeros where they do not belong.

use argus_core::record::{Records, kind};

/// The offsets of the records of a clean stream.
fn records(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    Records::new(bytes)
        .map(|r| {
            let r = r.expect("a clean stream");
            let offset = usize::try_from(r.offset).expect("an offset");
            (offset, r.len as usize, r.kind)
        })
        .collect()
}

/// The first record boundary at or after `at` (the end of the stream if none).
pub(crate) fn boundary_at_or_after(bytes: &[u8], at: usize) -> usize {
    records(bytes)
        .into_iter()
        .map(|(o, _, _)| o)
        .find(|&o| o >= at)
        .unwrap_or(bytes.len())
}

/// Damaged variants of the clean stream `bytes`, named; `next` is another clean stream, to
/// follow a damaged one as the next chunk of a day file follows. `short_cut` adds the stream
/// cut inside its MAR/START, on which ra 3.0.8 and 5.0.3 spin until they are killed (so it is
/// worth reading once per version, not for every stream).
pub(crate) fn variants(bytes: &[u8], next: &[u8], short_cut: bool) -> Vec<(String, Vec<u8>)> {
    let recs = records(bytes);
    let mut out = Vec::new();
    let mut push = |what: String, v: Vec<u8>| out.push((what, v));
    let &(last, last_len, _) = recs.last().expect("records");
    // Cuts: inside the MAR/START, inside a header, inside the last record, on a boundary.
    for cut in [60, recs[3].0 + 2, last + last_len / 2, last] {
        if cut > 60 || short_cut {
            push(format!("cut at {cut}"), bytes[..cut].to_vec());
        }
        let mut v = bytes[..cut].to_vec();
        v.extend_from_slice(next);
        push(format!("cut at {cut} + next"), v);
    }
    // The header of a flow record in the middle: every type nibble, the other version, its
    // length one word short, one word long, zero and one word.
    let (at, len, _) = *recs
        .iter()
        .skip(recs.len() / 2)
        .find(|r| r.2 == kind::FLOW)
        .expect("a flow record");
    for ty in 0..16u8 {
        let mut v = bytes.to_vec();
        v[at] = ty << 4 | (v[at] & 0x0f);
        push(format!("type {ty:x} at {at}"), v);
    }
    for version in [3u8, 4, 5] {
        let mut v = bytes.to_vec();
        if v[at] & 0x0f != version {
            v[at] = (v[at] & 0xf0) | version;
            push(format!("version {version} at {at}"), v);
        }
    }
    let words = u16::try_from(len / 4).expect("a record length");
    for w in [words - 1, words + 1, 0, 1, 0xffff] {
        let mut v = bytes.to_vec();
        v[at + 2..at + 4].copy_from_slice(&w.to_be_bytes());
        push(format!("length {w} words at {at}"), v);
    }
    // Its first DSR: length zero, one word long, past the record; the MAR/START's cookie.
    for dsr_len in [0u8, 1, 0xff] {
        let mut v = bytes.to_vec();
        v[at + 7] = dsr_len;
        push(format!("first DSR of {dsr_len} words at {at}"), v);
    }
    let mut v = bytes.to_vec();
    v[8] ^= 0x01;
    push("a bad cookie".to_owned(), v);
    // A MAR/START in the middle of the stream (a restart appended without a cut).
    let mut v = bytes[..at].to_vec();
    v.extend_from_slice(&bytes[..128]);
    v.extend_from_slice(&bytes[at..]);
    push(format!("a MAR/START at {at}"), v);
    out
}
