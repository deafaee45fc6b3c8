//! Sealed state lines: how both programs keep state in text files (process_argus' journal and
//! ledger, harvest_argus' sequence counter).
//!
//! A sealed line is a body, a separator and the first bytes of the body's SHA-256 in lowercase
//! hex, then a newline. A line torn by a crash, damaged on disk or edited by hand no longer
//! matches its seal and is recognised as such instead of being believed. Each file keeps the
//! separator and seal length it was first written with ([`StateLines`]), so that a line written
//! by one version is read by every other.
//!
//! ```
//! use argus_core::stateline::StateLines;
//!
//! let lines = StateLines::new(b' ', 4);
//! let mut out = Vec::new();
//! lines.seal(b"C sensor1 7", &mut out);
//! assert_eq!(lines.unseal(&out), Some(&b"C sensor1 7"[..]));
//! out[2] = b'X';
//! assert_eq!(lines.unseal(&out), None);
//! ```

use sha2::{Digest, Sha256};

/// The format of one file's sealed lines: the separator before the seal and the seal's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLines {
    separator: u8,
    seal_bytes: usize,
}

impl StateLines {
    /// Lines whose seal follows `separator` and holds the first `seal_bytes` bytes (1 to 32) of
    /// the body's SHA-256.
    pub const fn new(separator: u8, seal_bytes: usize) -> StateLines {
        assert!(
            seal_bytes >= 1 && seal_bytes <= 32,
            "a seal is 1 to 32 bytes"
        );
        StateLines {
            separator,
            seal_bytes,
        }
    }

    /// Appends `body`, sealed, and a newline to `out`. The body must not hold a newline.
    pub fn seal(&self, body: &[u8], out: &mut Vec<u8>) {
        debug_assert!(!body.contains(&b'\n'), "a state line is one line");
        out.extend_from_slice(body);
        out.push(self.separator);
        out.extend_from_slice(self.digest(body).as_bytes());
        out.push(b'\n');
    }

    /// The body of a sealed line (with or without its newline), or `None` when the seal is
    /// missing or does not match.
    pub fn unseal<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let at = line.iter().rposition(|&b| b == self.separator)?;
        let (body, seal) = (&line[..at], &line[at + 1..]);
        (seal == self.digest(body).as_bytes()).then_some(body)
    }

    /// [`StateLines::unseal`] of a line whose body must be UTF-8.
    pub fn unseal_str<'a>(&self, line: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(self.unseal(line)?).ok()
    }

    fn digest(&self, body: &[u8]) -> String {
        crate::manifest::hex(&Sha256::digest(body)[..self.seal_bytes])
    }
}

#[cfg(test)]
mod tests {
    use super::StateLines;

    #[test]
    fn a_sealed_line_reads_back_and_any_change_is_refused() {
        for lines in [StateLines::new(b' ', 4), StateLines::new(b'\t', 6)] {
            let mut out = Vec::new();
            lines.seal(b"A\tone two", &mut out);
            assert_eq!(out.last(), Some(&b'\n'));
            assert_eq!(lines.unseal(&out), Some(&b"A\tone two"[..]));
            assert_eq!(
                lines.unseal(&out[..out.len() - 1]),
                Some(&b"A\tone two"[..])
            );
            for i in 0..out.len() - 1 {
                let mut bad = out.clone();
                bad[i] ^= 0x20;
                assert_eq!(lines.unseal(&bad), None, "byte {i} changed");
            }
            // Torn anywhere: refused.
            for cut in 0..out.len() - 1 {
                assert_eq!(lines.unseal(&out[..cut]), None, "torn at {cut}");
            }
        }
    }

    #[test]
    fn a_seal_is_a_prefix_of_the_sha256_in_hex() {
        // SHA-256("abc") = ba7816bf 8f01cfea ...: files written before this module keep reading.
        let mut out = Vec::new();
        StateLines::new(b' ', 4).seal(b"abc", &mut out);
        assert_eq!(out, b"abc ba7816bf\n");
        out.clear();
        StateLines::new(b'\t', 6).seal(b"abc", &mut out);
        assert_eq!(out, b"abc\tba7816bf8f01\n");
    }

    #[test]
    fn the_format_is_part_of_the_seal() {
        let mut out = Vec::new();
        StateLines::new(b' ', 4).seal(b"x", &mut out);
        assert_eq!(StateLines::new(b' ', 6).unseal(&out), None);
        assert_eq!(StateLines::new(b'\t', 4).unseal(&out), None);
        assert_eq!(StateLines::new(b' ', 4).unseal(b"x"), None, "no seal");
    }
}
