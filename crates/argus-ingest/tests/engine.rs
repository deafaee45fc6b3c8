//! The engine called in-process, as an embedding program calls it: what a pass does with real
//! argus uploads, and the typed errors it returns (with their causes) when it cannot.

use std::error::Error as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use argus_core::host::Hostname;
use argus_ingest::config::{Config, DayBoundary};
use argus_ingest::engine::{self, Engine, Options};
use argus_ingest::{Action, Error, Failure, Problem};
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

fn argus_sample() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../argus-core/testdata/hostC.argus");
    fs::read(path).expect("the argus sample")
}

struct Site {
    _root: tempfile::TempDir,
    config: Config,
}

impl Site {
    fn new() -> Site {
        let root = tempfile::tempdir().expect("a temporary directory");
        let drop_dir = root.path().join("incoming");
        fs::create_dir(&drop_dir).expect("the dropzone");
        let mut config = Config::new(
            drop_dir,
            root.path().join("operational"),
            root.path().join("archive"),
            vec!["sensor-*".to_owned()],
        );
        config.day_boundary = DayBoundary::Upload;
        Site {
            _root: root,
            config,
        }
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map(|d| d.map(|e| e.expect("an entry").path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Drops an upload of the argus sample from `client`, stamped `at`.
    fn drop_sample(&self, client: &str, at: OffsetDateTime) {
        Upload::at(client, at)
            .out(argus_sample())
            .write(&self.config.drop_dir)
            .expect("an upload");
    }

    fn day_file(&self, at: OffsetDateTime) -> PathBuf {
        let host = Hostname::new("sensor-1").expect("a host name");
        argus_ingest::dayfile::target(&self.config.oper_dir, &host, at.date()).0
    }

    /// Adds a hook on `on`: `program` with one argument, `template`.
    fn add_hook(&mut self, on: argus_ingest::config::Event, program: &str, template: &str) {
        use argus_ingest::config::{Hook, parse_template};
        self.config.hooks.hooks.push(Hook {
            name: format!("hook-{}", self.config.hooks.hooks.len() + 1),
            on,
            program: program.to_owned(),
            args: vec![parse_template(template, on).expect("a template")],
            timeout: std::time::Duration::from_secs(30),
        });
    }

    fn pass(&self) -> engine::Outcome {
        engine::run(&self.config, &Options::default(), OffsetDateTime::now_utc())
    }
}

fn an_hour_ago() -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::hours(1)
}

#[test]
fn a_chunk_shipped_twice_is_appended_once_and_counted_as_a_duplicate() {
    let site = Site::new();
    let data = argus_sample();
    let at = an_hour_ago();
    Upload::at("sensor-1", at)
        .out(data.clone())
        .with_manifest("sensor-1", 7)
        .write(&site.config.drop_dir)
        .expect("an upload");
    let first = site.pass();
    assert!(first.error.is_none(), "{:?}", first.summary.failed);
    assert_eq!(first.summary.ingested, 1);

    // The sensor ships the same chunk again (its upload was not acknowledged, say).
    Upload::at("sensor-1", at + time::Duration::seconds(1))
        .out(data.clone())
        .with_manifest("sensor-1", 7)
        .write(&site.config.drop_dir)
        .expect("an upload");
    let second = site.pass();
    assert!(second.error.is_none(), "{:?}", second.summary.failed);
    assert_eq!(second.summary.duplicates, 1);
    assert_eq!(
        fs::read(site.day_file(at)).expect("the day file"),
        data,
        "the chunk is in its day file once"
    );
    assert!(Site::files(&site.config.drop_dir).is_empty());
    assert_eq!(Site::files(&site.config.archive_dir).len(), 2);
}

#[test]
fn an_upload_that_is_not_argus_goes_to_the_quarantine_and_the_pass_goes_on() {
    let site = Site::new();
    let at = an_hour_ago();
    Upload::at("sensor-1", at)
        .out(b"these are not argus records\n".to_vec())
        .write(&site.config.drop_dir)
        .expect("an upload");
    Upload::at("sensor-2", at)
        .out(argus_sample())
        .write(&site.config.drop_dir)
        .expect("an upload");
    let outcome = site.pass();
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(
        (outcome.summary.quarantined, outcome.summary.ingested),
        (1, 1)
    );
    let quarantined = Site::files(&site.config.quarantine_dir);
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(!site.day_file(at).exists(), "nothing of sensor-1 appended");
}

#[test]
fn a_missing_dropzone_is_a_configuration_error_that_names_it() {
    let mut site = Site::new();
    site.config.drop_dir = site.config.drop_dir.join("not-there");
    let outcome = site.pass();
    let Some(Error::Config(problems)) = &outcome.error else {
        panic!("not a configuration error: {:?}", outcome.error);
    };
    assert!(
        matches!(&problems.0[..], [Problem::DropzoneMissing { path, source }]
            if *path == site.config.drop_dir && source.kind() == io::ErrorKind::NotFound),
        "{problems:?}"
    );
    assert_eq!(
        outcome.error.as_ref().map(Error::kind),
        Some(Failure::Config)
    );
    assert!(!site.config.oper_dir.exists(), "nothing was created");
}

#[test]
fn a_second_engine_on_the_same_state_is_locked_out() {
    let site = Site::new();
    let holder = Engine::start(site.config.clone(), Options::default()).expect("the first engine");
    let outcome = site.pass();
    assert!(
        matches!(
            &outcome.error,
            Some(Error::Core(argus_core::Error::Locked { .. }))
        ),
        "{:?}",
        outcome.error
    );
    assert_eq!(
        outcome.error.as_ref().map(Error::kind),
        Some(Failure::Locked)
    );
    drop(holder);
    assert!(
        site.pass().error.is_none(),
        "free again once the first is gone"
    );
}

#[test]
fn a_day_file_replaced_by_a_symlink_stops_the_pass_with_the_cause_and_keeps_the_upload() {
    let site = Site::new();
    let at = an_hour_ago();
    let upload = Upload::at("sensor-1", at)
        .out(argus_sample())
        .write(&site.config.drop_dir)
        .expect("an upload");
    fs::create_dir_all(&site.config.oper_dir).expect("the day files' directory");
    let elsewhere = site.config.oper_dir.join("elsewhere");
    fs::write(&elsewhere, b"not ours").expect("a file");
    let day = site.day_file(at);
    std::os::unix::fs::symlink(&elsewhere, &day).expect("a symlink");

    let outcome = site.pass();
    let Some(error) = &outcome.error else {
        panic!("the pass went through a symlink: {:?}", outcome.summary);
    };
    assert!(
        matches!(error, Error::File { action: Action::Open, path, .. } if *path == day),
        "{error:?}"
    );
    let cause = error
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("an I/O cause");
    assert_eq!(cause.raw_os_error(), Some(nix::libc::ELOOP));
    assert_eq!(error.kind(), Failure::Io);
    assert!(
        outcome
            .summary
            .failed
            .as_deref()
            .is_some_and(|f| f.contains("cannot open") && f.contains("Too many levels")),
        "{:?}",
        outcome.summary.failed
    );
    assert_eq!(fs::read(&elsewhere).expect("the target"), b"not ours");
    assert!(
        upload.path("rdy").exists(),
        "the upload waits for the next pass"
    );
}

#[test]
fn a_reload_cannot_move_the_state_directory() {
    let site = Site::new();
    let mut engine = Engine::start(site.config.clone(), Options::default()).expect("an engine");
    let mut moved = site.config.clone();
    moved.state_dir = moved.state_dir.join("elsewhere");
    let error = engine.reload(moved.clone()).expect_err("a refusal");
    assert!(
        matches!(&error, Error::Config(p) if matches!(&p.0[..],
            [Problem::StateDirChanged { from, to }]
                if *from == site.config.state_dir && *to == moved.state_dir)),
        "{error:?}"
    );
    assert_eq!(engine.config().state_dir, site.config.state_dir);
}

#[test]
fn a_cap_that_would_delete_every_archive_is_refused_before_anything_is_done() {
    let mut site = Site::new();
    let at = an_hour_ago();
    site.drop_sample("sensor-1", at);
    assert!(site.pass().error.is_none());
    let archived = Site::files(&site.config.archive_dir);
    assert_eq!(archived.len(), 1);

    // Set by hand, as an embedding program might: 100 bytes where 100 GiB was meant.
    site.config.archive_max_size = Some(100);
    let outcome = site.pass();
    let Some(Error::Config(problems)) = &outcome.error else {
        panic!("not refused: {:?}", outcome.error);
    };
    assert!(
        matches!(
            &problems.0[..],
            [Problem::Invalid(
                argus_ingest::config::Invalid::CapTooSmall(100)
            )]
        ),
        "{problems:?}"
    );
    assert_eq!(
        Site::files(&site.config.archive_dir),
        archived,
        "nothing purged"
    );
}

#[test]
fn the_sensors_packets_and_stops_come_from_its_management_records_once() {
    // `ra -X -F man.rc -n -u -c , -s spkts sport state -r hostA.argus - man` (with
    // RA_PRINT_MAN_RECORDS=yes in man.rc) prints the MAR/STATUS packets: 1044 for argus 3.0.8's
    // hostA, 1056 and 184 for argus 5.0.3's (whose ra reads a MAR-only file first), no drops.
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../argus-core/testdata");
    for (client, file, received, stops) in [
        ("sensor-3", testdata.join("hostA.argus"), 1044, 1),
        (
            "sensor-5",
            testdata.join("argus5/hostA.argus"),
            1056 + 184,
            0,
        ),
    ] {
        let site = Site::new();
        let data = fs::read(&file).expect("sample");
        Upload::at(client, an_hour_ago())
            .out(data)
            .with_manifest(client, 1)
            .write(&site.config.drop_dir)
            .expect("an upload");
        assert!(site.pass().error.is_none());
        let ledger = argus_ingest::ledger::Ledger::load(&site.config.state_dir).expect("ledger");
        let health = &ledger.clients[client].health;
        assert_eq!((health.received, health.dropped), (received, 0), "{client}");
        assert_eq!((health.restarts, health.stops), (0, stops), "{client}");
        assert!(health.argus_started.is_some() && health.last_mar.is_some());
    }
}

/// The MARs of a chunk shipped before are left out with it, even where they and the new
/// chunk's MARs fall in one hour with one argus start time: the walk keeps alike MARs as one
/// run, and must not let a run reach over the place where two chunks meet.
#[test]
fn a_chunk_shipped_again_beside_a_new_one_brings_only_the_new_ones_mars() {
    use argus_core::manifest::Manifest;
    for (client, name, received, stops) in [
        ("sensor-3", "hostA.argus", 1044, 1),
        ("sensor-5", "argus5/hostA.argus", 1056 + 184, 0),
    ] {
        let site = Site::new();
        let chunk = argus_sample_named(name);
        let at = an_hour_ago();
        Upload::at(client, at)
            .out(chunk.clone())
            .with_manifest(client, 1)
            .write(&site.config.drop_dir)
            .expect("an upload");
        assert!(site.pass().error.is_none());
        // Chunk 1 again, then chunk 2 (the same bytes: argus wrote alike traffic).
        let manifest = |seq| Manifest {
            host: Hostname::new(client).expect("a host name"),
            seq,
            start: None,
            end: None,
            bytes: chunk.len() as u64,
            records: None,
            sha256: argus_core::manifest::sha256(&chunk),
        };
        Upload::at(client, at + time::Duration::seconds(5))
            .out(chunk.repeat(2))
            .err(format!("{}\n{}\n", manifest(1), manifest(2)))
            .write(&site.config.drop_dir)
            .expect("an upload");
        let outcome = site.pass();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.summary.duplicates, 1, "{name}");
        let host = Hostname::new(client).expect("a host name");
        let day = argus_ingest::dayfile::target(&site.config.oper_dir, &host, at.date()).0;
        assert_eq!(
            fs::read(day).expect("the day file"),
            chunk.repeat(2),
            "{name}: chunk 2 appended once"
        );
        let ledger = argus_ingest::ledger::Ledger::load(&site.config.state_dir).expect("ledger");
        let health = &ledger.clients[client].health;
        assert_eq!(
            (health.received, health.stops),
            (2 * received, 2 * stops),
            "{name}: chunk 1's MARs counted once, chunk 2's once"
        );
    }
}

#[test]
fn a_sensor_health_hook_runs_once_as_a_sensor_enters_and_leaves_a_condition() {
    use argus_ingest::config::Event;
    let mut site = Site::new();
    let marks = site.config.oper_dir.with_file_name("marks");
    fs::create_dir(&marks).expect("a directory");
    let template = format!("{}/{{client}}-{{previous}}-{{state}}", marks.display());
    site.add_hook(Event::SensorHealth, "/usr/bin/touch", &template);
    // argus 3.0.8's hostA ends with a MAR/STOP written at 1795800059 (`ra` prints it).
    let data = argus_sample_named("hostA.argus");
    let last_mar = OffsetDateTime::from_unix_timestamp(1_795_800_059).expect("a time");
    // Stamped two hours before its newest MAR: the sensor's clock is ahead.
    Upload::at("sensor-1", last_mar - time::Duration::hours(2))
        .out(data.clone())
        .with_manifest("sensor-1", 1)
        .write(&site.config.drop_dir)
        .expect("an upload");
    assert!(site.pass().error.is_none());
    assert_eq!(names(&marks), ["sensor-1-ok-clock"]);
    assert!(site.pass().error.is_none());
    assert_eq!(names(&marks), ["sensor-1-ok-clock"], "once per transition");
    // The next upload is stamped a minute after its newest MAR: the clock is right again.
    Upload::at("sensor-1", last_mar + time::Duration::minutes(1))
        .out(data)
        .with_manifest("sensor-1", 2)
        .write(&site.config.drop_dir)
        .expect("an upload");
    assert!(site.pass().error.is_none());
    assert_eq!(names(&marks), ["sensor-1-clock-ok", "sensor-1-ok-clock"]);
}

fn argus_sample_named(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../argus-core/testdata")
        .join(name);
    fs::read(path).expect("the argus sample")
}

/// Four samples of different sensors' data.
fn four_samples() -> [Vec<u8>; 4] {
    [
        "hostA.argus",
        "hostB.argus",
        "hostC.argus",
        "hostD.chunk2.argus",
    ]
    .map(argus_sample_named)
}

fn names(dir: &Path) -> Vec<String> {
    Site::files(dir)
        .iter()
        .map(|p| {
            p.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn runs_of_zeros_between_records_are_left_out_once_and_counted() {
    // What a power loss leaves in argus' output: whole records, then zeros where the last
    // blocks were never written, then the stream a restarted argus appends behind them.
    let mut site = Site::new();
    site.config.archive_codec = argus_core::codec::Codec::NONE;
    let first = argus_sample_named("hostA.argus");
    let second = argus_sample_named("hostB.argus");
    let mut data = first.clone();
    data.extend([0u8; 8192]);
    data.extend(&second);
    let at = an_hour_ago();
    Upload::at("sensor-1", at)
        .out(data.clone())
        .with_manifest("sensor-1", 1)
        .write(&site.config.drop_dir)
        .expect("an upload");
    let outcome = site.pass();
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(
        (outcome.summary.ingested, outcome.summary.quarantined),
        (1, 0)
    );
    let mut without = first.clone();
    without.extend(&second);
    assert_eq!(
        fs::read(site.day_file(at)).expect("the day file"),
        without,
        "the zeros left out"
    );
    let archived = Site::files(&site.config.archive_dir);
    assert_eq!(
        fs::read(&archived[0]).expect("the archive"),
        data,
        "kept as it came"
    );
    let ledger = argus_ingest::ledger::Ledger::load(&site.config.state_dir).expect("ledger");
    let health = &ledger.clients["sensor-1"].health;
    assert_eq!((health.zero_gaps, health.zero_gap_bytes), (1, 8192));

    // The same chunk shipped again: a duplicate, nothing appended or counted again.
    Upload::at("sensor-1", at + time::Duration::seconds(5))
        .out(data)
        .with_manifest("sensor-1", 1)
        .write(&site.config.drop_dir)
        .expect("an upload");
    assert_eq!(site.pass().summary.duplicates, 1);
    let ledger = argus_ingest::ledger::Ledger::load(&site.config.state_dir).expect("ledger");
    assert_eq!(ledger.clients["sensor-1"].health.zero_gap_bytes, 8192);
    assert_eq!(fs::read(site.day_file(at)).expect("the day file"), without);

    // Zeros inside a record are damage: the quarantine.
    // (2002 is inside a flow record: records start at multiples of 4.)
    let mut inside = first.clone();
    for b in &mut inside[2002..2034] {
        *b = 0;
    }
    Upload::at("sensor-2", at)
        .out(inside)
        .write(&site.config.drop_dir)
        .expect("an upload");
    assert_eq!(site.pass().summary.quarantined, 1);
}

/// Found by the `walker` fuzz target: filing by record time read the upload record by record
/// and stopped at the first zero word the walker had left out, failing the upload.
#[test]
fn by_record_time_runs_of_zeros_are_left_out_as_by_upload_day() {
    let first = argus_sample_named("hostA.argus");
    let second = argus_sample_named("hostB.argus");
    let mut gapped = first.clone();
    gapped.extend([0u8; 4096]);
    gapped.extend(&second);
    let mut whole = first;
    whole.extend(&second);
    let at = an_hour_ago();
    let days = |data: Vec<u8>| {
        let mut site = Site::new();
        site.config.day_boundary = DayBoundary::Record;
        site.config.oper_codec = argus_core::codec::Codec::NONE;
        // The samples are years old: a clock window that takes them.
        site.config.max_record_lag = std::time::Duration::from_secs(40 * 366 * 86_400);
        Upload::at("sensor-1", at)
            .out(data)
            .with_manifest("sensor-1", 1)
            .write(&site.config.drop_dir)
            .expect("an upload");
        let outcome = site.pass();
        assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
        assert_eq!(
            (outcome.summary.ingested, outcome.summary.quarantined),
            (1, 0)
        );
        let host_dir = site.day_file(at);
        let host_dir = host_dir.parent().expect("a host directory");
        Site::files(host_dir)
            .into_iter()
            .map(|f| {
                let name = f.file_name().expect("a name").to_owned();
                (name, fs::read(&f).expect("a day file"))
            })
            .collect::<Vec<_>>()
    };
    let without = days(whole);
    assert!(!without.is_empty());
    assert_eq!(
        days(gapped),
        without,
        "the same day files, the zeros left out"
    );
}

/// The archive is listed (a stat per archived upload, growing with history) only when a purge
/// may be due: the catalog a purge leaves knows the oldest archive and the bytes of them all,
/// and each commit adds to it. Files added by hand are seen within a day.
#[test]
fn the_archive_is_listed_only_when_a_purge_may_be_due() {
    let mut site = Site::new();
    site.config.archive_days = 2;
    let catalog = || argus_ingest::catalog::Catalog::load(&site.config.state_dir);
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::hours(30);
    Upload::at("sensor-1", old)
        .out(argus_sample())
        .write(&site.config.drop_dir)
        .expect("an upload");
    let first = engine::run(&site.config, &Options::default(), now);
    assert!(first.error.is_none(), "{:?}", first.summary.failed);
    let kept = catalog().expect("a purge keeps a catalog");
    assert_eq!(kept.oldest, Some(old.unix_timestamp()));
    let archived = Site::files(&site.config.archive_dir);
    assert_eq!(archived.len(), 1);
    let size = fs::metadata(&archived[0]).expect("archive").len();
    assert_eq!(kept.bytes, size);

    // Another upload: counted before it is archived.
    Upload::at("sensor-1", now - time::Duration::hours(1))
        .out(argus_sample())
        .write(&site.config.drop_dir)
        .expect("an upload");
    // And an archive of three days ago put there by hand: not seen until a listing.
    let by_hand = site.config.archive_dir.join(format!(
        "sensor-1_{}_harvest_argus.out.gz",
        argus_core::stamp::format_datetime(now - time::Duration::days(3))
    ));
    fs::write(&by_hand, b"restored by hand").expect("a file by hand");
    let second = engine::run(&site.config, &Options::default(), now);
    assert!(second.error.is_none(), "{:?}", second.summary.failed);
    assert_eq!(second.summary.purged, 0, "no listing: nothing looked due");
    assert!(by_hand.exists());
    let counted = catalog().expect("catalog");
    let archives: u64 = Site::files(&site.config.archive_dir)
        .iter()
        .filter(|p| **p != by_hand)
        .map(|p| fs::metadata(p).expect("archive").len())
        .sum();
    assert_eq!(counted.bytes, archives);
    assert_eq!(counted.listed_at, kept.listed_at);

    // The first upload ages past archive_days 18 hours later: the catalog knows, the archive
    // is listed, both old archives go.
    let later = now + time::Duration::hours(19);
    let third = engine::run(&site.config, &Options::default(), later);
    assert!(third.error.is_none(), "{:?}", third.summary.failed);
    assert_eq!(third.summary.purged, 2);
    assert!(!by_hand.exists());
    let relisted = catalog().expect("catalog");
    assert_eq!(relisted.listed_at, later.unix_timestamp());
    assert_eq!(relisted.bytes, archives - size);

    // A setting that changes what is ours, or a day without a listing, lists again.
    let mut other = site.config.clone();
    other.clients = vec!["sensor-*".to_owned(), "extra".to_owned()];
    assert!(relisted.due(&other, later));
    assert!(!relisted.due(&site.config, later + time::Duration::hours(23)));
    assert!(relisted.due(&site.config, later + time::Duration::hours(24)));
    // A pass judges at the time it started, a little before it listed; a clock set back
    // further lists again.
    assert!(!relisted.due(&site.config, later - time::Duration::minutes(5)));
    assert!(relisted.due(&site.config, later - time::Duration::hours(1)));
    // A catalog that does not read is a listing.
    fs::write(site.config.state_dir.join("archive-catalog"), b"{\"listed").expect("torn");
    assert_eq!(catalog(), None);
}

#[test]
fn leftovers_are_looked_for_only_after_an_end_that_was_not_clean() {
    let site = Site::new();
    let at = an_hour_ago();
    site.drop_sample("sensor-1", at);
    assert!(site.pass().error.is_none());
    let marker = site.config.state_dir.join("clean-exit");
    assert!(marker.exists(), "a clean end is marked");
    // What a crash while writing an archive leaves (a clean end leaves none).
    let leftover = site
        .config
        .archive_dir
        .join(".argus-tmp.x1y2z3.sensor-1.out.gz");
    fs::write(&leftover, b"half an archive").expect("a leftover");
    assert!(site.pass().error.is_none());
    assert!(
        leftover.exists(),
        "after a clean end no directory is listed for leftovers"
    );
    // A crash: the engine removed the marker when it started and never wrote it again.
    fs::remove_file(&marker).expect("the marker");
    let outcome = site.pass();
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert!(!leftover.exists(), "after a crash the leftovers go");
    assert!(marker.exists());
    assert_eq!(Site::files(&site.config.archive_dir).len(), 1);
}

#[test]
fn closed_days_are_found_in_the_day_catalog_and_listed_after_a_crash_a_new_file_or_a_day() {
    let site = Site::new();
    let now = OffsetDateTime::now_utc();
    let catalog = site.config.state_dir.join("day-catalog");
    let marker = site.config.state_dir.join("clean-exit");
    let plain = |days_ago: i64| {
        let d = (now - time::Duration::days(days_ago)).date();
        let name = format!(
            "sensor-1_{:04}{:02}{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        );
        site.config.oper_dir.join(name)
    };
    let packed = |days_ago: i64| {
        let mut name = plain(days_ago).into_os_string();
        name.push(".gz");
        PathBuf::from(name)
    };
    site.drop_sample("sensor-1", now);
    let first = engine::run(&site.config, &Options::default(), now);
    assert!(first.error.is_none(), "{:?}", first.summary.failed);
    assert!(catalog.exists() && plain(0).exists());

    // A closed day's file put there by hand (restored from a backup): after a clean end the
    // day files are not listed, so it is not seen yet.
    fs::copy(plain(0), plain(4)).expect("a day file by hand");
    let inode = || std::os::unix::fs::MetadataExt::ino(&fs::metadata(&catalog).expect("catalog"));
    let saved = inode();
    let quiet = engine::run(&site.config, &Options::default(), now);
    assert!(quiet.error.is_none(), "{:?}", quiet.summary.failed);
    assert_eq!(quiet.summary.compressed, 0, "no listing after a clean end");
    assert!(plain(4).exists());
    assert_eq!(
        inode(),
        saved,
        "a pass that changed no day file rewrites no catalog"
    );
    // After a crash (the marker the engine removed at its start was never written again),
    // the start lists them, and the closed day is compressed.
    fs::remove_file(&marker).expect("the marker");
    let relisted = engine::run(&site.config, &Options::default(), now);
    assert!(relisted.error.is_none(), "{:?}", relisted.summary.failed);
    assert_eq!(relisted.summary.compressed, 1);
    assert!(!plain(4).exists() && packed(4).exists());

    // A day file created by an ingest that ends before the maintenance (an embedder's, or a
    // stop): the saved catalog does not name it, so it is removed, and the next start lists.
    site.drop_sample("sensor-1", now - time::Duration::days(3));
    {
        let mut engine = Engine::start(site.config.clone(), Options::default()).expect("start");
        let found = engine.scan(now).expect("scan");
        engine.ingest(found).expect("ingest");
    }
    assert!(plain(3).exists() && marker.exists());
    assert!(!catalog.exists(), "a new day file makes the catalog untrue");
    let after_ingest = engine::run(&site.config, &Options::default(), now);
    assert!(
        after_ingest.error.is_none(),
        "{:?}",
        after_ingest.summary.failed
    );
    assert_eq!(after_ingest.summary.compressed, 1);
    assert!(!plain(3).exists() && packed(3).exists());

    // A listing is trusted for a day: one by hand is seen at the latest a day later, when the
    // day of the first upload has closed too.
    fs::copy(plain(0), plain(5)).expect("a day file by hand");
    let same_day = engine::run(&site.config, &Options::default(), now);
    assert_eq!(same_day.summary.compressed, 0);
    let later = now + time::Duration::days(2);
    let next_day = engine::run(&site.config, &Options::default(), later);
    assert!(next_day.error.is_none(), "{:?}", next_day.summary.failed);
    assert_eq!(next_day.summary.compressed, 2);
    assert!(packed(0).exists() && packed(5).exists());
    assert!(!plain(0).exists() && !plain(5).exists());
}

#[test]
fn a_day_catalog_is_not_kept_while_day_files_stay_plain() {
    let mut site = Site::new();
    let now = OffsetDateTime::now_utc();
    let catalog = site.config.state_dir.join("day-catalog");
    site.drop_sample("sensor-1", now);
    assert!(site.pass().error.is_none());
    assert!(catalog.exists());
    // Day files no longer compressed: every one stays plain, no catalog is kept.
    let gzip = site.config.oper_codec;
    site.config.oper_codec = argus_core::codec::Compression::None.codec();
    let d = (now - time::Duration::days(4)).date();
    let by_hand = site.config.oper_dir.join(format!(
        "sensor-1_{:04}{:02}{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ));
    fs::copy(site.day_file(now), &by_hand).expect("a day file by hand");
    let plain = site.pass();
    assert!(plain.error.is_none(), "{:?}", plain.summary.failed);
    assert_eq!(plain.summary.compressed, 0);
    assert!(!catalog.exists(), "the catalog of before is untrue by now");
    // Compressed again: the day file written meanwhile is found by a listing.
    site.config.oper_codec = gzip;
    let again = site.pass();
    assert!(again.error.is_none(), "{:?}", again.summary.failed);
    assert_eq!(again.summary.compressed, 1);
    assert!(!by_hand.exists() && catalog.exists());
}

#[test]
fn without_a_catalog_the_archive_is_listed_before_the_ingest_adds_to_it() {
    let mut site = Site::new();
    site.config.archive_days = 30;
    let real_now = OffsetDateTime::now_utc();
    // A pass that judges by a time two hours ahead: a listing by the maintenance would be
    // dated then, one before the ingest is dated by the clock.
    let now = real_now + time::Duration::hours(2);
    site.drop_sample("sensor-1", real_now - time::Duration::hours(1));
    let outcome = engine::run(&site.config, &Options::default(), now);
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    let catalog =
        argus_ingest::catalog::Catalog::load(&site.config.state_dir).expect("a catalog is kept");
    assert!(
        catalog.listed_at < now.unix_timestamp() - 3600,
        "listed at {}, before the ingest (the pass judges at {})",
        catalog.listed_at,
        now.unix_timestamp()
    );
    let archived: u64 = Site::files(&site.config.archive_dir)
        .iter()
        .map(|p| fs::metadata(p).expect("archive").len())
        .sum();
    assert_eq!(catalog.bytes, archived, "the ingest added what it archived");
}

#[test]
fn with_day_files_plain_a_day_closed_hook_waits_on_the_days_not_yet_announced() {
    use argus_ingest::config::Event;
    let mut site = Site::new();
    site.config.oper_codec = argus_core::codec::Compression::None.codec();
    // Each run leaves a file of its own, named by the day announced.
    let marks = site.config.oper_dir.with_file_name("marks");
    fs::create_dir(&marks).expect("a directory");
    let template = format!("{}/{{day}}.XXXXXX", marks.display());
    site.add_hook(Event::DayClosed, "/usr/bin/mktemp", &template);
    let announced = || -> Vec<String> {
        let mut days: Vec<String> = names(&marks)
            .iter()
            .map(|n| n.split('.').next().expect("a day").to_owned())
            .collect();
        days.sort();
        days
    };
    let now = OffsetDateTime::now_utc();
    let day = |days_ago: i64| {
        argus_core::stamp::format_date((now - time::Duration::days(days_ago)).date())
    };
    let catalog = site.config.state_dir.join("day-catalog");
    let closed = site.config.state_dir.join("hooks").join("closed");
    let marker = site.config.state_dir.join("clean-exit");
    let pass = |at: OffsetDateTime| {
        let outcome = engine::run(&site.config, &Options::default(), at);
        assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    };

    site.drop_sample("sensor-1", now - time::Duration::days(3));
    site.drop_sample("sensor-1", now);
    pass(now);
    assert_eq!(announced(), [day(3)], "the closed day, once");
    let waiting = fs::read_to_string(&catalog).expect("a catalog of the days that wait");
    assert!(
        waiting.contains(&day(0)) && !waiting.contains(&day(3)),
        "{waiting}"
    );

    // Late data for the day announced is not a new day; a day file begun for an older day is.
    site.drop_sample(
        "sensor-1",
        now - time::Duration::days(3) + time::Duration::seconds(1),
    );
    site.drop_sample("sensor-1", now - time::Duration::days(5));
    pass(now);
    assert_eq!(announced(), [day(5), day(3)]);

    // A quiet pass after a clean end lists nothing and rewrites nothing: a closed day's file
    // put there by hand is not seen yet.
    let by_hand = site.config.oper_dir.join(format!("sensor-1_{}", day(7)));
    fs::copy(site.day_file(now), &by_hand).expect("a day file by hand");
    let inode = || std::os::unix::fs::MetadataExt::ino(&fs::metadata(&catalog).expect("catalog"));
    let saved = inode();
    pass(now);
    assert_eq!(announced(), [day(5), day(3)]);
    assert_eq!(inode(), saved, "a quiet pass rewrites no catalog");

    // After a crash the start lists the day files: the days announced (hooks/closed) stay
    // announced, the one by hand is announced, and hooks/closed keeps one line a day file.
    fs::remove_file(&marker).expect("the marker");
    pass(now);
    assert_eq!(announced(), [day(7), day(5), day(3)]);
    let lines = fs::read_to_string(&closed).expect("hooks/closed");
    assert_eq!(
        lines.lines().filter(|l| !l.is_empty()).count(),
        3,
        "{lines}"
    );

    // hooks/closed removed by hand: a day announced meanwhile is not written to a new one, so
    // the next listing takes every closed day as announced, as the first one did.
    fs::remove_file(&closed).expect("hooks/closed");
    site.drop_sample("sensor-1", now - time::Duration::days(9));
    pass(now);
    assert_eq!(announced(), [day(9), day(7), day(5), day(3)]);
    assert!(!closed.exists());
    fs::remove_file(&marker).expect("the marker");
    pass(now);
    assert_eq!(announced(), [day(9), day(7), day(5), day(3)], "none again");
    let lines = fs::read_to_string(&closed).expect("hooks/closed");
    assert_eq!(
        lines.lines().filter(|l| !l.is_empty()).count(),
        4,
        "{lines}"
    );

    // Two days on, today has closed too: its event is queued once (due then, so it waits).
    pass(now + time::Duration::days(2));
    pass(now + time::Duration::days(2));
    let queued: Vec<Vec<u8>> = Site::files(&site.config.state_dir.join("hooks").join("pending"))
        .iter()
        .map(|p| fs::read(p).expect("an event"))
        .collect();
    assert_eq!(queued.len(), 1);
    let today = format!("sensor-1_{}", day(0));
    assert!(
        queued[0]
            .windows(today.len())
            .any(|w| w == today.as_bytes()),
        "{}",
        String::from_utf8_lossy(&queued[0])
    );
}

#[test]
fn uploads_opened_ahead_of_their_preparers_keep_their_own_parts_and_checks() {
    let site = Site::new();
    let at = an_hour_ago();
    let samples = four_samples();
    // Four sensors with different data, their uploads interleaved: batches larger than the
    // two preparers, whose parts are opened ahead of them.
    let mut written = Vec::new();
    for i in 0..24_usize {
        let sensor = i % samples.len();
        let client = format!("sensor-{}", sensor + 1);
        let stamp = at + time::Duration::seconds(i64::try_from(i).expect("small"));
        written.push(
            Upload::at(&client, stamp)
                .out(samples[sensor].clone())
                .write(&site.config.drop_dir)
                .expect("an upload"),
        );
    }
    let options = Options {
        threads: 2,
        ..Options::default()
    };
    let mut engine = Engine::start(site.config.clone(), options).expect("the engine");
    let found = engine.scan(OffsetDateTime::now_utc()).expect("scan");
    // After the scan: one `.out` is replaced by a copy of itself (not the file the scan saw:
    // left for the next scan), one `.env` by a link (refused: quarantined). Opened ahead or
    // not, the checks are the same.
    let copied = written[9].path("out");
    let copy = copied.with_extension("copy");
    fs::copy(&copied, &copy).expect("copy");
    fs::rename(&copy, &copied).expect("rename");
    let linked = written[14].path("env");
    fs::remove_file(&linked).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", &linked).expect("symlink");
    engine.ingest(found).expect("the ingest");
    let (summary, error) = engine.take_summary();
    assert!(
        matches!(&error, Some(Error::NotQuarantined { upload, .. }) if upload.contains(&written[9].stem)),
        "{error:?}"
    );
    assert_eq!((summary.ingested, summary.quarantined), (22, 1));
    assert_eq!(
        Site::files(&site.config.drop_dir).len(),
        4,
        "the group left"
    );
    assert_eq!(
        names(&site.config.quarantine_dir),
        [written[14].stem.clone()],
        "the group quarantined (a directory)"
    );

    // The next scan sees the copy as it is now: ingested.
    let found = engine.scan(OffsetDateTime::now_utc()).expect("scan");
    engine.ingest(found).expect("the ingest");
    let (summary, error) = engine.take_summary();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(summary.ingested, 1);
    assert!(Site::files(&site.config.drop_dir).is_empty());
    for (sensor, sample) in samples.iter().enumerate() {
        let refused = usize::from(14 % samples.len() == sensor);
        let host = Hostname::new(&format!("sensor-{}", sensor + 1)).expect("a host name");
        let day = argus_ingest::dayfile::target(&site.config.oper_dir, &host, at.date()).0;
        assert_eq!(
            fs::read(&day).expect("the day file"),
            sample.repeat(6 - refused),
            "{} holds its own uploads, each once",
            day.display()
        );
    }
}

#[test]
fn a_salvaged_upload_goes_to_the_quarantine_whole_when_its_batch_is_rolled_back() {
    // A batch rolled back for a taken archive name completes its other uploads the way a
    // crash's recovery does; a salvaged one among them still goes to the quarantine whole.
    let mut site = Site::new();
    site.config.salvage = true;
    let at = an_hour_ago();
    let sample = argus_sample();
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../argus-core/testdata");
    let truncated = fs::read(testdata.join("hostA.truncated.argus")).expect("the sample");
    // Where hostA.truncated.argus breaks (its README): the whole records before it.
    let valid = &truncated[..41_220];
    site.drop_sample("sensor-1", at);
    assert_eq!(site.pass().summary.ingested, 1);
    let first = Site::files(&site.config.archive_dir);
    // The same upload again, a damaged one and a new one, in one batch.
    site.drop_sample("sensor-1", at);
    let salvaged = Upload::at("sensor-1", at + time::Duration::seconds(5))
        .out(truncated.clone())
        .write(&site.config.drop_dir)
        .expect("an upload")
        .stem;
    site.drop_sample("sensor-1", at + time::Duration::seconds(10));
    let outcome = site.pass();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        (outcome.summary.ingested, outcome.summary.quarantined),
        (1, 2)
    );
    let day = fs::read(site.day_file(at)).expect("the day file");
    assert!(
        day == [&sample[..], valid, &sample[..]].concat(),
        "the first upload, the salvaged records and the new upload, each once ({} bytes)",
        day.len()
    );
    assert_eq!(Site::files(&site.config.drop_dir), Vec::<PathBuf>::new());
    assert_eq!(Site::files(&site.config.archive_dir).len(), 3);
    let kept: Vec<PathBuf> = walk(&site.config.quarantine_dir)
        .into_iter()
        .filter(|p| p.file_name() == Some(std::ffi::OsStr::new(&format!("{salvaged}.out"))))
        .collect();
    assert_eq!(kept.len(), 1, "{salvaged}.out in the quarantine: {kept:?}");
    assert!(
        fs::read(&kept[0]).expect("the quarantined upload") == truncated,
        "the salvaged upload is in the quarantine whole"
    );
    assert!(
        first.iter().all(|a| a.exists()),
        "the first archive is kept"
    );
}

/// Every file under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in Site::files(dir) {
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A site archiving with `codec` that ingested one upload of the sample, an hour ago.
fn one_ingested(codec: argus_core::codec::Codec) -> (Site, OffsetDateTime, Vec<u8>) {
    let mut site = Site::new();
    site.config.archive_codec = codec;
    let at = an_hour_ago();
    site.drop_sample("sensor-1", at);
    assert_eq!(site.pass().summary.ingested, 1, "{codec:?}");
    (site, at, argus_sample())
}

#[test]
fn an_upload_whose_archive_name_is_taken_is_refused_and_its_batch_is_ingested_once() {
    use argus_core::codec::Codec;
    // Nothing looks for the archive name before the rename that puts the archive in place:
    // the rename refuses, the batch is rolled back and the others completed, once.
    for codec in [Site::new().config.archive_codec, Codec::NONE] {
        let (site, at, sample) = one_ingested(codec);
        let archived = Site::files(&site.config.archive_dir);
        assert_eq!(archived.len(), 1, "{codec:?}");
        let first = fs::read(&archived[0]).expect("the archive");
        // The same upload again, first in a batch beside two new ones.
        for s in [0, 5, 10] {
            site.drop_sample("sensor-1", at + time::Duration::seconds(s));
        }
        let outcome = site.pass();
        assert!(outcome.error.is_none(), "{codec:?}: {:?}", outcome.error);
        assert_eq!(
            (outcome.summary.ingested, outcome.summary.quarantined),
            (2, 1),
            "{codec:?}"
        );
        let day = fs::read(site.day_file(at)).expect("the day file");
        assert!(
            day == sample.repeat(3),
            "{codec:?}: the first upload once, the two new ones once: {} bytes for {} each",
            day.len(),
            sample.len()
        );
        let archives = Site::files(&site.config.archive_dir);
        assert_eq!(
            archives.len(),
            3,
            "{codec:?}: no temporary file left: {archives:?}"
        );
        assert_eq!(fs::read(&archives[0]).expect("the archive"), first);
        assert_eq!(Site::files(&site.config.drop_dir), Vec::<PathBuf>::new());
        let archive_name = archived[0].file_name().expect("a name").to_string_lossy();
        let stem = &archive_name[..archive_name.find(".out").expect("an archive name")];
        let quarantined = names(&site.config.quarantine_dir);
        assert!(
            quarantined.iter().any(|n| n.contains(stem)),
            "{codec:?}: {stem} in {quarantined:?}"
        );
        // Nothing changes on another pass.
        assert!(site.pass().error.is_none());
        let again = fs::read(site.day_file(at)).expect("the day file");
        assert!(
            again == day,
            "{codec:?}: changed by a pass with nothing to do"
        );
    }
}

#[test]
fn an_upload_that_left_out_a_chunk_of_a_refused_one_is_ingested_again_with_it() {
    use argus_core::codec::Codec;
    // An upload whose archive name is taken, bringing a chunk the ledger does not know (it was
    // ingested first without a manifest), and a later upload of the batch shipping that chunk
    // again: the refused one takes the chunk out with it, so the later one must bring it.
    for codec in [Site::new().config.archive_codec, Codec::NONE] {
        let (site, at, sample) = one_ingested(codec);
        let chunk = |s: i64| {
            Upload::at("sensor-1", at + time::Duration::seconds(s))
                .out(sample.clone())
                .with_manifest("sensor-1", 7)
        };
        chunk(0).write(&site.config.drop_dir).expect("an upload");
        chunk(5).write(&site.config.drop_dir).expect("an upload");
        site.drop_sample("sensor-1", at + time::Duration::seconds(10));
        let outcome = site.pass();
        assert!(outcome.error.is_none(), "{codec:?}: {:?}", outcome.error);
        let s = &outcome.summary;
        assert_eq!(
            (s.ingested, s.quarantined, s.empty, s.duplicates),
            (2, 1, 0, 0),
            "{codec:?}"
        );
        let day = fs::read(site.day_file(at)).expect("the day file");
        assert!(
            day == sample.repeat(3),
            "{codec:?}: the first upload, chunk 7 and the last upload, each once: {} bytes for {} each",
            day.len(),
            sample.len()
        );
        assert_eq!(Site::files(&site.config.drop_dir), Vec::<PathBuf>::new());
        assert_eq!(Site::files(&site.config.archive_dir).len(), 3, "{codec:?}");
        // The ledger knows chunk 7 now: shipped again, it is a duplicate.
        chunk(20).write(&site.config.drop_dir).expect("an upload");
        let again = site.pass();
        assert!(again.error.is_none(), "{codec:?}: {:?}", again.error);
        assert_eq!(again.summary.duplicates, 1, "{codec:?}");
        assert!(
            fs::read(site.day_file(at)).expect("the day file") == day,
            "{codec:?}: chunk 7 once"
        );
    }
}

#[test]
fn a_backlog_larger_than_the_scan_window_is_taken_window_by_window_oldest_first() {
    let site = Site::new();
    let at = an_hour_ago();
    let samples = four_samples();
    // Ten uploads written newest first; among the oldest, one the WebJob server still holds
    // (it takes a place in every window) and one without `.env` (quarantined).
    let mut expected = Vec::new();
    for i in (0..10_usize).rev() {
        let stamp = at + time::Duration::seconds(i64::try_from(i).expect("small"));
        let upload = Upload::at("sensor-1", stamp).out(samples[i % samples.len()].clone());
        match i {
            0 => upload.keep_lock(),
            1 => upload.without(webjob_drop::PartKind::Env),
            _ => upload,
        }
        .write(&site.config.drop_dir)
        .expect("an upload");
    }
    for i in 2..10 {
        expected.extend_from_slice(&samples[i % samples.len()]);
    }
    let options = Options {
        scan_window: 3,
        ..Options::default()
    };
    let outcome = engine::run(&site.config, &options, OffsetDateTime::now_utc());
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(
        (outcome.summary.ingested, outcome.summary.quarantined),
        (8, 1)
    );
    let day = fs::read(site.day_file(at)).expect("the day file");
    assert!(day == expected, "every upload once, oldest first");
    assert_eq!(
        Site::files(&site.config.drop_dir).len(),
        5,
        "the held upload waits"
    );
}

#[test]
fn a_scan_window_of_zero_takes_one_upload_at_a_time() {
    let site = Site::new();
    let at = an_hour_ago();
    for i in 0..3 {
        site.drop_sample("sensor-1", at + time::Duration::seconds(i));
    }
    let options = Options {
        scan_window: 0,
        ..Options::default()
    };
    let outcome = engine::run(&site.config, &options, OffsetDateTime::now_utc());
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(outcome.summary.ingested, 3);
    assert!(Site::files(&site.config.drop_dir).is_empty());
}

#[test]
fn a_window_that_takes_nothing_ends_the_pass_and_the_rest_waits() {
    let site = Site::new();
    let at = an_hour_ago();
    for i in 0..5 {
        let upload = Upload::at("sensor-1", at + time::Duration::seconds(i)).out(argus_sample());
        // The two oldest are still held by the WebJob server: they fill a window of two.
        if i < 2 { upload.keep_lock() } else { upload }
            .write(&site.config.drop_dir)
            .expect("an upload");
    }
    let options = Options {
        scan_window: 2,
        ..Options::default()
    };
    let outcome = engine::run(&site.config, &options, OffsetDateTime::now_utc());
    assert!(outcome.error.is_none(), "{:?}", outcome.summary.failed);
    assert_eq!(outcome.summary.ingested, 0);
    assert_eq!(Site::files(&site.config.drop_dir).len(), 5 * 4 + 2);
    // A wider window reaches the three behind them.
    let outcome = site.pass();
    assert_eq!(outcome.summary.ingested, 3, "{:?}", outcome.summary.failed);
}
