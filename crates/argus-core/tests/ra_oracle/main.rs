//! A differential oracle for the walker: whatever it accepts, argus' own `ra` (3.0.8 for argus 3
//! data, 5.0.3 for both) reads record for record; wherever ra stops early or skips records, it
//! refuses, at the right offset. See `oracle.rs` for exactly what is compared, and how ra runs.
//!
//! The corpus: every committed sample of both versions (the damaged ones included) and mixed
//! concatenations of them; fresh data from both sensors (`argus -r`) of captures of many kinds of
//! traffic, and damaged variants of it; runs of zero bytes between records; and the fuzzers'
//! corpus under `fuzz/corpus/` when there is one.

#![allow(
    clippy::print_stderr,
    reason = "tests say loudly which checks they skip and quote the corpus size"
)]

mod damage;
mod oracle;
mod traffic;

use std::path::{Path, PathBuf};

use argus_core::codec::open_decoded;
use argus_core::record::{Version, walk};
use test_support::pcap::{argus_of_capture, capture_frames};
use test_support::tools::{argus5_prefix, have, in_ci};

use oracle::{Oracle, testdata};

/// Fails with every disagreement found, or prints the tally.
fn conclude(oracle: &Oracle, what: &str, found: &[String]) {
    eprintln!("{}", oracle.tally.line(what));
    assert!(
        found.is_empty(),
        "{} disagreements between the walker and ra:\n{}",
        found.len(),
        found
            .iter()
            .take(400)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The plain bytes of a committed sample (compressed ones decoded, as ra decodes them).
fn sample_bytes(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut open_decoded(path).expect("open"), &mut out).expect("read");
    out
}

fn samples() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in [testdata(""), testdata("argus5")] {
        for e in std::fs::read_dir(&dir).expect("testdata") {
            let path = e.expect("entry").path();
            if path.is_file() && path.extension().is_some_and(|x| x != "md") {
                all.push(path);
            }
        }
    }
    all.sort();
    all
}

#[test]
fn every_committed_sample_reads_as_ra_reads_it() {
    let Some(mut oracle) = Oracle::new("every_committed_sample_reads_as_ra_reads_it") else {
        return;
    };
    let mut found = Vec::new();
    for path in samples() {
        let name = path
            .strip_prefix(testdata(""))
            .unwrap_or(&path)
            .display()
            .to_string();
        found.extend(oracle.check(&name, &sample_bytes(&path)));
    }
    // Mixed files: argus 3 and argus 5 streams concatenated in either order, and a damaged
    // argus 3 chunk followed by an argus 5 one.
    let read = |n: &str| std::fs::read(testdata(n)).expect("sample");
    let mixes: [&[&str]; 4] = [
        &["hostA.argus", "argus5/hostC.argus"],
        &[
            "argus5/hostC.argus",
            "hostB.argus",
            "argus5/hostD.chunk1.argus",
        ],
        &["hostA.truncated.argus", "argus5/hostB.argus"],
        &["argus5/hostA.truncated.argus", "hostB.argus"],
    ];
    for parts in mixes {
        let bytes: Vec<u8> = parts.iter().flat_map(|n| read(n)).collect();
        found.extend(oracle.check(&parts.join("+"), &bytes));
    }
    conclude(&oracle, "committed samples and their mixes", &found);
}

/// Fresh argus data: each sensor present, with and without every optional DSR, over two
/// captures of every kind of traffic in `traffic.rs`.
fn fresh_data() -> Vec<(String, Vec<u8>)> {
    let mut sensors = Vec::new();
    if have("argus") {
        sensors.push(("argus3", PathBuf::from("argus")));
    }
    if let Some(p) = argus5_prefix("fresh_sensor_data_reads_as_ra_reads_it") {
        sensors.push(("argus5", p.join("sbin/argus")));
    }
    let captures = [(1_780_000_000, 40, 12), (1_780_100_000, 7, 40)];
    let options: [(&str, &[&str]); 2] = [
        ("plain", &["-S", "5", "-M", "10"]),
        (
            "options",
            &["-A", "-J", "-m", "-Z", "-U", "64", "-R", "-S", "5"],
        ),
    ];
    let mut out = Vec::new();
    for (sensor, bin) in &sensors {
        for (i, &(start, span, flows)) in captures.iter().enumerate() {
            let mut frames = traffic::mix(start, span, flows);
            // argus 5.0.3 dies of SIGSEGV on an IPv4 packet whose total length is below its
            // header length, leaving only its MAR/START behind; argus 3.0.8 reads it.
            if *sensor == "argus3" {
                frames.push(traffic::fatal_to_argus5(start + span + 1));
            }
            let pcap = capture_frames(&frames);
            for (opts, args) in options {
                let name = format!("{sensor}/mix-{i}/{opts}");
                match argus_of_capture(bin, args, &pcap) {
                    Ok(bytes) => out.push((name, bytes)),
                    Err(e) => panic!("{name}: the sensor failed: {e}"),
                }
            }
        }
    }
    out
}

#[test]
fn fresh_sensor_data_reads_as_ra_reads_it() {
    let Some(mut oracle) = Oracle::new("fresh_sensor_data_reads_as_ra_reads_it") else {
        return;
    };
    let fresh = fresh_data();
    let mut found = Vec::new();
    for (name, bytes) in &fresh {
        let report = walk(&bytes[..]).expect("walk");
        assert!(
            report.is_clean(),
            "{name}: a sensor wrote {:?}",
            report.walk
        );
        found.extend(oracle.check(name, bytes));
    }
    // Fresh streams of both versions one after another, and every damaged variant of each.
    let all: Vec<u8> = fresh.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    found.extend(oracle.check("all fresh data concatenated", &all));
    let mut cut_short = std::collections::BTreeSet::new();
    for (i, (name, bytes)) in fresh.iter().enumerate() {
        let next = &fresh[(i + 1) % fresh.len()].1;
        let first_of_its_version = cut_short.insert(bytes[0]);
        for (what, variant) in damage::variants(bytes, next, first_of_its_version) {
            found.extend(oracle.check(&format!("{name} {what}"), &variant));
        }
    }
    conclude(&oracle, "fresh sensor data and damaged variants", &found);
}

/// `bytes` with `zeros` zero bytes inserted at `at`.
fn with_zeros(bytes: &[u8], at: usize, zeros: usize) -> Vec<u8> {
    let mut v = bytes[..at].to_vec();
    v.resize(at + zeros, 0);
    v.extend_from_slice(&bytes[at..]);
    v
}

#[test]
fn runs_of_zeros_between_records_are_skipped_by_ra_and_the_walk_alike() {
    let Some(mut oracle) = Oracle::new("runs_of_zeros_between_records") else {
        return;
    };
    let mut found = Vec::new();
    let mut bases = vec![("hostA.argus", Version::V3)];
    if oracle.has_ra5() {
        bases.push(("argus5/hostA.argus", Version::V5));
    }
    for (name, version) in bases {
        let bytes = std::fs::read(testdata(name)).expect("sample");
        let report = walk(&bytes[..]).expect("walk");
        // After the MAR/START, in the middle, before the last record, and at the end.
        let inner = [
            128,
            688.min(bytes.len()),
            report
                .last_record
                .map_or(0, |o| usize::try_from(o).expect("offset")),
        ];
        for zeros in [4, 4096] {
            for at in inner.into_iter().chain([bytes.len()]) {
                let at = damage::boundary_at_or_after(&bytes, at);
                let v = with_zeros(&bytes, at, zeros);
                let r = walk(&v[..]).expect("walk");
                assert!(
                    r.is_clean(),
                    "{name} with {zeros} zeros at {at}: {:?}",
                    r.walk
                );
                assert_eq!(r.records, report.records);
                assert_eq!(r.zero_gaps.len(), 1);
                assert_eq!(
                    (r.zero_gaps[0].offset, r.zero_gaps[0].len),
                    (at as u64, zeros as u64)
                );
                assert_eq!(r.version, Some(version));
                found.extend(oracle.check(&format!("{name} + {zeros} zeros at {at}"), &v));
            }
        }
        // Refused: zeros before the first record, and runs that are not whole words.
        for (at, zeros) in [(0, 4), (0, 4096), (688, 2), (688, 6), (bytes.len(), 2)] {
            let at = damage::boundary_at_or_after(&bytes, at);
            let v = with_zeros(&bytes, at, zeros);
            assert!(
                !walk(&v[..]).expect("walk").is_clean(),
                "{zeros} zeros at {at}"
            );
            found.extend(oracle.check(&format!("{name} + {zeros} zeros at {at}"), &v));
        }
    }
    conclude(&oracle, "runs of zeros", &found);
}

#[test]
fn the_fuzzers_corpus_reads_as_ra_reads_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    if !root.is_dir() {
        eprintln!(
            "SKIPPED the_fuzzers_corpus_reads_as_ra_reads_it: no fuzz/corpus directory \
             (the oracle reads every file under it when there is one)"
        );
        return;
    }
    let Some(mut oracle) = Oracle::new("the_fuzzers_corpus_reads_as_ra_reads_it") else {
        return;
    };
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("read the corpus") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    // At most FUZZ_FILES, spread evenly over the sorted names, so that the oracle stays within
    // its time; ORACLE_FUZZ_FILES raises the bound.
    let max = std::env::var("ORACLE_FUZZ_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FUZZ_FILES);
    let step = files.len().div_ceil(max.max(1)).max(1);
    if step > 1 {
        eprintln!(
            "the fuzz corpus has {} files: reading every {step}th",
            files.len()
        );
    }
    let mut found = Vec::new();
    for path in files.iter().step_by(step) {
        let bytes = std::fs::read(path).expect("read");
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        found.extend(oracle.check(&name, &bytes));
    }
    conclude(&oracle, "the fuzz corpus", &found);
}

/// Files of the fuzz corpus read by default.
const FUZZ_FILES: usize = 400;

#[test]
fn ra_is_there_under_ci() {
    if in_ci() {
        assert!(Oracle::new("ra_is_there_under_ci").is_some_and(|o| o.has_ra5()));
    }
}
