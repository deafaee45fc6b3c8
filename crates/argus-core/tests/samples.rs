//! argus-core against the real argus sample files and the system's own tools.

#![allow(
    clippy::print_stderr,
    reason = "tests say loudly which checks they skip"
)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use argus_core::append::{append_encoded, append_file};
use argus_core::codec::{Codec, Compression, open_decoded};
use argus_core::ranges::ByteRange;
use argus_core::record::{Corruption, Report, Version, Walk, Walker, walk, walk_with};
use test_support::tools::{argus5_prefix, have, ra5_flows};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// A new, empty day file opened for appending to.
fn new_day(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create")
}

/// What `TOOL -dc PATH` prints; the tool must succeed.
fn system_decoded(tool: &str, path: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .expect("run decompressor");
    assert!(out.status.success(), "{tool} -dc {} failed", path.display());
    out.stdout
}

fn walk_file(name: &str) -> Report {
    walk(File::open(sample(name)).expect("open sample")).expect("walk")
}

#[test]
fn walker_matches_the_documented_sample_facts() {
    let clean = [
        ("hostA.argus", 323, 3, 41560, 1),
        ("hostB.argus", 105, 3, 15248, 1),
        ("hostC.argus", 89, 2, 11260, 1),
        ("hostD.chunk1.argus", 55, 1, 4736, 1),
        ("hostD.chunk2.argus", 129, 3, 11472, 1),
        ("hostA+hostB.concat.argus", 428, 6, 56808, 2),
        ("mar-only.argus", 1, 1, 128, 1),
        ("empty.argus", 0, 0, 0, 0),
    ];
    for (name, records, mars, bytes, starts) in clean {
        let r = walk_file(name);
        assert_eq!(
            r.walk,
            Walk::Clean {
                records,
                mars,
                bytes
            },
            "{name}"
        );
        assert_eq!(r.valid_len, bytes, "{name}");
        assert_eq!(r.starts, starts, "{name}");
    }

    let r = walk_file("hostA.truncated.argus");
    assert_eq!(
        r.walk,
        Walk::Truncated {
            offset: 41220,
            need: 212,
            have: 192
        }
    );
    assert_eq!(r.valid_len, 41220);
    assert_eq!(r.records, 321);

    // Header framing, as ra reads it, loses step at 41432: the partial 212-byte record at 41220
    // swallowed the first 20 bytes of hostB's MAR. The zero word there is skipped (as ra skips
    // a zero word where a record starts) and the next one is no header of the stream.
    let path = sample("hostA.truncated+hostB.concat.argus");
    let framing =
        walk_with(Walker::framing_only(), File::open(&path).expect("open")).expect("walk");
    assert_eq!(
        framing.walk,
        Walk::Corrupt {
            offset: 41436,
            reason: Corruption::BadHeader([0x6b, 0x09, 0xbb, 0xfb])
        }
    );
    assert_eq!(framing.zero_gaps, [ByteRange::new(41432, 4)]);
    assert_eq!(framing.valid_len, 41436);
    // The default walk also checks the DSRs inside flow records and pins the damage on the
    // record that swallowed the next one, so a cut keeps no garbage record.
    let r = walk_file("hostA.truncated+hostB.concat.argus");
    assert_eq!(
        r.walk,
        Walk::Corrupt {
            offset: 41220,
            reason: Corruption::BadDsr { at: 204 }
        }
    );
    assert_eq!(r.valid_len, 41220);
    assert_eq!(r.records, 321);
}

#[test]
fn concat_chunks_split_at_the_walked_boundary() {
    // The second stream of the concatenation starts exactly where hostA ends.
    let r = walk_file("hostA.argus");
    assert_eq!(
        r.last_record,
        Some(41560 - 128),
        "hostA ends with its 128-byte MAR/STOP"
    );
    let (first, last) = r.mar_times.expect("hostA has MARs");
    assert!(
        first <= last && first > 1_700_000_000,
        "MAR times are Unix seconds"
    );
}

#[test]
fn compressed_samples_decode_to_the_plain_files() {
    for (packed, plain) in [
        ("hostB.argus.gz", "hostB.argus"),
        ("hostC.argus.bz2", "hostC.argus"),
        ("hostD.chunk2.argus.xz", "hostD.chunk2.argus"),
    ] {
        let mut out = Vec::new();
        open_decoded(&sample(packed))
            .expect("open")
            .read_to_end(&mut out)
            .expect("decode");
        assert_eq!(out, fs::read(sample(plain)).expect("read"), "{packed}");
        let (_, c) = Compression::split_suffix(packed);
        assert_ne!(c, Compression::None);
    }
}

/// Every codec and level, two appended members, read back by the system's own decompressor.
#[test]
fn appended_members_are_read_by_the_system_tools() {
    let tools = [
        (Compression::Gzip, "gzip"),
        (Compression::Bzip2, "bzip2"),
        (Compression::Xz, "xz"),
    ];
    let a = fs::read(sample("hostA.argus")).expect("read");
    let b = fs::read(sample("hostB.argus")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    for (c, tool) in tools {
        if !have(tool) {
            continue;
        }
        for level in c.levels() {
            let codec = Codec::new(c, level).expect("level");
            let path = dir.path().join(format!("day-{level}{}", c.suffix()));
            let day = new_day(&path);
            let first = append_encoded(&day, &a[..], codec).expect("first member");
            let second = append_encoded(&day, &b[..], codec).expect("second member");
            assert_eq!(second.size_before, first.written);
            let out = system_decoded(tool, &path);
            assert!(
                out.len() == a.len() + b.len()
                    && out[..a.len()] == a[..]
                    && out[a.len()..] == b[..],
                "{tool} level {level}: decoded bytes differ"
            );
        }
    }
}

/// gzip data larger than one member (written as several), between two small ones (one member
/// each), read back by the system's gzip.
#[test]
fn gzip_members_of_both_encoders_are_read_by_gzip() {
    if !have("gzip") {
        return;
    }
    let a = fs::read(sample("hostA.argus")).expect("read");
    let mut big = Vec::new();
    while big.len() <= argus_core::codec::GZIP_WHOLE_LIMIT {
        big.extend_from_slice(&a);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("day.gz");
    let day = new_day(&path);
    let codec = Compression::Gzip.codec();
    for part in [&a, &big, &a] {
        append_encoded(&day, &part[..], codec).expect("member");
    }
    let want: Vec<u8> = [&a[..], &big[..], &a[..]].concat();
    assert!(
        system_decoded("gzip", &path) == want,
        "decoded bytes differ"
    );
}

/// And the other way: members made by the system tools, read by our decoders.
#[test]
fn members_made_by_the_system_tools_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (c, tool) in [
        (Compression::Gzip, "gzip"),
        (Compression::Bzip2, "bzip2"),
        (Compression::Xz, "xz"),
    ] {
        if !have(tool) {
            continue;
        }
        let path = dir.path().join(format!("two{}", c.suffix()));
        let mut file = File::create(&path).expect("create");
        for name in ["hostC.argus", "hostD.chunk1.argus"] {
            let out = Command::new(tool)
                .args(["-c", "-6"])
                .arg(sample(name))
                .output()
                .expect("compress");
            assert!(out.status.success());
            file.write_all(&out.stdout).expect("write");
        }
        drop(file);
        let report = walk(open_decoded(&path).expect("open")).expect("walk");
        assert_eq!(
            report.walk,
            Walk::Clean {
                records: 89 + 55,
                mars: 3,
                bytes: 11260 + 4736
            },
            "{tool}"
        );
    }
}

/// `ra -r` reads a gzip day file built from two appended members, with every record of both.
#[test]
fn ra_reads_a_day_file_of_appended_gzip_members() {
    if !have("ra") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("host_20261127.gz");
    let day = new_day(&path);
    for name in ["hostA.argus", "hostB.argus"] {
        let src = File::open(sample(name)).expect("open");
        append_encoded(&day, src, Compression::Gzip.codec()).expect("append");
    }
    let records = |p: &Path| {
        let out = Command::new("ra")
            .args(["-n", "-L", "-1", "-r"])
            .arg(p)
            .output()
            .expect("run ra");
        assert!(out.status.success(), "ra failed on {}", p.display());
        out.stdout.iter().filter(|&&b| b == b'\n').count()
    };
    assert_eq!(records(&path), 323 + 105);

    // The plain path too: copy_file_range appends read by ra.
    let plain = dir.path().join("host_20261127");
    let day = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&plain)
        .expect("create");
    for name in ["hostD.chunk1.argus", "hostD.chunk2.argus"] {
        append_file(&day, &File::open(sample(name)).expect("open")).expect("append");
    }
    assert_eq!(records(&plain), 55 + 129);
}

// ---------------------------------------------------------------------------------------------
// argus 5 (testdata/argus5) and mixed argus 3 / argus 5 data.

fn sample5(name: &str) -> PathBuf {
    sample("argus5").join(name)
}

fn walk_file5(name: &str) -> Report {
    walk(File::open(sample5(name)).expect("open sample")).expect("walk")
}

fn flows(r: &Report) -> u64 {
    r.streams.iter().map(|s| s.flows).sum()
}

#[test]
fn walker_matches_the_documented_argus5_facts() {
    // name, records, MARs, flows, bytes, stream offsets
    type Facts = (&'static str, u64, u64, u64, u64, &'static [u64]);
    let clean: [Facts; 9] = [
        ("hostA.argus", 323, 3, 320, 42576, &[0]),
        ("hostB.argus", 104, 3, 101, 15276, &[0]),
        ("hostC.argus", 88, 1, 87, 12144, &[0]),
        ("hostC.options.argus", 88, 1, 87, 23780, &[0]),
        ("hostD.chunk1.argus", 54, 1, 53, 4872, &[0]),
        ("hostD.chunk2.argus", 130, 3, 127, 11480, &[0]),
        ("hostA+hostB.concat.argus", 427, 6, 421, 57852, &[0, 42576]),
        ("mar-only.argus", 1, 1, 0, 128, &[0]),
        ("empty.argus", 0, 0, 0, 0, &[]),
    ];
    for (name, records, mars, flow_count, bytes, offsets) in clean {
        let r = walk_file5(name);
        assert_eq!(
            r.walk,
            Walk::Clean {
                records,
                mars,
                bytes
            },
            "{name}"
        );
        assert_eq!(flows(&r), flow_count, "{name}");
        let streams: Vec<(u64, Version)> =
            r.streams.iter().map(|s| (s.offset, s.version)).collect();
        let want: Vec<(u64, Version)> = offsets.iter().map(|&o| (o, Version::V5)).collect();
        assert_eq!(streams, want, "{name}");
        assert_eq!(r.starts, offsets.len() as u64, "{name}");
    }

    let r = walk_file5("hostA.truncated.argus");
    assert_eq!(
        r.walk,
        Walk::Truncated {
            offset: 42368,
            need: 80,
            have: 60
        }
    );
    assert_eq!((r.valid_len, r.records), (42368, 321));

    let path = sample5("hostA.truncated+hostB.concat.argus");
    let framing =
        walk_with(Walker::framing_only(), File::open(&path).expect("open")).expect("walk");
    assert_eq!(
        framing.walk,
        Walk::Corrupt {
            offset: 42448,
            reason: Corruption::BadHeader([0, 0, 0, 1])
        }
    );
    let r = walk_file5("hostA.truncated+hostB.concat.argus");
    assert_eq!(
        r.walk,
        Walk::Corrupt {
            offset: 42368,
            reason: Corruption::BadDsr { at: 64 }
        }
    );
    assert_eq!((r.valid_len, r.records), (42368, 321));
    assert_eq!(r.version, Some(Version::V5));
}

#[test]
fn compressed_argus5_samples_decode_to_the_plain_files() {
    for (packed, plain) in [
        ("hostB.argus.gz", "hostB.argus"),
        ("hostC.argus.bz2", "hostC.argus"),
        ("hostD.chunk2.argus.xz", "hostD.chunk2.argus"),
    ] {
        let r = walk(open_decoded(&sample5(packed)).expect("open")).expect("walk");
        assert_eq!(r, walk_file5(plain), "{packed}");
    }
}

/// argus 3 then argus 5 and the other way round (a sensor upgraded during the day, a fleet's
/// day files): two clean streams, each with its version and counts.
type Mixed = (&'static str, Vec<u8>, [(Version, u64, u64); 2]);

fn mixed() -> [Mixed; 2] {
    let a3 = fs::read(sample("hostA.argus")).expect("read");
    let b5 = fs::read(sample5("hostB.argus")).expect("read");
    let a5 = fs::read(sample5("hostA.argus")).expect("read");
    let b3 = fs::read(sample("hostB.argus")).expect("read");
    [
        (
            "3+5",
            [&a3[..], &b5[..]].concat(),
            [(Version::V3, 323, 320), (Version::V5, 104, 101)],
        ),
        (
            "5+3",
            [&a5[..], &b3[..]].concat(),
            [(Version::V5, 323, 320), (Version::V3, 105, 102)],
        ),
    ]
}

#[test]
fn concatenations_of_argus3_and_argus5_walk_as_two_streams() {
    for (name, data, want) in mixed() {
        for step in [1usize, 100, 4096, 1 << 20] {
            let mut w = Walker::new();
            data.chunks(step).for_each(|p| w.feed(p));
            let r = w.finish();
            assert!(r.is_clean(), "{name}: {}", r.walk);
            let got: Vec<(Version, u64, u64)> = r
                .streams
                .iter()
                .map(|s| (s.version, s.records, s.flows))
                .collect();
            assert_eq!(got, want, "{name}, step {step}");
            assert_eq!(r.version, Some(want[1].0));
        }
    }
    // A truncated argus 3 chunk followed by an argus 5 one is damaged at the cut record, as
    // with one version.
    let mut data = fs::read(sample("hostA.truncated.argus")).expect("read");
    data.extend(fs::read(sample5("hostB.argus")).expect("read"));
    let r = walk(&data[..]).expect("walk");
    assert!(
        matches!(r.walk, Walk::Corrupt { offset: 41220, .. }),
        "{}",
        r.walk
    );
}

/// The 5.0.3 `ra` reads everything the walker accepts: every clean argus 5 sample, both mixed
/// concatenations, and a gzip day file of argus 3 then argus 5 members, with the walker's flow
/// counts.
#[test]
fn ra5_reads_what_the_walker_accepts() {
    let Some(prefix) = argus5_prefix("ra5_reads_what_the_walker_accepts") else {
        return;
    };
    for name in [
        "hostA.argus",
        "hostB.argus",
        "hostC.argus",
        "hostC.options.argus",
        "hostD.chunk1.argus",
        "hostD.chunk2.argus",
        "hostA+hostB.concat.argus",
        "hostB.argus.gz",
        "hostC.argus.bz2",
    ] {
        let r = walk(open_decoded(&sample5(name)).expect("open")).expect("walk");
        assert_eq!(ra5_flows(&prefix, &sample5(name)), flows(&r), "{name}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, data, want) in mixed() {
        let path = dir.path().join(name);
        fs::write(&path, &data).expect("write");
        assert_eq!(ra5_flows(&prefix, &path), want[0].2 + want[1].2, "{name}");
    }
    let day = dir.path().join("host_20261201.gz");
    let file = new_day(&day);
    for path in [sample("hostA.argus"), sample5("hostB.argus")] {
        append_encoded(
            &file,
            File::open(path).expect("open"),
            Compression::Gzip.codec(),
        )
        .expect("append");
    }
    assert_eq!(ra5_flows(&prefix, &day), 320 + 101);
}

/// A fresh capture by argus 5 with every optional DSR (`-A -J -m -Z -U 64 -R`) walks clean,
/// with as many flows as `ra` 5 prints; so does argus 3's (Debian's argus) of the same packets.
#[test]
fn captures_with_every_optional_dsr_walk_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sensors: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    if let Some(prefix) = argus5_prefix("captures_with_every_optional_dsr_walk_clean") {
        sensors.push((prefix.join("sbin/argus"), Some(prefix)));
    }
    if Path::new("/usr/sbin/argus").exists() {
        sensors.push((PathBuf::from("/usr/sbin/argus"), None));
    } else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "argus is required under CI=true (apt-get install argus-server)"
        );
        eprintln!("SKIPPED: argus 3 is not installed");
    }
    for (i, (argus, ra5)) in sensors.into_iter().enumerate() {
        let out = dir.path().join(format!("options{i}.argus"));
        let status = Command::new(&argus)
            .args([
                "-X", "-A", "-J", "-m", "-Z", "-U", "64", "-R", "-e", "\"optn\"", "-r",
            ])
            .arg(sample5("hostC.pcap"))
            .arg("-w")
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .expect("run argus");
        assert!(status.success(), "{} failed", argus.display());
        let r = walk(File::open(&out).expect("open")).expect("walk");
        assert!(r.is_clean(), "{}: {}", argus.display(), r.walk);
        assert_eq!(flows(&r), 87, "{}", argus.display());
        let version = if ra5.is_some() {
            Version::V5
        } else {
            Version::V3
        };
        assert_eq!(r.version, Some(version));
        if let Some(prefix) = ra5 {
            assert_eq!(ra5_flows(&prefix, &out), flows(&r));
        }
    }
}
