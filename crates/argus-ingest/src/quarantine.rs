//! The quarantine's expiry: which quarantined groups are older than `quarantine_days`. The
//! moves themselves (quarantine, requeue, expire) are webjob-drop's.

use std::time::{Duration, SystemTime};

use webjob_drop::QuarantinedGroup;

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
