//! The engine of `process_argus`: configuration, the exactly-once ingest of WebJob uploads into
//! per-host, per-day operational files, archiving, quarantine, retention and reporting.
//!
//! `main.rs` only parses arguments, sets up logging and maps outcomes to exit codes.

pub mod cli;
pub mod config;
pub mod dayfile;
pub mod dropzone;
pub mod engine;
pub mod exit;
pub mod failpoint;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod report;
pub mod status;
pub mod watch;
