//! External tools the tests use (`ra`, `argus`, the compressors): present, or a loud skip that
//! becomes a failure under `CI=true`.

use std::path::Path;
use std::process::{Command, Stdio};

/// True under CI, where every test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when `tool` can be run. When it cannot, says so loudly; under CI that is a failure.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(!in_ci(), "{tool} is required under CI=true");
        eprintln!("SKIPPED: {tool} is not installed");
    }
    ok
}

/// True when running as root. When not, says so loudly; under CI that is a failure.
pub fn root(why: &str) -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        assert!(!in_ci(), "root is required under CI=true ({why})");
        eprintln!("SKIPPED: not root ({why})");
    }
    ok
}

/// True when the machine has at least `n` cores. When not, says so loudly; under CI (two
/// cores or more) that is a failure.
pub fn cores(n: usize, why: &str) -> bool {
    let have = std::thread::available_parallelism().map_or(1, usize::from);
    let ok = have >= n;
    if !ok {
        assert!(!in_ci(), "{n} cores are required under CI=true ({why})");
        eprintln!("SKIPPED: {have} core(s) here, {n} needed ({why})");
    }
    ok
}

/// Records `ra` reads from an argus file (plain or compressed), management records included.
///
/// ra prints management records only when its rc file says so (`RA_PRINT_MAN_RECORDS`, set in
/// the `/etc/ra.conf` of Debian's argus-client), and it skips that file whenever any argument
/// merely *contains* `-X` (its "no rc file" option): a path like `/tmp/web_job-Xa1b2c/...` was
/// enough to lose every management record. So the rc file is never read (`-X`) and the
/// settings are given in one of our own (`-F`).
pub fn ra_records(file: &Path) -> usize {
    let mut rc = tempfile::NamedTempFile::new().expect("ra rc file");
    std::io::Write::write_all(
        &mut rc,
        b"RA_PRINT_MAN_RECORDS=yes\nRA_PRINT_EVENT_RECORDS=yes\n",
    )
    .expect("write ra rc file");
    let out = Command::new("ra")
        .arg("-X")
        .arg("-F")
        .arg(rc.path())
        .args(["-n", "-L", "-1", "-r"])
        .arg(file)
        .output()
        .expect("run ra");
    assert!(out.status.success(), "ra failed on {}", file.display());
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

/// The argus 5.0.3 install the tests run (`ARGUS5_PREFIX`, with `sbin/argus` and `bin/ra`; CI
/// sets it), or `None` with a loud notice naming the test that skips what needs it.
pub fn argus5_prefix(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("ARGUS5_PREFIX") {
        Some(p) if Path::new(&p).join("bin/ra").exists() => Some(p.into()),
        _ => {
            eprintln!(
                "SKIPPED (in part) {test}: ARGUS5_PREFIX is not set to an argus 5.0.3 install, \
                 so nothing here runs argus 5 or its ra"
            );
            None
        }
    }
}

/// Flow records the argus 5.0.3 `ra` under `prefix` reads from `file` (argus 3 and argus 5
/// data alike, plain or compressed). It prints flow records only, as it is run here.
pub fn ra5_flows(prefix: &Path, file: &Path) -> u64 {
    let out = Command::new(prefix.join("bin/ra"))
        .args(["-X", "-n", "-L", "-1", "-r"])
        .arg(file)
        .output()
        .expect("run ra 5");
    assert!(
        out.status.success(),
        "ra 5 failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The fields `ra` prints for each flow record of `file` (`-s FIELDS`, times as Unix seconds
/// with their fraction), one `Vec` per flow. `ra` is Debian's or argus 5's.
pub fn ra_flows(ra: &Path, file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let out = Command::new(ra)
        .args(["-X", "-n", "-L", "-1", "-u", "-s"])
        .args(fields)
        .arg("-r")
        .arg(file)
        .output()
        .expect("run ra");
    assert!(
        out.status.success(),
        "ra -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The whole seconds of a time field `ra -u` printed (`1796127850.755401`).
pub fn seconds(field: &str) -> i64 {
    field
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {field:?}"))
}

/// Fails unless Debian's `promtool check metrics` accepts the exposition in `file`.
pub fn assert_promtool_accepts(file: &Path) {
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).expect("open the metrics"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics {}: {}{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// One management record (MAR) as argus' own `ra` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaMar {
    /// `ra`'s `state` column: `STA` (start), `CON` (status), `STP` (stop), `ERR`.
    pub cause: String,
    /// When argus wrote it (whole Unix seconds).
    pub now: i64,
    /// When its argus started (whole Unix seconds).
    pub started: i64,
    /// Packets the capture delivered in its interval (`spkts`).
    pub pkts: u64,
    /// Packets the capture dropped in its interval (`sport`).
    pub dropped: u64,
}

/// The MARs of `file` as `ra` prints them: Debian's 3.0.8 `ra` for argus 3 data (`argus5`
/// `None`), or the 5.0.3 one under the `argus5` prefix for argus 5 data.
///
/// `ra` prints a MAR through flow fields: `spkts` is its packets delivered, `sport` its
/// packets dropped, and `stime` and `ltime` its time and its argus' start time (swapped in
/// 5.0.3; see argus-core's `record::mar` tests, which found the mapping). The command is
/// `ra -X -F man.rc -n -u -L -1 -c , -s stime ltime spkts sport state -r FILE - man` with
/// `RA_PRINT_MAN_RECORDS=yes` in `man.rc`. The 5.0.3 `ra` never prints the MAR/START of the
/// first file it reads, so it reads the MAR-only sample first and swallows that one's.
pub fn ra_mars(argus5: Option<&Path>, file: &Path) -> Vec<RaMar> {
    let mut rc = tempfile::NamedTempFile::new().expect("ra rc file");
    std::io::Write::write_all(&mut rc, b"RA_PRINT_MAN_RECORDS=yes\n").expect("write ra rc file");
    let ra = argus5.map_or_else(|| std::path::PathBuf::from("ra"), |p| p.join("bin/ra"));
    let mut cmd = Command::new(ra);
    cmd.arg("-X").arg("-F").arg(rc.path());
    cmd.args(["-n", "-u", "-L", "-1", "-c", ","]);
    cmd.args(["-s", "stime", "ltime", "spkts", "sport", "state", "-r"]);
    if argus5.is_some() {
        cmd.arg(crate::bins::sample("argus5/mar-only.argus"));
    }
    let out = cmd.arg(file).args(["-", "man"]).output().expect("run ra");
    // Debian's ra exits 1 when it printed no flow record, MARs or not.
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && out.stderr.is_empty(),
        "ra on {}: {:?} {}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [stime, ltime, pkts, dropped, cause] = f[..] else {
                panic!("ra printed {line:?}");
            };
            let (now, started) = if argus5.is_some() {
                (ltime, stime)
            } else {
                (stime, ltime)
            };
            let number = |s: &str| -> u64 {
                s.parse()
                    .unwrap_or_else(|_| panic!("not a count: {s:?} in {line:?}"))
            };
            RaMar {
                cause: cause.to_owned(),
                now: seconds(now),
                started: seconds(started),
                pkts: number(pkts),
                dropped: number(dropped),
            }
        })
        .collect()
}

/// The value of the sample `name` (its labels as written, `name{client="c1"}`) in a
/// Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// How a process run by [`run_bounded`] ended, and what it wrote.
#[derive(Debug)]
pub struct Bounded {
    /// Its exit status, `None` when a signal ended it (also when it was killed at the limit).
    pub code: Option<i32>,
    /// True when it was still running at the limit and was killed with SIGKILL.
    pub killed: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Bounded {
    /// How it ended, in words (`exit 0`, `killed at the time limit`, `ended by a signal`).
    pub fn describe(&self) -> String {
        match (self.killed, self.code) {
            (true, _) => "killed at the time limit".to_owned(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "ended by a signal".to_owned(),
        }
    }
}

/// Runs `cmd` (stdin empty, output to temporary files) and kills it with SIGKILL if it is still
/// running after `limit`: argus 5.0.3 and its `ra` can hang on malformed input, and argus 5
/// ignores SIGTERM while it has work scheduled, so nothing gentler is tried.
pub fn run_bounded(cmd: &mut Command, limit: std::time::Duration) -> std::io::Result<Bounded> {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()?;
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    let (status, killed) = loop {
        if let Some(status) = child.try_wait()? {
            break (status, false);
        }
        if start.elapsed() >= limit {
            // Child::kill sends SIGKILL on Unix.
            child.kill()?;
            break (child.wait()?, true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    };
    let read = |f: &mut std::fs::File| -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        f.rewind()?;
        f.read_to_end(&mut v)?;
        Ok(v)
    };
    Ok(Bounded {
        code: status.code(),
        killed,
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    })
}
