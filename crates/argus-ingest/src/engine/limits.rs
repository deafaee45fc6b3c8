//! The open-file limit: raised to the hard limit by the binary, and how many uploads a batch may
//! hold open under it.

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
