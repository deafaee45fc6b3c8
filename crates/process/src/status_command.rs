//! `process_argus status` as a command: the report `status` gathers, rendered as a table, as
//! JSON or as Prometheus text (`metrics`), printed, and its worst state turned into the exit
//! status of a monitoring plugin. It sits above both renderers so that neither imports the
//! other.

use std::fmt::Write as _;

use crate::cli::StatusFormat;
use time::OffsetDateTime;

use crate::status_render::{render_hours, render_json, render_table};
use argus_ingest::config::Config;
use argus_ingest::retention_warning::RetentionWarning;
use argus_ingest::space;
use argus_ingest::status::{State, gather, hooks};

/// Runs `status`, printing the table, JSON or Prometheus text on stdout. Returns the exit status: 0 all well,
/// 1 warnings, 2 a stale client, 3 the status could not be determined.
pub(crate) fn run(config: &Config, format: StatusFormat, now: OffsetDateTime) -> u8 {
    let json = format == StatusFormat::Json;
    let rows = match gather(config, now) {
        Ok(rows) => rows,
        Err(e) => {
            log::error!("{}", argus_ingest::error_chain(&e));
            return 3;
        }
    };
    let hooks = match hooks(config) {
        Ok(h) => h,
        Err(e) => {
            log::error!("{}", argus_ingest::error_chain(&e));
            return 3;
        }
    };
    let mut worst = rows
        .iter()
        .filter_map(|r| r.state(now, config))
        .max()
        .unwrap_or(State::Ok);
    if hooks.failed > 0 {
        worst = worst.max(State::Warning);
    }
    let blocked = space::shortage(config);
    let retention = RetentionWarning::load(&config.state_dir).filter(|w| w.recent(now));
    if retention.is_some() {
        worst = worst.max(State::Warning);
    }
    let text = if format == StatusFormat::Prometheus {
        let counters = argus_ingest::counters::Counters::load(&config.state_dir);
        argus_ingest::metrics::render(config, now, &counters, &rows, hooks)
    } else if json {
        render_json(
            &rows,
            config,
            now,
            worst,
            hooks,
            blocked.as_ref().map(ToString::to_string).as_deref(),
            retention.as_ref(),
        )
    } else {
        let mut table = render_table(&rows, config, now);
        if let Some(why) = &blocked {
            let _infallible = writeln!(table, "INGEST STOPPED: {why}");
        }
        if let Some(w) = &retention {
            let _infallible = writeln!(
                table,
                "RETENTION at {}: {}",
                argus_core::stamp::format_rfc3339(w.at),
                w.message
            );
        }
        if hooks.pending + hooks.failed > 0 {
            let _infallible = writeln!(
                table,
                "hooks: {} pending, {} failed (see process_argus hooks list)",
                hooks.pending, hooks.failed
            );
        }
        table
    };
    use std::io::Write;
    let _ignored = std::io::stdout().lock().write_all(text.as_bytes());
    match worst {
        _ if blocked.is_some() => 2,
        State::Ok => 0,
        State::Warning | State::Clock | State::Restarting | State::Dropping => 1,
        State::Stale => 2,
    }
}

/// Runs `status --host CLIENT`: that sensor's last 24 hours, hour by hour. Exit 0, or 3 when the
/// ledger cannot be read or does not know the client.
pub(crate) fn host(config: &Config, client: &str, format: StatusFormat, now: OffsetDateTime) -> u8 {
    let hours = match argus_ingest::status::last_day(config, client, now) {
        Ok(Some(hours)) => hours,
        Ok(None) => {
            log::error!("no upload of client {client:?} was ingested (see process_argus status)");
            return 3;
        }
        Err(e) => {
            log::error!("{}", argus_ingest::error_chain(&e));
            return 3;
        }
    };
    let text = render_hours(client, &hours, format == StatusFormat::Json);
    use std::io::Write;
    let _ignored = std::io::stdout().lock().write_all(text.as_bytes());
    0
}
