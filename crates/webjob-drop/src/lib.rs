//! Finding, parsing and handling WebJob upload groups in a dropzone, safely.
//!
//! A WebJob server drops each upload of a job into its `incoming` directory (the *dropzone*) as
//! files sharing one stem, `CLIENT_YYYYMMDDHHMMSS[_MIDDLE]_JOB`: `.out` (the job's standard
//! output), `.err` (its standard error), `.env` (a `Key=Value` record with `Hostname=`) and
//! `.rdy`, written last, whose existence means the group is complete. Every name and byte there is
//! written on behalf of a remote host and is untrusted. This crate is where they are handled:
//!
//! - [`name`]: stems parsed from base names only; a configured client id matches as an exact
//!   prefix followed by `_` and a real 14-digit time stamp (`client1` never takes `client10`'s
//!   uploads), or by glob ([`Selection`]).
//! - [`scan`]: [`Dropzone::scan`] classifies every upload as complete ([`Group`], oldest first),
//!   in flight ([`InFlight`], with its age), invalid ([`Invalid`], with reasons) or foreign
//!   ([`Foreign`], never touched). It never changes anything, and a bad entry never aborts it.
//! - [`safe`]: parts are opened with `O_NOFOLLOW | O_NONBLOCK` and checked on the opened
//!   descriptor: a symbolic link or FIFO is refused and never blocks.
//! - [`kv`]: `.env` and `.rdy` `Key=Value` records, the validated [`Hostname`], and the chunk
//!   [`Manifest`] lines in `.err`.
//! - [`ops`]: the only changes, as explicit calls: [`remove_group`] (`.rdy` last) and
//!   [`quarantine_group`] (whole, durable, crash-safe with [`recover_quarantine`]).
//! - `fixture` (cargo feature `fixture`): writes groups the way the server does.
//!
//! Cargo features: `fixture` (off) is the only one. The crate takes argus-core without its
//! default features, so embedding it builds no compression library; the steps of [`ops`] call
//! argus-core's fail points, which stay empty unless a build turns on argus-core's
//! `failpoints` (process_argus's tests do, to kill a quarantine or requeue half-way).
//!
//! The crate never prints and never exits; it returns values and [`Error`]s and logs through the
//! `log` facade, escaping untrusted names.
//!
//! ```
//! use std::fs;
//! use webjob_drop::{Dropzone, Selection, quarantine_group, recover_quarantine, remove_group};
//!
//! let base = tempfile::tempdir()?;
//! let incoming = base.path().join("incoming");
//! let quarantine = base.path().join("quarantine");
//! fs::create_dir(&incoming)?;
//! // Two uploads, written as the server does (`.rdy` last); the second one lies about its host.
//! for (stem, env) in [
//!     ("client1_20030715120001_harvest_argus", "Hostname=sensor1\n"),
//!     ("client1_20030715130001_harvest_argus", "Hostname=../../etc/x\n"),
//! ] {
//!     for (ext, bytes) in [("out", "argus"), ("err", ""), ("env", env), ("rdy", "")] {
//!         fs::write(incoming.join(format!("{stem}.{ext}")), bytes)?;
//!     }
//! }
//! // Not ours: another client whose id merely starts the same way.
//! fs::write(incoming.join("client10_20030715120001_harvest_argus.rdy"), "")?;
//!
//! // At start, under the consumer's lock: finish quarantines a crash interrupted.
//! recover_quarantine(&quarantine)?;
//!
//! let selection = Selection::new(["client1"], "harvest_argus")?;
//! let scan = Dropzone::new(&incoming).scan(&selection)?;
//! assert_eq!(scan.complete.len(), 2);
//! assert_eq!(scan.foreign.len(), 1);
//! for group in &scan.complete {
//!     match group.read_env()?.hostname() {
//!         Ok(host) => {
//!             assert_eq!(host.as_str(), "sensor1");
//!             assert_eq!(group.uploaded_at().date().to_string(), "2003-07-15");
//!             let mut out = group.open_out()?; // stream it into the day file ...
//!             std::io::copy(&mut out, &mut std::io::sink())?;
//!             assert!(group.manifests()?.is_empty()); // an old harvester: no manifest
//!             remove_group(group)?;
//!         }
//!         Err(bad) => {
//!             let q = quarantine_group(group, &quarantine, &bad.to_string())?;
//!             assert!(q.path.join("reason").exists());
//!         }
//!     }
//! }
//! let names: Vec<_> = fs::read_dir(&incoming)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
//! assert_eq!(names, ["client10_20030715120001_harvest_argus.rdy"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod file_kind;
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
pub mod kv;
pub mod name;
pub mod ops;
pub mod safe;
pub mod scan;

pub use argus_core::host::{Hostname, InvalidHostname};
pub use argus_core::manifest::{Manifest, ManifestError};
pub use error::{Error, Result};
pub use kv::{Env, EnvError, KeyValues};
pub use name::{DEFAULT_JOB, Selection};
pub use ops::{
    Quarantined, QuarantinedGroup, Recovery, Removed, Requeued, expire_group, finish_removal,
    list_quarantine, quarantine_group, recover_quarantine, recover_requeues, remove_group,
    requeue_group,
};
pub use safe::{FileId, FileKind, open_regular};
pub use scan::{
    Deferred, Dropzone, Files, Foreign, ForeignCount, ForeignReason, Group, GroupFiles, Ignored,
    IgnoredReason, InFlight, Invalid, InvalidReason, OpenedPart, Part, PartKind, Scan,
};
