//! The command line of `harvest_argus`, the sensor side of argus-webjob, for `cargo xtask dist`
//! to generate its man pages and completions from. The program itself (settings, lossless
//! rotation of argus' live output, shipping, archiving, purging, supervision) is the binary's
//! own: see `main.rs`.

pub mod cli;
