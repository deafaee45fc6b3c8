//! The chunk manifest: one line per shipped chunk that harvest_argus writes to stderr (which
//! WebJob uploads as the `.err` file) and process_argus checks.
//!
//! ```text
//! harvest_argus: Chunk host=sensor1 seq=1042 start=2026-11-27T10:00:00Z end=2026-11-27T11:00:00Z bytes=123456 records=812 sha256=HEX
//! ```
//!
//! `host`, `seq`, `bytes` and `sha256` are required; `start`, `end` and `records` are optional;
//! unknown `key=value` fields are ignored so the line can grow. An upload may carry several
//! chunks (a run that also ships chunks an earlier run left staged): their lines appear in the
//! order their bytes appear in the upload.
//!
//! ```
//! use argus_core::manifest::Manifest;
//!
//! let line = "harvest_argus: Chunk host=sensor1 seq=7 bytes=128 records=1 sha256=".to_owned()
//!     + &"ab".repeat(32);
//! let m: Manifest = line.parse()?;
//! assert_eq!((m.host.as_str(), m.seq, m.bytes), ("sensor1", 7, 128));
//! assert_eq!(m.to_string(), line);
//! # Ok::<(), argus_core::manifest::ManifestError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::host::{Hostname, InvalidHostname};

/// What precedes the fields on a manifest line.
pub const PREFIX: &str = "harvest_argus: Chunk ";

/// One chunk's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The sensor that produced the chunk.
    pub host: Hostname,
    /// Per-host chunk sequence number, starting at 1, incremented for every new chunk.
    pub seq: u64,
    /// When argus started writing the chunk, if known.
    pub start: Option<OffsetDateTime>,
    /// When the chunk was cut.
    pub end: Option<OffsetDateTime>,
    /// Exact length of the chunk in bytes.
    pub bytes: u64,
    /// argus records in the chunk, if counted.
    pub records: Option<u64>,
    /// SHA-256 of the chunk's bytes.
    pub sha256: [u8; 32],
}

/// Why a manifest line was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The line does not start with [`PREFIX`].
    #[error("not a chunk manifest line")]
    NotManifest,
    /// A required field is absent.
    #[error("manifest field {0} is missing")]
    Missing(&'static str),
    /// A field appears twice.
    #[error("manifest field {0} appears twice")]
    Duplicate(&'static str),
    /// A field's value is malformed.
    #[error("manifest field {field} has an invalid value")]
    Invalid {
        /// The field.
        field: &'static str,
    },
    /// The host is not a valid host name.
    #[error("manifest host is invalid")]
    Host(#[source] InvalidHostname),
}

impl Manifest {
    /// Finds every manifest line in the text of an `.err` file (other lines are log messages and
    /// are skipped), in order. Lines that start like a manifest but do not parse are returned as
    /// errors, so a caller can tell "no manifest" from "a damaged one".
    pub fn find_all(err_text: &[u8]) -> Vec<Result<Manifest, ManifestError>> {
        err_text
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.starts_with(PREFIX.as_bytes()) {
                    return None;
                }
                Some(
                    std::str::from_utf8(line)
                        .map_err(|_| ManifestError::Invalid { field: "line" })
                        .and_then(str::parse),
                )
            })
            .collect()
    }

    /// The hash as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

impl FromStr for Manifest {
    type Err = ManifestError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let fields = line
            .strip_prefix(PREFIX)
            .ok_or(ManifestError::NotManifest)?;
        let mut host = None;
        let mut seq = None;
        let mut start = None;
        let mut end = None;
        let mut bytes = None;
        let mut records = None;
        let mut sha256 = None;
        for field in fields.split(' ').filter(|f| !f.is_empty()) {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "host" => set(
                    &mut host,
                    "host",
                    Hostname::new(value).map_err(ManifestError::Host)?,
                )?,
                "seq" => set(&mut seq, "seq", number(value, "seq")?)?,
                "start" => set(&mut start, "start", instant(value, "start")?)?,
                "end" => set(&mut end, "end", instant(value, "end")?)?,
                "bytes" => set(&mut bytes, "bytes", number(value, "bytes")?)?,
                "records" => set(&mut records, "records", number(value, "records")?)?,
                "sha256" => set(&mut sha256, "sha256", digest(value)?)?,
                _ => {}
            }
        }
        Ok(Manifest {
            host: host.ok_or(ManifestError::Missing("host"))?,
            seq: seq.ok_or(ManifestError::Missing("seq"))?,
            start,
            end,
            bytes: bytes.ok_or(ManifestError::Missing("bytes"))?,
            records,
            sha256: sha256.ok_or(ManifestError::Missing("sha256"))?,
        })
    }
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}host={} seq={}", self.host, self.seq)?;
        if let Some(start) = self.start {
            write!(f, " start={}", crate::stamp::format_rfc3339(start))?;
        }
        if let Some(end) = self.end {
            write!(f, " end={}", crate::stamp::format_rfc3339(end))?;
        }
        write!(f, " bytes={}", self.bytes)?;
        if let Some(records) = self.records {
            write!(f, " records={records}")?;
        }
        write!(f, " sha256={}", self.sha256_hex())
    }
}

fn set<T>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), ManifestError> {
    if slot.replace(value).is_some() {
        return Err(ManifestError::Duplicate(field));
    }
    Ok(())
}

fn number(value: &str, field: &'static str) -> Result<u64, ManifestError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ManifestError::Invalid { field });
    }
    value.parse().map_err(|_| ManifestError::Invalid { field })
}

fn instant(value: &str, field: &'static str) -> Result<OffsetDateTime, ManifestError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| ManifestError::Invalid { field })
}

fn digest(value: &str) -> Result<[u8; 32], ManifestError> {
    let invalid = ManifestError::Invalid { field: "sha256" };
    let bytes = value.as_bytes();
    if bytes.len() != 64 {
        return Err(invalid);
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = nibble(pair[0]).ok_or_else(|| invalid.clone())?;
        let lo = nibble(pair[1]).ok_or_else(|| invalid.clone())?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _infallible = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 of a byte slice (for tests and small data; stream large data through [`Sha256`]).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> Manifest {
        Manifest {
            host: Hostname::new("sensor1").expect("host"),
            seq: 1042,
            start: Some(datetime!(2026-11-27 10:00:00 UTC)),
            end: Some(datetime!(2026-11-27 11:00:00 UTC)),
            bytes: 123_456,
            records: Some(812),
            sha256: sha256(b"chunk"),
        }
    }

    #[test]
    fn round_trips_in_the_documented_form() {
        let m = sample();
        let line = m.to_string();
        assert!(line.starts_with(
            "harvest_argus: Chunk host=sensor1 seq=1042 start=2026-11-27T10:00:00Z end=2026-11-27T11:00:00Z bytes=123456 records=812 sha256="
        ));
        assert_eq!(line.parse::<Manifest>().expect("parse"), m);
    }

    #[test]
    fn finds_lines_among_log_messages() {
        let m = sample();
        let mut other = sample();
        other.seq = 1043;
        let text = format!(
            "harvest_argus: rotated /var/argus/argus.out\r\n{m}\r\nnoise\n{other}\nharvest_argus: Chunk host=x seq=1\n"
        );
        let found = Manifest::find_all(text.as_bytes());
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].as_ref().expect("first"), &m);
        assert_eq!(found[1].as_ref().expect("second"), &other);
        assert_eq!(found[2], Err(ManifestError::Missing("bytes")));
        assert!(Manifest::find_all(b"no manifest here\n").is_empty());
    }

    #[test]
    fn hostile_fields_are_refused() {
        let h = "ab".repeat(32);
        for (line, want) in [
            (
                format!("{PREFIX}host=../x seq=1 bytes=1 sha256={h}"),
                "host",
            ),
            (format!("{PREFIX}host=a seq=-1 bytes=1 sha256={h}"), "seq"),
            (format!("{PREFIX}host=a seq=1 bytes=1 sha256=zz"), "sha256"),
            (
                format!("{PREFIX}host=a seq=1 seq=2 bytes=1 sha256={h}"),
                "twice",
            ),
            (
                format!("{PREFIX}host=a seq=1 bytes=99999999999999999999999 sha256={h}"),
                "bytes",
            ),
            (
                format!("{PREFIX}host=a seq=1 bytes=1 start=yesterday sha256={h}"),
                "start",
            ),
        ] {
            let err = line.parse::<Manifest>().expect_err(&line);
            assert!(err.to_string().contains(want), "{line}: {err}");
        }
        let ok = format!("{PREFIX}host=a seq=1 bytes=0 future=field sha256={h}");
        assert!(ok.parse::<Manifest>().is_ok(), "unknown fields are ignored");
    }
}
