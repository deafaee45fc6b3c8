//! The content hashes of a host's most recent chunks, 16 bytes each: a fleet of 10,000 sensors
//! holds 5 million of them once every sensor has shipped 512 chunks.

use std::collections::VecDeque;

use super::RECENT;

/// A host's most recent chunks (at most 512, the highest numbers), each with its short
/// hash (the first 8 bytes of its SHA-256, see [`super::short_hash`]) as a number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentChunks {
    /// By chunk number, ascending, each number once.
    chunks: VecDeque<(u64, u64)>,
}

/// A short hash as text (1 to 16 hex digits, as [`super::is_short_hash`] takes them) as the
/// number it is kept as; `None` for `-` or anything else.
pub(crate) fn parse_hash(hex: &str) -> Option<u64> {
    (hex.len() <= 16 && !hex.starts_with('+'))
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

impl RecentChunks {
    /// The short hash of chunk `seq`, if it is one of the recent ones.
    pub fn get(&self, seq: u64) -> Option<u64> {
        self.chunks
            .binary_search_by_key(&seq, |&(q, _)| q)
            .ok()
            .map(|i| self.chunks[i].1)
    }

    /// Notes chunk `seq` with its short hash; when more than 512 are noted, the lowest
    /// number is forgotten (the one noted, if it is lower than all the others).
    pub fn insert(&mut self, seq: u64, hash: u64) {
        match self.chunks.binary_search_by_key(&seq, |&(q, _)| q) {
            Ok(i) => self.chunks[i].1 = hash,
            Err(0) if self.chunks.len() >= RECENT => {}
            Err(i) => {
                // Full: the lowest goes first, so that the store never grows past RECENT.
                let i = if self.chunks.len() >= RECENT {
                    self.chunks.pop_front();
                    i - 1
                } else {
                    i
                };
                self.chunks.insert(i, (seq, hash));
            }
        }
    }

    /// The chunks, by number.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.chunks.iter().copied()
    }

    /// How many chunks are noted.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_store_keeps_what_a_map_bounded_to_its_highest_numbers_keeps() {
        // Numbers mostly rising, some late, some again with another hash.
        let mut recent = RecentChunks::default();
        let mut map: BTreeMap<u64, u64> = BTreeMap::new();
        let mut x: u64 = 7;
        for i in 0..5000_u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let seq = match x >> 61 {
                0 => i.saturating_sub(x % 700),
                1 => i.saturating_sub(x % 20),
                _ => i,
            };
            let hash = x >> 7;
            recent.insert(seq, hash);
            map.insert(seq, hash);
            while map.len() > RECENT {
                map.pop_first();
            }
            assert!(recent.len() <= RECENT);
        }
        assert_eq!(recent.iter().collect::<BTreeMap<_, _>>(), map);
        for seq in 4000..5000 {
            assert_eq!(recent.get(seq), map.get(&seq).copied());
        }
        assert!(
            recent.chunks.capacity() <= RECENT,
            "never grown past RECENT"
        );
    }

    #[test]
    fn hashes_are_hex_of_at_most_16_digits() {
        assert_eq!(parse_hash("00000000000000ab"), Some(0xab));
        assert_eq!(parse_hash("FFFFFFFFFFFFFFFF"), Some(u64::MAX));
        for bad in ["-", "", "+1", "x", "00000000000000000"] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
    }
}
