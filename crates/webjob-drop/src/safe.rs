//! Opening untrusted files without following symbolic links and without ever blocking.
//!
//! Everything in a dropzone is written on behalf of remote hosts, and anyone who can write there
//! can put a symbolic link to `/etc/passwd` or a FIFO under a part's name. Checking the type first
//! and opening second would leave a window in which the name is swapped, so [`open_regular`]
//! opens first, with `O_NOFOLLOW` (a link is refused by the kernel) and `O_NONBLOCK` (opening a
//! FIFO returns at once instead of waiting for a writer), and then checks the type of the opened
//! descriptor itself with `fstat`.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

use crate::error::{Error, IoContext, Result};
pub use crate::file_kind::FileKind;

/// The identity of a file: device and inode number. Two paths with the same identity name the
/// same file; a path whose identity changed names another file than before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// The identity in `meta`.
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Opens `path` for reading if, and only if, it is a regular file, and returns it with its
/// metadata (from `fstat` on the opened descriptor).
///
/// A symbolic link is refused without being followed and a FIFO is refused without blocking, both
/// with [`Error::NotRegular`]; so are directories, sockets and devices.
pub fn open_regular(path: &Path) -> Result<(File, Metadata)> {
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(file) => file,
        // O_NOFOLLOW on a symbolic link: ELOOP.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Error::NotRegular {
                path: path.to_path_buf(),
                file_type: FileKind::Symlink,
            });
        }
        Err(e) => return Err(e).at("open", path),
    };
    let meta = file.metadata().at("stat", path)?;
    let kind = FileKind::of(meta.file_type());
    if kind != FileKind::Regular {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            file_type: kind,
        });
    }
    Ok((file, meta))
}

/// Reads a whole (small) file opened with [`open_regular`], refusing more than `limit` bytes so
/// that a hostile upload cannot exhaust memory. `len` is its size at the open: a read that
/// comes back short of the room given is the end of a regular file, so a file that did not
/// grow is read in one call.
pub(crate) fn read_limited(mut file: File, path: &Path, limit: u64, len: u64) -> Result<Vec<u8>> {
    let room = usize::try_from(len.min(limit).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = vec![0; room];
    let got = loop {
        match file.read(&mut bytes) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).at("read", path),
        }
    };
    bytes.truncate(got);
    if got == room {
        // It grew since the open: read on, to the limit.
        (&mut file)
            .take(limit.saturating_add(1).saturating_sub(got as u64))
            .read_to_end(&mut bytes)
            .at("read", path)?;
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// True when `err` means the file is simply not there (any more).
pub(crate) fn is_not_found(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"data").expect("write");
        let (_f, meta) = open_regular(&file).expect("regular file opens");
        assert_eq!(meta.len(), 4);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
        assert!(matches!(
            open_regular(&link),
            Err(Error::NotRegular {
                file_type: FileKind::Symlink,
                ..
            })
        ));

        // Without O_NONBLOCK this open would wait forever for a writer.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).expect("mkfifo");
        assert!(matches!(
            open_regular(&fifo),
            Err(Error::NotRegular {
                file_type: FileKind::Fifo,
                ..
            })
        ));

        assert!(matches!(
            open_regular(dir.path()),
            Err(Error::NotRegular {
                file_type: FileKind::Directory,
                ..
            })
        ));
        assert!(matches!(
            open_regular(&dir.path().join("missing")),
            Err(Error::Io { op: "open", .. })
        ));
    }

    #[test]
    fn reads_are_limited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 11]).expect("write");
        let (f, meta) = open_regular(&path).expect("open");
        assert!(matches!(
            read_limited(f, &path, 10, meta.len()),
            Err(Error::TooLarge { limit: 10, .. })
        ));
        let (f, meta) = open_regular(&path).expect("open");
        assert_eq!(
            read_limited(f, &path, 11, meta.len()).expect("fits").len(),
            11
        );
        // Sizes from an open before the file grew, or shrank: what is there, to the limit.
        for (said, limit, read) in [
            (0, 20, Some(11)),
            (5, 20, Some(11)),
            (5, 8, None),
            (30, 20, Some(11)),
        ] {
            let (f, _) = open_regular(&path).expect("open");
            let got = read_limited(f, &path, limit, said).ok().map(|b| b.len());
            assert_eq!(got, read, "said {said}, limit {limit}");
        }
    }
}
