//! Unit tests of the codecs: levels, names, recipe commands, members, the gzip limit.

use super::*;

fn codec(c: Compression, level: u32) -> Codec {
    Codec::new(c, level).expect("valid level")
}

#[test]
fn names_suffixes_and_parsing_agree() {
    for c in Compression::ALL {
        assert_eq!(c.name().parse::<Compression>().expect("own name"), c);
        assert_eq!(c.to_string(), c.name());
        let file = format!("host_20260101{}", c.suffix());
        assert_eq!(Compression::split_suffix(&file), ("host_20260101", c));
    }
    assert_eq!(
        "GZ".parse::<Compression>().expect("alias"),
        Compression::Gzip
    );
    let err = "zstd".parse::<Compression>().expect_err("unsupported");
    assert!(err.to_string().contains("none, gzip, bzip2, xz"), "{err}");
}

#[test]
fn levels_are_checked() {
    assert!(Codec::new(Compression::Gzip, 0).is_err());
    assert!(Codec::new(Compression::Gzip, 10).is_err());
    assert_eq!(codec(Compression::Xz, 0).level(), 0);
    assert_eq!(
        Codec::new(Compression::None, 7).expect("ignored"),
        Codec::NONE
    );
    let err = Codec::new(Compression::Bzip2, 12).expect_err("too high");
    assert!(err.to_string().contains("bzip2 levels are 1 to 9"), "{err}");
}

#[test]
fn recipe_commands_parse_without_a_shell() {
    let cases = [
        ("/bin/gzip -9", Some(codec(Compression::Gzip, 9))),
        ("/usr/bin/bzip2 -9", Some(codec(Compression::Bzip2, 9))),
        ("", Some(Codec::NONE)),
        ("   ", Some(Codec::NONE)),
        ("gzip", Some(codec(Compression::Gzip, 6))),
        ("xz -0", Some(codec(Compression::Xz, 0))),
        ("/usr/local/bin/xz  --best", Some(codec(Compression::Xz, 9))),
        ("gzip --fast", Some(codec(Compression::Gzip, 1))),
        ("/usr/bin/compress", Some(codec(Compression::Gzip, 6))),
        ("gzip -0", None),
        ("gzip -10", None),
        ("gzip -9 -c", None),
        ("gzip -9; rm -rf /", None),
        ("rm -rf /", None),
        ("/bin/gzip9", None),
        ("zstd -3", None),
        ("gzip $(id)", None),
        ("compress -b 12", None),
    ];
    for (input, want) in cases {
        match (Codec::from_recipe_command(input), want) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{input:?}"),
            (Err(e), None) => {
                let text = e.to_string();
                assert!(text.contains(&format!("{input:?}")), "{text}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn sniffing_recognises_each_format_and_nothing_else() {
    for c in Compression::ALL {
        let mut enc = codec(c, c.levels().end().to_owned()).encoder(Vec::new());
        enc.write_all(b"\x83\x10\x00\x20 some argus bytes")
            .expect("write");
        let bytes = enc.finish().expect("finish");
        assert_eq!(Compression::sniff(&bytes), c);
    }
    assert_eq!(Compression::sniff(b""), Compression::None);
    assert_eq!(Compression::sniff(b"\x1f"), Compression::None);
    assert_eq!(Compression::sniff(b"BZh0"), Compression::None);
}

#[test]
fn every_codec_and_level_round_trips_with_appended_members() {
    let first: Vec<u8> = (0..50_000u32)
        .flat_map(|i| (i % 251).to_be_bytes())
        .collect();
    let second = b"late chunk".repeat(1000);
    for c in Compression::ALL {
        for level in c.levels() {
            let codec = codec(c, level);
            let mut file = Vec::new();
            for part in [&first[..], &second[..], &[][..]] {
                let mut enc = codec.encoder(Vec::new());
                enc.write_all(part).expect("write");
                file.extend(enc.finish().expect("finish"));
            }
            let mut out = Vec::new();
            c.decoder(&file[..]).read_to_end(&mut out).expect("decode");
            assert_eq!(out.len(), first.len() + second.len(), "{codec}");
            assert!(out.starts_with(&first) && out.ends_with(&second), "{codec}");
        }
    }
}

/// gzip is written in members of at most the limit, in one write or in many: every size
/// around it decodes to its input, through ours, `gzip -dc` where it is installed, and (up to
/// the limit) a decoder that reads one member only.
#[test]
fn gzip_members_round_trip_on_both_sides_of_the_whole_limit() {
    let data: Vec<u8> = (0..3 * GZIP_WHOLE_LIMIT + 7)
        .map(|i| u8::try_from((i * 7 + i / 4096) % 256).expect("byte"))
        .collect();
    let codec = Compression::Gzip.codec();
    for len in [
        0,
        1,
        GZIP_WHOLE_LIMIT - 1,
        GZIP_WHOLE_LIMIT,
        GZIP_WHOLE_LIMIT + 1,
        data.len(),
    ] {
        for step in [len.max(1), 4095, 65_536] {
            let mut enc = codec.encoder(Vec::new());
            for piece in data[..len].chunks(step) {
                enc.write_all(piece).expect("write");
            }
            let packed = enc.finish().expect("finish");
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&packed[..])
                .read_to_end(&mut out)
                .expect("decode");
            assert!(out == data[..len], "length {len}, writes of {step}");
            let mut first = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut first)
                .expect("decode the first member");
            assert_eq!(
                first.len(),
                len.min(GZIP_WHOLE_LIMIT),
                "the first member holds up to the limit"
            );
            if let Ok(mut gzip) = std::process::Command::new("gzip")
                .arg("-dc")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
            {
                let mut stdin = gzip.stdin.take().expect("stdin");
                let feed = std::thread::spawn(move || stdin.write_all(&packed));
                let read = gzip.wait_with_output().expect("gzip -dc");
                feed.join().expect("feed").expect("write to gzip");
                assert!(read.status.success() && read.stdout == data[..len]);
            }
        }
    }
}

#[test]
fn garbage_after_a_member_is_an_error_not_silence() {
    for c in [Compression::Gzip, Compression::Bzip2, Compression::Xz] {
        let mut enc = c.codec().encoder(Vec::new());
        enc.write_all(b"data").expect("write");
        let mut file = enc.finish().expect("finish");
        let cut = file.len() - 3;
        file.truncate(cut);
        let mut out = Vec::new();
        assert!(
            c.decoder(&file[..]).read_to_end(&mut out).is_err(),
            "{c}: a truncated member must not decode cleanly"
        );
    }
}

#[test]
fn a_format_is_available_exactly_when_its_feature_is_on() {
    let features = [
        (Compression::Gzip, cfg!(feature = "gzip")),
        (Compression::Bzip2, cfg!(feature = "bzip2")),
        (Compression::Xz, cfg!(feature = "xz")),
    ];
    assert!(Compression::None.is_available());
    for (c, on) in features {
        assert_eq!(c.is_available(), on, "{c}");
        match Codec::new(c, c.default_level()) {
            Ok(codec) => assert!(on && codec.compression() == c, "{c}"),
            Err(Error::CodecUnavailable { format }) => assert!(!on && format == c.name(), "{c}"),
            Err(e) => panic!("{c}: unexpected {e}"),
        }
    }
}

#[test]
fn a_compiled_out_format_fails_at_the_first_read_or_write() {
    let mut enc = Encoder::Unavailable("xz", Vec::new());
    let err = enc.write_all(b"data").expect_err("no encoder");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("cargo feature `xz`"), "{err}");
    assert!(Encoder::Unavailable("xz", Vec::new()).finish().is_err());
    let mut out = Vec::new();
    let err = Decoder::Unavailable("gzip", &b"\x1f\x8b"[..])
        .read_to_end(&mut out)
        .expect_err("no decoder");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    let refused = Error::CodecUnavailable { format: "bzip2" }.to_string();
    assert_eq!(
        refused,
        "bzip2 is not compiled into this build (cargo feature `bzip2` of argus-core)"
    );
}

/// What the system's `tool -dc` makes of `packed`; `None` when the tool is not installed.
fn system_decodes(tool: &str, packed: &[u8]) -> Option<Vec<u8>> {
    let mut child = std::process::Command::new(tool)
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let out = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(packed));
        let out = child.wait_with_output().expect("wait");
        writer.join().expect("writer").expect("write");
        out
    });
    assert!(out.status.success(), "{tool} -dc failed");
    Some(out.stdout)
}

/// Encodes `data` with `codec` on `threads` threads, in writes of about a megabyte.
fn encode_on(codec: Codec, threads: usize, data: &[u8]) -> Vec<u8> {
    let mut e = codec.parallel_encoder(Vec::new(), threads);
    for piece in data.chunks(1_000_003) {
        e.write_all(piece).expect("write");
    }
    e.finish().expect("finish")
}

/// Decodes `packed`, all members, with our decoder.
fn decode(codec: Codec, packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    codec
        .compression()
        .decoder(packed)
        .read_to_end(&mut out)
        .expect("decode");
    out
}

#[cfg(feature = "xz")]
#[test]
fn xz_on_threads_is_blocks_that_any_xz_reader_reads_whole() {
    // Level 1 has a 1 MiB dictionary: blocks of 3 MiB, so 7 MiB makes three blocks.
    let codec = Compression::Xz.with_level(1).expect("level");
    let data: Vec<u8> = (0..7 << 20)
        .map(|i: usize| u8::try_from((i * 7 + i / 4096) % 253).expect("byte"))
        .collect();
    let (two, four) = (encode_on(codec, 2, &data), encode_on(codec, 4, &data));
    assert!(two == four, "the blocks do not depend on the thread count");
    let one = encode_on(codec, 1, &data);
    assert!(one != two, "one thread writes one block, threads several");
    assert!(decode(codec, &one) == data);
    assert!(decode(codec, &two) == data);
    if let Some(out) = system_decodes("xz", &two) {
        assert!(out == data, "xz -dc of the threaded stream");
    }
}

#[cfg(feature = "bzip2")]
#[test]
fn bzip2_on_threads_is_streams_that_any_bzip2_reader_reads_whole() {
    // Level 1: blocks of 100 kB, streams of four; 1.9 MB makes five streams, the last short.
    let codec = Compression::Bzip2.with_level(1).expect("level");
    // Compressible about as much as flow records (a 16-letter alphabet, no long repeats).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..1_900_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + u8::try_from(x % 16).expect("byte")
        })
        .collect();
    let two = encode_on(codec, 2, &data);
    for threads in [3, 8] {
        assert!(
            encode_on(codec, threads, &data) == two,
            "the streams do not depend on the thread count ({threads})"
        );
    }
    let streams = two.windows(4).filter(|w| w == b"BZh1").count();
    assert_eq!(streams, 5, "streams of {BZIP2_MEMBER_BLOCKS} blocks");
    let one = encode_on(codec, 1, &data);
    assert!(decode(codec, &one) == data);
    assert!(decode(codec, &two) == data);
    assert!(
        two.len() < one.len() + one.len() / 100,
        "streams cost at most 1 %: {} against {}",
        two.len(),
        one.len()
    );
    if let Some(out) = system_decodes("bzip2", &two) {
        assert!(out == data, "bzip2 -dc of the threaded streams");
    }
    // Data of one stream or less is one stream, as one thread writes it.
    let small = &data[..300_000];
    assert!(encode_on(codec, 2, small) == encode_on(codec, 1, small));
}

/// Members compressed on helper threads are the bytes one thread writes, at every size
/// around the member limit, whatever the writes' sizes.
#[test]
fn gzip_on_helper_threads_writes_what_one_thread_writes() {
    let data: Vec<u8> = (0..5 * GZIP_WHOLE_LIMIT + 11)
        .map(|i| u8::try_from((i * 13 + i / 1000) % 251).expect("byte"))
        .collect();
    let codec = Compression::Gzip.codec();
    for len in [
        0,
        GZIP_WHOLE_LIMIT,
        GZIP_WHOLE_LIMIT + 1,
        2 * GZIP_WHOLE_LIMIT,
        data.len(),
    ] {
        let one = {
            let mut e = codec.encoder(Vec::new());
            e.write_all(&data[..len]).expect("write");
            e.finish().expect("finish")
        };
        for threads in [2, 3, 8] {
            for step in [len.max(1), 65_536, 1_000_003] {
                let mut e = codec.parallel_encoder(Vec::new(), threads);
                for piece in data[..len].chunks(step) {
                    e.write_all(piece).expect("write");
                }
                let many = e.finish().expect("finish");
                assert!(
                    many == one,
                    "length {len}, {threads} threads, writes of {step}"
                );
            }
        }
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..])
            .read_to_end(&mut out)
            .expect("decode");
        assert!(out == data[..len]);
    }
}
