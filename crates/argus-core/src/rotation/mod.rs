//! Lossless rotation of a file that a live writer (argus) keeps open: cut it by renaming it,
//! wait until the writer has let go of the renamed chunk, ship it in one pass, and keep every
//! chunk staged under a durable sequence number until it is delivered, so that a crash at any
//! instant loses nothing and repeats no number.
//!
//! - [`Stage`]: the state next to the output (`stage`): staged chunks
//!   (`OUTPUT.staged.SEQ.YYYYMMDDHHMMSS`), the sequence counter (`OUTPUT.seq`), the lock path;
//!   [`Stage::cut`], [`Stage::adopt_legacy`] and [`Stage::remove`] (`cut`).
//! - [`wait_final`] and the pure rule [`judge`] (`settle`): is the chunk final? Who holds it
//!   open is asked of a [`HolderProbe`] (`argus-proc` has one that reads `/proc`).
//! - [`ship`]: copy, hash and walk a chunk in one pass; [`Shipped::manifest`] is its manifest.
//! - [`Delivery`] (`deliver`): the steps after a cut, in their one safe order: [`wait_final`],
//!   [`ship`] and the manifest line, archive ([`crate::archive`]), [`Stage::remove`].
//!
//! A harvest is: take the lock at [`Stage::lock_path`], deliver what [`Stage::list`] finds
//! left staged, then [`Stage::cut`] and deliver the new chunk.
//!
//! ```
//! use argus_core::rotation::{Stage, Unknown, ship, wait_final};
//! use time::OffsetDateTime;
//!
//! let dir = tempfile::tempdir()?;
//! let output = dir.path().join("argus.out");
//! std::fs::write(&output, b"bytes argus wrote")?;
//! let stage = Stage::new(&output);
//!
//! let cut = stage.cut(OffsetDateTime::now_utc())?.expect("the output exists");
//! assert_eq!(cut.chunk.seq, 1);
//! assert!(!output.exists(), "the cut is a rename");
//!
//! // The writer re-creates its file at its next second; here nothing writes any more.
//! std::fs::write(&output, b"")?;
//! let settled = wait_final(&output, &cut.chunk.path, cut.renamed.elapsed(), &mut Unknown)?;
//! let mut shipped_to = Vec::new();
//! let shipped = ship(&cut.chunk.path, &mut shipped_to)?;
//! assert_eq!(shipped_to, b"bytes argus wrote");
//! assert_eq!(shipped.bytes, 17);
//! stage.remove(&cut.chunk)?;
//! assert_eq!(stage.last_seq()?, 1);
//! # let _ = settled;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cut;
mod deliver;
mod error;
mod settle;
mod ship;
mod stage;

pub use cut::Cut;
pub use deliver::{Delivered, Delivery};
pub use error::{CutError, DeliveryError, NotFinal, ShipError, StateError};
pub use settle::{
    Final, HolderProbe, MAX_WAIT, Observation, QUIET, Settled, Unknown, judge, wait_final,
};
pub use ship::{Shipped, ship};
pub use stage::{Stage, StagedChunk};

#[cfg(test)]
mod tests;
