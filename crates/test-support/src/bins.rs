//! Locating the workspace's binaries and sample files.
//!
//! Cargo builds the binaries of the package whose integration tests run and names each in
//! `CARGO_BIN_EXE_<name>`, at build time and at run time, and only those. A test that needs both
//! programs (harvest with `harvest_argus`, then ingest with `process_argus`) therefore lives in
//! the workspace's end-to-end package (`tests/`), which builds both.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("../.."), Path::to_path_buf)
}

/// The path of a program (`process_argus`, `harvest_argus`) as cargo built it for the running
/// test: `CARGO_BIN_EXE_<program>` in the tests of the program's own package, and
/// `CARGO_BIN_EXE_e2e-<program>` in the workspace's end-to-end package (`tests/`), which builds
/// each program under that name from the program's library. Cargo sets these when it builds and
/// when it runs an integration test, after building the binaries it names; nothing else is
/// looked for, so a test never runs a stale build. Fails the test when neither is set (a test of
/// a package that does not build the program).
pub fn bin(program: &str) -> PathBuf {
    let names = [program.to_owned(), format!("{E2E_PREFIX}{program}")];
    names
        .iter()
        .find_map(|name| std::env::var_os(format!("CARGO_BIN_EXE_{name}")))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "neither CARGO_BIN_EXE_{} nor CARGO_BIN_EXE_{} is set: {program} runs only in \
                 the tests of a package that builds it (its own, or the end-to-end tests)",
                names[0], names[1]
            )
        })
}

/// The prefix of the end-to-end package's copies of the programs (`e2e-harvest_argus`).
pub const E2E_PREFIX: &str = "e2e-";

/// The real argus sample files shipped with argus-core.
pub fn sample(name: &str) -> PathBuf {
    workspace().join("crates/argus-core/testdata").join(name)
}

/// What a binary prints on stdout for `args` (`--help`, `--version`), which must succeed.
pub fn help(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin(program))
        .args(args)
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).expect("utf8 help")
}

/// The options both programs take with the same meaning, as their `--help` lists them: the
/// configuration file, verbosity, help and version.
pub const SHARED_OPTIONS: [&str; 5] = [
    "-c, --config <FILE>",
    "-v, --verbose...",
    "-q, --quiet...",
    "-h, --help",
    "-V, --version",
];

/// The options a help text lists under `Options:`, in order, each as its names (`-c, --config
/// <FILE>`) without the description.
pub fn listed_options(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Options:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        // An option's line starts at column 2 (`  -c, --config`), or 6 when it has no short
        // form (`      --wait`); descriptions are indented further.
        .filter_map(|line| {
            let entry = line
                .strip_prefix("  -")
                .map(|_| &line[2..])
                .or_else(|| line.strip_prefix("      --").map(|_| &line[6..]))?;
            entry.split("  ").next().map(str::to_owned)
        })
        .collect()
}

/// Checks the `--help` layout both programs share and returns the text: a description, then
/// `Usage: PROGRAM [OPTIONS] [COMMAND]`, `Commands:`, `Options:` opening with the shared options
/// (configuration, verbosity) and closing with help and version, and the exit statuses last.
pub fn assert_common_help(program: &str) -> String {
    let text = help(program, &["--help"]);
    let at = |heading: &str| {
        text.find(heading)
            .unwrap_or_else(|| panic!("{program} --help has no {heading:?}:\n{text}"))
    };
    assert!(
        !text.starts_with("Usage:") && !text.starts_with(program),
        "{program} --help opens with a description:\n{text}"
    );
    let order = [
        at(&format!("\nUsage: {program} [OPTIONS] [COMMAND]\n")),
        at("\nCommands:\n"),
        at("\nOptions:\n"),
        at("\nExit status: "),
    ];
    assert!(
        order.is_sorted(),
        "{program} --help: description, usage, commands, options, exit status:\n{text}"
    );
    let options = listed_options(&text);
    assert!(
        options.len() >= SHARED_OPTIONS.len(),
        "{program}: {options:?}"
    );
    assert_eq!(
        options[..3],
        SHARED_OPTIONS[..3],
        "{program} --help lists the shared options first"
    );
    assert_eq!(
        options[options.len() - 2..],
        SHARED_OPTIONS[3..],
        "{program} --help lists help and version last"
    );
    text
}
