//! `cargo xtask bench`, part (f): the daemon's latency, from an upload's `.rdy` landing in the
//! dropzone to the upload being ingested (SPEC §6: median at most 100 ms, p99 at most 500 ms).
//!
//! `process_argus watch` runs on a fresh tree (gzip archives at the default level, like a real
//! server). [`GROUPS`] uploads, each one real argus sample with its chunk manifest, arrive one
//! by one every 100 to 200 ms, written the way the WebJob server writes them: `.out`, `.err`,
//! `.env`, then `.rdy` last; the clock starts just after the `.rdy` is created. The daemon logs
//! `ingested PATH (...)` once the upload is appended, synced, archived, counted in the ledger
//! and removed from the dropzone (`.rdy` last) and its journal cleared; a thread reads its
//! stderr and stops the clock when that line arrives. Reading the log instead of polling for
//! the `.rdy` to go keeps the measurement from competing with the daemon for the CPU.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use argus_core::host::Hostname;
use argus_core::manifest::{Manifest, sha256};
use time::OffsetDateTime;

use crate::util;

/// Uploads measured.
pub(crate) const GROUPS: usize = 60;
/// How long one upload may take before the bench gives up on it.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Kills the daemon on every way out (an error included).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ignored = self.0.kill();
            let _ignored = self.0.wait();
        }
    }
}

/// Runs part (f) with the `process_argus` binary `ours` in `dir`, once as it is and once with a
/// follow-on stage that takes 30 s per upload (`/bin/sleep 30` on every `ingested` event),
/// which must not move the ingest's latency; returns the report lines.
pub(crate) fn run(ours: &Path, dir: &Path) -> Result<String, String> {
    let plain = measure(ours, &dir.join("plain"), "")?;
    let hooked = measure(
        ours,
        &dir.join("hooked"),
        "[[hook]]\non = \"ingested\"\ncommand = [\"/bin/sleep\", \"30\"]\n",
    )?;
    Ok(format!(
        "(f) daemon latency .rdy -> ingested over {GROUPS} groups: {} (targets <= 100 ms, <= 500 ms) {}\n(f) the same with a 30 s hook on every upload: {}; median {:.2}x of without",
        plain.line(),
        if plain.met() { "met" } else { "MISSED" },
        hooked.line(),
        hooked.median / plain.median.max(1e-9)
    ))
}

/// Latencies of one run, in milliseconds.
struct Latency {
    median: f64,
    p99: f64,
    min: f64,
    max: f64,
}

impl Latency {
    fn line(&self) -> String {
        format!(
            "median {:.1} ms, p99 {:.1} ms (min {:.1}, max {:.1})",
            self.median, self.p99, self.min, self.max
        )
    }

    fn met(&self) -> bool {
        self.median <= 100.0 && self.p99 <= 500.0
    }
}

fn measure(ours: &Path, dir: &Path, hooks: &str) -> Result<Latency, String> {
    println!(
        "bench (f): daemon latency, {GROUPS} uploads arriving one by one{}",
        if hooks.is_empty() {
            ""
        } else {
            ", with a 30 s hook"
        }
    );
    let config = util::write_config(dir, &["client1"], &format!("archive_days = 0\n{hooks}"))?;
    let drop_dir = dir.join("incoming");
    let child = Command::new(ours)
        .arg("watch")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {} watch: {e}", ours.display()))?;
    let mut daemon = Daemon(child);
    let stderr = daemon.0.stderr.take().ok_or("no stderr pipe")?;
    // Each "ingested" line, with the instant it arrived; the whole log for error messages.
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            if let Some(stem) = ingested_stem(&line) {
                let _ignored = tx.send((stem, at));
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });

    let pid = daemon.0.id();
    let ready = Instant::now();
    while !::test_support::server::inotify_watching(pid) {
        if ready.elapsed() > GIVE_UP || !matches!(daemon.0.try_wait(), Ok(None)) {
            return Err(format!(
                "the daemon did not start watching: {}",
                stop(daemon, reader)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let sample = util::sample("hostA.argus")?;
    let host = Hostname::new("sensor1").map_err(|e| e.to_string())?;
    let base = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| e.to_string())?
        - time::Duration::minutes(5);
    let mut landed: BTreeMap<String, Instant> = BTreeMap::new();
    let mut done: BTreeMap<String, Instant> = BTreeMap::new();
    let mut rng = u64::from(pid) | 1;
    for i in 0..GROUPS {
        let at = base + time::Duration::seconds(i64::try_from(i).unwrap_or(0));
        let stem = format!(
            "client1_{}_harvest_argus",
            argus_core::stamp::format_datetime(at)
        );
        let manifest = Manifest {
            host: host.clone(),
            seq: u64::try_from(i + 1).unwrap_or(0),
            start: None,
            end: None,
            bytes: u64::try_from(sample.len()).unwrap_or(0),
            records: None,
            sha256: sha256(&sample),
        };
        let part = |ext: &str| drop_dir.join(format!("{stem}.{ext}"));
        create(&part("out"), &sample)?;
        create(&part("err"), format!("{manifest}\n").as_bytes())?;
        create(&part("env"), b"Hostname=sensor1\n")?;
        create(&part("rdy"), b"")?;
        landed.insert(stem, Instant::now());
        // The next one lands 100 to 200 ms later; collect what was ingested meanwhile.
        let pause = Duration::from_millis(100 + xorshift(&mut rng) % 101);
        let until = Instant::now() + pause;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((stem, at)) => {
                    done.insert(stem, at);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("the daemon died: {}", stop(daemon, reader)));
                }
            }
        }
    }
    let last = Instant::now();
    while done.len() < landed.len() && last.elapsed() < GIVE_UP {
        if let Ok((stem, at)) = rx.recv_timeout(Duration::from_millis(100)) {
            done.insert(stem, at);
        }
    }
    let mut latencies = Vec::with_capacity(GROUPS);
    for (stem, t0) in &landed {
        let Some(t1) = done.get(stem) else {
            return Err(format!(
                "{stem} was not ingested within {GIVE_UP:?}: {}",
                stop(daemon, reader)
            ));
        };
        latencies.push(t1.saturating_duration_since(*t0));
    }
    let leftovers = fs::read_dir(&drop_dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .count();
    let log = stop(daemon, reader);
    if leftovers > 0 {
        return Err(format!(
            "{leftovers} files left in the dropzone after every upload was reported ingested: {log}"
        ));
    }

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Latency {
        median: ms(percentile(&latencies, 50)),
        p99: ms(percentile(&latencies, 99)),
        min: ms(latencies[0]),
        max: ms(latencies[latencies.len() - 1]),
    })
}

/// The stem of a daemon log line `process_argus: INFO ingested PATH (N bytes, ...) for host H`.
fn ingested_stem(line: &str) -> Option<String> {
    let rest = line.split_once(" ingested ")?.1;
    let (path, tail) = rest.split_once(" (")?;
    if !tail.contains(" for host ") {
        return None;
    }
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// The `p`-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn create(path: &Path, bytes: &[u8]) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Stops the daemon (SIGTERM, then SIGKILL after 10 s) and returns its log.
fn stop(mut daemon: Daemon, reader: std::thread::JoinHandle<String>) -> String {
    if let Ok(pid) = i32::try_from(daemon.0.id()) {
        let _ignored = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let asked = Instant::now();
    while matches!(daemon.0.try_wait(), Ok(None)) && asked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(daemon);
    reader.join().unwrap_or_default()
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ingest_lines() {
        assert_eq!(
            ingested_stem(
                "process_argus: INFO ingested /d/in/client1_20261127120000_harvest_argus (41560 bytes, 323 records) for host sensor1"
            )
            .as_deref(),
            Some("client1_20261127120000_harvest_argus")
        );
        assert_eq!(
            ingested_stem(
                "process_argus: INFO ingested 1 upload (40.6 KiB) into 1 day file; 0.01 s"
            ),
            None
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=60).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(30));
        assert_eq!(percentile(&v, 99), Duration::from_millis(60));
        assert_eq!(
            percentile(&[Duration::from_millis(7)], 99),
            Duration::from_millis(7)
        );
    }
}
