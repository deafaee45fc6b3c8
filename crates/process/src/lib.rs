//! `process_argus`, the server side of argus-webjob: the command line over argus-ingest (its
//! engine, daemon, status and configuration files), with the program's messages, rendering and
//! exit statuses.
//!
//! The crate is a program. Its library exposes two things: [`cli`], the command line that
//! `cargo xtask dist` generates the man pages and completions from, and [`main`], the whole
//! program, which the `process_argus` binary calls and so does the workspace's end-to-end test
//! package (`tests/`) from a binary of its own, so that cargo builds the program for those
//! tests too (docs/ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;

pub mod cli;

mod daemon;
mod exit;
mod hooks_command;
mod logging;
mod progress;
mod quarantine_command;
mod render;
mod status_command;
mod status_render;

use argus_ingest::config::Config;
use argus_ingest::config::file as config;
use argus_ingest::engine;
use cli::{Cli, Command, PassArgs, StatusFormat};
use config::Format;
use exit::Exit;

/// Runs `process_argus` with the process' arguments and environment, and returns its exit
/// status.
pub fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let level =
        |v: u8, q: u8| i8::try_from(v).unwrap_or(i8::MAX) - i8::try_from(q).unwrap_or(i8::MAX);
    let given = level(cli.global.verbose, cli.global.quiet);
    let verbosity = match &cli.command {
        // A daemon reports progress by default (to the journal, under systemd).
        Some(Command::Watch) => 1 + given,
        _ => given,
    };
    logging::init("process_argus", verbosity);
    engine::raise_open_file_limit();
    let config = cli.global.config;
    let code = match cli.command {
        Some(Command::CheckConfig { json }) => check_config(config, json).code(),
        Some(Command::ConvertConfig { file }) => convert_config(&file).code(),
        Some(Command::Watch) => match load(config) {
            Ok((config, _, path)) => daemon::run(&path, config).code(),
            Err(exit) => exit.code(),
        },
        // status exits as a monitoring plugin does (0 to 3), its own convention.
        Some(Command::Status { json, format, host }) => match load(config) {
            Ok((config, _, _)) => {
                let format = match (json, format) {
                    (true, _) => StatusFormat::Json,
                    (false, f) => f.unwrap_or(StatusFormat::Table),
                };
                let now = time::OffsetDateTime::now_utc();
                match host {
                    Some(client) => status_command::host(&config, &client, format, now),
                    None => status_command::run(&config, format, now),
                }
            }
            Err(exit) => exit.code(),
        },
        Some(Command::Hooks { action }) => match load(config) {
            Ok((config, _, _)) => hooks_command::command(&config, &action).code(),
            Err(exit) => exit.code(),
        },
        Some(Command::Quarantine { action }) => match load(config) {
            Ok((config, _, _)) => quarantine_command::command(&config, &action).code(),
            Err(exit) => exit.code(),
        },
        None => {
            // A bar for a person watching a backlog; never under cron or systemd.
            let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && given >= 0
                && !cli.pass.json
                && !cli.pass.dry_run;
            run_pass(config, &cli.pass, interactive).code()
        }
    };
    ExitCode::from(code)
}

fn load(explicit: Option<PathBuf>) -> Result<(Config, Format, PathBuf), Exit> {
    let found = config::locate(explicit.as_deref(), |k| std::env::var(k).ok())
        .and_then(|path| config::load(&path).map(|(c, f)| (c, f, path)));
    found.map_err(|e| {
        log::error!("{e}");
        Exit::Config
    })
}

fn check_config(explicit: Option<PathBuf>, json: bool) -> Exit {
    let found = config::locate(explicit.as_deref(), |k| std::env::var(k).ok())
        .and_then(|path| config::load_with_sources(&path).map(|loaded| (loaded, path)));
    let ((config, format, sources), path) = match found {
        Ok(found) => found,
        Err(e) => {
            log::error!("{e}");
            return Exit::Config;
        }
    };
    let problems = engine::preflight(&config);
    if !problems.is_empty() {
        for p in &problems {
            log::error!("{p}");
        }
        return Exit::Config;
    }
    let kind = match format {
        Format::Toml => "toml",
        Format::Recipe => "recipe",
    };
    let settings = config::effective(&config, &sources);
    if json {
        let doc = serde_json::json!({
            "config": path.to_string_lossy(),
            "format": kind,
            "valid": true,
            "settings": settings,
        });
        say(&doc.to_string());
    } else {
        let kind = match format {
            Format::Toml => "TOML",
            Format::Recipe => "recipe process_argus.cfg",
        };
        say(&format!(
            "# {}: valid ({kind}); the effective settings:",
            argus_core::escape::EscapedPath(&path)
        ));
        for setting in &settings {
            say(&setting.line());
        }
    }
    for hook in &config.hooks.hooks {
        // Not an error: the hook may be installed later; its events wait and are retried.
        let runnable = std::fs::metadata(&hook.program).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if !runnable {
            log::warn!(
                "hook {}: {} is not an executable file (yet); its events will fail until it is",
                hook.name,
                hook.program
            );
        }
    }
    Exit::Ok
}

fn convert_config(file: &std::path::Path) -> Exit {
    match config::load(file) {
        Ok((config, _)) => {
            say(config::to_toml(&config).trim_end());
            Exit::Ok
        }
        Err(e) => {
            log::error!("{e}");
            Exit::Config
        }
    }
}

fn run_pass(config: Option<PathBuf>, args: &PassArgs, interactive: bool) -> Exit {
    let (config, _, _) = match load(config) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if !args.dry_run
        && let Err(exit) = open_log(&config)
    {
        return exit;
    }
    let options = engine::Options {
        wait: args.wait,
        dry_run: args.dry_run,
        progress: interactive.then(|| {
            std::sync::Arc::new(progress::Bar::new()) as std::sync::Arc<dyn engine::Progress>
        }),
        ..engine::Options::default()
    };
    let outcome = engine::run(&config, &options, time::OffsetDateTime::now_utc());
    for line in &outcome.plan {
        say(line);
    }
    let exit = match &outcome.error {
        Some(e) => exit_for(e.kind()),
        None if outcome.summary.quarantined > 0 => Exit::Quarantined,
        None => Exit::Ok,
    };
    if !args.dry_run {
        let ok = outcome.summary.failed.is_none() && matches!(exit, Exit::Ok | Exit::Quarantined);
        let counted = (exit != Exit::Locked).then_some((&outcome.summary, ok));
        argus_ingest::metrics::after_run(&config, counted, time::OffsetDateTime::now_utc());
    }
    if args.json {
        say(&render::summary_json(&outcome.summary));
    } else if !args.dry_run || outcome.summary.failed.is_some() {
        // The summary goes to the log file and, at -v, to stderr; cron stays quiet when all is well.
        log::info!("{}", outcome.summary.text());
    }
    exit
}

/// The exit status for a failure of the engine.
pub(crate) fn exit_for(failure: argus_ingest::Failure) -> Exit {
    match failure {
        argus_ingest::Failure::Io => Exit::Io,
        argus_ingest::Failure::Locked => Exit::Locked,
        argus_ingest::Failure::Config => Exit::Config,
    }
}

/// Sends the log to `LOG_DIR/process_argus.log` as well, when the configuration has one and
/// passes the engine's checks (a configuration that does not creates nothing).
pub(crate) fn open_log(config: &Config) -> Result<(), Exit> {
    let Some(log_dir) = &config.log_dir else {
        return Ok(());
    };
    if !engine::preflight(config).is_empty() {
        return Ok(());
    }
    argus_core::publish::create_dir_all_durably(log_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            logging::log_to_file(log_dir, "process_argus.log").map_err(|e| e.to_string())
        })
        .map_err(|e| {
            log::error!(
                "cannot open the log in {}: {e}",
                argus_core::escape::EscapedPath(log_dir)
            );
            Exit::Io
        })
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ignored = writeln!(out, "{line}");
}
