//! `cargo xtask bench`, part (g): the record walker's throughput on argus 3 and on argus 5 data,
//! measured in the same run. The walker is on every upload's hot path (process_argus walks each
//! `.out` once, harvest_argus each chunk), so argus 5 data must walk about as fast as argus 3.
//!
//! The data is each version's `hostA` sample (the same traffic captured by argus 3.0.8 and by
//! argus 5.0.3), repeated to [`MIB`] MiB and walked from the page cache by the release build of
//! argus-core's `walk` example, exactly as `record::walk` reads a file. Runs alternate between
//! the versions and the fastest of each counts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Row;
use crate::util;

/// Size of each file walked.
const MIB: usize = 256;
/// Runs per version.
const RUNS: usize = 5;

pub(crate) fn run(dir: &Path) -> Result<(Row, String), String> {
    println!("bench (g): the record walker on {MIB} MiB of argus 3 and of argus 5 data");
    let walker = build()?;
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for (name, sample) in [("v3", "hostA.argus"), ("v5", "argus5/hostA.argus")] {
        let unit = util::sample(sample)?;
        let copies = (MIB * 1024 * 1024).div_ceil(unit.len());
        let path = dir.join(format!("{name}.argus"));
        fs::write(&path, unit.repeat(copies)).map_err(|e| e.to_string())?;
        files.push((path, (unit.len() * copies) as u64));
    }
    let mut best = [Duration::MAX; 2];
    // One run of each first to warm the page cache and the binary.
    for round in 0..=RUNS {
        for (i, (path, _)) in files.iter().enumerate() {
            let took = timed_walk(&walker, path)?;
            if round > 0 {
                best[i] = best[i].min(took);
            }
        }
    }
    let rate = |i: usize| files[i].1 as f64 / 1e6 / best[i].as_secs_f64().max(1e-9);
    let (v3, v5) = (rate(0), rate(1));
    // As a row: the time argus 5 data would take for argus 3's byte count, against argus 3's.
    let scaled = best[1].mul_f64(files[0].1 as f64 / files[1].1 as f64);
    let ratio = v5 / v3;
    let row = Row {
        name: "(g) walker throughput: argus 5 / argus 3 data".to_owned(),
        ours: scaled,
        baseline: best[0],
        target: ">= 0.90x",
        met: ratio >= 0.9,
    };
    let note = format!(
        "(g) walker: argus 3 data {v3:.0} MB/s, argus 5 data {v5:.0} MB/s ({:.1}% of argus 3), fastest of {RUNS} runs of {MIB} MiB each",
        ratio * 100.0
    );
    Ok((row, note))
}

/// Builds the `walk` example in release mode and returns its path.
fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(crate::root())
        .args([
            "build",
            "--release",
            "-p",
            "argus-core",
            "--example",
            "walk",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building argus-core's walk example failed".to_owned());
    }
    Ok(crate::root().join("target/release/examples/walk"))
}

/// One walk of `file`; it must be clean.
fn timed_walk(walker: &Path, file: &Path) -> Result<Duration, String> {
    let start = std::time::Instant::now();
    let out = Command::new(walker)
        .arg(file)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", walker.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "(g): {} does not walk clean: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(took)
}
