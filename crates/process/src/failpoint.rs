//! Crash injection for the crash-safety tests.
//!
//! When `PROCESS_ARGUS_FAILPOINT=NAME` (or `NAME:N`, the N-th time) is set, the process kills
//! itself with SIGKILL on reaching that point, exactly as `kill -9` would. Unset (always, in
//! production), a failpoint costs one comparison against a value read once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// The environment variable that arms a failpoint.
pub(crate) const ENV: &str = "PROCESS_ARGUS_FAILPOINT";

/// Dies here if this failpoint is armed and due.
pub(crate) fn hit(name: &str) {
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
