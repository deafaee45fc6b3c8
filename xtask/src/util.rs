//! Small helpers shared by the xtask commands.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cargo build` for the product binaries and returns the directory holding them.
pub(crate) fn build(release: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::root()).args([
        "build",
        "--bin",
        "process_argus",
        "--bin",
        "harvest_argus",
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the binaries failed".to_owned());
    }
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` when set (relative to the workspace
/// root), else `target/` in the workspace.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => crate::root().join(dir),
        _ => crate::root().join("target"),
    }
}

/// A real argus sample shipped with argus-core.
pub(crate) fn sample(name: &str) -> Result<Vec<u8>, String> {
    let path = crate::root().join("crates/argus-core/testdata").join(name);
    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The four argus 3 samples the backlogs of the bench are made of, in a fixed order.
pub(crate) fn four_samples() -> Result<[Vec<u8>; 4], String> {
    Ok([
        sample("hostA.argus")?,
        sample("hostB.argus")?,
        sample("hostC.argus")?,
        sample("hostD.chunk2.argus")?,
    ])
}

/// True when `tool` runs.
pub(crate) fn have(tool: &str) -> bool {
    have_exact(tool, "--version")
}

/// True when `tool ARG` runs (for tools without `--version`).
pub(crate) fn have_exact(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Records `ra` reads from a file, when `ra` is installed.
pub(crate) fn ra_records(file: &Path) -> Option<usize> {
    let out = Command::new("ra")
        .args(["-n", "-L", "-1", "-r"])
        .arg(file)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| out.stdout.iter().filter(|&&b| b == b'\n').count())
}

/// Writes a process_argus TOML config for a tree under `root`.
pub(crate) fn write_config(root: &Path, clients: &[&str], extra: &str) -> Result<PathBuf, String> {
    let text = ::test_support::server::process_toml(
        [
            &root.join("incoming"),
            &root.join("operational"),
            &root.join("archive"),
            &root.join("log"),
        ],
        clients,
        extra,
    );
    let path = root.join("process_argus.toml");
    std::fs::create_dir_all(root.join("incoming")).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}
