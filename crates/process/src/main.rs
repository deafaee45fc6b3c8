//! `process_argus`: the server side of argus-webjob.

use std::process::ExitCode;

use clap::Parser;

/// Ingest argus uploads from the WebJob dropzone exactly once into per-host, per-day operational
/// files, archive the raw uploads compressed, quarantine bad ones and purge by policy.
#[derive(Debug, Parser)]
#[command(name = "process_argus", version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    #[allow(clippy::print_stderr, reason = "the bin reports why it cannot run")]
    {
        eprintln!("process_argus: processing is not available in this build yet");
    }
    // EX_UNAVAILABLE: the service is not available.
    ExitCode::from(69)
}
