//! `process_argus quarantine`: `list`, and `requeue` (groups sent back to the dropzone after a
//! fix, through webjob-drop's crash-safe requeue).

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::time::SystemTime;

use crate::cli::QuarantineAction;
use argus_core::escape::{Escaped, EscapedPath};
use webjob_drop::QuarantinedGroup;

use crate::exit::Exit;
use crate::render::to_json;
use argus_ingest::config::Config;
use argus_ingest::dropzone::client_of_stem;

/// Runs `quarantine ACTION`.
pub(crate) fn command(config: &Config, action: &QuarantineAction) -> Exit {
    // Requeues a kill interrupted are finished first, so that the listing is whole.
    if let Err(e) = webjob_drop::recover_requeues(&config.quarantine_dir) {
        log::error!("{}", argus_core::error_chain(&e));
        return Exit::Io;
    }
    let groups = match webjob_drop::list_quarantine(&config.quarantine_dir) {
        Ok(g) => g,
        Err(e) => {
            log::error!(
                "cannot read the quarantine: {}",
                argus_core::error_chain(&e)
            );
            return Exit::Io;
        }
    };
    match action {
        QuarantineAction::List { json } => {
            crate::say(&if *json {
                as_json(&groups)
            } else {
                as_table(&groups)
            });
            Exit::Ok
        }
        QuarantineAction::Requeue {
            stems,
            all,
            reason,
            dry_run,
        } => requeue(config, &groups, stems, *all, reason.as_deref(), *dry_run),
    }
}

fn requeue(
    config: &Config,
    groups: &[QuarantinedGroup],
    stems: &[String],
    all: bool,
    reason: Option<&str>,
    dry_run: bool,
) -> Exit {
    let chosen = match argus_ingest::quarantine::choose(groups, stems, all, reason) {
        Ok(chosen) => chosen,
        Err(argus_ingest::quarantine::ChooseError::Unknown(stems)) => {
            for stem in stems {
                log::error!("no quarantined group {stem:?} (see `process_argus quarantine list`)");
            }
            return Exit::Usage;
        }
        Err(e @ argus_ingest::quarantine::ChooseError::Pattern { .. }) => {
            log::error!("--reason {e}");
            return Exit::Usage;
        }
    };
    let mut exit = Exit::Ok;
    for g in chosen {
        let name = Escaped(g.stem.as_bytes());
        if dry_run {
            crate::say(&format!(
                "would requeue {name} from {}",
                EscapedPath(&g.dir)
            ));
            continue;
        }
        // The reason file says where the group came from; webjob-drop refuses anything outside
        // the dropzone.
        match webjob_drop::requeue_group(&g.dir, &config.quarantine_dir, &config.drop_dir) {
            Ok(back) => crate::say(&format!("requeued {name} to {}", EscapedPath(&back.source))),
            Err(e) => {
                log::error!("{}", argus_core::error_chain(&e));
                exit = exit.max(Exit::Io);
            }
        }
    }
    exit
}

fn when(at: Option<SystemTime>) -> String {
    at.map_or("-".to_owned(), |t| {
        argus_core::stamp::format_rfc3339(time::OffsetDateTime::from(t))
    })
}

fn client(g: &QuarantinedGroup) -> &str {
    g.stem.to_str().and_then(client_of_stem).unwrap_or("-")
}

fn as_table(groups: &[QuarantinedGroup]) -> String {
    let mut out = format!(
        "{:<20} {:<24} {:<46} REASON\n",
        "QUARANTINED", "CLIENT", "STEM"
    );
    for g in groups {
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:<46} {}",
            when(g.at),
            client(g),
            Escaped(g.stem.as_bytes()).to_string(),
            Escaped(g.reason.as_deref().unwrap_or("(no reason file)").as_bytes())
        );
    }
    let _ = write!(out, "({} groups)", groups.len());
    out
}

fn as_json(groups: &[QuarantinedGroup]) -> String {
    let groups = groups
        .iter()
        .map(|g| GroupJson {
            stem: String::from_utf8_lossy(g.stem.as_bytes()),
            client: client(g),
            quarantined: g.at.map(|_| when(g.at)),
            reason: g.reason.as_deref(),
            dir: g.dir.display().to_string(),
        })
        .collect();
    to_json(&ListJson { groups })
}

/// `quarantine list --json`: serde writes the keys in the order declared here.
#[derive(serde::Serialize)]
struct ListJson<'a> {
    groups: Vec<GroupJson<'a>>,
}

/// One quarantined group of [`ListJson`].
#[derive(serde::Serialize)]
struct GroupJson<'a> {
    stem: std::borrow::Cow<'a, str>,
    client: &'a str,
    quarantined: Option<String>,
    reason: Option<&'a str>,
    dir: String,
}
