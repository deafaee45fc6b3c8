//! Locating the workspace's binaries and sample files.
//!
//! Cargo builds the binaries of the crate whose integration tests run and names each in
//! `CARGO_BIN_EXE_<name>`, at build time and at run time. A test of one program that needs the
//! other one too (harvest with `harvest_argus`, then ingest with `process_argus`) finds it in the
//! same target directory, where `cargo test --workspace` has built both; it refuses one that is
//! missing or older than the sources, so that it never tests a stale build.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("../.."), Path::to_path_buf)
}

/// The path of a workspace binary (`process_argus`, `harvest_argus`).
pub fn bin(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return path.into();
    }
    let path = profile_dir().join(name);
    let hint =
        format!("run the tests with `cargo test --workspace`, or `cargo build --bin {name}` first");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is not built ({e}): {hint}", path.display()));
    let newest = crates_of(name)
        .iter()
        .filter_map(|dir| newest_source(dir))
        .max_by_key(|(_, t)| *t);
    if let Some(source) = newest
        && source.1 > built
    {
        panic!(
            "{} is older than {}: {hint}",
            path.display(),
            source.0.display()
        );
    }
    path
}

/// The directory cargo puts this profile's binaries in (the test executable lives in `deps/`
/// below it).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/PROFILE/deps/TEST")
}

/// The directories of the workspace crates binary `name` is built from: the crate that
/// declares it and, transitively, the workspace crates in its `[dependencies]`.
fn crates_of(name: &str) -> Vec<PathBuf> {
    let crates = workspace().join("crates");
    let manifest = |dir: &Path| std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    let Some(home) = std::fs::read_dir(&crates).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path())
            .find(|dir| manifest(dir).contains(&format!("name = \"{name}\"")))
    }) else {
        return vec![crates];
    };
    let mut found = vec![home];
    let mut i = 0;
    while i < found.len() {
        let text = manifest(&found[i]);
        let deps = text
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap_or_default();
        for line in deps.lines() {
            let dep = line.split(['.', ' ', '=']).next().unwrap_or_default();
            let dir = crates.join(dep);
            if !dep.is_empty() && dir.join("Cargo.toml").is_file() && !found.contains(&dir) {
                found.push(dir);
            }
        }
        i += 1;
    }
    found
}

/// The most recently modified `.rs` or `Cargo.toml` below `dir`, skipping test directories
/// (which do not go into a binary).
fn newest_source(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let mut newest: Option<(PathBuf, SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let found = if kind.is_dir() {
            if matches!(
                entry.file_name().to_str(),
                Some("tests" | "testdata" | "test-support")
            ) {
                continue;
            }
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs") || entry.file_name() == "Cargo.toml" {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (path, t))
        } else {
            None
        };
        if let Some(found) = found
            && newest.as_ref().is_none_or(|n| found.1 > n.1)
        {
            newest = Some(found);
        }
    }
    newest
}

/// The real argus sample files shipped with argus-core.
pub fn sample(name: &str) -> PathBuf {
    workspace().join("crates/argus-core/testdata").join(name)
}

/// What a binary prints on stdout for `args` (`--help`, `--version`), which must succeed.
pub fn help(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin(program))
        .args(args)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).expect("utf8 help")
}
