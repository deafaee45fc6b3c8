//! Recovery at start: executes `journal::plan_recovery` for the entries an interrupted batch
//! left: day files truncated back, data cut off re-appended, finished groups removed, and the
//! ledger and the hook queue told of the uploads that completed.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;

use argus_core::append::{append_encoded_exact, truncate_back};
use argus_core::codec::{Codec, Compression, open_decoded};
use argus_core::escape::EscapedPath;
use argus_core::ranges::{ByteRange, StreamRanges};

use crate::config::HookPolicy;
use crate::dropzone;
use crate::hooks::Queue;
use crate::journal::{self, ArchiveFrom, Entry, Facts, Journal, Source};
use crate::ledger::{Fact, Ledger};

use crate::error::{Action, Context, Error, Store};

/// Acts on the journal of an interrupted run (see [`journal::plan_recovery`]). Returns the number
/// of uploads it concerned.
pub(super) fn recover(
    journal: &mut Journal,
    entries: &[Entry],
    ledger: &mut Ledger,
    hooks: (&Queue, &HookPolicy),
) -> Result<usize, Error> {
    if entries.is_empty() {
        journal.clear().or_store(Action::Clear, Store::Journal)?;
        return Ok(0);
    }
    let plan = journal::plan_recovery(entries, |e| {
        Facts::of(e, |path| fs::symlink_metadata(path).is_ok())
    });
    // Day files are opened as a pass opens them: a symlink put in place of one is refused,
    // never followed (its target is not ours to truncate or append to).
    for (path, size) in &plan.truncate {
        match OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if len > *size {
                    log::warn!(
                        "recovery: truncating {} from {len} back to {size} bytes (an interrupted append)",
                        EscapedPath(path)
                    );
                }
                truncate_back(&file, *size).or_file(Action::Truncate, path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).or_file(Action::Open, path),
        }
    }
    for (day, source, segments) in &plan.reappend {
        let file = crate::dayfile::open_for_append(day).or_file(Action::Open, day)?;
        let (_, compression) = Compression::split_suffix(&day.to_string_lossy());
        let codec = if compression == Compression::None {
            Codec::NONE
        } else {
            compression.codec()
        };
        // Exactly the ranges appended the first time: chunks ingested before (a reshipped
        // chunk) were left out then and stay out now.
        let source: io::Result<Box<dyn Read>> = match source {
            Source::Out(out) => OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(out)
                .map(|f| Box::new(f) as Box<dyn Read>),
            Source::Archive(archive) => open_decoded(archive)
                .map(|d| Box::new(d) as Box<dyn Read>)
                .map_err(io::Error::other),
        };
        let want = ByteRange::total(segments);
        let result = source.and_then(|src| {
            append_encoded_exact(&file, StreamRanges::new(src, segments), codec, want)
        });
        result.or_file(Action::Reappend, day)?;
        file.sync_data().or_file(Action::Sync, day)?;
        log::warn!(
            "recovery: appended again to {} data cut off by the rollback",
            EscapedPath(day)
        );
    }
    for e in &plan.lost {
        log::error!(
            "recovery: the data of {} is in neither the dropzone nor the archive; it cannot be restored",
            EscapedPath(&e.rdy)
        );
    }
    for e in &plan.remove {
        dropzone::remove_by_rdy(&e.rdy)?;
        log::info!("recovery: finished removing {}", EscapedPath(&e.rdy));
    }
    // Uploads that completed are known to the ledger (again: recording is idempotent).
    let facts: Vec<Fact> = journal::facts(entries.iter().filter(|e| !plan.redo.contains(e)));
    ledger
        .record(&facts)
        .or_store(Action::Write, Store::Ledger)?;
    // Their `ingested` hook events too (an event already queued is found so and kept).
    let complete: Vec<Entry> = entries
        .iter()
        .filter(|e| !plan.redo.contains(e))
        .cloned()
        .collect();
    let events = crate::hooks::ingested(hooks.1, &complete, time::OffsetDateTime::now_utc());
    hooks
        .0
        .enqueue(&events)
        .or_store(Action::Write, Store::HookQueue)?;
    for e in &plan.redo {
        log::warn!(
            "recovery: rolled back the interrupted ingest of {}; it stays in the dropzone and is ingested again",
            EscapedPath(&e.rdy)
        );
    }
    journal.clear().or_store(Action::Clear, Store::Journal)?;
    // Only now may the archives' temporary files go: while the journal named them, they told
    // which archives were in place. One left by a crash here goes with the start's cleaning;
    // one that cannot be removed is an error, so that no clean end is marked over it.
    let mut failed = None;
    for e in entries {
        if let ArchiveFrom::Temp(temp) = &e.archive_from {
            match fs::remove_file(temp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed.get_or_insert((e, temp));
                }
            }
        }
    }
    if let Some((e, temp)) = failed {
        return Err(e).or_file(Action::Clear, temp);
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn entry(dir: &Path, stem: &str, temp: PathBuf) -> Entry {
        Entry {
            rdy: dir.join(format!("{stem}.rdy")),
            out: dir.join(format!("{stem}.out")),
            day: None,
            size_before: 0,
            archive: dir.join(format!("{stem}.out.gz")),
            client: "c".to_owned(),
            at: 1_800_000_000,
            bytes: 0,
            chunks: Vec::new(),
            segments: Vec::new(),
            version: None,
            records: None,
            health: None,
            archive_from: ArchiveFrom::Temp(temp),
        }
    }

    #[test]
    fn temporary_archives_go_after_the_journal_and_one_that_stays_is_an_error() {
        let dir = tempfile::tempdir().expect("a directory");
        let state = dir.path().join("state");
        fs::create_dir(&state).expect("the state directory");
        // One temporary archive is a file; the other cannot be removed as one.
        let gone = dir.path().join(".argus-tmp.a.c_1.out.gz");
        fs::write(&gone, b"half an archive").expect("a temporary archive");
        let stuck = dir.path().join(".argus-tmp.b.c_2.out.gz");
        fs::create_dir(&stuck).expect("a directory in its place");
        let entries = [
            entry(dir.path(), "c_1", gone.clone()),
            entry(dir.path(), "c_2", stuck.clone()),
        ];
        let (mut journal, _) = Journal::open(&state).expect("the journal");
        journal.record(&entries).expect("recorded");
        let mut ledger = Ledger::open(&state).expect("the ledger");
        let queue = Queue::open(&state).expect("the hook queue");
        let policy = crate::config::Config::new(
            dir.path().join("in"),
            dir.path().join("oper"),
            dir.path().join("arch"),
            vec!["c".to_owned()],
        )
        .hooks;
        let error = recover(&mut journal, &entries, &mut ledger, (&queue, &policy))
            .expect_err("a temporary archive stays");
        assert!(error.to_string().contains(".argus-tmp.b.c_2"), "{error}");
        assert!(!gone.exists(), "the other one goes all the same");
        assert!(stuck.exists());
        let (_, left) = Journal::open(&state).expect("the journal");
        assert!(left.is_empty(), "cleared before the temporary archives go");
    }
}
