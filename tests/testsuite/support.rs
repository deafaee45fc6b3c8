//! What the end-to-end tests share: the runs of a sensor shipped as WebJob uploads, and the day
//! files read back.

use std::path::PathBuf;

use test_support::json::Json;
use test_support::sensor::{HOST, Run};
use test_support::server::Server;
use time::OffsetDateTime;
use webjob_drop::fixture::Upload;

/// The client the tests' sensor uploads as.
pub(crate) const CLIENT: &str = "client1";

/// Writes one upload of [`CLIENT`] from the sensor's host at `at`: `out` as its `.out`, `err`
/// as its `.err`.
pub(crate) fn upload(server: &Server, at: OffsetDateTime, out: &[u8], err: &[u8]) {
    upload_as(server, CLIENT, HOST, at, out, err);
}

/// [`upload`] of another client and host.
pub(crate) fn upload_as(
    server: &Server,
    client: &str,
    host: &str,
    at: OffsetDateTime,
    out: &[u8],
    err: &[u8],
) {
    Upload::at(client, at)
        .out(out.to_vec())
        .err(err.to_vec())
        .hostname(host)
        .write(&server.drop_dir())
        .expect("write upload");
}

/// Ships every run as WebJob does a job's output: one upload a run, its stdout (the chunks) as
/// `.out` and its stderr (log lines and the chunk manifests) as `.err`, one second apart from
/// `start`.
pub(crate) fn ship(server: &Server, runs: &[Run], start: OffsetDateTime) {
    ship_as(server, CLIENT, HOST, runs, start);
}

/// [`ship`] of another client and host.
pub(crate) fn ship_as(
    server: &Server,
    client: &str,
    host: &str,
    runs: &[Run],
    start: OffsetDateTime,
) {
    for (i, run) in (0_i64..).zip(runs) {
        let at = start + time::Duration::seconds(i);
        upload_as(server, client, host, at, &run.stdout, run.stderr.as_bytes());
    }
}

/// The day files process_argus wrote, oldest day first.
pub(crate) fn day_files(server: &Server) -> Vec<PathBuf> {
    let oper = server.oper_dir();
    Server::files(&oper)
        .into_iter()
        .map(|name| oper.join(name))
        .collect()
}

/// What the day files hold, decompressed and joined, oldest day first.
pub(crate) fn day_data(server: &Server) -> Vec<u8> {
    day_files(server)
        .iter()
        .flat_map(|path| test_support::files::decoded(path))
        .collect()
}

/// Runs one pass of process_argus and checks it took every upload: exit 0 (nothing
/// quarantined), the dropzone empty.
pub(crate) fn ingest(server: &Server) {
    let out = server.run(&[]);
    assert_eq!(
        test_support::server::status(&out),
        0,
        "nothing quarantined: {}",
        test_support::server::stderr(&out)
    );
    assert_eq!(
        Server::files(&server.drop_dir()),
        Vec::<PathBuf>::new(),
        "every upload taken from the dropzone"
    );
}

/// Fails unless the day files hold exactly `expected` (every chunk once, in order), saying
/// how they differ in size rather than printing megabytes.
pub(crate) fn assert_day_data(server: &Server, expected: &[u8]) {
    let got = day_data(server);
    assert!(
        got == expected,
        "the day files hold {} bytes, the uploads {} bytes: each chunk must be appended exactly once",
        got.len(),
        expected.len()
    );
}

/// `process_argus status --json`: its exit status and its report.
pub(crate) fn status_json(server: &Server) -> (i32, Json) {
    let out = server.run(&["status", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let report = Json::parse(&text).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}\n{text}\n{}",
            test_support::server::stderr(&out)
        )
    });
    (test_support::server::status(&out), report)
}

/// The object of `client` in a status report.
pub(crate) fn client<'a>(report: &'a Json, client: &str) -> &'a Json {
    report
        .get("clients")
        .items()
        .iter()
        .find(|c| c.get("client").str() == client)
        .unwrap_or_else(|| panic!("no client {client:?} in {report:?}"))
}
