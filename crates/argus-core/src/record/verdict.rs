//! What a walk finds: its verdict, why data is corrupt, and the report of its streams.

use std::fmt;

use super::{ARGUS_V2_COOKIE, ARGUS_V3_COOKIE, ARGUS_V5_COOKIE, Version};

/// The verdict of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Every byte belongs to a complete, well-formed record (also true of empty input).
    Clean {
        /// Records of every type.
        records: u64,
        /// Management records among them.
        mars: u64,
        /// Bytes walked.
        bytes: u64,
    },
    /// The data ends inside a record: the last one is partial.
    Truncated {
        /// Where the partial record starts.
        offset: u64,
        /// Its length as its header gives it (4 when even the header is partial).
        need: u64,
        /// The bytes of it that are present.
        have: u64,
    },
    /// The data is not argus data, or the framing breaks.
    Corrupt {
        /// Where the offending record starts.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
}

/// Why a stream is corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The data does not start with a 128-byte MAR of cause START: it is not argus data.
    NotArgus {
        /// The first record header found (bytes 0..4).
        found: [u8; 4],
    },
    /// A MAR/START whose cookie and version nibble are not those of argus 3 or argus 5 (argus 2
    /// data, or an unknown format).
    Unsupported {
        /// Its record header.
        header: [u8; 4],
        /// Its cookie, bytes 8..12 read big-endian.
        cookie: u32,
    },
    /// A record header of a type `ra` does not read in the stream, or a length below 4 bytes.
    BadHeader([u8; 4]),
    /// A record of another version inside a stream, that is not the MAR/START of a new stream.
    VersionMismatch {
        /// The version of the stream the record is in.
        stream: Version,
        /// The record's header.
        header: [u8; 4],
    },
    /// A DSR inside a flow record has length 0 or runs past the record's end.
    BadDsr {
        /// Offset of the DSR inside the record.
        at: u64,
    },
    /// More runs of zero bytes between records than a walk keeps (see
    /// [`ZERO_GAPS_KEPT`](super::ZERO_GAPS_KEPT)).
    TooManyZeroGaps,
}

impl Corruption {
    /// True when the data is not argus 3 or 5 data at all (as opposed to damaged argus data).
    pub fn is_foreign(&self) -> bool {
        matches!(
            self,
            Corruption::NotArgus { .. } | Corruption::Unsupported { .. }
        )
    }
}

/// Formats a record header as `83 10 0020`.
struct Header<'a>(&'a [u8; 4]);

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.0;
        write!(f, "{:02x} {:02x} {:02x}{:02x}", h[0], h[1], h[2], h[3])
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::NotArgus { found } => write!(
                f,
                "not argus data: it does not start with a 128-byte MAR/START record \
                 (found header {})",
                Header(found)
            ),
            Corruption::Unsupported { header, cookie } => {
                let bytes = cookie.to_be_bytes();
                let v2 = u32::from_le_bytes(bytes) == ARGUS_V2_COOKIE;
                if *cookie == ARGUS_V2_COOKIE || v2 {
                    write!(
                        f,
                        "argus 2 data (cookie {ARGUS_V2_COOKIE:08X}) is not supported"
                    )
                } else if let Some(v) = Version::from_cookie(bytes) {
                    write!(
                        f,
                        "a MAR/START of record version {} with the cookie of {v} \
                         ({cookie:08X}) is neither argus 3 nor argus 5 data",
                        header[0] & 0x0f
                    )
                } else {
                    write!(
                        f,
                        "argus data of record version {} with cookie {cookie:08X} is not \
                         supported (argus 3: {ARGUS_V3_COOKIE:08X}, argus 5: \
                         {ARGUS_V5_COOKIE:08X})",
                        header[0] & 0x0f
                    )
                }
            }
            Corruption::BadHeader(h) => write!(f, "bad record header {}", Header(h)),
            Corruption::VersionMismatch { stream, header } => write!(
                f,
                "a record of version {} (header {}) inside an {stream} stream",
                header[0] & 0x0f,
                Header(header)
            ),
            Corruption::BadDsr { at } => {
                write!(f, "flow record data (DSR) at +{at} does not fit the record")
            }
            Corruption::TooManyZeroGaps => write!(
                f,
                "more than {} runs of zero bytes between records",
                super::ZERO_GAPS_KEPT
            ),
        }
    }
}

impl fmt::Display for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Walk::Clean {
                records,
                mars,
                bytes,
            } => write!(f, "clean: {records} records ({mars} MARs), {bytes} bytes"),
            Walk::Truncated { offset, need, have } => write!(
                f,
                "truncated record at {offset}: need {need} bytes, have {have}"
            ),
            Walk::Corrupt { offset, reason } => write!(f, "corrupt at {offset}: {reason}"),
        }
    }
}

/// One stream of a walk: the records from a MAR/START up to the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Offset of its MAR/START.
    pub offset: u64,
    /// Its record format version.
    pub version: Version,
    /// Its complete records in the valid prefix, the MAR/START included.
    pub records: u64,
    /// Management records among them.
    pub mars: u64,
    /// Flow records (FAR) among them: what `ra` prints by default.
    pub flows: u64,
}

/// A walk's verdict with the facts a caller needs to act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub walk: Walk,
    /// Length of the prefix made of complete, well-formed records: where to cut to keep only
    /// whole records. Equals the input length when clean.
    pub valid_len: u64,
    /// Offset of the last complete record, if any.
    pub last_record: Option<u64>,
    /// Complete records in the valid prefix.
    pub records: u64,
    /// Complete MARs in the valid prefix.
    pub mars: u64,
    /// Stream starts (MAR/START with a valid cookie) in the valid prefix: more than one means
    /// concatenated files or a restarted argus.
    pub starts: u64,
    /// Runs of zero bytes between whole records of the valid prefix (what a power loss leaves
    /// in a file being appended to), in order: `ra` skips them, and so does the walk.
    pub zero_gaps: Vec<crate::ranges::ByteRange>,
    /// The `now` seconds (Unix time) of the first and last MARs in the valid prefix.
    pub mar_times: Option<(u32, u32)>,
    /// The MARs of the valid prefix, decoded (their causes, times and capture counters).
    pub mars_seen: super::MarsSeen,
    /// The version of the last stream in the valid prefix (`None` when it holds no record).
    pub version: Option<Version>,
    /// The streams of the valid prefix, in order: the first [`STREAMS_LISTED`](super::STREAMS_LISTED) of them.
    pub streams: Vec<Stream>,
}

impl Report {
    /// True when the whole input is complete records.
    pub fn is_clean(&self) -> bool {
        matches!(self.walk, Walk::Clean { .. })
    }

    /// True when the valid prefix holds streams of this version.
    pub fn has_version(&self, version: Version) -> bool {
        self.streams.iter().any(|s| s.version == version)
    }
}
