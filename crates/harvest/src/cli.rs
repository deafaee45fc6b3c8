//! The command line of harvest_argus (also used to generate its man pages and completions).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Cut argus' live output file without losing a record and ship it through WebJob.
///
/// Without a command, harvest_argus makes one harvest (run hourly by webjob): it renames argus'
/// live output file, writes the chunk to stdout for WebJob to upload (nothing else ever goes to
/// stdout), prints its manifest line on stderr, keeps a compressed local archive, purges old
/// archives and keeps argus running.
///
/// The configuration is TOML (convert-config turns the old script's variables into it). Without
/// --config it is looked up in $HARVEST_ARGUS_CONFIG, then $WEBJOB_HOME/etc/harvest_argus.toml
/// (WEBJOB_HOME defaults to /usr/local/integrity).
#[derive(Debug, Parser)]
#[command(
    name = "harvest_argus",
    // The usage line names the program as installed, whatever the file run is called (the
    // end-to-end tests run it as e2e-harvest_argus).
    bin_name = "harvest_argus",
    version,
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
    pub global: Global,
    /// Use the settings of this host [default: this machine's host name].
    #[arg(long, value_name = "NAME", global = true)]
    pub host: Option<String>,
}

/// Options of every command, accepted before or after it; process_argus has the same ones.
#[derive(Debug, Args)]
pub struct Global {
    /// The configuration file (TOML) [default: looked up as described above].
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// More messages on stderr (-v debugging, -vv tracing).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Fewer messages on stderr (-q warnings and errors, -qq errors only).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
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
