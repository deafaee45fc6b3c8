//! Log lines on stderr in one stable form, `harvest_argus: LEVEL message`, which WebJob keeps
//! in the upload's `.err` next to the manifest lines.

use std::io::Write;

use log::LevelFilter;

/// Installs the logger. `verbosity` is the `-v` count minus the `-q` count: 0 logs progress
/// (the `.err` of every upload tells what the run did), -1 only warnings and errors, -2 only
/// errors, 1 adds debugging, 2 tracing. `RUST_LOG`, when set, overrides it.
pub(crate) fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::Error,
        -1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder
        .format(|buf, record| writeln!(buf, "harvest_argus: {} {}", record.level(), record.args()));
    builder.write_style(env_logger::WriteStyle::Never);
    let _already = builder.try_init();
}
