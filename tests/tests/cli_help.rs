//! Both binaries answer `--help` and `--version`, and their help lists the commands of SPEC §7.

use std::process::Command;

use tests::bins::bin;

fn help(program: &str, args: &[&str]) -> String {
    let out = Command::new(bin(program))
        .args(args)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).expect("utf8 help")
}

#[test]
fn process_argus_help_lists_its_commands() {
    let text = help("process_argus", &["--help"]);
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
    let status = help("process_argus", &["status", "--help"]);
    assert!(
        status.contains("--json") && status.contains("stale"),
        "{status}"
    );
}

#[test]
fn harvest_argus_help_lists_its_commands() {
    let text = help("harvest_argus", &["--help"]);
    for needle in ["check-config", "convert-config", "--config", "--host"] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(help("harvest_argus", &["--version"]).starts_with("harvest_argus "));
}

#[test]
fn unknown_arguments_are_usage_errors() {
    for program in ["process_argus", "harvest_argus"] {
        let out = Command::new(bin(program))
            .arg("--no-such-flag")
            .output()
            .expect("run the binary");
        assert_eq!(out.status.code(), Some(2), "{program}: clap's usage error");
        assert!(out.stdout.is_empty(), "{program}: nothing on stdout");
    }
}
