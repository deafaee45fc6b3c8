//! The release tarball, built twice from the debug binaries (no release build inside `cargo
//! test`): identical bytes, every item present, and what it holds works: man pages lint clean,
//! example configs pass `check-config`, units verify, completions parse.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{Built, Inputs, assemble, commands, host_target, page_names, source_date_epoch};

/// A fixed time stamp: 2023-11-14 22:13:20 UTC.
const MTIME: u64 = 1_700_000_000;

struct Fixture {
    dir: tempfile::TempDir,
    inputs: Inputs,
    first: Built,
    second: Built,
    bytes: Vec<u8>,
    entries: Vec<TarEntry>,
}

/// One entry as read back from the tarball.
struct TarEntry {
    path: String,
    mode: u64,
    uid: u64,
    gid: u64,
    uname: String,
    gname: String,
    mtime: u64,
    kind: u8,
    data: Vec<u8>,
}

/// True under CI, where every tool the tests use must be present.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says loudly that a check is skipped; under CI a missing tool is a failure.
fn skip(tool: &str, check: &str) {
    assert!(
        !ci(),
        "{tool} is missing, and CI=true: install it (.ci/run does) to {check}"
    );
    eprintln!("SKIPPED: {tool} is not installed, so this machine cannot {check}");
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let bins = crate::util::build(false).expect("cargo build of the binaries");
        let inputs = Inputs {
            harvest_bin: bins.join("harvest_argus"),
            process_bin: bins.join("process_argus"),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            target: host_target().expect("rustc -vV"),
            mtime: MTIME,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // Two independent runs, side by side (gzip of the debug binaries dominates).
        let (first, second) = std::thread::scope(|s| {
            let a = s.spawn(|| assemble(&inputs, &dir.path().join("a")));
            let b = assemble(&inputs, &dir.path().join("b"));
            let a = a.join().expect("first assembly thread");
            (a.expect("first tarball"), b.expect("second tarball"))
        });
        let bytes = std::fs::read(&first.tarball).expect("read tarball");
        let entries = read_tarball(&bytes);
        Fixture {
            dir,
            inputs,
            first,
            second,
            bytes,
            entries,
        }
    })
}

/// Reads a gzipped ustar stream, checking every header's checksum.
fn read_tarball(gz: &[u8]) -> Vec<TarEntry> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .expect("gunzip");
    assert_eq!(tar.len() % super::RECORD, 0, "whole records");
    let field = |h: &[u8], range: std::ops::Range<usize>| -> String {
        let bytes = &h[range];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8(bytes[..end].to_vec()).expect("ASCII header field")
    };
    let number = |h: &[u8], range: std::ops::Range<usize>| -> u64 {
        let text = field(h, range);
        u64::from_str_radix(text.trim(), 8).expect("octal field")
    };
    let mut entries = Vec::new();
    let mut pos = 0;
    loop {
        let h = &tar[pos..pos + 512];
        if h.iter().all(|&b| b == 0) {
            assert!(
                tar[pos..].iter().all(|&b| b == 0),
                "only zeros after the end"
            );
            break;
        }
        let mut copy = h.to_vec();
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(number(h, 148..155), sum, "header checksum");
        assert_eq!(&h[257..265], b"ustar\x0000", "ustar magic and version");
        let prefix = field(h, 345..500);
        let name = field(h, 0..100);
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = usize::try_from(number(h, 124..136)).expect("size");
        let data = tar[pos + 512..pos + 512 + size].to_vec();
        entries.push(TarEntry {
            path,
            mode: number(h, 100..108),
            uid: number(h, 108..116),
            gid: number(h, 116..124),
            uname: field(h, 265..297),
            gname: field(h, 297..329),
            mtime: number(h, 136..148),
            kind: h[156],
            data,
        });
        pos += 512 + size.next_multiple_of(512);
    }
    entries
}

impl Fixture {
    fn top(&self) -> String {
        self.inputs.stem()
    }

    /// Paths below the top directory.
    fn listing(&self) -> BTreeSet<String> {
        let top = format!("{}/", self.top());
        self.entries
            .iter()
            .filter_map(|e| e.path.strip_prefix(&top).map(str::to_owned))
            .collect()
    }

    fn file(&self, path: &str) -> &[u8] {
        let full = format!("{}/{path}", self.top());
        &self
            .entries
            .iter()
            .find(|e| e.path == full)
            .unwrap_or_else(|| panic!("{path} is not in the tarball"))
            .data
    }

    /// Writes a file of the tarball to a scratch directory and returns its path.
    fn extract(&self, path: &str, to: &Path) -> PathBuf {
        let dest = to.join(path.replace('/', "_"));
        std::fs::write(&dest, self.file(path)).expect("write extracted file");
        dest
    }

    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("PROCESS_ARGUS_CONFIG")
        .env_remove("HARVEST_ARGUS_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn two_runs_give_identical_bytes() {
    let f = fixture();
    let second = std::fs::read(&f.second.tarball).expect("read second tarball");
    assert!(f.bytes == second, "the two tarballs differ");
    assert_eq!(f.first.sha256, f.second.sha256);
    let name = format!("{}.tar.gz", f.top());
    assert_eq!(
        f.first.tarball.file_name().and_then(|n| n.to_str()),
        Some(name.as_str())
    );
    let sums = std::fs::read_to_string(&f.first.sums).expect("SHA256SUMS");
    assert_eq!(
        sums,
        std::fs::read_to_string(&f.second.sums).expect("second SHA256SUMS")
    );
    let digest = argus_core::manifest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&f.bytes));
    assert_eq!(sums, format!("{digest}  {name}\n"));
    if crate::util::have("sha256sum") {
        let out = run(Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(f.first.sums.parent().expect("dist dir")));
        assert!(out.status.success(), "sha256sum -c: {}", text(&out.stdout));
    }
}

#[test]
fn the_binaries_carry_no_fail_points() {
    // Built as a release is (no test target, so without argus-core's `failpoints`, which only
    // the programs' dev-dependencies turn on): nothing in them reads the variable that would
    // make them SIGKILL themselves.
    let f = fixture();
    let needle = argus_core::failpoint::ENV.as_bytes();
    for bin in [&f.inputs.harvest_bin, &f.inputs.process_bin] {
        let bytes = std::fs::read(bin).expect("read binary");
        assert!(bytes.len() > 100_000, "{}: a real binary", bin.display());
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} carries fail points: a release build must not",
            bin.display()
        );
    }
}

#[test]
fn entries_are_sorted_and_owned_by_root_with_fixed_modes_and_time() {
    let f = fixture();
    // gzip header: no flags (no file name), mtime 0, OS Unix.
    assert_eq!(&f.bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&f.bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(f.bytes[9], 3);
    let paths: Vec<&str> = f.entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "entries in byte order");
    assert_eq!(
        paths.first().copied(),
        Some(format!("{}/", f.top()).as_str())
    );
    let bin = format!("{}/bin/", f.top());
    for e in &f.entries {
        assert!(e.path.starts_with(&format!("{}/", f.top())), "{}", e.path);
        assert_eq!((e.uid, e.gid), (0, 0), "{}", e.path);
        assert_eq!((e.uname.as_str(), e.gname.as_str()), ("root", "root"));
        assert_eq!(e.mtime, MTIME, "{}", e.path);
        let dir = e.path.ends_with('/');
        assert_eq!(e.kind, if dir { b'5' } else { b'0' }, "{}", e.path);
        let executable = dir || (e.path.starts_with(&bin) && e.path != bin);
        assert_eq!(e.mode, if executable { 0o755 } else { 0o644 }, "{}", e.path);
    }
    // Every directory holding an entry is listed before it.
    let listed: BTreeSet<&str> = paths.iter().copied().collect();
    for path in &paths {
        let trimmed = path.trim_end_matches('/');
        if let Some((parent, _)) = trimmed.rsplit_once('/') {
            assert!(listed.contains(format!("{parent}/").as_str()), "{path}");
        }
    }
    // The binaries are the inputs, byte for byte.
    let harvest = std::fs::read(&f.inputs.harvest_bin).expect("harvest_argus");
    assert!(f.file("bin/harvest_argus") == harvest.as_slice());
}

#[test]
fn the_listing_holds_every_item() {
    let f = fixture();
    let listing = f.listing();
    let mut required: Vec<String> = [
        "bin/harvest_argus",
        "bin/process_argus",
        "README.md",
        "LICENSE",
        "INSTALL",
        "docs/OPERATIONS.md",
        "examples/harvest_argus.toml",
        "examples/process_argus.toml",
        "systemd/process_argus.service",
        "systemd/process_argus.timer",
        "systemd/process_argus-pass.service",
        "systemd/harvest_argus.service",
        "systemd/harvest_argus.timer",
    ]
    .map(str::to_owned)
    .to_vec();
    for program in super::PROGRAMS {
        required.push(format!("share/bash-completion/completions/{program}"));
        required.push(format!("share/zsh/site-functions/_{program}"));
        required.push(format!("share/fish/vendor_completions.d/{program}.fish"));
    }
    let mut pages = Vec::new();
    for cmd in commands() {
        pages.extend(page_names(&cmd));
    }
    // SPEC §7: both programs and their subcommands, whatever subcommands exist.
    for page in [
        "harvest_argus",
        "harvest_argus-check-config",
        "harvest_argus-convert-config",
        "process_argus",
        "process_argus-check-config",
        "process_argus-convert-config",
    ] {
        assert!(pages.iter().any(|p| p == page), "no man page {page}");
    }
    required.extend(pages.iter().map(|p| format!("share/man/man1/{p}.1")));
    let missing: Vec<&String> = required.iter().filter(|r| !listing.contains(*r)).collect();
    assert!(missing.is_empty(), "missing from the tarball: {missing:?}");

    // The system's tar reads it and sees the same names.
    if crate::util::have("tar") {
        let out = run(Command::new("tar").arg("-tzf").arg(&f.first.tarball));
        assert!(out.status.success(), "tar -tzf: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "tar -tzf: {}", text(&out.stderr));
        let names: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        let ours: Vec<String> = f.entries.iter().map(|e| e.path.clone()).collect();
        assert_eq!(names, ours);
    } else {
        skip("tar", "cross-check the tarball with the system's tar");
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let f = fixture();
    let pages: Vec<String> = f
        .listing()
        .into_iter()
        .filter(|p| p.starts_with("share/man/man1/") && p.ends_with(".1"))
        .collect();
    assert!(pages.len() >= 6, "{pages:?}");
    for page in &pages {
        let body = text(f.file(page));
        assert!(body.contains(".SH NAME"), "{page}");
        assert!(body.contains(".SH \"SEE ALSO\""), "{page}");
        assert!(body.contains(&f.inputs.version), "{page}: version");
        assert!(
            body.contains("2023-11-14"),
            "{page}: the date of the time stamp"
        );
    }
    if !crate::util::have("mandoc") && !Path::new("/usr/bin/mandoc").exists() {
        skip("mandoc", "lint the man pages");
        return;
    }
    let dir = f.scratch("man");
    for page in &pages {
        let path = f.extract(page, &dir);
        let out = run(Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&path));
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "mandoc -T lint {page}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        // And it renders to text that names the command.
        let out = run(Command::new("mandoc").args(["-T", "utf8"]).arg(&path));
        assert!(out.status.success(), "mandoc {page}");
        let name = page
            .trim_start_matches("share/man/man1/")
            .trim_end_matches(".1");
        let program = name.split('-').next().unwrap_or(name);
        assert!(text(&out.stdout).contains(program), "{page}");
    }
}

/// The example with every `#key = value` line (an optional key at its default) switched on.
fn uncommented(example: &str) -> String {
    example
        .lines()
        .map(|line| {
            let is_key = line
                .strip_prefix('#')
                .and_then(|rest| rest.split_once(" = "))
                .is_some_and(|(key, _)| {
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                });
            if is_key { &line[1..] } else { line }
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn keys(toml_text: &str) -> BTreeSet<String> {
    let table: toml::Table = toml_text.parse().expect("valid TOML");
    table.keys().filter(|k| *k != "hosts").cloned().collect()
}

#[test]
fn the_example_harvest_config_passes_check_config() {
    let f = fixture();
    let dir = f.scratch("harvest-config");
    let example = text(f.file("examples/harvest_argus.toml"));
    let full = uncommented(&example);
    assert_ne!(example, full, "the example shows optional keys");
    let table: toml::Table = example.parse().expect("the example is TOML");
    let mut hosts: Vec<String> = table
        .get("hosts")
        .and_then(toml::Value::as_table)
        .expect("[hosts.NAME] tables in the example")
        .keys()
        .cloned()
        .collect();
    // A sensor without a table of its own gets the top-level settings.
    hosts.push("sensor-without-table".to_owned());
    for (name, body) in [("as-shipped.toml", &example), ("full.toml", &full)] {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write config");
        // check-config reads no directory, so the example's paths need not exist.
        for host in &hosts {
            let out = run(Command::new(&f.inputs.harvest_bin)
                .arg("check-config")
                .arg("--config")
                .arg(&path)
                .args(["--host", host]));
            assert!(
                out.status.success(),
                "harvest_argus check-config {name} --host {host}: {}",
                text(&out.stderr)
            );
        }
    }
    // Every key harvest_argus knows is in the example, and check-config shows every one of
    // them, as shipped and with all keys on, in units and with its source.
    for name in ["as-shipped.toml", "full.toml"] {
        let out = run(Command::new(&f.inputs.harvest_bin)
            .arg("check-config")
            .arg("--config")
            .arg(dir.join(name))
            .args(["--host", "sensor2"]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let shown = text(&out.stdout);
        for key in keys(&full) {
            assert!(
                shown.contains(&format!("\n{key} = ")),
                "{name}: {key} in:\n{shown}"
            );
        }
        let out = run(Command::new(&f.inputs.harvest_bin)
            .arg("check-config")
            .arg("--json")
            .arg("--config")
            .arg(dir.join(name))
            .args(["--host", "sensor2"]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(json_keys(&text(&out.stdout)), keys(&full), "{name}");
    }
}

/// The keys of the settings `check-config --json` prints.
fn json_keys(json: &str) -> BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_str(json).expect("check-config --json");
    doc["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .map(|s| s["key"].as_str().expect("key").to_owned())
        .collect()
}

#[test]
fn the_example_process_config_passes_check_config() {
    let f = fixture();
    let dir = f.scratch("process-config");
    let example = text(f.file("examples/process_argus.toml"));
    let full = uncommented(&example);
    assert_ne!(example, full, "the example shows optional keys");
    // check-config wants the dropzone to exist and the other directories to be creatable:
    // the example's absolute paths move below a scratch directory.
    let root = dir.join("root");
    let relocate = |body: &str| body.replace(" = \"/", &format!(" = \"{}/", root.display()));
    let drop_dir: toml::Table = example.parse().expect("the example is TOML");
    let drop_dir = drop_dir["drop_dir"].as_str().expect("drop_dir").to_owned();
    std::fs::create_dir_all(root.join(drop_dir.trim_start_matches('/'))).expect("dropzone");
    for (name, body) in [("as-shipped.toml", &example), ("full.toml", &full)] {
        let path = dir.join(name);
        std::fs::write(&path, relocate(body)).expect("write config");
        let out = run(Command::new(&f.inputs.process_bin)
            .arg("check-config")
            .arg("--config")
            .arg(&path));
        assert!(
            out.status.success(),
            "process_argus check-config {name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        // The example as shipped converts too (convert-config reads no directory).
        let raw = dir.join(format!("raw-{name}"));
        std::fs::write(&raw, body).expect("write config");
        let out = run(Command::new(&f.inputs.process_bin)
            .arg("convert-config")
            .arg(&raw));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Every key process_argus knows is in the example: convert-config prints them all.
    let out = run(Command::new(&f.inputs.process_bin)
        .arg("convert-config")
        .arg(dir.join("raw-full.toml")));
    assert_eq!(keys(&text(&out.stdout)), keys(&full));
    // And check-config shows every effective setting, as shipped and with all keys on (the
    // hooks too, which the example shows in a comment).
    let mut every = keys(&full);
    every.insert("hook".to_owned());
    for name in ["as-shipped.toml", "full.toml"] {
        let path = dir.join(name);
        let out = run(Command::new(&f.inputs.process_bin)
            .arg("check-config")
            .arg("--config")
            .arg(&path));
        let shown = text(&out.stdout);
        for key in &every {
            assert!(
                shown.contains(&format!("\n{key} = ")),
                "{name}: {key} in:\n{shown}"
            );
        }
        let out = run(Command::new(&f.inputs.process_bin)
            .args(["check-config", "--json", "--config"])
            .arg(&path));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(json_keys(&text(&out.stdout)), every, "{name}");
    }
}

#[test]
fn systemd_units_run_commands_that_exist_and_verify() {
    let f = fixture();
    let units: Vec<String> = f
        .listing()
        .into_iter()
        .filter(|p| p.starts_with("systemd/") && !p.ends_with('/'))
        .collect();
    let subcommands = |program: &str| -> Vec<String> {
        commands()
            .into_iter()
            .find(|c| c.get_name() == program)
            .map(|c| {
                c.get_subcommands()
                    .map(|s| s.get_name().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let names: BTreeSet<&str> = units
        .iter()
        .map(|u| u.trim_start_matches("systemd/"))
        .collect();
    for unit in &units {
        let body = text(f.file(unit));
        for line in body.lines() {
            if let Some(command) = line.strip_prefix("ExecStart=") {
                let mut words = command.split_whitespace();
                let program = words.next().expect("a program");
                let program = program.rsplit('/').next().unwrap_or(program);
                if let Some(word) = words.next().filter(|w| !w.starts_with('-')) {
                    assert!(
                        subcommands(program).iter().any(|s| s == word),
                        "{unit}: {program} has no subcommand {word}"
                    );
                }
            }
            if let Some(target) = line.strip_prefix("Unit=") {
                assert!(names.contains(target), "{unit}: no unit {target}");
            }
        }
        if let Some(timer) = unit.strip_suffix(".timer")
            && !body.contains("\nUnit=")
        {
            let service = format!("{}.service", timer.trim_start_matches("systemd/"));
            assert!(names.contains(service.as_str()), "{unit}: no {service}");
        }
    }
    if !crate::util::have("systemd-analyze") {
        skip("systemd-analyze", "verify the systemd units");
        return;
    }
    // verify checks that every executable exists: point the units at the debug binaries, and
    // at `true` for any other program this machine lacks (a minimal container has no kill).
    let dir = f.scratch("units");
    let mut paths = Vec::new();
    for unit in &units {
        let body = text(f.file(unit))
            .replace(
                "/usr/local/integrity/bin/process_argus",
                &f.inputs.process_bin.display().to_string(),
            )
            .replace(
                "/usr/local/integrity/bin/harvest_argus",
                &f.inputs.harvest_bin.display().to_string(),
            );
        let body: String = body
            .lines()
            .map(|line| {
                let fixed = line.split_once('=').and_then(|(key, value)| {
                    let program = value.split_whitespace().next()?;
                    (key.starts_with("Exec") && !Path::new(program).exists())
                        .then(|| line.replacen(program, "/usr/bin/true", 1))
                });
                fixed.unwrap_or_else(|| line.to_owned()) + "\n"
            })
            .collect();
        let path = dir.join(unit.trim_start_matches("systemd/"));
        std::fs::write(&path, body).expect("write unit");
        paths.push(path);
    }
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .env("SYSTEMD_LOG_LEVEL", "warning"));
    let messages = text(&out.stderr);
    let ours: Vec<&str> = messages
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()) || l.contains("argus"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {messages}"
    );
}

/// Every shell's completions parse in that shell (bash and zsh `-n`, fish `--no-execute`) and
/// know the subcommands.
#[test]
fn the_completions_parse_in_their_shells() {
    let f = fixture();
    let dir = f.scratch("completions");
    for (shell, check, place) in [
        ("bash", "-n", "share/bash-completion/completions/{}"),
        ("zsh", "-n", "share/zsh/site-functions/_{}"),
        (
            "fish",
            "--no-execute",
            "share/fish/vendor_completions.d/{}.fish",
        ),
    ] {
        if !crate::util::have(shell) {
            skip(shell, &format!("check the {shell} completions"));
            continue;
        }
        for program in super::PROGRAMS {
            let name = place.replace("{}", program);
            let path = f.extract(&name, &dir);
            let out = run(Command::new(shell).arg(check).arg(&path));
            assert!(
                out.status.success(),
                "{shell} {check} {name}: {}",
                text(&out.stderr)
            );
            assert!(text(f.file(&name)).contains("check-config"), "{name}");
        }
    }
}

#[test]
fn the_time_stamp_defaults_to_the_last_commit() {
    // SOURCE_DATE_EPOCH when set (a packager's build), else git: either way a time after 2020.
    let epoch = source_date_epoch().expect("a time stamp from SOURCE_DATE_EPOCH or git");
    assert!(epoch > 1_577_836_800, "{epoch}");
}
