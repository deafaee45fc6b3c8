//! `harvest_argus`: the sensor side of argus-webjob.

use std::process::ExitCode;

use clap::Parser;

/// Cut the live argus output file without losing a record, write the chunk to stdout for WebJob
/// to upload, keep a compressed local archive, purge old archives and keep argus running.
#[derive(Debug, Parser)]
#[command(name = "harvest_argus", version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    #[allow(clippy::print_stderr, reason = "the bin reports why it cannot run")]
    {
        eprintln!("harvest_argus: harvesting is not available in this build yet");
    }
    // EX_UNAVAILABLE: the service is not available.
    ExitCode::from(69)
}
