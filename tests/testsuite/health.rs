//! Sensor health end to end: live argus sensors on `lo` whose capture drops packets, or whose
//! argus is restarted, harvested by harvest_argus, shipped as WebJob uploads and ingested by
//! process_argus. `status --json` and the metrics file show the packets, drops, restarts and
//! stops that argus' own `ra` prints from the management records (MARs) of the chunks shipped,
//! and a chunk shipped again changes none of them. Needs argus, ra and root, and
//! `ARGUS5_PREFIX` for the argus 5 tests; skips loudly without them.

#![allow(
    clippy::print_stderr,
    reason = "the tests report the drops and restarts they made"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use test_support::json::Json;
use test_support::sensor::{self, Run, Sensor, Traffic};
use test_support::server::{Server, wait_until};
use test_support::tools::{RaMar, metric, ra_mars};
use test_support::traffic::flood;
use time::OffsetDateTime;

use crate::support::{client, ingest, status_json, upload_as};

/// argus reporting every 2 s, its snap length its own.
const QUICK_ARGS: &[&str] = &["-X", "-P", "0", "-S", "1", "-M", "2"];

/// The flood that makes a paused argus drop: 400 UDP datagrams of 60,000 bytes at 500 a second
/// (24 MB over 0.8 s). While argus is stopped (SIGSTOP) nothing reads its capture: libpcap's
/// ring (2 MB by default) is full after about 16 of them (argus runs with `-s 65535`, so each
/// takes 60 kB of it), and the kernel drops every packet after that and counts it. pcap
/// reports the count (`ps_drop`), and argus writes it as the `dropped` of a MAR/STATUS once it
/// runs again. Paced like this the flood does not make a capture that runs drop (the other
/// sensors here, and the other tests' on `lo`); sent as fast as the kernel takes it, it did.
const FLOOD: (u32, usize, u32) = (400, 60_000, 500);

/// The argus arguments of a sensor whose capture is made to drop: [`QUICK_ARGS`], a snap length
/// that keeps whole datagrams, and a capture filter that lets only the flood's datagrams to
/// `port` in: `ARGUS_FILTER` in a config file read with `-F` (argus 5.0.3 captured nothing with
/// the filter as arguments before `-i`, where harvest_argus puts `argus_args`).
///
/// The filter is what makes argus report the drops at all while the other tests send on `lo`:
/// argus 3.0.8 and 5.0.3 read the capture's counters (pcap_stats) only when it has been idle
/// for half a second. (Their per-packet path takes the timer that would refresh them:
/// ArgusModeler.c calls ArgusUpdateTime without ArgusGetInterfaceStatus; under strace, no
/// PACKET_STATISTICS while packets flow.) On a busy link the drops wait for a quiet moment.
fn dropping_args(sensor: &Sensor, port: u16) -> Vec<String> {
    let conf = sensor.dir.path().join("filter.conf");
    std::fs::write(&conf, format!("ARGUS_FILTER=\"udp and dst port {port}\"\n"))
        .expect("write the argus config");
    let mut args: Vec<String> = ["-X", "-F"].map(str::to_owned).to_vec();
    args.push(conf.display().to_string());
    args.extend(QUICK_ARGS[1..].iter().map(|a| (*a).to_owned()));
    args.extend(["-s", "65535"].map(str::to_owned));
    args
}

/// The keys of a client's health in `status --json`.
const HEALTH_KEYS: [&str; 7] = [
    "packets_24h",
    "dropped_24h",
    "drop_ratio_1h",
    "restarts_24h",
    "stops",
    "last_mar",
    "clock_offset_s",
];

/// The sensor-health series of the metrics file, without their `argus_webjob_client_` prefix.
const HEALTH_SERIES: [&str; 6] = [
    "packets_received_total",
    "packets_dropped_total",
    "argus_restarts_total",
    "argus_stops_total",
    "last_mar_timestamp_seconds",
    "clock_offset_seconds",
];

/// The argus a test runs, and the `ra` that reads its data.
#[derive(Clone, Copy)]
struct Argus<'a> {
    bin: &'a Path,
    /// The argus 5 install (its `ra` reads the data), or `None` for Debian's argus 3.
    argus5: Option<&'a Path>,
}

impl Argus<'_> {
    /// The MARs `ra` prints from `file`.
    fn mars(self, file: &Path) -> Vec<RaMar> {
        ra_mars(self.argus5, file)
    }

    /// Ends the sensor's argus: SIGTERM for argus 3, which then writes a MAR/STOP; SIGKILL for
    /// argus 5, which does not stop promptly on SIGTERM (so writes no MAR/STOP here).
    fn end(self, sensor: &Sensor) {
        if self.argus5.is_some() {
            sensor.kill_argus();
        } else {
            sensor.stop_argus();
        }
    }
}

/// The MARs `ra` prints from the chunks a run shipped, in order.
fn run_mars(argus: Argus<'_>, run: &Run) -> Vec<RaMar> {
    let dir = tempfile::tempdir().expect("temp dir");
    let chunks: Vec<Vec<u8>> = run.chunks().into_iter().map(|(_, c)| c).collect();
    sensor::write_chunks(dir.path(), &chunks)
        .iter()
        .flat_map(|path| argus.mars(path))
        .collect()
}

/// Packets delivered and dropped, summed over `mars`.
fn totals<'a>(mars: impl IntoIterator<Item = &'a RaMar>) -> (u64, u64) {
    mars.into_iter()
        .fold((0, 0), |(p, d), m| (p + m.pkts, d + m.dropped))
}

/// Polls `ra` on the sensor's output (argus is writing it) until its MARs satisfy `cond`;
/// fails naming `what` after a minute.
fn wait_for_mars(
    argus: Argus<'_>,
    sensor: &Sensor,
    what: &str,
    mut cond: impl FnMut(&[RaMar]) -> bool,
) -> Vec<RaMar> {
    let mut mars = Vec::new();
    let found = wait_until(Duration::from_secs(60), || {
        mars = if sensor.output.exists() {
            argus.mars(&sensor.output)
        } else {
            Vec::new()
        };
        let done = cond(&mars);
        if !done {
            std::thread::sleep(Duration::from_millis(200));
        }
        done
    });
    assert!(
        found,
        "no {what} in {} after a minute: {mars:?}",
        sensor.output.display()
    );
    mars
}

/// Waits until argus wrote something to the sensor's output (a MAR/START at least).
fn wait_for_output(sensor: &Sensor) {
    assert!(
        wait_until(Duration::from_secs(60), || {
            std::fs::metadata(&sensor.output).is_ok_and(|m| m.len() > 0)
        }),
        "argus wrote nothing to {} in a minute",
        sensor.output.display()
    );
}

/// Runs a harvest that must exit 0.
fn harvest(sensor: &Sensor) -> Run {
    let run = sensor.harvest();
    run.expect_code(0);
    run
}

/// The stamps of a sensor's uploads: the time each is shipped, in whole seconds, a second after
/// the one before at least (WebJob names an upload by its client and stamp).
#[derive(Default)]
struct Stamps(Option<OffsetDateTime>);

impl Stamps {
    fn next(&mut self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let now = now - time::Duration::nanoseconds(i64::from(now.nanosecond()));
        let at = match self.0 {
            Some(last) if last >= now => last + time::Duration::seconds(1),
            _ => now,
        };
        self.0 = Some(at);
        at
    }
}

/// What a client's uploads said, as `ra` reads their chunks: the figures status and the
/// metrics must show.
#[derive(Debug, Default)]
struct Expected {
    packets: u64,
    dropped: u64,
    stops: u64,
    /// The newest MAR's time, and that less the stamp of the upload that carried it.
    last_mar: Option<(i64, i64)>,
}

impl Expected {
    /// Adds the MARs of an upload stamped `at`.
    fn add(&mut self, mars: &[RaMar], at: OffsetDateTime) {
        let (packets, dropped) = totals(mars);
        self.packets += packets;
        self.dropped += dropped;
        self.stops += mars.iter().filter(|m| m.cause == "STP").count() as u64;
        if let Some(newest) = mars.iter().map(|m| m.now).max()
            && self.last_mar.is_none_or(|(known, _)| newest >= known)
        {
            self.last_mar = Some((newest, newest - at.unix_timestamp()));
        }
    }
}

/// Ships `runs` of `sensor` as uploads of `client`, and returns what `ra` reads from them.
fn ship_runs(
    server: &Server,
    argus: Argus<'_>,
    client: &str,
    sensor: &Sensor,
    runs: &[Run],
    stamps: &mut Stamps,
) -> Expected {
    let mut expected = Expected::default();
    for run in runs {
        let at = stamps.next();
        upload_as(
            server,
            client,
            &sensor.host,
            at,
            &run.stdout,
            run.stderr.as_bytes(),
        );
        expected.add(&run_mars(argus, run), at);
    }
    expected
}

/// A server for `clients`, writing its metrics to `ROOT/argus_webjob.prom`, with `extra` config
/// lines.
fn health_server(clients: &[&str], extra: &str) -> Server {
    let server = Server::new();
    write_health_config(&server, clients, extra);
    server
}

/// Writes the config of [`health_server`] (again, to change `extra`).
fn write_health_config(server: &Server, clients: &[&str], extra: &str) {
    let prom = metrics_path(server);
    server.write_toml(
        clients,
        &format!("metrics_file = {:?}\n{extra}", prom.display().to_string()),
    );
}

/// Where [`health_server`] writes its metrics.
fn metrics_path(server: &Server) -> std::path::PathBuf {
    server.root.path().join("argus_webjob.prom")
}

/// The metrics file's health series of `client`, by name.
fn health_series(server: &Server, client: &str) -> Vec<(&'static str, Option<f64>)> {
    let text = std::fs::read_to_string(metrics_path(server)).expect("the metrics file");
    HEALTH_SERIES
        .iter()
        .map(|name| {
            let sample = format!("argus_webjob_client_{name}{{client=\"{client}\"}}");
            (*name, metric(&text, &sample))
        })
        .collect()
}

/// A client's health keys in a status report.
fn health_json(report: &Json, name: &str) -> Vec<(&'static str, Json)> {
    let c = client(report, name);
    HEALTH_KEYS.iter().map(|k| (*k, c.get(k).clone())).collect()
}

/// Checks what status and the metrics show of a client against what `ra` read.
fn assert_health(server: &Server, report: &Json, name: &str, want: &Expected, restarts: u64) {
    let c = client(report, name);
    assert_eq!(c.get("packets_24h").u64(), want.packets, "{name}: {c:?}");
    assert_eq!(c.get("dropped_24h").u64(), want.dropped, "{name}: {c:?}");
    assert_eq!(c.get("restarts_24h").u64(), restarts, "{name}: {c:?}");
    assert_eq!(c.get("stops").u64(), want.stops, "{name}: {c:?}");
    let (last_mar, offset) = want.last_mar.expect("the uploads held MARs");
    let stamp = OffsetDateTime::from_unix_timestamp(last_mar).expect("a time");
    assert_eq!(
        c.get("last_mar").str(),
        argus_core::stamp::format_rfc3339(stamp),
        "{name}"
    );
    assert_eq!(c.get("clock_offset_s").i64(), offset, "{name}");
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let series = [
        want.packets as f64,
        want.dropped as f64,
        restarts as f64,
        want.stops as f64,
        last_mar as f64,
        offset as f64,
    ];
    let metrics = health_series(server, name);
    for ((series_name, got), want) in metrics.iter().zip(series) {
        assert_eq!(
            *got,
            Some(want),
            "{name}: argus_webjob_client_{series_name}"
        );
    }
}

/// Two sensors on `lo`, each shipping as a client of one server: the capture of one is paused
/// while [`FLOOD`] fills it, the other's runs through normal traffic. The drops and packets of
/// each, its stops and its newest MAR are what `ra` prints from its shipped chunks; the first is
/// DROPPING (status exits 1), the second is not; shipping the chunk with the drops again moves
/// nothing.
fn drops_show_as_ra_prints_them(test: &str, argus: Argus<'_>, net: u8, port: u16) {
    let flood_port = port + 1;
    let dropping = Sensor::with_argus(argus.bin, QUICK_ARGS, "").named("sensor1");
    let args = dropping_args(&dropping, flood_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dropping.write_config(&dropping.config, &args, "");
    let steady = Sensor::with_argus(argus.bin, QUICK_ARGS, "").named("sensor2");
    let sensors = [(&dropping, &args[..]), (&steady, QUICK_ARGS)];
    // The first runs start argus.
    let mut runs: [Vec<Run>; 2] = [vec![harvest(&dropping)], vec![harvest(&steady)]];
    let traffic = Traffic::start(net, port, 100);
    // Both capture before the flood: a MAR/STATUS counts packets delivered. (argus writes its
    // first MARs before its capture runs: a flood then would reach no capture.) The dropping
    // one sees only the flood's port: a few small datagrams go there until it counts them.
    wait_for_mars(argus, &dropping, "MAR/STATUS with packets", |m| {
        let seen = m.iter().any(|m| m.cause == "CON" && m.pkts > 0);
        if !seen {
            flood(flood_port, 5, 64, 1000).expect("bind the flood's port");
        }
        seen
    });
    wait_for_mars(argus, &steady, "MAR/STATUS with packets", |m| {
        m.iter().any(|m| m.cause == "CON" && m.pkts > 0)
    });

    dropping.pause_argus();
    let (count, size, rate) = FLOOD;
    let sent = flood(flood_port, count, size, rate).expect("bind the flood's port");
    dropping.resume_argus();
    let flooded = OffsetDateTime::now_utc().unix_timestamp();
    let seen = wait_for_mars(argus, &dropping, "MAR with drops", |m| totals(m).1 > 0);
    // The steady sensor reports on the time of the flood too.
    wait_for_mars(argus, &steady, "MAR/STATUS after the flood", |m| {
        m.iter().any(|m| m.cause == "CON" && m.now > flooded)
    });
    traffic.stop();
    for ((sensor, args), runs) in sensors.into_iter().zip(&mut runs) {
        runs.push(harvest(sensor));
        argus.end(sensor);
        runs.push(sensor.final_harvest(args, ""));
    }
    for ((sensor, _), runs) in sensors.into_iter().zip(&runs) {
        sensor::check_shipped(sensor, runs, 1);
    }

    let server = health_server(&["client1", "client2"], "");
    let mut stamps = Stamps::default();
    let want = [
        ship_runs(&server, argus, "client1", &dropping, &runs[0], &mut stamps),
        ship_runs(
            &server,
            argus,
            "client2",
            &steady,
            &runs[1],
            &mut Stamps::default(),
        ),
    ];
    eprintln!(
        "{test}: {sent} datagrams of {size} bytes flooded; the paused argus delivered {} \
         packets and dropped {} (its MARs before the harvest: {:?}); the steady one delivered {} \
         and dropped {}",
        want[0].packets,
        want[0].dropped,
        totals(&seen),
        want[1].packets,
        want[1].dropped,
    );
    assert!(want[0].dropped > 0, "the paused argus dropped nothing");
    assert!(
        want[0].dropped * 100 > want[0].packets + want[0].dropped,
        "the flood makes more than 1% of the packets dropped: {want:?}"
    );
    assert_eq!(want[1].dropped, 0, "the steady argus dropped packets");
    assert!(want[1].packets > 0, "the steady argus saw no packet");

    ingest(&server);
    let (code, report) = status_json(&server);
    assert_eq!(report.get("status").str(), "dropping", "{report:?}");
    assert_eq!(code, 1, "dropping is a warning");
    assert_eq!(client(&report, "client1").get("state").str(), "dropping");
    assert_eq!(client(&report, "client2").get("state").str(), "ok");
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let share = want[0].dropped as f64 / (want[0].packets + want[0].dropped) as f64;
    let ratio = client(&report, "client1").get("drop_ratio_1h").f64();
    assert!(
        (ratio - share).abs() < 1e-9,
        "drop_ratio_1h {ratio}, ra's MARs {share}"
    );
    assert_eq!(client(&report, "client2").get("drop_ratio_1h").f64(), 0.0);
    assert_health(&server, &report, "client1", &want[0], 0);
    assert_health(&server, &report, "client2", &want[1], 0);
    if test_support::tools::have("promtool") {
        test_support::tools::assert_promtool_accepts(&metrics_path(&server));
    }

    // The run that shipped the drops, shipped again as a new upload: the ledger knows its
    // chunks, nothing is appended, and no figure moves.
    let again = runs[0]
        .iter()
        .find(|r| totals(&run_mars(argus, r)).1 > 0)
        .expect("a run shipped the drops");
    let duplicates = client(&report, "client1").get("duplicates").u64();
    let series = health_series(&server, "client1");
    upload_as(
        &server,
        "client1",
        &dropping.host,
        stamps.next(),
        &again.stdout,
        again.stderr.as_bytes(),
    );
    ingest(&server);
    let (_, replayed) = status_json(&server);
    assert_eq!(
        client(&replayed, "client1").get("duplicates").u64(),
        duplicates + again.manifests().len() as u64,
        "the ledger saw the chunks again"
    );
    assert_eq!(
        health_json(&replayed, "client1"),
        health_json(&report, "client1")
    );
    assert_eq!(health_series(&server, "client1"), series);
}

#[test]
fn a_sensor_that_drops_packets_is_dropping_with_the_drops_ra_prints() {
    const TEST: &str = "a_sensor_that_drops_packets_is_dropping_with_the_drops_ra_prints";
    if !sensor::need_argus(TEST) {
        return;
    }
    let argus = Argus {
        bin: Path::new(sensor::ARGUS),
        argus5: None,
    };
    drops_show_as_ra_prints_them(TEST, argus, 61, 40_761);
}

#[test]
fn an_argus5_sensor_that_drops_packets_is_dropping_with_the_drops_ra_prints() {
    const TEST: &str = "an_argus5_sensor_that_drops_packets_is_dropping_with_the_drops_ra_prints";
    let Some(prefix) = test_support::tools::argus5_prefix(TEST) else {
        return;
    };
    if !sensor::need_argus(TEST) {
        return;
    }
    let bin = prefix.join("sbin/argus");
    let argus = Argus {
        bin: &bin,
        argus5: Some(&prefix),
    };
    drops_show_as_ra_prints_them(TEST, argus, 63, 40_763);
}

/// One sensor through four argus runs: started by the first harvest, then three times ended
/// ([`Argus::end`]) and started again by the next harvest. Every run is shipped and ingested as
/// soon as it is made, so that each pass shows which harvest brought a restart: only the first
/// chunk of a new argus run (its MAR/START with a new start time), never a harvest that only
/// cut (the reopen's MAR/START keeps the start time).
fn restarts_show_as_ra_prints_them(test: &str, argus: Argus<'_>, net: u8, port: u16) {
    let sensor = Sensor::with_argus(argus.bin, QUICK_ARGS, "");
    let server = health_server(&["client1"], "");
    let mut stamps = Stamps::default();
    let mut want = Expected::default();
    let mut runs = Vec::new();
    // Ships a run, ingests it, and checks the restarts status counts.
    let mut deliver = |run: Run, restarts: u64, what: &str| {
        let at = stamps.next();
        upload_as(
            &server,
            "client1",
            &sensor.host,
            at,
            &run.stdout,
            run.stderr.as_bytes(),
        );
        want.add(&run_mars(argus, &run), at);
        runs.push(run);
        ingest(&server);
        let (_, report) = status_json(&server);
        assert_eq!(
            client(&report, "client1").get("restarts_24h").u64(),
            restarts,
            "after {what}"
        );
    };

    // The flows keep argus writing, so that each cut finds data.
    let traffic = Traffic::start(net, port, 50);
    let first = harvest(&sensor);
    assert!(
        first.stderr.contains("argus started (pid"),
        "{}",
        first.stderr
    );
    let mut run_started = Instant::now();
    deliver(first, 0, "the harvest that started argus");
    for restarts in 0..=3 {
        wait_for_output(&sensor);
        let cut = harvest(&sensor);
        assert!(cut.stderr.contains("argus is running"), "{}", cut.stderr);
        deliver(cut, restarts, "the first cut of an argus run");
        wait_for_output(&sensor);
        deliver(harvest(&sensor), restarts, "a harvest that only cut");
        if restarts == 3 {
            break;
        }
        // argus' start times are whole seconds: the next run starts in a later one.
        std::thread::sleep(Duration::from_millis(1100).saturating_sub(run_started.elapsed()));
        argus.end(&sensor);
        let restart = harvest(&sensor);
        assert!(
            restart.stderr.contains("argus started (pid"),
            "{}",
            restart.stderr
        );
        run_started = Instant::now();
        deliver(restart, restarts, "the harvest that started argus again");
    }
    traffic.stop();
    argus.end(&sensor);
    deliver(
        sensor.final_harvest(QUICK_ARGS, ""),
        3,
        "the last argus run ended",
    );
    sensor::check_shipped(&sensor, &runs, 1);

    // ra reads four argus runs from the chunks, and more MAR/STARTs than runs: the reopens.
    let mars: Vec<RaMar> = runs.iter().flat_map(|r| run_mars(argus, r)).collect();
    let starts: Vec<i64> = mars
        .iter()
        .filter(|m| m.cause == "STA")
        .map(|m| m.started)
        .collect();
    let mut runs_seen = starts.clone();
    runs_seen.dedup();
    assert_eq!(runs_seen.len(), 4, "argus start times: {starts:?}");
    assert!(runs_seen.is_sorted(), "{starts:?}");
    assert!(
        starts.len() >= 8,
        "a reopen's START after each cut: {starts:?}"
    );
    eprintln!(
        "{test}: {} harvests, {} MAR/STARTs of {} argus runs, {} MAR/STOPs",
        runs.len(),
        starts.len(),
        runs_seen.len(),
        want.stops
    );

    let (code, report) = status_json(&server);
    assert_eq!(
        code, 0,
        "3 restarts are not more than restart_warn: {report:?}"
    );
    assert_eq!(client(&report, "client1").get("state").str(), "ok");
    assert_health(&server, &report, "client1", &want, 3);

    // A chunk that brought a restart, shipped again: nothing moves.
    let again = runs
        .iter()
        .find(|r| {
            run_mars(argus, r)
                .iter()
                .any(|m| m.cause == "STA" && m.started == runs_seen[1])
        })
        .expect("a run shipped the second argus run's START");
    let series = health_series(&server, "client1");
    upload_as(
        &server,
        "client1",
        &sensor.host,
        stamps.next(),
        &again.stdout,
        again.stderr.as_bytes(),
    );
    ingest(&server);
    let (_, replayed) = status_json(&server);
    assert_eq!(
        health_json(&replayed, "client1"),
        health_json(&report, "client1")
    );
    assert_eq!(health_series(&server, "client1"), series);

    // With restart_warn = 2, three restarts are too many.
    write_health_config(&server, &["client1"], "restart_warn = 2\n");
    let (code, report) = status_json(&server);
    assert_eq!(code, 1, "restarting is a warning: {report:?}");
    assert_eq!(report.get("status").str(), "restarting");
    assert_eq!(client(&report, "client1").get("state").str(), "restarting");
}

#[test]
fn an_argus_restarted_three_times_shows_three_restarts() {
    const TEST: &str = "an_argus_restarted_three_times_shows_three_restarts";
    if !sensor::need_argus(TEST) {
        return;
    }
    let argus = Argus {
        bin: Path::new(sensor::ARGUS),
        argus5: None,
    };
    restarts_show_as_ra_prints_them(TEST, argus, 65, 40_765);
}

#[test]
fn an_argus5_restarted_three_times_shows_three_restarts() {
    const TEST: &str = "an_argus5_restarted_three_times_shows_three_restarts";
    let Some(prefix) = test_support::tools::argus5_prefix(TEST) else {
        return;
    };
    if !sensor::need_argus(TEST) {
        return;
    }
    let bin = prefix.join("sbin/argus");
    let argus = Argus {
        bin: &bin,
        argus5: Some(&prefix),
    };
    restarts_show_as_ra_prints_them(TEST, argus, 67, 40_767);
}
