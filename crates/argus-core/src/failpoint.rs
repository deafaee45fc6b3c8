//! Crash injection for the crash-safety tests of both programs (cargo feature `failpoints`).
//!
//! With the feature on and `ARGUS_WEBJOB_FAILPOINT=NAME` (or `NAME:N`, the N-th time) set, the
//! process kills itself with SIGKILL on reaching that point, exactly as `kill -9` would: no
//! destructor runs, no buffer is flushed, no temporary file is cleaned up. The points are named
//! where they are placed, in each program's commit steps.
//!
//! The feature is off by default, and then [`hit`] is an empty inline function: no call site
//! reads the environment, and no build can be killed through it. The programs turn it on only
//! for their own tests (through a `[dev-dependencies]` entry), so a release build never
//! carries it.

/// The environment variable that arms a failpoint.
pub const ENV: &str = "ARGUS_WEBJOB_FAILPOINT";

/// True when this build carries fail points (the `failpoints` feature is on).
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Dies here, with SIGKILL, if this failpoint is armed and due.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

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

/// Without the `failpoints` feature: nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
