//! Exactly-once ingest of WebJob uploads into per-host, per-day files.
//!
//! - [`ledger`]: which chunks of which sensor were ingested, gaps and duplicates.
//! - [`journal`]: the write-ahead journal that makes every commit all or nothing.
//! - [`dayfile`]: the per-host day files, their names, closing and compression.

pub mod config;
pub mod dayfile;
pub mod journal;
pub mod ledger;
