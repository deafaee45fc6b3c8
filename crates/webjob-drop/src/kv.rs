//! The text parts of an upload: `Key=Value` lines (`.env`, `.rdy`) and the chunk manifest lines
//! in `.err`.
//!
//! Parsing is byte-based and total: every input gives a result, nothing is decoded lossily, and
//! only the caller decides which keys it requires.
//!
//! ```
//! use webjob_drop::kv::{Env, EnvError};
//!
//! let env = Env::parse(b"KidHostname=evil\r\nHostname=sensor1\r\n\r\nJid=\xff\n");
//! assert_eq!(env.hostname()?.as_str(), "sensor1");
//! assert_eq!(env.values().get("Jid"), Some(&b"\xff"[..]));
//!
//! let hostile = Env::parse(b"Hostname=../../etc/x\n");
//! assert!(matches!(hostile.hostname(), Err(EnvError::Invalid { .. })));
//! # Ok::<(), EnvError>(())
//! ```

use std::io::{self, BufRead};

use argus_core::escape::Escaped;
use argus_core::host::{Hostname, InvalidHostname};
use argus_core::manifest::{self, Manifest, ManifestError};

/// The key of the host name in an `.env` file.
pub const HOSTNAME_KEY: &str = "Hostname";

/// Ordered `Key=Value` lines, as raw bytes.
///
/// Each line is split at its first `=`; a trailing `\r` is dropped (CRLF files); blank lines are
/// skipped; lines without `=` or with an empty key are not entries but are counted in
/// [`KeyValues::skipped_lines`]. Keys are compared exactly (case and all) and may repeat; values
/// are kept as they are, including non-UTF-8 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValues {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    skipped: Vec<usize>,
}

impl KeyValues {
    /// Parses `Key=Value` lines.
    pub fn parse(text: &[u8]) -> KeyValues {
        let mut kv = KeyValues::default();
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            match line.iter().position(|&b| b == b'=') {
                Some(eq) if eq > 0 => kv
                    .entries
                    .push((line[..eq].to_vec(), line[eq + 1..].to_vec())),
                _ => kv.skipped.push(index + 1),
            }
        }
        kv
    }

    /// The value of the first entry with exactly this key.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The value of the first entry with this key, if it is UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The values of every entry with exactly this key, in file order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// Every entry in file order, as `(key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries (a `.rdy` is often empty).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Line numbers (from 1) of non-blank lines that are not `Key=Value` entries.
    pub fn skipped_lines(&self) -> &[usize] {
        &self.skipped
    }
}

/// An upload's `.env` record: `Key=Value` lines written by the WebJob client, one of which names
/// the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    values: KeyValues,
}

/// Why an `.env` record does not name a usable host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// No `Hostname=` line (a `KidHostname=` line does not count).
    #[error("no Hostname line in the .env record")]
    Missing,
    /// More than one `Hostname=` line: the record is ambiguous and not trusted.
    #[error("{count} Hostname lines in the .env record")]
    Duplicate {
        /// How many there are.
        count: usize,
    },
    /// The value is not a safe host name.
    #[error("Hostname {} is not a valid host name", Escaped(value))]
    Invalid {
        /// The value, as found.
        value: Vec<u8>,
        /// Why it is refused.
        #[source]
        reason: InvalidHostname,
    },
}

impl Env {
    /// Parses the bytes of an `.env` file.
    pub fn parse(text: &[u8]) -> Env {
        Env {
            values: KeyValues::parse(text),
        }
    }

    /// Every `Key=Value` entry.
    pub fn values(&self) -> &KeyValues {
        &self.values
    }

    /// The validated host name: exactly one `Hostname=` line whose value passes [`Hostname`]
    /// validation (no path separator, no `..`, not empty, at most 253 bytes, only letters,
    /// digits, `.` and `-`). The value is taken exactly as written, without trimming.
    pub fn hostname(&self) -> Result<Hostname, EnvError> {
        let mut values = self.values.get_all(HOSTNAME_KEY);
        let first = values.next().ok_or(EnvError::Missing)?;
        let others = values.count();
        if others > 0 {
            return Err(EnvError::Duplicate { count: others + 1 });
        }
        Hostname::from_bytes(first).map_err(|reason| EnvError::Invalid {
            value: first.to_vec(),
            reason,
        })
    }
}

/// Longest `.err` line that is examined as a manifest; a longer line that starts like a manifest
/// is reported as an invalid one, other long lines are skipped without being kept in memory.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Reads the chunk manifests (SPEC §2.3) from the text of an `.err` file, streaming: memory is
/// bounded by [`MAX_LINE_LEN`] whatever the size of the file.
///
/// Returns one entry per line that starts with the manifest prefix, in file order: the parsed
/// manifest, or why it is damaged. An empty list is normal (an old harvester writes none).
pub fn read_manifests<R: BufRead>(
    mut reader: R,
) -> io::Result<Vec<Result<Manifest, ManifestError>>> {
    let prefix = manifest::PREFIX.as_bytes();
    let mut found = Vec::new();
    let mut line = Vec::new();
    let mut overlong = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let at_eof = buf.is_empty();
        let (chunk, line_done) = match buf.iter().position(|&b| b == b'\n') {
            Some(nl) => (&buf[..nl], true),
            None => (buf, at_eof),
        };
        if !overlong {
            // Keep what fits, so an overlong line can still be recognised by its prefix.
            let room = MAX_LINE_LEN - line.len();
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            overlong = chunk.len() > room;
        }
        let consumed = chunk.len() + usize::from(line_done && !at_eof);
        reader.consume(consumed);
        if line_done {
            if overlong {
                if line.starts_with(prefix) {
                    found.push(Err(ManifestError::Invalid { field: "line" }));
                }
            } else if line.starts_with(prefix) {
                found.extend(Manifest::find_all(&line));
            }
            line.clear();
            overlong = false;
        }
        if at_eof {
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_keep_order_bytes_and_duplicates() {
        let kv = KeyValues::parse(b"A=1\r\n\nB=x=y\nA=2\nno equals\n=empty key\nC=\nD=\xff\xfe");
        let entries: Vec<_> = kv.iter().collect();
        assert_eq!(
            entries,
            [
                (&b"A"[..], &b"1"[..]),
                (b"B", b"x=y"),
                (b"A", b"2"),
                (b"C", b""),
                (b"D", b"\xff\xfe"),
            ]
        );
        assert_eq!(kv.get("A"), Some(&b"1"[..]));
        assert_eq!(kv.get_all("A").collect::<Vec<_>>(), [b"1", b"2"]);
        assert_eq!(kv.get("a"), None, "keys are case sensitive");
        assert_eq!(kv.get_str("D"), None);
        assert_eq!(kv.get_str("B"), Some("x=y"));
        assert_eq!(kv.skipped_lines(), [5, 6]);
        assert_eq!(kv.len(), 5);
        assert!(KeyValues::parse(b"").is_empty());
        assert!(KeyValues::parse(b"\r\n\n\r\n").is_empty());
    }

    #[test]
    fn ready_files_parse_like_ftimes_writes_them() {
        let rdy =
            KeyValues::parse(b"Version=nph-webjob 1.9.0\nBaseDirectory=/integrity\nUseGMT=N\n");
        assert_eq!(rdy.get_str("BaseDirectory"), Some("/integrity"));
        assert_eq!(rdy.len(), 3);
    }

    #[test]
    fn hostname_is_taken_exactly_and_validated() {
        let ok = Env::parse(b"Version=webjob 1.3.0\r\nHostname=sensor-1.example.org\r\n");
        assert_eq!(
            ok.hostname().expect("valid").as_str(),
            "sensor-1.example.org"
        );

        assert_eq!(
            Env::parse(b"KidHostname=client1\n").hostname(),
            Err(EnvError::Missing)
        );
        assert_eq!(
            Env::parse(b"hostname=client1\n").hostname(),
            Err(EnvError::Missing)
        );
        assert_eq!(
            Env::parse(b"Hostname client1\n").hostname(),
            Err(EnvError::Missing)
        );
        assert_eq!(Env::parse(b"").hostname(), Err(EnvError::Missing));
        assert_eq!(
            Env::parse(b"Hostname=a\nHostname=b\n").hostname(),
            Err(EnvError::Duplicate { count: 2 })
        );
        assert_eq!(
            Env::parse(b"Hostname=a\r\nHostname=a\r\n").hostname(),
            Err(EnvError::Duplicate { count: 2 })
        );
        let long = [b"Hostname=".to_vec(), vec![b'a'; 300]].concat();
        for (text, reason) in [
            (
                &b"Hostname=../../etc/x\n"[..],
                InvalidHostname::BadByte(b'/'),
            ),
            (b"Hostname=a/b\n", InvalidHostname::BadByte(b'/')),
            (b"Hostname=\n", InvalidHostname::Empty),
            (b"Hostname=\xffhost\n", InvalidHostname::BadByte(0xff)),
            (b"Hostname= client1\n", InvalidHostname::BadByte(b' ')),
            (b"Hostname=..\n", InvalidHostname::BadStart),
            (b"Hostname=a..b\n", InvalidHostname::DotDot),
            (&long, InvalidHostname::TooLong(300)),
        ] {
            match Env::parse(text).hostname() {
                Err(EnvError::Invalid { reason: got, .. }) => {
                    assert_eq!(got, reason, "{}", Escaped(text));
                }
                other => panic!("{}: {other:?}", Escaped(text)),
            }
        }
        let err = Env::parse(b"Hostname=\x1b[2J\n")
            .hostname()
            .expect_err("escape");
        assert_eq!(
            err.to_string(),
            r"Hostname \x1b[2J is not a valid host name"
        );
    }

    fn manifest_line(seq: u64) -> String {
        format!(
            "{}host=sensor1 seq={seq} bytes=128 sha256={}",
            manifest::PREFIX,
            "ab".repeat(32)
        )
    }

    #[test]
    fn manifests_are_found_among_log_lines() {
        let text = format!(
            "harvest_argus: rotated\n{}\r\nnoise\n{}\n{}host=../x seq=1",
            manifest_line(1),
            manifest_line(2),
            manifest::PREFIX
        );
        // A tiny buffer exercises lines that span reads.
        let found = read_manifests(io::BufReader::with_capacity(7, text.as_bytes())).expect("read");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].as_ref().expect("first").seq, 1);
        assert_eq!(found[1].as_ref().expect("second").seq, 2);
        assert!(matches!(found[2], Err(ManifestError::Host(_))));
        assert!(read_manifests(&b""[..]).expect("read").is_empty());
        assert!(
            read_manifests(&b"just logs\n\n"[..])
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn overlong_lines_stay_bounded() {
        let mut text = vec![b'x'; MAX_LINE_LEN * 3];
        text.push(b'\n');
        text.extend_from_slice(manifest::PREFIX.as_bytes());
        text.extend(std::iter::repeat_n(b'y', MAX_LINE_LEN));
        text.push(b'\n');
        text.extend_from_slice(manifest_line(3).as_bytes());
        let found = read_manifests(&text[..]).expect("read");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], Err(ManifestError::Invalid { field: "line" }));
        assert_eq!(found[1].as_ref().expect("last").seq, 3);
    }
}
