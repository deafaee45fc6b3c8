//! `harvest_argus`, the sensor side of argus-webjob (SPEC §3 and §7): the program around
//! argus-core's rotation and archive and argus-proc's supervision. It owns what is about being a
//! program: its arguments (`cli`), its configuration file (`config`, `convert`), the order of a
//! harvest's steps and their exit statuses (`run`, `exit`), logging and the metrics text.
//!
//! The crate is a program. Its library exposes two things: [`cli`], the command line that
//! `cargo xtask dist` generates the man pages and completions from, and [`main`], the whole
//! program, which the `harvest_argus` binary calls and so does the workspace's end-to-end test
//! package (`tests/`) from a binary of its own, so that cargo builds the program for those
//! tests too (docs/ARCHITECTURE.md).

use std::process::ExitCode;

use clap::Parser;

pub mod cli;

mod commands;
mod config;
mod convert;
mod exit;
mod logging;
mod metrics;
mod run;

use cli::{Cli, Command};

/// Reads a configuration's text as `check-config` does: every problem it finds in the file and
/// in each host's settings, or the TOML syntax error. Not an API: the fuzz targets' way in (see
/// `fuzz/`).
#[doc(hidden)]
pub fn check_config_text(text: &str) -> Result<Vec<String>, Vec<String>> {
    config::Config::parse_text(std::path::Path::new("harvest_argus.toml"), text)
        .map(|config| config.check_all())
        .map_err(|problems| problems.0)
}

/// What `convert-config` makes of the recipe's script: the TOML and its warnings, or the
/// errors. Not an API: see [`check_config_text`].
#[doc(hidden)]
pub fn convert_script(text: &str) -> Result<(String, Vec<String>), Vec<String>> {
    convert::convert(std::path::Path::new("harvest_argus"), text)
        .map(|converted| (converted.toml, converted.warnings))
}

/// Runs `harvest_argus` with the process' arguments and environment, and returns its exit
/// status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (verbose, quiet) = (cli.global.verbose, cli.global.quiet);
    let verbosity = i8::try_from(verbose).unwrap_or(8) - i8::try_from(quiet).unwrap_or(8);
    logging::init(verbosity);
    let select = commands::Select {
        config: cli.global.config,
        host: cli.host,
    };
    let exit = match cli.command {
        None => commands::harvest(&select),
        Some(Command::CheckConfig { json }) => commands::check_config(&select, json),
        Some(Command::ConvertConfig { script }) => commands::convert_config(&script),
    };
    ExitCode::from(exit)
}
