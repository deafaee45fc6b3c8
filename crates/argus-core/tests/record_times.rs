//! Record by record, with start times: `Records` reads every record the walker counts, and the
//! start time of every flow record is the one argus' own `ra -u -s stime` prints, for the real
//! argus 3 samples (Debian's `ra`) and the argus 5 samples and mixed files (argus 5.0.3's `ra`).

use std::path::{Path, PathBuf};

use argus_core::record::{Records, kind, walk};
use test_support::tools::{argus5_prefix, have, ra_flows, seconds};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// The start seconds `ra` prints for each flow record of `file`, in order.
fn ra_stimes(ra: &Path, file: &Path) -> Vec<u32> {
    ra_flows(ra, file, &["stime"])
        .iter()
        .map(|f| u32::try_from(seconds(&f[0])).expect("a time after 1970"))
        .collect()
}

fn check(ra: &Path, file: &Path) {
    let bytes = std::fs::read(file).expect("read");
    let report = walk(&bytes[..]).expect("walk");
    assert!(report.is_clean(), "{}: {report:?}", file.display());
    let records: Vec<_> = Records::new(&bytes[..])
        .collect::<Result<_, _>>()
        .expect("records");
    assert_eq!(records.len() as u64, report.records, "{}", file.display());
    let ends = records.last().map_or(0, |r| r.offset + u64::from(r.len));
    assert_eq!(
        ends,
        bytes.len() as u64,
        "{}: the records cover the file",
        file.display()
    );
    assert_eq!(
        records.iter().filter(|r| r.opens_stream).count(),
        report.streams.len(),
        "{}",
        file.display()
    );
    let ours: Vec<u32> = records
        .iter()
        .filter(|r| r.kind == kind::FLOW)
        .map(|r| r.time.expect("a flow record has a time DSR"))
        .collect();
    assert_eq!(ours, ra_stimes(ra, file), "{}", file.display());
    assert!(
        records
            .iter()
            .filter(|r| r.kind == kind::MAR)
            .all(|r| r.time.is_some()),
        "every MAR has its time"
    );
}

#[test]
fn flow_start_times_are_the_ones_ra_prints_for_argus3_data() {
    if !have("ra") {
        return;
    }
    for name in [
        "hostA.argus",
        "hostB.argus",
        "hostC.argus",
        "hostA+hostB.concat.argus",
        "mar-only.argus",
    ] {
        check(Path::new("ra"), &testdata(name));
    }
}

#[test]
fn flow_start_times_are_the_ones_ra_prints_for_argus5_and_mixed_data() {
    let Some(prefix) =
        argus5_prefix("flow_start_times_are_the_ones_ra_prints_for_argus5_and_mixed_data")
    else {
        return;
    };
    let ra5 = prefix.join("bin/ra");
    for name in [
        "argus5/hostA.argus",
        "argus5/hostC.argus",
        "argus5/hostC.options.argus",
        "argus5/hostD.chunk1.argus",
        "argus5/hostA+hostB.concat.argus",
    ] {
        check(&ra5, &testdata(name));
    }
    // argus 3 then argus 5, in one file: two streams, each record in its own.
    let dir = tempfile::tempdir().expect("tempdir");
    let mixed = dir.path().join("mixed.argus");
    let mut bytes = std::fs::read(testdata("hostA.argus")).expect("v3");
    bytes.extend(std::fs::read(testdata("argus5/hostC.argus")).expect("v5"));
    std::fs::write(&mixed, &bytes).expect("write");
    check(&ra5, &mixed);
    let streams: Vec<u32> = Records::new(&bytes[..])
        .map(|r| r.expect("record").stream)
        .collect();
    assert_eq!(streams.first(), Some(&0));
    assert_eq!(streams.last(), Some(&1));
}

#[test]
fn a_record_cut_short_is_an_error_not_a_guess() {
    let bytes = std::fs::read(testdata("hostA.argus")).expect("read");
    let cut = &bytes[..bytes.len() - 3];
    let last = Records::new(cut).last().expect("something");
    let e = last.expect_err("cut short");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(
        Records::new(&b"not argus data at all"[..])
            .next()
            .expect("one")
            .is_err()
    );
}
