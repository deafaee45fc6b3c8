//! harvest_argus answers `--help` and `--version`, its help lists the commands of SPEC §7 in the
//! layout process_argus' has, with the options the two share, and global options go before or
//! after a command.

use std::process::Command;

use test_support::bins::{assert_common_help, bin, help, listed_options};

#[test]
fn harvest_argus_help_lists_its_commands() {
    let text = assert_common_help("harvest_argus");
    for needle in [
        "check-config",
        "convert-config",
        "--config",
        "--host",
        "Files next to OUTPUT",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        listed_options(&text).contains(&"--host <NAME>".to_owned()),
        "{text}"
    );
    assert!(help("harvest_argus", &["--version"]).starts_with("harvest_argus "));
    // -h is the short form of the same layout.
    let short = help("harvest_argus", &["-h"]);
    assert_eq!(listed_options(&short), listed_options(&text), "{short}");
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

#[test]
fn config_and_verbosity_go_before_or_after_the_command_in_short_or_long_form() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("harvest_argus.toml");
    std::fs::write(
        &config,
        format!(
            "archive_dir = {:?}\noutput = {:?}\ninterface = \"lo\"\n",
            dir.path().join("archive").display().to_string(),
            dir.path().join("argus.out").display().to_string()
        ),
    )
    .expect("write config");
    let config = config.display().to_string();
    for args in [
        vec!["--config", &config, "check-config"],
        vec!["check-config", "-c", &config],
        vec!["-q", "-c", &config, "--host", "sensor1", "check-config"],
        vec!["check-config", "--config", &config, "-v"],
    ] {
        let out = Command::new(bin("harvest_argus"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run the binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("interface = lo"), "{args:?}: {stdout}");
    }
    // -v and -q say opposite things.
    let out = Command::new(bin("harvest_argus"))
        .args(["-v", "-q", "-c", &config, "check-config"])
        .output()
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
