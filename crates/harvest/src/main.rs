//! `harvest_argus`: the sensor side of argus-webjob. See SPEC §3 and §7.

use std::process::ExitCode;

use clap::Parser;
use harvest_argus::cli::{Cli, Command};

mod archive;
mod commands;
mod config;
mod convert;
mod exit;
mod logging;
mod metrics;
mod run;
mod settle;
mod ship;
mod staging;
mod supervise;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = i8::try_from(cli.verbose).unwrap_or(8) - i8::try_from(cli.quiet).unwrap_or(8);
    logging::init(verbosity);
    let exit = match cli.command {
        None => commands::harvest(&cli.select),
        Some(Command::CheckConfig { json }) => commands::check_config(&cli.select, json),
        Some(Command::ConvertConfig { script }) => commands::convert_config(&script),
    };
    ExitCode::from(exit)
}
