//! Walks argus files (plain, gzip, bzip2 or xz) and prints each one's verdict, its streams with
//! their argus versions, and the walk's throughput:
//!
//! ```text
//! cargo run --release -p argus-core --example walk -- FILE...
//! ```
//!
//! Exits 1 when a file is not clean argus data, 2 when one cannot be read.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program talks to its user"
)]

use std::process::ExitCode;
use std::time::Instant;

use argus_core::codec::open_decoded;
use argus_core::record::walk;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: walk FILE...");
        return ExitCode::from(2);
    }
    let mut code = ExitCode::SUCCESS;
    for file in &files {
        let started = Instant::now();
        let walked = open_decoded(std::path::Path::new(file))
            .map_err(|e| e.to_string())
            .and_then(|input| walk(input).map_err(|e| e.to_string()));
        let report = match walked {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss, reason = "a rate to print")]
        let mb_s = report.valid_len as f64 / 1e6 / secs;
        println!("{file}: {} ({mb_s:.0} MB/s)", report.walk);
        for s in &report.streams {
            println!(
                "  at {}: {}, {} records ({} MARs, {} flows)",
                s.offset, s.version, s.records, s.mars, s.flows
            );
        }
        let unlisted = report.starts - report.streams.len() as u64;
        if unlisted > 0 {
            println!("  and {unlisted} more streams");
        }
        if !report.is_clean() {
            code = ExitCode::FAILURE;
        }
    }
    code
}
