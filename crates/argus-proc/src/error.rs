//! The one error type of `argus-proc`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argus_core::escape::EscapedPath;

/// Everything that can go wrong while supervising argus.
///
/// Variants carry the path, interface or pid concerned; messages are lowercase without a trailing
/// period, and an underlying cause is exposed as `source`, not repeated in the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system or `/proc` operation failed.
    #[error("cannot {op} {}", EscapedPath(path))]
    Io {
        /// What was attempted, e.g. `"read"` or `"write pid file"`.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The argus binary cannot be run.
    #[error("argus binary {} {problem}", EscapedPath(path))]
    Binary {
        /// The configured binary.
        path: PathBuf,
        /// What is wrong with it.
        problem: BinaryProblem,
    },
    /// The network interface argus is to capture on does not exist.
    #[error("network interface {name:?} does not exist (argus would exit at once)")]
    NoSuchInterface {
        /// The interface name.
        name: String,
    },
    /// The interface list could not be read.
    #[error("cannot read the network interfaces")]
    Interfaces(#[source] io::Error),
    /// An extra argus argument would break supervision or rotation.
    #[error("argus argument {arg:?} is not allowed: {reason}")]
    BadArgument {
        /// The offending argument.
        arg: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `posix_spawn` failed.
    #[error("cannot start {}", EscapedPath(program))]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// argus exited soon after it was started. argus exits with status 0 even on fatal errors
    /// (a missing interface, an unwritable output), so its messages are the only clue.
    #[error(
        "argus (pid {pid}) exited within {:.1} s of its start ({status}){}",
        waited.as_secs_f64(),
        messages.as_deref().map(|m| format!("; its last messages: {m}")).unwrap_or_default()
    )]
    Died {
        /// The pid it had.
        pid: i32,
        /// How it ended, e.g. `exit status 0` or `killed by SIGKILL`.
        status: String,
        /// How long after the start this was noticed.
        waited: Duration,
        /// The last lines argus wrote to its log, if it had one.
        messages: Option<String>,
    },
    /// A file-system step of argus-core (creating a directory durably, say) failed.
    #[error(transparent)]
    Core(#[from] argus_core::Error),
    /// A directory could not be given to the user argus runs as.
    #[error("cannot give {} to user {user} (argus runs as it)", EscapedPath(path))]
    Chown {
        /// The directory.
        path: PathBuf,
        /// The user named by argus' `-u`.
        user: String,
        /// The operating system's error.
        #[source]
        source: nix::Error,
    },
}

/// Why the argus binary cannot be run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryProblem {
    /// Nothing at that path.
    #[error("does not exist")]
    Missing,
    /// A directory or special file.
    #[error("is not a regular file")]
    NotAFile,
    /// No execute permission bit is set.
    #[error("is not executable")]
    NotExecutable,
    /// The path is relative; supervision compares it with `/proc/PID/exe`, which is absolute.
    #[error("is not an absolute path")]
    Relative,
}

/// A `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
