//! The seam between the engine and what an upload holds. The engine takes uploads exactly once
//! whatever they hold; what makes one whole is the [`Content`]'s to say. It reads every byte of
//! an upload once, as the engine archives it, through a [`Check`], and gives a [`Verdict`]:
//! how many records it holds, and whether (and where) it is damaged. [`ArgusRecords`], the
//! default, walks argus 3 and argus 5 record framing and lets the engine file records by the
//! day they started; another WebJob job's output brings a check of its own and is filed by its
//! upload's day.

use argus_core::record::{MarsSeen, Version, Walk, Walker};

/// What an upload holds, as far as the engine needs to know it.
pub trait Content: Send + Sync + std::fmt::Debug {
    /// A check for one upload's bytes.
    fn check(&self) -> Box<dyn Check>;

    /// Whether its records carry their own times, so that an upload can be split by the day
    /// each record started (`day_boundary = Record`). When not, every upload is filed whole
    /// under its upload day.
    fn by_record_time(&self) -> bool {
        false
    }
}

/// A check of one upload's bytes, fed in order, in pieces of any size.
pub trait Check: Send {
    /// The next bytes.
    fn feed(&mut self, data: &[u8]);

    /// Told, before the first byte, where the upload's chunks meet (offsets in its bytes):
    /// what the check keeps for the sensor's health must not merge across them, because only
    /// the chunks not ingested before count. A check that keeps nothing ignores it.
    fn cut(&mut self, _offset: u64) {}

    /// True once the data is known to be damaged (what follows is read only to archive it).
    fn failed(&self) -> bool;

    /// The verdict, after the last byte.
    fn finish(self: Box<Self>) -> Verdict;
}

/// What a [`Check`] found (fields it has nothing to say about left at their defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Complete records.
    pub records: u64,
    /// The argus version of the last stream, for argus data.
    pub version: Option<Version>,
    /// Damage, when the data is not whole.
    pub damage: Option<Damage>,
    /// argus' management records, for the sensor's health (none for other content).
    pub mars: MarsSeen,
    /// Byte ranges that hold no data, left out of the day file (the archive keeps them): runs
    /// of zeros between whole argus records, as a power loss on the sensor leaves them.
    pub gaps: Vec<argus_core::ranges::ByteRange>,
}

/// Where data stops being whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// What is wrong, for the quarantine's reason file.
    pub reason: String,
    /// The bytes before it that hold whole records (`damaged_uploads = "salvage"` appends them).
    pub valid_len: u64,
}

/// argus data, version 3 or 5, checked by argus-core's record walker.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgusRecords;

impl Content for ArgusRecords {
    fn check(&self) -> Box<dyn Check> {
        Box::new(ArgusCheck(Walker::new()))
    }

    fn by_record_time(&self) -> bool {
        true
    }
}

struct ArgusCheck(Walker);

impl Check for ArgusCheck {
    fn feed(&mut self, data: &[u8]) {
        self.0.feed(data);
    }

    fn cut(&mut self, offset: u64) {
        self.0.cut(offset);
    }

    fn failed(&self) -> bool {
        self.0.is_failed()
    }

    fn finish(self: Box<Self>) -> Verdict {
        let report = self.0.finish();
        let damage = (!report.is_clean()).then(|| Damage {
            reason: match report.walk {
                // argus 2, or no argus at all: named as such, not as damage.
                Walk::Corrupt { reason, .. } if reason.is_foreign() => reason.to_string(),
                walk => format!("argus data is damaged: {walk}"),
            },
            valid_len: if report.starts > 0 {
                report.valid_len
            } else {
                0
            },
        });
        Verdict {
            records: report.records,
            version: report.version,
            damage,
            mars: report.mars_seen,
            gaps: report.zero_gaps,
        }
    }
}
