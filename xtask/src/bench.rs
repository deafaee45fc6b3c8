//! `cargo xtask bench`: process_argus against its baselines, measured in the same run, reported
//! as ratios (never as absolute times, which depend on the machine).
//!
//! - (a) backlog: 2,000 small uploads (one real sample each), the recipe's `process_argus.cfg`
//!   with `gzip -6`: the recipe's own script (from `../shared/seed/`, skipped when absent) against
//!   process_argus on an identical copy. Their day files must come out byte-identical. The
//!   same uploads against the data and metadata floors (`bench/floors.rs`), alone and both at
//!   once, with CPU seconds per uploaded MiB and system calls per upload. process_argus and
//!   the floors are measured three times (`--passes N`) and their medians compared.
//! - (b) large: 8 uploads of 64 MiB, no compression, against `cat UPLOAD >> DAY` and `sync`.
//! - (c) large with gzip -6, against `cat UPLOAD >> DAY`, `gzip -6` of the upload, and `sync`;
//!   and against the data floor, `libdeflate-gzip -6` of the same files on all cores (alone,
//!   and while the files are appended to a day file and synced), with CPU seconds per MiB.
//! - (d) memory: peak RSS for one 512 MiB upload against one of 1 MiB.
//! - (e) rotation: flows lost cutting argus' live output under traffic, the recipe's
//!   harvest script against harvest_argus (see `bench/rotation.rs`).
//! - (f) daemon latency: `.rdy` landing to upload ingested, 60 uploads arriving one by one,
//!   without and with a 30 s hook on every upload
//!   (see `bench/latency.rs`).
//! - (g) walker throughput on argus 5 data against argus 3 data (see `bench/walk.rs`).
//! - (h) the cost of filing by record time: uploads across midnight split over two day files,
//!   against the same uploads by upload day (see `bench/split.rs`).
//! - (i) growth: 5 rounds of 20,000 uploads from 10,000 sensors into one server, the last
//!   round's pass against the first's, and peak RSS (see `bench/growth.rs`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

use crate::util;

mod floors;
mod growth;
mod latency;
mod neighbours;
mod rotation;
mod split;
mod walk;

struct Settings {
    only: Vec<char>,
    small: usize,
    big_mib: usize,
    big_count: usize,
    rss_mib: usize,
    rounds: usize,
    round_uploads: usize,
    sensors: usize,
    /// Uploads of another job beside (a)'s in (j).
    others: usize,
    /// How many times (a) measures process_argus and its floors (their medians are compared).
    passes: usize,
    /// A `process_argus` to measure instead of this tree's (an older build, for an A/B).
    ours: Option<std::path::PathBuf>,
    /// The directory to work in (on the file system to measure), instead of `target/`.
    work: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        only: vec!['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
        small: 2000,
        big_mib: 64,
        big_count: 8,
        rss_mib: 512,
        rounds: 5,
        round_uploads: 20_000,
        sensors: 10_000,
        others: 100_000,
        passes: 3,
        ours: None,
        work: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{arg} needs a value"))
                .cloned()
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{arg}: not a number: {v}"))
        };
        match arg.as_str() {
            "--only" => s.only = value()?.chars().filter(char::is_ascii_alphabetic).collect(),
            "--small" => s.small = number(value()?)?,
            "--big-mib" => s.big_mib = number(value()?)?,
            "--big-count" => s.big_count = number(value()?)?,
            "--rss-mib" => s.rss_mib = number(value()?)?,
            "--rounds" => s.rounds = number(value()?)?,
            "--round-uploads" => s.round_uploads = number(value()?)?,
            "--sensors" => s.sensors = number(value()?)?,
            "--others" => s.others = number(value()?)?,
            "--passes" => s.passes = number(value()?)?,
            "--ours" => s.ours = Some(value()?.into()),
            "--work" => s.work = Some(value()?.into()),
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}\nusage: cargo xtask bench [--only abcdefghij] [--small N] [--big-mib N] [--big-count N] [--rss-mib N] [--rounds N] [--round-uploads N] [--sensors N] [--others N] [--passes N] [--ours PROCESS_ARGUS] [--work DIR]"
                ));
            }
        }
    }
    Ok(s)
}

/// One line of the final table.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) ours: Duration,
    pub(crate) baseline: Duration,
    pub(crate) target: &'static str,
    pub(crate) met: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let settings = parse(args)?;
    let bins = util::build(true)?;
    let ours = settings
        .ours
        .clone()
        .unwrap_or_else(|| bins.join("process_argus"));
    // Under `--work DIR` the parts work in a directory of their own inside DIR, so DIR may be
    // the mount point of the file system to measure.
    let work = match &settings.work {
        Some(dir) => dir.join("argus-bench-work"),
        None => crate::root().join("target/bench-work"),
    };
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if settings.only.contains(&'a') {
        rows.extend(backlog(
            &ours,
            &work.join("a"),
            settings.small,
            settings.passes,
        )?);
    }
    if settings.only.contains(&'b') {
        rows.extend(large(&ours, &work.join("b"), &settings, false)?);
    }
    if settings.only.contains(&'c') {
        rows.extend(large(&ours, &work.join("c"), &settings, true)?);
    }
    if settings.only.contains(&'d') {
        notes.push(memory(&ours, &work.join("d"), settings.rss_mib)?);
    }
    if settings.only.contains(&'e') {
        notes.push(rotation::run(&bins.join("harvest_argus"))?);
    }
    if settings.only.contains(&'f') {
        notes.push(latency::run(&ours, &work.join("f"))?);
    }
    if settings.only.contains(&'h')
        && let Some(note) = split::run(&ours, &work.join("h"))?
    {
        notes.push(note);
    }
    if settings.only.contains(&'i') {
        let shape = growth::Shape {
            rounds: settings.rounds,
            uploads: settings.round_uploads,
            sensors: settings.sensors,
        };
        let (row, note) = growth::run(&ours, &work.join("i"), &shape)?;
        rows.push(row);
        notes.push(note);
    }
    if settings.only.contains(&'j') {
        notes.push(neighbours::run(
            &ours,
            &work.join("j"),
            settings.small,
            settings.others,
        )?);
    }
    if settings.only.contains(&'g') {
        let (row, note) = walk::run(&work.join("g"))?;
        rows.push(row);
        notes.push(note);
    }
    let _ignored = fs::remove_dir_all(&work);

    println!(
        "\n{:<52} {:>10} {:>10} {:>8}  target",
        "benchmark", "ours s", "base s", "ratio"
    );
    for r in &rows {
        let ratio = r.baseline.as_secs_f64() / r.ours.as_secs_f64().max(1e-9);
        println!(
            "{:<52} {:>10.3} {:>10.3} {:>7.2}x  {} {}",
            r.name,
            r.ours.as_secs_f64(),
            r.baseline.as_secs_f64(),
            ratio,
            r.target,
            if r.met { "met" } else { "MISSED" }
        );
    }
    for n in notes {
        println!("{n}");
    }
    Ok(())
}

/// Runs `cmd` to completion and returns how long it took. Its stdout is whatever the caller set
/// (inherited otherwise); its stderr is kept for the error message.
fn timed(cmd: &mut Command) -> Result<Duration, String> {
    let start = Instant::now();
    let out = cmd
        .stderr(Stdio::piped())
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let elapsed = start.elapsed();
    // Exit status 1 means "something was quarantined": a real outcome, but not in these runs.
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

pub(crate) fn sync() -> Result<(), String> {
    timed(Command::new("sync").stdout(Stdio::null())).map(drop)
}

fn recipe_cfg(root: &Path, clients: &str, zip: &str) -> Result<(), String> {
    for d in ["etc", "incoming", "archive", "operational", "log"] {
        fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    let text = format!(
        "arch_day=\"30\"\narch_dir=\"{a}\"\narch_zip=\"{zip}\"\nclnt_lst=\"{clients}\"\nlog_dir=\"{l}\"\ndrop_dir=\"{d}\"\noper_dir=\"{o}\"\noper_zip=\"{zip}\"\n",
        a = root.join("archive").display(),
        l = root.join("log").display(),
        d = root.join("incoming").display(),
        o = root.join("operational").display(),
    );
    fs::write(root.join("etc/process_argus.cfg"), text).map_err(|e| e.to_string())
}

/// How long ext4 (without a journal) keeps freed inodes from being reused, plus a second.
pub(crate) const SETTLE: Duration = Duration::from_secs(61);

/// What one of (a)'s passes measured, each on its own copies of the uploads: process_argus
/// (wall and CPU time) and the floors.
struct Pass {
    ours: Duration,
    ours_cpu: Duration,
    data: Option<Duration>,
    data_cpu: Duration,
    metadata: Duration,
    both: Option<Duration>,
}

/// (a) The recipe's script against process_argus on 2,000 small uploads, and process_argus
/// against the data and metadata floors of the same uploads; then the system calls of a pass
/// per upload, and its CPU time per uploaded MiB. process_argus and the floors are measured
/// `passes` times (the file system settling in between) and the medians compared: a single
/// figure on a shared machine is too noisy for a ratio. The recipe (about 20 s) runs once.
fn backlog(ours: &Path, dir: &Path, count: usize, passes: usize) -> Result<Vec<Row>, String> {
    let script = crate::root().join("../shared/seed/process_argus");
    let recipe_here = script.exists();
    let passes = passes.max(1);
    let times = match passes {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    println!(
        "bench (a): {count} small uploads, recipe config with gzip -6; ours and the floors measured {times}"
    );
    let samples = util::four_samples()?;
    let tree = |name: &str, k: usize| dir.join(format!("{name}-{k}"));
    let (recipe_tree, strace_tree) = (dir.join("recipe"), dir.join("strace"));
    let mut trees = vec![recipe_tree.clone(), strace_tree.clone()];
    for k in 0..passes {
        for name in ["ours", "floor", "both-data", "both-metadata"] {
            trees.push(tree(name, k));
        }
    }
    let start = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    let mut bytes = 0u64;
    for tree in &trees {
        bytes = backlog_tree(tree, &samples, start, count)?;
    }
    sync()?;
    let mib = bytes as f64 / f64::from(1 << 20);

    let mut recipe = None;
    let mut measured = Vec::new();
    for k in 0..passes {
        // The floors first: each ends with the deletions a pass makes, so the file system
        // settles before the next timed run.
        let floor_tree = tree("floor", k);
        let groups = floors::groups(&floor_tree.join("incoming"))?;
        let outs = floors::outs(&groups);
        let data_cpu = floors::children_cpu();
        let data = floors::data(&outs)?;
        let data_cpu = floors::children_cpu() - data_cpu;
        sync()?;
        let metadata = floors::metadata(&groups, &floor_tree.join("archive"))?;
        sync()?;
        // Both floors at once on the same cores: the work no pass can avoid, with nothing else.
        let both = floors::both(
            &floors::groups(&tree("both-data", k).join("incoming"))?,
            &floors::groups(&tree("both-metadata", k).join("incoming"))?,
            &tree("both-metadata", k).join("archive"),
        )?;
        settle("(a)");

        if k == 0 {
            if recipe_here {
                recipe = Some(timed(
                    Command::new("sh")
                        .arg(&script)
                        .env("WEBJOB_HOME", &recipe_tree)
                        .stdout(Stdio::null()),
                )?);
                sync()?;
                settle("(a)");
            } else {
                println!("bench (a): the recipe's script ../shared/seed/process_argus is not here");
            }
        }
        let cpu = floors::children_cpu();
        let mine = timed(
            Command::new(ours)
                .env("WEBJOB_HOME", tree("ours", k))
                .stdout(Stdio::null()),
        )?;
        let ours_cpu = floors::children_cpu() - cpu;
        let secs =
            |t: Option<Duration>| t.map_or("-".to_owned(), |t| format!("{:.3} s", t.as_secs_f64()));
        println!(
            "bench (a): pass {}: ours {:.3} s; floors: data {}, metadata {:.3} s, both at once {}",
            k + 1,
            mine.as_secs_f64(),
            secs(data),
            metadata.as_secs_f64(),
            secs(both),
        );
        measured.push(Pass {
            ours: mine,
            ours_cpu,
            data,
            data_cpu,
            metadata,
            both,
        });
        if k + 1 < passes {
            settle("(a)");
        }
    }
    let median = |of: fn(&Pass) -> Option<Duration>| median(measured.iter().filter_map(of));
    let mine = median(|p| Some(p.ours)).unwrap_or_default();
    let data_floor = median(|p| p.data);
    let metadata_floor = median(|p| Some(p.metadata)).unwrap_or_default();
    let both = median(|p| p.both);
    let ours_cpu = median(|p| Some(p.ours_cpu))
        .unwrap_or_default()
        .as_secs_f64()
        / mib;
    match data_floor {
        Some(_) => println!(
            "bench (a): CPU per uploaded MiB: ours {ours_cpu:.4} s, libdeflate-gzip -6 {:.4} s ({mib:.1} MiB)",
            median(|p| p.data.map(|_| p.data_cpu))
                .unwrap_or_default()
                .as_secs_f64()
                / mib,
        ),
        None => println!("bench (a): CPU per uploaded MiB: ours {ours_cpu:.4} s ({mib:.1} MiB)"),
    }
    if let Some(both) = both {
        println!(
            "bench (a): both floors at once: {:.3} s, ours {:.3} s: {:.2}x",
            both.as_secs_f64(),
            mine.as_secs_f64(),
            both.as_secs_f64() / mine.as_secs_f64().max(1e-9)
        );
    }
    let mut strace = Command::new(ours);
    strace.env("WEBJOB_HOME", &strace_tree);
    match floors::syscalls(strace, &dir.join("strace.txt"))? {
        Some(calls) => println!("bench (a): system calls per upload: {}", calls.per(count)),
        None => println!("bench (a): strace is not installed: no system call counts"),
    }
    if recipe_here {
        // The same data, or the comparison means nothing. (Not the same order: the recipe
        // appends in directory order, process_argus oldest first.)
        for client in ["client1", "client2"] {
            let day = format!("{client}_{}", argus_core::stamp::format_date(start.date()));
            let walk = |tree: &Path| -> Result<(u64, u64, u64), String> {
                let f =
                    File::open(tree.join("operational").join(&day)).map_err(|e| e.to_string())?;
                let r = argus_core::record::walk(f).map_err(|e| e.to_string())?;
                Ok((r.valid_len, r.records, r.starts))
            };
            let (a, b) = (walk(&recipe_tree)?, walk(&tree("ours", 0))?);
            if a != b {
                return Err(format!(
                    "(a): day file {day} differs: recipe (bytes, records, streams) {a:?}, process_argus {b:?}"
                ));
            }
        }
    }
    let mut rows = Vec::new();
    if let Some(recipe) = recipe {
        let ratio = recipe.as_secs_f64() / mine.as_secs_f64().max(1e-9);
        // What 50x asks of this machine, against the least any pass can do on it.
        if let Some(both) = both {
            println!(
                "bench (a): 50x the recipe needs {:.3} s; both floors at once took {:.3} s: a pass at those floors would be {:.1}x the recipe",
                recipe.as_secs_f64() / 50.0,
                both.as_secs_f64(),
                recipe.as_secs_f64() / both.as_secs_f64().max(1e-9)
            );
        }
        rows.push(Row {
            name: format!("(a) {count} small uploads, gzip -6: recipe script / ours"),
            ours: mine,
            baseline: recipe,
            target: ">= 50x",
            met: ratio >= 50.0,
        });
    }
    // Within 1.3x of the larger floor: floor / ours at least 1/1.3.
    let floor = data_floor.unwrap_or(Duration::ZERO).max(metadata_floor);
    for (what, t) in [
        ("data floor (libdeflate-gzip -6, all cores)", data_floor),
        (
            "metadata floor (create, remove, sync)",
            Some(metadata_floor),
        ),
    ] {
        match t {
            Some(t) => rows.push(Row {
                name: format!("(a) {what} / ours"),
                ours: mine,
                baseline: t,
                target: if t == floor {
                    ">= 0.77x"
                } else {
                    "(the other)"
                },
                met: t != floor || t.as_secs_f64() / mine.as_secs_f64().max(1e-9) >= 1.0 / 1.3,
            }),
            None => println!(
                "bench (a): libdeflate-gzip is not installed (Debian libdeflate-tools): no data floor"
            ),
        }
    }
    Ok(rows)
}

/// Lays out the tree of (a) under `tree`: the recipe's config and `count` uploads of the
/// samples, a second apart from `start`, alternating between two clients. Returns the bytes.
pub(crate) fn backlog_tree(
    tree: &Path,
    samples: &[Vec<u8>],
    start: OffsetDateTime,
    count: usize,
) -> Result<u64, String> {
    recipe_cfg(tree, "client1 client2", "/bin/gzip -6")?;
    let mut bytes = 0;
    for i in 0..count {
        let client = if i % 2 == 0 { "client1" } else { "client2" };
        let at = start + time::Duration::seconds(i64::try_from(i).unwrap_or(0));
        let data = &samples[i % samples.len()];
        bytes += data.len() as u64;
        Upload::at(client, at)
            .out(data.clone())
            .write(&tree.join("incoming"))
            .map_err(|e| format!("cannot write an upload: {e}"))?;
    }
    Ok(bytes)
}

/// `xtask __backlog DIR N`: lays out (a)'s tree of N uploads in DIR, to profile a pass by hand
/// (`WEBJOB_HOME=DIR process_argus`).
pub(crate) fn lay_out_backlog(args: &[String]) -> Result<(), String> {
    let [dir, count] = args else {
        return Err("usage: xtask __backlog DIR N".to_owned());
    };
    let count = count
        .parse()
        .map_err(|_| format!("not a number: {count}"))?;
    let samples = util::four_samples()?;
    let start = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    backlog_tree(Path::new(dir), &samples, start, count).map(drop)
}

/// The median of `times` (the upper one of an even count); `None` when there are none.
fn median(times: impl Iterator<Item = Duration>) -> Option<Duration> {
    let mut times: Vec<Duration> = times.collect();
    times.sort_unstable();
    times.get(times.len() / 2).copied()
}

/// Lets the file system settle after a mass deletion (see [`SETTLE`]), saying so for `part`.
pub(crate) fn settle(part: &str) {
    println!("bench {part}: the file system settles for {SETTLE:?} after the deletions");
    std::thread::sleep(SETTLE);
}

/// A valid argus stream of about `mib` MiB: real sample files concatenated.
fn big_blob(mib: usize) -> Result<Vec<u8>, String> {
    let unit = util::sample("hostA.argus")?;
    let want = mib * 1024 * 1024;
    let mut blob = Vec::with_capacity(want + unit.len());
    while blob.len() < want {
        blob.extend_from_slice(&unit);
    }
    Ok(blob)
}

/// (b) and (c): large uploads, plain or gzip -6, against cat (+ gzip) and sync; (c) also
/// against the data floor (`libdeflate-gzip -6` of the same files on all cores), with CPU
/// seconds per uploaded MiB.
fn large(ours: &Path, dir: &Path, s: &Settings, gzip: bool) -> Result<Vec<Row>, String> {
    let label = if gzip { "(c)" } else { "(b)" };
    println!(
        "bench {label}: {} uploads of {} MiB, {}",
        s.big_count,
        s.big_mib,
        if gzip { "gzip -6" } else { "no compression" }
    );
    let blob = big_blob(s.big_mib)?;
    let base = dir.join("baseline");
    for d in ["in", "archive"] {
        fs::create_dir_all(base.join(d)).map_err(|e| e.to_string())?;
    }
    let mut inputs: Vec<PathBuf> = Vec::new();
    for i in 0..s.big_count {
        let p = base.join("in").join(format!("up{i}.out"));
        fs::write(&p, &blob).map_err(|e| e.to_string())?;
        inputs.push(p);
    }
    let mine_root = dir.join("ours");
    let zip = if gzip {
        "archive_compression = \"gzip\"\narchive_compression_level = 6\noper_compression = \"gzip\"\n"
    } else {
        "archive_compression = \"none\"\noper_compression = \"none\"\n"
    };
    let config = util::write_config(&mine_root, &["sensor1"], zip)?;
    let start = OffsetDateTime::now_utc();
    for i in 0..s.big_count {
        Upload::at(
            "sensor1",
            start + time::Duration::seconds(i64::try_from(i).unwrap_or(0)),
        )
        .out(blob.clone())
        .write(&mine_root.join("incoming"))
        .map_err(|e| format!("cannot write an upload: {e}"))?;
    }
    drop(blob);
    sync()?;

    let day = base.join("day");
    let began = Instant::now();
    for input in &inputs {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&day)
            .map_err(|e| e.to_string())?;
        timed(Command::new("cat").arg(input).stdout(out))?;
        if gzip {
            let name = input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let gz = File::create(base.join("archive").join(format!("{name}.gz")))
                .map_err(|e| e.to_string())?;
            timed(
                Command::new("gzip")
                    .args(["-6", "-c"])
                    .arg(input)
                    .stdout(gz),
            )?;
        }
    }
    sync()?;
    let baseline = began.elapsed();
    let floor = if gzip {
        let cpu = floors::children_cpu();
        let floor = floors::data(&inputs)?;
        let cpu = floors::children_cpu() - cpu;
        let with_appends = match floor {
            Some(_) => {
                sync()?;
                floors::data_with_appends(&inputs, &base.join("day-both"))?
            }
            None => None,
        };
        Some((floor, cpu, with_appends))
    } else {
        None
    };
    fs::remove_dir_all(&base).map_err(|e| e.to_string())?;
    sync()?;

    let cpu = floors::children_cpu();
    let mine = timed(
        Command::new(ours)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null()),
    )?;
    let cpu = floors::children_cpu() - cpu;
    let _ignored = fs::remove_dir_all(dir);
    let mib = (s.big_count * s.big_mib) as f64;
    let mbps = |t: Duration| mib * 1.048_576 / t.as_secs_f64().max(1e-9);
    let mut rows = Vec::new();
    match floor {
        Some((Some(floor), floor_cpu, with_appends)) => {
            println!(
                "bench {label}: CPU per uploaded MiB: ours {:.4} s, libdeflate-gzip -6 {:.4} s; ours {:.0} MB/s, the floor {:.0} MB/s",
                cpu.as_secs_f64() / mib,
                floor_cpu.as_secs_f64() / mib,
                mbps(mine),
                mbps(floor),
            );
            if let Some(both) = with_appends {
                println!(
                    "bench {label}: the data floor with the durable appends to a day file at once: {:.0} MB/s, floor / ours {:.2}x",
                    mbps(both),
                    both.as_secs_f64() / mine.as_secs_f64().max(1e-9),
                );
            }
            rows.push(Row {
                name: format!("{label} data floor (libdeflate-gzip -6, all cores) / ours"),
                ours: mine,
                baseline: floor,
                target: ">= 0.83x",
                met: floor.as_secs_f64() / mine.as_secs_f64().max(1e-9) >= 1.0 / 1.2,
            });
        }
        Some((None, _, _)) => println!(
            "bench {label}: libdeflate-gzip is not installed (Debian libdeflate-tools): no data floor"
        ),
        None => {}
    }
    let ratio = baseline.as_secs_f64() / mine.as_secs_f64().max(1e-9);
    let (name, target, met) = if gzip {
        (
            format!(
                "{label} {}x{} MiB, gzip -6: (cat + gzip -6 + sync) / ours",
                s.big_count, s.big_mib
            ),
            ">= 1.2x",
            ratio >= 1.2,
        )
    } else {
        (
            format!(
                "{label} {}x{} MiB, plain: (cat >> day + sync) / ours",
                s.big_count, s.big_mib
            ),
            ">= 0.9x",
            ratio >= 0.9,
        )
    };
    rows.insert(
        0,
        Row {
            name,
            ours: mine,
            baseline,
            target,
            met,
        },
    );
    Ok(rows)
}

/// (d) Peak RSS of one pass over a single large upload against a single small one.
fn memory(ours: &Path, dir: &Path, big_mib: usize) -> Result<String, String> {
    println!("bench (d): peak RSS, one {big_mib} MiB upload against one 1 MiB upload (gzip -6)");
    let mut peaks = Vec::new();
    for mib in [1, big_mib] {
        let root = dir.join(format!("{mib}"));
        let config = util::write_config(
            &root,
            &["sensor1"],
            "archive_compression = \"gzip\"\narchive_compression_level = 6\n",
        )?;
        Upload::at("sensor1", OffsetDateTime::now_utc())
            .out(big_blob(mib)?)
            .write(&root.join("incoming"))
            .map_err(|e| format!("cannot write an upload: {e}"))?;
        peaks.push(max_rss_kib(ours, &config)?);
        let _ignored = fs::remove_dir_all(&root);
    }
    let (small, big) = (peaks[0], peaks[1]);
    let ratio = big as f64 / small.max(1) as f64;
    let met = ratio <= 1.2 && big < 32 * 1024;
    Ok(format!(
        "(d) peak RSS: {small} KiB for 1 MiB, {big} KiB for {big_mib} MiB: ratio {ratio:.2} (target <= 1.2 and below 32 MiB) {}",
        if met { "met" } else { "MISSED" }
    ))
}

/// Peak RSS in KiB of `process_argus --config CONFIG`, measured in a fresh child of a fresh
/// process (`xtask __maxrss`), so that no earlier child's peak counts.
pub(crate) fn max_rss_kib(ours: &Path, config: &Path) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(me)
        .arg("__maxrss")
        .arg(ours)
        .arg("--config")
        .arg(config)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "measuring RSS failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("bad RSS output: {e}"))
}

/// `xtask __maxrss CMD ARGS...`: runs CMD, then prints the peak RSS of its children in KiB.
pub(crate) fn maxrss(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or("__maxrss needs a command")?;
    let status = Command::new(cmd)
        .args(rest)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd} failed: {status}"));
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| e.to_string())?;
    println!("{}", usage.max_rss());
    Ok(())
}
