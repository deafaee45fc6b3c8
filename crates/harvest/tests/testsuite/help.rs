//! harvest_argus answers `--help` and `--version`, and its help lists the commands of SPEC §7.

use std::process::Command;

use test_support::bins::{bin, help};

#[test]
fn harvest_argus_help_lists_its_commands() {
    let text = help("harvest_argus", &["--help"]);
    for needle in ["check-config", "convert-config", "--config", "--host"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(help("harvest_argus", &["--version"]).starts_with("harvest_argus "));
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let out = Command::new(bin("harvest_argus"))
        .arg("--no-such-flag")
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}
