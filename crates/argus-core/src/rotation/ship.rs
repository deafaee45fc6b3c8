//! Shipping a chunk: one pass over its bytes that copies them out, hashes them for the manifest
//! and walks their argus framing, in constant memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{ShipError, StagedChunk};
use crate::host::Hostname;
use crate::manifest::Manifest;
use crate::record::{Report, Walker};

/// What shipping a chunk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipped {
    /// Bytes copied.
    pub bytes: u64,
    /// Their SHA-256.
    pub sha256: [u8; 32],
    /// What the walk of their argus framing found.
    pub report: Report,
}

impl Shipped {
    /// The manifest line of `chunk`, shipped by `host`: its number, first MAR time, cut time,
    /// length, records and hash.
    pub fn manifest(&self, host: &Hostname, chunk: &StagedChunk) -> Manifest {
        Manifest {
            host: host.clone(),
            seq: chunk.seq,
            start: self
                .report
                .mar_times
                .and_then(|(first, _)| OffsetDateTime::from_unix_timestamp(i64::from(first)).ok()),
            end: Some(chunk.cut),
            bytes: self.bytes,
            records: Some(self.report.records),
            sha256: self.sha256,
        }
    }
}

/// Copies `chunk` to `out` (and flushes it), hashing and walking the bytes on the way.
pub fn ship(chunk: &Path, out: &mut dyn Write) -> Result<Shipped, ShipError> {
    let read_error = |source: io::Error| ShipError::Read {
        path: chunk.to_path_buf(),
        source,
    };
    let mut file = File::open(chunk).map_err(read_error)?;
    let mut buf = vec![0u8; 128 * 1024];
    let mut walker = Walker::new();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        let data = &buf[..n];
        walker.feed(data);
        hasher.update(data);
        out.write_all(data).map_err(ShipError::Write)?;
        bytes += n as u64;
    }
    out.flush().map_err(ShipError::Write)?;
    Ok(Shipped {
        bytes,
        sha256: hasher.finalize().into(),
        report: walker.finish(),
    })
}
