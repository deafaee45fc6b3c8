//! Names the engine reads back from the directories it fills: a directory's entries, sorted,
//! and the client an archived upload's name belongs to (the purge and `--dry-run` both read
//! them, so they live below both); and the day files that wait for their day to close, which
//! the start and the maintenance both list.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use argus_core::codec::Compression;

use time::OffsetDateTime;

use crate::config::{Config, Event};
use crate::day_catalog::{Closing, DayCatalog};
use crate::dayfile;
use crate::dropzone;

use crate::error::{Action, Context, Error};

/// The client id of an archived upload's name `CLIENT_YYYYMMDDHHMMSS[_...]_JOB.out[.sfx]`.
pub(super) fn archive_client<'a>(name: &'a str, job: &str) -> Option<&'a str> {
    let (base, _) = Compression::split_suffix(name);
    let stem = base.strip_suffix(".out")?;
    stem.strip_suffix(job)?.strip_suffix('_')?;
    dropzone::client_of_stem(stem)
}

/// What closed days wait for under `config`: their compression, or, when day files stay plain,
/// their `day_closed` event if a hook wants one; `None` when nothing does.
pub(super) fn closing(config: &Config) -> Option<Closing> {
    if config.oper_codec.compression() != Compression::None {
        Some(Closing::Compress)
    } else if config.hooks.on(Event::DayClosed).next().is_some() {
        Some(Closing::Announce)
    } else {
        None
    }
}

/// Lists the day-file directory: settles what an interrupted compression left (see
/// [`dayfile::settle`]) and keeps the names of the plain day files.
pub(super) fn plain_day_files(oper_dir: &Path) -> Result<BTreeSet<String>, Error> {
    let names = dir_names(oper_dir)?;
    let settled = dayfile::settle(oper_dir, &names)?;
    Ok(names
        .into_iter()
        .filter(|n| !settled.iter().any(|p| p.file_name() == Some(n.as_ref())))
        .filter(|n| is_plain_day_file(n))
        .collect())
}

/// The day files that wait for `closing`, from a listing of the day-file directory (which
/// settles what a crash left): the plain ones, less those announced when the wait is for a
/// `day_closed` event (see [`crate::hooks::unannounced`]).
pub(super) fn list_days(
    config: &Config,
    closing: Closing,
    now: OffsetDateTime,
) -> Result<DayCatalog, Error> {
    let mut plain = plain_day_files(&config.oper_dir)?;
    if closing == Closing::Announce {
        crate::hooks::unannounced(config, &mut plain, now)?;
    }
    Ok(DayCatalog {
        closing,
        listed_at: now.unix_timestamp(),
        oper_dir: config.oper_dir.clone(),
        plain,
    })
}

/// Whether `name` is a day file's, not compressed.
pub(super) fn is_plain_day_file(name: &str) -> bool {
    dayfile::parse_day_file(name).is_some_and(|d| d.compression == Compression::None)
}

/// The names in `dir` that are valid UTF-8 (no name this program writes is not), sorted.
pub(super) fn dir_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).or_file(Action::Read, dir)? {
        let entry = entry.or_file(Action::Read, dir)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_give_their_client() {
        let job = "harvest_argus";
        assert_eq!(
            archive_client("client1_20261127000000_harvest_argus.out.gz", job),
            Some("client1")
        );
        assert_eq!(
            archive_client("site_2_20261127000000_4242_harvest_argus.out", job),
            Some("site_2")
        );
        assert_eq!(
            archive_client("a.b-c_20261127000000_x_y_harvest_argus.out.xz", job),
            Some("a.b-c")
        );
        assert_eq!(
            archive_client("client1_20261127000000_other.out.gz", job),
            None
        );
        assert_eq!(
            archive_client("client1_2026112700000_harvest_argus.out", job),
            None
        );
        assert_eq!(
            archive_client("_20261127000000_harvest_argus.out", job),
            None
        );
    }
}
