//! (i) growth: rounds of uploads from many sensors into one server, as history piles up (the
//! archive, the ledger, the day files). The last round's pass must take no longer than the
//! first's (within 10 %), and its peak RSS stay under 100 MiB: a pass costs what its uploads
//! cost, not what the server has kept. Every pass starts on a settled file system (see
//! [`SETTLE`](super::SETTLE)): ext4 without a journal makes each new file step over the inodes
//! freed in the last minute, and only the rounds after the first would start right after the
//! 80,000 removals of the pass before.

use std::path::Path;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

use super::{Row, max_rss_kib, sync};
use crate::util;

/// The shape of a run: `rounds` passes of `uploads` uploads each, from `sensors` sensors.
pub(crate) struct Shape {
    pub(crate) rounds: usize,
    pub(crate) uploads: usize,
    pub(crate) sensors: usize,
}

pub(crate) fn run(ours: &Path, dir: &Path, shape: &Shape) -> Result<(Row, String), String> {
    println!(
        "bench (i): {} rounds of {} uploads from {} sensors into one server",
        shape.rounds, shape.uploads, shape.sensors
    );
    let samples = util::four_samples()?;
    let config = util::write_config(dir, &["sensor*"], "")?;
    let incoming = dir.join("incoming");
    // Every stamp of a sensor differs: round after round, upload after upload.
    let start = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let per_sensor = shape.uploads.div_ceil(shape.sensors.max(1));
    let mut times = Vec::new();
    // CPU seconds too: the work a round does, which a shared machine's waits on its disk do
    // not move as much as they move the wall time.
    let mut cpus = Vec::new();
    let mut peak_kib = 0;
    for round in 0..shape.rounds {
        for j in 0..shape.uploads {
            let sensor = j % shape.sensors.max(1);
            let k = round * per_sensor + j / shape.sensors.max(1);
            let at = start + time::Duration::seconds(i64::try_from(k).unwrap_or(0));
            let name = format!("sensor{sensor}");
            Upload::at(&name, at)
                .out(samples[j % samples.len()].clone())
                .hostname(&name)
                .write(&incoming)
                .map_err(|e| format!("cannot write an upload: {e}"))?;
        }
        sync()?;
        super::settle("(i)");
        let cpu = super::floors::children_cpu();
        let began = Instant::now();
        let kib = max_rss_kib(ours, &config)?;
        let took = began.elapsed();
        let cpu = super::floors::children_cpu().saturating_sub(cpu);
        sync()?;
        println!(
            "bench (i): round {}: {:.3} s, CPU {:.3} s, peak RSS {kib} KiB",
            round + 1,
            took.as_secs_f64(),
            cpu.as_secs_f64()
        );
        times.push(took);
        cpus.push(cpu);
        peak_kib = peak_kib.max(kib);
    }
    let first = times.first().copied().unwrap_or(Duration::ZERO);
    let last = times.last().copied().unwrap_or(Duration::ZERO);
    let ratio = first.as_secs_f64() / last.as_secs_f64().max(1e-9);
    let row = Row {
        name: format!(
            "(i) {}x{} uploads, {} sensors: round 1 / round {}",
            shape.rounds, shape.uploads, shape.sensors, shape.rounds
        ),
        ours: last,
        baseline: first,
        target: ">= 0.91x",
        met: ratio >= 1.0 / 1.1,
    };
    if let (Some(first), Some(last)) = (cpus.first(), cpus.last()) {
        println!(
            "bench (i): CPU of round {} / round 1: {:.2}x",
            cpus.len(),
            last.as_secs_f64() / first.as_secs_f64().max(1e-9)
        );
    }
    let note = format!(
        "(i) peak RSS over the rounds: {peak_kib} KiB (target below 100 MiB) {}",
        if peak_kib < 100 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok((row, note))
}
