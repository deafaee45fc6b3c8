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
use argus_core::record::{Corruption, Walk, Walker, walk, walk_with};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// True when `tool` can run. Missing tools skip loudly on a developer machine and fail under CI.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "{tool} is required under CI=true (apt-get install argus-client gzip bzip2 xz-utils)"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
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

fn walk_file(name: &str) -> argus_core::record::Report {
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

    // Header framing, as ra reads it, breaks at 41432: the partial 212-byte record at 41220
    // swallowed the first 20 bytes of hostB's MAR.
    let path = sample("hostA.truncated+hostB.concat.argus");
    let framing =
        walk_with(Walker::framing_only(), File::open(&path).expect("open")).expect("walk");
    assert_eq!(
        framing.walk,
        Walk::Corrupt {
            offset: 41432,
            reason: Corruption::BadHeader([0, 0, 0, 0])
        }
    );
    assert_eq!(framing.valid_len, 41432);
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

/// A gzip member larger than what is compressed in memory (streamed), between two small ones
/// (compressed whole), read back by the system's gzip.
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
