//! The progress bar of an interactive pass: drawn under a pseudo-terminal (`script`), never
//! without one, never with `-q` or `--json`.

use crate::support;

use std::process::Command;

use support::{Ledger, day_start, good_samples};
use test_support::bins::bin;
use test_support::server::{Server, status, stderr};
use test_support::tools::have;

/// Runs process_argus with `args` under a pseudo-terminal; what the terminal showed.
fn on_a_terminal(server: &Server, args: &str) -> String {
    let config = server.root.path().join("etc/process_argus.toml");
    let line = format!(
        "{} --config {} {args}",
        bin("process_argus").display(),
        config.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("run script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn backlog(server: &Server, first: usize, n: usize) -> Ledger {
    let mut ledger = Ledger::default();
    let samples = good_samples();
    for i in first..first + n {
        let at = day_start(0) + time::Duration::seconds(i as i64);
        ledger.write(
            server,
            "client1",
            "sensor1",
            at,
            &samples[i % samples.len()],
        );
    }
    ledger
}

#[test]
fn a_backlog_on_a_terminal_shows_a_progress_bar_and_nothing_else_does() {
    if !have("script") {
        return;
    }
    let server = Server::new();
    let config = server.write_toml(&["client1"], "archive_days = 0\n");
    assert!(
        config.ends_with("etc/process_argus.toml"),
        "{}",
        config.display()
    );
    backlog(&server, 0, 40);
    let shown = on_a_terminal(&server, "");
    assert!(shown.contains("/40 uploads ["), "a bar: {shown:?}");
    assert!(shown.contains("MiB") || shown.contains("KiB"), "{shown:?}");

    // Under cron (no terminal): nothing on stderr at all when all is well.
    let ledger = backlog(&server, 100, 10);
    let out = server.run(&[]);
    assert_eq!(status(&out), 0);
    assert_eq!(stderr(&out), "", "quiet under cron");
    assert!(
        ledger.uploads.iter().all(|u| !u.any_part_left()),
        "ingested"
    );

    // -q and --json on a terminal: no bar either.
    backlog(&server, 200, 10);
    let quiet = on_a_terminal(&server, "-q");
    assert!(!quiet.contains("uploads ["), "{quiet:?}");
    backlog(&server, 300, 10);
    let json = on_a_terminal(&server, "--json");
    assert!(!json.contains("uploads ["), "{json:?}");
    assert!(json.contains("\"ingested\":10"), "{json:?}");
}
