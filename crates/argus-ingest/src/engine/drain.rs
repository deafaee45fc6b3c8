//! A backlog larger than one scan's window, taken window by window.

use std::ffi::OsStr;
use std::path::Path;

use time::OffsetDateTime;

use super::Engine;
use crate::dropzone::Scanned;
use crate::error::{Error, error_chain};

impl Engine {
    /// Ingests every upload the dropzone holds, one scan's window at a time
    /// ([`super::Options::scan_window`]): scans, ingests, and scans again while uploads wait
    /// beyond the window. It stops early when told to stop, or when a window took nothing
    /// (every upload in it failed, or the WebJob server still holds them): what waits is left
    /// for the next pass. `seen` is shown each scan before its ingest (the orphans it found,
    /// say).
    pub fn drain(
        &mut self,
        now: OffsetDateTime,
        mut seen: impl FnMut(&Scanned),
    ) -> Result<(), Error> {
        loop {
            let found = self.scan(now)?;
            seen(&found);
            let waiting = found.deferred;
            let before = self.uploads_done();
            self.ingest(found)?;
            if waiting == 0 || self.stopping() {
                return Ok(());
            }
            if self.uploads_done() == before {
                log::warn!(
                    "{waiting} uploads wait beyond the scan window, but none of the window could be taken: they wait for the next pass"
                );
                return Ok(());
            }
            log::info!("{waiting} more uploads wait beyond the scan window: scanning again");
        }
    }

    /// Scans the groups named, as (directory, stem), each as [`Engine::scan_group`], into one
    /// listing, oldest first. A group gone, or in a directory outside the scan depth, is left
    /// out (logged at debug level): the next full scan judges it.
    pub fn scan_groups<'a>(
        &mut self,
        groups: impl IntoIterator<Item = (&'a Path, &'a OsStr)>,
    ) -> Scanned {
        let mut found = Scanned::default();
        for (dir, stem) in groups {
            match self.scan_group(dir, stem) {
                Ok(f) => {
                    found.complete.extend(f.complete);
                    found.invalid.extend(f.invalid);
                }
                Err(e) => log::debug!("{}", error_chain(&e)),
            }
        }
        found
            .complete
            .sort_by(|a, b| (a.uploaded_at(), a.stem()).cmp(&(b.uploaded_at(), b.stem())));
        found
    }

    /// The uploads this engine ingested, archived as empty, or quarantined since its summary
    /// was last taken.
    fn uploads_done(&self) -> u64 {
        self.summary.ingested + self.summary.empty + self.summary.quarantined
    }
}
