//! The quarantine: a bad upload group moved there whole with its `quarantined` hook events
//! ([`quarantine_group`]), and which quarantined groups are older than `quarantine_days`. The
//! moves themselves (quarantine, requeue, expire) are webjob-drop's.

use std::time::{Duration, SystemTime};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use time::OffsetDateTime;
use webjob_drop::QuarantinedGroup;

use crate::config::{Config, Event};
use crate::dropzone::{self, Rejected};
use crate::hooks::{Queue, events};

/// Which groups to expire, by position, given when each was quarantined: more than `days`
/// days before `now` (0 keeps every one). A group whose time cannot be read is kept. Pure.
pub fn expired(at: &[Option<SystemTime>], now: SystemTime, days: u32) -> Vec<usize> {
    if days == 0 {
        return Vec::new();
    }
    let keep = Duration::from_secs(u64::from(days) * 86_400);
    at.iter()
        .enumerate()
        .filter(|(_, at)| {
            at.and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > keep)
        })
        .map(|(i, _)| i)
        .collect()
}

/// The groups of `groups` to expire (see [`expired`]).
pub fn to_expire(
    groups: &[QuarantinedGroup],
    now: SystemTime,
    days: u32,
) -> Vec<&QuarantinedGroup> {
    let at: Vec<Option<SystemTime>> = groups.iter().map(|g| g.at).collect();
    expired(&at, now, days)
        .into_iter()
        .map(|i| &groups[i])
        .collect()
}

/// Quarantines `bad` (see `dropzone::quarantine`) with its `quarantined` hook events: queued
/// before the move, for the directory the group is about to get, so that a crash cannot lose
/// them (an event whose directory never appears is dropped a day later), and again for the
/// directory it got should that differ.
pub fn quarantine_group(
    config: &Config,
    queue: &Queue,
    bad: &Rejected,
    reason: &str,
) -> Result<std::path::PathBuf, webjob_drop::Error> {
    let policy = &config.hooks;
    if policy.on(Event::Quarantined).next().is_none() {
        return dropzone::quarantine(bad, &config.quarantine_dir, reason);
    }
    let stem: Vec<u8> = match bad {
        Rejected::Invalid(i) => i.files().stem().as_bytes().to_vec(),
        Rejected::Upload(u) => u.stem().as_bytes().to_vec(),
    };
    let client = std::str::from_utf8(&stem)
        .ok()
        .and_then(dropzone::client_of_stem)
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let now = OffsetDateTime::now_utc();
    let queue_for = |dir: &Path| {
        let values = [
            ("stem", stem.clone()),
            ("client", client.clone()),
            ("dir", dir.as_os_str().as_bytes().to_vec()),
            ("reason", reason.as_bytes().to_vec()),
        ];
        if let Err(e) = queue.enqueue(&events(policy, Event::Quarantined, &values, now)) {
            log::error!("cannot queue the quarantined hook events: {e}");
        }
    };
    let expected = (0u32..10_000)
        .map(|n| {
            let mut name = OsStr::from_bytes(&stem).to_os_string();
            if n > 0 {
                name.push(format!(".{n}"));
            }
            config.quarantine_dir.join(name)
        })
        .find(|p| std::fs::symlink_metadata(p).is_err());
    if let Some(dir) = &expected {
        queue_for(dir);
    }
    let place = dropzone::quarantine(bad, &config.quarantine_dir, reason)?;
    if expected.as_ref() != Some(&place) {
        queue_for(&place);
    }
    Ok(place)
}

/// Why quarantined groups could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChooseError {
    /// The reason pattern is not a glob.
    #[error("{pattern:?} is not a glob: {source}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: globset::Error,
    },
    /// These stems name no quarantined group.
    #[error("no quarantined group {}", .0.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "))]
    Unknown(Vec<String>),
}

/// The groups of `groups` named by `stems` (or all of them, with `all`) whose reason matches the
/// glob `reason`, if given; a stem that names no group is an error, so that a typo requeues
/// nothing.
pub fn choose<'g>(
    groups: &'g [QuarantinedGroup],
    stems: &[String],
    all: bool,
    reason: Option<&str>,
) -> Result<Vec<&'g QuarantinedGroup>, ChooseError> {
    let matcher = reason
        .map(|r| {
            globset::Glob::new(r)
                .map(|g| g.compile_matcher())
                .map_err(|source| ChooseError::Pattern {
                    pattern: r.to_owned(),
                    source,
                })
        })
        .transpose()?;
    let unknown: Vec<String> = stems
        .iter()
        .filter(|s| !groups.iter().any(|g| g.stem.as_bytes() == s.as_bytes()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ChooseError::Unknown(unknown));
    }
    Ok(groups
        .iter()
        .filter(|g| {
            (all || stems.iter().any(|s| s.as_bytes() == g.stem.as_bytes()))
                && matcher
                    .as_ref()
                    .is_none_or(|m| g.reason.as_deref().is_some_and(|r| m.is_match(r)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expire_after_quarantine_days_and_never_with_0() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let ago = |days: u64| Some(now - Duration::from_secs(days * 86_400));
        let at = [ago(31), ago(29), None, ago(300), ago(30)];
        assert_eq!(expired(&at, now, 30), [0, 3]);
        assert!(expired(&at, now, 0).is_empty());
    }
}
