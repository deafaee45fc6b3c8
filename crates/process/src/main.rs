//! `process_argus`: the server side of argus-webjob.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use process_argus::config::{self, Config, Format};
use process_argus::{exit, logging, pass};

/// Ingest argus uploads from the WebJob dropzone exactly once.
///
/// Without a command, process_argus makes one pass over the dropzone (for cron): every complete
/// upload of the configured clients is appended, oldest first, to OPER_DIR/HOST_YYYYMMDD, its raw
/// data archived compressed as ARCHIVE_DIR/STEM.out.gz, and the upload removed; bad uploads are
/// moved whole to the quarantine with a reason, and the others go on. Then old archives are
/// purged and day files of closed days compressed. A crash at any instant is repaired by the next
/// run from its journal: nothing lost, nothing doubled.
///
/// The configuration is TOML, or the 2003 recipe's process_argus.cfg read as it is. Without
/// --config it is looked up in $PROCESS_ARGUS_CONFIG, then $WEBJOB_HOME/etc/process_argus.toml,
/// then $WEBJOB_HOME/etc/process_argus.cfg (WEBJOB_HOME defaults to /usr/local/integrity).
///
/// Exit status: 0 all went well, 1 some upload was quarantined, 74 an I/O failure (a full disk,
/// say; nothing is lost, run again once fixed), 75 another instance holds the lock, 78 the
/// configuration is invalid.
#[derive(Debug, Parser)]
#[command(
    name = "process_argus",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    pass: PassArgs,
}

#[derive(Debug, Args)]
struct PassArgs {
    /// The configuration file (TOML, or the recipe's process_argus.cfg).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// When another instance holds the lock, wait for it instead of exiting with status 75.
    #[arg(long)]
    wait: bool,
    /// Print what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// More messages on stderr (-v progress, -vv debugging). The log file always gets progress.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Fewer messages on stderr: errors only.
    #[arg(short, long, action = clap::ArgAction::Count)]
    quiet: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration and report every problem at once (exit 0 or 78).
    CheckConfig {
        /// The configuration file; looked up as for a pass when absent.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the TOML equivalent of a configuration, e.g. the recipe's process_argus.cfg.
    ConvertConfig {
        /// The configuration to convert.
        #[arg(value_name = "OLD_PROCESS_ARGUS_CFG")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = i8::try_from(cli.pass.verbose).unwrap_or(i8::MAX)
        - i8::try_from(cli.pass.quiet).unwrap_or(i8::MAX);
    logging::init("process_argus", verbosity);
    let code = match cli.command {
        Some(Command::CheckConfig { config }) => check_config(config),
        Some(Command::ConvertConfig { file }) => convert_config(&file),
        None => run_pass(&cli.pass),
    };
    ExitCode::from(code)
}

fn load(explicit: Option<PathBuf>) -> Result<(Config, Format, PathBuf), u8> {
    let found = config::locate(explicit.as_deref(), |k| std::env::var(k).ok())
        .and_then(|path| config::load(&path).map(|(c, f)| (c, f, path)));
    found.map_err(|e| {
        log::error!("{e}");
        exit::CONFIG
    })
}

fn check_config(explicit: Option<PathBuf>) -> u8 {
    let (config, format, path) = match load(explicit) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let problems = pass::preflight(&config);
    if !problems.is_empty() {
        for p in &problems {
            log::error!("{p}");
        }
        return exit::CONFIG;
    }
    let kind = match format {
        Format::Toml => "TOML",
        Format::Recipe => "recipe process_argus.cfg",
    };
    say(&format!(
        "{}: valid ({kind}); clients {}",
        path.display(),
        config.clients.join(" ")
    ));
    exit::OK
}

fn convert_config(file: &std::path::Path) -> u8 {
    match config::load(file) {
        Ok((config, _)) => {
            say(config.to_toml().trim_end());
            exit::OK
        }
        Err(e) => {
            log::error!("{e}");
            exit::CONFIG
        }
    }
}

fn run_pass(args: &PassArgs) -> u8 {
    let (config, _, _) = match load(args.config.clone()) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let options = pass::Options {
        wait: args.wait,
        dry_run: args.dry_run,
        ..pass::Options::default()
    };
    let outcome = pass::run(&config, &options, time::OffsetDateTime::now_utc());
    if args.json {
        say(&outcome.summary.json());
    } else if !args.dry_run || outcome.summary.failed.is_some() {
        // The summary goes to the log file and, at -v, to stderr; cron stays quiet when all is well.
        log::info!("{}", outcome.summary.text());
    }
    outcome.exit_code
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ignored = writeln!(out, "{line}");
}
