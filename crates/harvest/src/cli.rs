//! The command line of harvest_argus (also used to generate its man pages and completions).

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

/// Cut the live argus output file without losing a record, write the chunk to stdout for WebJob
/// to upload (nothing else ever goes to stdout), print its manifest line on stderr, keep a
/// compressed local archive, purge old archives and keep argus running.
#[derive(Debug, Parser)]
#[command(
    name = "harvest_argus",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 every chunk shipped and archived and argus running; 1 the data is \
safe but argus is not running as it should; 64 stdout is a terminal; 74 a chunk was not shipped \
or not archived (it stays staged and the next run ships it again with the same seq); 75 another \
harvest_argus holds the lock; 78 invalid configuration.\n\nFiles next to OUTPUT: \
OUTPUT.staged.SEQ.STAMP (chunks not yet shipped and archived), OUTPUT.seq, OUTPUT.lock, and by \
default OUTPUT.pid and OUTPUT.log (argus' own messages)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub select: Select,
    /// More log lines on stderr (-v debugging, -vv tracing).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Fewer log lines on stderr (-q warnings and errors, -qq errors only).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

/// Which configuration and host.
#[derive(Debug, clap::Args)]
pub struct Select {
    /// Config file [default: $HARVEST_ARGUS_CONFIG, else $WEBJOB_HOME/etc/harvest_argus.toml,
    /// WEBJOB_HOME defaulting to /usr/local/integrity].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Use the settings of this host [default: this machine's host name].
    #[arg(long, value_name = "NAME", global = true)]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration, report every problem, and print the host's effective settings
    /// in units, with where each came from (default, file, host table, older key).
    CheckConfig {
        /// Print the effective settings as one JSON object (machine values: bytes, seconds).
        #[arg(long)]
        json: bool,
    },
    /// Print the old harvest_argus script's per-host variables as this program's TOML.
    ConvertConfig {
        /// The old shell script (read, never run).
        script: PathBuf,
    },
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
