//! Repository automation, run as `cargo xtask COMMAND` (see `.cargo/config.toml`).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a developer tool that talks to its user"
)]

mod bench;
mod ci;
mod deb;
mod demo;
mod dist;
mod fuzz;
mod tidy;
mod util;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask COMMAND

commands:
  ci      the full check CI runs: rustfmt, clippy (warnings are errors), every test, cargo-deny,
          each fuzz target for 200,000 inputs from a fixed seed
  demo    lay out a dropzone of real argus uploads in ./demo (or --dir DIR), run one
          process_argus pass on it, and show what came out
  dist    release build and a reproducible tarball target/dist/argus-webjob-VERSION-TARGET.tar.gz
          (binaries, man pages, completions, example configs, systemd units) with SHA256SUMS;
          time stamps from SOURCE_DATE_EPOCH, else the last commit
  deb     release build and the Debian packages target/deb/argus-webjob-{server,sensor}_*.deb,
          built with dpkg-deb (reproducible in the same way)
  bench   measure process_argus against its baselines in one run and print the ratios
          (--only abcdefghij, --small N, --big-mib N, --big-count N, --rss-mib N,
           --rounds N, --round-uploads N, --sensors N, --others N, --passes N,
           --ours PROCESS_ARGUS, --work DIR)
  fuzz    build the fuzz targets of fuzz/ with libFuzzer and run each (or only TARGET) for
          --time S seconds (60), or --runs N inputs from --seed N; a crash leaves its input in
          target/fuzz/artifacts/TARGET/
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("deb") => deb::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("__maxrss") => bench::maxrss(&args[1..]),
        Some("__backlog") => bench::lay_out_backlog(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this package's directory).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
