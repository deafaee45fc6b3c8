//! Maintenance after the ingest: purging archives past `archive_days`, expiring quarantined
//! groups past `quarantine_days`, compressing the day
//! files of closed days (their `day_closed` hook events queued first), and running due hooks.

use argus_core::escape::EscapedPath;
use argus_core::retention;
use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::day_catalog::DayCatalog;
use crate::dayfile::{self, FromArchives};
use crate::dropzone;
use crate::members;
use crate::retention_warning::RetentionWarning;

use super::Engine;
use super::listing::{self, archive_client};
use crate::error::{Action, Context, Error, Store, error_chain};

/// How retention tells the archive's files it may delete: uploads of the configured clients
/// and job (`CLIENT_YYYYMMDDHHMMSS[_MIDDLE]_JOB.out[.sfx]`), with the time their names carry.
pub(super) fn archive_judge(
    config: &Config,
) -> Result<impl FnMut(&str) -> Option<Option<OffsetDateTime>> + use<>, Error> {
    let selection = dropzone::selection(config).or_store(Action::Scan, Store::Dropzone)?;
    let job = config.job.clone();
    let mut patterns: std::collections::HashMap<String, Option<retention::NamePattern>> =
        std::collections::HashMap::new();
    Ok(move |name: &str| {
        let client = archive_client(name, &job).filter(|c| selection.matches_client(c))?;
        let pattern = patterns
            .entry(client.to_owned())
            .or_insert_with(|| retention::NamePattern::upload_archive(client, &job).ok())
            .as_ref()?;
        pattern.matches(name).map(|m| m.time)
    })
}

/// What retention deletes: uploads of the configured clients older than `archive_days`, then
/// the oldest of them until their total is under the low watermark once it is over
/// `archive_max_size`. `--dry-run` shows the same plan.
pub(super) fn archive_policy(config: &Config) -> retention::Policy {
    retention::Policy {
        max_age_days: config.archive_days,
        max_total_bytes: config.archive_max_size,
        low_watermark_bytes: config
            .archive_max_size
            .map(|max| config.archive_low_watermark.of(max).min(max)),
    }
}

impl Engine {
    /// Purges the archive by retention, in walks over it that hold no listing of it
    /// ([`retention::Sweep`]), when the catalog says a purge may be due.
    pub(super) fn purge(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let config = &self.config;
        if config.archive_days == 0 && config.archive_max_size.is_none() {
            return Ok(());
        }
        if self.catalog.as_ref().is_some_and(|c| !c.due(config, now)) {
            return Ok(());
        }
        let mut judge = archive_judge(config)?;
        let committed: std::collections::HashSet<&std::ffi::OsStr> = self
            .committed_archives
            .iter()
            .filter_map(|p| p.file_name())
            .collect();
        let fresh = |name: &str| committed.contains(std::ffi::OsStr::new(name));
        let policy = archive_policy(config);
        let sweep = retention::Sweep::survey(&config.archive_dir, &mut judge, &policy, now, fresh)?;
        if let Some(surprise) = sweep.surprise() {
            let count = usize::try_from(sweep.deleted().0).unwrap_or(usize::MAX);
            let warning = RetentionWarning::new(config, &surprise, count, now);
            log::warn!("{}", warning.message);
            self.summary.retention_warnings += 1;
            if let Err(e) = warning.save(&config.state_dir) {
                log::warn!("cannot keep the retention warning for status: {e}");
            }
        }
        let applied = sweep.apply(
            &config.archive_dir,
            &mut judge,
            |name, reason| match reason {
                retention::Reason::Age => log::info!(
                    "purging archive {name} (older than {} days)",
                    config.archive_days
                ),
                retention::Reason::Size => {
                    log::info!("purging archive {name} (the archives are over archive_max_size)")
                }
            },
        );
        // Kept only when the whole plan was carried out; else the next purge lists again.
        let catalog = applied.is_ok().then(|| Catalog::swept(config, &sweep, now));
        self.keep_catalog(catalog);
        self.summary.purged += applied?;
        Ok(())
    }

    /// Lists the archive into a new catalog, deleting nothing; the purge judges it when it
    /// runs (a catalog over a limit is due).
    pub(super) fn catalog_archive(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let config = &self.config;
        if config.archive_days == 0 && config.archive_max_size.is_none() {
            return Ok(());
        }
        let mut judge = archive_judge(config)?;
        let keep_all = retention::Policy::default();
        let sweep =
            retention::Sweep::survey(&config.archive_dir, &mut judge, &keep_all, now, |_| false)?;
        self.keep_catalog(Some(Catalog::swept(config, &sweep, now)));
        Ok(())
    }

    /// Keeps `catalog` in memory and in the state directory, or forgets it (`None`, or one
    /// that cannot be saved): the next purge then lists the archive.
    pub(super) fn keep_catalog(&mut self, catalog: Option<Catalog>) {
        let state_dir = &self.config.state_dir;
        self.catalog = match catalog.map(|c| c.save(state_dir).map(|()| c)) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                log::warn!(
                    "cannot keep the archive catalog (the next purge lists the archive): {e}"
                );
                None
            }
            None => None,
        };
        if self.catalog.is_none()
            && let Err(e) = Catalog::forget(state_dir)
        {
            log::warn!("cannot remove the archive catalog: {e}");
        }
    }

    /// Deletes quarantined groups older than `quarantine_days`.
    pub(super) fn expire_quarantine(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let config = &self.config;
        if config.quarantine_days == 0 {
            return Ok(());
        }
        let groups = webjob_drop::list_quarantine(&config.quarantine_dir)
            .or_store(Action::Read, Store::Quarantine)?;
        for g in crate::quarantine::to_expire(&groups, now.into(), config.quarantine_days) {
            match webjob_drop::expire_group(&g.dir, &config.quarantine_dir) {
                Ok(()) => {
                    log::info!(
                        "expired the quarantined {} (older than {} days)",
                        EscapedPath(&g.dir),
                        config.quarantine_days
                    );
                    self.summary.expired += 1;
                }
                Err(e) => {
                    let e = Error::File {
                        action: Action::Expire,
                        path: g.dir.clone(),
                        source: e.into(),
                    };
                    log::error!("{}", error_chain(&e));
                    self.trouble.get_or_insert(e);
                }
            }
        }
        Ok(())
    }

    pub(super) fn compress(&mut self, now: OffsetDateTime) -> Result<(), Error> {
        let config = &self.config;
        let Some(closing) = listing::closing(config) else {
            // Day files stay plain and no hook waits for their days: nothing to close.
            self.days = None;
            members::prune(&config.state_dir, |_| false);
            return Ok(());
        };
        let (known, listed) = match self.days.take() {
            Some(known) if known.fresh(closing, &config.oper_dir, now) => (known, false),
            _ => (listing::list_days(config, closing, now)?, true),
        };
        let days = dayfile::closed_days(&known.plain, now, config.oper_compress_after_days);
        // Queued before the compression, so that no crash can lose them; each runs once its
        // day file is in its final place.
        crate::hooks::day_closed(config, &self.queue, &days, now)?;
        // Closed days take what they can from their uploads' archives when both are written
        // alike (same codec, same level); the notes of days that are gone, or were noted
        // before the codecs parted, are dropped.
        let from = (config.archive_codec == config.oper_codec).then_some(FromArchives {
            state_dir: &config.state_dir,
            archive_dir: &config.archive_dir,
        });
        let done = dayfile::compress_days_from(
            &config.oper_dir,
            &days,
            config.oper_codec,
            super::compress_threads(config, &self.options),
            from,
        );
        members::prune(&config.state_dir, |day| {
            from.is_some() && known.plain.contains(day)
        });
        self.summary.compressed += done.done.len() as u64;
        self.summary.reused_bytes += done.reused;
        // Compressed, or announced: they wait no more (but for a failed compression).
        let mut known = known;
        for day in &days {
            known.plain.remove(&day.name);
        }
        let failed = !done.failed.is_empty();
        for (path, e) in done.failed {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                known.plain.insert(name.to_owned());
            }
            let e = Error::File {
                action: Action::Compress,
                path,
                source: e.into(),
            };
            log::error!("{}", error_chain(&e));
            self.trouble.get_or_insert(e);
        }
        if self.days_saved && !listed && days.is_empty() {
            // The saved catalog still names every plain day file (a new one would have
            // removed it): nothing to write.
            self.days = Some(known);
        } else {
            self.keep_days(known, !failed);
        }
        Ok(())
    }

    /// Keeps the day files that wait for the next maintenance, and, when `durable`, in the
    /// state directory for the next start; otherwise (day files left plain by a failed
    /// compression, for a listing to settle) the next start lists them.
    fn keep_days(&mut self, known: DayCatalog, durable: bool) {
        let state_dir = &self.config.state_dir;
        self.days_saved = durable && known.keep(state_dir);
        if !durable {
            crate::day_catalog::discard(state_dir);
        }
        self.days = Some(known);
    }

    /// Runs due hook events until none is due or `budget` is spent (a cron pass); what is
    /// left waits for the next pass.
    pub fn run_hooks(&mut self, budget: std::time::Duration) {
        if self.config.hooks.hooks.is_empty() {
            return;
        }
        let policy = std::sync::Mutex::new(self.config.hooks.clone());
        let stop = std::sync::atomic::AtomicBool::new(false);
        let stop = self.options.stop.as_deref().unwrap_or(&stop);
        let until = crate::hooks::Until::NothingDue(std::time::Instant::now() + budget);
        let drained = crate::hooks::drain(
            &self.queue,
            &policy,
            until,
            stop,
            &crate::hooks::Bell::default(),
        );
        self.summary.hooks_ran += drained.ran;
        self.summary.hooks_failed += drained.failed;
    }

    /// The hook queue, for the daemon's workers.
    pub fn hook_queue(&self) -> &crate::hooks::Queue {
        &self.queue
    }
}
