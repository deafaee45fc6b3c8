//! `cargo xtask dist`: the release tarball `target/dist/argus-webjob-VERSION-TARGET.tar.gz` and
//! its `SHA256SUMS`.
//!
//! The tarball is reproducible: the same binaries and sources give the same bytes. Its tar
//! stream is written here (ustar: sorted entries, owner root:root as 0:0, mode 0755 for
//! directories and binaries and 0644 for the rest, every mtime `SOURCE_DATE_EPOCH`, defaulting
//! to the last commit's time) and gzipped with a fixed header (no name, no time). Man pages and
//! completions are generated from the clap definitions of both binaries, so they never drift
//! from the programs; new subcommands are picked up without a change here.
//!
//! [`assemble`] takes the two binaries as input, so the tests build the tarball from the debug
//! binaries and `dist` from the release ones.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap_complete::aot::{Shell, generate};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use sha2::{Digest, Sha256};

const PRODUCT: &str = "argus-webjob";

/// The two programs, in the order their pages are listed.
const PROGRAMS: [&str; 2] = ["harvest_argus", "process_argus"];

/// Everything the tarball is made of besides the repository's files.
#[derive(Clone, Debug)]
pub(crate) struct Inputs {
    pub(crate) harvest_bin: PathBuf,
    pub(crate) process_bin: PathBuf,
    pub(crate) version: String,
    pub(crate) target: String,
    /// Seconds since the epoch: the mtime of every entry and the date of the man pages.
    pub(crate) mtime: u64,
}

impl Inputs {
    /// The tarball's name without `.tar.gz`, also its top directory.
    pub(crate) fn stem(&self) -> String {
        format!("{PRODUCT}-{}-{}", self.version, self.target)
    }
}

/// What [`assemble`] wrote.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) tarball: PathBuf,
    pub(crate) sums: PathBuf,
    pub(crate) sha256: String,
    /// Every entry's path inside the tarball, in order.
    pub(crate) paths: Vec<String>,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!(
            "dist takes no arguments (got {extra:?}); set SOURCE_DATE_EPOCH to fix the time stamps"
        ));
    }
    let dir = crate::util::build(true)?;
    let inputs = Inputs {
        harvest_bin: dir.join("harvest_argus"),
        process_bin: dir.join("process_argus"),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        target: host_target()?,
        mtime: source_date_epoch()?,
    };
    let built = assemble(&inputs, &crate::root().join("target").join("dist"))?;
    for path in &built.paths {
        println!("  {path}");
    }
    println!("{}", built.tarball.display());
    println!("{}", built.sums.display());
    println!("sha256 {}", built.sha256);
    Ok(())
}

/// The target triple rustc builds for by default (the one `cargo build` used).
pub(crate) fn host_target() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run {rustc} -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| format!("{rustc} -vV printed no host triple"))
}

/// `SOURCE_DATE_EPOCH`, else the committer time of `HEAD`.
pub(crate) fn source_date_epoch() -> Result<u64, String> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(crate::root())
        .output()
        .map_err(|e| format!("cannot run git ({e}); set SOURCE_DATE_EPOCH"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err("git log failed (not a git checkout?); set SOURCE_DATE_EPOCH".to_owned());
    }
    text.trim()
        .parse()
        .map_err(|_| format!("git log printed {text:?}, not a time; set SOURCE_DATE_EPOCH"))
}

/// Writes `OUT_DIR/STEM.tar.gz` and `OUT_DIR/SHA256SUMS`.
pub(crate) fn assemble(inputs: &Inputs, out_dir: &Path) -> Result<Built, String> {
    let files = contents(inputs)?;
    let stem = inputs.stem();
    let entries = with_directories(&stem, files);
    let tar = ustar(&entries, inputs.mtime)?;
    let gz = gzip(&tar)?;
    let sha256 = argus_core::manifest::hex(&Sha256::digest(&gz));

    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let name = format!("{stem}.tar.gz");
    let tarball = out_dir.join(&name);
    write_atomically(&tarball, &gz)?;
    let sums = out_dir.join("SHA256SUMS");
    write_atomically(&sums, format!("{sha256}  {name}\n").as_bytes())?;
    Ok(Built {
        tarball,
        sums,
        sha256,
        paths: entries.into_iter().map(|e| e.path).collect(),
    })
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A file of the tarball: its path below the top directory, whether it is executable, its bytes.
pub(crate) struct File {
    pub(crate) path: String,
    pub(crate) executable: bool,
    pub(crate) data: Vec<u8>,
}

impl File {
    fn new(path: impl Into<String>, data: Vec<u8>) -> Self {
        File {
            path: path.into(),
            executable: false,
            data,
        }
    }
}

/// Every file of the tarball, generated or read from the repository.
fn contents(inputs: &Inputs) -> Result<Vec<File>, String> {
    let root = crate::root();
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut files = Vec::new();
    for (name, bin) in PROGRAMS
        .iter()
        .zip([&inputs.harvest_bin, &inputs.process_bin])
    {
        files.push(File {
            path: format!("bin/{name}"),
            executable: true,
            data: read(bin)?,
        });
    }
    for (to, from) in [
        ("README.md", "README.md"),
        ("LICENSE", "LICENSE"),
        ("INSTALL", "dist/INSTALL"),
        ("docs/OPERATIONS.md", "docs/OPERATIONS.md"),
    ] {
        files.push(File::new(to, read(&root.join(from))?));
    }
    for dir in ["examples", "systemd"] {
        let from = root.join("dist").join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&from)
            .map_err(|e| format!("cannot read {}: {e}", from.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            files.push(File::new(format!("{dir}/{name}"), read(&from.join(&name))?));
        }
    }
    files.extend(man_and_completions(inputs.mtime, &inputs.version)?);
    Ok(files)
}

/// The man pages (`share/man/man1/PAGE`) and shell completions (`share/bash-completion/...`,
/// `share/zsh/site-functions/...`, `share/fish/vendor_completions.d/...`) of both programs,
/// rendered from their clap definitions; the `.deb`s install the same.
pub(crate) fn man_and_completions(mtime: u64, version: &str) -> Result<Vec<File>, String> {
    let mut files = Vec::new();
    let date = man_date(mtime)?;
    let commands = commands();
    let all_pages: Vec<String> = commands.iter().flat_map(page_names).collect();
    for cmd in &commands {
        for (name, page) in man_pages(cmd, &date, version, &all_pages)? {
            files.push(File::new(format!("share/man/man1/{name}"), page));
        }
        let name = cmd.get_name().to_owned();
        for (shell, path) in [
            (
                Shell::Bash,
                format!("share/bash-completion/completions/{name}"),
            ),
            (Shell::Zsh, format!("share/zsh/site-functions/_{name}")),
            (
                Shell::Fish,
                format!("share/fish/vendor_completions.d/{name}.fish"),
            ),
        ] {
            let mut buf = Vec::new();
            generate(shell, &mut cmd.clone(), &name, &mut buf);
            files.push(File::new(path, buf));
        }
    }
    Ok(files)
}

/// Both programs' clap commands, built, without the `help` subcommand (it needs no page).
pub(crate) fn commands() -> Vec<clap::Command> {
    [harvest_argus::cli::command(), process_argus::cli::command()]
        .into_iter()
        .map(|cmd| {
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            cmd
        })
        .collect()
}

/// The man page names of a command and its subcommands (`process_argus-watch`).
pub(crate) fn page_names(cmd: &clap::Command) -> Vec<String> {
    let mut names = vec![display_name(cmd)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        names.extend(page_names(sub));
    }
    names
}

fn display_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}

/// `YYYY-MM-DD` of a time stamp, for the man pages.
fn man_date(mtime: u64) -> Result<String, String> {
    let seconds = i64::try_from(mtime).map_err(|_| format!("time stamp {mtime} is too large"))?;
    let date = time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|e| format!("time stamp {mtime}: {e}"))?
        .date();
    Ok(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// One page per command and subcommand, each ending with a SEE ALSO section naming the others.
fn man_pages(
    cmd: &clap::Command,
    date: &str,
    version: &str,
    all_pages: &[String],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut pages = Vec::new();
    let man = Man::new(cmd.clone())
        .date(date)
        .source(format!("{PRODUCT} {version}"))
        .manual(PRODUCT);
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| format!("cannot render the man page of {}: {e}", cmd.get_name()))?;
    let this = display_name(cmd);
    let mut see_also = Vec::new();
    for (i, other) in all_pages.iter().filter(|p| **p != this).enumerate() {
        if i > 0 {
            see_also.push(roman(", "));
        }
        see_also.push(bold(other.as_str()));
        see_also.push(roman("(1)"));
    }
    page.extend_from_slice(
        Roff::new()
            .control("SH", ["SEE ALSO"])
            .text(see_also)
            .to_roff()
            .as_bytes(),
    );
    pages.push((man.get_filename(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.extend(man_pages(sub, date, version, all_pages)?);
    }
    Ok(pages)
}

/// A tar entry: a directory (no data, path ending in `/`) or a file.
struct Entry {
    path: String,
    mode: u32,
    data: Option<Vec<u8>>,
}

/// The files below `top/`, with an entry for every directory, sorted by path.
fn with_directories(top: &str, files: Vec<File>) -> Vec<Entry> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut dir = |path: String| {
        entries.entry(path.clone()).or_insert(Entry {
            path,
            mode: 0o755,
            data: None,
        });
    };
    dir(format!("{top}/"));
    for file in &files {
        let mut parent = String::new();
        for part in file
            .path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            parent.push_str(part);
            parent.push('/');
            dir(format!("{top}/{parent}"));
        }
    }
    for file in files {
        let path = format!("{top}/{}", file.path);
        let mode = if file.executable { 0o755 } else { 0o644 };
        entries.insert(
            path.clone(),
            Entry {
                path,
                mode,
                data: Some(file.data),
            },
        );
    }
    // A BTreeMap of Strings is in byte order, and a directory sorts before what it holds.
    entries.into_values().collect()
}

const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks. Padding to it keeps old tar readers quiet.
const RECORD: usize = 20 * BLOCK;

/// A POSIX ustar stream of `entries`, in the given order, every entry owned by root (0:0).
fn ustar(entries: &[Entry], mtime: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for entry in entries {
        let (kind, size) = match &entry.data {
            Some(data) => (b'0', data.len() as u64),
            None => (b'5', 0),
        };
        out.extend_from_slice(&header(&entry.path, entry.mode, size, mtime, kind)?);
        if let Some(data) = &entry.data {
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(BLOCK), 0);
        }
    }
    // The end: two zero blocks, then zeros to a whole record.
    out.resize(out.len() + 2 * BLOCK, 0);
    out.resize(out.len().next_multiple_of(RECORD), 0);
    Ok(out)
}

fn header(path: &str, mode: u32, size: u64, mtime: u64, kind: u8) -> Result<[u8; BLOCK], String> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = split_path(path)?;
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode), path)?;
    octal(&mut h[108..116], 0, path)?; // uid
    octal(&mut h[116..124], 0, path)?; // gid
    octal(&mut h[124..136], size, path)?;
    octal(&mut h[136..148], mtime, path)?;
    h[148..156].fill(b' '); // the checksum counts its own field as spaces
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], 0, path)?; // devmajor
    octal(&mut h[337..345], 0, path)?; // devminor
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    // Six octal digits, NUL, space: the traditional form every reader accepts.
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// Splits a path into ustar's `prefix` (up to 155 bytes) and `name` (up to 100) at a `/`.
fn split_path(path: &str) -> Result<(&str, &str), String> {
    if !path.is_ascii() {
        return Err(format!("{path:?}: only ASCII names go into the tarball"));
    }
    if path.len() <= 100 {
        return Ok(("", path));
    }
    // The last byte may be the `/` of a directory: split before it.
    let body = &path[..path.len() - 1];
    body.match_indices('/')
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100)
        .ok_or_else(|| format!("{path:?} is too long for a ustar header"))
}

/// A NUL-terminated, zero-padded octal number filling `field`.
fn octal(field: &mut [u8], value: u64, path: &str) -> Result<(), String> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(format!(
            "{path}: {value} does not fit a ustar field of {digits} octal digits"
        ));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// gzip with a fixed header: no file name, no time stamp, OS "Unix".
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("gzip: {e}"))
}

#[cfg(test)]
mod tests;
