//! process_argus as a drop-in for the recipe: with only the recipe's `process_argus.cfg`, found
//! through `WEBJOB_HOME`, a dropzone of several clients ends up in day files equal byte for byte
//! to the oldest-first concatenation of each host's uploads of each day.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use argus_core::codec::open_decoded;
use test_support::bins::sample;
use test_support::server::{Server, status, stderr};
use test_support::tools::{have, ra_records};
use time::{Duration, OffsetDateTime};
use webjob_drop::fixture::Upload;

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn decoded(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    open_decoded(path)
        .expect("open archive")
        .read_to_end(&mut out)
        .expect("decode archive");
    out
}

#[test]
fn recipe_config_gives_exact_day_files_and_archives() {
    let server = Server::new();
    // Client ids with `_`, `-` and `.`, and ids that are prefixes of others.
    let clients = ["client1", "client10", "site_a", "web-1", "db.prod"];
    server.write_recipe_cfg(&clients, "/bin/gzip -9", "", 7);

    let samples: Vec<Vec<u8>> = [
        "hostA.argus",
        "hostB.argus",
        "hostC.argus",
        "mar-only.argus",
        "empty.argus",
        "hostD.chunk1.argus",
        "hostD.chunk2.argus",
    ]
    .iter()
    .map(|n| read(&sample(n)))
    .collect();

    // Uploads over two days, written out of order; every stem shape; per-client subdirectories
    // for one client.
    let now = OffsetDateTime::now_utc();
    let today = now.replace_time(time::Time::MIDNIGHT) + Duration::hours(1);
    let yesterday = today - Duration::days(1);
    let mut expected: BTreeMap<String, Vec<(OffsetDateTime, String, Vec<u8>)>> = BTreeMap::new();
    let mut outs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut n = 0;
    for (ci, client) in clients.iter().enumerate() {
        let host = format!("{}-host", client.replace(['_', '.'], "-"));
        for (k, day) in [today, yesterday, today].iter().enumerate() {
            let at = *day + Duration::minutes((ci * 7 + k * 13) as i64 % 50);
            let bytes = samples[n % samples.len()].clone();
            n += 1;
            let mut upload = Upload::at(client, at).out(bytes.clone()).hostname(&host);
            upload = match k {
                0 => upload,
                1 => upload.pid(4242 + u32::try_from(ci).expect("few clients")),
                _ => upload.middle("snapshot"),
            };
            if *client == "web-1" {
                upload = upload.in_subdir("web-1");
            }
            let written = upload.write(&server.drop_dir()).expect("write upload");
            let day_name = format!("{host}_{}", argus_core::stamp::format_date(at.date()));
            expected
                .entry(day_name)
                .or_default()
                .push((at, written.stem.clone(), bytes.clone()));
            outs.push((written.stem, bytes));
        }
    }
    // A foreign client and a foreign job: never touched.
    let foreign = Upload::at("client100", today)
        .out(samples[0].clone())
        .write(&server.drop_dir())
        .expect("foreign client");
    let other_job = Upload::at("client1", today)
        .job("other_job")
        .out(samples[0].clone())
        .write(&server.drop_dir())
        .expect("foreign job");

    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));

    // Day files: exactly the oldest-first concatenation.
    for (day_name, mut uploads) in expected {
        uploads.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let want: Vec<u8> = uploads.iter().flat_map(|u| u.2.clone()).collect();
        let path = server.oper_dir().join(&day_name);
        if want.is_empty() {
            assert!(
                !path.exists(),
                "{day_name}: only empty uploads, no day file"
            );
            continue;
        }
        assert!(
            read(&path) == want,
            "{day_name} differs from the concatenation"
        );
        if have("ra") {
            let records: usize = uploads
                .iter()
                .map(|u| {
                    let records = argus_core::record::walk(&u.2[..]).expect("walk").records;
                    usize::try_from(records).expect("records fit")
                })
                .sum();
            assert_eq!(
                ra_records(&path),
                records,
                "{day_name}: ra reads every record"
            );
        }
    }
    // Archives: one per upload, decompressing to its .out.
    for (stem, bytes) in &outs {
        let archive = server.archive_dir().join(format!("{stem}.out.gz"));
        assert!(decoded(&archive) == *bytes, "{stem}: archive differs");
    }
    // The dropzone is drained but for the foreign uploads.
    let left = Server::files(&server.drop_dir());
    let mut want_left: Vec<_> = foreign
        .paths
        .iter()
        .chain(&other_job.paths)
        .map(|p| {
            p.strip_prefix(server.drop_dir())
                .expect("inside")
                .to_path_buf()
        })
        .collect();
    want_left.sort();
    assert_eq!(left, want_left);
    // The log file has the story.
    let log = fs::read_to_string(server.log_dir().join("process_argus.log")).expect("log");
    assert!(log.contains("ingested"), "{log}");

    // A second run finds nothing to do and changes nothing.
    let before = Server::files(server.root.path());
    let out = server.run(&[]);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));
    assert_eq!(Server::files(server.root.path()), before);
}

#[test]
fn summary_is_machine_readable() {
    let server = Server::new();
    server.write_toml(&["client1"], "archive_compression = \"xz\"\n");
    Upload::at("client1", OffsetDateTime::now_utc())
        .out(read(&sample("hostB.argus")))
        .hostname("sensor1")
        .with_manifest("sensor1", 1)
        .write(&server.drop_dir())
        .expect("write");
    let out = server.run(&["--json"]);
    assert_eq!(status(&out), 0, "stderr: {}", stderr(&out));
    let json = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        json.starts_with(
            "{\"ingested\":1,\"bytes\":15248,\"empty\":0,\"day_files\":1,\"quarantined\":0,"
        ),
        "{json}"
    );
}
