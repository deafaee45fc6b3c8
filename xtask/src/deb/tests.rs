//! Tests of the Debian packages: the same bytes twice, `lintian` with no error and no warning,
//! the control fields, and, as root, the whole life of both packages on this machine: `dpkg -i`,
//! `check-config` of the installed configs, `systemd-analyze verify` of the installed units,
//! `dpkg -r` (conffiles and data stay) and `dpkg -P` (all gone).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Inputs, PACKAGES, build};

/// 2026-11-27 12:00:00 UTC.
const MTIME: u64 = 1_795_780_800;

struct Fixture {
    _dir: tempfile::TempDir,
    debs: Vec<PathBuf>,
    again: Vec<PathBuf>,
}

/// True when `tool` runs; a loud skip otherwise, a failure under CI.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: {tool} is required (apt-get install lintian dpkg-dev)"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            if !["dpkg-deb", "dpkg-shlibdeps", "strip"]
                .iter()
                .all(|t| have(t))
            {
                return None;
            }
            let bins = crate::util::build(false).expect("cargo build of the binaries");
            let inputs = Inputs {
                harvest_bin: bins.join("harvest_argus"),
                process_bin: bins.join("process_argus"),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                mtime: MTIME,
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let debs = build(&inputs, &dir.path().join("a")).expect("the packages");
            let again = build(&inputs, &dir.path().join("b")).expect("the packages again");
            Some(Fixture {
                _dir: dir,
                debs,
                again,
            })
        })
        .as_ref()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_packages_are_reproducible_and_lintian_clean() {
    let Some(f) = fixture() else { return };
    assert_eq!(f.debs.len(), 2);
    for (a, b) in f.debs.iter().zip(&f.again) {
        assert_eq!(
            std::fs::read(a).expect("deb"),
            std::fs::read(b).expect("deb"),
            "{} built twice differs",
            a.display()
        );
    }
    for (deb, p) in f.debs.iter().zip(&PACKAGES) {
        let (ok, control) = run(Command::new("dpkg-deb").args(["-f"]).arg(deb));
        assert!(ok, "{control}");
        assert!(
            control.contains(&format!("Package: {}\n", p.name)),
            "{control}"
        );
        assert!(
            control.contains("Depends: libc6 (>= "),
            "from dpkg-shlibdeps: {control}"
        );
        if p.name == "argus-webjob-sensor" {
            assert!(control.contains("Recommends: argus-server\n"), "{control}");
        }
        let (_, listing) = run(Command::new("dpkg-deb").arg("-c").arg(deb));
        for path in [
            format!("./usr/bin/{}", p.program),
            format!("./usr/share/man/man1/{}.1.gz", p.program),
            format!("./etc/argus-webjob/{}.toml", p.program),
            format!("./lib/systemd/system/{}", p.units[0]),
            format!("./usr/share/doc/{}/copyright", p.name),
            format!("./usr/share/bash-completion/completions/{}", p.program),
        ] {
            assert!(listing.contains(&path), "{path} in {}:\n{listing}", p.name);
        }
        let (ok, conffiles) = run(Command::new("dpkg-deb")
            .args(["-I"])
            .arg(deb)
            .arg("conffiles"));
        assert!(ok, "{conffiles}");
        assert_eq!(conffiles, format!("/etc/argus-webjob/{}.toml\n", p.program));
    }
    if !have("lintian") {
        return;
    }
    let (_, report) = run(Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .args(&f.debs));
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(bad.is_empty(), "lintian:\n{report}");
}

/// Purges both packages (when installed) on every way out of the install test.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["-P", "argus-webjob-server", "argus-webjob-sensor"])
            .output();
    }
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
}

#[test]
fn the_packages_install_check_remove_and_purge() {
    let Some(f) = fixture() else { return };
    let root = nix::unistd::geteuid().is_root();
    if !root || !have("dpkg") || !have("systemd-analyze") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: installing the packages needs root"
        );
        eprintln!("SKIPPED: installing the packages needs root, dpkg and systemd-analyze");
        return;
    }
    if PACKAGES.iter().any(|p| installed(p.name)) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the packages are installed already"
        );
        eprintln!(
            "SKIPPED: argus-webjob packages are installed on this machine; not touching them"
        );
        return;
    }
    let _purge = Purge;
    let (ok, text) = run(Command::new("dpkg").arg("-i").args(&f.debs));
    assert!(ok, "dpkg -i: {text}");
    for dir in ["/var/lib/argus-webjob", "/var/log/argus-webjob"] {
        assert!(Path::new(dir).is_dir(), "{dir} created on install");
    }
    // The installed configs pass check-config (the example's dropzone made for the check).
    let dropzone = Path::new("/integrity/incoming");
    let made = !dropzone.exists();
    std::fs::create_dir_all(dropzone).expect("dropzone");
    let (ok, text) = run(Command::new("/usr/bin/process_argus").args([
        "check-config",
        "--config",
        "/etc/argus-webjob/process_argus.toml",
    ]));
    if made {
        let _ = std::fs::remove_dir(dropzone);
        let _ = std::fs::remove_dir("/integrity");
    }
    assert!(ok, "process_argus check-config: {text}");
    let (ok, text) = run(Command::new("/usr/bin/harvest_argus").args([
        "check-config",
        "--config",
        "/etc/argus-webjob/harvest_argus.toml",
        "--host",
        "sensor1",
    ]));
    assert!(ok, "harvest_argus check-config: {text}");
    let units: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| p.units.iter().map(|u| format!("/lib/systemd/system/{u}")))
        .collect();
    let (ok, text) = run(Command::new("systemd-analyze").arg("verify").args(&units));
    assert!(ok, "systemd-analyze verify: {text}");
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let text = std::fs::read_to_string(unit).expect("unit");
        assert!(
            text.contains("ExecStart=/usr/bin/") && text.contains("--config /etc/argus-webjob/"),
            "{unit}: {text}"
        );
        // Only WebJob itself stays where it installs (a commented alternative).
        assert!(
            !text
                .lines()
                .any(|l| !l.starts_with('#') && l.contains("/usr/local/integrity/bin")),
            "{unit}: {text}"
        );
    }

    // Removed: the programs go, the conffiles and the data stay.
    let (ok, text) = run(Command::new("dpkg")
        .arg("-r")
        .args(PACKAGES.iter().map(|p| p.name)));
    assert!(ok, "dpkg -r: {text}");
    assert!(!Path::new("/usr/bin/process_argus").exists());
    assert!(Path::new("/etc/argus-webjob/process_argus.toml").exists());
    assert!(Path::new("/var/lib/argus-webjob").is_dir());
    // Purged: all gone.
    let (ok, text) = run(Command::new("dpkg")
        .arg("-P")
        .args(PACKAGES.iter().map(|p| p.name)));
    assert!(ok, "dpkg -P: {text}");
    for gone in [
        "/etc/argus-webjob",
        "/var/lib/argus-webjob",
        "/var/log/argus-webjob",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} after purge");
    }
}
