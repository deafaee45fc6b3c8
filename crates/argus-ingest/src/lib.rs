//! Exactly-once ingest of WebJob uploads into per-host, per-day files.
//!
//! - [`ledger`]: which chunks of which sensor were ingested, gaps and duplicates.
//! - [`journal`]: the write-ahead journal that makes every commit all or nothing.
//! - [`dayfile`]: the per-host day files, their names, closing and compression.
//! - [`config`]: the engine's configuration, a typed value.
//! - [`dropzone`]: the uploads of the configured clients in a WebJob dropzone.
//! - [`hooks`]: the follow-on stages' durable queue and its runners.
//! - [`quarantine`]: which quarantined groups have expired.
//! - [`report`]: what a pass did.
//! - [`retention_warning`]: purges worth a warning.
//! - [`space`]: the free-space floor.

pub mod config;
pub mod dayfile;
pub mod dropzone;
pub mod engine;
pub mod hooks;
pub mod journal;
pub mod ledger;
pub mod quarantine;
pub mod report;
pub mod retention_warning;
pub mod space;
pub mod status;
pub mod watch;
