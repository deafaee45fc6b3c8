//! The command line of `process_argus`, the server side of argus-webjob, for `cargo xtask dist`
//! to generate its man pages and completions from. The program itself (configuration, the
//! exactly-once engine, the daemon, `status`) is the binary's own: see `main.rs`.

pub mod cli;
