//! Unit tests of the walker on synthetic records of both versions.

use super::*;
use crate::ranges::ByteRange;

fn mar_of(version: Version, cause: u8) -> Vec<u8> {
    let mut m = vec![0u8; 128];
    m[..4].copy_from_slice(&[0x80 | version.number(), cause << 4, 0x00, 0x20]);
    m[8..12].copy_from_slice(&version.cookie().to_be_bytes());
    m[32..36].copy_from_slice(&1_800_000_000u32.to_be_bytes());
    m
}

fn mar(cause: u8) -> Vec<u8> {
    mar_of(Version::V3, cause)
}

fn far_of(version: Version, dsrs: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = dsrs.concat();
    let words = u16::try_from((body.len() + 4) / 4).expect("small");
    let mut r = vec![0x10 | version.number(), 0x10];
    r.extend(words.to_be_bytes());
    r.extend(body);
    r
}

fn far(dsrs: &[&[u8]]) -> Vec<u8> {
    far_of(Version::V3, dsrs)
}

fn dsr(ty: u8, words: u8) -> Vec<u8> {
    let mut d = vec![ty, 0x01, 0x00, words];
    d.resize(usize::from(words) * 4, 0xaa);
    d
}

/// A MAR/START, two flow records (one with a 16-bit-length user data DSR) and a MAR/STOP.
fn stream_of(version: Version) -> Vec<u8> {
    let mut s = mar_of(version, 1);
    s.extend(far_of(
        version,
        &[&dsr(0x01, 3), &dsr(0x02, 5), &[0x81, 0, 0, 0]],
    ));
    s.extend(far_of(version, &[&[0x50, 0x90, 0x00, 0x02, 1, 2, 3, 4]]));
    s.extend(mar_of(version, 3));
    s
}

#[test]
fn clean_stream_in_any_slicing() {
    for version in Version::ALL {
        let s = stream_of(version);
        for step in [1, 2, 3, 5, 7, 64, 1000] {
            let mut w = Walker::new();
            for piece in s.chunks(step) {
                w.feed(piece);
            }
            let r = w.finish();
            assert_eq!(
                r.walk,
                Walk::Clean {
                    records: 4,
                    mars: 2,
                    bytes: s.len() as u64
                },
                "{version} step {step}"
            );
            assert_eq!(r.valid_len, s.len() as u64);
            assert_eq!(r.last_record, Some(s.len() as u64 - 128));
            assert_eq!(r.starts, 1);
            assert_eq!(r.mar_times, Some((1_800_000_000, 1_800_000_000)));
            assert_eq!(r.version, Some(version));
            assert_eq!(
                r.streams,
                [Stream {
                    offset: 0,
                    version,
                    records: 4,
                    mars: 2,
                    flows: 2
                }]
            );
        }
    }
}

#[test]
fn empty_is_clean() {
    let r = walk(&[][..]).expect("walk");
    assert_eq!(
        r.walk,
        Walk::Clean {
            records: 0,
            mars: 0,
            bytes: 0
        }
    );
    assert_eq!(r.last_record, None);
    assert_eq!(r.version, None);
    assert!(r.streams.is_empty());
}

#[test]
fn every_truncation_point_is_reported_exactly() {
    for version in Version::ALL {
        let s = stream_of(version);
        let boundaries = [0usize, 128, 128 + 40, 128 + 40 + 12, s.len()];
        for cut in 0..s.len() {
            let r = walk(&s[..cut]).expect("walk");
            let start = *boundaries.iter().rev().find(|&&b| b <= cut).expect("some");
            if cut == start {
                assert!(r.is_clean(), "cut {cut}: {}", r.walk);
            } else {
                match r.walk {
                    Walk::Truncated { offset, have, .. } => {
                        assert_eq!(offset, start as u64, "cut {cut}");
                        assert_eq!(have, (cut - start) as u64, "cut {cut}");
                    }
                    other => panic!("{version} cut {cut}: {other}"),
                }
            }
            assert_eq!(r.valid_len, start as u64, "cut {cut}");
        }
    }
}

#[test]
fn not_argus_is_refused_at_offset_zero_with_what_was_found() {
    let mut wrong_len = mar(1);
    wrong_len[3] = 0x21;
    for (name, data, found) in [
        ("status MAR first", mar(2), [0x83, 0x20, 0x00, 0x20]),
        ("wrong MAR length", wrong_len, [0x83, 0x10, 0x00, 0x21]),
        (
            "flow record first",
            far(&[&dsr(1, 3)]),
            [0x13, 0x10, 0x00, 0x04],
        ),
        ("text", b"Hostname=client1\nfoo=bar\n".to_vec(), *b"Host"),
        ("short text", b"Hello".to_vec(), *b"Hell"),
    ] {
        let r = walk(&data[..]).expect("walk");
        assert_eq!(
            r.walk,
            Walk::Corrupt {
                offset: 0,
                reason: Corruption::NotArgus { found }
            },
            "{name}"
        );
        assert!(r.walk.to_string().contains("not argus data"), "{name}");
    }
    // A little-endian cookie is accepted, as ra does, for both versions.
    for version in Version::ALL {
        let mut le = mar_of(version, 1);
        le[8..12].copy_from_slice(&version.cookie().to_le_bytes());
        let r = walk(&le[..]).expect("walk");
        assert!(r.is_clean());
        assert_eq!(r.version, Some(version));
    }
}

#[test]
fn other_versions_are_named() {
    // argus 2: its own header layout (cause INIT 0x01, length in bytes), cookie E5617ACB.
    let mut v2 = [0u8; 128];
    v2[..4].copy_from_slice(&[0x80, 0x01, 0x00, 0x80]);
    v2[8..12].copy_from_slice(&ARGUS_V2_COOKIE.to_be_bytes());
    let r = walk(&v2[..]).expect("walk");
    assert!(matches!(
        r.walk,
        Walk::Corrupt {
            offset: 0,
            reason: Corruption::Unsupported { .. }
        }
    ));
    assert_eq!(
        r.walk.to_string(),
        "corrupt at 0: argus 2 data (cookie E5617ACB) is not supported"
    );
    assert!(matches!(r.walk, Walk::Corrupt { reason, .. } if reason.is_foreign()));

    // A MAR/START of an unknown version and cookie, and the cookies of 3 and 5 swapped.
    let mut v4 = mar(1);
    v4[0] = 0x84;
    v4[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let text = walk(&v4[..]).expect("walk").walk.to_string();
    assert!(
        text.contains("record version 4 with cookie 12345678 is not supported"),
        "{text}"
    );
    let mut no_cookie = mar(1);
    no_cookie[8..12].fill(0);
    let text = walk(&no_cookie[..]).expect("walk").walk.to_string();
    assert!(text.contains("version 3 with cookie 00000000"), "{text}");
    let mut swapped = mar_of(Version::V5, 1);
    swapped[8..12].copy_from_slice(&ARGUS_V3_COOKIE.to_be_bytes());
    let text = walk(&swapped[..]).expect("walk").walk.to_string();
    assert!(
        text.contains("record version 5 with the cookie of argus 3"),
        "{text}"
    );
}

#[test]
fn broken_framing_is_corrupt_at_the_record() {
    let mut s = mar(1);
    s.extend([0x00, 0x00, 0x00, 0x01]);
    s.extend(mar(3));
    let r = walk(&s[..]).expect("walk");
    assert_eq!(
        r.walk,
        Walk::Corrupt {
            offset: 128,
            reason: Corruption::BadHeader([0, 0, 0, 1])
        }
    );
    assert_eq!(r.valid_len, 128);

    // DSR lengths that do not add up to the record length.
    let mut bad = mar(1);
    let mut rec = far(&[&dsr(0x01, 3)]);
    rec[3] += 1; // the record claims 4 more bytes than its DSRs fill
    rec.extend([0, 0, 0, 0]);
    bad.extend(rec);
    let r = walk(&bad[..]).expect("walk");
    assert_eq!(
        r.walk,
        Walk::Corrupt {
            offset: 128,
            reason: Corruption::BadDsr { at: 16 }
        }
    );
}

#[test]
fn records_of_a_type_ra_does_not_read_are_refused() {
    // ra 3.0.8 stops silently at an INDEX, AFLOW, DATASUP or ARCHIVAL record of argus 3 data;
    // ra 5.0.3 skips INDEX, DATASUP and ARCHIVAL records and reads AFLOW ones.
    for version in Version::ALL {
        for ty in 0..16u8 {
            let mut s = mar_of(version, 1);
            let mut rec = far_of(version, &[&dsr(0x01, 3)]);
            rec[0] = ty << 4 | version.number();
            s.extend(rec);
            s.extend(mar_of(version, 3));
            let read = match ty {
                kind::FLOW | kind::NETFLOW | kind::EVENT | kind::MAR => true,
                kind::AFLOW => version == Version::V5,
                _ => false,
            };
            for step in [1, s.len()] {
                let mut w = Walker::new();
                s.chunks(step).for_each(|piece| w.feed(piece));
                let r = w.finish();
                if read {
                    assert!(r.is_clean(), "{version} type {ty:x}: {:?}", r.walk);
                } else {
                    let h = [s[128], s[129], s[130], s[131]];
                    let reason = Corruption::BadHeader(h);
                    let offset = 128;
                    assert_eq!(r.walk, Walk::Corrupt { offset, reason }, "{version} {ty:x}");
                }
            }
        }
    }
}

#[test]
fn a_record_of_the_other_version_inside_a_stream_is_refused() {
    for (stream, other) in [(Version::V3, Version::V5), (Version::V5, Version::V3)] {
        // A flow record, a status MAR, and a MAR/START without the cookie.
        let mut no_cookie = mar_of(other, 1);
        no_cookie[8..12].fill(0);
        for (name, rec) in [
            ("flow", far_of(other, &[&dsr(1, 3)])),
            ("status", mar_of(other, 2)),
            ("start without cookie", no_cookie),
        ] {
            let mut s = mar_of(stream, 1);
            s.extend(&rec);
            for step in [1, 7, 4096] {
                let mut w = Walker::new();
                s.chunks(step).for_each(|p| w.feed(p));
                let r = w.finish();
                assert_eq!(
                    r.walk,
                    Walk::Corrupt {
                        offset: 128,
                        reason: Corruption::VersionMismatch {
                            stream,
                            header: [rec[0], rec[1], rec[2], rec[3]]
                        }
                    },
                    "{stream} then {other} {name}, step {step}"
                );
                assert_eq!(r.valid_len, 128);
            }
        }
        // A record of a version nobody knows.
        let mut s = mar_of(stream, 1);
        s.extend([0x14, 0x10, 0x00, 0x01]);
        let text = walk(&s[..]).expect("walk").walk.to_string();
        assert!(text.contains("a record of version 4"), "{text}");
    }
}

#[test]
fn concatenated_streams_of_either_version_are_listed() {
    for (a, b) in [
        (Version::V3, Version::V3),
        (Version::V3, Version::V5),
        (Version::V5, Version::V3),
        (Version::V5, Version::V5),
    ] {
        let mut s = stream_of(a);
        let second = s.len() as u64;
        s.extend(stream_of(b));
        for step in [1, 3, 128, 4096] {
            let mut w = Walker::new();
            s.chunks(step).for_each(|p| w.feed(p));
            let r = w.finish();
            assert!(r.is_clean(), "{a} then {b}: {}", r.walk);
            assert_eq!(r.starts, 2);
            assert_eq!(r.records, 8);
            assert_eq!(r.version, Some(b));
            let listed: Vec<(u64, Version, u64)> = r
                .streams
                .iter()
                .map(|s| (s.offset, s.version, s.records))
                .collect();
            assert_eq!(listed, [(0, a, 4), (second, b, 4)], "step {step}");
            assert!(r.has_version(a) && r.has_version(b));
        }
    }
}

#[test]
fn interface_mars_give_their_time_from_their_own_layout() {
    let mut s = mar_of(Version::V5, 1);
    // An argus 5 interface MAR: status, a 20-byte source id, start time, then `now` at 36.
    let mut inf = vec![0u8; 52];
    inf[..4].copy_from_slice(&[0x85, 0xa0, 0x00, 13]);
    inf[36..40].copy_from_slice(&1_800_000_100u32.to_be_bytes());
    s.extend(&inf);
    let r = walk(&s[..]).expect("walk");
    assert!(r.is_clean(), "{}", r.walk);
    assert_eq!(r.mars, 2);
    assert_eq!(r.mar_times, Some((1_800_000_000, 1_800_000_100)));
}

#[test]
fn the_stream_list_is_bounded() {
    let one = mar_of(Version::V5, 1);
    let n = STREAMS_LISTED + 10;
    let data: Vec<u8> = std::iter::repeat_n(&one[..], n)
        .flatten()
        .copied()
        .collect();
    let r = walk(&data[..]).expect("walk");
    assert!(r.is_clean());
    assert_eq!(r.starts, n as u64);
    assert_eq!(r.streams.len(), STREAMS_LISTED);
    assert!(r.streams.iter().all(|s| s.records == 1));
}

#[test]
fn runs_of_zeros_between_records_are_skipped_and_kept_as_gaps() {
    // What a power loss leaves: the file's size was journaled, its last blocks were not
    // written; a restarted argus appends a new stream behind them.
    let mut s = mar(1);
    s.extend(far(&[&dsr(0x01, 3)]));
    let gap = s.len() as u64;
    s.extend([0u8; 4096]);
    s.extend(mar(3));
    s.extend(far(&[&dsr(0x01, 3)]));
    s.extend([0u8; 8]);
    let end_gap = s.len() as u64 - 8;
    for piece in [1, 3, 7, 4096, s.len()] {
        let mut w = Walker::new();
        for part in s.chunks(piece) {
            w.feed(part);
        }
        let r = w.finish();
        assert!(r.is_clean(), "in pieces of {piece}: {}", r.walk);
        assert_eq!(r.records, 4, "in pieces of {piece}");
        assert_eq!(r.valid_len, s.len() as u64);
        assert_eq!(
            r.zero_gaps,
            [ByteRange::new(gap, 4096), ByteRange::new(end_gap, 8)],
            "in pieces of {piece}"
        );
    }
    // Records, reading the same bytes one record at a time, steps over the same gaps.
    let read: Vec<RecordInfo> = Records::new(&s[..])
        .collect::<io::Result<_>>()
        .expect("records");
    let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 128, gap + 4096, gap + 4096 + 128]);
    assert_eq!(read.iter().filter(|r| r.opens_stream).count(), 1);
    // Zeros inside a record are damage, as before.
    let mut inside = mar(1);
    let mut rec = far(&[&dsr(0x01, 3)]);
    for b in &mut rec[4..] {
        *b = 0;
    }
    inside.extend(rec);
    assert!(!walk(&inside[..]).expect("walk").is_clean());
    // A file that starts with zeros is not argus data.
    let mut zeros_first = vec![0u8; 128];
    zeros_first.extend(mar(1));
    assert!(!walk(&zeros_first[..]).expect("walk").is_clean());
}

/// Found by the `split` fuzz target: a 12-byte MAR/START with a cookie after a stream's header
/// opened a stream of its own, and the day splitter copied 128 bytes from it, past its end.
#[test]
fn a_short_mar_start_opens_no_stream() {
    let data = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/fuzz/split-short-mar-start.bin"
    ));
    let report = walk(&data[..]).expect("walk");
    assert!(report.is_clean(), "{:?}", report.walk);
    assert_eq!((report.records, report.starts), (2, 1));
    let records: Vec<RecordInfo> = Records::new(&data[..])
        .collect::<io::Result<_>>()
        .expect("records");
    assert_eq!(records.iter().filter(|r| r.opens_stream).count(), 1);
    let split = split::split_by_day(records);
    for piece in &split.pieces {
        for s in &piece.segments {
            assert!(s.offset + s.len <= data.len() as u64, "{s:?}");
        }
    }
}
