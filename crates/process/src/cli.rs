//! The command line of process_argus (also used to generate its man pages and completions).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
#[derive(Debug, Parser)]
#[command(
    name = "process_argus",
    // The usage line names the program as installed, whatever the file run is called (the
    // end-to-end tests run it as e2e-process_argus).
    bin_name = "process_argus",
    version,
    after_help = "Exit status: 0 all went well; 1 some upload was quarantined; 74 an I/O failure (a \
full disk, say; nothing is lost, run again once fixed); 75 another instance holds the lock; 78 \
invalid configuration (status has its own: see status --help)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: Global,
    #[command(flatten)]
    pub pass: PassArgs,
}

/// Options of every command, accepted before or after it; harvest_argus has the same ones.
#[derive(Debug, Args)]
pub struct Global {
    /// The configuration file (TOML, or the recipe's process_argus.cfg) [default: looked up as
    /// described above].
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// More messages on stderr (-v progress, -vv debugging; watch reports progress already, -v
    /// adds debugging). The log file always gets progress.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Fewer messages on stderr (-q errors only; for watch, -q warnings and errors, -qq errors
    /// only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
}

/// Options of a pass (no command).
#[derive(Debug, Args)]
pub struct PassArgs {
    /// When another instance holds the lock, wait for it instead of exiting with status 75.
    #[arg(long)]
    pub wait: bool,
    /// Print what would be done, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration, report every problem at once (exit 0 or 78), and print every
    /// effective setting in units, with where it came from (default, file, the recipe's key).
    CheckConfig {
        /// Print the effective settings as one JSON object (machine values: bytes, seconds).
        #[arg(long)]
        json: bool,
    },
    /// Print the TOML equivalent of a configuration, e.g. the recipe's process_argus.cfg.
    ConvertConfig {
        /// The configuration to convert.
        #[arg(value_name = "OLD_PROCESS_ARGUS_CFG")]
        file: PathBuf,
    },
    /// Run as a daemon: ingest each upload as soon as its .rdy lands.
    ///
    /// inotify reports each .rdy; the whole dropzone is also rescanned at start, when events
    /// were lost, and every rescan_interval. Archives are purged and closed days compressed at
    /// start and hourly. Holds the same lock as a one-pass run, so a cron job and the daemon
    /// never work at once (the cron job exits 75). SIGTERM or SIGINT: finish the batch in hand
    /// and exit 0. SIGHUP: reload the configuration (a bad one is reported and the old kept).
    /// Progress goes to stderr (and the log file).
    Watch,
    /// Report per client: last upload, uploads and bytes in the last 24 h, missing chunks
    /// (gaps), duplicates, quarantined groups, orphans, and STALE when a client has not
    /// uploaded for stale_after.
    ///
    /// Exit status like a monitoring plugin: 0 all is well, 1 warnings (gaps, quarantined
    /// groups, orphans, hook events kept as failed), 2 a client is stale. Read-only: safe to run while a pass or the
    /// daemon works.
    Status {
        /// Print one JSON object instead of a table (documented in docs/OPERATIONS.md); the
        /// same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// table (the default), json, or prometheus (the metrics process_argus writes to
        /// metrics_file).
        #[arg(long, value_enum, value_name = "FORMAT", hide_possible_values = true)]
        format: Option<StatusFormat>,
        /// Show one sensor (its WebJob client id) over the last 24 hours, hour by hour:
        /// uploads, bytes, packets its capture delivered and dropped, argus restarts.
        #[arg(long, value_name = "CLIENT")]
        host: Option<String>,
    },
    /// List the follow-on stages' events waiting or failed, and queue failed ones again.
    ///
    /// An event leaves the queue when its hook exits 0; a failed run is retried after 1 minute,
    /// doubling to 1 hour, and after hook_attempts runs the event is kept as failed (status
    /// then exits 1). Safe to run while a pass or the daemon works.
    Hooks {
        #[command(subcommand)]
        action: HooksAction,
    },
    /// List the quarantined groups, and send groups back to the dropzone after a fix.
    ///
    /// A group goes back crash-safely to the directory it came from (never while a group of its
    /// name is there), and the next pass or the daemon ingests it; should its data still be bad,
    /// it comes back with the new reason. Groups older than quarantine_days are deleted by the
    /// maintenance. Safe to run while a pass or the daemon works.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineAction,
    },
}

/// What `quarantine` does.
#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// List the quarantined groups: when, client, stem, reason.
    List {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send groups back to the dropzone: the stems named, or --all (either narrowed by
    /// --reason).
    Requeue {
        /// Stems of quarantined groups, as `quarantine list` shows them.
        #[arg(value_name = "STEM", required_unless_present = "all")]
        stems: Vec<String>,
        /// Every quarantined group.
        #[arg(long, conflicts_with = "stems")]
        all: bool,
        /// Only groups whose reason matches this glob (e.g. "*not a valid host name*").
        #[arg(long, value_name = "GLOB")]
        reason: Option<String>,
        /// Print what would be sent back, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// How `status` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// A table for people.
    Table,
    /// One JSON object.
    Json,
    /// Prometheus' text exposition format.
    Prometheus,
}

/// What `hooks` does.
#[derive(Debug, Subcommand)]
pub enum HooksAction {
    /// List pending and failed events: id, hook, event, attempts, when due, last error.
    List {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue failed events again, due at once with no attempt counted (after fixing the hook,
    /// say): the ones named, or --all.
    Retry {
        /// Ids of failed events, as `hooks list` shows them.
        #[arg(value_name = "ID", required_unless_present = "all")]
        ids: Vec<String>,
        /// Every failed event.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Print the ids queued again as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// Parses the command line; exits with a usage error (status 2) when it is not valid. The
    /// options of a pass (`--wait`, `--dry-run`, `--json` before any command) cannot be given
    /// with a command; `--config`, `-v` and `-q` go before or after one.
    pub fn parse_args() -> Cli {
        let cli = <Cli as clap::Parser>::parse();
        let pass_only = [
            (cli.pass.wait, "--wait"),
            (cli.pass.dry_run, "--dry-run"),
            (cli.pass.json, "--json"),
        ];
        if let (Some(command), Some((_, flag))) =
            (&cli.command, pass_only.iter().find(|(given, _)| *given))
        {
            let name = match command {
                Command::CheckConfig { .. } => "check-config",
                Command::ConvertConfig { .. } => "convert-config",
                Command::Watch => "watch",
                Command::Status { .. } => "status",
                Command::Hooks { .. } => "hooks",
                Command::Quarantine { .. } => "quarantine",
            };
            let message = format!(
                "{flag} is an option of a pass and cannot be used with the subcommand '{name}'{}",
                if *flag == "--json" && name == "status" {
                    " (put it after the subcommand: status --json)"
                } else {
                    ""
                }
            );
            command_error(clap::error::ErrorKind::ArgumentConflict, message).exit();
        }
        cli
    }
}

fn command_error(kind: clap::error::ErrorKind, message: String) -> clap::Error {
    command().error(kind, message)
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
