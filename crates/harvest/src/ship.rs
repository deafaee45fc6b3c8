//! Shipping a chunk: one pass over its bytes that copies them to stdout, hashes them for the
//! manifest and walks their argus framing, in constant memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use argus_core::escape::EscapedPath;
use argus_core::record::{Report, Walker};
use sha2::{Digest, Sha256};

/// What shipping a chunk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shipped {
    pub(crate) bytes: u64,
    pub(crate) sha256: [u8; 32],
    pub(crate) report: Report,
}

/// Why a chunk was not shipped completely.
#[derive(Debug)]
pub(crate) enum ShipError {
    /// The chunk could not be read.
    Read(String),
    /// stdout refused the bytes (the reader went away, a full disk behind a redirection).
    Write(io::Error),
}

impl std::fmt::Display for ShipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShipError::Read(m) => f.write_str(m),
            ShipError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                f.write_str("cannot write to stdout: its reader has gone away (broken pipe)")
            }
            ShipError::Write(e) => write!(f, "cannot write to stdout: {e}"),
        }
    }
}

/// Copies `chunk` to `out` (and flushes it), hashing and walking the bytes on the way.
pub(crate) fn ship(chunk: &Path, out: &mut dyn Write) -> Result<Shipped, ShipError> {
    let read_error =
        |e: io::Error| ShipError::Read(format!("cannot read {}: {e}", EscapedPath(chunk)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mar() -> Vec<u8> {
        let mut m = vec![0u8; 128];
        m[..4].copy_from_slice(&[0x83, 0x10, 0x00, 0x20]);
        m[8..12].copy_from_slice(&argus_core::record::ARGUS_V3_COOKIE.to_be_bytes());
        m
    }

    #[test]
    fn copies_hashes_and_walks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("c");
        std::fs::write(&chunk, mar()).expect("write");
        let mut out = Vec::new();
        let shipped = ship(&chunk, &mut out).expect("ship");
        assert_eq!(out, mar());
        assert_eq!(shipped.bytes, 128);
        assert_eq!(shipped.sha256, argus_core::manifest::sha256(&mar()));
        assert!(shipped.report.is_clean());
        assert_eq!(shipped.report.records, 1);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_stdout_is_a_write_error_and_a_missing_chunk_a_read_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chunk = dir.path().join("c");
        std::fs::write(&chunk, mar()).expect("write");
        let err = ship(&chunk, &mut Broken).expect_err("broken");
        assert!(matches!(err, ShipError::Write(_)));
        assert!(err.to_string().contains("broken pipe"));
        let err = ship(&dir.path().join("none"), &mut Vec::new()).expect_err("missing");
        assert!(matches!(err, ShipError::Read(_)));
    }
}
