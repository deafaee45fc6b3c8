//! The end-to-end tests of harvest_argus, in one test binary: a real argus on `lo`, real
//! signals, real files. The helpers they share with process_argus' suite are in `test-support`.

mod argus;
mod argus5;
mod cli;
mod help;
mod metrics;
