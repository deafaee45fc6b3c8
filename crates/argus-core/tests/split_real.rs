//! Splitting real argus data by day: a capture whose packets cross midnight, turned into argus
//! data by Debian's argus 3 and by argus 5.0.3 (`argus -r`), split with `record::split`; each
//! piece, read alone by that version's `ra`, holds exactly the flows that started on its day,
//! and together they hold every flow once.

use std::net::Ipv4Addr;
use std::path::Path;

use argus_core::record::split::{day_of, split_by_day};
use argus_core::record::{Records, walk};
use test_support::pcap::{Datagram, argus_of};
use test_support::tools::{argus5_prefix, have, ra_flows, seconds};

/// 2026-06-01 00:00:00 UTC: far from the day the tests run, whose wall clock argus' MARs carry
/// when it reads a capture.
const MIDNIGHT: u32 = 1_780_272_000;

fn datagrams() -> Vec<Datagram> {
    (0u8..40)
        .map(|i| Datagram {
            at: (MIDNIGHT - 120 + u32::from(i) * 6, 0),
            src: Ipv4Addr::new(10, 0, 0, i + 1),
            dst: Ipv4Addr::new(10, 1, 0, 1),
            sport: 40_000 + u16::from(i),
            dport: 53,
        })
        .collect()
}

/// `ra`'s start seconds of the flows of `file`.
fn stimes(ra: &Path, file: &Path) -> Vec<u32> {
    ra_flows(ra, file, &["stime"])
        .iter()
        .map(|f| u32::try_from(seconds(&f[0])).expect("a time after 1970"))
        .collect()
}

fn split_checked(argus: &Path, ra: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("midnight.argus");
    std::fs::write(&data, argus_of(argus, &datagrams()).expect("argus -r")).expect("write");
    let bytes = std::fs::read(&data).expect("argus data");
    assert!(walk(&bytes[..]).expect("walk").is_clean());
    let all = stimes(ra, &data);
    assert_eq!(all.len(), 40, "{}: one flow per datagram", argus.display());

    let records: Vec<_> = Records::new(&bytes[..])
        .collect::<Result<_, _>>()
        .expect("records");
    let split = split_by_day(records.iter().copied());
    let (before, after) = (day_of(MIDNIGHT - 1), day_of(MIDNIGHT));
    let mut seen = Vec::new();
    for piece in &split.pieces {
        let mut piece_bytes = Vec::new();
        for s in &piece.segments {
            let at = usize::try_from(s.offset).expect("offset");
            let len = usize::try_from(s.len).expect("len");
            piece_bytes.extend_from_slice(&bytes[at..at + len]);
        }
        assert!(
            walk(&piece_bytes[..]).expect("walk").is_clean(),
            "a piece is argus data on its own"
        );
        let file = dir.path().join(format!("piece-{}", piece.day));
        std::fs::write(&file, &piece_bytes).expect("piece");
        let times = stimes(ra, &file);
        assert!(
            times.iter().all(|&t| day_of(t) == piece.day),
            "{}: every flow of {} started that day: {times:?}",
            argus.display(),
            piece.day
        );
        if [before, after].contains(&piece.day) {
            assert!(
                !times.is_empty(),
                "ra reads the piece of {} from its first byte",
                piece.day
            );
        }
        seen.extend(times);
    }
    seen.sort_unstable();
    let mut want = all.clone();
    want.sort_unstable();
    assert_eq!(seen, want, "every flow once, across the pieces");
    let records_filed: u64 = split.pieces.iter().map(|p| p.records).sum();
    assert_eq!(records_filed, records.len() as u64, "every record once");
    let days: Vec<_> = split.pieces.iter().map(|p| p.day).collect();
    assert!(days.contains(&before) && days.contains(&after), "{days:?}");
}

#[test]
fn argus3_data_across_midnight_splits_into_days_ra_reads_alone() {
    if !have("ra") || !Path::new("/usr/sbin/argus").exists() {
        assert!(
            !test_support::tools::in_ci(),
            "argus and ra are required under CI"
        );
        return;
    }
    split_checked(Path::new("/usr/sbin/argus"), Path::new("ra"));
}

#[test]
fn argus5_data_across_midnight_splits_into_days_ra_reads_alone() {
    let Some(prefix) = argus5_prefix("argus5_data_across_midnight_splits_into_days_ra_reads_alone")
    else {
        return;
    };
    split_checked(&prefix.join("sbin/argus"), &prefix.join("bin/ra"));
}
