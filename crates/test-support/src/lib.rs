//! Shared helpers for the end-to-end tests of `harvest_argus` and `process_argus` (each crate's
//! `tests/testsuite`), for argus-core's tests of real tools and for xtask's benches.

#![allow(
    clippy::print_stderr,
    reason = "test helpers say loudly which checks they skip"
)]

pub mod bins;
pub mod files;
pub mod json;
pub mod packet;
pub mod pcap;
pub mod sensor;
pub mod server;
pub mod tools;
pub mod traffic;
