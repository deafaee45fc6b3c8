//! Free space where argus writes.
//!
//! argus checks `statfs(output).f_bfree > 100` before each write and silently writes nothing
//! while the file system has 100 free blocks or fewer (argus/ArgusUtil.c, ArgusWriteSocket): no
//! message, no exit, the records are simply lost.

use std::path::Path;

use crate::error::{IoContext, Result};

/// argus writes only while the file system has more free blocks than this.
pub const ARGUS_MIN_FREE_BLOCKS: u64 = 100;

/// Free space of a file system, in blocks of `block_size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeSpace {
    /// Free blocks, including those reserved for root (what argus checks).
    pub free_blocks: u64,
    /// Free blocks available to unprivileged users.
    pub avail_blocks: u64,
    /// Size of the file system in blocks.
    pub total_blocks: u64,
    /// Bytes per block.
    pub block_size: u64,
}

impl FreeSpace {
    /// True when argus has stopped writing: at most [`ARGUS_MIN_FREE_BLOCKS`] free blocks.
    pub fn argus_stopped(&self) -> bool {
        self.free_blocks <= ARGUS_MIN_FREE_BLOCKS
    }

    /// True when argus is close to its silent stop: fewer than ten times its threshold, or
    /// less than 1 % of the file system, is free.
    pub fn is_low(&self) -> bool {
        self.free_blocks <= ARGUS_MIN_FREE_BLOCKS * 10
            || self.free_blocks.saturating_mul(100) < self.total_blocks
    }

    /// Free bytes (including the root reserve).
    pub fn free_bytes(&self) -> u64 {
        self.free_blocks.saturating_mul(self.block_size)
    }
}

/// The free space of the file system holding `path`.
#[allow(
    clippy::useless_conversion,
    reason = "c_ulong and fsblkcnt_t are 32 bits wide on some targets"
)]
pub fn free_space(path: &Path) -> Result<FreeSpace> {
    let st = nix::sys::statvfs::statvfs(path)
        .map_err(std::io::Error::from)
        .at("statvfs", path)?;
    let block_size = match u64::from(st.fragment_size()) {
        0 => u64::from(st.block_size()),
        n => n,
    };
    Ok(FreeSpace {
        free_blocks: u64::from(st.blocks_free()),
        avail_blocks: u64::from(st.blocks_available()),
        total_blocks: u64::from(st.blocks()),
        block_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let space = |free, total| FreeSpace {
            free_blocks: free,
            avail_blocks: free,
            total_blocks: total,
            block_size: 4096,
        };
        assert!(space(100, 1_000_000).argus_stopped());
        assert!(!space(101, 1_000_000).argus_stopped());
        assert!(space(1000, 1_000_000).is_low());
        assert!(space(9_999, 1_000_000).is_low());
        assert!(!space(10_000, 1_000_000).is_low());
        assert_eq!(space(2, 10).free_bytes(), 8192);
    }

    #[test]
    fn reads_a_real_file_system() {
        let dir = tempfile::tempdir().expect("temp dir");
        let space = free_space(dir.path()).expect("statvfs");
        assert!(space.total_blocks > 0 && space.block_size > 0);
        assert!(free_space(Path::new("/nonexistent/dir")).is_err());
    }
}
