//! `cargo xtask demo`: a WebJob dropzone filled with real argus uploads, one process_argus pass,
//! and what came out.

use std::fs;
use std::path::Path;
use std::process::Command;

use time::{Duration, OffsetDateTime};
use webjob_drop::fixture::Upload;

use crate::util;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let dir = match args {
        [] => crate::root().join("demo"),
        [flag, dir] if flag == "--dir" => Path::new(dir).to_path_buf(),
        _ => return Err("usage: cargo xtask demo [--dir DIR]".to_owned()),
    };
    let bins = util::build(false)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = util::write_config(&dir, &["sensor*"], "archive_compression = \"gzip\"\n")?;

    // Three sensors, two days of hourly uploads from the bundled real samples, one of
    // them damaged, one from a sensor this server does not collect. sensor3 is upgraded from
    // argus 3 to argus 5 half-way.
    let names = [
        "hostA.argus",
        "hostB.argus",
        "hostC.argus",
        "mar-only.argus",
        "hostD.chunk1.argus",
        "hostD.chunk2.argus",
    ];
    let samples = names
        .iter()
        .map(|n| util::sample(n))
        .collect::<Result<Vec<_>, _>>()?;
    let samples5 = names
        .iter()
        .map(|n| util::sample(&format!("argus5/{n}")))
        .collect::<Result<Vec<_>, _>>()?;
    let incoming = dir.join("incoming");
    let start = OffsetDateTime::now_utc() - Duration::hours(50);
    let mut n = 0;
    for hour in 0..50 {
        for sensor in ["sensor1", "sensor2", "sensor3"] {
            let at = start + Duration::hours(hour) + Duration::seconds(n % 60);
            let upgraded = sensor == "sensor3" && hour >= 25;
            let set = if upgraded { &samples5 } else { &samples };
            let out = set[usize::try_from(n).unwrap_or(0) % set.len()].clone();
            n += 1;
            Upload::at(sensor, at)
                .pid(4000 + u32::try_from(n).unwrap_or(0))
                .out(out)
                .hostname(&format!("{sensor}.example.org"))
                .with_manifest(
                    &format!("{sensor}.example.org"),
                    u64::try_from(hour + 1).unwrap_or(0),
                )
                .write(&incoming)
                .map_err(|e| format!("cannot write an upload: {e}"))?;
        }
    }
    Upload::at("sensor2", start + Duration::hours(50))
        .out(util::sample("hostA.truncated.argus")?)
        .hostname("sensor2.example.org")
        .write(&incoming)
        .map_err(|e| format!("cannot write an upload: {e}"))?;
    Upload::at("laptop7", start)
        .out(samples[0].clone())
        .write(&incoming)
        .map_err(|e| format!("cannot write an upload: {e}"))?;

    println!("demo: {} uploads in {}", n + 2, incoming.display());
    println!("demo: config {}:\n", config.display());
    print!(
        "{}",
        fs::read_to_string(&config).map_err(|e| e.to_string())?
    );
    println!("\ndemo: $ process_argus --config {}", config.display());
    let status = Command::new(bins.join("process_argus"))
        .arg("--config")
        .arg(&config)
        .status()
        .map_err(|e| format!("cannot run process_argus: {e}"))?;
    println!(
        "demo: exit status {} (1: an upload was quarantined)",
        status.code().unwrap_or(-1)
    );
    let log = fs::read_to_string(dir.join("log/process_argus.log")).unwrap_or_default();
    println!(
        "demo: the end of {}:",
        dir.join("log/process_argus.log").display()
    );
    let lines: Vec<&str> = log.lines().collect();
    for line in &lines[lines.len().saturating_sub(6)..] {
        println!("  {line}");
    }
    println!();

    for sub in ["operational", "archive", "quarantine", "incoming"] {
        let path = dir.join(sub);
        let mut names: Vec<String> = fs::read_dir(&path)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        println!("{}/ ({} entries)", path.display(), names.len());
        for name in names.iter().take(8) {
            let p = path.join(name);
            let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            let reason = fs::read_to_string(p.join("reason"))
                .ok()
                .and_then(|r| {
                    r.lines()
                        .find_map(|l| l.strip_prefix("Reason=").map(|r| format!(", reason: {r}")))
                })
                .unwrap_or_default();
            let records = if sub == "operational" {
                day_summary(&p)
            } else {
                String::new()
            };
            println!("  {name}  ({size} bytes{records}{reason})");
        }
        if names.len() > 8 {
            println!("  ... and {} more", names.len() - 8);
        }
    }
    if !util::have("ra") {
        println!("\n(install argus-client for record counts with ra)");
    }
    println!(
        "\ndemo: $ process_argus status --config {}",
        config.display()
    );
    Command::new(bins.join("process_argus"))
        .arg("status")
        .arg("--config")
        .arg(&config)
        .status()
        .map_err(|e| format!("cannot run process_argus status: {e}"))?;
    Ok(())
}

/// A day file's records and streams by argus version, and what Debian's `ra` (argus 3) reads of
/// it when it holds argus 3 data only.
fn day_summary(path: &Path) -> String {
    use argus_core::record::Version;
    let Ok(report) = argus_core::codec::open_decoded(path)
        .map_err(|e| e.to_string())
        .and_then(|r| argus_core::record::walk(r).map_err(|e| e.to_string()))
    else {
        return String::new();
    };
    let streams: Vec<String> = Version::ALL
        .iter()
        .filter_map(|&v| {
            let n = report.streams.iter().filter(|s| s.version == v).count();
            (n > 0).then(|| format!("{n} {v}"))
        })
        .collect();
    let mut text = format!(", {} records in {}", report.records, streams.join(" + "));
    if report.has_version(Version::V5) {
        text.push_str(" streams: read it with ra 5");
    } else if let Some(r) = util::ra_records(path) {
        text.push_str(&format!(" streams, ra reads {r} records"));
    }
    text
}
