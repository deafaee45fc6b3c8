//! Helpers shared by the robustness tests of `process_argus`: a ledger of the uploads written to
//! a dropzone, and the exactly-once checks against it.

#![allow(
    clippy::print_stderr,
    reason = "test helpers say loudly what they skip"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::bins::sample;
use test_support::json::Json;
use test_support::server::{Server, status, stderr};
use time::{Duration, OffsetDateTime, Time};
use webjob_drop::fixture::Upload;

/// The bytes of a file, or a failure naming it.
pub(crate) fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub(crate) use test_support::files::decoded;

/// `data` compressed as one member with the named compression (`gzip`, `bzip2`, `xz`).
pub(crate) fn compressed(data: &[u8], compression: &str) -> Vec<u8> {
    let codec = compression
        .parse::<argus_core::codec::Compression>()
        .expect("compression name")
        .codec();
    let mut encoder = codec.encoder(Vec::new());
    std::io::Write::write_all(&mut encoder, data).expect("compress");
    encoder.finish().expect("finish")
}

/// The real argus samples that walk clean and are not empty: argus 3 ones smallest first, then
/// argus 5 ones, so that every test that cycles through them mixes both versions in its day
/// files.
pub(crate) fn good_samples() -> Vec<Vec<u8>> {
    [
        "mar-only.argus",
        "hostD.chunk1.argus",
        "hostC.argus",
        "hostD.chunk2.argus",
        "hostB.argus",
        "hostA.argus",
        "hostA+hostB.concat.argus",
        "argus5/hostD.chunk1.argus",
        "argus5/hostC.argus",
        "argus5/hostB.argus",
    ]
    .iter()
    .map(|n| read(&sample(n)))
    .collect()
}

/// Midnight UTC of today, minus `days_ago` days.
pub(crate) fn day_start(days_ago: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_time(Time::MIDNIGHT) - Duration::days(days_ago)
}

/// The day file base name `HOST_YYYYMMDD` of an upload at `at`.
pub(crate) fn day_name(host: &str, at: OffsetDateTime) -> String {
    format!("{host}_{}", argus_core::stamp::format_date(at.date()))
}

/// One upload written to the dropzone.
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    /// The stem.
    pub(crate) stem: String,
    /// The directory holding its files.
    pub(crate) dir: PathBuf,
    /// Its `.out`.
    pub(crate) bytes: Vec<u8>,
    /// What it appends to its day file: its `.out`, less chunks ingested before.
    pub(crate) appended: Vec<u8>,
    /// Upload time (from the name).
    pub(crate) at: OffsetDateTime,
    /// The day file it belongs to (base name).
    pub(crate) day: String,
}

impl Rec {
    /// True when any file of the group is still in the dropzone.
    pub(crate) fn any_part_left(&self) -> bool {
        ["out", "err", "env", "rdy", "lck"]
            .iter()
            .any(|ext| fs::symlink_metadata(self.dir.join(format!("{}.{ext}", self.stem))).is_ok())
    }

    /// True when the whole group (`.out`, `.err`, `.env`, `.rdy`) is in the dropzone, `.out`
    /// unchanged.
    pub(crate) fn intact(&self) -> bool {
        let part = |ext: &str| self.dir.join(format!("{}.{ext}", self.stem));
        ["err", "env", "rdy"].iter().all(|ext| part(ext).is_file())
            && fs::read(part("out")).is_ok_and(|b| b == self.bytes)
    }
}

/// Every upload written, and what the day files held before: the expected end state.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Uploads, in the order written.
    pub(crate) uploads: Vec<Rec>,
    /// Day files that existed before the test's uploads (base name -> decoded content).
    pub(crate) initial: BTreeMap<String, Vec<u8>>,
    /// Bad uploads (their stems), which must end up in the quarantine.
    pub(crate) bad: Vec<String>,
}

impl Ledger {
    /// Writes an upload of `client` from `host` at `at` carrying `bytes`, and records it.
    pub(crate) fn write(
        &mut self,
        server: &Server,
        client: &str,
        host: &str,
        at: OffsetDateTime,
        bytes: &[u8],
    ) -> Rec {
        self.write_chunks(server, client, host, at, &[], bytes)
    }

    /// Writes an upload of `client` from `host` at `at` made of chunks already ingested
    /// (`reshipped`: seq and bytes) followed by `new` chunks, with their manifests in `.err`,
    /// as harvest_argus ships a chunk again; only the new ones are to be appended.
    pub(crate) fn write_manifested(
        &mut self,
        server: &Server,
        client: &str,
        host: &str,
        at: OffsetDateTime,
        reshipped: &[(u64, &[u8])],
        new: &[(u64, &[u8])],
    ) -> Rec {
        let out: Vec<u8> = reshipped
            .iter()
            .chain(new)
            .flat_map(|c| c.1.to_vec())
            .collect();
        let appended: Vec<u8> = new.iter().flat_map(|c| c.1.to_vec()).collect();
        let chunks: Vec<(u64, &[u8])> = reshipped.iter().chain(new).copied().collect();
        let written = Upload::at(client, at)
            .out(out.clone())
            .hostname(host)
            .err(manifests(host, &chunks))
            .write(&server.drop_dir())
            .expect("write upload");
        self.record(written, out, appended, host, at)
    }

    fn write_chunks(
        &mut self,
        server: &Server,
        client: &str,
        host: &str,
        at: OffsetDateTime,
        err: &[u8],
        bytes: &[u8],
    ) -> Rec {
        let written = Upload::at(client, at)
            .out(bytes.to_vec())
            .hostname(host)
            .err(err.to_vec())
            .write(&server.drop_dir())
            .expect("write upload");
        self.record(written, bytes.to_vec(), bytes.to_vec(), host, at)
    }

    fn record(
        &mut self,
        written: webjob_drop::fixture::Written,
        bytes: Vec<u8>,
        appended: Vec<u8>,
        host: &str,
        at: OffsetDateTime,
    ) -> Rec {
        let rec = Rec {
            stem: written.stem,
            dir: written.dir,
            bytes,
            appended,
            at,
            day: day_name(host, at),
        };
        self.uploads.push(rec.clone());
        rec
    }

    /// Writes an upload whose `.out` is damaged argus data (a truncated real sample): it must
    /// end up quarantined, whole, exactly once.
    pub(crate) fn write_bad(
        &mut self,
        server: &Server,
        client: &str,
        host: &str,
        at: OffsetDateTime,
    ) {
        let written = Upload::at(client, at)
            .out(read(&sample("hostA.truncated.argus")))
            .hostname(host)
            .write(&server.drop_dir())
            .expect("write upload");
        self.bad.push(written.stem);
    }

    /// Puts an existing day file in `oper_dir` (plain when `compression` is `None`) holding
    /// `data`, as an earlier run would have left it.
    pub(crate) fn existing_day(
        &mut self,
        server: &Server,
        day: &str,
        data: &[u8],
        compression: Option<&str>,
    ) {
        fs::create_dir_all(server.oper_dir()).expect("oper dir");
        let (name, bytes) = match compression {
            None => (day.to_owned(), data.to_vec()),
            Some(c) => (format!("{day}.{}", suffix(c)), compressed(data, c)),
        };
        fs::write(server.oper_dir().join(name), bytes).expect("write day file");
        self.initial.insert(day.to_owned(), data.to_vec());
    }

    /// The expected decoded content of each day file, given which uploads are ingested:
    /// the initial content, then the ingested uploads oldest first.
    fn expected_days(&self, ingested: impl Fn(&Rec) -> bool) -> BTreeMap<String, Vec<u8>> {
        let mut days: BTreeMap<String, Vec<&Rec>> = BTreeMap::new();
        for rec in &self.uploads {
            days.entry(rec.day.clone()).or_default();
            if ingested(rec) {
                days.entry(rec.day.clone()).or_default().push(rec);
            }
        }
        for day in self.initial.keys() {
            days.entry(day.clone()).or_default();
        }
        days.into_iter()
            .map(|(day, mut recs)| {
                recs.sort_by(|a, b| (a.at, &a.stem).cmp(&(b.at, &b.stem)));
                let mut want = self.initial.get(&day).cloned().unwrap_or_default();
                for rec in recs {
                    want.extend_from_slice(&rec.appended);
                }
                (day, want)
            })
            .collect()
    }

    /// Asserts the end state of a completed ingest: every day file is its initial content plus
    /// the oldest-first concatenation of its uploads, every upload is archived once (decoding to
    /// its `.out`), nothing is left in the dropzone or the quarantine, the journal is empty, and
    /// the operational and archive directories hold nothing else (no temporary files).
    pub(crate) fn assert_exactly_once(&self, server: &Server, archive_suffix: &str) {
        self.assert_consistent(server, archive_suffix);
        for rec in &self.uploads {
            assert!(
                !rec.any_part_left(),
                "{} is still in the dropzone",
                rec.stem
            );
        }
        // The quarantine holds the bad uploads, each once and whole, and nothing else.
        let mut quarantined: Vec<String> = fs::read_dir(server.quarantine_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        quarantined.sort();
        let mut bad = self.bad.clone();
        bad.sort();
        assert_eq!(
            quarantined, bad,
            "the quarantine holds exactly the bad uploads"
        );
        for stem in &self.bad {
            let dir = server.quarantine_dir().join(stem);
            for ext in ["out", "err", "env", "rdy"] {
                assert!(
                    dir.join(format!("{stem}.{ext}")).is_file(),
                    "{stem}: .{ext} in the quarantine"
                );
                assert!(
                    fs::symlink_metadata(server.drop_dir().join(format!("{stem}.{ext}"))).is_err(),
                    "{stem}: .{ext} left in the dropzone"
                );
            }
            let reason = fs::read_to_string(dir.join("reason")).expect("reason");
            assert!(reason.contains("argus data is damaged"), "{stem}: {reason}");
        }
        for name in argus_ingest::journal::FILES {
            let len = fs::metadata(server.state_dir().join(name)).map_or(0, |m| m.len());
            assert_eq!(len, 0, "the journal ({name}) is empty after a complete run");
        }
        assert_ra_reads_every_record(&server.oper_dir());
    }

    /// Asserts a consistent state, complete or not: each upload is either wholly in the
    /// dropzone and not archived, or gone from it and archived exactly once; each day file
    /// holds its initial content and exactly the archived uploads, oldest first (so no partial
    /// chunk and nothing doubled), and walks clean as argus data; the directories hold nothing
    /// else. Returns how many uploads are ingested.
    pub(crate) fn assert_consistent(&self, server: &Server, archive_suffix: &str) -> usize {
        let archive_of = |rec: &Rec| {
            server
                .archive_dir()
                .join(format!("{}.out{archive_suffix}", rec.stem))
        };
        let mut ingested = 0;
        for rec in &self.uploads {
            let archive = archive_of(rec);
            if archive.exists() {
                assert!(
                    !rec.any_part_left(),
                    "{}: archived, yet still in the dropzone",
                    rec.stem
                );
                assert!(
                    decoded(&archive) == rec.bytes,
                    "{}: the archive differs from the .out",
                    rec.stem
                );
                ingested += 1;
            } else {
                assert!(
                    rec.intact(),
                    "{}: not archived, so it must be wholly in the dropzone",
                    rec.stem
                );
            }
        }
        let expected = self.expected_days(|rec| archive_of(rec).exists());
        let mut day_files = Vec::new();
        for (day, want) in &expected {
            let found: Vec<PathBuf> = ["", ".gz", ".bz2", ".xz"]
                .iter()
                .map(|s| server.oper_dir().join(format!("{day}{s}")))
                .filter(|p| p.exists())
                .collect();
            assert!(
                found.len() <= 1,
                "{day}: several files for one day: {found:?}"
            );
            let got = found.first().map(|p| decoded(p)).unwrap_or_default();
            assert!(
                got.len() == want.len() && got == *want,
                "{day}: holds {} bytes, expected the {} bytes of its ingested uploads in order",
                got.len(),
                want.len()
            );
            let report = argus_core::record::walk(&got[..]).expect("walk");
            assert!(report.is_clean(), "{day}: does not walk clean: {report:?}");
            day_files.extend(found);
        }
        let mut want_oper: Vec<PathBuf> = day_files
            .iter()
            .map(|p| {
                p.strip_prefix(server.oper_dir())
                    .expect("inside")
                    .to_path_buf()
            })
            .collect();
        want_oper.sort();
        assert_eq!(
            Server::files(&server.oper_dir()),
            want_oper,
            "the operational directory holds only day files"
        );
        let mut want_archives: Vec<PathBuf> = self
            .uploads
            .iter()
            .map(|rec| PathBuf::from(format!("{}.out{archive_suffix}", rec.stem)))
            .filter(|name| server.archive_dir().join(name).exists())
            .collect();
        want_archives.sort();
        assert_eq!(
            Server::files(&server.archive_dir()),
            want_archives,
            "the archive directory holds only archives"
        );
        ingested
    }
}

/// `.err` manifest lines for an `.out` made of `chunks` (seq, bytes), as harvest_argus writes
/// them.
pub(crate) fn manifests(host: &str, chunks: &[(u64, &[u8])]) -> Vec<u8> {
    let mut err = Vec::new();
    for (seq, bytes) in chunks {
        let m = argus_core::manifest::Manifest {
            host: argus_core::host::Hostname::new(host).expect("host"),
            seq: *seq,
            start: None,
            end: None,
            bytes: u64::try_from(bytes.len()).expect("small"),
            records: None,
            sha256: argus_core::manifest::sha256(bytes),
        };
        err.extend_from_slice(format!("{m}\n").as_bytes());
    }
    err
}

fn suffix(compression: &str) -> &'static str {
    match compression {
        "gzip" => "gz",
        "bzip2" => "bz2",
        "xz" => "xz",
        other => panic!("unknown compression {other}"),
    }
}

/// How a child ended: its exit code, or the signal that killed it.
pub(crate) fn ended(out: &Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (out.status.code(), out.status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "unknown".to_owned(),
    }
}

/// True when the child was killed by SIGKILL.
pub(crate) fn killed(out: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(nix::libc::SIGKILL)
}

/// A tmpfs mounted on a directory for the life of the guard (unmounted on drop).
#[derive(Debug)]
pub(crate) struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `2m`) with extra `options` (e.g. `ro`) on `path`,
    /// creating it. `None` when this is impossible here (not root, no mount): said loudly,
    /// and a failure under `CI=true`.
    pub(crate) fn mount(path: &Path, size: &str, options: &str, why: &str) -> Option<Tmpfs> {
        if !test_support::tools::root(why) {
            return None;
        }
        fs::create_dir_all(path).expect("mount point");
        let mut opts = format!("size={size},mode=0755");
        if !options.is_empty() {
            opts.push(',');
            opts.push_str(options);
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs {
                path: path.to_path_buf(),
            }),
            other => {
                let why_not = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !test_support::tools::in_ci(),
                    "cannot mount a tmpfs under CI=true ({why}): {why_not}"
                );
                eprintln!("SKIPPED: cannot mount a tmpfs ({why}): {why_not}");
                None
            }
        }
    }

    /// Changes the mount's options (e.g. `size=64m`, `rw`).
    pub(crate) fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "remount {} {options}",
            self.path.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a child still holds a file): detach it so the temp tree can go.
            let _ignored = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// `process_argus status --json`: its exit status and report.
pub(crate) fn status_report(server: &Server, deadline: std::time::Duration) -> (i32, Json) {
    let out = server.run_within(&["status", "--json"], deadline);
    let text = String::from_utf8_lossy(&out.stdout);
    let json = Json::parse(&text).unwrap_or_else(|e| {
        panic!(
            "status prints one JSON object ({e}): {text:?}; stderr:\n{}",
            stderr(&out)
        )
    });
    (status(&out), json)
}

/// The object of client `id` in a status report.
pub(crate) fn report_client<'a>(report: &'a Json, id: &str) -> &'a Json {
    report
        .get("clients")
        .items()
        .iter()
        .find(|c| c.get("client").str() == id)
        .unwrap_or_else(|| panic!("{id} is not in the report: {report:?}"))
}

/// The real readers agree with the walker on every day file under `oper_dir`: Debian's `ra`
/// reads every record of argus 3 data; argus 5 data (which it cannot read) is read by the
/// argus 5.0.3 `ra`, flow by flow, when `ARGUS5_PREFIX` names one.
pub(crate) fn assert_ra_reads_every_record(oper_dir: &Path) {
    use argus_core::record::Version;
    let ra5 = std::sync::OnceLock::new();
    for path in Server::files(oper_dir) {
        let path = oper_dir.join(path);
        let data = decoded(&path);
        if data.is_empty() {
            continue;
        }
        let report = argus_core::record::walk(&data[..]).expect("walk");
        if report.has_version(Version::V5) {
            let Some(prefix) = ra5
                .get_or_init(|| test_support::tools::argus5_prefix("the ra 5 check of day files"))
                .as_ref()
            else {
                continue;
            };
            let flows: u64 = report.streams.iter().map(|s| s.flows).sum();
            assert_eq!(
                test_support::tools::ra5_flows(prefix, &path),
                flows,
                "{}: ra 5 reads every flow record",
                path.display()
            );
        } else if test_support::tools::have("ra") {
            let read = test_support::tools::ra_records(&path);
            assert_eq!(
                u64::try_from(read).expect("count"),
                report.records,
                "{}: ra reads every record",
                path.display()
            );
        }
    }
}
