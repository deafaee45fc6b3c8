//! One read of an upload's `.out`: the content's check (the argus record walk, by default), each
//! manifest chunk's byte count and SHA-256, and the copy to the archive encoder, in constant
//! memory.

use std::fs::File;
use std::io::{self, Read, Write};

use argus_core::manifest::Manifest;
use argus_core::record::{MarsSeen, Version};

use crate::content::Check;
use sha2::{Digest, Sha256};

/// The size of an upload's read and write buffers: 256 KiB, or less for a smaller upload (most
/// are a few dozen KiB, and a zeroed buffer costs its whole size).
pub(super) fn buffer_size(len: u64) -> usize {
    const MAX: usize = 256 * 1024;
    usize::try_from(len).map_or(MAX, |l| l.clamp(4096, MAX))
}

#[derive(Debug)]
pub(super) enum VerifyError {
    /// The upload is bad.
    Refused(String),
    /// The argus data is damaged (or not argus data) after `valid_len` bytes of `records`
    /// complete records, whose last stream is of `version`.
    Damaged {
        reason: String,
        valid_len: u64,
        records: u64,
        version: Option<Version>,
        mars: MarsSeen,
        gaps: Vec<argus_core::ranges::ByteRange>,
    },
    /// Reading the upload failed.
    Read(io::Error),
    /// Writing our copy failed.
    Write(io::Error),
}

/// What walking an upload found.
#[derive(Clone, Debug)]
pub(super) struct Walked {
    /// Its complete records.
    pub(super) records: u64,
    /// The argus version of its last stream (`None` when it holds no record).
    pub(super) version: Option<Version>,
    /// Its management records (argus data only).
    pub(super) mars: MarsSeen,
    /// Ranges without data (zeros between records), not to append.
    pub(super) gaps: Vec<argus_core::ranges::ByteRange>,
}

/// Reads `.out` once: feeds `check` (the argus records, by default), checks each manifest
/// chunk's SHA-256, and copies the bytes to `sink` (the archive encoder).
pub(super) fn verify(
    out: &File,
    len: u64,
    manifests: &[Manifest],
    sink: &mut dyn Write,
    whole: bool,
    mut check: Box<dyn Check>,
) -> Result<Walked, VerifyError> {
    // Exactly the `len` bytes that were checked at the open, no probe for more: a writer
    // that went on after `.rdy` brings nothing unchecked into the archive either.
    let mut reader = ReadAt { file: out, pos: 0 }.take(len);
    let mut buf = vec![0u8; buffer_size(len)];
    let mut chunk = 0;
    let mut left = manifests.first().map_or(u64::MAX, |m| m.bytes);
    let mut hasher = Sha256::new();
    let mut end = 0u64;
    for m in manifests {
        end = end.saturating_add(m.bytes);
        check.cut(end);
    }
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(VerifyError::Read(e)),
        };
        let data = &buf[..n];
        if !check.failed() {
            check.feed(data);
            // Damaged: the rest matters only to a copy of the whole upload.
            if check.failed() && !whole {
                break;
            }
        }
        if !manifests.is_empty() {
            let mut rest = data;
            while !rest.is_empty() {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                hasher.update(&rest[..take]);
                rest = &rest[take..];
                left -= take as u64;
                if left == 0 {
                    check_chunk(&manifests[chunk], &mut hasher)?;
                    chunk += 1;
                    left = manifests.get(chunk).map_or(u64::MAX, |m| m.bytes);
                }
            }
        }
        sink.write_all(data).map_err(VerifyError::Write)?;
    }
    // Zero-length chunks at the end are checked too.
    while chunk < manifests.len() && manifests[chunk].bytes == 0 {
        check_chunk(&manifests[chunk], &mut hasher)?;
        chunk += 1;
    }
    let verdict = check.finish();
    if let Some(damage) = verdict.damage {
        return Err(VerifyError::Damaged {
            reason: damage.reason,
            valid_len: damage.valid_len,
            records: verdict.records,
            version: verdict.version,
            mars: verdict.mars,
            gaps: verdict.gaps,
        });
    }
    Ok(Walked {
        records: verdict.records,
        version: verdict.version,
        mars: verdict.mars,
        gaps: verdict.gaps,
    })
}

pub(super) fn check_chunk(m: &Manifest, hasher: &mut Sha256) -> Result<(), VerifyError> {
    let digest: [u8; 32] = std::mem::take(hasher).finalize().into();
    if digest != m.sha256 {
        return Err(VerifyError::Refused(format!(
            "chunk seq {} of host {} does not match its manifest (sha256 differs)",
            m.seq, m.host
        )));
    }
    Ok(())
}

/// Reads a file from a position without moving (or sharing) its cursor.
pub(super) struct ReadAt<'a> {
    pub(super) file: &'a File,
    pub(super) pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_bytes_checked_at_the_open_are_read() {
        let sample = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../argus-core/testdata/hostC.argus"),
        )
        .expect("the argus sample");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.out");
        // The upload as opened, then bytes a writer added after `.rdy`.
        std::fs::write(&path, [&sample[..], b"added later"].concat()).expect("write");
        let file = File::open(&path).expect("open");
        let mut copied = Vec::new();
        let walked = verify(
            &file,
            sample.len() as u64,
            &[],
            &mut copied,
            false,
            crate::content::Content::check(&crate::content::ArgusRecords),
        )
        .expect("clean argus data");
        assert!(walked.records > 0);
        assert!(
            copied == sample,
            "the archive copy stops at the checked length"
        );
    }

    #[test]
    fn a_read_failure_is_ours_not_the_uploads() {
        // A descriptor whose reads fail (a directory gives EISDIR; a failing disk EIO).
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::open(dir.path()).expect("open");
        let verified = verify(
            &file,
            128,
            &[],
            &mut io::sink(),
            false,
            crate::content::Content::check(&crate::content::ArgusRecords),
        );
        assert!(
            matches!(verified, Err(VerifyError::Read(_))),
            "{verified:?}"
        );
    }
}
