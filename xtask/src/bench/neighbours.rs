//! (j) neighbours: a pass beside other jobs' uploads. A WebJob server drops the uploads of every
//! job into one `incoming` directory, and another job's consumer may leave them there for long.
//! (a)'s uploads are ingested alone and beside `others` uploads of another job from 500
//! clients, and a pass with nothing of its own to do runs beside them again: the pass must
//! cost what its own uploads cost, beside them no more than the listing of their names. Peak
//! RSS beside them must stay within 1.5x of the pass alone.

use std::path::Path;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

use super::{backlog_tree, max_rss_kib, settle, sync};
use crate::util;

/// One measured pass: wall time and peak RSS.
fn pass(ours: &Path, tree: &Path) -> Result<(Duration, u64), String> {
    let began = Instant::now();
    let kib = max_rss_kib(ours, &tree.join("etc/process_argus.cfg"))?;
    Ok((began.elapsed(), kib))
}

pub(crate) fn run(
    ours: &Path,
    dir: &Path,
    uploads: usize,
    others: usize,
) -> Result<String, String> {
    println!("bench (j): {uploads} uploads alone, then beside {others} uploads of another job");
    let samples = util::four_samples()?;
    let start = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    let alone = dir.join("alone");
    let beside = dir.join("beside");
    backlog_tree(&alone, &samples, start, uploads)?;
    backlog_tree(&beside, &samples, start, uploads)?;
    for i in 0..others {
        let at = start + time::Duration::seconds(i64::try_from(i).unwrap_or(0));
        Upload::at(&format!("host{}", i % 500), at)
            .job("ftimes_snapshot")
            .out(b"other job's data".to_vec())
            .write(&beside.join("incoming"))
            .map_err(|e| format!("cannot write another job's upload: {e}"))?;
    }
    sync()?;
    settle("(j)");
    let (t_alone, rss_alone) = pass(ours, &alone)?;
    let (t_beside, rss_beside) = pass(ours, &beside)?;
    let (t_idle, rss_idle) = pass(ours, &beside)?;
    let _ignored = std::fs::remove_dir_all(dir);
    let ratio = rss_beside as f64 / rss_alone.max(1) as f64;
    Ok(format!(
        "(j) {uploads} uploads alone: {:.3} s, {rss_alone} KiB; beside {others} of another job: {:.3} s, {rss_beside} KiB (RSS {ratio:.2}x, target <= 1.5x) {}; a pass with none of its own beside them: {:.3} s, {rss_idle} KiB",
        t_alone.as_secs_f64(),
        t_beside.as_secs_f64(),
        if ratio <= 1.5 { "met" } else { "MISSED" },
        t_idle.as_secs_f64(),
    ))
}
