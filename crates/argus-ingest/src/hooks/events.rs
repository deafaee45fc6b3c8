//! Which hook events an occurrence makes, and when they are queued: `ingested` from the journal
//! entries of a durable batch, `quarantined` around the move into the quarantine, `day_closed`
//! before a closed day is compressed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use argus_core::codec::Compression;
use argus_core::stateline::StateLines;
use time::OffsetDateTime;

use crate::config::{Config, Event, HookPolicy};
use crate::dayfile::DayFile;
use crate::journal::Entry;
use crate::ledger::ClientState;

use super::Queue;
use super::queue::Queued;

/// The events of every hook on `event` for one occurrence with these placeholder values.
pub fn events(
    policy: &HookPolicy,
    event: Event,
    values: &[(&str, Vec<u8>)],
    now: OffsetDateTime,
) -> Vec<Queued> {
    policy
        .on(event)
        .map(|hook| {
            Queued::new(
                &hook.name,
                event,
                values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
                now.unix_timestamp(),
            )
        })
        .collect()
}

/// The `ingested` events of uploads whose data is durable, from their journal entries (the same
/// events whether queued by the commit or, after a crash, by recovery). An upload that appended
/// nothing (empty, or every chunk a duplicate) has no day file and no event.
pub fn ingested(policy: &HookPolicy, entries: &[Entry], now: OffsetDateTime) -> Vec<Queued> {
    if policy.on(Event::Ingested).next().is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in entries {
        let Some(day_file) = &e.day else { continue };
        let parsed = day_file
            .file_name()
            .and_then(OsStr::to_str)
            .and_then(crate::dayfile::parse_day_file);
        let (host, day) = parsed.map_or((Vec::new(), Vec::new()), |d| {
            (
                d.host.as_str().as_bytes().to_vec(),
                argus_core::stamp::format_date(d.day).into_bytes(),
            )
        });
        let stem = e.rdy.file_stem().map_or(&[][..], OsStrExt::as_bytes);
        let values = [
            ("stem", stem.to_vec()),
            ("client", e.client.as_bytes().to_vec()),
            ("host", host),
            ("day", day),
            ("day_file", day_file.as_os_str().as_bytes().to_vec()),
            ("archive", e.archive.as_os_str().as_bytes().to_vec()),
            ("bytes", e.bytes.to_string().into_bytes()),
            (
                "records",
                e.records
                    .map(|r| r.to_string())
                    .unwrap_or_default()
                    .into_bytes(),
            ),
        ];
        out.extend(events(policy, Event::Ingested, &values, now));
    }
    out
}

/// The lines of `hooks/closed`: a space, then 4 bytes of SHA-256.
const CLOSED_LINES: StateLines = StateLines::new(b' ', 4);

/// Queues the `day_closed` events of `days`, the plain day files whose day is closed, before
/// they are compressed: each event names the file as it will be, and runs once it is there.
/// A day compressed is closed for good. When day files are not compressed, `days` are those
/// not yet announced, and `hooks/closed` remembers them from now on (for a listing after a
/// crash: see [`unannounced`]).
pub fn day_closed(
    config: &Config,
    queue: &Queue,
    days: &[DayFile],
    now: OffsetDateTime,
) -> argus_core::Result<()> {
    if config.hooks.on(Event::DayClosed).next().is_none() || days.is_empty() {
        return Ok(());
    }
    let codec = config.oper_codec;
    let compressing = codec.compression() != Compression::None;
    let mut events = Vec::new();
    for d in days {
        let name = if compressing {
            format!("{}{}", d.name, codec.suffix())
        } else {
            d.name.clone()
        };
        let values = [
            (
                "day_file",
                config.oper_dir.join(name).as_os_str().as_bytes().to_vec(),
            ),
            ("host", d.host.as_str().as_bytes().to_vec()),
            ("day", argus_core::stamp::format_date(d.day).into_bytes()),
        ];
        events.extend(super::events(&config.hooks, Event::DayClosed, &values, now));
    }
    queue.enqueue(&events)?;
    if !compressing {
        argus_core::failpoint::hit("day-closed-queued");
        append_closed(&closed_path(config), days.iter().map(|d| d.name.as_str()))?;
        argus_core::failpoint::hit("day-closed-noted");
    }
    Ok(())
}

/// Leaves in `plain`, every plain day file a listing found, those whose `day_closed` event is
/// still to come when day files are not compressed: `hooks/closed` lists the days announced.
/// The first time (no `hooks/closed` yet, so no `day_closed` hook ran here before), the days
/// closed by `now` are listed there without events, for they closed before any such hook
/// existed. Reading `hooks/closed` costs what the listing does (a name per day file), so it
/// is read only with one; it is trimmed then to the day files that still exist.
pub fn unannounced(
    config: &Config,
    plain: &mut BTreeSet<String>,
    now: OffsetDateTime,
) -> argus_core::Result<()> {
    let closed_file = closed_path(config);
    let (announced, on_disk) = match read_closed(&closed_file)? {
        Some((announced, bytes)) => (announced, Some(bytes)),
        None => {
            let closed = crate::dayfile::closed_days(&*plain, now, config.oper_compress_after_days);
            if !closed.is_empty() {
                log::info!(
                    "{} day files closed before the first day_closed hook; no event for them",
                    closed.len()
                );
            }
            (closed.into_iter().map(|d| d.name).collect(), None)
        }
    };
    let mut kept = Vec::new();
    plain.retain(|name| {
        let waits = !announced.contains(name);
        if !waits {
            CLOSED_LINES.seal(name.as_bytes(), &mut kept);
        }
        waits
    });
    if on_disk.as_deref() != Some(kept.as_slice()) {
        argus_core::publish::replace_durably(&closed_file, &kept)?;
    }
    Ok(())
}

fn closed_path(config: &Config) -> std::path::PathBuf {
    config.state_dir.join("hooks").join("closed")
}

/// The days `hooks/closed` lists, and its bytes; `None` when it does not exist.
fn read_closed(path: &Path) -> argus_core::Result<Option<(BTreeSet<String>, Vec<u8>)>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some((
            bytes
                .split_inclusive(|&b| b == b'\n')
                .filter_map(|l| CLOSED_LINES.unseal_str(l))
                .map(str::to_owned)
                .collect(),
            bytes,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(argus_core::Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Adds `names` to `hooks/closed`, durably: appended after a newline, which ends the torn line
/// a crash during an earlier append may have left (the seal drops it, and the empty line).
/// A `hooks/closed` that is gone (removed by hand) is left so: the next listing lists every
/// closed day in it again, these included, without events (see [`unannounced`]).
fn append_closed<'a>(path: &Path, names: impl Iterator<Item = &'a str>) -> argus_core::Result<()> {
    use std::io::Write;
    let mut out = vec![b'\n'];
    for name in names {
        CLOSED_LINES.seal(name.as_bytes(), &mut out);
    }
    let io = |op: &'static str| {
        move |source| argus_core::Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!(
                "{} is gone: the next listing of the day files takes every closed day as announced",
                argus_core::escape::EscapedPath(path)
            );
            return Ok(());
        }
        Err(e) => return Err(io("open")(e)),
    };
    file.write_all(&out).map_err(io("append to"))?;
    file.sync_data().map_err(io("sync"))
}

/// The lines of `hooks/health`: a space, then 4 bytes of SHA-256.
const HEALTH_LINES: StateLines = StateLines::new(b' ', 4);

/// Queues the `sensor_health` events of the `clients` whose condition changed since the last
/// one announced (`hooks/health` keeps it): entering dropping, restarting or a clock ahead, or
/// going back to `ok`. The values come from the ledger, so an event queued again after a crash
/// is the same event, queued once.
pub fn sensor_health<'c>(
    config: &Config,
    queue: &Queue,
    clients: impl IntoIterator<Item = (&'c String, &'c ClientState)>,
    now: OffsetDateTime,
) -> argus_core::Result<()> {
    if config.hooks.on(Event::SensorHealth).next().is_none() {
        return Ok(());
    }
    let path = config.state_dir.join("hooks").join("health");
    let mut announced = read_health(&path)?;
    let mut events = Vec::new();
    for (client, state) in clients {
        let condition = state.health.condition(now, config);
        let name = condition.map_or("ok", crate::health::Condition::name);
        let previous = announced.get(client).map_or("ok", String::as_str);
        if name == previous {
            continue;
        }
        let figures = state.health.figures(now);
        let values = [
            ("client", client.as_bytes().to_vec()),
            ("state", name.as_bytes().to_vec()),
            ("previous", previous.as_bytes().to_vec()),
            (
                "drop_ratio",
                figures
                    .drop_ratio_1h()
                    .map_or(String::new(), |r| format!("{r:.6}"))
                    .into_bytes(),
            ),
            ("restarts", figures.restarts_24h.to_string().into_bytes()),
            (
                "clock_offset",
                state
                    .health
                    .clock_offset
                    .map_or(String::new(), |o| o.to_string())
                    .into_bytes(),
            ),
        ];
        events.extend(super::events(
            &config.hooks,
            Event::SensorHealth,
            &values,
            now,
        ));
        announced.insert(client.clone(), name.to_owned());
    }
    if events.is_empty() {
        return Ok(());
    }
    queue.enqueue(&events)?;
    let mut out = Vec::new();
    for (client, state) in &announced {
        if state != "ok" {
            HEALTH_LINES.seal(format!("{client} {state}").as_bytes(), &mut out);
        }
    }
    argus_core::publish::replace_durably(&path, &out)
}

/// The conditions announced last, by client (a client not listed is `ok`).
fn read_health(path: &Path) -> argus_core::Result<std::collections::BTreeMap<String, String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes
            .split_inclusive(|&b| b == b'\n')
            .filter_map(|l| HEALTH_LINES.unseal_str(l))
            .filter_map(|l| l.split_once(' '))
            .map(|(c, s)| (c.to_owned(), s.to_owned()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(argus_core::Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}
