//! What a prepared batch goes through around its commit: the uploads bad once read go to the
//! quarantine, those dated outside the clock window too, chunks already ingested are left out
//! (`chunks::plan`), each upload is cut into its day pieces (`day_pieces`), and the batch is committed
//! (`commit`), or rolled back through the journal when that fails.

use std::collections::BTreeSet;

use argus_core::escape::EscapedPath;

use crate::config::{ClockPolicy, Config, DayBoundary};
use crate::day_catalog::Closing;
use crate::dropzone::Rejected;
use crate::journal::{ChunkRef, Journal};

use super::commit::{Stopped, commit};
use super::day_pieces::DayPiece;
use super::prepare::{Prepared, ReadyUpload, already_archived};
use super::recover::recover;
use super::refused::BatchChunks;
use super::removal::{finish_removal, quarantine_salvaged};
use super::{Engine, chunks, day_pieces};
use crate::error::{Action, Context, Error, Store, error_chain};

impl Engine {
    /// Counts `bytes` about to be archived in the archive catalog (the oldest of them stamped
    /// `oldest`), before they are: a crash may leave the catalog counting bytes that were not
    /// archived (a listing comes early), never the other way round.
    fn catalog_archives(&mut self, bytes: u64, oldest: Option<time::OffsetDateTime>) {
        if let Some(mut catalog) = self.catalog.take() {
            catalog.add(bytes, oldest);
            self.keep_catalog(Some(catalog));
        }
    }

    /// Quarantines what preparing found bad, leaves out chunks already ingested, and commits.
    pub(super) fn finish_batch(&mut self, prepared: Vec<Prepared>) -> Result<(), Error> {
        let mut good = Vec::new();
        let mut archives = std::collections::BTreeSet::new();
        for p in prepared {
            match p {
                // Prepared while an earlier batch was committed, which took the same archive
                // name (same stem in another directory): it waits in the quarantine.
                Prepared::Ready(g) if self.committed_archives.contains(g.archive_dest()) => {
                    let reason = already_archived(g.archive_dest());
                    self.quarantine(&Rejected::Upload(g.upload), &reason);
                }
                // Two groups of one name (in two directories) would share an archive, and the
                // journal could not tell them apart: the second waits in the quarantine.
                Prepared::Ready(g) if !archives.insert(g.archive_dest().to_path_buf()) => {
                    let reason = format!(
                        "an upload of the same name, from another directory, is ingested in this pass and takes the archive {}",
                        EscapedPath(g.archive_dest())
                    );
                    self.quarantine(&Rejected::Upload(g.upload), &reason);
                }
                Prepared::Ready(g) => good.push(*g),
                Prepared::Refused(upload, reason) => {
                    self.quarantine(&Rejected::Upload(upload), &reason)
                }
                Prepared::Failed(_, e) => return Err(e),
            }
        }
        // Filed by record time: an upload whose records are dated outside the clock window
        // waits in the quarantine (before the chunks are sorted out, so that no other upload's
        // chunk is left out for one that then goes nowhere).
        let mut good = self.within_clock_window(good)?;
        if good.is_empty() {
            return Ok(());
        }
        let left_out = self.sort_out_chunks(&mut good);
        let chunks = BatchChunks::new(&good, &left_out);
        let duplicates = chunks.duplicates(|_| true);
        // The pieces were made at the window check; again only where chunks were left out.
        for g in &mut good {
            if g.segments == g.pieces_of {
                continue;
            }
            g.pieces = match day_pieces(&self.config, g) {
                Ok(p) => p,
                Err(day_pieces::NotSplit::Read(e)) => {
                    return Err(e).or_upload(Action::Read, &g.upload.display_name());
                }
                // A part of what passed the window check passes it; should it not, or not
                // split, the new chunks go whole to the upload day rather than stop the pass.
                Err(day_pieces::NotSplit::Clock(_) | day_pieces::NotSplit::Unsplittable(_)) => {
                    day_pieces::whole(g.day, &g.segments, g.records)
                }
            };
        }
        let mut done: Vec<(String, u64, u64, String, bool)> = good
            .iter()
            .map(|g| {
                (
                    g.upload.display_name(),
                    g.append_len(),
                    g.records,
                    g.host.to_string(),
                    g.salvaged.is_some(),
                )
            })
            .collect();
        let mut zero_runs: Vec<(String, Vec<argus_core::ranges::ByteRange>)> = good
            .iter()
            .filter(|g| !g.gaps.is_empty())
            .map(|g| (g.upload.display_name(), g.gaps.clone()))
            .collect();
        let dup_count = duplicates.len() as u64;
        let clients: std::collections::BTreeSet<String> =
            good.iter().map(|g| g.upload.client().to_owned()).collect();
        self.committed_archives
            .extend(good.iter().map(|g| g.archive_dest().to_path_buf()));
        self.catalog_archives(
            good.iter().map(ReadyUpload::archive_len).sum(),
            good.iter().map(|g| g.upload.uploaded_at()).min(),
        );
        let result = commit(
            &self.config,
            &mut self.journal,
            &mut self.ledger,
            &self.queue,
            (good, duplicates),
            &mut self.removal,
        );
        let (days, dup_count) = match result {
            Ok(days) => (days, dup_count),
            Err(Stopped::Failed(fatal)) => {
                // Roll back what the journal knows right away, so nothing half done stays.
                if let Err(e) = self.roll_back() {
                    log::error!(
                        "rolling back after the failure failed too ({}); the next start repairs it from the journal",
                        error_chain(&e)
                    );
                }
                return Err(fatal);
            }
            Err(Stopped::Taken {
                uploads,
                mut salvaged,
                days,
            }) => {
                // Their appends are undone, every other upload completed (its archive is in
                // place); they stay in the dropzone until refused here.
                let refused: BTreeSet<String> =
                    uploads.iter().map(|(u, _)| u.display_name()).collect();
                log::warn!(
                    "the archive name of {} is taken: rolling the batch back to leave it out",
                    refused.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                // Those that left out a chunk only a refused upload brought are rolled back
                // too, and ingested again after (`refused`).
                let leaving = chunks.dependents(&refused);
                if !leaving.is_empty() {
                    log::warn!(
                        "{} left out chunks that only the refused uploads brought: taken back out of the batch, to be ingested again",
                        leaving.iter().cloned().collect::<Vec<_>>().join(", ")
                    );
                }
                let again = chunks.unarchive(&leaving);
                argus_core::failpoint::hit("taken-back");
                // Whole in the quarantine, as after a commit; the rollback removes any that
                // could not go there (their archives keep them).
                salvaged.retain(|(u, _)| !leaving.contains(&u.display_name()));
                quarantine_salvaged(&self.config, &self.queue, salvaged);
                self.roll_back()?;
                self.taken_back.extend(again?);
                let out = |name: &str| refused.contains(name) || leaving.contains(name);
                let duplicates = chunks.duplicates(|name| !out(name));
                self.ledger
                    .record(&duplicates)
                    .or_store(Action::Write, Store::Ledger)?;
                for name in &leaving {
                    if let Some(archive) = chunks.archive_of(name) {
                        self.committed_archives.remove(archive);
                    }
                }
                for (upload, archive) in uploads {
                    let reason = already_archived(&archive);
                    self.quarantine(&Rejected::Upload(upload), &reason);
                }
                done.retain(|d| !out(&d.0));
                zero_runs.retain(|z| !out(&z.0));
                (days, duplicates.len() as u64)
            }
        };
        for (name, len, records, host, salvaged) in done {
            if salvaged {
                // In the quarantine (logged there), though its records were appended.
                self.summary.quarantined += 1;
                self.summary.bytes += len;
                continue;
            }
            if len == 0 {
                self.summary.empty += 1;
            } else {
                self.summary.ingested += 1;
                self.summary.bytes += len;
                self.summary.records += records;
            }
            let s = if records == 1 { "" } else { "s" };
            log::info!("ingested {name} ({len} bytes, {records} record{s}) for host {host}");
        }
        for (name, gaps) in zero_runs {
            let runs: Vec<String> = gaps
                .iter()
                .map(|g| format!("{} bytes at offset {}", g.len, g.offset))
                .collect();
            log::warn!(
                "{name}: runs of zeros between its records were left out of the day file, as ra skips them ({}; a power loss on the sensor?); the archive keeps them",
                runs.join(", ")
            );
        }
        // A day file counts once per pass, however many batches append to it.
        if let Some(known) = &mut self.days {
            let before = known.plain.len();
            // Compression waits for every plain day file; an announcement only for a
            // day file begun since (late data for a day announced is not a new day).
            let every = known.closing == Closing::Compress;
            known.plain.extend(
                days.iter()
                    .filter(|(_, begun)| every || *begun)
                    .filter_map(|(path, _)| path.file_name().and_then(|n| n.to_str()))
                    .filter(|n| super::listing::is_plain_day_file(n))
                    .map(str::to_owned),
            );
            // A day file the saved catalog does not name: until the maintenance saves
            // it again, the next start lists the directory.
            if known.plain.len() != before {
                self.forget_days();
            }
        }
        self.touched_days
            .extend(days.into_iter().map(|(path, _)| path));
        self.summary.duplicates += dup_count;
        // The batch's sensors may have entered or left a health condition. Should the
        // event not be queued, the next batch of that sensor queues it.
        let touched = clients
            .iter()
            .filter_map(|c| self.ledger.clients.get_key_value(c));
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = crate::hooks::sensor_health(&self.config, &self.queue, touched, now) {
            log::error!("cannot queue sensor_health events: {}", error_chain(&e));
        }
        Ok(())
    }

    /// Rolls back what the journal holds, as a start after a crash would: the batch before
    /// first finishes its removal (or leaves it to the recovery).
    fn roll_back(&mut self) -> Result<(), Error> {
        if let Err(e) = finish_removal(&mut self.journal, &mut self.removal) {
            log::error!("{}", error_chain(&e));
        }
        let recovered = match Journal::open(&self.config.state_dir) {
            Ok((mut journal, entries)) => {
                let hooks = (&self.queue, &self.config.hooks);
                let recovered = recover(&mut journal, &entries, &mut self.ledger, hooks);
                self.journal = journal;
                recovered.map(drop)
            }
            Err(e) => Err(e).or_store(Action::Open, Store::Journal),
        };
        // What it could not finish waits for the next start, which must clean up.
        self.unclean |= recovered.is_err();
        recovered
    }

    /// The uploads whose records are dated inside the clock window (all of them when day files
    /// go by upload day); the others go to the quarantine.
    fn within_clock_window(&mut self, good: Vec<ReadyUpload>) -> Result<Vec<ReadyUpload>, Error> {
        let mut kept = Vec::with_capacity(good.len());
        for mut g in good {
            g.pieces_of = g.segments.clone();
            match day_pieces(&self.config, &g) {
                Ok(p) => g.pieces = p,
                Err(day_pieces::NotSplit::Clock(why))
                    if self.config.clock_policy == ClockPolicy::Quarantine =>
                {
                    self.quarantine(&Rejected::Upload(g.upload), &why);
                    continue;
                }
                Err(day_pieces::NotSplit::Clock(why)) => {
                    log::warn!(
                        "{}: {why}; filed whole under its upload day (clock_policy = \"upload_day\")",
                        g.upload.display_name()
                    );
                    g.by_upload_day = true;
                }
                Err(day_pieces::NotSplit::Unsplittable(why)) => {
                    log::warn!(
                        "{}: {why}; filed whole under its upload day",
                        g.upload.display_name()
                    );
                    g.by_upload_day = true;
                }
                Err(day_pieces::NotSplit::Read(e)) => {
                    return Err(e).or_upload(Action::Read, &g.upload.display_name());
                }
            }
            if g.by_upload_day {
                g.pieces = day_pieces::whole(g.day, &g.segments, g.records);
            }
            kept.push(g);
        }
        Ok(kept)
    }

    /// Decides, chunk by chunk (from the manifests), what each upload appends: chunks the ledger
    /// (or an earlier upload of this batch) already has are left out and returned, by upload;
    /// the rest are the upload's new chunks.
    fn sort_out_chunks(&self, good: &mut [ReadyUpload]) -> Vec<Vec<(String, u64)>> {
        let plans = chunks::plan(good.iter().map(|g| &g.manifests[..]), |host, seq, sha| {
            self.ledger.check(host, seq, sha)
        });
        let mut duplicates = vec![Vec::new(); good.len()];
        for ((g, p), left_out) in good.iter_mut().zip(plans).zip(&mut duplicates) {
            let Some(p) = p else { continue };
            for (host, seq) in &p.reused {
                log::warn!(
                    "{}: chunk seq {seq} of host {host} was seen before with other content (was the sensor's state reset?); appended",
                    g.upload.display_name(),
                );
            }
            for (host, seq) in &p.duplicates {
                log::warn!(
                    "{}: chunk seq {seq} of host {host} was ingested before; not appended again",
                    g.upload.display_name(),
                );
            }
            *left_out = p.duplicates;
            g.new_chunks = p
                .new
                .into_iter()
                .map(|((host, seq), sha)| ChunkRef { host, seq, sha })
                .collect();
            // The new chunks' ranges, less the runs of zeros inside them; a run inside a chunk
            // left out was counted when that chunk came.
            g.gaps.retain(|z| {
                p.segments
                    .iter()
                    .any(|s| s.offset <= z.offset && z.end() <= s.end())
            });
            g.segments = argus_core::ranges::ByteRange::without(&p.segments, &g.gaps);
        }
        duplicates
    }
}

/// The pieces of `g`, oldest day first; none when it appends nothing. One piece on its upload
/// day when day files go by upload day or the window check decided so (`by_upload_day`).
fn day_pieces(config: &Config, g: &ReadyUpload) -> Result<Vec<DayPiece>, day_pieces::NotSplit> {
    if config.day_boundary == DayBoundary::Upload || g.by_upload_day {
        return Ok(day_pieces::whole(g.day, &g.segments, g.records));
    }
    let upload = day_pieces::Whole {
        day: g.day,
        stamp: g.upload.uploaded_at(),
        records: g.records,
    };
    day_pieces::split_file(config, &g.out, &g.segments, &upload)
}
