//! Bad input (SPEC §5): every bad upload ends in quarantine with its reason, or untouched when it
//! is another client's or still in flight; none is ever appended to a day file; nothing is
//! written outside the configured directories; a FIFO never hangs the pass; the exit status is 1;
//! and the good uploads around the bad ones are ingested.
//!
//! Also: a huge `.out` is streamed with flat memory, a read-only archive directory stops the pass
//! with exit 74 and loses nothing, and a second instance is refused with exit 75.

#![allow(
    clippy::print_stderr,
    reason = "the memory test reports what it measured"
)]

use crate::support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use argus_core::lock::{Contention, Lock};
use support::{Ledger, Tmpfs, day_start, decoded, read};
use test_support::bins::{bin, sample};
use test_support::server::{Server, spawn_piped, status, stderr, wait_within};
use time::OffsetDateTime;
use webjob_drop::PartKind;
use webjob_drop::fixture::Upload;

/// Generous: only catches a hang (a FIFO opened for reading blocks forever without a writer).
const DEADLINE: Duration = Duration::from_secs(60);

const HOST: &str = "sensor1";

/// What must become of a bad upload.
#[derive(Debug)]
enum Fate {
    /// Moved whole to the quarantine, with a reason containing this text.
    Quarantined(&'static str),
    /// Left exactly as it is.
    Untouched,
}

/// One bad upload written to the dropzone.
#[derive(Debug)]
struct Case {
    what: &'static str,
    /// The stem, as bytes (some are not UTF-8).
    stem: Vec<u8>,
    /// Every file of the case, in the dropzone.
    paths: Vec<PathBuf>,
    fate: Fate,
}

/// What a dropzone entry is, without following links: type, size, link target, content hash.
fn describe(path: &Path) -> String {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return "missing".to_owned();
    };
    let t = meta.file_type();
    if t.is_symlink() {
        format!("link to {:?}", fs::read_link(path).expect("readlink"))
    } else if t.is_fifo() {
        "fifo".to_owned()
    } else if t.is_dir() {
        "dir".to_owned()
    } else {
        let bytes = read(path);
        format!(
            "file {} bytes, sum {}",
            bytes.len(),
            argus_core::manifest::hex(&argus_core::manifest::sha256(&bytes))
        )
    }
}

/// Everything below `root` but the `excluded` directories: relative path -> description.
fn listing_outside(root: &Path, excluded: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, excluded: &[PathBuf], out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if excluded.contains(&path) {
                continue;
            }
            let rel = path.strip_prefix(root).expect("inside").to_path_buf();
            let description = describe(&path);
            let is_dir = description == "dir";
            out.insert(rel, description);
            if is_dir {
                walk(root, &path, excluded, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, excluded, &mut out);
    out
}

fn configured_dirs(server: &Server) -> Vec<PathBuf> {
    vec![
        server.drop_dir(),
        server.oper_dir(),
        server.archive_dir(),
        server.state_dir(),
        server.quarantine_dir(),
        server.log_dir(),
    ]
}

/// The quarantined group of `stem`: its directory in the quarantine.
fn quarantined(server: &Server, stem: &[u8]) -> Option<PathBuf> {
    let entries = fs::read_dir(server.quarantine_dir()).ok()?;
    entries.flatten().map(|e| e.path()).find(|p| {
        p.file_name().is_some_and(|n| {
            let n = n.as_bytes();
            n == stem
                || n.strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with(b"."))
        })
    })
}

/// A 64-bit value from a counter (splitmix64), for reproducible "random" bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)).to_le_bytes()[0]
        })
        .collect()
}

struct Dropzone<'a> {
    server: &'a Server,
    cases: Vec<Case>,
    good: Ledger,
    next: i64,
    base: OffsetDateTime,
}

impl Dropzone<'_> {
    /// The next upload time: every upload has its own, a minute apart.
    fn at(&mut self) -> OffsetDateTime {
        self.next += 1;
        self.base + time::Duration::minutes(self.next)
    }

    /// A good upload of client1, between the bad ones.
    fn good(&mut self, bytes: &[u8]) {
        let at = self.at();
        self.good.write(self.server, "client1", HOST, at, bytes);
    }

    /// A bad case written with the fixture (then changed by `tweak`, given the stem's path
    /// without extension).
    fn case(
        &mut self,
        what: &'static str,
        upload: Upload,
        tweak: impl FnOnce(&Path) -> Vec<PathBuf>,
        fate: Fate,
    ) {
        let written = upload.write(&self.server.drop_dir()).expect("write upload");
        let mut paths = written.paths.clone();
        paths.extend(tweak(&written.dir.join(&written.stem)));
        self.cases.push(Case {
            what,
            stem: written.stem.into_bytes(),
            paths,
            fate,
        });
        let at = self.at();
        let bytes = read(&sample(if self.next % 2 == 0 {
            "hostB.argus"
        } else {
            "hostC.argus"
        }));
        self.good.write(self.server, "client1", HOST, at, &bytes);
    }

    fn upload(&mut self) -> Upload {
        let at = self.at();
        Upload::at("client1", at)
            .out(read(&sample("hostD.chunk1.argus")))
            .hostname(HOST)
    }
}

fn with_ext(stem_path: &Path, ext: &str) -> PathBuf {
    let mut s = stem_path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Writes a group by hand under a raw (possibly non-UTF-8) stem: `.out`, `.err`, `.env`, `.rdy`.
fn raw_group(dir: &Path, stem: &[u8], out: &[u8]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (ext, bytes) in [
        ("out", out),
        ("err", b"".as_slice()),
        ("env", b"Hostname=sensor1\n".as_slice()),
        ("rdy", b"".as_slice()),
    ] {
        let mut name = stem.to_vec();
        name.push(b'.');
        name.extend_from_slice(ext.as_bytes());
        let path = dir.join(OsStr::from_bytes(&name));
        fs::write(&path, bytes).expect("write part");
        paths.push(path);
    }
    paths
}

#[test]
fn every_bad_upload_is_quarantined_or_left_alone_and_the_good_ones_go_in() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\norphan_after = \"1h\"\narchive_compression = \"gzip\"\narchive_compression_level = 1\n",
    );
    let mut dz = Dropzone {
        server: &server,
        cases: Vec::new(),
        good: Ledger::default(),
        next: 0,
        base: day_start(1) + time::Duration::hours(2),
    };
    let drop_dir = server.drop_dir();
    dz.good(&read(&sample("hostA.argus")));
    dz.good(b"");

    // Missing parts, and a .rdy alone.
    for (what, kinds, missing) in [
        ("missing .out", &[PartKind::Out][..], ".out is missing"),
        ("missing .env", &[PartKind::Env], ".env is missing"),
        ("missing .err", &[PartKind::Err], ".err is missing"),
        (
            ".rdy alone",
            &[PartKind::Out, PartKind::Env, PartKind::Err],
            ".out is missing",
        ),
    ] {
        let mut upload = dz.upload();
        for kind in kinds {
            upload = upload.without(*kind);
        }
        dz.case(what, upload, |_| Vec::new(), Fate::Quarantined(missing));
    }
    // An empty .env has no Hostname.
    let upload = dz.upload().env(Vec::new());
    dz.case(
        "empty .env",
        upload,
        |_| Vec::new(),
        Fate::Quarantined("Hostname"),
    );

    // Data without .rdy: in flight, and an orphan of a failed upload (older than orphan_after).
    let upload = dz.upload().orphan();
    dz.case("in flight", upload, |_| Vec::new(), Fate::Untouched);
    let upload = dz
        .upload()
        .orphan()
        .modified(SystemTime::now() - Duration::from_secs(3 * 3600));
    dz.case("orphan", upload, |_| Vec::new(), Fate::Untouched);

    // Symbolic links to /etc/passwd, a FIFO and a directory in place of parts.
    let passwd_before = describe(Path::new("/etc/passwd"));
    let passwd_sum = read(Path::new("/etc/passwd"));
    let upload = dz.upload().without(PartKind::Out);
    dz.case(
        "symlink .out",
        upload,
        |stem| {
            let out = with_ext(stem, "out");
            std::os::unix::fs::symlink("/etc/passwd", &out).expect("symlink");
            vec![out]
        },
        Fate::Quarantined(".out is a symbolic link"),
    );
    let upload = dz.upload().orphan();
    dz.case(
        "symlink .rdy",
        upload,
        |stem| {
            let rdy = with_ext(stem, "rdy");
            std::os::unix::fs::symlink("/etc/passwd", &rdy).expect("symlink");
            vec![rdy]
        },
        Fate::Quarantined(".rdy is a symbolic link"),
    );
    for (what, kind, ext, why) in [
        ("FIFO .out", PartKind::Out, "out", ".out is a FIFO"),
        ("FIFO .env", PartKind::Env, "env", ".env is a FIFO"),
        ("FIFO .err", PartKind::Err, "err", ".err is a FIFO"),
    ] {
        let upload = dz.upload().without(kind);
        dz.case(
            what,
            upload,
            |stem| {
                let fifo = with_ext(stem, ext);
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .expect("mkfifo");
                vec![fifo]
            },
            Fate::Quarantined(why),
        );
    }
    let upload = dz.upload().without(PartKind::Out);
    dz.case(
        "directory .out",
        upload,
        |stem| {
            let out = with_ext(stem, "out");
            fs::create_dir(&out).expect("mkdir");
            fs::write(out.join("inside"), b"not argus").expect("write");
            vec![out]
        },
        Fate::Quarantined(".out is a directory"),
    );

    // Hostile Hostname values.
    let long = format!("Hostname={}\n", "a".repeat(300));
    let hostile: [(&'static str, &[u8]); 7] = [
        ("Hostname ../../etc/x", b"Hostname=../../etc/x\n"),
        ("empty Hostname", b"Hostname=\n"),
        ("300-byte Hostname", long.as_bytes()),
        ("non-UTF-8 Hostname", b"Hostname=sens\xffor1\n"),
        ("Hostname a/b", b"Hostname=a/b\n"),
        (
            "two Hostname lines",
            b"Hostname=sensor1\nHostname=sensor2\n",
        ),
        ("only KidHostname", b"KidHostname=sensor1\n"),
    ];
    for (what, env) in hostile {
        let upload = dz.upload().env(env.to_vec());
        dz.case(what, upload, |_| Vec::new(), Fate::Quarantined("Hostname"));
    }

    // Another client whose id client1 is a prefix of: not ours, never touched.
    let at = dz.at();
    let upload = Upload::at("client10", at)
        .out(read(&sample("hostA.argus")))
        .hostname(HOST);
    dz.case("client10 (prefix)", upload, |_| Vec::new(), Fate::Untouched);

    // Non-UTF-8 names: an upload of client1 (quarantined: its name cannot be trusted), an
    // upload of a client id that is not text (not ours), and a stray file.
    let stamp = argus_core::stamp::format_datetime(dz.at());
    let stem = [
        format!("client1_{stamp}_").as_bytes(),
        b"\xff\xfe",
        b"_harvest_argus",
    ]
    .concat();
    let paths = raw_group(&drop_dir, &stem, &read(&sample("hostB.argus")));
    dz.cases.push(Case {
        what: "non-UTF-8 stem",
        stem,
        paths,
        fate: Fate::Quarantined("UTF-8"),
    });
    let stamp = argus_core::stamp::format_datetime(dz.at());
    let stem = [b"client\xff1_", stamp.as_bytes(), b"_harvest_argus"].concat();
    let paths = raw_group(&drop_dir, &stem, &read(&sample("hostB.argus")));
    dz.cases.push(Case {
        what: "non-UTF-8 client id",
        stem,
        paths,
        fate: Fate::Untouched,
    });
    let stray = drop_dir.join(OsStr::from_bytes(b"\xff\xfe junk.out"));
    fs::write(&stray, b"whatever").expect("stray");
    dz.cases.push(Case {
        what: "non-UTF-8 stray file",
        stem: b"\xff\xfe junk".to_vec(),
        paths: vec![stray],
        fate: Fate::Untouched,
    });

    // Damaged argus data.
    let damaged: [(&'static str, Vec<u8>); 5] = [
        ("truncated", read(&sample("hostA.truncated.argus"))),
        (
            "truncated + concatenated",
            read(&sample("hostA.truncated+hostB.concat.argus")),
        ),
        ("random bytes", noise(20_000, 7)),
        (
            "text",
            b"harvest_argus: error: no such interface eth7\n".repeat(40),
        ),
        (
            "good data with garbage after it",
            [read(&sample("hostB.argus")), noise(100, 9)].concat(),
        ),
    ];
    for (what, bytes) in damaged {
        let upload = dz.upload().out(bytes);
        // Data that is not argus at all is named as such, not as damage.
        let reason = if matches!(what, "random bytes" | "text") {
            "not argus data: it does not start with a 128-byte MAR/START record"
        } else {
            "argus data is damaged"
        };
        dz.case(what, upload, |_| Vec::new(), Fate::Quarantined(reason));
    }
    // argus 2 (another record format) is named with the cookie found.
    let mut v2 = read(&sample("hostB.argus"));
    v2[..4].copy_from_slice(&[0x80, 0x01, 0x00, 0x80]);
    v2[8..12].copy_from_slice(&[0xe5, 0x61, 0x7a, 0xcb]);
    let upload = dz.upload().out(v2);
    dz.case(
        "argus 2",
        upload,
        |_| Vec::new(),
        Fate::Quarantined("argus 2 data (cookie E5617ACB) is not supported"),
    );

    // Manifests that do not match: one byte changed, one byte added.
    let upload = dz.upload().with_manifest(HOST, 41);
    dz.case(
        "tampered .out",
        upload,
        |stem| {
            let out = with_ext(stem, "out");
            let mut bytes = read(&out);
            bytes[1000] ^= 0x20;
            fs::write(&out, bytes).expect("tamper");
            Vec::new()
        },
        Fate::Quarantined("does not match its manifest"),
    );
    let upload = dz.upload().with_manifest(HOST, 42);
    dz.case(
        "longer .out",
        upload,
        |stem| {
            let out = with_ext(stem, "out");
            let mut bytes = read(&out);
            bytes.extend_from_slice(&read(&sample("mar-only.argus")));
            fs::write(&out, bytes).expect("grow");
            Vec::new()
        },
        Fate::Quarantined("manifest claims"),
    );
    // And one that matches, to show manifests are not simply refused.
    let at = dz.at();
    let written = Upload::at("client1", at)
        .out(read(&sample("hostD.chunk2.argus")))
        .hostname(HOST)
        .with_manifest(HOST, 43)
        .write(&drop_dir)
        .expect("write");
    dz.good.uploads.push(support::Rec {
        stem: written.stem,
        dir: written.dir,
        bytes: read(&sample("hostD.chunk2.argus")),
        appended: read(&sample("hostD.chunk2.argus")),
        at,
        day: support::day_name(HOST, at),
    });

    let tmp_etc = server.root.path().parent().map(|p| p.join("etc"));
    let tmp_etc_before = tmp_etc.as_deref().map(describe);
    let outside_before = listing_outside(server.root.path(), &configured_dirs(&server));
    let untouched_before: Vec<Vec<String>> = dz
        .cases
        .iter()
        .map(|c| c.paths.iter().map(|p| describe(p)).collect())
        .collect();

    let out = server.run_within(&["--json"], DEADLINE);
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(status(&out), 1, "stderr: {}\n{json}", stderr(&out));

    // Each bad case where it belongs.
    for (case, before) in dz.cases.iter().zip(&untouched_before) {
        let now: Vec<String> = case.paths.iter().map(|p| describe(p)).collect();
        match case.fate {
            Fate::Untouched => {
                assert_eq!(&now, before, "{}: must be left as it was", case.what);
                assert!(
                    quarantined(&server, &case.stem).is_none(),
                    "{}: not ours, yet quarantined",
                    case.what
                );
            }
            Fate::Quarantined(why) => {
                for p in &case.paths {
                    assert!(
                        fs::symlink_metadata(p).is_err(),
                        "{}: {} is still in the dropzone",
                        case.what,
                        p.display()
                    );
                }
                let dir = quarantined(&server, &case.stem)
                    .unwrap_or_else(|| panic!("{}: not in the quarantine", case.what));
                let reason = fs::read_to_string(dir.join("reason"))
                    .unwrap_or_else(|e| panic!("{}: reason file: {e}", case.what));
                assert!(
                    reason.contains(why),
                    "{}: the reason should say {why:?}: {reason}",
                    case.what
                );
                // Whole: every part moved as it was (links and FIFOs are moved, not followed).
                for (p, was) in case.paths.iter().zip(before) {
                    let moved = dir.join(p.file_name().expect("name"));
                    assert_eq!(&describe(&moved), was, "{}: {}", case.what, moved.display());
                }
            }
        }
    }
    // The good ones, every one, exactly once; nothing else in the day files or archives.
    dz.good.assert_consistent(&server, ".gz");
    for rec in &dz.good.uploads {
        assert!(!rec.any_part_left(), "{}: good, yet not ingested", rec.stem);
    }
    let oper = Server::files(&server.oper_dir());
    assert_eq!(oper.len(), 1, "one day file, of {HOST} only: {oper:?}");
    // The counts of what was left alone.
    // Foreign: client10's upload. The group whose client id is not text is no upload name at
    // all (ignored, like the stray file), and left alone all the same.
    for field in ["\"in_flight\":1,", "\"orphans\":1,", "\"foreign\":1,"] {
        assert!(json.contains(field), "summary should hold {field}: {json}");
    }
    let n_quarantined = dz
        .cases
        .iter()
        .filter(|c| matches!(c.fate, Fate::Quarantined(_)))
        .count();
    assert!(
        json.contains(&format!("\"quarantined\":{n_quarantined},")),
        "{json}"
    );
    // Nothing written anywhere else.
    assert_eq!(
        listing_outside(server.root.path(), &configured_dirs(&server)),
        outside_before,
        "files outside the configured directories changed"
    );
    assert_eq!(tmp_etc.as_deref().map(describe), tmp_etc_before);
    assert_eq!(describe(Path::new("/etc/passwd")), passwd_before);
    assert!(read(Path::new("/etc/passwd")) == passwd_sum);
    // The orphan is reported for the operator.
    assert!(
        stderr(&out).contains("orphaned upload data"),
        "{}",
        stderr(&out)
    );
}

/// The variable that makes [`rss_probe`] run process_argus (see there).
const PROBE_HOME: &str = "PROCESS_ARGUS_TEST_RSS_HOME";
const PROBE_BIN: &str = "PROCESS_ARGUS_TEST_RSS_BIN";
const PROBE_OUT: &str = "PROCESS_ARGUS_TEST_RSS_OUT";

/// Not a test of its own: [`a_huge_upload_is_streamed_with_flat_memory`] runs this test binary
/// again with the variables above set, so that process_argus is the only child of a fresh
/// process, whose `getrusage(RUSAGE_CHILDREN)` then gives process_argus' peak RSS exactly (in
/// the test process it would include cargo's build and every other test's children).
#[test]
fn rss_probe() {
    let (Ok(home), Ok(bin), Ok(out)) = (
        std::env::var(PROBE_HOME),
        std::env::var(PROBE_BIN),
        std::env::var(PROBE_OUT),
    ) else {
        return;
    };
    let status = Command::new(bin)
        .env_clear()
        .env("WEBJOB_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run process_argus");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    fs::write(
        out,
        format!("{} {}", status.code().unwrap_or(-1), usage.max_rss()),
    )
    .expect("write probe result");
}

#[test]
fn a_huge_upload_is_streamed_with_flat_memory() {
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"gzip\"\narchive_compression_level = 1\n",
    );
    // 64 MiB of real records: hostA's stream over and over (a valid concatenation).
    let one = read(&sample("hostA.argus"));
    let copies = (64 << 20) / one.len() + 1;
    let big = one.repeat(copies);
    let at = day_start(0) + time::Duration::hours(1);
    let written = Upload::at("client1", at)
        .out(big.clone())
        .hostname(HOST)
        .with_manifest(HOST, 1)
        .write(&server.drop_dir())
        .expect("write");

    let result = server.root.path().join("rss");
    let child = spawn_piped(
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["badinput::rss_probe", "--exact", "--test-threads=1"])
            .env(PROBE_HOME, server.root.path())
            .env(PROBE_BIN, bin("process_argus"))
            .env(PROBE_OUT, &result),
    );
    let out = wait_within(child, DEADLINE);
    assert!(out.status.success(), "probe: {}", stderr(&out));
    let text = fs::read_to_string(&result).expect("probe result");
    let (code, rss_kib) = text.split_once(' ').expect("two numbers");
    assert_eq!(code, "0", "process_argus failed on a huge upload");
    let rss_kib: u64 = rss_kib.parse().expect("number");
    eprintln!("process_argus peak RSS for a 64 MiB upload: {rss_kib} KiB");
    assert!(
        rss_kib < 64 * 1024,
        "peak RSS {rss_kib} KiB for a 64 MiB upload: memory must stay flat"
    );

    let day = server.oper_dir().join(support::day_name(HOST, at));
    assert!(read(&day) == big, "the day file is the upload");
    let archive = server
        .archive_dir()
        .join(format!("{}.out.gz", written.stem));
    assert!(
        decoded(&archive) == big,
        "the archive decodes to the upload"
    );
}

/// Three good uploads in a fresh server.
fn three_uploads(server: &Server) -> Ledger {
    let mut ledger = Ledger::default();
    for (k, name) in ["hostA.argus", "hostB.argus", "hostC.argus"]
        .iter()
        .enumerate()
    {
        let at = day_start(0) + time::Duration::minutes(10 + i64::try_from(k).expect("small"));
        ledger.write(server, "client1", HOST, at, &read(&sample(name)));
    }
    ledger
}

#[test]
fn a_read_only_archive_dir_stops_the_pass_and_loses_nothing() {
    // As root, chmod 0555 stops nothing: the archive directory is a read-only tmpfs mount.
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let ledger = three_uploads(&server);
    let Some(mount) = Tmpfs::mount(
        &server.archive_dir(),
        "16m",
        "ro",
        "a read-only archive directory",
    ) else {
        return;
    };
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 74, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Read-only file system")
            && err.contains(&*server.archive_dir().to_string_lossy()),
        "the message names the archive directory and the reason: {err}"
    );
    assert_eq!(
        ledger.assert_consistent(&server, ".gz"),
        0,
        "nothing ingested"
    );
    for rec in &ledger.uploads {
        assert!(rec.intact(), "{} stays in the dropzone", rec.stem);
    }
    // Once the directory is writable, the next run does it all.
    mount.remount("rw");
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn an_archive_dir_that_is_a_file_is_a_config_error() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let ledger = three_uploads(&server);
    fs::write(server.archive_dir(), b"not a directory").expect("file");
    let before = Server::files(server.root.path());
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 78, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("archive_dir") && stderr(&out).contains("not a directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(Server::files(server.root.path()), before, "nothing changed");
    for rec in &ledger.uploads {
        assert!(rec.intact(), "{} stays in the dropzone", rec.stem);
    }
}

#[test]
fn a_second_instance_is_refused_and_changes_nothing() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let ledger = three_uploads(&server);
    fs::create_dir_all(server.state_dir()).expect("state dir");
    // Another instance, as far as process_argus can tell: it holds the lock.
    let held = Lock::acquire(server.state_dir().join("lock"), Contention::Fail).expect("lock");
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 75, "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("lock"), "{}", stderr(&out));
    for rec in &ledger.uploads {
        assert!(rec.intact(), "{} stays in the dropzone", rec.stem);
    }
    assert!(Server::files(&server.oper_dir()).is_empty());
    assert!(Server::files(&server.archive_dir()).is_empty());
    drop(held);
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));
    ledger.assert_exactly_once(&server, ".gz");
}

#[test]
fn dropzone_files_keep_their_inode_when_quarantined() {
    // A quarantined group is moved, not copied: the operator finds the very files.
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let written = Upload::at("client1", day_start(0))
        .out(read(&sample("hostA.truncated.argus")))
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("write");
    let ino = fs::metadata(written.path("out")).expect("out").ino();
    let out = server.run_within(&[], DEADLINE);
    assert_eq!(status(&out), 1, "stderr: {}", stderr(&out));
    let dir = quarantined(&server, written.stem.as_bytes()).expect("quarantined");
    let moved = dir.join(format!("{}.out", written.stem));
    assert_eq!(fs::metadata(moved).expect("moved").ino(), ino);
}

/// True when the process `pid` has `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

#[test]
fn an_out_that_grows_after_it_was_checked_never_reaches_the_day_file() {
    // A writer that appends to .out after .rdy (a broken server, a local user) must not get
    // unchecked bytes into a day file: garbage there makes ra stop and lose everything after
    // it. A small upload is checked at once, while a huge one in the same batch keeps the pass
    // from committing; the small .out grows in that window.
    let server = Server::new();
    server.write_toml(
        &["client1"],
        "archive_days = 0\narchive_compression = \"gzip\"\narchive_compression_level = 9\n",
    );
    let at = day_start(0) + time::Duration::hours(1);
    let small = read(&sample("hostB.argus"));
    let x = Upload::at("client1", at)
        .out(small.clone())
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("write");
    let one = read(&sample("hostA.argus"));
    let big = one.repeat((16 << 20) / one.len());
    Upload::at("client1", at + time::Duration::minutes(1))
        .out(big.clone())
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("write");

    let child = spawn_piped(&mut server.command());
    let x_out = x.path("out");
    let start = std::time::Instant::now();
    while !has_open(child.id(), &x_out) && start.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The small one is checked in a few milliseconds; the big one takes far longer.
    std::thread::sleep(Duration::from_millis(100));
    let garbage = noise(4096, 3);
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&x_out)
            .expect("open .out");
        f.write_all(&garbage).expect("grow .out");
    }
    let out = wait_within(child, DEADLINE);
    // However the pass ended, the day file holds only checked bytes, and walks clean.
    let day = server.oper_dir().join(support::day_name(HOST, at));
    let data = fs::read(&day).unwrap_or_default();
    let report = argus_core::record::walk(&data[..]).expect("walk");
    assert!(
        report.is_clean(),
        "the day file holds bytes nobody checked ({}; stderr: {})",
        report.walk,
        stderr(&out)
    );
    assert!(
        data.is_empty() || data == small || data == [small.clone(), big.clone()].concat(),
        "the day file is the checked uploads, in order ({} bytes)",
        data.len()
    );
    // A second run finishes whatever is left, and the day file is still exact.
    let again = server.run_within(&[], DEADLINE);
    assert!(
        matches!(status(&again), 0 | 1),
        "stderr: {}",
        stderr(&again)
    );
    let data = fs::read(&day).unwrap_or_default();
    assert!(
        argus_core::record::walk(&data[..])
            .expect("walk")
            .is_clean(),
        "after the second run"
    );
}

#[test]
fn the_same_stem_in_two_directories_loses_nothing() {
    // A server that moved to per-client subdirectories can hold one stem twice: both archives
    // would have the same name.
    let server = Server::new();
    server.write_toml(&["client1"], "archive_days = 0\n");
    let at = day_start(0) + time::Duration::hours(1);
    let a = read(&sample("hostB.argus"));
    let b = read(&sample("hostC.argus"));
    let top = Upload::at("client1", at)
        .out(a.clone())
        .hostname(HOST)
        .write(&server.drop_dir())
        .expect("write");
    let sub = Upload::at("client1", at)
        .out(b.clone())
        .hostname(HOST)
        .in_subdir("client1")
        .write(&server.drop_dir())
        .expect("write");
    assert_eq!(top.stem, sub.stem);
    let out = server.run_within(&[], DEADLINE);
    let first = status(&out);
    assert_eq!(
        first,
        1,
        "one goes in, the other to the quarantine: {}",
        stderr(&out)
    );
    let again = server.run_within(&[], DEADLINE);
    assert_eq!(status(&again), 0, "{}", stderr(&again));
    let day = server.oper_dir().join(support::day_name(HOST, at));
    let data = fs::read(&day).unwrap_or_default();
    let archive = server.archive_dir().join(format!("{}.out.gz", top.stem));
    let archived = decoded(&archive);
    // One of them is in the day file and the archive; the other whole in the quarantine (or
    // still in the dropzone), never half.
    let (went_in, other) = if archived == a {
        (&a, &sub)
    } else {
        (&b, &top)
    };
    assert!(
        archived == a || archived == b,
        "the archive is one of the uploads"
    );
    assert!(
        data == *went_in,
        "the day file holds exactly the archived one ({} bytes; runs ended {first} and {}: {} {})",
        data.len(),
        status(&again),
        stderr(&out),
        stderr(&again)
    );
    let kept = other.path("out").exists()
        || quarantined(&server, other.stem.as_bytes()).is_some_and(|q| {
            fs::read(q.join(format!("{}.out", other.stem))).is_ok_and(|d| d != *went_in)
        });
    assert!(kept, "the other upload is kept: {}", stderr(&out));
}
