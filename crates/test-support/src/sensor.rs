//! A sensor for the end-to-end tests: `harvest_argus` with its own argus on `lo` in a temporary
//! directory, runs of the binary, UDP traffic of known distinct flows, and what `ra` reads back.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use argus_core::manifest::Manifest;
use argus_proc::find::{Target, find_output_users};

pub const ARGUS: &str = "/usr/sbin/argus";
/// The host a sensor ships as, unless [`Sensor::named`] gives it another name.
pub const HOST: &str = "sensor1";

/// argus as the tests run it: no config file, no listening port, a flow status record one
/// second after a flow starts, a MAR every 60 s (the default).
pub const ARGS: &[&str] = &["-X", "-P", "0", "-S", "1", "-M", "60"];

/// True when the real-argus tests can run here: argus, ra and root. Otherwise says so loudly,
/// and fails under `CI=true`.
pub fn need_argus(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut missing = Vec::new();
    if !Path::new(ARGUS).exists() {
        missing.push("argus (apt-get install argus-server)");
    }
    if Command::new("ra")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        missing.push("ra (apt-get install argus-client)");
    }
    if !std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        missing.push("root (argus captures on lo)");
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        !crate::tools::in_ci(),
        "CI=true: {test} needs {}",
        missing.join(", ")
    );
    eprintln!("SKIPPED {test}: needs {}", missing.join(", "));
    false
}

/// The `harvest_argus` binary cargo built for this test (see [`crate::bins::bin`]).
pub fn harvest_bin() -> PathBuf {
    crate::bins::bin("harvest_argus")
}

pub use crate::bins::sample;
pub use crate::files::decoded;

/// One run of `harvest_argus`.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// The manifest lines on stderr, in order.
    pub fn manifests(&self) -> Vec<Manifest> {
        Manifest::find_all(self.stderr.as_bytes())
            .into_iter()
            .map(|m| m.expect("manifest line parses"))
            .collect()
    }

    /// stdout cut into the chunks the manifest lines describe, each checked against its
    /// manifest (byte count, SHA-256); the whole of stdout must be accounted for.
    pub fn chunks(&self) -> Vec<(Manifest, Vec<u8>)> {
        let mut rest = &self.stdout[..];
        let mut out = Vec::new();
        for m in self.manifests() {
            let n = usize::try_from(m.bytes).expect("size");
            assert!(rest.len() >= n, "stdout shorter than the manifests say");
            let (chunk, tail) = rest.split_at(n);
            assert_eq!(
                argus_core::manifest::sha256(chunk),
                m.sha256,
                "sha256 of chunk seq={} does not match its manifest",
                m.seq
            );
            out.push((m, chunk.to_vec()));
            rest = tail;
        }
        assert!(rest.is_empty(), "stdout holds bytes no manifest describes");
        out
    }

    /// Asserts the exit code, showing stderr when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        self
    }
}

/// A sensor: output, archive and config in a temporary directory.
#[derive(Debug)]
pub struct Sensor {
    pub dir: tempfile::TempDir,
    pub output: PathBuf,
    pub archive: PathBuf,
    pub config: PathBuf,
    /// The argus binary its config names.
    pub argus_bin: PathBuf,
    /// The host it ships as (`--host`, and the manifests' `host`).
    pub host: String,
}

impl Sensor {
    /// A sensor whose argus (Debian's) captures on `lo` with `argus_args` (the config's other
    /// keys are added from `extra`, TOML lines).
    pub fn new(argus_args: &[&str], extra: &str) -> Sensor {
        Sensor::with_argus(Path::new(ARGUS), argus_args, extra)
    }

    /// The same with another argus binary (argus 5).
    pub fn with_argus(argus_bin: &Path, argus_args: &[&str], extra: &str) -> Sensor {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = dir.path().join("var/argus.out");
        let archive = dir.path().join("archive");
        let config = dir.path().join("harvest_argus.toml");
        let sensor = Sensor {
            output,
            archive,
            config,
            dir,
            argus_bin: argus_bin.to_path_buf(),
            host: HOST.to_owned(),
        };
        sensor.write_config(&sensor.config, argus_args, extra);
        sensor
    }

    /// The same sensor shipping as `host`: two sensors shipping to one server need names of
    /// their own, since the server numbers chunks per host.
    pub fn named(mut self, host: &str) -> Sensor {
        host.clone_into(&mut self.host);
        self
    }

    /// Writes a config file for this sensor.
    pub fn write_config(&self, path: &Path, argus_args: &[&str], extra: &str) {
        let args: Vec<String> = argus_args.iter().map(|a| format!("{a:?}")).collect();
        let text = format!(
            "archive_dir = {:?}\noutput = {:?}\ninterface = \"lo\"\nargus_bin = {:?}\nargus_args = [{}]\n{extra}\n",
            self.archive.display().to_string(),
            self.output.display().to_string(),
            self.argus_bin.display().to_string(),
            args.join(", ")
        );
        std::fs::write(path, text).expect("write config");
    }

    /// A command running `harvest_argus --config CONFIG --host HOST` (`sensor1` unless
    /// [`Sensor::named`]).
    pub fn command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(harvest_bin());
        cmd.arg("--config")
            .arg(config)
            .arg("--host")
            .arg(&self.host)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs one harvest with this sensor's config to the end.
    pub fn harvest(&self) -> Run {
        self.harvest_with(&self.config, &[])
    }

    /// Runs one harvest with another config and extra arguments.
    pub fn harvest_with(&self, config: &Path, args: &[&str]) -> Run {
        let start = Instant::now();
        let out = self
            .command(config)
            .args(args)
            .output()
            .expect("run harvest_argus");
        Run {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    }

    /// A harvest that kills itself with SIGKILL at `failpoint` (`argus_core::failpoint`).
    /// Returns what it had written, and fails unless it died there.
    pub fn harvest_killed_at(&self, failpoint: &str) -> Run {
        let start = Instant::now();
        let out = self
            .command(&self.config)
            .env("ARGUS_WEBJOB_FAILPOINT", failpoint)
            .output()
            .expect("run harvest_argus");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "harvest_argus did not die at {failpoint}:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("failpoint {failpoint} reached")),
            "{stderr}"
        );
        Run {
            code: out.status.code(),
            stdout: out.stdout,
            stderr,
            took: start.elapsed(),
        }
    }

    /// The staged chunks in the output directory.
    pub fn staged(&self) -> Vec<PathBuf> {
        let mut list: Vec<PathBuf> = std::fs::read_dir(self.output.parent().expect("dir"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("argus.out.staged."))
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort();
        list
    }

    /// The archive files, by name.
    pub fn archives(&self) -> Vec<PathBuf> {
        let mut list: Vec<PathBuf> = std::fs::read_dir(&self.archive)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        list.sort();
        list
    }

    /// The processes writing this sensor's output (argus, whatever its binary).
    pub fn argus_pids(&self) -> Vec<i32> {
        find_output_users(&Target::new(Path::new(ARGUS), &self.output))
            .expect("scan /proc")
            .into_iter()
            .map(|p| p.id.pid)
            .collect()
    }

    /// Harvests every 700 ms for `duration` (each run must exit 0) and returns the runs.
    pub fn harvest_every(&self, duration: Duration) -> Vec<Run> {
        let mut runs = Vec::new();
        let until = Instant::now() + duration;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(700));
            let run = self.harvest();
            run.expect_code(0);
            runs.push(run);
        }
        runs
    }

    /// The last harvest, once argus was stopped: with `supervise = false` (and the config's
    /// other keys from `extra`), so that it ships what argus left and starts no argus again.
    pub fn final_harvest(&self, argus_args: &[&str], extra: &str) -> Run {
        let config = self.dir.path().join("final.toml");
        self.write_config(&config, argus_args, &format!("{extra}\nsupervise = false"));
        let run = self.harvest_with(&config, &[]);
        run.expect_code(0);
        run
    }

    /// Kills this sensor's argus with SIGKILL and waits until it is gone: argus 5.0.3 does not
    /// stop promptly on SIGTERM (it only schedules a shutdown), so nothing waits on that.
    pub fn kill_argus(&self) {
        for pid in self.argus_pids() {
            signal(pid, "KILL");
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.argus_pids().is_empty() {
            assert!(Instant::now() < deadline, "argus survived SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops this sensor's argus with SIGSTOP: it reads no packet until
    /// [`Sensor::resume_argus`], and the kernel drops what does not fit its capture buffer.
    pub fn pause_argus(&self) {
        let pids = self.argus_pids();
        assert!(!pids.is_empty(), "no argus to pause");
        for pid in pids {
            signal(pid, "STOP");
        }
    }

    /// Lets a paused argus run again (SIGCONT).
    pub fn resume_argus(&self) {
        for pid in self.argus_pids() {
            signal(pid, "CONT");
        }
    }

    /// Stops this sensor's argus with SIGTERM (it then writes its cached flows and a final
    /// MAR) and waits until it is gone.
    pub fn stop_argus(&self) {
        for pid in self.argus_pids() {
            signal(pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.argus_pids().is_empty() {
            if Instant::now() > deadline {
                for pid in self.argus_pids() {
                    // argus once ignored a SIGTERM (research/argus.md 1.4).
                    signal(pid, "KILL");
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        for pid in self.argus_pids() {
            signal(pid, "KILL");
        }
    }
}

fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Checks everything a series of runs shipped: the manifests describe stdout exactly, their
/// sequence numbers are consecutive from `first_seq`, every chunk walks clean, and the archive
/// holds exactly the shipped chunks. Returns the chunks, in order.
pub fn check_shipped(sensor: &Sensor, runs: &[Run], first_seq: u64) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    for run in runs {
        for (manifest, chunk) in run.chunks() {
            assert_eq!(manifest.host.as_str(), sensor.host);
            assert_eq!(
                manifest.seq,
                first_seq + chunks.len() as u64,
                "seq numbers are consecutive"
            );
            let report = argus_core::record::walk(&chunk[..]).expect("walk");
            assert!(
                report.is_clean(),
                "chunk seq={} is not clean: {}",
                manifest.seq,
                report.walk
            );
            assert_eq!(manifest.records, Some(report.records));
            chunks.push(chunk);
        }
    }
    let shipped: BTreeSet<Vec<u8>> = chunks.iter().cloned().collect();
    let archived: Vec<Vec<u8>> = sensor.archives().iter().map(|p| decoded(p)).collect();
    assert_eq!(archived.len(), chunks.len(), "one archive file per chunk");
    assert!(
        archived.into_iter().collect::<BTreeSet<_>>() == shipped,
        "the archive decompresses to exactly the shipped chunks"
    );
    chunks
}

pub fn write_chunks(dir: &std::path::Path, chunks: &[Vec<u8>]) -> Vec<std::path::PathBuf> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = dir.join(format!("shipped.{i:03}.argus"));
            std::fs::write(&path, c).expect("write chunk");
            path
        })
        .collect()
}

/// Distinct UDP flows on `lo` (see [`crate::traffic`]).
#[derive(Debug)]
pub struct Traffic(crate::traffic::Traffic);

impl Traffic {
    /// Starts sending `per_second` flows a second from the `127.NET.0.0/16` range to
    /// `127.0.0.1:port`.
    pub fn start(net: u8, port: u16, per_second: u32) -> Traffic {
        let flows = crate::traffic::MAX_FLOWS;
        Traffic(
            crate::traffic::Traffic::start(net, port, per_second, flows)
                .expect("bind the receiving port"),
        )
    }

    /// Stops sending and returns the source address of every flow sent.
    pub fn stop(self) -> BTreeSet<Ipv4Addr> {
        self.0.stop()
    }
}

/// Reports what a no-loss run measured and asserts it: at least `at_least` flows were sent, and
/// every one of them was `seen` in the shipped data.
pub fn assert_no_flow_lost(
    label: &str,
    runs: usize,
    chunks: usize,
    sent: &BTreeSet<Ipv4Addr>,
    seen: &BTreeSet<Ipv4Addr>,
    at_least: usize,
) {
    let missing: Vec<&Ipv4Addr> = sent.difference(seen).collect();
    eprintln!(
        "{label}: {runs} harvests, {chunks} chunks, {} distinct flows sent, {} recovered, {} missing",
        sent.len(),
        seen.intersection(sent).count(),
        missing.len()
    );
    assert!(
        sent.len() > at_least,
        "the traffic generator sent {} flows",
        sent.len()
    );
    assert!(
        missing.is_empty(),
        "{} flows lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// The source addresses of the UDP flows to `port` that `ra` reads from `file`. (`ra` exits 1
/// when no record matches its filter, as it does for a file that is not argus data; callers
/// walk the chunks themselves.)
pub fn flow_sources(file: &Path, port: u16) -> BTreeSet<Ipv4Addr> {
    flow_sources_with(Path::new("ra"), &[], file, port)
}

/// [`flow_sources`] with another `ra` and leading options (the argus 5.0.3 `ra`, which reads
/// argus 3 and argus 5 data, runs with `-X`: no rc file).
pub fn flow_sources_with(
    ra: &Path,
    options: &[&str],
    file: &Path,
    port: u16,
) -> BTreeSet<Ipv4Addr> {
    let out = Command::new(ra)
        .args(options)
        .args(["-n", "-L", "-1", "-c", ",", "-s", "saddr", "dport", "-r"])
        .arg(file)
        .args(["-", &format!("udp and dst port {port}")])
        .output()
        .expect("run ra");
    let no_match = out.status.code() == Some(1) && out.stdout.is_empty() && out.stderr.is_empty();
    assert!(
        out.status.success() || no_match,
        "ra failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect()
}
