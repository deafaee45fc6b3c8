//! Shared helpers for the end-to-end tests of `harvest_argus` and `process_argus`.
//!
//! The binaries are built once per test run with `cargo build` (the tests run after cargo has
//! released its build lock), so the tests always exercise the current sources.

#![allow(
    clippy::print_stderr,
    reason = "test helpers say loudly which checks they skip"
)]

pub mod bins;
pub mod json;
pub mod server;
pub mod tools;
pub mod traffic;
