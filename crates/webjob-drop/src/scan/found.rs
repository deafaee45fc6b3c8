//! What a scan found: [`Scan`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::{Deferred, Foreign, ForeignCount, ForeignReason, Group, Ignored, InFlight, Invalid};
use crate::error::Error;

/// Everything a scan found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Scan {
    /// Complete groups of the selected clients and job, oldest first (upload time, then stem);
    /// never one the server still holds with its `.lck`.
    pub complete: Vec<Group>,
    /// Groups without `.rdy` or held by the server's `.lck`: being uploaded, or orphans of
    /// failed uploads.
    pub in_flight: Vec<InFlight>,
    /// Groups with `.rdy` that cannot be processed, with the reasons.
    pub invalid: Vec<Invalid>,
    /// Uploads of other clients or other jobs: never touched. Empty when they are
    /// [counted](super::Dropzone::with_foreign_counted) instead.
    pub foreign: Vec<Foreign>,
    /// Uploads of other clients or other jobs that have a `.rdy`, per client and reason, when
    /// they are [counted](super::Dropzone::with_foreign_counted) instead of reported in
    /// [`Scan::foreign`]; never touched either.
    pub foreign_counted: BTreeMap<(String, ForeignReason), ForeignCount>,
    /// Entries that are not uploads, and directories below the scan depth.
    pub ignored: Vec<Ignored>,
    /// Problems that kept part of the dropzone from being scanned.
    pub errors: Vec<Error>,
    /// Per client, the ready groups a scan [with a window](super::Dropzone::with_window) left
    /// for a later one; always empty without a window.
    pub deferred: BTreeMap<String, Deferred>,
}

impl Scan {
    pub(super) fn sort(&mut self) {
        // Every key is unique (a group is its directory and stem): an unstable sort orders
        // them the same, without a stable sort's buffer of half the list.
        self.complete.sort_unstable_by(|a, b| {
            (a.uploaded_at, &a.stem, &a.files.dir).cmp(&(b.uploaded_at, &b.stem, &b.files.dir))
        });
        self.in_flight
            .sort_unstable_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.invalid
            .sort_unstable_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.foreign
            .sort_unstable_by(|a, b| a.files.sort_key().cmp(&b.files.sort_key()));
        self.ignored.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }

    /// How many foreign uploads the scan found: those reported, and those counted.
    pub fn foreign_count(&self) -> u64 {
        let counted: u64 = self
            .foreign_counted
            .values()
            .map(|c| c.complete + c.held)
            .sum();
        self.foreign.len() as u64 + counted
    }

    /// How many ready groups the window left for a later scan, of every client.
    pub fn deferred_count(&self) -> u64 {
        self.deferred.values().map(|d| d.count).sum()
    }

    /// The in-flight groups whose newest file is at least `orphan_after` older than `now`.
    pub fn orphans(
        &self,
        now: SystemTime,
        orphan_after: Duration,
    ) -> impl Iterator<Item = &InFlight> + '_ {
        self.in_flight
            .iter()
            .filter(move |f| f.is_orphan(now, orphan_after))
    }
}
