//! `--dry-run`: what a pass would ingest, quarantine, expire and compress, printed on stdout, with nothing
//! changed.

use std::io;

use argus_core::codec::Compression;
use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;
use argus_core::ranges::ByteRange;
use time::OffsetDateTime;

use crate::config::Config;
use crate::content::Content;
use crate::dayfile;
use crate::dropzone::{self, Upload};
use crate::report::Summary;

use super::listing::dir_names;
use super::preflight::preflight;
use super::prepare::{already_archived, archive_name, open_checked, salvageable};
use super::verify::{VerifyError, verify};
use crate::error::{Action, Context, Error, Problems, Store};

/// A dry run: what a pass would do, a line each in `plan`; changes nothing.
pub(super) fn dry_run(
    config: &Config,
    content: &dyn Content,
    now: OffsetDateTime,
    summary: &mut Summary,
    plan: &mut Vec<String>,
) -> Result<(), Error> {
    let problems = preflight(config);
    if !problems.is_empty() {
        return Err(Error::Config(Problems(problems)));
    }
    {
        // A plan lists every upload anyway: no window.
        let found = dropzone::scan(config, now, None).or_store(Action::Scan, Store::Dropzone)?;
        let mut say = |line: String| plan.push(line);
        for (upload, reason) in &found.invalid {
            say(format!(
                "would quarantine {}: {reason}",
                upload.display_name()
            ));
            summary.quarantined += 1;
        }
        for upload in found.complete {
            match check_only(config, content, &upload) {
                Ok((host, len)) => {
                    let (day, _) = dayfile::target(&config.oper_dir, &host, upload.day());
                    if len == 0 {
                        say(format!(
                            "would archive {} (empty: nothing to append)",
                            upload.display_name()
                        ));
                        summary.empty += 1;
                    } else {
                        match dry_split(config, &upload, len) {
                            Ok(pieces) if pieces.len() > 1 => {
                                let to: Vec<String> = pieces
                                    .iter()
                                    .map(|p| {
                                        let (file, _) =
                                            dayfile::target(&config.oper_dir, &host, p.day);
                                        format!("{} ({} bytes)", EscapedPath(&file), p.bytes())
                                    })
                                    .collect();
                                say(format!(
                                    "would append {} ({len} bytes) split by record time to {}",
                                    upload.display_name(),
                                    to.join(", ")
                                ));
                            }
                            Ok(pieces) => {
                                let day = pieces.first().map_or(day, |p| {
                                    dayfile::target(&config.oper_dir, &host, p.day).0
                                });
                                say(format!(
                                    "would append {} ({len} bytes) to {}",
                                    upload.display_name(),
                                    EscapedPath(&day)
                                ));
                            }
                            Err(why) => {
                                say(format!("would quarantine {}: {why}", upload.display_name()));
                                summary.quarantined += 1;
                                continue;
                            }
                        }
                        summary.ingested += 1;
                        summary.bytes += len;
                    }
                }
                Err(reason) => {
                    say(format!(
                        "would quarantine {}: {reason}",
                        upload.display_name()
                    ));
                    summary.quarantined += 1;
                }
            }
        }
        for orphan in &found.orphans {
            say(format!("orphaned (no .rdy): {}", EscapedPath(orphan)));
        }
        if config.archive_days > 0 || config.archive_max_size.is_some() {
            use argus_core::retention::{Reason, Sweep};
            let mut judge = super::maintain::archive_judge(config)?;
            let policy = super::maintain::archive_policy(config);
            // An archive that cannot be read shows no purge, as a pass would then purge none.
            let sweep = Sweep::survey(&config.archive_dir, &mut judge, &policy, now, |_| false);
            if let Ok(sweep) = sweep {
                if let Some(surprise) = sweep.surprise() {
                    let count = usize::try_from(sweep.deleted().0).unwrap_or(usize::MAX);
                    let warning = crate::retention_warning::RetentionWarning::new(
                        config, &surprise, count, now,
                    );
                    say(format!("would warn: {}", warning.message));
                }
                let mut doomed = Vec::new();
                sweep
                    .each_doomed(&config.archive_dir, &mut judge, |name, time, reason| {
                        doomed.push((time, name.to_owned(), reason));
                    })
                    .unwrap_or_else(|e| log::warn!("cannot list the archive: {e}"));
                // Oldest first, as a purge goes.
                doomed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                for (_, name, reason) in doomed {
                    let why = match reason {
                        Reason::Age => format!("older than {} days", config.archive_days),
                        Reason::Size => "over archive_max_size".to_owned(),
                    };
                    say(format!("would purge archive {name} ({why})"));
                    summary.purged += 1;
                }
            }
        }
        if let Some(why) = crate::space::shortage(config) {
            say(format!(
                "would ingest nothing, unless the purge frees enough: {why}"
            ));
        }
        if let Ok(groups) = webjob_drop::list_quarantine(&config.quarantine_dir) {
            for g in crate::quarantine::to_expire(&groups, now.into(), config.quarantine_days) {
                say(format!(
                    "would expire the quarantined {} (older than {} days)",
                    EscapedPath(&g.dir),
                    config.quarantine_days
                ));
                summary.expired += 1;
            }
        }
        let names = dir_names(&config.oper_dir).unwrap_or_default();
        for d in dayfile::closed_days(&names, now, config.oper_compress_after_days) {
            if config.oper_codec.compression() != Compression::None {
                say(format!("would compress {} ({})", d.name, config.oper_codec));
            }
        }
        Ok(())
    }
}

/// How an upload would be split over day files (its whole `.out`).
fn dry_split(
    config: &Config,
    upload: &Upload,
    len: u64,
) -> Result<Vec<super::day_pieces::DayPiece>, String> {
    let out = upload.open_out()?;
    let whole = super::day_pieces::Whole {
        day: upload.day(),
        stamp: upload.uploaded_at(),
        records: 0,
    };
    let segments = [ByteRange::new(0, len)];
    match super::day_pieces::split_file(config, &out, &segments, &whole) {
        Ok(pieces) => Ok(pieces),
        Err(super::day_pieces::NotSplit::Clock(why))
            if config.clock_policy == crate::config::ClockPolicy::Quarantine =>
        {
            Err(why)
        }
        Err(
            super::day_pieces::NotSplit::Clock(_) | super::day_pieces::NotSplit::Unsplittable(_),
        ) => Ok(super::day_pieces::whole(whole.day, &segments, 0)),
        Err(super::day_pieces::NotSplit::Read(e)) => Err(format!("cannot read .out: {e}")),
    }
}

pub(super) fn check_only(
    config: &Config,
    content: &dyn Content,
    upload: &Upload,
) -> Result<(Hostname, u64), String> {
    let (host, out, len, manifests) = open_checked(upload, upload.open_parts())?;
    let archive = config
        .archive_dir
        .join(archive_name(upload, config.archive_codec));
    if archive.exists() {
        return Err(already_archived(&archive));
    }
    let mut sink = io::sink();
    verify(&out, len, &manifests, &mut sink, false, content.check()).map_err(|e| match e {
        VerifyError::Damaged {
            reason,
            valid_len,
            records,
            ..
        } if salvageable(config, &manifests, valid_len) => format!(
            "{reason}; its first {valid_len} bytes ({records} complete records) would be appended before (damaged_uploads = \"salvage\")"
        ),
        VerifyError::Refused(reason) | VerifyError::Damaged { reason, .. } => reason,
        VerifyError::Read(e) => format!("cannot read .out: {e}"),
        VerifyError::Write(e) => format!("cannot write: {e}"),
    })?;
    Ok((host, len))
}
