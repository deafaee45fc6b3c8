//! External tools the tests use (`ra`, `argus`, the compressors): present, or a loud skip that
//! becomes a failure under `CI=true`.

use std::path::Path;
use std::process::{Command, Stdio};

/// True under CI, where every test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when `tool` can be run. When it cannot, says so loudly; under CI that is a failure.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(!in_ci(), "{tool} is required under CI=true");
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

/// True when running as root. When not, says so loudly; under CI that is a failure.
pub fn root(why: &str) -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        assert!(!in_ci(), "root is required under CI=true ({why})");
        eprintln!("SKIPPED: not root ({why})");
    }
    ok
}

/// Records `ra` reads from an argus file (plain or compressed), management records included.
pub fn ra_records(file: &Path) -> usize {
    let out = Command::new("ra")
        .args(["-n", "-L", "-1", "-r"])
        .arg(file)
        .output()
        .expect("run ra");
    assert!(out.status.success(), "ra failed on {}", file.display());
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}
