//! Supervision of a live argus sensor, for `harvest_argus`: find the argus that writes an output
//! file, tell a live process from a reused pid, check the capture interface and the free space
//! argus needs, and start argus detached from the caller.
//!
//! - [`find`]: the argus processes writing an output file (executable plus open files or `-w`
//!   argument, read from `/proc`), and the processes holding any file open
//!   ([`find::HolderWatch`], which tells argus-core's rotation when argus let go of a chunk).
//! - [`process`]: [`ProcessId`], a pid plus its start time, so a reused pid is never mistaken
//!   for argus.
//! - [`spawn`]: start a program in its own session with stdio away from the caller and no
//!   inherited descriptors, through `posix_spawn` (no `unsafe`, no shell).
//! - [`argus`]: the argus command line, checks of binary and arguments, start and confirmation.
//! - [`iface`], [`disk`], [`pidfile`]: interface state, free space (argus' silent stop at 100
//!   free blocks), pid files with a start-time check.
//! - [`supervise`]: all of it for one sensor: find argus, warn about what silently loses data,
//!   start it when it is missing ([`supervise::supervise`]).
//! - [`procfs`]: the `/proc` readers underneath.
//!
//! The crate never prints and never exits; it returns values and [`Error`]s and logs through the
//! `log` facade. It is Linux-only (`/proc`). It has no cargo features, and takes argus-core
//! without its default ones: embedding it builds no compression library and no fail points.
//!
//! ```
//! use argus_proc::find::{find_argus, Target};
//! use argus_proc::iface::interface_state;
//!
//! // No argus writes a file that does not exist and is named by no command line.
//! let target = Target::new("/usr/sbin/argus".as_ref(), "/nonexistent/argus.out".as_ref());
//! assert!(find_argus(&target)?.is_empty());
//!
//! // The loopback interface exists on every Linux host.
//! assert!(interface_state("lo")?.index > 0);
//! # Ok::<(), argus_proc::Error>(())
//! ```

pub mod argus;
pub mod disk;
mod error;
pub mod find;
pub mod iface;
pub mod pidfile;
pub mod process;
pub mod procfs;
pub mod spawn;
pub mod supervise;

pub use error::{BinaryProblem, Error, Result};
pub use process::ProcessId;
