//! Exactly-once ingest of WebJob uploads into per-host, per-day files: the engine behind
//! `process_argus`, for any program that takes uploads from a WebJob dropzone.
//!
//! A pass finds the complete upload groups of the configured clients in the dropzone (a group
//! the WebJob server still holds waits), checks each upload (its argus records, the sensor's
//! chunk manifests), appends it exactly once to its host's day file, archives the raw upload
//! compressed, and removes it; a bad upload goes to the quarantine whole, with its reason. A
//! write-ahead journal makes every commit all or nothing across a crash at any instant, and a
//! ledger of every sensor's chunk numbers turns a chunk shipped twice into a duplicate and a
//! chunk never shipped into a gap. Maintenance purges archives by age and size, expires the
//! quarantine and compresses the day files of closed days; follow-on stages (hooks) run when
//! data lands, from a durable queue. The daemon ([`watch`]) does the same as uploads arrive.
//!
//! The engine is configured by a typed [`config::Config`], built by hand or read from
//! process_argus' own files ([`config::file`](mod@config::file)), and returns what it did as an
//! [`engine::Outcome`]. It logs through the
//! `log` facade and never prints, exits or touches process-wide state.
//!
//! ```
//! use argus_ingest::config::Config;
//! use argus_ingest::engine::{self, Options};
//!
//! let root = tempfile::tempdir()?;
//! let drop_dir = root.path().join("incoming");
//! std::fs::create_dir(&drop_dir)?;
//! let config = Config::new(
//!     drop_dir,
//!     root.path().join("operational"),
//!     root.path().join("archive"),
//!     vec!["sensor-*".to_owned()],
//! );
//! let outcome = engine::run(&config, &Options::default(), time::OffsetDateTime::now_utc());
//! assert!(outcome.error.is_none());
//! assert_eq!(outcome.summary.ingested, 0, "an empty dropzone");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `examples/one_pass.rs` ingests a real upload and runs a hook written in Rust.
//!
//! - [`config`]: the engine's configuration, a typed value with documented defaults, and
//!   [`config::file`](mod@config::file): process_argus' TOML and the recipe's `process_argus.cfg` read into one.
//! - [`content`]: the seam for what uploads hold: argus records by default, or another WebJob
//!   job's output with a check of its own (`examples/other_job.rs`).
//! - [`engine`]: one pass (`engine::run`), or an [`engine::Engine`] kept for many.
//! - [`watch`]: the daemon, with a [`watch::Control`] to stop or reload it.
//! - [`dropzone`]: the uploads of the configured clients in a WebJob dropzone.
//! - [`journal`] and [`ledger`]: the write-ahead journal, and every sensor's chunks.
//! - [`dayfile`]: the per-host day files, their names, closing and compression;
//!   [`members`]: a closed day compressed from its uploads' archive members.
//! - [`hooks`]: the follow-on stages' durable queue and its runners.
//! - [`catalog`]: what the archive held at its last listing, so that a pass lists it only when
//!   a purge may be due.
//! - [`quarantine`]: which quarantined groups have expired.
//! - [`metrics`]: the Prometheus text exposition of the counters and the status, and the
//!   metrics file written after each run.
//! - [`report`]: what a pass did; [`status`]: every client's state, for `status` and metrics.
//! - [`retention_warning`]: purges worth a warning; [`space`]: the free-space floor.
//! - [`counters`]: what the runs did, kept across them for metrics.
//! - [`health`]: each sensor's capture drops, restarts and clock, from argus' management
//!   records.

#![warn(missing_docs)]

pub mod catalog;
pub mod config;
pub mod content;
pub mod counters;
mod day_catalog;
pub mod dayfile;
pub mod dropzone;
pub mod engine;
mod error;
pub mod health;
pub mod hooks;
pub mod journal;
pub mod ledger;
pub mod members;
pub mod metrics;
pub mod quarantine;
pub mod report;
pub mod retention_warning;
pub mod space;
pub mod status;
pub mod watch;

pub use error::{Action, Cause, Error, Failure, Problem, Problems, Store, error_chain};
