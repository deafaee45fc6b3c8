//! Crash injection for the crash-safety tests of both programs.
//!
//! When `ARGUS_WEBJOB_FAILPOINT=NAME` (or `NAME:N`, the N-th time) is set, the process kills
//! itself with SIGKILL on reaching that point, exactly as `kill -9` would: no destructor runs,
//! no buffer is flushed, no temporary file is cleaned up. Unset (always, in production), a
//! failpoint costs one comparison against a value read once. The points are named where they
//! are placed, in each program's commit steps.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// The environment variable that arms a failpoint.
pub const ENV: &str = "ARGUS_WEBJOB_FAILPOINT";

/// Dies here, with SIGKILL, if this failpoint is armed and due.
pub fn hit(name: &str) {
    let spec = SPEC.get_or_init(|| {
        let value = std::env::var(ENV).ok()?;
        let (name, n) = match value.split_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse().ok()?),
            None => (value, 1),
        };
        Some((name, n))
    });
    if let Some((armed, n)) = spec
        && armed == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        log::warn!("failpoint {name} reached: killing this process");
        let _ignored = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
