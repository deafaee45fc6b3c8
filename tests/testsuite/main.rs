//! The end-to-end tests of the two programs together, in one test binary: a live argus on `lo`
//! harvested by harvest_argus, each run shipped as a WebJob upload into a dropzone, ingested by
//! process_argus, and the day files read back with `ra`. The programs run as cargo built them
//! for this package (`e2e-harvest_argus`, `e2e-process_argus`; see docs/ARCHITECTURE.md); the
//! helpers they share with each program's own suite are in `test-support`.

mod argus3;
mod argus5;
mod cli;
mod health;
mod support;
