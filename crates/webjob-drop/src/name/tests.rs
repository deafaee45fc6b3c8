//! Unit tests of `name`.

use super::*;
use argus_core::escape::Escaped;
use time::macros::datetime;

fn sel(clients: &[&str]) -> Selection {
    Selection::new(clients, DEFAULT_JOB).expect("selection")
}

fn ours<'a>(s: &Selection, stem: &'a [u8]) -> ParsedStem<'a> {
    match s.classify(stem) {
        StemMatch::Ours(p) => p,
        other => panic!("{}: {other:?}", Escaped(stem)),
    }
}

#[test]
fn all_middle_field_shapes_parse() {
    let s = sel(&["client1"]);
    let at = datetime!(2003-07-15 12:00:01 UTC);
    for (stem, middle) in [
        (&b"client1_20030715120001_harvest_argus"[..], None),
        (b"client1_20030715120001_4242_harvest_argus", Some("4242")),
        (
            b"client1_20030715120001_snapshot_harvest_argus",
            Some("snapshot"),
        ),
        (b"client1_20030715120001__harvest_argus", Some("")),
        (b"client1_20030715120001_a_b_c_harvest_argus", Some("a_b_c")),
    ] {
        let p = ours(&s, stem);
        assert_eq!((p.client, p.uploaded_at, p.middle), ("client1", at, middle));
        assert_eq!(p.stem.as_bytes(), stem);
    }
}

#[test]
fn client_ids_match_exactly() {
    let s = sel(&["client1"]);
    assert_eq!(
        s.classify(b"client10_20030715120001_harvest_argus"),
        StemMatch::OtherClient { client: "client10" }
    );
    assert_eq!(
        s.classify(b"client_1_20030715120001_harvest_argus"),
        StemMatch::OtherClient { client: "client_1" }
    );
    assert_eq!(
        s.classify(b"xclient1_20030715120001_harvest_argus"),
        StemMatch::OtherClient { client: "xclient1" }
    );
    let s = sel(&["host_east-2.dmz", "client10"]);
    assert_eq!(
        ours(&s, b"host_east-2.dmz_20030715120001_harvest_argus").client,
        "host_east-2.dmz"
    );
    assert_eq!(
        ours(&s, b"client10_20030715120001_harvest_argus").client,
        "client10"
    );
}

#[test]
fn globs_select_clients() {
    let s = sel(&["dmz-*", "client?"]);
    assert_eq!(
        ours(&s, b"dmz-a_b_20030715120001_harvest_argus").client,
        "dmz-a_b"
    );
    assert_eq!(
        ours(&s, b"client7_20030715120001_harvest_argus").client,
        "client7"
    );
    assert!(matches!(
        s.classify(b"client10_20030715120001_harvest_argus"),
        StemMatch::OtherClient { .. }
    ));
    let all = Selection::all(DEFAULT_JOB).expect("all");
    assert_eq!(
        ours(&all, b"a.b_20030715120001_harvest_argus").client,
        "a.b"
    );
}

#[test]
fn jobs_match_as_exact_suffix() {
    let s = sel(&["client1"]);
    assert_eq!(
        s.classify(b"client1_20030715120001_other_job"),
        StemMatch::OtherJob { client: "client1" }
    );
    assert_eq!(
        s.classify(b"client1_20030715120001_xharvest_argus"),
        StemMatch::OtherJob { client: "client1" }
    );
    assert_eq!(
        s.classify(b"client1_20030715120001_harvest_argus2"),
        StemMatch::OtherJob { client: "client1" }
    );
}

#[test]
fn hostile_and_broken_names() {
    let s = sel(&["client1"]);
    for not_upload in [
        &b""[..],
        b"README",
        b"client1",
        b"client1_2003071512000_harvest_argus",
        b"client1_200307151200011_harvest_argus",
        b"client1_20030715120001",
        b"_20030715120001_harvest_argus",
        b"../../etc/x",
        b"client1\xff_20030715120001_harvest_argus",
        b"\xff\xfe",
    ] {
        assert_eq!(
            s.classify(not_upload),
            StemMatch::NotUpload,
            "{}",
            Escaped(not_upload)
        );
    }
    let long = [b"a".repeat(65), b"_20030715120001_harvest_argus".to_vec()].concat();
    assert_eq!(
        Selection::all(DEFAULT_JOB).expect("all").classify(&long),
        StemMatch::NotUpload
    );
    let long = [b"a".repeat(300), b"_harvest_argus".to_vec()].concat();
    assert_eq!(s.classify(&long), StemMatch::NotUpload);
    assert_eq!(
        s.classify(b"client1_20031301120001_harvest_argus"),
        StemMatch::BadStamp { client: "client1" }
    );
    assert_eq!(
        s.classify(b"client1_20030715120001_\xff_harvest_argus"),
        StemMatch::NotText { client: "client1" }
    );
    assert_eq!(
        s.classify(b"client1_20030715120001_a\nb_harvest_argus"),
        StemMatch::NotText { client: "client1" }
    );
    let both = sel(&["a", "a_20030715120001"]);
    assert_eq!(
        both.classify(b"a_20030715120001_20030715120002_harvest_argus"),
        StemMatch::Ambiguous {
            clients: vec!["a", "a_20030715120001"]
        }
    );
    // With only one of them selected the name is clear.
    let a = sel(&["a"]);
    assert_eq!(
        ours(&a, b"a_20030715120001_20030715120002_harvest_argus").middle,
        Some("20030715120002")
    );
}

#[test]
fn part_names_split_at_the_extension() {
    assert_eq!(
        split_part_name(b"s_1.out"),
        Some((&b"s_1"[..], &b"out"[..]))
    );
    assert_eq!(
        split_part_name(b"a.b_1.rdy"),
        Some((&b"a.b_1"[..], &b"rdy"[..]))
    );
    assert_eq!(
        split_part_name(b"s.out.gz"),
        Some((&b"s"[..], &b"out.gz"[..]))
    );
    assert_eq!(split_part_name(b"s.gz"), Some((&b"s"[..], &b"gz"[..])));
    for none in [&b"noext"[..], b".out", b"s.", b"", b"s.out.", b"."] {
        assert_eq!(split_part_name(none), None, "{}", Escaped(none));
    }
}

#[test]
fn bad_configuration_is_refused() {
    for bad in [
        &[][..],
        &["client/1"],
        &["a b"],
        &["x".repeat(65).as_str()],
        &[""],
        &["[a"],
    ] {
        assert!(
            matches!(
                Selection::new(bad, DEFAULT_JOB),
                Err(Error::InvalidClient { .. })
            ),
            "{bad:?}"
        );
    }
    for job in ["", "a/b", "a b", "_x", "x\n"] {
        assert!(
            matches!(Selection::new(["c"], job), Err(Error::InvalidJob { .. })),
            "{job:?}"
        );
    }
    let s = Selection::new(["client1", "dmz-*"], "harvest.sh").expect("valid");
    assert_eq!(s.job(), "harvest.sh");
    assert_eq!(s.patterns(), ["client1", "dmz-*"]);
}
