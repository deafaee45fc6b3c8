//! The floors a pass is measured against in the same run: the data floor (compressing the same
//! bytes once with `libdeflate-gzip -6`, on every core), the metadata floor (only the calls no
//! design can avoid: create each archive file, remove each upload's files, one sync), and what
//! a pass costs in CPU time and in system calls per upload (`strace -f -c`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// CPU time (user + system) of the children reaped so far.
pub(crate) fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(
                u64::try_from(tv.tv_sec()).unwrap_or(0),
                u32::try_from(tv.tv_usec()).unwrap_or(0) * 1000,
            )
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// The cores a floor may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// The data floor: every file of `files` compressed once by `libdeflate-gzip -6` (kept, to
/// `FILE.gz`), the files spread over one process per core. `None` without libdeflate-gzip
/// (Debian package `libdeflate-tools`).
pub(crate) fn data(files: &[PathBuf]) -> Result<Option<Duration>, String> {
    if !crate::util::have_exact("libdeflate-gzip", "-V") {
        return Ok(None);
    }
    let n = cores().min(files.len()).max(1);
    let shares: Vec<Vec<&PathBuf>> = (0..n)
        .map(|i| files.iter().skip(i).step_by(n).collect())
        .collect();
    let began = Instant::now();
    let children: Vec<std::process::Child> = shares
        .iter()
        .filter(|s| !s.is_empty())
        .map(|share| {
            Command::new("libdeflate-gzip")
                .args(["-6", "-k", "-f"])
                .args(share)
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run libdeflate-gzip: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("libdeflate-gzip failed: {status}"));
        }
    }
    Ok(Some(began.elapsed()))
}

/// Both floors at once, as one pass would have to do them: the data floor over the `.out` files
/// of `data_groups` while the metadata floor runs over `metadata_groups` (another copy of the
/// same uploads: the data floor keeps reading what the other removes). `None` without
/// libdeflate-gzip.
pub(crate) fn both(
    data_groups: &[Vec<PathBuf>],
    metadata_groups: &[Vec<PathBuf>],
    archive: &Path,
) -> Result<Option<Duration>, String> {
    let outs = outs(data_groups);
    let began = Instant::now();
    let (data, metadata) = std::thread::scope(|s| {
        let data = s.spawn(|| data(&outs));
        let metadata = metadata(metadata_groups, archive);
        let data = data
            .join()
            .unwrap_or_else(|_| Err("a thread panicked".into()));
        (data, metadata)
    });
    metadata?;
    Ok(data?.map(|_| began.elapsed()))
}

/// The data floor of `files` while the same files are appended to `day` and made durable, at
/// once: the least a pass of large uploads does (it also writes each upload to a day file).
/// `None` without libdeflate-gzip.
pub(crate) fn data_with_appends(files: &[PathBuf], day: &Path) -> Result<Option<Duration>, String> {
    let began = Instant::now();
    let (data, appended) = std::thread::scope(|s| {
        let data = s.spawn(|| data(files));
        let appended = (|| -> std::io::Result<()> {
            let mut out = fs::OpenOptions::new().create(true).append(true).open(day)?;
            for f in files {
                std::io::copy(&mut fs::File::open(f)?, &mut out)?;
            }
            out.sync_data()
        })();
        let data = data
            .join()
            .unwrap_or_else(|_| Err("a thread panicked".into()));
        (data, appended)
    });
    appended.map_err(|e| format!("appending to {}: {e}", day.display()))?;
    Ok(data?.map(|_| began.elapsed()))
}

/// The metadata floor on the file system of `dir`: for each of `groups` (the files of one
/// upload each), one archive file created in `archive` and the group's files removed, on one
/// thread per core, then one `sync`.
pub(crate) fn metadata(groups: &[Vec<PathBuf>], archive: &Path) -> Result<Duration, String> {
    fs::create_dir_all(archive).map_err(|e| e.to_string())?;
    let n = cores();
    let began = Instant::now();
    let failed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || -> Result<(), String> {
                    for (j, group) in groups.iter().enumerate().skip(i).step_by(n) {
                        fs::File::create_new(archive.join(format!("{j}.out.gz")))
                            .map_err(|e| e.to_string())?;
                        for f in group {
                            fs::remove_file(f).map_err(|e| format!("{}: {e}", f.display()))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .find_map(Result::err)
    });
    if let Some(e) = failed {
        return Err(format!("the metadata floor: {e}"));
    }
    nix::unistd::sync();
    Ok(began.elapsed())
}

/// The files of each upload group in a dropzone, by stem.
pub(crate) fn groups(dropzone: &Path) -> Result<Vec<Vec<PathBuf>>, String> {
    let mut by_stem: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(dropzone).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some((stem, _)) = name.as_deref().and_then(|n| n.rsplit_once('.')) {
            by_stem.entry(stem.to_owned()).or_default().push(path);
        }
    }
    Ok(by_stem.into_values().collect())
}

/// The `.out` file of each of `groups`.
pub(crate) fn outs(groups: &[Vec<PathBuf>]) -> Vec<PathBuf> {
    groups
        .iter()
        .flatten()
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .cloned()
        .collect()
}

/// What `strace -f -c` counted over one run: calls and failed calls per system call.
pub(crate) struct Syscalls {
    pub(crate) calls: BTreeMap<String, (u64, u64)>,
}

impl Syscalls {
    pub(crate) fn total(&self) -> (u64, u64) {
        self.calls
            .values()
            .fold((0, 0), |(c, e), (cc, ee)| (c + cc, e + ee))
    }

    /// `total/n (failed/n): name calls/n, ...` for the calls made at least once per `n`.
    pub(crate) fn per(&self, n: usize) -> String {
        let n = n.max(1) as f64;
        let (calls, errors) = self.total();
        let mut top: Vec<(&String, &(u64, u64))> = self.calls.iter().collect();
        top.sort_by_key(|b| std::cmp::Reverse(b.1.0));
        let each: Vec<String> = top
            .iter()
            .filter(|(_, (c, _))| *c as f64 / n >= 0.05)
            .map(|(name, (c, e))| {
                if *e > 0 {
                    format!("{name} {:.2} ({:.2} failed)", *c as f64 / n, *e as f64 / n)
                } else {
                    format!("{name} {:.2}", *c as f64 / n)
                }
            })
            .collect();
        format!(
            "{:.1} calls ({:.2} failed): {}",
            calls as f64 / n,
            errors as f64 / n,
            each.join(", ")
        )
    }
}

/// Runs `cmd` under `strace -f -c` and returns its counts; `None` without strace.
pub(crate) fn syscalls(cmd: Command, out: &Path) -> Result<Option<Syscalls>, String> {
    if !crate::util::have_exact("strace", "-V") {
        return Ok(None);
    }
    let program = cmd.get_program().to_owned();
    let mut strace = Command::new("strace");
    strace
        .args(["-f", "-c", "-U", "calls,errors,name", "-o"])
        .arg(out)
        .arg(&program)
        .args(cmd.get_args())
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = strace.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("strace of {program:?} failed: {status}"));
    }
    let text = fs::read_to_string(out).map_err(|e| e.to_string())?;
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "calls errors name" rows; the header, rules and the total line do not parse.
        match fields.as_slice() {
            [c, name] if *name != "total" => {
                if let Ok(c) = c.parse() {
                    calls.insert((*name).to_owned(), (c, 0));
                }
            }
            [c, e, name] if *name != "total" => {
                if let (Ok(c), Ok(e)) = (c.parse(), e.parse()) {
                    calls.insert((*name).to_owned(), (c, e));
                }
            }
            _ => {}
        }
    }
    if calls.is_empty() {
        return Err(format!("no counts in {}", out.display()));
    }
    Ok(Some(Syscalls { calls }))
}
