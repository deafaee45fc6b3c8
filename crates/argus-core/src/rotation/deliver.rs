//! Delivering a staged chunk: wait until the writer has let go of it, ship it followed by its
//! manifest line, archive it, remove it. In this order, so that a chunk is removed only after
//! it was shipped and durably archived; whatever fails leaves it staged, under its number, for
//! the next run.
//!
//! Once a write to the output has failed, no later chunk is shipped in the same [`Delivery`]:
//! the output may end in a partial chunk, and nothing may follow it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{
    DeliveryError, HolderProbe, Settled, ShipError, Shipped, Stage, StagedChunk, StateError, ship,
    wait_final,
};
use crate::archive::{Archived, archive};
use crate::codec::Codec;
use crate::escape::EscapedPath;
use crate::failpoint;
use crate::host::Hostname;

/// Where delivered chunks go: their bytes and manifest lines, and the archive.
pub struct Delivery<'a> {
    stage: Stage,
    host: Hostname,
    archive_dir: PathBuf,
    codec: Codec,
    out: &'a mut dyn Write,
    manifests: &'a mut dyn Write,
    out_failed: bool,
}

impl std::fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("stage", &self.stage)
            .field("host", &self.host)
            .field("archive_dir", &self.archive_dir)
            .field("codec", &self.codec)
            .field("out_failed", &self.out_failed)
            .finish_non_exhaustive()
    }
}

/// A chunk delivered: shipped, archived, and (normally) removed.
#[derive(Debug)]
pub struct Delivered {
    /// The chunk.
    pub chunk: StagedChunk,
    /// Why it was final, and how long that took.
    pub settled: Settled,
    /// What shipping it found.
    pub shipped: Shipped,
    /// Where it was archived.
    pub archived: Archived,
    /// Whether its manifest line was written; the chunk is delivered either way.
    pub manifest: Result<(), io::Error>,
    /// Whether it was removed; if not, the next run finds it already archived.
    pub removed: Result<(), StateError>,
}

impl<'a> Delivery<'a> {
    /// Delivers chunks of `stage` for `host`: bytes to `out`, a manifest line per chunk to
    /// `manifests`, archives into `archive_dir` compressed with `codec`.
    pub fn new(
        stage: Stage,
        host: Hostname,
        archive_dir: PathBuf,
        codec: Codec,
        out: &'a mut dyn Write,
        manifests: &'a mut dyn Write,
    ) -> Delivery<'a> {
        Delivery {
            stage,
            host,
            archive_dir,
            codec,
            out,
            manifests,
            out_failed: false,
        }
    }

    /// The state next to the output, whose chunks this delivers.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// Delivers `chunk`, renamed from the output `since_rename` ago; `holders` tells who holds
    /// it open. The fail points `after-ship` and `after-archive` follow those steps.
    pub fn deliver(
        &mut self,
        chunk: &StagedChunk,
        since_rename: Duration,
        holders: &mut dyn HolderProbe,
    ) -> Result<Delivered, DeliveryError> {
        let settled = wait_final(self.stage.output(), &chunk.path, since_rename, holders)?;
        log::debug!(
            "chunk seq={} is final after {} ms: {}",
            chunk.seq,
            settled.waited.as_millis(),
            settled.why
        );
        if self.out_failed {
            return Err(DeliveryError::OutFailed { seq: chunk.seq });
        }
        let shipped = ship(&chunk.path, self.out).map_err(|source| {
            self.out_failed = matches!(source, ShipError::Write(_));
            DeliveryError::Ship {
                seq: chunk.seq,
                source,
            }
        })?;
        if !shipped.report.is_clean() {
            log::warn!(
                "chunk seq={} is not clean argus data ({}); shipped and archived as it is, {} bytes of whole records",
                chunk.seq,
                shipped.report.walk,
                shipped.report.valid_len
            );
        }
        let line = shipped.manifest(&self.host, chunk);
        let manifest = writeln!(self.manifests, "{line}").and_then(|()| self.manifests.flush());
        if let Err(e) = &manifest {
            log::warn!("cannot write the manifest line: {e}");
        }
        failpoint::hit("after-ship");
        let archived = archive(
            &chunk.path,
            &shipped.sha256,
            &self.archive_dir,
            &self.host,
            chunk.cut,
            self.codec,
        )
        .map_err(|source| DeliveryError::Archive {
            seq: chunk.seq,
            source,
        })?;
        match &archived {
            Archived::New(path) => log::info!(
                "archived chunk seq={} ({} bytes, {} records) as {}",
                chunk.seq,
                shipped.bytes,
                shipped.report.records,
                EscapedPath(path)
            ),
            Archived::Already(path) => log::info!(
                "chunk seq={} was already archived as {}",
                chunk.seq,
                EscapedPath(path)
            ),
        }
        failpoint::hit("after-archive");
        let removed = self.stage.remove(chunk);
        if let Err(e) = &removed {
            log::warn!(
                "cannot remove the shipped chunk {}: {}; the next run finds it already archived",
                EscapedPath(&chunk.path),
                crate::error_chain(e)
            );
        }
        Ok(Delivered {
            chunk: chunk.clone(),
            settled,
            shipped,
            archived,
            manifest,
            removed,
        })
    }
}
