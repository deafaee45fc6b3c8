//! The stems of the uploads the ledger counted lately, so that a fact applied twice (written by
//! its batch, then again by the journal's recovery) counts once.

use std::collections::BTreeMap;

/// Stems kept before the first prune.
const FLOOR: usize = 200_000;

/// Stems with their upload times; those more than `keep` seconds older than the fact that
/// prunes them are forgotten. A prune walks every stem, so it runs only when the set has
/// doubled since the last one: a daemon whose fleet uploads more than the floor within `keep`
/// pays for a walk now and then, not for one per upload.
#[derive(Debug)]
pub(super) struct RecentStems {
    stems: BTreeMap<String, i64>,
    keep: i64,
    limit: usize,
    floor: usize,
    prunes: u64,
}

impl RecentStems {
    pub(super) fn new(keep: i64) -> RecentStems {
        RecentStems::with_floor(keep, FLOOR)
    }

    fn with_floor(keep: i64, floor: usize) -> RecentStems {
        RecentStems {
            stems: BTreeMap::new(),
            keep,
            limit: floor,
            floor,
            prunes: 0,
        }
    }

    /// Notes `stem`, uploaded at `at`; false when it was noted before (the fact is a replay).
    pub(super) fn note(&mut self, stem: &str, at: i64) -> bool {
        if self.stems.insert(stem.to_owned(), at).is_some() {
            return false;
        }
        if self.stems.len() > self.limit {
            let cutoff = at.saturating_sub(self.keep);
            self.stems.retain(|_, t| *t > cutoff);
            self.limit = self.floor.max(self.stems.len().saturating_mul(2));
            self.prunes += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_pruned_when_they_double_not_at_every_upload() {
        let mut recent = RecentStems::with_floor(100, 10);
        // 1,000 uploads within `keep` of each other: none can be forgotten.
        for i in 0..1000 {
            assert!(recent.note(&format!("s{i}"), i / 20));
        }
        assert_eq!(recent.stems.len(), 1000);
        assert!(recent.prunes <= 7, "{} prunes", recent.prunes);
        assert!(!recent.note("s999", 49), "a replay counts once");
        // Time moves on: the next prune forgets what is older than `keep`.
        let mut at = 1000;
        while recent.prunes < 8 {
            at += 1;
            recent.note(&format!("t{at}"), at);
        }
        assert!(recent.stems.values().all(|t| *t > at - 100));
        assert!(recent.note("s0", at), "forgotten");
        assert!(recent.limit >= recent.stems.len() && recent.limit >= 10);
    }
}
