//! Unit tests of the MAR reader: every MAR of the committed samples decodes to exactly what
//! argus' own `ra` prints for it, and damaged or foreign records give typed errors.
//!
//! `ra` prints a MAR through the names of flow fields. Which field shows what was found by
//! printing MARs whose every field held a distinct value (see `field_mapping_*` below):
//!
//! | `ra -s` | MAR field | notes |
//! |---|---|---|
//! | `srcid` | source id | |
//! | `stime` | `now` in Debian's 3.0.8 `ra`, `startime` in 5.0.3's | 3.0.8 swaps them |
//! | `ltime` | `startime` in 3.0.8, `now` in 5.0.3 | |
//! | `seq` | `nextMrSequenceNum` | |
//! | `pkts`, `spkts` | `pktsRcvd` | |
//! | `sbytes` | `bytesRcvd` | |
//! | `dpkts` | `records` | |
//! | `trans` | `flows` | 5.0.3 only; 3.0.8 prints nothing |
//! | `sport`, `dbytes`, `loss` | `dropped` | |
//! | `saddr`, `snet`, `dappbytes` | `queue` | also `dnet` in 3.0.8 |
//! | `daddr`, `sappbytes` | `bufs` | |
//! | `dport` | `clients` | also `dnet` in 5.0.3 |
//! | `bytes`, `appbytes` | `bytes` (memory) | |
//! | `state` | cause: `STA`, `CON`, `STP`, `ERR` | |
//!
//! No field shows `output`, `drift`, `interfaces`, `fallow`, the intervals, `localnet`,
//! `netmask`, the versions or the interface type and status; those are checked against the
//! bytes (`xxd -s OFFSET -l 128 FILE`).
//!
//! Both commands need a rc file with `RA_PRINT_MAN_RECORDS=yes` (here `man.rc`):
//!
//! ```text
//! printf 'RA_PRINT_MAN_RECORDS=yes\n' > man.rc
//! V3="srcid stime ltime seq spkts sbytes dpkts sport saddr daddr dport bytes state"
//! ra -X -F man.rc -n -u -c , -s $V3 -r FILE - man                    # Debian's ra 3.0.8
//! V5="srcid stime ltime seq spkts sbytes dpkts trans sport saddr daddr dport bytes state"
//! $ARGUS5/bin/ra -X -F man.rc -n -u -c , -s $V5 -r argus5/mar-only.argus FILE - man
//! ```
//!
//! run in `crates/argus-core/testdata`. 5.0.3's `ra` never prints the MAR/START of the first
//! file it reads, so a MAR-only file goes first; its START is the one swallowed.

use super::*;
use crate::record::Records;

/// The MARs of a stream, each as the whole record bytes.
fn mars(data: &[u8]) -> Vec<&[u8]> {
    Records::new(data)
        .map(|r| r.expect("a clean sample"))
        .filter(|r| r.kind == kind::MAR)
        .map(|r| {
            let at = usize::try_from(r.offset).expect("small");
            &data[at..at + r.len as usize]
        })
        .collect()
}

/// `ra`'s `state` column for a MAR.
fn state(cause: MarCause) -> &'static str {
    match cause {
        MarCause::Start => "STA",
        MarCause::Status => "CON",
        MarCause::Stop => "STP",
        MarCause::Error => "ERR",
        _ => "?",
    }
}

/// A MAR rendered as a line of the 3.0.8 command in the module docs.
fn v3_line(m: &Mar) -> String {
    let r = m.report().expect("a report");
    let c = &r.counters;
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{}",
        m.source_id,
        m.now,
        m.start,
        r.sequence,
        c.pkts_rcvd,
        c.bytes_rcvd,
        c.records,
        c.dropped,
        c.queue,
        c.bufs,
        c.clients,
        c.bytes,
        state(m.cause)
    )
}

/// A MAR rendered as a line of the 5.0.3 command in the module docs.
fn v5_line(m: &Mar) -> String {
    let r = m.report().expect("a report");
    let c = &r.counters;
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        m.source_id,
        m.start,
        m.now,
        r.sequence,
        c.pkts_rcvd,
        c.bytes_rcvd,
        c.records,
        c.flows,
        c.dropped,
        c.queue,
        c.bufs,
        c.clients,
        c.bytes,
        state(m.cause)
    )
}

fn check(data: &[u8], version: Version, ra: &[&str]) -> Vec<Mar> {
    let decoded: Vec<Mar> = mars(data)
        .into_iter()
        .map(|r| decode_mar(r).expect("decodes"))
        .collect();
    let lines: Vec<String> = decoded
        .iter()
        .map(|m| {
            assert_eq!(m.version, version);
            match version {
                Version::V3 => v3_line(m),
                Version::V5 => v5_line(m),
            }
        })
        .collect();
    assert_eq!(lines, ra);
    decoded
}

macro_rules! sample {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/", $name)).as_slice()
    };
}

#[test]
fn argus3_samples_decode_as_ra_3_0_8_prints_them() {
    let a = check(
        sample!("hostA.argus"),
        Version::V3,
        &[
            "hstA,1795800046.479630,1795800046.476705,0,0,0,0,0,0,0,0,0,STA",
            "hstA,1795800056.184163,1795800046.476705,103,1044,98991,103,0,0,304,1,11397588,CON",
            "hstA,1795800059.302374,1795800056.084058,0,0,0,218,0,0,133,1,11608676,STP",
        ],
    );
    check(
        sample!("hostB.argus"),
        Version::V3,
        &[
            "hstB,1795800059.325818,1795800059.315635,0,0,0,0,0,0,0,0,0,STA",
            "hstB,1795800069.130738,1795800059.315635,38,528,91458,38,0,0,119,1,11084668,CON",
            "hstB,1795800071.946966,1795800069.030606,0,0,0,65,0,0,43,1,11136044,STP",
        ],
    );
    check(
        sample!("hostC.argus"),
        Version::V3,
        &[
            "127.0.0.3,1795800079.871552,1795800079.870541,0,0,0,0,0,0,0,0,0,STA",
            "127.0.0.3,1795800080.876732,1795800079.870541,0,0,0,88,0,0,81,1,11153228,STP",
        ],
    );
    check(
        sample!("hostD.chunk1.argus"),
        Version::V3,
        &["4004,1795800080.882071,1795800080.881406,0,0,0,0,0,0,0,0,0,STA"],
    );
    let d = check(
        sample!("hostD.chunk2.argus"),
        Version::V3,
        &[
            "4004,1795800087.185021,1795800080.881406,55,0,0,0,0,0,0,0,0,STA",
            "4004,1795800090.184936,1795800080.881406,114,160,28828,114,0,0,189,1,11207724,CON",
            "4004,1795800094.705740,1795800090.085015,0,0,0,67,0,0,25,1,11249672,STP",
        ],
    );
    check(
        sample!("mar-only.argus"),
        Version::V3,
        &["hstB,1795800059.325818,1795800059.315635,0,0,0,0,0,0,0,0,0,STA"],
    );

    // Typed ids; the string is stored byte-swapped (`Atsh`) and read back as ra reads it.
    assert_eq!(a[0].source_id, SourceId::Str(*b"hstA"));
    assert_eq!(a[2].source_id, SourceId::Str(*b"hstA"));
    assert_eq!(d[1].source_id, SourceId::Int(4004));
    // What no ra field shows, from the bytes: `xxd -s 13348 -l 128 hostA.argus` (the STATUS).
    let r = a[1].report().expect("report");
    assert_eq!((r.major_version, r.minor_version), (3, 0));
    assert_eq!((r.interface_type, r.interface_status), (1, 0));
    assert_eq!((r.flow_status_interval, r.mar_interval), (5, 10));
    assert_eq!(r.status, 0x0020_0000);
    let c = r.counters;
    assert_eq!((c.drift, c.interfaces, c.fallow), (Some(0), None, None));
    assert_eq!((c.flows, c.output), (0, 0), "5.0.3's ra prints trans 0 too");
    // The MAR/START of hostD.chunk2 (written after a rotation) knows the local network.
    let r = d[0].report().expect("report");
    assert_eq!(r.localnet, Ipv4Addr::new(127, 0, 0, 0));
    assert_eq!(r.netmask, Ipv4Addr::new(255, 0, 0, 0));
    assert_eq!(
        a[1].now.to_datetime().map(|t| t.unix_timestamp_nanos()),
        Some(1_795_800_056_184_163_000)
    );
}

#[test]
fn argus5_samples_decode_as_ra_5_0_3_prints_them() {
    let a = check(
        sample!("argus5/hostA.argus"),
        Version::V5,
        &[
            ",1796127804.347553,1796127804.348701,1,0,0,0,0,0,0,0,0,0,STA",
            ",1796127804.347553,1796127814.150444,104,1056,100300,103,273,0,170,323,1,153737084,CON",
            ",1796127814.150447,1796127824.161094,321,184,17704,217,47,0,0,361,1,153814048,CON",
        ],
    );
    check(
        sample!("argus5/hostB.argus"),
        Version::V5,
        &[
            ",1796127826.983224,1796127826.984173,1,0,0,0,0,0,0,0,0,0,STA",
            ",1796127826.983224,1796127836.185360,32,496,85325,31,83,0,52,121,1,153305164,CON",
            ",1796127836.185361,1796127846.196046,102,106,21503,70,18,0,0,125,1,153311960,CON",
        ],
    );
    let c = check(
        sample!("argus5/hostC.argus"),
        Version::V5,
        &["127.0.0.3,1796127857.394746,1796127857.395671,1,0,0,0,0,0,0,0,0,0,STA"],
    );
    check(
        sample!("argus5/hostC.options.argus"),
        Version::V5,
        &[",1796131089.106835,1796131089.107433,1,0,0,0,0,0,0,0,0,0,STA"],
    );
    check(
        sample!("argus5/hostD.chunk1.argus"),
        Version::V5,
        &["4004,1796127857.782116,1796127857.783148,1,0,0,0,0,0,0,0,0,0,STA"],
    );
    let d = check(
        sample!("argus5/hostD.chunk2.argus"),
        Version::V5,
        &[
            "4004,1796127857.782116,1796127864.384267,55,0,0,0,0,0,0,0,0,0,STA",
            "4004,1796127857.782116,1796127867.184314,119,162,29103,118,162,0,44,205,1,153488956,CON",
            "4004,1796127867.184316,1796127877.198095,181,18,3233,62,18,0,0,223,1,153528124,CON",
        ],
    );
    check(
        sample!("argus5/mar-only.argus"),
        Version::V5,
        &[",1796127826.983224,1796127826.984173,1,0,0,0,0,0,0,0,0,0,STA"],
    );

    // 5.0.3 writes string ids as zeros: typed as a string, printed empty, as ra prints it.
    assert_eq!(a[1].source_id, SourceId::Str([0; 4]));
    assert_eq!(c[0].source_id, SourceId::Ipv4(Ipv4Addr::new(127, 0, 0, 3)));
    assert_eq!(d[2].source_id, SourceId::Int(4004));
    // What no ra field shows, from the bytes: `xxd -s 13748 -l 128 argus5/hostA.argus`.
    let r = a[1].report().expect("report");
    assert_eq!((r.major_version, r.minor_version), (5, 0));
    assert_eq!((r.interface_type, r.interface_status), (1, 0));
    assert_eq!((r.flow_status_interval, r.mar_interval), (5, 10));
    let c = r.counters;
    assert_eq!((c.drift, c.interfaces, c.fallow), (None, Some(1), Some(0)));
    assert_eq!(c.output, 0);
    let r = d[0].report().expect("report");
    assert_eq!(r.localnet, Ipv4Addr::new(127, 0, 0, 0));
    assert_eq!(r.netmask, Ipv4Addr::new(255, 0, 0, 0));
}

/// A MAR with a distinct value in every field, as used to map `ra`'s fields: a source id 4242
/// (an integer), `localnet` 10.0.0.0/24, sequence 0x1234, start 1795800046.111111, now
/// 1795800056.222222, version `version`.7, interface type 1 and status 2, intervals 5 and 10,
/// `pktsRcvd` 2^32 + 17, `bytesRcvd` 2^33 + 34, drift -5 (argus 3) or interfaces 2 and fallow 3
/// (argus 5), then records 0x33, flows 0x44, dropped 0x55, queue 0x66, output 0x77, clients
/// 0x88, bufs 0x99, bytes 0xaa.
fn synthetic(version: Version, cause: u8) -> Vec<u8> {
    let mut r = vec![0u8; 128];
    let mut put = |at: usize, b: &[u8]| r[at..at + b.len()].copy_from_slice(b);
    put(0, &[0x80 | version.number(), cause << 4, 0x00, 0x20]);
    put(4, &IDIS_INT.to_be_bytes());
    put(
        8,
        &match version {
            Version::V3 => 4242u32,
            Version::V5 => crate::record::ARGUS_V5_COOKIE,
        }
        .to_be_bytes(),
    );
    put(12, &[10, 0, 0, 0, 255, 255, 255, 0, 0, 0, 0x12, 0x34]);
    put(24, &1_795_800_046u32.to_be_bytes());
    put(28, &111_111u32.to_be_bytes());
    put(32, &1_795_800_056u32.to_be_bytes());
    put(36, &222_222u32.to_be_bytes());
    put(40, &[version.number(), 7, 1, 2, 0, 5, 0, 10]);
    put(48, &0x1_0000_0011u64.to_be_bytes());
    put(56, &0x2_0000_0022u64.to_be_bytes());
    match version {
        Version::V3 => put(64, &(-5i64).to_be_bytes()),
        Version::V5 => put(64, &[0, 0, 0, 2, 0, 0, 0, 3]),
    }
    for (i, v) in [0x33u32, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa]
        .iter()
        .enumerate()
    {
        put(72 + 4 * i, &v.to_be_bytes());
    }
    put(104, &[0, 0x0b, 0, 0x0c]);
    if version == Version::V5 {
        put(108, &4242u32.to_be_bytes());
    }
    put(124, &[0xff; 4]);
    r
}

/// `synthetic` MARs of cause STATUS, STOP and ERROR, written after the MAR/START of
/// `mar-only.argus` (argus 3) into a file, printed by the 3.0.8 command of the module docs.
#[test]
fn field_mapping_argus3() {
    let ra =
        "4242,1795800056.222222,1795800046.111111,4660,4294967313,8589934626,51,85,102,153,136,170";
    for (cause, st) in [(2, "CON"), (3, "STP"), (8, "ERR")] {
        let m = decode_mar(&synthetic(Version::V3, cause)).expect("decodes");
        assert_eq!(v3_line(&m), format!("{ra},{st}"));
        let r = m.report().expect("report");
        let c = r.counters;
        assert_eq!((c.flows, c.output), (0x44, 0x77));
        assert_eq!((c.drift, c.interfaces, c.fallow), (Some(-5), None, None));
        assert_eq!((r.major_version, r.minor_version), (3, 7));
        assert_eq!((r.interface_type, r.interface_status), (1, 2));
        assert_eq!((r.flow_status_interval, r.mar_interval), (5, 10));
        assert_eq!(r.localnet, Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(r.netmask, Ipv4Addr::new(255, 255, 255, 0));
    }
}

/// The same for argus 5, after the MAR/START of `argus5/mar-only.argus`, printed by the 5.0.3
/// command without its leading `argus5/mar-only.argus` (the file's own START is swallowed).
#[test]
fn field_mapping_argus5() {
    let ra = "4242,1795800046.111111,1795800056.222222,4660,4294967313,8589934626,51,68,85,102,153,136,170";
    for (cause, st) in [(2, "CON"), (3, "STP"), (8, "ERR")] {
        let m = decode_mar(&synthetic(Version::V5, cause)).expect("decodes");
        assert_eq!(v5_line(&m), format!("{ra},{st}"));
        let c = m.report().expect("report").counters;
        assert_eq!(c.output, 0x77);
        assert_eq!((c.drift, c.interfaces, c.fallow), (None, Some(2), Some(3)));
    }
}

#[test]
fn records_that_are_not_whole_mars_give_typed_errors() {
    let good = synthetic(Version::V5, 2);
    assert_eq!(decode_mar(&[]), Err(MarError::NoHeader { have: 0 }));
    assert_eq!(decode_mar(&good[..3]), Err(MarError::NoHeader { have: 3 }));
    let mut far = good.clone();
    far[0] = 0x15;
    assert_eq!(decode_mar(&far), Err(MarError::NotMar { kind: 1 }));
    let mut v4 = good.clone();
    v4[0] = 0x84;
    assert_eq!(decode_mar(&v4), Err(MarError::UnknownVersion(4)));
    assert_eq!(
        decode_mar(&good[..100]),
        Err(MarError::LengthMismatch {
            declared: 128,
            have: 100
        })
    );
    let mut short = good[..64].to_vec();
    short[3] = 16;
    assert_eq!(
        decode_mar(&short),
        Err(MarError::TooShort {
            cause: MarCause::Status,
            need: 128,
            have: 64
        })
    );
    let mut sup = good.clone();
    sup[1] = 0x90;
    assert_eq!(
        decode_mar(&sup),
        Err(MarError::Unsupported {
            version: Version::V5,
            cause: MarCause::Supplemental
        })
    );
    assert_eq!(
        MarError::TooShort {
            cause: MarCause::Interface,
            need: 52,
            have: 8
        }
        .to_string(),
        "a management record of cause INTERFACE needs 52 bytes, this one has 8"
    );
}

#[test]
fn longer_mars_and_unknown_causes_still_decode() {
    let mut long = synthetic(Version::V3, 2);
    long.extend([0u8; 8]);
    long[3] = 34;
    let m = decode_mar(&long).expect("decodes");
    assert_eq!(m.report().map(|r| r.counters.records), Some(0x33));
    let m = decode_mar(&synthetic(Version::V3, 0xa)).expect("decodes");
    assert_eq!(m.cause, MarCause::Interface);
    assert!(
        m.report().is_some(),
        "argus 3 has no interface MAR: the report layout"
    );
    let mut odd = synthetic(Version::V5, 0xc);
    odd[1] |= 0x05;
    let m = decode_mar(&odd).expect("decodes");
    assert_eq!(m.cause, MarCause::Other(0xc));
    assert_eq!(m.cause.nibble(), 0xc);
    assert_eq!(m.cause.to_string(), "0xc");
    assert_eq!(MarCause::from_byte(0x25), MarCause::Status);
}

#[test]
fn argus5_interface_mars_decode_from_their_own_layout() {
    let mut r = vec![0u8; MAR_INTERFACE_LEN];
    r[..4].copy_from_slice(&[0x85, 0xa0, 0x00, 13]);
    r[4..8].copy_from_slice(&IDIS_STRING.to_be_bytes());
    r[8..12].copy_from_slice(b"hstA");
    r[24..28].copy_from_slice(b"lo\0\0");
    r[28..32].copy_from_slice(&1_800_000_000u32.to_be_bytes());
    r[36..40].copy_from_slice(&1_800_000_059u32.to_be_bytes());
    r[40..44].copy_from_slice(&7u32.to_be_bytes());
    let m = decode_mar(&r).expect("decodes");
    assert_eq!(m.cause, MarCause::Interface);
    assert_eq!(m.source_id.to_string(), "hstA");
    assert_eq!(
        (m.start.secs, m.now.secs, m.now.usecs),
        (1_800_000_000, 1_800_000_059, 7)
    );
    assert!(m.report().is_none());
    let MarBody::Interface(inf) = m.body else {
        panic!("an interface body")
    };
    assert_eq!(inf.name(), b"lo");
    let mut short = r[..48].to_vec();
    short[3] = 12;
    assert!(matches!(
        decode_mar(&short),
        Err(MarError::TooShort { need: 52, .. })
    ));
}

#[test]
fn source_ids_print_as_ra_prints_them() {
    let mut m = synthetic(Version::V5, 2);
    let id = |m: &[u8]| decode_mar(m).expect("decodes").source_id;
    m[4..8].copy_from_slice(&IDIS_IPV6.to_be_bytes());
    m[108..124].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
    assert_eq!(id(&m).to_string(), "::1");
    m[4..8].copy_from_slice(&IDIS_UUID.to_be_bytes());
    m[108..124].copy_from_slice(&[0xab; 16]);
    assert_eq!(id(&m).to_string(), "abababab-abab-abab-abab-abababababab");
    m[4..8].copy_from_slice(&IDIS_STRING.to_be_bytes());
    m[108..112].copy_from_slice(b"a\n\0\0");
    assert_eq!(id(&m).to_string(), r"a\n");
    m[4..8].copy_from_slice(&0u32.to_be_bytes());
    m[108..112].copy_from_slice(&[0; 4]);
    assert_eq!(id(&m), SourceId::Untyped(0));
    assert_eq!(id(&m).to_string(), "0.0.0.0");
    // argus 3: an IPv6 or UUID id does not fit its 4 bytes.
    let mut m = synthetic(Version::V3, 2);
    m[4..8].copy_from_slice(&IDIS_UUID.to_be_bytes());
    assert_eq!(id(&m), SourceId::Untyped(4242));
}

#[test]
fn times_convert_only_when_valid() {
    let t = MarTime {
        secs: 1,
        usecs: 999_999,
    };
    assert_eq!(t.to_string(), "1.999999");
    assert!(t.to_datetime().is_some());
    let bad = MarTime {
        secs: u32::MAX,
        usecs: 1_000_000,
    };
    assert_eq!(bad.to_datetime(), None);
}
