//! Compressing each byte once: a closed day file assembled from the archive members of the
//! uploads it holds.
//!
//! A day file is, piece by piece, uploads that were already compressed into their archives. A
//! gzip (bzip2, xz) file may be a concatenation of members (streams), and every reader (`gzip
//! -dc`, `ra`, [`argus_core::codec`]) reads it whole; so when a day closes, a piece that is a
//! whole upload can take its archive's bytes as they are, and only what is not (a piece of an
//! upload split by record time, a salvaged prefix, an upload without its duplicate chunks, a
//! MAR copied to open a day) is compressed afresh.
//!
//! Which piece came from which archive is a [`Source`] per piece, noted by the commit in a
//! small file per open day (`STATE_DIR/members/DAYNAME`, JSON lines) once the batch is durable,
//! and forgotten with the day. A note is only a hint: each archive is decoded and compared with
//! the day file's bytes before its bytes are taken, so a note that is stale, torn or wrong (an
//! archive purged, replaced or of another format) only means that piece is compressed afresh.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use argus_core::codec::{Codec, Compression};
use argus_core::ranges::read_full;
use serde::{Deserialize, Serialize};

/// The directory of the notes, under the state directory.
const DIR: &str = "members";

/// A piece of a day file that is a whole upload, and the archive holding that upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Where the piece starts in the (plain) day file.
    pub offset: u64,
    /// Its length: the upload's.
    pub len: u64,
    /// The archive's file name in `archive_dir`.
    pub archive: String,
}

/// Where the notes of day `day_name` are kept.
fn note_path(state_dir: &Path, day_name: &str) -> PathBuf {
    state_dir.join(DIR).join(day_name)
}

/// Appends `sources` to the notes of day file `day_name` (one write per day file; not synced:
/// a note lost in a crash only costs a compression).
pub fn note(state_dir: &Path, day_name: &str, sources: &[Source]) -> io::Result<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let mut text = Vec::with_capacity(sources.len() * 96);
    for s in sources {
        serde_json::to_writer(&mut text, s)?;
        text.push(b'\n');
    }
    let path = note_path(state_dir, day_name);
    let open = || fs::OpenOptions::new().create(true).append(true).open(&path);
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(state_dir.join(DIR))?;
            open()?
        }
        other => other?,
    };
    file.write_all(&text)
}

/// The notes of day file `day_name`, by offset; lines that do not read (a torn last line) are
/// left out; empty when there are none.
pub fn noted(state_dir: &Path, day_name: &str) -> Vec<Source> {
    let Ok(file) = File::open(note_path(state_dir, day_name)) else {
        return Vec::new();
    };
    let mut sources: Vec<Source> = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    sources.sort_by_key(|s| s.offset);
    sources
}

/// Forgets the notes of day file `day_name` (once it is compressed).
pub fn forget(state_dir: &Path, day_name: &str) {
    match fs::remove_file(note_path(state_dir, day_name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => log::warn!(
            "cannot remove the notes {}: {e}",
            note_path(state_dir, day_name).display()
        ),
        _ => {}
    }
}

/// Forgets the notes of every day `open` says is no longer a plain day file (compressed by
/// hand, removed, or noted before the day files' codec changed). Costs a listing of the notes,
/// which only open days have.
pub fn prune(state_dir: &Path, open: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(state_dir.join(DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(name) = name.to_str()
            && !open(name)
        {
            forget(state_dir, name);
        }
    }
}

/// What an assembly did: bytes of the day file taken from archives, and compressed afresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// Bytes of the day file whose compressed form was taken from an archive.
    pub reused: u64,
    /// Bytes compressed afresh.
    pub compressed: u64,
}

/// Writes the compressed form of `day` (a plain day file of `len` bytes) to `out` with `codec`:
/// each piece of `sources` whose archive in `archive_dir` decodes to exactly the piece's bytes
/// is copied from the archive; everything else is compressed, one member per stretch between
/// them. Decodes to exactly the day file's bytes, whatever the notes say.
pub fn assemble(
    day: &File,
    len: u64,
    codec: Codec,
    archive_dir: &Path,
    sources: &[Source],
    out: &mut impl Write,
) -> io::Result<Assembled> {
    let mut done = Assembled::default();
    let mut at = 0;
    for s in sources {
        let Some(end) = s.offset.checked_add(s.len) else {
            continue;
        };
        if s.offset < at || end > len || s.len == 0 {
            continue;
        }
        let archive = match reusable(day, s, codec, archive_dir) {
            Ok(Some(archive)) => archive,
            Ok(None) => continue,
            Err(e) => {
                log::debug!("archive {} not reused: {e}", s.archive);
                continue;
            }
        };
        if s.offset > at {
            compress_range(day, at, s.offset - at, codec, out)?;
            done.compressed += s.offset - at;
        }
        io::copy(&mut BufReader::with_capacity(128 * 1024, archive), out)?;
        done.reused += s.len;
        at = end;
        argus_core::failpoint::hit("day-member");
    }
    if at < len || (at == 0 && len == 0) {
        compress_range(day, at, len - at, codec, out)?;
        done.compressed += len - at;
    }
    Ok(done)
}

/// The archive of `s`, opened at its start, when it is in `codec`'s format and decodes to
/// exactly the bytes of the day file it stands for.
fn reusable(day: &File, s: &Source, codec: Codec, archive_dir: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if s.archive.contains('/') || s.archive.starts_with('.') {
        return Ok(None);
    }
    let archive = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(archive_dir.join(&s.archive))?;
    let mut reader = BufReader::with_capacity(128 * 1024, &archive);
    if Compression::sniff(reader.fill_buf()?) != codec.compression() {
        return Ok(None);
    }
    let mut decoded = codec.compression().decoder(reader);
    let mut theirs = vec![0u8; 64 * 1024];
    let mut ours = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    loop {
        let n = read_full(&mut decoded, &mut theirs)?;
        if n == 0 {
            break;
        }
        if at + n as u64 > s.len {
            return Ok(None);
        }
        day.read_exact_at(&mut ours[..n], s.offset + at)?;
        if ours[..n] != theirs[..n] {
            return Ok(None);
        }
        at += n as u64;
    }
    if at != s.len {
        return Ok(None);
    }
    // The very file checked, from its start.
    (&archive).seek(io::SeekFrom::Start(0))?;
    Ok(Some(archive))
}

/// Compresses `len` bytes of `day` from `offset` as one member.
fn compress_range(
    day: &File,
    offset: u64,
    len: u64,
    codec: Codec,
    out: &mut impl Write,
) -> io::Result<()> {
    let range = [argus_core::ranges::ByteRange::new(offset, len)];
    let mut reader =
        BufReader::with_capacity(256 * 1024, argus_core::ranges::FileRanges::new(day, &range));
    let mut encoder = codec.encoder(&mut *out);
    let copied = io::copy(&mut reader, &mut encoder)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the day file ended after {copied} of {len} bytes"),
        ));
    }
    encoder.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = Codec::new(Compression::Gzip, 6)
            .expect("gzip 6")
            .encoder(Vec::new());
        e.write_all(data).expect("compress");
        e.finish().expect("finish")
    }

    fn decode(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Compression::Gzip
            .decoder(data)
            .read_to_end(&mut out)
            .expect("decode");
        out
    }

    #[test]
    fn wrong_torn_and_overlapping_notes_only_cost_a_compression() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uploads: Vec<Vec<u8>> = (0..4u8)
            .map(|i| (0..5000u32).map(|j| (j % 251) as u8 ^ i).collect())
            .collect();
        let day_path = dir.path().join("day");
        fs::write(&day_path, uploads.concat()).expect("day");
        let mut sources = Vec::new();
        let mut offset = 0;
        for (i, u) in uploads.iter().enumerate() {
            let name = format!("u{i}.out.gz");
            fs::write(dir.path().join(&name), gzip(u)).expect("archive");
            sources.push(Source {
                offset,
                len: u.len() as u64,
                archive: name,
            });
            offset += u.len() as u64;
        }
        note(dir.path(), "day", &sources).expect("note");
        // A torn line, as a crash mid-append leaves, is left out.
        let mut notes = fs::OpenOptions::new()
            .append(true)
            .open(note_path(dir.path(), "day"))
            .expect("notes");
        notes.write_all(b"{\"offset\":5000,\"le").expect("torn");
        assert_eq!(noted(dir.path(), "day"), sources);

        // Upload 1's archive holds other bytes; upload 2's note overlaps upload 1's; a note
        // points out of the directory, and one past the day's end.
        fs::write(dir.path().join("u1.out.gz"), gzip(&uploads[0])).expect("replace");
        let mut wrong = sources.clone();
        wrong.insert(
            2,
            Source {
                offset: 4000,
                len: 6000,
                archive: "u2.out.gz".into(),
            },
        );
        wrong.push(Source {
            offset: 0,
            len: 10,
            archive: "../day".into(),
        });
        wrong.push(Source {
            offset: 19_000,
            len: 5000,
            archive: "u3.out.gz".into(),
        });
        wrong.sort_by_key(|s| s.offset);
        let day = File::open(&day_path).expect("day");
        let mut out = Vec::new();
        let done = assemble(
            &day,
            20_000,
            Codec::new(Compression::Gzip, 6).expect("gzip 6"),
            dir.path(),
            &wrong,
            &mut out,
        )
        .expect("assemble");
        assert_eq!(decode(&out), uploads.concat());
        assert_eq!(
            done,
            Assembled {
                reused: 15_000,
                compressed: 5000
            }
        );
        forget(dir.path(), "day");
        assert_eq!(noted(dir.path(), "day"), Vec::new());
    }
}
