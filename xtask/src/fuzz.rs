//! `cargo xtask fuzz [TARGET] [--time S] [--runs N] [--seed N]`: the coverage-guided fuzz targets of `fuzz/`, built
//! with libFuzzer (the `libfuzzer-sys` crate) and LLVM's coverage instrumentation, set by hand
//! through stable `-C` flags, so that no nightly toolchain and no cargo plugin is needed.
//!
//! Each target runs for `--time` seconds (60 by default) over its corpus in
//! `target/fuzz/corpus/TARGET` (kept between runs), seeded from `fuzz/seeds/TARGET`, the argus
//! samples of argus-core, and the recipe's files in `../shared/seed` when present. A crash
//! leaves its input in `target/fuzz/artifacts/TARGET/` and fails the command.
//!
//! `--runs N --seed N` make a run repeatable: libFuzzer's random choices start from the seed
//! and each target stops after N inputs (or at `--time`, whichever comes first), so that the
//! same commit over the same corpus tries the same inputs. CI runs that way; a longer search
//! for new findings is a plain `cargo xtask fuzz`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The targets, and the seed directories (relative to the workspace root) each starts from.
const TARGETS: [(&str, &[&str]); 11] = [
    ("walker", &["crates/argus-core/testdata"]),
    ("mar", &["crates/argus-core/testdata"]),
    ("split", &["crates/argus-core/testdata"]),
    ("dropzone_names", &["fuzz/seeds/dropzone_names"]),
    ("quarantine_reason", &["fuzz/seeds/quarantine_reason"]),
    ("journal", &["fuzz/seeds/journal"]),
    ("ledger", &["fuzz/seeds/ledger"]),
    (
        "process_config",
        &[
            "fuzz/seeds/process_config",
            "dist/examples",
            "../shared/seed",
        ],
    ),
    (
        "harvest_config",
        &["fuzz/seeds/harvest_config", "dist/examples"],
    ),
    (
        "convert_config",
        &["fuzz/seeds/convert_config", "../shared/seed"],
    ),
    ("grammar", &["fuzz/seeds/grammar"]),
];

/// LLVM's SanitizerCoverage as libFuzzer reads it: 8-bit edge counters, the PC table, and
/// comparison tracing (which lets it find magic numbers such as argus' cookies). All stable
/// flags; `--cfg fuzzing` is the convention fuzzed crates may test for.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// How long each target runs, and from which random seed.
#[derive(Clone, Copy)]
struct Budget {
    seconds: u64,
    runs: Option<u64>,
    seed: Option<u64>,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut only = None;
    let mut budget = Budget {
        seconds: 60,
        runs: None,
        seed: None,
    };
    let mut it = args.iter();
    let number = |it: &mut std::slice::Iter<'_, String>, what: &str| {
        it.next()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("{what} takes a positive number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => budget.seconds = number(&mut it, "--time")?,
            "--runs" => budget.runs = Some(number(&mut it, "--runs")?),
            "--seed" => budget.seed = Some(number(&mut it, "--seed")?),
            name if TARGETS.iter().any(|(t, _)| *t == name) => only = Some(name.to_owned()),
            other => {
                let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                return Err(format!(
                    "fuzz: unknown argument {other:?} (targets: {})",
                    names.join(", ")
                ));
            }
        }
    }
    if !crate::util::have("c++") {
        // libfuzzer-sys builds libFuzzer from its C++ source.
        let why = "no C++ compiler (c++): libFuzzer cannot be built; install g++";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(format!("fuzz: {why}"));
        }
        eprintln!("\n*** xtask fuzz: SKIPPED: {why} ***\n");
        return Ok(());
    }
    let bin_dir = build()?;
    let mut results = Vec::new();
    for (name, seeds) in TARGETS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        results.push(run_target(&bin_dir, name, seeds, budget)?);
    }
    eprintln!(
        "xtask fuzz: {:<18} {:>6} {:>12} {:>8} {:>9}",
        "target", "secs", "executions", "edges", "features"
    );
    for r in &results {
        eprintln!(
            "xtask fuzz: {:<18} {:>6} {:>12} {:>8} {:>9}",
            r.name, r.seconds, r.execs, r.edges, r.features
        );
    }
    let crashed: Vec<String> = results.iter().filter_map(|r| r.crash.clone()).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz: crashes found:\n{}", crashed.join("\n")))
    }
}

/// Builds every target, instrumented, and returns the directory holding the binaries.
fn build() -> Result<PathBuf, String> {
    let root = crate::root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let host = host_triple()?;
    let target_dir = crate::util::target_dir().join("fuzz");
    eprintln!("xtask fuzz: building the targets (release, instrumented, {host})");
    // An explicit --target keeps the flags off build scripts and proc macros.
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--bins", "--manifest-path"])
        .arg(root.join("fuzz/Cargo.toml"))
        .args(["--target", &host])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".to_owned());
    }
    Ok(target_dir.join(host).join("release"))
}

fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// What one run of a target did.
struct Outcome {
    name: &'static str,
    seconds: u64,
    execs: u64,
    edges: u64,
    features: u64,
    crash: Option<String>,
}

fn run_target(
    bin_dir: &Path,
    name: &'static str,
    seeds: &[&str],
    budget: Budget,
) -> Result<Outcome, String> {
    let root = crate::root();
    let work = crate::util::target_dir().join("fuzz");
    let corpus = work.join("corpus").join(name);
    let artifacts = work.join("artifacts").join(name);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut prefix = artifacts.into_os_string();
    prefix.push("/");
    let mut cmd = Command::new(bin_dir.join(name));
    cmd.arg(format!("-max_total_time={}", budget.seconds))
        .args(budget.runs.map(|n| format!("-runs={n}")))
        .args(budget.seed.map(|n| format!("-seed={n}")))
        .arg("-print_final_stats=1")
        // A parser that takes seconds over a few kilobytes is a finding too.
        .arg("-timeout=10")
        .arg({
            let mut a = std::ffi::OsString::from("-artifact_prefix=");
            a.push(&prefix);
            a
        })
        .arg(&corpus)
        .args(seeds.iter().map(|s| root.join(s)).filter(|p| p.is_dir()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match budget.runs {
        Some(n) => eprintln!(
            "xtask fuzz: {name}: {n} inputs, at most {} s",
            budget.seconds
        ),
        None => eprintln!("xtask fuzz: {name}: {} s", budget.seconds),
    }
    let started = std::time::Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin_dir.join(name).display()))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let stat = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let last_status = log
        .lines()
        .rev()
        .find(|l| l.contains(" cov: "))
        .unwrap_or("");
    let field = |key: &str| {
        last_status
            .split_whitespace()
            .skip_while(|w| *w != key)
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let crash = (!out.status.success()).then(|| {
        let tail: Vec<&str> = log.lines().filter(|l| !l.starts_with("stat::")).collect();
        let tail = tail[tail.len().saturating_sub(30)..].join("\n");
        format!(
            "{name} ({}): replay with {} ARTIFACT (in {}):\n{tail}",
            out.status,
            bin_dir.join(name).display(),
            Path::new(&prefix).display()
        )
    });
    Ok(Outcome {
        name,
        seconds: started.elapsed().as_secs(),
        execs: stat("stat::number_of_executed_units:"),
        edges: field("cov:"),
        features: field("ft:"),
        crash,
    })
}
