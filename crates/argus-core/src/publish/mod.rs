//! Durable, atomic publishing of new files, and durable moves.
//!
//! A file is written under a temporary name in its destination directory, its data is made
//! durable, then it is renamed to its final name **without ever replacing an existing file**, and
//! the directory is synced so the new name survives a power loss. A reader therefore sees either
//! no file or the complete file, and a crash leaves at most a temporary file behind, which
//! [`clean_temp_files`] recognises by its name and removes.
//!
//! Syncing dominates the cost of small files. [`Batch`] publishes many files with one data sync
//! (`syncfs`) and one directory sync: group commit.
//!
//! ```
//! use std::io::Write;
//! use argus_core::publish::Publisher;
//!
//! let dir = tempfile::tempdir()?;
//! let publisher = Publisher::open(dir.path())?;
//! let mut staged = publisher.stage("host_20261127100000.argus")?;
//! staged.write_all(b"argus bytes")?;
//! let path = publisher.publish(staged)?;
//! assert_eq!(std::fs::read(&path)?, b"argus bytes");
//!
//! // Never replaces: a second file under the same name is refused and leaves no temp file.
//! assert!(publisher.stage("host_20261127100000.argus").is_err());
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::error::{Error, IoContext, Result};

/// Every temporary file this crate creates starts with this prefix, so that leftovers of a crash
/// are recognised by name alone.
pub const TEMP_PREFIX: &str = ".argus-tmp.";

/// How the data of staged files is made durable before they are renamed into place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` each file (several at once in a batch): unaffected by other writers.
    #[default]
    EachFile,
    /// One `syncfs` on the destination's file system for the whole batch: constant cost in the
    /// number of files, but it also waits for other dirty data on that file system.
    FileSystem,
    /// No syncing at all (tests, scratch output). Atomicity is kept, durability is not.
    Never,
}

/// Publishes files into one directory.
#[derive(Debug)]
pub struct Publisher {
    dir: PathBuf,
    sync: SyncMode,
}

impl Publisher {
    /// A publisher for `dir`, which must exist and be a directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let meta = fs::metadata(&dir).at("open directory", &dir)?;
        if !meta.is_dir() {
            return Err(Error::Io {
                op: "open directory",
                path: dir,
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        Ok(Publisher {
            dir,
            sync: SyncMode::default(),
        })
    }

    /// Sets how batches sync data; see [`SyncMode`].
    pub fn with_sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    /// The destination directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a temporary file in the destination directory that will become `name`.
    ///
    /// `name` must be a single, plain path component. Fails early with [`Error::Exists`] when
    /// `name` already exists (the final rename checks again, atomically).
    pub fn stage(&self, name: impl AsRef<OsStr>) -> Result<Staged> {
        let name = name.as_ref();
        check_name(name)?;
        let dest = self.dir.join(name);
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(Error::Exists { path: dest });
        }
        self.stage_at(name, dest)
    }

    /// [`stage`](Self::stage) without the early look at `name`: one file-system call less per
    /// file, for a caller that can undo its work when the final rename finds `name` taken
    /// ([`Error::Exists`] from [`publish`](Self::publish) or in a [`BatchReport`]). Where a
    /// name is free nearly always, that look would fail nearly always.
    pub fn stage_optimistic(&self, name: impl AsRef<OsStr>) -> Result<Staged> {
        let name = name.as_ref();
        check_name(name)?;
        let dest = self.dir.join(name);
        self.stage_at(name, dest)
    }

    fn stage_at(&self, name: &OsStr, dest: PathBuf) -> Result<Staged> {
        // The final name is kept in the temp name (shortened) so an operator can tell what a
        // leftover was; the prefix alone is what recognises it.
        let hint: String = String::from_utf8_lossy(name.as_bytes())
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(80)
            .collect();
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(&format!(".{hint}"))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.dir)
            .at("create temporary file in", &self.dir)?;
        let (file, temp) = temp.into_parts();
        Ok(Staged {
            file,
            temp: Temp::Removed(temp),
            dest,
            written: 0,
        })
    }

    /// Makes `staged` durable and gives it its final name: sync its data, rename without
    /// replacing, sync the directory. On error the temporary file is removed.
    pub fn publish(&self, staged: Staged) -> Result<PathBuf> {
        if self.sync != SyncMode::Never {
            staged.file.sync_data().at("fsync", staged.temp.path())?;
        }
        let dest = staged.rename_into_place()?;
        self.sync_dir()?;
        Ok(dest)
    }

    /// Starts a batch: files staged by this publisher and added to it become durable together.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            publisher: self,
            staged: Vec::new(),
        }
    }

    /// Syncs the directory itself, making renames and removals in it durable.
    pub fn sync_dir(&self) -> Result<()> {
        if self.sync == SyncMode::Never {
            return Ok(());
        }
        sync_dir(&self.dir)
    }
}

/// A file being written under a temporary name; see [`Publisher::stage`].
///
/// Dropping it without publishing removes the temporary file, unless it was
/// [kept](Staged::keep_on_drop).
#[derive(Debug)]
pub struct Staged {
    file: File,
    temp: Temp,
    dest: PathBuf,
    written: u64,
}

/// A staged file's temporary name, and who removes it when the file is not published.
#[derive(Debug)]
enum Temp {
    /// Removed when the [`Staged`] is dropped.
    Removed(tempfile::TempPath),
    /// Left in place: its caller removes it.
    Kept(PathBuf),
}

impl Temp {
    fn path(&self) -> &Path {
        match self {
            Temp::Removed(p) => p,
            Temp::Kept(p) => p,
        }
    }

    /// Stops the drop from removing the name; it is the caller's from now on.
    fn keep(self) -> Result<PathBuf> {
        match self {
            Temp::Removed(p) => p.keep().map_err(|e| Error::Io {
                op: "keep",
                path: e.path.to_path_buf(),
                source: e.error,
            }),
            Temp::Kept(p) => Ok(p),
        }
    }
}

impl Staged {
    /// The path it will be published under.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path it is written under now.
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// The open temporary file, for positioned or bulk writes (`copy_file_range`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// From now on, dropping it leaves the temporary file in place, for a caller whose own
    /// record (a journal) names [`temp_path`](Self::temp_path): whether that name still exists
    /// then tells whether the file was published, and the caller removes it once it knows.
    pub fn keep_on_drop(&mut self) -> Result<()> {
        let (temp, result) = match std::mem::replace(&mut self.temp, Temp::Kept(PathBuf::new())) {
            Temp::Removed(path) => match path.keep() {
                Ok(kept) => (Temp::Kept(kept), Ok(())),
                // Still removed on drop, as before.
                Err(e) => {
                    let error = Error::Io {
                        op: "keep",
                        path: e.path.to_path_buf(),
                        source: e.error,
                    };
                    (Temp::Removed(e.path), Err(error))
                }
            },
            kept @ Temp::Kept(_) => (kept, Ok(())),
        };
        self.temp = temp;
        result
    }

    /// Bytes written through the `Write` implementation so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn rename_into_place(self) -> Result<PathBuf> {
        rename_noreplace(self.temp.path(), &self.dest)?;
        // The temporary name no longer exists: stop the drop guard from removing anything.
        let _kept: PathBuf = self.temp.keep()?;
        Ok(self.dest)
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Files that become durable together with one data sync and one directory sync.
#[derive(Debug)]
pub struct Batch<'a> {
    publisher: &'a Publisher,
    staged: Vec<Staged>,
}

/// What a [`Batch::commit`] did: every file is either published or reported as failed (and its
/// temporary file removed).
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Final paths of the files now durable under their names.
    pub published: Vec<PathBuf>,
    /// Files that could not be published, with the reason.
    pub failed: Vec<(PathBuf, Error)>,
}

impl Batch<'_> {
    /// Adds a staged file (written completely) to the batch.
    pub fn add(&mut self, staged: Staged) {
        self.staged.push(staged);
    }

    /// Number of files in the batch.
    pub fn len(&self) -> usize {
        self.staged.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Syncs all data (per [`SyncMode`]), renames every file into place without replacing, and
    /// syncs the directory once. When the data sync itself fails nothing is published.
    pub fn commit(self) -> Result<BatchReport> {
        let publisher = self.publisher;
        let mut report = BatchReport::default();
        if self.staged.is_empty() {
            return Ok(report);
        }
        match publisher.sync {
            SyncMode::Never => {}
            SyncMode::EachFile => sync_each(&self.staged)?,
            SyncMode::FileSystem => {
                let first = &self.staged[0];
                nix::unistd::syncfs(&first.file)
                    .map_err(io::Error::from)
                    .at("syncfs", &publisher.dir)?;
            }
        }
        for staged in self.staged {
            let dest = staged.dest.clone();
            match staged.rename_into_place() {
                Ok(path) => report.published.push(path),
                Err(e) => report.failed.push((dest, e)),
            }
        }
        if !report.published.is_empty() {
            publisher.sync_dir()?;
        }
        Ok(report)
    }
}

/// Syncs the data of every staged file. Several syncs are issued at once from a few threads: the
/// file system then commits them together (ext4 and xfs batch concurrent syncs into one journal
/// commit), which costs little more than one sync for the whole batch.
fn sync_each(staged: &[Staged]) -> Result<()> {
    const THREADS: usize = 8;
    if staged.len() <= 2 {
        for s in staged {
            s.file.sync_data().at("fsync", s.temp.path())?;
        }
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..THREADS.min(staged.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(s) = staged.get(i) else { break };
                    if let Err(e) = s.file.sync_data().at("fsync", s.temp.path()) {
                        failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Renames `from` to `to`, failing with [`Error::Exists`] instead of replacing `to`.
///
/// Uses `renameat2(RENAME_NOREPLACE)`; on file systems without it, `link` + `unlink`, which is
/// equally unable to replace but leaves both names for an instant. Both paths must be on the same
/// file system. Neither directory is synced: see [`sync_dir`].
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => Err(Error::Exists {
            path: to.to_path_buf(),
        }),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            match fs::hard_link(from, to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::Exists {
                        path: to.to_path_buf(),
                    });
                }
                Err(e) => return Err(e).at("link", to),
            }
            fs::remove_file(from).at("remove", from)
        }
        Err(errno) => Err(io::Error::from(errno)).at("rename", from),
    }
}

/// Moves `from` to `to` without replacing and makes the move durable by syncing both parent
/// directories (one sync when they are the same).
pub fn move_durably(from: &Path, to: &Path) -> Result<()> {
    rename_noreplace(from, to)?;
    let from_dir = parent(from);
    let to_dir = parent(to);
    sync_dir(to_dir)?;
    if from_dir != to_dir {
        sync_dir(from_dir)?;
    }
    Ok(())
}

/// Replaces the state file `path` with `bytes`, atomically and durably: a temporary file in its
/// directory (mode 0644), synced, renamed over `path`, the directory synced. A reader sees the
/// old content or the new, never a mix. This is for a program's own state files (a counter, a
/// snapshot, a metrics file); data is published with [`Publisher`], which never replaces.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent(path);
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .at("create temporary file in", dir)?;
    temp.write_all(bytes).at("write", temp.path())?;
    temp.as_file().sync_data().at("fsync", temp.path())?;
    temp.persist(path)
        .map_err(|e| e.error)
        .at("rename over", path)?;
    sync_dir(dir)
}

/// Syncs a directory, making the creation, renaming and removal of its entries durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

/// Creates `dir` and its missing parents, syncing each parent in which an entry was created, so
/// that the new directories survive a crash.
pub fn create_dir_all_durably(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.as_os_str().is_empty() && fs::symlink_metadata(cur).is_err() {
        missing.push(cur);
        cur = parent(cur);
    }
    fs::create_dir_all(dir).at("create directory", dir)?;
    for created in missing.iter().rev() {
        sync_dir(parent(created))?;
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// True when `name` is a temporary file name of this crate.
pub fn is_temp_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// Removes temporary files left in `dir` by a crash: regular files whose name starts with
/// [`TEMP_PREFIX`] and whose modification time is at least `min_age` before `now`. Callers that
/// hold the lock of everyone writing into `dir` pass `Duration::ZERO`.
///
/// Returns the paths removed. Nothing else is ever touched.
pub fn clean_temp_files(dir: &Path, min_age: Duration, now: SystemTime) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        if age < min_age {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                log::info!(
                    "removed leftover temporary file {}",
                    crate::escape::EscapedPath(&path)
                );
                removed.push(path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove", &path),
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn check_name(name: &OsStr) -> Result<()> {
    let bytes = name.as_bytes();
    let reason = if bytes.is_empty() {
        Some("it is empty")
    } else if bytes == b"." || bytes == b".." {
        Some("it is a relative directory")
    } else if bytes.contains(&b'/') {
        Some("it contains '/'")
    } else if bytes.contains(&0) {
        Some("it contains a NUL byte")
    } else if bytes.len() > 255 {
        Some("it is longer than 255 bytes")
    } else if is_temp_name(name) {
        Some("it starts with the temporary-file prefix")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: OsString::from(name).to_string_lossy().into_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
