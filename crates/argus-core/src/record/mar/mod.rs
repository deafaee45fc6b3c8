//! The contents of argus management records (MARs): the sensor's own report of its source id,
//! its clock, and what it received, dropped and wrote in each interval, for argus 3 (3.0.8) and
//! argus 5 (5.0.3). What a sensor-health check reads.
//!
//! See [`decode_mar`] for the layouts of both versions.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use time::OffsetDateTime;

use super::{ARGUS_V3_COOKIE, MAR_LEN, Version, cause, kind};
use crate::escape::Escaped;

mod seen;
#[cfg(test)]
mod tests;

pub use seen::{MAR_RUNS_KEPT, MarRun, MarsSeen};

/// Length of an argus 5 INTERFACE MAR (`struct ArgusMarInfStruct` and its header).
const MAR_INTERFACE_LEN: usize = 52;

/// Source id type bits of a MAR's status word (`ARGUS_IDIS_*` in `argus_def.h`).
const IDIS_MASK: u32 = 0x00E0_0000;
const IDIS_STRING: u32 = 0x0020_0000;
const IDIS_INT: u32 = 0x0040_0000;
const IDIS_IPV6: u32 = 0x0060_0000;
const IDIS_IPV4: u32 = 0x0080_0000;
const IDIS_UUID: u32 = 0x00A0_0000;

/// Why a record is not a MAR this reader can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarError {
    /// Fewer than the 4 bytes of a record header.
    #[error("{have} bytes are too few for a record header")]
    NoHeader {
        /// The bytes given.
        have: usize,
    },
    /// A record of another type (its header's high nibble, see [`kind`]).
    #[error("not a management record: its type is {kind:#x}")]
    NotMar {
        /// The type nibble found.
        kind: u8,
    },
    /// A record version other than 3 and 5.
    #[error("management record of unknown version {0}")]
    UnknownVersion(u8),
    /// The slice is not the one record its header describes.
    #[error("the record header gives {declared} bytes but {have} were given")]
    LengthMismatch {
        /// The length in the header, in bytes.
        declared: usize,
        /// The length of the slice.
        have: usize,
    },
    /// The record is shorter than the layout of its cause.
    #[error("a management record of cause {cause} needs {need} bytes, this one has {have}")]
    TooShort {
        /// Its cause.
        cause: MarCause,
        /// The bytes its layout needs.
        need: usize,
        /// The bytes it has.
        have: usize,
    },
    /// A MAR whose layout no argus release defines or writes (SUPPLEMENTAL).
    #[error("argus {version} management records of cause {cause} are not decoded")]
    Unsupported {
        /// Its version.
        version: Version,
        /// Its cause.
        cause: MarCause,
    },
}

/// Why a MAR was written: the cause nibble of its header (`byte 1 >> 4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MarCause {
    /// The first record of a stream, written when argus opens its output.
    Start,
    /// The periodic report, every `-M` seconds.
    Status,
    /// The last record, written when argus stops cleanly.
    Stop,
    /// argus reports an error.
    Error,
    /// A supplemental MAR (defined, written by no release).
    Supplemental,
    /// An argus 5 per-interface MAR.
    Interface,
    /// Any other cause nibble.
    Other(u8),
}

impl MarCause {
    /// The cause of a header's byte 1.
    pub fn from_byte(byte1: u8) -> MarCause {
        match byte1 >> 4 {
            cause::START => MarCause::Start,
            cause::STATUS => MarCause::Status,
            cause::STOP => MarCause::Stop,
            cause::ERROR => MarCause::Error,
            cause::SUPPLEMENTAL => MarCause::Supplemental,
            cause::INTERFACE => MarCause::Interface,
            other => MarCause::Other(other),
        }
    }

    /// Its nibble ([`cause`]).
    pub fn nibble(self) -> u8 {
        match self {
            MarCause::Start => cause::START,
            MarCause::Status => cause::STATUS,
            MarCause::Stop => cause::STOP,
            MarCause::Error => cause::ERROR,
            MarCause::Supplemental => cause::SUPPLEMENTAL,
            MarCause::Interface => cause::INTERFACE,
            MarCause::Other(n) => n,
        }
    }
}

impl fmt::Display for MarCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarCause::Start => f.write_str("START"),
            MarCause::Status => f.write_str("STATUS"),
            MarCause::Stop => f.write_str("STOP"),
            MarCause::Error => f.write_str("ERROR"),
            MarCause::Supplemental => f.write_str("SUPPLEMENTAL"),
            MarCause::Interface => f.write_str("INTERFACE"),
            MarCause::Other(n) => write!(f, "{n:#x}"),
        }
    }
}

/// A time in a MAR: Unix seconds and microseconds (`gettimeofday`), in both versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MarTime {
    /// Seconds since 1970.
    pub secs: u32,
    /// Microseconds; below 1,000,000 in what argus writes, not checked.
    pub usecs: u32,
}

impl MarTime {
    /// The instant in UTC, or `None` when the microseconds are out of range.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        if self.usecs >= 1_000_000 {
            return None;
        }
        let nanos = i128::from(self.secs) * 1_000_000_000 + i128::from(self.usecs) * 1_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
    }
}

/// As `ra -u` prints it: `secs.usecs` with six digits.
impl fmt::Display for MarTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.secs, self.usecs)
    }
}

/// The source id (`argus -e`) a MAR carries, typed by the `ARGUS_IDIS_*` bits of its status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceId {
    /// An integer id (`-e 4004`).
    Int(u32),
    /// An IPv4 address (`-e 127.0.0.3`).
    Ipv4(Ipv4Addr),
    /// A string of up to 4 bytes (`-e '"hstA"'`), in reading order, NUL-padded.
    Str([u8; 4]),
    /// An IPv6 address (argus 5).
    Ipv6(Ipv6Addr),
    /// A UUID (argus 5).
    Uuid([u8; 16]),
    /// No known type bits: the raw 32-bit word (0 when argus ran without `-e`).
    Untyped(u32),
}

/// As `ra -s srcid` prints it: the string without its NUL padding (other bytes escaped), the
/// integer in decimal, addresses in their usual form; an untyped id as an IPv4 address.
impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceId::Int(n) => write!(f, "{n}"),
            SourceId::Ipv4(a) => write!(f, "{a}"),
            SourceId::Str(s) => {
                let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                write!(f, "{}", Escaped(&s[..len]))
            }
            SourceId::Ipv6(a) => write!(f, "{a}"),
            SourceId::Uuid(u) => {
                for (i, b) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            SourceId::Untyped(n) => write!(f, "{}", Ipv4Addr::from(*n)),
        }
    }
}

/// One decoded management record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mar {
    /// Its record version.
    pub version: Version,
    /// Why it was written.
    pub cause: MarCause,
    /// The start of the interval it reports on (`startime`): the previous MAR's `now` for a
    /// STATUS or STOP; when argus started for a START.
    pub start: MarTime,
    /// When it was written (`now`): the end of its interval.
    pub now: MarTime,
    /// The sensor's source id.
    pub source_id: SourceId,
    /// The rest, by layout.
    pub body: MarBody,
}

impl Mar {
    /// The report of a START, STATUS, STOP or ERROR MAR (`None` for an INTERFACE MAR).
    pub fn report(&self) -> Option<&MarReport> {
        match &self.body {
            MarBody::Report(r) => Some(r),
            MarBody::Interface(_) => None,
        }
    }
}

/// The layout-specific part of a MAR.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarBody {
    /// The 128-byte report of every MAR but the INTERFACE ones.
    Report(MarReport),
    /// An argus 5 INTERFACE MAR.
    Interface(MarInterface),
}

/// The 128-byte report: the sensor's settings and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarReport {
    /// The raw status word (bytes 4..8): the source id type bits, among others.
    pub status: u32,
    /// `nextMrSequenceNum` (bytes 20..24), what `ra -s seq` prints.
    pub sequence: u32,
    /// The sensor's major version (3 or 5).
    pub major_version: u8,
    /// The sensor's minor version.
    pub minor_version: u8,
    /// The first capture interface's link type, a pcap `DLT_*` value (1 for Ethernet and
    /// Linux `lo`); 0 in a MAR/START, which does not set it, and when no interface is open.
    pub interface_type: u8,
    /// The first capture interface's status as argus tracks it (1 up, 0 down or not known;
    /// every sample, live captures included, shows 0).
    pub interface_status: u8,
    /// The flow status interval, `argus -S`, in seconds.
    pub flow_status_interval: u16,
    /// The MAR interval, `argus -M`, in seconds.
    pub mar_interval: u16,
    /// The first interface's network (`localnet`).
    pub localnet: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
    /// The counters.
    pub counters: MarCounters,
}

/// What a report counts. Per interval unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarCounters {
    /// Packets the capture interfaces received.
    pub pkts_rcvd: u64,
    /// Bytes the capture interfaces received.
    pub bytes_rcvd: u64,
    /// Packets the capture dropped (libpcap's `ps_drop`).
    pub dropped: u32,
    /// Records argus wrote.
    pub records: u32,
    /// New flows (0 in every argus 3.0.8 sample, busy ones included: 3.0.8 reads the counter
    /// of its output's flow model, 5.0.3 sums those of its sources).
    pub flows: u32,
    /// Flows in the status queue at `now`.
    pub queue: u32,
    /// Records in the output queue at `now`.
    pub output: u32,
    /// Clients attached at `now` (the output file counts as one).
    pub clients: u32,
    /// Memory buffers allocated at `now`.
    pub bufs: u32,
    /// Memory bytes allocated at `now`.
    pub bytes: u32,
    /// Clock drift, argus 3 only (signed; 3.0.8 writes 0).
    pub drift: Option<i64>,
    /// Capture interfaces open at `now`, argus 5 only.
    pub interfaces: Option<u32>,
    /// TCP flows in the fallow queue at `now`, argus 5 only.
    pub fallow: Option<u32>,
}

/// An argus 5 INTERFACE MAR's own part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarInterface {
    /// The raw status word.
    pub status: u32,
    /// The interface name field (`inf[4]`), NUL-padded.
    pub name: [u8; 4],
}

impl MarInterface {
    /// The interface name without its NUL padding.
    pub fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(4);
        &self.name[..len]
    }
}

/// Decodes one whole management record of argus 3 or argus 5.
///
/// `record` is the whole record, as the [walker](super::Walker) and [`Records`](super::Records)
/// frame it: its header's length must be the slice's. It never panics: MARs come from the
/// network and from files anyone can upload, so every field is read through a checked slice.
///
/// Both versions write the same 128-byte big-endian layout for START, STATUS and STOP MARs
/// (`struct ArgusMarStruct`, packed to 2 bytes), with three differences:
///
/// - bytes 64..72 hold a signed 64-bit clock drift in argus 3 (3.0.8 never sets it), and two
///   32-bit counters in argus 5.0.3: the number of capture interfaces and the TCP flows in the
///   "fallow" queue (5.0.3 replaced the drift by them);
/// - argus 3 puts the source id at bytes 120..124 of the MAR/START (whose bytes 8..12 hold the
///   cookie) and at bytes 8..12 of every other MAR; argus 5 keeps the cookie at 8..12 in every
///   MAR and puts the source id at 108..124 (16 bytes, room for an IPv6 address or a UUID);
/// - argus 3 stores a string source id as a host-order word sent big-endian (`"hstA"` from an
///   x86 sensor reads `Atsh`), argus 5 in natural order. argus 5.0.3 writes string ids as
///   zeros in its MARs (it copies `strlen` of the still empty destination), so they read as an
///   empty string there, as its `ra` prints them.
///
/// argus 5 defines an INTERFACE MAR (cause `0xA`, 52 bytes: source id, interface name, start
/// and `now`), which 5.0.3 never writes (its timer check always says "not yet"); it is decoded
/// from its struct, unverified against real data. SUPPLEMENTAL MARs have no writer in either
/// version and are refused.
///
/// The counters are per interval (the difference since the previous MAR) except `queue`,
/// `output`, `clients`, `bufs`, `bytes`, `interfaces` and `fallow`, which are levels at `now`.
/// `bufs` and `bytes` are the sensor's memory: buffers and bytes allocated, not traffic.
///
/// ```
/// use argus_core::record::{MarCause, Version, decode_mar};
///
/// let mut rec = vec![0u8; 128];
/// rec[..4].copy_from_slice(&[0x85, 0x20, 0x00, 0x20]); // argus 5 MAR, cause STATUS, 32 words
/// rec[4..8].copy_from_slice(&0x0040_0000u32.to_be_bytes()); // the source id is an integer
/// rec[32..36].copy_from_slice(&1_796_127_814u32.to_be_bytes()); // now
/// rec[48..56].copy_from_slice(&1056u64.to_be_bytes()); // packets received
/// rec[108..112].copy_from_slice(&4004u32.to_be_bytes());
/// let mar = decode_mar(&rec)?;
/// assert_eq!((mar.version, mar.cause), (Version::V5, MarCause::Status));
/// assert_eq!(mar.source_id.to_string(), "4004");
/// assert_eq!(mar.report().map(|r| r.counters.pkts_rcvd), Some(1056));
/// # Ok::<(), argus_core::record::MarError>(())
/// ```
pub fn decode_mar(record: &[u8]) -> Result<Mar, MarError> {
    let rec = Bytes(record);
    let (Some(b0), Some(b1), Some(words)) = (rec.u8(0), rec.u8(1), rec.u16(2)) else {
        return Err(MarError::NoHeader { have: record.len() });
    };
    if b0 >> 4 != kind::MAR {
        return Err(MarError::NotMar { kind: b0 >> 4 });
    }
    let version = Version::from_number(b0 & 0x0f).ok_or(MarError::UnknownVersion(b0 & 0x0f))?;
    let declared = usize::from(words) * 4;
    if declared != record.len() {
        return Err(MarError::LengthMismatch {
            declared,
            have: record.len(),
        });
    }
    let cause = MarCause::from_byte(b1);
    match (cause, version) {
        (MarCause::Supplemental, _) => Err(MarError::Unsupported { version, cause }),
        (MarCause::Interface, Version::V5) => decode_interface(rec, cause),
        _ => decode_report(rec, version, cause),
    }
}

fn decode_report(rec: Bytes<'_>, version: Version, cause: MarCause) -> Result<Mar, MarError> {
    let too_short = MarError::TooShort {
        cause,
        need: MAR_LEN as usize,
        have: rec.0.len(),
    };
    if rec.0.len() < MAR_LEN as usize {
        return Err(too_short);
    }
    // Every read below is within the 128 bytes just checked; `?` only guards the reasoning.
    let read = || -> Option<Mar> {
        let status = rec.u32(4)?;
        let (drift, interfaces, fallow, source_id) = match version {
            Version::V3 => {
                // The cookie marks the MAR/START, whose source id is `thisid`.
                let at = if rec.u32(8)? == ARGUS_V3_COOKIE {
                    120
                } else {
                    8
                };
                let id = v3_source_id(status, rec.u32(at)?);
                (Some(rec.u64(64)?.cast_signed()), None, None, id)
            }
            Version::V5 => {
                let id = v5_source_id(status, rec.array::<16>(108)?);
                (None, Some(rec.u32(64)?), Some(rec.u32(68)?), id)
            }
        };
        let counters = MarCounters {
            pkts_rcvd: rec.u64(48)?,
            bytes_rcvd: rec.u64(56)?,
            drift,
            interfaces,
            fallow,
            records: rec.u32(72)?,
            flows: rec.u32(76)?,
            dropped: rec.u32(80)?,
            queue: rec.u32(84)?,
            output: rec.u32(88)?,
            clients: rec.u32(92)?,
            bufs: rec.u32(96)?,
            bytes: rec.u32(100)?,
        };
        let report = MarReport {
            status,
            sequence: rec.u32(20)?,
            major_version: rec.u8(40)?,
            minor_version: rec.u8(41)?,
            interface_type: rec.u8(42)?,
            interface_status: rec.u8(43)?,
            flow_status_interval: rec.u16(44)?,
            mar_interval: rec.u16(46)?,
            localnet: Ipv4Addr::from(rec.u32(12)?),
            netmask: Ipv4Addr::from(rec.u32(16)?),
            counters,
        };
        Some(Mar {
            version,
            cause,
            start: rec.time(24)?,
            now: rec.time(32)?,
            source_id,
            body: MarBody::Report(report),
        })
    };
    read().ok_or(too_short)
}

fn decode_interface(rec: Bytes<'_>, cause: MarCause) -> Result<Mar, MarError> {
    let too_short = MarError::TooShort {
        cause,
        need: MAR_INTERFACE_LEN,
        have: rec.0.len(),
    };
    if rec.0.len() < MAR_INTERFACE_LEN {
        return Err(too_short);
    }
    let read = || -> Option<Mar> {
        let status = rec.u32(4)?;
        Some(Mar {
            version: Version::V5,
            cause,
            start: rec.time(28)?,
            now: rec.time(36)?,
            source_id: v5_source_id(status, rec.array::<16>(8)?),
            body: MarBody::Interface(MarInterface {
                status,
                name: rec.array::<4>(24)?,
            }),
        })
    };
    read().ok_or(too_short)
}

/// An argus 3 source id from its 32-bit word, read big-endian. A string was stored in the
/// sensor's byte order and sent big-endian; like `ra` on a little-endian host, the bytes are
/// read least significant first.
fn v3_source_id(status: u32, word: u32) -> SourceId {
    match status & IDIS_MASK {
        IDIS_STRING => SourceId::Str(word.to_le_bytes()),
        IDIS_INT => SourceId::Int(word),
        IDIS_IPV4 => SourceId::Ipv4(Ipv4Addr::from(word)),
        _ => SourceId::Untyped(word),
    }
}

/// An argus 5 source id from its 16-byte union: strings in natural order, numbers big-endian
/// in its first 4 bytes.
fn v5_source_id(status: u32, raw: [u8; 16]) -> SourceId {
    let head = [raw[0], raw[1], raw[2], raw[3]];
    let word = u32::from_be_bytes(head);
    match status & IDIS_MASK {
        IDIS_STRING => SourceId::Str(head),
        IDIS_INT => SourceId::Int(word),
        IDIS_IPV4 => SourceId::Ipv4(Ipv4Addr::from(word)),
        IDIS_IPV6 => SourceId::Ipv6(Ipv6Addr::from(raw)),
        IDIS_UUID => SourceId::Uuid(raw),
        _ => SourceId::Untyped(word),
    }
}

/// Checked big-endian reads from a record.
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn array<const N: usize>(self, at: usize) -> Option<[u8; N]> {
        self.0.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    fn u8(self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }

    fn u16(self, at: usize) -> Option<u16> {
        self.array(at).map(u16::from_be_bytes)
    }

    fn u32(self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_be_bytes)
    }

    fn u64(self, at: usize) -> Option<u64> {
        self.array(at).map(u64::from_be_bytes)
    }

    fn time(self, at: usize) -> Option<MarTime> {
        Some(MarTime {
            secs: self.u32(at)?,
            usecs: self.u32(at.checked_add(4)?)?,
        })
    }
}
