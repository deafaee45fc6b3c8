//! The engine of `harvest_argus`, the sensor side of argus-webjob (SPEC §3 and §7): settings,
//! lossless rotation of argus' live output, shipping, archiving, purging and supervision.
//!
//! `main.rs` only parses arguments, sets up logging and maps outcomes to exit codes. The command
//! line lives in [`cli`] so that `cargo xtask dist` can generate man pages and completions from it.

pub mod cli;
pub mod commands;
pub mod logging;

mod archive;
mod config;
mod convert;
mod run;
mod settle;
mod ship;
mod staging;
mod supervise;
