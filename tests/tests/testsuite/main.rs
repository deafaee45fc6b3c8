//! The end-to-end tests of harvest_argus and process_argus, in one test binary: the support
//! modules compile once, and the binaries are built once for all of them.

mod argus5;
mod cli_help;
mod harvest_argus;
mod harvest_cli;
mod harvest_support;
mod process_badinput;
mod process_concurrency;
mod process_crash;
mod process_diskfull;
mod process_ledger;
mod process_lock;
mod process_parity;
mod process_salvage;
mod process_status;
mod process_support;
mod process_watch;
