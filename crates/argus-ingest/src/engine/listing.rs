//! Names the engine reads back from the directories it fills: a directory's entries, sorted,
//! and the client an archived upload's name belongs to. The purge and `--dry-run` both read
//! them, so they live below both.

use std::fs;
use std::path::Path;

use argus_core::codec::Compression;

use crate::dropzone;

use crate::error::{Action, Context, Error};

/// The client id of an archived upload's name `CLIENT_YYYYMMDDHHMMSS[_...]_JOB.out[.sfx]`.
pub(super) fn archive_client<'a>(name: &'a str, job: &str) -> Option<&'a str> {
    let (base, _) = Compression::split_suffix(name);
    let stem = base.strip_suffix(".out")?;
    stem.strip_suffix(job)?.strip_suffix('_')?;
    dropzone::client_of_stem(stem)
}

/// The names in `dir` that are valid UTF-8 (no name this program writes is not), sorted.
pub(super) fn dir_names(dir: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).or_file(Action::Read, dir)? {
        let entry = entry.or_file(Action::Read, dir)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_give_their_client() {
        let job = "harvest_argus";
        assert_eq!(
            archive_client("client1_20261127000000_harvest_argus.out.gz", job),
            Some("client1")
        );
        assert_eq!(
            archive_client("site_2_20261127000000_4242_harvest_argus.out", job),
            Some("site_2")
        );
        assert_eq!(
            archive_client("a.b-c_20261127000000_x_y_harvest_argus.out.xz", job),
            Some("a.b-c")
        );
        assert_eq!(
            archive_client("client1_20261127000000_other.out.gz", job),
            None
        );
        assert_eq!(
            archive_client("client1_2026112700000_harvest_argus.out", job),
            None
        );
        assert_eq!(
            archive_client("_20261127000000_harvest_argus.out", job),
            None
        );
    }
}
