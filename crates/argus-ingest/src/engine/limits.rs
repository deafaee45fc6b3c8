//! The open-file limit: raised to the hard limit by the binary, and how many uploads a batch may
//! hold open under it, and how many threads compress.

use super::Options;
use crate::config::Config;

/// Raises the process's soft limit on open files to its hard limit (at most 65,536): a cron job
/// or a service starts with a soft limit of 1,024, far below what the kernel allows it, and a
/// pass sizes its batches by it ([`Engine::start`](super::Engine::start)). For the program's `main`: a library that
/// embeds the engine keeps its own limits.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const ENOUGH: u64 = 1 << 16;
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(ENOUGH);
        if want > soft
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard)
        {
            log::debug!("cannot raise the open-file limit from {soft} to {want}: {e}");
        }
    }
    grow_fd_table(FD_TABLE.min(open_file_limit()));
}

/// How many descriptors the table is grown to at the start: what the pipeline holds open with
/// batches of the usual size (three batches of 256 uploads, up to three files each).
const FD_TABLE: u64 = 4096;

/// Grows the process's descriptor table to hold `fds` descriptors, by taking the highest one and
/// giving it back. The kernel grows the table by doubling as descriptors are taken, and with
/// more than one thread each growth waits for every processor to pass a quiescent point (an RCU
/// grace period): a pass that opens a batch's files on several threads waited there tens of
/// milliseconds in all, stalling every thread that opened a file meanwhile. Done while the
/// process has one thread, the growth does not wait at all. The table never shrinks.
fn grow_fd_table(fds: u64) {
    use nix::fcntl::{FcntlArg, fcntl};
    let Some(highest) = fds.checked_sub(1).and_then(|f| i32::try_from(f).ok()) else {
        return;
    };
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    match fcntl(&null, FcntlArg::F_DUPFD_CLOEXEC(highest)) {
        Ok(fd) => {
            let _ = nix::unistd::close(fd);
        }
        Err(e) => log::debug!("cannot grow the descriptor table to {fds}: {e}"),
    }
}

/// The soft limit on open files (1,024 when it cannot be read).
pub(super) fn open_file_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}

/// How many uploads a batch may hold so that the pipeline stays within `limit` open files: up
/// to three batches are open at once (one committing, one prepared, one being prepared), each
/// upload with two files (its `.out` and its staged archive), in the batch being prepared also
/// its `.env` (opened ahead of its reading) and, while committing, a day file of its own at
/// worst; plus a margin for everything else.
pub(super) fn uploads_within(limit: u64) -> usize {
    const MARGIN: u64 = 64;
    usize::try_from(limit.saturating_sub(MARGIN) / 8)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The threads that compress: [`Options::threads`], capped by the config's
/// `compress_threads` when it is not 0.
pub(crate) fn compress_threads(config: &Config, options: &Options) -> usize {
    let cap = usize::try_from(config.compress_threads).unwrap_or(usize::MAX);
    let threads = if cap == 0 {
        options.threads
    } else {
        options.threads.min(cap)
    };
    threads.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's count of descriptor slots in this process's table.
    fn fd_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .expect("FDSize line")
            .trim()
            .parse()
            .expect("FDSize number")
    }

    #[test]
    #[allow(clippy::print_stderr, reason = "a skipped test says so loudly")]
    fn the_descriptor_table_is_grown_and_its_highest_descriptor_given_back() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, hard.min(1 << 16), hard).expect("setrlimit");
        // Four times what the table holds now (other tests in this process may have grown it).
        let want = (fd_table_size() * 4).min(open_file_limit());
        if want <= fd_table_size() {
            eprintln!(
                "SKIPPED: the open-file limit ({}) leaves no room to grow the table of {} slots",
                open_file_limit(),
                fd_table_size()
            );
            return;
        }
        grow_fd_table(want);
        assert!(fd_table_size() >= want, "grown to {}", fd_table_size());
        let highest = format!("/proc/self/fd/{}", want - 1);
        assert!(
            std::fs::symlink_metadata(&highest).is_err(),
            "{highest} is still open"
        );
    }

    #[test]
    fn compress_threads_caps_the_threads_and_zero_leaves_them() {
        let mut config = Config::new(
            "/srv/in".into(),
            "/srv/oper".into(),
            "/srv/arch".into(),
            vec!["c".into()],
        );
        let options = Options {
            threads: 8,
            ..Options::default()
        };
        assert_eq!(compress_threads(&config, &options), 8);
        config.compress_threads = 3;
        assert_eq!(compress_threads(&config, &options), 3);
        config.compress_threads = 32;
        assert_eq!(compress_threads(&config, &options), 8);
        let none = Options {
            threads: 0,
            ..Options::default()
        };
        assert_eq!(compress_threads(&config, &none), 1);
    }
}
