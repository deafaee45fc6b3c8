//! process_argus answers `--help` and `--version`, its help lists the commands of SPEC §7 in the
//! layout harvest_argus' has, with the options the two share, and global options go before or
//! after a command.

use std::process::Command;

use test_support::bins::{assert_common_help, bin, help, listed_options};

#[test]
fn process_argus_help_lists_its_commands() {
    let text = assert_common_help("process_argus");
    for needle in [
        "check-config",
        "convert-config",
        "watch",
        "status",
        "--config",
        "--wait",
        "--dry-run",
        "--json",
        "Exit status",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(help("process_argus", &["--version"]).starts_with("process_argus "));
    // -h is the short form of the same layout.
    let short = help("process_argus", &["-h"]);
    assert_eq!(listed_options(&short), listed_options(&text), "{short}");
    let status = help("process_argus", &["status", "--help"]);
    assert!(
        status.contains("--json") && status.contains("stale"),
        "{status}"
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let out = Command::new(bin("process_argus"))
        .arg("--no-such-flag")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let server = test_support::server::Server::new();
    let config = server.write_toml(&["client1"], "");
    let config = config.display().to_string();
    let run = |args: &[&str]| {
        let out = server.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [
        vec!["--config", &config, "status", "--json"],
        vec!["status", "--json", "--config", &config],
        vec!["-c", &config, "-q", "status", "--json"],
    ] {
        let (code, stdout, stderr) = run(&args);
        // client1 never uploaded: stale (2), and the JSON says so.
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stdout.contains("\"client\":\"client1\""),
            "{args:?}: {stdout}"
        );
    }
    for args in [
        vec!["--config", &config, "check-config"],
        vec!["check-config", "--config", &config],
        vec!["-v", "check-config", "-c", &config],
    ] {
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(
            stdout.contains(&format!("{config}: valid")),
            "{args:?}: {stdout}"
        );
    }
    // Options of a pass still belong to the pass alone.
    let (code, _, stderr) = run(&["--wait", "status", "--config", &config]);
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
