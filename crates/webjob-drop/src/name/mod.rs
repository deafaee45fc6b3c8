//! Upload names: which client, job and upload time a dropzone file name belongs to.
//!
//! A WebJob server names the files of one upload `STEM.out`, `STEM.err`, `STEM.env` and
//! `STEM.rdy`, where
//!
//! ```text
//! STEM = CLIENT "_" YYYYMMDDHHMMSS [ "_" MIDDLE ] "_" JOB
//! ```
//!
//! `CLIENT` is the WebJob client id (`[A-Za-z0-9_.-]{1,64}`, so it may itself hold `_`), the 14
//! digits are the upload time stamped by the server, `MIDDLE` is whatever that server version puts
//! there (a pid, a run type, or nothing at all) and `JOB` is the command name, e.g.
//! `harvest_argus`. Only base names are parsed, never paths, so an `_` in a directory name cannot
//! shift the fields. A configured client id must match as an exact prefix followed by `_` and the
//! 14 digits, so `client1` never takes `client10`'s uploads.
//!
//! ```
//! use webjob_drop::name::{Selection, StemMatch};
//!
//! let selection = Selection::new(["client1", "dmz-*"], "harvest_argus")?;
//! let StemMatch::Ours(stem) = selection.classify(b"client1_20030715120001_4242_harvest_argus")
//! else { panic!("client1's upload") };
//! assert_eq!(stem.client, "client1");
//! assert_eq!(stem.middle, Some("4242"));
//! assert_eq!(stem.uploaded_at.to_string(), "2003-07-15 12:00:01.0 +00:00:00");
//!
//! assert!(matches!(
//!     selection.classify(b"client10_20030715120001_harvest_argus"),
//!     StemMatch::OtherClient { client: "client10" }
//! ));
//! assert!(matches!(
//!     selection.classify(b"dmz-7_20030715120001_other_job"),
//!     StemMatch::OtherJob { client: "dmz-7" }
//! ));
//! # Ok::<(), webjob_drop::Error>(())
//! ```

use std::collections::BTreeSet;

use argus_core::stamp::parse_datetime;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Longest client id a WebJob server accepts, in bytes.
pub const MAX_CLIENT_LEN: usize = 64;

/// Length of the upload time stamp in a stem (`YYYYMMDDHHMMSS`).
pub const STAMP_LEN: usize = 14;

/// The job name of the argus harvest, which appears in every file name of its uploads.
pub const DEFAULT_JOB: &str = "harvest_argus";

/// Compression suffixes that stay attached to a part's extension (`STEM.out.gz` is the part
/// `out.gz` of `STEM`), as left by tools such as `webjob-compress-upload`.
pub const COMPRESSION_SUFFIXES: &[&str] = &["gz", "bz2", "xz", "Z", "zst", "lz4"];

/// True when `bytes` is a valid WebJob client id: 1 to 64 ASCII letters, digits, `_`, `.` or `-`.
pub fn is_client_id(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= MAX_CLIENT_LEN && bytes.iter().all(|&b| is_client_byte(b))
}

/// True when a client pattern is a glob (it holds `*`, `?`, `[`, `]`, `{`, `}` or `\\`) rather
/// than one client id.
pub fn is_client_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Checks one client pattern as [`Selection::new`] reads it: a client id, or a valid glob.
/// The error says why it is neither.
pub fn check_client_pattern(pattern: &str) -> std::result::Result<(), String> {
    client_glob(pattern).map(drop)
}

/// The compiled glob of a client pattern, `None` for a client id.
fn client_glob(pattern: &str) -> std::result::Result<Option<globset::Glob>, String> {
    if is_client_glob(pattern) {
        GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map(Some)
            .map_err(|e| e.to_string())
    } else if is_client_id(pattern.as_bytes()) {
        Ok(None)
    } else {
        Err(
            "a client id is 1 to 64 letters, digits, '_', '.' or '-' (or use a glob with '*')"
                .to_owned(),
        )
    }
}

fn is_client_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Splits a base name into its stem and its extension: `STEM.out` -> (`STEM`, `out`), and
/// `STEM.out.gz` -> (`STEM`, `out.gz`) for the [`COMPRESSION_SUFFIXES`].
///
/// Returns `None` when the name has no extension, or an empty stem or extension.
pub fn split_part_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let dot = name.iter().rposition(|&b| b == b'.')?;
    let mut split = dot;
    if COMPRESSION_SUFFIXES
        .iter()
        .any(|s| s.as_bytes() == &name[dot + 1..])
        && let Some(inner) = name[..dot].iter().rposition(|&b| b == b'.')
    {
        split = inner;
    }
    let (stem, ext) = (&name[..split], &name[split + 1..]);
    (!stem.is_empty() && !ext.is_empty() && !ext.ends_with(b".")).then_some((stem, ext))
}

/// One way to read a stem as `CLIENT_YYYYMMDDHHMMSS_REST`: the client id, the 14 digits (not
/// yet checked to be a real date-time) and the rest, which starts with `_`.
///
/// A stem has more than one reading only when a client id itself holds `_` followed by 14 digits
/// and `_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading<'a> {
    /// The client id (always a valid one, see [`is_client_id`]).
    pub client: &'a str,
    /// The 14 ASCII digits after the client id.
    pub stamp: &'a [u8],
    /// Everything after the stamp, starting with `_`.
    pub rest: &'a [u8],
}

/// Every [`Reading`] of `stem`, shortest client id first.
pub fn readings(stem: &[u8]) -> impl Iterator<Item = Reading<'_>> {
    // The client id must consist of client bytes, so no reading can start past the first other
    // byte, nor past the longest client id.
    let limit = stem
        .iter()
        .position(|&b| !is_client_byte(b))
        .unwrap_or(stem.len())
        .min(MAX_CLIENT_LEN);
    (1..=limit).filter_map(move |p| {
        let after = stem.get(p + 1..p + 1 + STAMP_LEN)?;
        let valid = stem[p] == b'_'
            && after.iter().all(u8::is_ascii_digit)
            && stem.get(p + 1 + STAMP_LEN) == Some(&b'_');
        let client = std::str::from_utf8(&stem[..p]).ok()?;
        valid.then(|| Reading {
            client,
            stamp: after,
            rest: &stem[p + 1 + STAMP_LEN..],
        })
    })
}

/// Splits the rest of a reading (`_[MIDDLE_]JOB`) at the job: `Some(None)` when there is no
/// middle field, `Some(Some(middle))` when there is one (possibly empty), `None` when the rest
/// does not end with `_JOB`.
fn split_job<'a>(rest: &'a [u8], job: &[u8]) -> Option<Option<&'a [u8]>> {
    let body = rest.strip_prefix(b"_")?;
    if body == job {
        return Some(None);
    }
    let middle = body.strip_suffix(job)?.strip_suffix(b"_")?;
    Some(Some(middle))
}

/// A stem that belongs to the selection: a selected client's upload of the selected job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedStem<'a> {
    /// The whole stem, as text.
    pub stem: &'a str,
    /// The client id.
    pub client: &'a str,
    /// The upload time from the stem (UTC, as the server stamps it).
    pub uploaded_at: OffsetDateTime,
    /// The field between the time stamp and the job name, if the server writes one.
    pub middle: Option<&'a str>,
}

/// How a stem relates to a [`Selection`]; see [`Selection::classify`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StemMatch<'a> {
    /// A selected client's upload of the selected job, fully understood.
    Ours(ParsedStem<'a>),
    /// A selected client's upload of the selected job whose 14 digits are no real date-time.
    BadStamp {
        /// The client id.
        client: &'a str,
    },
    /// A selected client's upload of the selected job whose name is not printable UTF-8 text.
    NotText {
        /// The client id.
        client: &'a str,
    },
    /// The name can be read as the upload of more than one selected client.
    Ambiguous {
        /// Every selected client id it could belong to.
        clients: Vec<&'a str>,
    },
    /// The upload of the selected job by a client that is not selected.
    OtherClient {
        /// The client id (the shortest reading).
        client: &'a str,
    },
    /// An upload of another job.
    OtherJob {
        /// The client id (the shortest reading).
        client: &'a str,
    },
    /// Not the name of a WebJob upload at all.
    NotUpload,
}

/// Which uploads a consumer handles: a set of client ids or globs, and one job name.
///
/// An entry holding any of `* ? [ ] { } \` is a glob (matched against the whole client id);
/// anything else must be a valid client id and matches exactly that id.
#[derive(Clone, Debug)]
pub struct Selection {
    exact: BTreeSet<String>,
    globs: GlobSet,
    patterns: Vec<String>,
    job: String,
}

impl Selection {
    /// A selection of `clients` (ids or globs, at least one) and `job`.
    pub fn new<I, S>(clients: I, job: &str) -> Result<Selection>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        check_job(job)?;
        let mut exact = BTreeSet::new();
        let mut globs = GlobSetBuilder::new();
        let mut patterns = Vec::new();
        for pattern in clients {
            let pattern = pattern.as_ref();
            match client_glob(pattern).map_err(|reason| Error::InvalidClient {
                pattern: pattern.to_owned(),
                reason,
            })? {
                Some(glob) => {
                    globs.add(glob);
                }
                None => {
                    exact.insert(pattern.to_owned());
                }
            }
            patterns.push(pattern.to_owned());
        }
        if patterns.is_empty() {
            return Err(Error::InvalidClient {
                pattern: String::new(),
                reason: "no client selected (use \"*\" for all)".to_owned(),
            });
        }
        let globs = globs.build().map_err(|e| Error::InvalidClient {
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })?;
        Ok(Selection {
            exact,
            globs,
            patterns,
            job: job.to_owned(),
        })
    }

    /// Every client's uploads of `job`.
    pub fn all(job: &str) -> Result<Selection> {
        Selection::new(["*"], job)
    }

    /// The job name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The client ids and globs, as configured.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True when `client` is selected.
    pub fn matches_client(&self, client: &str) -> bool {
        self.exact.contains(client) || self.globs.is_match(client)
    }

    /// Classifies a stem (a base name without its extension, as raw bytes).
    pub fn classify<'a>(&self, stem: &'a [u8]) -> StemMatch<'a> {
        let all: Vec<Reading<'a>> = readings(stem).collect();
        let Some(first) = all.first() else {
            return StemMatch::NotUpload;
        };
        let job = self.job.as_bytes();
        let with_job: Vec<(Reading<'a>, Option<&'a [u8]>)> = all
            .iter()
            .filter_map(|r| split_job(r.rest, job).map(|middle| (*r, middle)))
            .collect();
        let Some((with_job_first, _)) = with_job.first() else {
            return StemMatch::OtherJob {
                client: first.client,
            };
        };
        let selected: Vec<(Reading<'a>, Option<&'a [u8]>)> = with_job
            .iter()
            .filter(|(r, _)| self.matches_client(r.client))
            .copied()
            .collect();
        let (reading, middle) = match selected.as_slice() {
            [] => {
                return StemMatch::OtherClient {
                    client: with_job_first.client,
                };
            }
            [one] => *one,
            many => {
                return StemMatch::Ambiguous {
                    clients: many.iter().map(|(r, _)| r.client).collect(),
                };
            }
        };
        let Some(uploaded_at) = parse_datetime(reading.stamp) else {
            return StemMatch::BadStamp {
                client: reading.client,
            };
        };
        let text = std::str::from_utf8(stem)
            .ok()
            .filter(|s| !s.chars().any(char::is_control));
        let (Some(text), Some(middle)) = (
            text,
            middle.map_or(Some(None), |m| std::str::from_utf8(m).ok().map(Some)),
        ) else {
            return StemMatch::NotText {
                client: reading.client,
            };
        };
        StemMatch::Ours(ParsedStem {
            stem: text,
            client: reading.client,
            uploaded_at,
            middle,
        })
    }
}

fn check_job(job: &str) -> Result<()> {
    let reason = if job.is_empty() {
        Some("it is empty")
    } else if job.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if job.contains('/') {
        Some("it contains '/'")
    } else if job.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("it contains white space or control characters")
    } else if job.starts_with('_') || job.starts_with('.') {
        Some("it starts with '_' or '.'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidJob {
            job: job.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
