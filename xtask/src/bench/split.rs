//! `cargo xtask bench`, part (h): the cost of filing by record time. 1,000 small uploads whose
//! flows straddle midnight (real argus data: a capture of packets at chosen times, read by
//! Debian's `argus -r`), ingested with `day_boundary = "upload"` (one day file each) and with
//! `"record"` (every upload read again and split over two day files, each piece
//! beginning with a MAR/START), in the same run, each after the file system settled; the ratio
//! is record mode's time over upload mode's.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::pcap::Datagram;
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

use crate::util;

/// Uploads per run.
const UPLOADS: usize = 1000;

/// Runs part (h) with the `process_argus` binary `ours` in `dir`; the report line, or `None`
/// without argus.
pub(crate) fn run(ours: &Path, dir: &Path) -> Result<Option<String>, String> {
    let argus = Path::new("/usr/sbin/argus");
    if !argus.exists() {
        println!("bench (h): skipped, no /usr/sbin/argus to make the data with");
        return Ok(None);
    }
    println!("bench (h): {UPLOADS} uploads across midnight, by upload day and by record time");
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let midnight = OffsetDateTime::now_utc()
        .replace_time(time::Time::MIDNIGHT)
        .unix_timestamp();
    // 40 flows, one every 30 s from 23:50 to 00:10.
    let datagrams: Vec<Datagram> = (0u8..40)
        .map(|i| Datagram {
            at: (
                u32::try_from(midnight - 600 + i64::from(i) * 30).unwrap_or(0),
                0,
            ),
            src: Ipv4Addr::new(10, 9, 0, i + 1),
            dst: Ipv4Addr::new(10, 200, 0, 1),
            sport: 30_000 + u16::from(i),
            dport: 53,
        })
        .collect();
    let data = test_support::pcap::argus_of(argus, &datagrams)?;
    let stamp = OffsetDateTime::now_utc() - time::Duration::minutes(30);
    let mut times = Vec::new();
    for mode in ["upload", "record"] {
        let root = dir.join(mode);
        let config = util::write_config(
            &root,
            &["client1"],
            &format!("day_boundary = \"{mode}\"\narchive_days = 0\n"),
        )?;
        for i in 0..UPLOADS {
            let at = stamp + time::Duration::seconds(i64::try_from(i).unwrap_or(0));
            Upload::at("client1", at)
                .out(data.clone())
                .hostname("sensor1")
                .write(&root.join("incoming"))
                .map_err(|e| format!("cannot write an upload: {e}"))?;
        }
        let _ = Command::new("sync").status();
        // A file system that has just freed many inodes (the previous run's removals) is slower
        // for reasons neither mode owns: each run starts from a settled one, as in parts (a)
        // and (i).
        super::settle("(h)");
        let began = Instant::now();
        let run = Command::new(ours)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", ours.display()))?;
        let took = began.elapsed();
        if !run.status.success() {
            return Err(format!(
                "(h) {mode}: {}",
                String::from_utf8_lossy(&run.stderr)
            ));
        }
        let days = fs::read_dir(root.join("operational"))
            .map_err(|e| e.to_string())?
            .count();
        let want = if mode == "record" { 2 } else { 1 };
        if days != want {
            return Err(format!("(h) {mode}: {days} day files, not {want}"));
        }
        times.push(took);
    }
    let [by_upload, by_record] = [times[0], times[1]];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Some(format!(
        "(h) {UPLOADS} uploads across midnight: by upload day {:.0} ms, by record time (split in two) {:.0} ms: {:.2}x",
        ms(by_upload),
        ms(by_record),
        by_record.as_secs_f64() / by_upload.as_secs_f64().max(1e-9)
    )))
}
