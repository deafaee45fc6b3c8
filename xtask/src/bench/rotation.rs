//! `cargo xtask bench`, part (e): cutting a live argus output file under traffic, the recipe's
//! sensor script against `harvest_argus`, counted in flows lost.
//!
//! Both runs get the same argus (`/usr/sbin/argus -X -P 0 -S 1 -M 60 -i lo -w OUTPUT`), the same
//! traffic ([`FLOWS`] UDP flows, each from its own source address `127.61.x.y`, to a port on
//! 127.0.0.1) and the same harvest schedule (every 2-3 s while the traffic runs). When it has
//! ended, argus is stopped with SIGTERM (it then writes every cached flow) and harvested once
//! more. `ra` then reads everything each harvest wrote to stdout, and a flow sent but found in
//! no chunk is lost. The recipe renames argus' output and `cat`s it at once, so records argus
//! still appends to the renamed file before re-opening its path (up to about 1 s, research
//! `argus.md` §2) never ship; `harvest_argus` waits for the re-open and must lose nothing.
//!
//! The recipe's script is run from a copy generated at runtime in the temporary directory,
//! never from the repository (it is not part of it). The copy differs from
//! `../shared/seed/harvest_argus` only by plain string replacements (see [`recipe_copy`]):
//! the per-host variables of its example host `client1` are renamed for this machine's host
//! name and point at the bench's paths and `lo`, its call of `start` is disabled (argus 3 reads
//! its `-cd` as "chroot to d", and the bench starts argus itself so that only the rotation is
//! compared), and `shoot` is aimed at a pid file in the temporary directory instead of
//! `/var/run/argus.pid`. `harvest_argus` starts argus itself, as in the end-to-end tests
//! (`crates/harvest/tests/testsuite/argus.rs`).
//!
//! Every process whose command line names the temporary directory (argus in both runs) is
//! killed when the bench leaves, on every path out; only an interrupt (Ctrl-C) can leave the
//! argus `harvest_argus` started, which runs in a session of its own, behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::net::Ipv4Addr;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::traffic::Traffic;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util;

/// Flows sent per run, one datagram each.
const FLOWS: u16 = 1500;
/// Flows a second: the traffic lasts [`FLOWS`] / [`RATE`] seconds.
const RATE: u16 = 100;
/// Pauses between harvests, in turn: never a whole number of seconds, so that the renames fall
/// at different points of argus' second.
const PAUSES_MS: [u64; 4] = [2000, 2700, 2300, 2900];
/// argus as the end-to-end tests run it (no config file, no port, a status record a second after
/// a flow starts).
const ARGUS_ARGS: &[&str] = test_support::sensor::ARGS;
/// The source addresses are `127.NET.x.y`.
const NET: u8 = 61;
/// The host name `harvest_argus` is given (it names the archives).
const HOST: &str = "bench";

/// Runs part (e) with the `harvest_argus` binary `ours`, and returns the line for the report.
pub(crate) fn run(ours: &Path) -> Result<String, String> {
    let seed = crate::root().join("../shared/seed/harvest_argus");
    let argus = ["/usr/sbin/argus", "/usr/local/sbin/argus", "/sbin/argus"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root (argus captures on lo)".to_owned());
    }
    if argus.is_none() {
        missing.push("argus (apt-get install argus-server)".to_owned());
    }
    if !util::have("ra") {
        missing.push("ra (apt-get install argus-client)".to_owned());
    }
    if !seed.is_file() {
        missing.push("the recipe's script ../shared/seed/harvest_argus".to_owned());
    }
    let Some(argus) = argus.filter(|_| missing.is_empty()) else {
        return Ok(format!(
            "(e) rotation: skipped, it needs {}",
            missing.join(", ")
        ));
    };
    println!(
        "bench (e): rotation under traffic, {FLOWS} UDP flows at {RATE}/s, a harvest every 2-3 s: recipe script, then harvest_argus"
    );
    let scratch = Scratch::new()?;
    let script = recipe_copy(&seed, scratch.path(), &argus)?;
    let recipe = measure(
        &Harvester::Recipe { script },
        &argus,
        &scratch.path().join("recipe"),
    )?;
    let config = scratch.path().join("harvest_argus.toml");
    let last = scratch.path().join("harvest_argus.last.toml");
    let mine = measure(
        &Harvester::Ours {
            bin: ours.to_path_buf(),
            config,
            last,
        },
        &argus,
        &scratch.path().join("ours"),
    )?;
    drop(scratch);
    if recipe.found == 0 {
        return Err(
            "(e): the recipe's harvests shipped no flow at all; see its stderr above".into(),
        );
    }
    Ok(format!(
        "(e) rotation under traffic, a harvest every 2-3 s: flows lost: recipe {} of {}, ours {} of {} (target: ours 0) {}",
        recipe.lost,
        recipe.sent,
        mine.lost,
        mine.sent,
        if mine.lost == 0 && mine.sent > 0 {
            "met"
        } else {
            "MISSED"
        }
    ))
}

/// What one run measured.
struct Outcome {
    sent: usize,
    found: usize,
    lost: usize,
}

/// Who cuts argus' output.
enum Harvester {
    /// `sh SCRIPT`, the recipe's script with this run's paths.
    Recipe { script: PathBuf },
    /// `harvest_argus --config CONFIG`; `last` is the config of the final run, after argus is
    /// stopped (`supervise = false`, so that it is not started again).
    Ours {
        bin: PathBuf,
        config: PathBuf,
        last: PathBuf,
    },
}

impl Harvester {
    fn name(&self) -> &'static str {
        match self {
            Harvester::Recipe { .. } => "recipe",
            Harvester::Ours { .. } => "ours",
        }
    }

    /// One harvest, its stdout going to `chunk`.
    fn harvest(&self, chunk: &Path, last: bool) -> Result<(), String> {
        let mut cmd = match self {
            Harvester::Recipe { script } => {
                let mut cmd = Command::new("sh");
                cmd.arg(script);
                cmd
            }
            Harvester::Ours {
                bin,
                config,
                last: final_config,
            } => {
                let mut cmd = Command::new(bin);
                cmd.arg("--config")
                    .arg(if last { final_config } else { config })
                    .args(["--host", HOST])
                    .env_remove("RUST_LOG");
                cmd
            }
        };
        let out = File::create(chunk).map_err(|e| format!("{}: {e}", chunk.display()))?;
        let done = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if done.status.success() {
            Ok(())
        } else {
            Err(format!(
                "(e): {cmd:?} failed ({}):\n{}",
                done.status,
                String::from_utf8_lossy(&done.stderr)
            ))
        }
    }
}

/// One run: argus on `lo`, the traffic, harvests every 2-3 s, argus stopped, a last harvest,
/// and the flows counted in what was shipped.
fn measure(who: &Harvester, argus: &Path, dir: &Path) -> Result<Outcome, String> {
    let output = dir.join("var/argus.out");
    let chunks = dir.join("chunks");
    for d in [dir.join("var"), dir.join("archive"), chunks.clone()] {
        fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let chunk = |n: usize| chunks.join(format!("{n:03}.argus"));
    let mut started: Option<Child> = None;
    match who {
        Harvester::Recipe { .. } => {
            let child = Command::new(argus)
                .args(ARGUS_ARGS)
                .args(["-i", "lo", "-w"])
                .arg(&output)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", argus.display()))?;
            started = Some(child);
        }
        Harvester::Ours { config, last, .. } => {
            for (path, extra) in [(config, ""), (last, "supervise = false\n")] {
                write_config(path, argus, dir, &output, extra)?;
            }
            who.harvest(&chunk(0), false)?;
        }
    }
    // argus writes its first record when it opens its output; give its capture a moment more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !output.exists() || argus_pids(&output).is_empty() {
        if Instant::now() > deadline {
            return Err(format!(
                "(e): argus did not start writing {}",
                output.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));

    let traffic = Traffic::start(NET, 0, u32::from(RATE), u32::from(FLOWS))
        .map_err(|e| format!("cannot bind a UDP port on 127.0.0.1: {e}"))?;
    let mut harvests = 0;
    while !traffic.is_finished() {
        std::thread::sleep(Duration::from_millis(PAUSES_MS[harvests % PAUSES_MS.len()]));
        harvests += 1;
        who.harvest(&chunk(harvests), false)?;
    }
    let port = traffic.port();
    let sent = traffic.stop();
    // Let argus report the last flows, then stop it: on SIGTERM it writes every cached flow.
    std::thread::sleep(Duration::from_secs(2));
    stop_argus(&output)?;
    if let Some(mut child) = started {
        let _reaped = child.wait();
    }
    harvests += 1;
    who.harvest(&chunk(harvests), true)?;

    let mut found = BTreeSet::new();
    for n in 0..=harvests {
        found.extend(flow_sources(&chunk(n), port)?);
    }
    let found = found.intersection(&sent).count();
    let lost = sent.len() - found;
    println!(
        "bench (e): {}: {harvests} harvests, {} flows sent, {found} found in the shipped chunks, {lost} lost",
        who.name(),
        sent.len()
    );
    Ok(Outcome {
        sent: sent.len(),
        found,
        lost,
    })
}

/// The config of `harvest_argus`, as the tests write it, with gzip -9 as the recipe uses.
fn write_config(
    path: &Path,
    argus: &Path,
    dir: &Path,
    output: &Path,
    extra: &str,
) -> Result<(), String> {
    let args: Vec<String> = ARGUS_ARGS.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "archive_dir = {:?}\noutput = {:?}\ninterface = \"lo\"\nargus_bin = {:?}\nargus_args = [{}]\ncompression = \"gzip\"\ncompression_level = 9\n{extra}",
        dir.join("archive").display().to_string(),
        output.display().to_string(),
        argus.display().to_string(),
        args.join(", ")
    );
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the copy of the recipe's script that the bench runs, and returns its path.
///
/// The script reads its settings from variables named `VAR_HOST` in its own body, `HOST` being
/// the output of `hostname`; its example hosts are `client1` and `client2`. Replaced, each by
/// plain string replacement of one exact line, and checked to have matched:
/// - `client1`'s six variables become this host's: `out` is the run's argus output (the tmp
///   file is `OUTPUT.tmp`), `arc_dir` its archive directory, `bin` the argus binary the bench
///   runs (the script counts argus processes by it in `ps -ef`), `int` is `lo`; `arc_day`
///   (0: no purge) and `arc_zip` (`gzip -9`) keep their values.
/// - When `hostname` does not print a shell name (the script `eval`s `arc_dir_$hostname`), its
///   `hostname=\`hostname\`` line instead sets a fixed one.
/// - The call `start ...` is disabled: its `argus -cd` is wrong for argus 3 (`-c` is chroot),
///   and the bench starts argus itself for both runs, so that only the rotation differs. It is
///   only reached when argus is not running, i.e. at the last harvest after argus is stopped.
/// - `shoot "/var/run/argus.pid"` (reached only when a variable is missing) reads a pid file in
///   the temporary directory, so that it can never signal this machine's processes.
fn recipe_copy(seed: &Path, scratch: &Path, argus: &Path) -> Result<PathBuf, String> {
    let mut text = fs::read_to_string(seed).map_err(|e| format!("{}: {e}", seed.display()))?;
    let recipe = scratch.join("recipe");
    for path in [scratch, argus] {
        let s = path.to_string_lossy();
        if s.chars()
            .any(|c| c.is_whitespace() || "\"$`\\'".contains(c))
        {
            return Err(format!("(e): cannot put the path {s:?} in a shell script"));
        }
    }
    let shell_name = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let host = Command::new("hostname")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|h| shell_name(h));
    let mut edits = Vec::new();
    let host = host.unwrap_or_else(|| {
        edits.push(("hostname=`hostname`".to_owned(), format!("hostname={HOST}")));
        HOST.to_owned()
    });
    let at = |p: &str| recipe.join(p).display().to_string();
    for (var, old, new) in [
        ("arc_day", "0", "0".to_owned()),
        ("arc_dir", "/opt/argus", at("archive")),
        ("arc_zip", "/bin/gzip -9", "/bin/gzip -9".to_owned()),
        ("bin", "/usr/local/sbin/argus", argus.display().to_string()),
        ("int", "eth0", "lo".to_owned()),
        ("out", "/tmp/argus.out", at("var/argus.out")),
    ] {
        edits.push((
            format!("\n{var}_client1=\"{old}\"\n"),
            format!("\n{var}_{host}=\"{new}\"\n"),
        ));
    }
    edits.push((
        "\n  start \"${bin}\" \"${cnt}\" \"${int}\" \"${out}\"\n".to_owned(),
        "\n  : start disabled by cargo xtask bench, which runs argus itself\n".to_owned(),
    ));
    edits.push((
        "shoot \"/var/run/argus.pid\"".to_owned(),
        format!("shoot \"{}\"", scratch.join("argus.pid").display()),
    ));
    for (old, new) in edits {
        if text.matches(&old).count() != 1 {
            return Err(format!(
                "(e): {} has changed: {:?} is not in it once",
                seed.display(),
                old.trim()
            ));
        }
        text = text.replacen(&old, &new, 1);
    }
    let copy = scratch.join("harvest_argus.recipe.sh");
    fs::write(&copy, text).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(copy)
}

/// The source addresses of the UDP flows to `port` that `ra` reads in `file`. The recipe's
/// chunks are read while argus writes them, so a record may be cut short at the end: whatever
/// `ra` printed counts.
fn flow_sources(file: &Path, port: u16) -> Result<BTreeSet<Ipv4Addr>, String> {
    if fs::metadata(file).map_or(true, |m| m.len() == 0) {
        return Ok(BTreeSet::new());
    }
    let out = Command::new("ra")
        .args(["-n", "-L", "-1", "-c", ",", "-s", "saddr", "dport", "-r"])
        .arg(file)
        .args(["-", &format!("udp and dst port {port}")])
        .output()
        .map_err(|e| format!("cannot run ra: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect())
}

/// The processes with an argument for which `pred` holds, other than this one.
fn pids_where(pred: impl Fn(&[u8]) -> bool) -> Vec<Pid> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (pid != me && cmdline.split(|&b| b == 0).any(&pred))
                .then(|| Pid::from_raw(i32::try_from(pid).unwrap_or(0)))
        })
        .collect()
}

/// The argus processes writing `output` (`-w OUTPUT` on their command line).
fn argus_pids(output: &Path) -> Vec<Pid> {
    pids_where(|arg| arg == output.as_os_str().as_bytes())
}

/// Sends `signal` to `pids` and waits up to `wait` until `alive` finds none left.
fn signal_and_wait(
    pids: Vec<Pid>,
    signal: Signal,
    wait: Duration,
    alive: impl Fn() -> Vec<Pid>,
) -> bool {
    for pid in pids {
        let _gone = kill(pid, signal);
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if alive().is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    alive().is_empty()
}

/// Stops the argus writing `output` with SIGTERM, and SIGKILL if it is still there after 10 s
/// (argus once ignored a SIGTERM, research `argus.md` §1.4).
fn stop_argus(output: &Path) -> Result<(), String> {
    let alive = || argus_pids(output);
    if signal_and_wait(alive(), Signal::SIGTERM, Duration::from_secs(10), alive)
        || signal_and_wait(alive(), Signal::SIGKILL, Duration::from_secs(5), alive)
    {
        Ok(())
    } else {
        Err(format!(
            "(e): argus writing {} does not stop",
            output.display()
        ))
    }
}

/// The temporary directory of the bench, outside the repository. Dropping it kills every
/// process that names it on its command line (argus, the recipe's script and its children),
/// then removes it.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        tempfile::Builder::new()
            .prefix("xtask-bench-rotation.")
            .tempdir()
            .map(Scratch)
            .map_err(|e| format!("cannot create a temporary directory: {e}"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let dir = self.path().as_os_str().as_bytes().to_vec();
        let ours = || pids_where(|arg| arg.starts_with(&dir));
        if !signal_and_wait(ours(), Signal::SIGKILL, Duration::from_secs(5), ours) {
            eprintln!(
                "xtask: processes naming {} survived SIGKILL",
                self.path().display()
            );
        }
    }
}
