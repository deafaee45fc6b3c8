//! The end-to-end tests of process_argus, in one test binary: real uploads in a real dropzone,
//! real crashes (SIGKILL at chosen points), a real full file system. The helpers they share
//! with harvest_argus' suite are in `test-support`.

mod argus5;
mod badinput;
mod compress_once;
mod concurrency;
mod crash;
mod diskfull;
mod help;
mod hooks;
mod ledger;
mod lock;
mod metrics;
mod parity;
mod power_loss;
mod progress;
mod quarantine;
mod record_days;
mod retention;
mod salvage;
mod status;
mod summary;
mod support;
mod watch;
