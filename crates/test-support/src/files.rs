//! Reading back what the programs wrote.

use std::io::Read;
use std::path::Path;

use argus_core::codec::open_decoded;

/// The decompressed content of a file in any of the codecs (a day file, an archive, a chunk).
pub fn decoded(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    open_decoded(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()));
    out
}
