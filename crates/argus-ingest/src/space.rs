//! The free-space floor (`min_free_space`): below it, on the day files' or the archives' file
//! system, a pass ingests nothing (and loses nothing: the uploads wait in the dropzone) rather
//! than fill the disk and fail half-way. `status` and the metrics read the same check.

use std::path::Path;

use argus_core::escape::EscapedPath;
use nix::sys::statvfs::statvfs;

use crate::config::Config;

/// Free and total bytes of the file system holding `path` (for an unprivileged writer).
pub fn space(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = statvfs(path).map_err(std::io::Error::from)?;
    let frag = st.fragment_size();
    Ok((
        st.blocks_available().saturating_mul(frag),
        st.blocks().saturating_mul(frag),
    ))
}

/// Less free space than `min_free_space` on a file system the engine writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "only {} MiB free on the file system of the {what} ({}), under min_free_space = {floor} ({} MiB): nothing is ingested until space is freed; the uploads wait in the dropzone",
    free >> 20,
    EscapedPath(dir),
    need >> 20
)]
pub struct Shortage {
    /// What the file system holds: "day files" or "archives".
    pub what: &'static str,
    /// The directory measured.
    pub dir: std::path::PathBuf,
    /// Its free bytes.
    pub free: u64,
    /// The bytes `min_free_space` asks of it.
    pub need: u64,
    /// The setting.
    pub floor: argus_core::grammar::Amount,
}

/// Why a pass may not ingest now, if it may not: the first of the day files' and the
/// archives' file systems with less free space than `min_free_space`. A directory that cannot
/// be measured (not created yet) passes.
pub fn shortage(config: &Config) -> Option<Shortage> {
    let floor = config.min_free_space?;
    for (what, dir) in [
        ("day files", &config.oper_dir),
        ("archives", &config.archive_dir),
    ] {
        let Ok((free, total)) = space(dir) else {
            continue;
        };
        let need = floor.of(total);
        if free < need {
            return Some(Shortage {
                what,
                dir: dir.clone(),
                free,
                need,
                floor,
            });
        }
    }
    None
}
