//! Preparing uploads on every core: the parts opened safely, the host name and manifests
//! checked, `.out` verified and compressed into its staged archive in the same read. The result
//! is a [`Prepared`] upload: good (to commit), bad (to quarantine) or failed (our side: stop).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use argus_core::codec::{Codec, Compression};
use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;
use argus_core::manifest::Manifest;
use argus_core::publish::{Publisher, Staged};
use argus_core::ranges::ByteRange;
use argus_core::record::Version;
use time::Date;

use crate::config::Config;
use crate::content::Content;
use crate::dropzone::{OpenedParts, Upload};
use crate::journal::ChunkRef;

use super::verify::{VerifyError, Walked, buffer_size, verify};
use crate::error::{Action, Error};

/// An upload validated and ready to commit.
#[derive(Debug)]
pub(super) struct ReadyUpload {
    pub(super) upload: Upload,
    pub(super) host: Hostname,
    pub(super) day: Date,
    pub(super) out: File,
    pub(super) len: u64,
    pub(super) records: u64,
    /// The argus version of its last stream.
    pub(super) version: Option<Version>,
    /// Its management records, for the sensor's health.
    pub(super) mars: argus_core::record::MarsSeen,
    /// Runs of zeros between its records, left out of `segments` (a power loss's trace).
    pub(super) gaps: Vec<ByteRange>,
    pub(super) archive: Archive,
    pub(super) manifests: Vec<Manifest>,
    /// Byte ranges `(offset, len)` of `.out` to append: all of it, less chunks already ingested.
    pub(super) segments: Vec<ByteRange>,
    /// Chunks `(host, seq)` this upload brings for the first time.
    pub(super) new_chunks: Vec<ChunkRef>,
    /// Why it goes to the quarantine after its complete records were appended (salvage).
    pub(super) salvaged: Option<String>,
    /// What each day file gets of `segments` (one piece per day; none when nothing is
    /// appended), decided once the chunks are sorted out.
    pub(super) pieces: Vec<super::day_pieces::DayPiece>,
    /// The `segments` the `pieces` were made of (so that they are made again only when the
    /// chunk plan left something out).
    pub(super) pieces_of: Vec<ByteRange>,
    /// Filed whole under its upload day: its records are dated outside the clock window and
    /// `clock_policy = "upload_day"`, or they cannot be split.
    pub(super) by_upload_day: bool,
}

impl ReadyUpload {
    pub(super) fn archive_dest(&self) -> &Path {
        match &self.archive {
            Archive::Staged(s) => s.dest(),
            Archive::Move(p) => p,
        }
    }

    /// The bytes its archive takes: what was written to the staged archive, or the upload's
    /// length when it is moved.
    pub(super) fn archive_len(&self) -> u64 {
        match &self.archive {
            Archive::Staged(s) => s.written(),
            Archive::Move(_) => self.len,
        }
    }

    pub(super) fn append_len(&self) -> u64 {
        ByteRange::total(&self.segments)
    }
}

/// How the raw upload reaches the archive.
#[derive(Debug)]
pub(super) enum Archive {
    /// Compressed (or copied) into a temporary file in the archive directory.
    Staged(Staged),
    /// Renamed from the dropzone (no compression, same file system): free.
    Move(PathBuf),
}

#[derive(Debug)]
pub(super) enum Prepared {
    Ready(Box<ReadyUpload>),
    /// Bad input: quarantine it.
    Refused(Upload, String),
    /// Our side failed (e.g. the archive disk is full): stop.
    Failed(Upload, Error),
}

impl Prepared {
    /// The size of the upload's `.out`, as scanned.
    pub(super) fn out_len(&self) -> u64 {
        match self {
            Prepared::Ready(g) => g.upload.out_len(),
            Prepared::Refused(u, _) | Prepared::Failed(u, _) => u.out_len(),
        }
    }
}

/// Our side failed to `action` the upload: the pass stops, the upload waits.
fn failed(upload: Upload, action: Action, e: impl Into<crate::error::Cause>) -> Prepared {
    let e = Error::Upload {
        action,
        upload: upload.display_name().to_string(),
        source: e.into(),
    };
    Prepared::Failed(upload, e)
}

/// Prepares uploads on `threads` threads; results keep the uploads' order.
pub(super) fn prepare_all(
    config: &Config,
    content: &dyn Content,
    uploads: Vec<Upload>,
    threads: usize,
) -> Result<Vec<Prepared>, Error> {
    let started = Instant::now();
    let n = uploads.len();
    let workers = threads.clamp(1, n.max(1));
    let shared = PrepareContext {
        config,
        content,
        publisher: Publisher::open(&config.archive_dir)?,
        archive_dev: fs::metadata(&config.archive_dir).map(|m| m.dev()).ok(),
        threads,
        block_threads: threads / workers,
    };
    let slots: Vec<Mutex<Option<Prepared>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let inputs: Vec<Mutex<Option<Upload>>> =
        uploads.into_iter().map(|u| Mutex::new(Some(u))).collect();
    let ahead: Vec<Mutex<Ahead>> = (0..n).map(|_| Mutex::new(Ahead::Waiting)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        // With more uploads than preparers, one thread opens the batch's parts ahead of them.
        if n > workers {
            s.spawn(|| read_ahead(&inputs, &ahead, workers));
        }
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let Some(upload) = take(&inputs[i]) else {
                        continue;
                    };
                    let taken = std::mem::replace(&mut *lock(&ahead[i]), Ahead::Taken);
                    let parts = match taken {
                        Ahead::Opened(parts) => parts,
                        Ahead::Waiting | Ahead::Taken => upload.open_parts(),
                    };
                    let result = prepare(&shared, upload, parts);
                    *lock(&slots[i]) = Some(result);
                }
            });
        }
    });
    log::debug!("prepared {n} uploads in {:?}", started.elapsed());
    Ok(slots.into_iter().filter_map(|slot| take(&slot)).collect())
}

/// How much of each part the read-ahead asks the kernel to read: all of a small upload; the
/// kernel's own read-ahead takes over as a large one is read.
const READ_AHEAD_BYTES: u64 = 1 << 20;

/// An upload's parts as the read-ahead left them for its preparer.
#[derive(Debug)]
enum Ahead {
    /// Not opened yet: the preparer that comes first opens them.
    Waiting,
    /// Opened, their reading started.
    Opened(OpenedParts),
    /// Taken by the preparer.
    Taken,
}

/// Opens the parts of a batch's uploads in order, each with its reading started, for the
/// preparers to take: a part that is not in the page cache (uploads wait in the dropzone for
/// an hour, and the kernel may have dropped their pages) is read beside the others, instead
/// of each preparer waiting for its next file in turn. It begins after the first upload of
/// each preparer (which they open at once) and passes over those the preparers took.
fn read_ahead(inputs: &[Mutex<Option<Upload>>], ahead: &[Mutex<Ahead>], skip: usize) {
    for (input, slot) in inputs.iter().zip(ahead).skip(skip) {
        // Holding the slot keeps its preparer waiting for the opens, not opening them again.
        let mut slot = lock(slot);
        if !matches!(*slot, Ahead::Waiting) {
            continue;
        }
        let Some(parts) = lock(input).as_ref().map(Upload::open_parts) else {
            continue;
        };
        parts.read_ahead(READ_AHEAD_BYTES);
        *slot = Ahead::Opened(parts);
    }
}

/// The value behind `m`, even if a thread panicked holding it (each slot is written whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What every prepare thread shares: set up once per batch, not once per upload.
pub(super) struct PrepareContext<'a> {
    pub(super) config: &'a Config,
    pub(super) content: &'a dyn Content,
    pub(super) publisher: Publisher,
    pub(super) archive_dev: Option<u64>,
    /// The batch's threads.
    pub(super) threads: usize,
    /// Helper threads each upload's compression may use beyond its own: the threads the
    /// uploads of a small batch leave idle, for the blocks of a large upload.
    pub(super) block_threads: usize,
}

/// An upload of at least this many bytes is compressed on as many helper threads as the batch
/// has, beside the other preparers' (the scheduler shares the cores): a preparer that is done
/// with its uploads then lends its core to the blocks of one still compressing, instead of
/// idling for the rest of it (two 64 MiB uploads on two cores left one idle for 0.2 to 0.35 s
/// at the end of each batch). Below it, the helpers' start would cost more than the idle tail
/// of one upload.
const LARGE_UPLOAD: u64 = 4 << 20;

impl PrepareContext<'_> {
    /// The helper threads for the compression of an upload of `len` bytes.
    fn helpers_for(&self, len: u64) -> usize {
        if len >= LARGE_UPLOAD {
            self.threads
        } else {
            self.block_threads
        }
    }
}

pub(super) fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    lock(m).take()
}

/// Validation common to a real pass and a dry run: the host name and the safely opened `.out`.
/// `parts` are the upload's `.env` and `.out`, opened ([`Upload::open_parts`]).
pub(super) fn open_checked(
    upload: &Upload,
    parts: OpenedParts,
) -> Result<(Hostname, File, u64, Vec<Manifest>), String> {
    let host = upload.hostname_in(parts.env)?;
    let manifests = upload.manifests()?;
    // Opening checked that it is the very file the scan saw, size included.
    let out = parts.out.map_err(|e| format!("cannot open .out: {e}"))?;
    let len = upload.out_len();
    let claimed: u64 = manifests.iter().map(|m| m.bytes).sum();
    if !manifests.is_empty() && claimed != len {
        return Err(format!(
            "manifest claims {claimed} bytes in {} chunk(s), .out has {len}",
            manifests.len()
        ));
    }
    Ok((host, out, len, manifests))
}

/// Whether a damaged upload has its complete records appended: when configured, for an upload
/// without chunk manifests (a harvest_argus sensor ships a damaged chunk again instead) whose
/// data begins with whole records.
pub(super) fn salvageable(config: &Config, manifests: &[Manifest], valid_len: u64) -> bool {
    config.salvage && manifests.is_empty() && valid_len > 0
}

pub(super) fn archive_name(upload: &Upload, codec: Codec) -> String {
    format!("{}.out{}", upload.stem(), codec.suffix())
}

pub(super) fn already_archived(archive: &Path) -> String {
    format!(
        "{} already exists: this upload looks ingested before (e.g. the journal was removed); not appended again, to avoid doubling",
        EscapedPath(archive)
    )
}

pub(super) fn prepare(shared: &PrepareContext<'_>, upload: Upload, parts: OpenedParts) -> Prepared {
    let config = shared.config;
    let (host, out, len, manifests) = match open_checked(&upload, parts) {
        Ok(v) => v,
        Err(reason) => return Prepared::Refused(upload, reason),
    };
    let codec = config.archive_codec;
    let name = archive_name(&upload, codec);
    if name.len() > 255 {
        let reason = format!(
            "its archive name would be {} bytes long, more than a file name can be",
            name.len()
        );
        return Prepared::Refused(upload, reason);
    }
    // Salvage keeps the whole upload in the quarantine, so its archive must be a copy.
    let move_only = codec.compression() == Compression::None
        && !config.salvage
        && shared.archive_dev.is_some()
        && out.metadata().map(|m| m.dev()).ok() == shared.archive_dev;
    // An archive name taken before (the upload was ingested before, and the journal removed,
    // say) is not looked for: it almost never is, and the rename that puts the archive in
    // place finds it, and refuses (`commit`).
    let (archive, verified) = if move_only {
        let archive_path = config.archive_dir.join(&name);
        let v = verify(
            &out,
            len,
            &manifests,
            &mut io::sink(),
            false,
            shared.content.check(),
        );
        (Some(Archive::Move(archive_path)), v)
    } else {
        let staged = match shared.publisher.stage_optimistic(&name) {
            Ok(s) => s,
            // A stem so long that its archive name cannot exist: the upload's problem, not ours.
            Err(e @ argus_core::Error::InvalidName { .. }) => {
                return Prepared::Refused(upload, format!("cannot be archived: {e}"));
            }
            Err(e) => return failed(upload, Action::Archive, e),
        };
        let mut staged = staged;
        let v = {
            let mut sink = io::BufWriter::with_capacity(buffer_size(len), &mut staged);
            let mut encoder = codec.parallel_encoder(&mut sink, shared.helpers_for(len));
            let v = verify(
                &out,
                len,
                &manifests,
                &mut encoder,
                config.salvage,
                shared.content.check(),
            );
            // A salvaged upload is archived whole, like any other.
            let archived = match &v {
                Ok(_) => true,
                Err(VerifyError::Damaged { valid_len, .. }) => {
                    salvageable(config, &manifests, *valid_len)
                }
                Err(_) => false,
            };
            let finished = archived.then(|| encoder.finish().map(drop));
            match (v, finished) {
                (v, Some(Ok(()))) => sink.flush().map_err(VerifyError::Write).and(v),
                (_, Some(Err(e))) => Err(VerifyError::Write(e)),
                (Err(e), None) => Err(e),
                (Ok(_), None) => Err(VerifyError::Write(io::Error::other("unreachable"))),
            }
        };
        (Some(Archive::Staged(staged)), v)
    };
    let mut segments = if len == 0 {
        Vec::new()
    } else {
        vec![ByteRange::new(0, len)]
    };
    let mut salvaged = None;
    let walked = match verified {
        Ok(walked) => walked,
        Err(VerifyError::Damaged {
            reason,
            valid_len,
            records,
            version,
            mars,
            gaps,
        }) if salvageable(config, &manifests, valid_len) => {
            segments = vec![ByteRange::new(0, valid_len)];
            salvaged = Some(format!(
                "{reason}; its first {valid_len} bytes ({records} complete records) were appended (damaged_uploads = \"salvage\")"
            ));
            Walked {
                records,
                version,
                mars,
                gaps,
            }
        }
        Err(VerifyError::Refused(reason) | VerifyError::Damaged { reason, .. }) => {
            return Prepared::Refused(upload, reason);
        }
        // The .out is on our own disk and was opened fine: failing to read it (EIO) is our
        // side's failure, not the upload's. Stop; the upload waits for the next run.
        Err(VerifyError::Read(e)) => {
            return failed(upload, Action::Read, e);
        }
        Err(VerifyError::Write(e)) => {
            return failed(upload, Action::Archive, e);
        }
    };
    // Runs of zeros between records hold no data: they stay in the archive only.
    let segments = ByteRange::without(&segments, &walked.gaps);
    let Some(archive) = archive else {
        return failed(upload, Action::Archive, "no archive was written");
    };
    let day = upload.day();
    Prepared::Ready(Box::new(ReadyUpload {
        upload,
        host,
        day,
        out,
        len,
        records: walked.records,
        version: walked.version,
        mars: walked.mars,
        gaps: walked.gaps,
        archive,
        manifests,
        segments,
        new_chunks: Vec::new(),
        salvaged,
        pieces: Vec::new(),
        pieces_of: Vec::new(),
        by_upload_day: false,
    }))
}
