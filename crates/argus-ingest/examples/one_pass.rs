//! One pass over a WebJob dropzone from a program of its own, with a follow-on stage written in
//! Rust: the program names itself as the command of every `ingested` event, so the engine runs
//! it (never through a shell) once each upload is durable in its day file and its archive.
//!
//! Run with `cargo run -p argus-ingest --example one_pass`; it makes its own dropzone in a
//! temporary directory, with one hourly upload of real argus data, and checks what it did.

#![allow(clippy::print_stdout, reason = "an example program talks to its user")]

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use argus_ingest::config::{Config, DayBoundary, Event, Hook, parse_template};
use argus_ingest::engine::{self, Options};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, verb, rest @ ..] = args.as_slice()
        && verb == "hook"
    {
        return on_ingested(rest);
    }

    // A WebJob server's directories, and one upload of client sensor-1 in its dropzone.
    let root = tempfile::tempdir()?;
    let drop_dir = root.path().join("incoming");
    fs::create_dir_all(&drop_dir)?;
    let argus_data =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../argus-core/testdata/hostC.argus"))?;
    let at = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let upload = Upload::at("sensor-1", at)
        .out(argus_data.clone())
        .hostname("sensor-1.example.org")
        .write(&drop_dir)?;

    // What to do with it, as a typed value: every default documented on `Config::new`.
    let mut config = Config::new(
        drop_dir,
        root.path().join("operational"),
        root.path().join("archive"),
        vec!["sensor-*".to_owned()],
    );
    config.day_boundary = DayBoundary::Upload;
    let said = root.path().join("ingested.txt");
    let me = std::env::current_exe()?;
    let templates = ["hook", "{stem}", "{records}", "{day_file}"];
    let mut hook_args = Vec::new();
    for t in templates
        .iter()
        .map(|t| t.to_string())
        .chain([said.display().to_string()])
    {
        hook_args.push(parse_template(&t, Event::Ingested)?);
    }
    config.hooks.hooks.push(Hook {
        name: "note".to_owned(),
        on: Event::Ingested,
        program: me.display().to_string(),
        args: hook_args,
        timeout: Duration::from_secs(30),
    });

    let outcome = engine::run(&config, &Options::default(), OffsetDateTime::now_utc());
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(outcome.summary.ingested, 1);
    assert_eq!(outcome.summary.hooks_ran, 1);

    // The upload left the dropzone, its bytes are in the day file, and the hook saw it.
    assert!(!upload.path("rdy").exists());
    let note = fs::read_to_string(&said)?;
    let fields: Vec<&str> = note.split_whitespace().collect();
    let [stem, records, day_file] = fields[..] else {
        return Err(format!("the hook wrote {note:?}").into());
    };
    assert_eq!(stem, upload.stem);
    assert!(records.parse::<u64>()? > 0);
    assert_eq!(fs::read(day_file)?, argus_data);
    println!("ingested {stem}: {records} records into {day_file}; the hook ran once");
    Ok(())
}

/// The hook: `hook STEM RECORDS DAY_FILE NOTES` appends the first three to NOTES.
fn on_ingested(args: &[String]) -> Result<(), Box<dyn Error>> {
    let [stem, records, day_file, notes] = args else {
        return Err("usage: hook STEM RECORDS DAY_FILE NOTES".into());
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(notes)?;
    writeln!(file, "{stem} {records} {day_file}")?;
    Ok(())
}
