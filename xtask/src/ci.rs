//! `cargo xtask ci`: every check a change must pass, in the order that fails fastest.

use std::process::Command;

/// Inputs each fuzz target tries in CI, from a fixed seed (so that a commit passes or fails
/// the same way on every run), and the time each may take at most (all 11 take about 100 s
/// here, the slowest about 25 s).
const FUZZ_RUNS: u64 = 200_000;
const FUZZ_SEED: u64 = 1;
const FUZZ_MAX_SECONDS: u64 = 120;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("ci takes no arguments (got {extra:?})"));
    }
    let root = crate::root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let steps: [(&str, &[&str]); 8] = [
        ("rustfmt", &["fmt", "--all", "--", "--check"]),
        // The libraries as an embedder gets them: argus-core without its codecs and fail
        // points must build, and the two small libraries never ask for more.
        (
            "libraries without default features",
            &[
                "check",
                "-p",
                "argus-core",
                "-p",
                "argus-proc",
                "-p",
                "webjob-drop",
                "--no-default-features",
            ],
        ),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("tests", &["test", "--workspace", "--all-features"]),
        // The embedding examples run and check what they did (cargo test only builds them).
        (
            "example: one pass with a hook written in Rust",
            &["run", "-q", "-p", "argus-ingest", "--example", "one_pass"],
        ),
        (
            "example: a WebJob job that is not argus, through the content seam",
            &["run", "-q", "-p", "argus-ingest", "--example", "other_job"],
        ),
        // The API documentation, every link resolved (RUSTDOCFLAGS below).
        ("docs", &["doc", "--workspace", "--no-deps"]),
        (
            "cargo-deny",
            &["deny", "check", "bans", "licenses", "sources"],
        ),
    ];
    for (name, cargo_args) in steps {
        if name == "cargo-deny" {
            ensure_cargo_deny(&cargo)?;
        }
        eprintln!("xtask ci: {name}: cargo {}", cargo_args.join(" "));
        let mut command = Command::new(&cargo);
        command.args(cargo_args).current_dir(&root);
        if name == "docs" {
            command.env("RUSTDOCFLAGS", "-D warnings");
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("{name} failed ({status})"));
        }
    }
    // Every fuzz target over its seeds for a fixed number of inputs from a fixed seed: the
    // seeds and the inputs of earlier findings still pass, a shallow crash shows up, and the
    // verdict is the same on every run of a commit. `cargo xtask fuzz` searches longer.
    let fuzz_args = [
        "--runs".to_owned(),
        FUZZ_RUNS.to_string(),
        "--seed".to_owned(),
        FUZZ_SEED.to_string(),
        "--time".to_owned(),
        FUZZ_MAX_SECONDS.to_string(),
    ];
    eprintln!("xtask ci: fuzz: cargo xtask fuzz {}", fuzz_args.join(" "));
    crate::fuzz::run(&fuzz_args)?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

/// cargo-deny is a tool, not a dependency: install it when it is missing.
fn ensure_cargo_deny(cargo: &str) -> Result<(), String> {
    let present = Command::new(cargo)
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask ci: cargo-deny is missing; installing it (cargo install --locked cargo-deny)");
    let status = Command::new(cargo)
        .args(["install", "--locked", "cargo-deny"])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("installing cargo-deny failed".to_owned())
    }
}
