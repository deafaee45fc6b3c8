//! The three commands: resolve settings, run, map the outcome to an exit code.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;

use argus_core::escape::EscapedPath;
use argus_core::host::Hostname;

use crate::config::{Config, Settings, locate};
use crate::exit::Exit;
use crate::run::harvest as run_harvest;

/// Which configuration and host a command uses (`--config`, `--host`).
#[derive(Debug)]
pub(crate) struct Select {
    pub(crate) config: Option<std::path::PathBuf>,
    pub(crate) host: Option<String>,
}

/// EX_USAGE.
const USAGE: u8 = 64;

fn config_path(select: &Select) -> std::path::PathBuf {
    locate(
        select.config.as_deref(),
        std::env::var("HARVEST_ARGUS_CONFIG").ok().as_deref(),
        std::env::var("WEBJOB_HOME").ok().as_deref(),
    )
}

fn host(select: &Select) -> Result<Hostname, String> {
    match &select.host {
        Some(name) => Hostname::new(name)
            .map_err(|e| format!("--host {name:?} is not a valid host name: {e}")),
        None => {
            let raw = nix::unistd::gethostname().map_err(|e| {
                format!("cannot read this machine's host name: {e}; give --host NAME")
            })?;
            Hostname::from_bytes(raw.as_encoded_bytes()).map_err(|e| {
                format!(
                    "this machine's host name {:?} cannot name archives: {e}; give --host NAME",
                    raw.to_string_lossy()
                )
            })
        }
    }
}

/// Loads the configuration and resolves this host's settings, logging every problem.
fn settings(select: &Select) -> Result<Settings, ()> {
    let path = config_path(select);
    let host = host(select).map_err(|e| log::error!("{e}"))?;
    let config = Config::load(&path).map_err(|p| {
        for line in p.0 {
            log::error!("{line}");
        }
    })?;
    match config.resolve(&host) {
        Ok((settings, warnings)) => {
            for w in warnings {
                log::warn!("{w}");
            }
            log::debug!("settings of host {host} from {}", EscapedPath(&path));
            Ok(settings)
        }
        Err(problems) => {
            for line in problems.0 {
                log::error!("{line}");
            }
            Err(())
        }
    }
}

/// `harvest_argus`: one harvest.
pub(crate) fn harvest(select: &Select) -> u8 {
    if std::io::stdout().is_terminal() {
        log::error!(
            "stdout is a terminal: harvest_argus writes binary argus data there; run it under WebJob or redirect stdout"
        );
        return USAGE;
    }
    let Ok(settings) = settings(select) else {
        log::error!("nothing was done: fix the configuration (harvest_argus check-config)");
        return Exit::Config.code();
    };
    // The chunk goes to a duplicate of descriptor 1, unbuffered: every byte written is handed
    // to the kernel, and a failed write is seen at once.
    let mut stdout = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            log::error!("cannot use stdout: {e}");
            return Exit::NotShipped.code();
        }
    };
    let exit = run_harvest(&settings, &mut stdout, &mut std::io::stderr());
    match exit {
        Exit::Ok => log::info!("done"),
        other => log::error!("finished with problems (exit status {})", other.code()),
    }
    exit.code()
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not worth a panic: what it
/// did not want is simply not written.
fn print_out(text: &str) {
    use std::io::Write;
    let _ignored = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `harvest_argus check-config`.
pub(crate) fn check_config(select: &Select, json: bool) -> u8 {
    let path = config_path(select);
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(p) => {
            for line in p.0 {
                log::error!("{line}");
            }
            return Exit::Config.code();
        }
    };
    let mut problems = config.check_all();
    match host(select) {
        Ok(host) => match config.resolve(&host) {
            Ok((settings, _)) => {
                let rows = settings.effective();
                if json {
                    let doc = serde_json::json!({
                        "config": path.to_string_lossy(),
                        "host": settings.host.as_str(),
                        "valid": problems.is_empty(),
                        "settings": rows,
                    });
                    print_out(&format!("{doc}\n"));
                } else {
                    let mut text = format!(
                        "# {}: the effective settings of host {}:\n",
                        EscapedPath(&path),
                        settings.host
                    );
                    for row in &rows {
                        text.push_str(&row.line());
                        text.push('\n');
                    }
                    print_out(&text);
                }
            }
            Err(p) => problems.extend(p.0),
        },
        Err(e) => problems.push(e),
    }
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    if problems.is_empty() {
        log::info!("{} is valid", EscapedPath(&path));
        0
    } else {
        for p in &problems {
            log::error!("{p}");
        }
        Exit::Config.code()
    }
}

/// `harvest_argus convert-config OLD_SCRIPT`.
pub(crate) fn convert_config(script: &Path) -> u8 {
    let text = match std::fs::read(script) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            log::error!("cannot read {}: {e}", EscapedPath(script));
            return Exit::Config.code();
        }
    };
    match crate::convert::convert(script, &text) {
        Ok(converted) => {
            print_out(&converted.toml);
            for w in converted.warnings {
                log::warn!("{w}");
            }
            0
        }
        Err(errors) => {
            for e in errors {
                log::error!("{}: {e}", EscapedPath(script));
            }
            Exit::Config.code()
        }
    }
}
