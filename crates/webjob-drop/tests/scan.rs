//! Scanner tests on real temporary dropzones written by the fixture writer.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::stat::Mode;
use time::macros::datetime;
use webjob_drop::fixture::Upload;
use webjob_drop::{
    Dropzone, EnvError, Error, FileKind, ForeignReason, IgnoredReason, InvalidReason, PartKind,
    Scan, Selection, quarantine_group,
};

const T1: &str = "20030715120001";

fn dropzone() -> (tempfile::TempDir, PathBuf) {
    let base = tempfile::tempdir().expect("tempdir");
    // An `_` in the dropzone path must not shift any field (the recipe's `cut -d_ -f2` did).
    let root = base.path().join("web_job/in_coming");
    fs::create_dir_all(&root).expect("mkdir");
    (base, root)
}

fn scan(root: &Path, clients: &[&str]) -> Scan {
    let selection = Selection::new(clients, "harvest_argus").expect("selection");
    Dropzone::new(root).scan(&selection).expect("scan")
}

fn stems(scan: &Scan) -> Vec<&str> {
    scan.complete.iter().map(|g| g.stem()).collect()
}

fn invalid_reasons(scan: &Scan) -> BTreeMap<String, Vec<InvalidReason>> {
    scan.invalid
        .iter()
        .map(|i| {
            (
                i.files().stem().to_string_lossy().into_owned(),
                i.reasons().to_vec(),
            )
        })
        .collect()
}

/// Every entry below `dir` with its type, size, mode and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let m = e.metadata().expect("lstat");
            if m.is_dir() {
                todo.push(e.path());
            }
            out.insert(e.path(), (m.mode(), m.len(), m.mtime(), m.mtime_nsec()));
        }
    }
    out
}

#[test]
fn prefix_client_ids_never_match_longer_ones() {
    let (_base, root) = dropzone();
    for client in ["client1", "client10", "client1_a", "client1-b", "client1.c"] {
        Upload::new(client, T1).write(&root).expect("write");
    }
    let s = scan(&root, &["client1"]);
    assert_eq!(stems(&s), ["client1_20030715120001_harvest_argus"]);
    let foreign: Vec<_> = s.foreign.iter().map(|f| f.client()).collect();
    assert_eq!(foreign, ["client1-b", "client1.c", "client10", "client1_a"]);
    assert!(
        s.foreign
            .iter()
            .all(|f| f.reason() == ForeignReason::OtherClient && f.is_complete())
    );

    let s = scan(&root, &["client10", "client1_a", "client1-b", "client1.c"]);
    let clients: Vec<_> = s.complete.iter().map(|g| g.client()).collect();
    assert_eq!(clients.len(), 4);
    for c in ["client10", "client1_a", "client1-b", "client1.c"] {
        assert!(clients.contains(&c), "{c}");
    }
    assert_eq!(s.foreign.len(), 1);
    assert_eq!(s.foreign[0].client(), "client1");
}

#[test]
fn client_ids_with_underscores_dashes_and_dots() {
    let (_base, root) = dropzone();
    Upload::new("host_east-2.dmz", T1)
        .pid(77)
        .write(&root)
        .expect("write");
    let s = scan(&root, &["host_east-2.dmz"]);
    let g = &s.complete[0];
    assert_eq!(g.client(), "host_east-2.dmz");
    assert_eq!(g.middle(), Some("77"));
    assert_eq!(g.uploaded_at(), datetime!(2003-07-15 12:00:01 UTC));
    assert_eq!(g.uploaded_at().date(), time::macros::date!(2003 - 07 - 15));
    // Globs work on whole client ids, with their `_` and `.`.
    assert_eq!(scan(&root, &["host_*"]).complete.len(), 1);
    assert_eq!(scan(&root, &["host"]).complete.len(), 0);
}

#[test]
fn every_middle_field_shape_is_found() {
    let (_base, root) = dropzone();
    Upload::new("client1", "20030715120001")
        .write(&root)
        .expect("none");
    Upload::new("client1", "20030715120002")
        .pid(4242)
        .write(&root)
        .expect("pid");
    Upload::new("client1", "20030715120003")
        .middle("snapshot")
        .write(&root)
        .expect("run type");
    let s = scan(&root, &["client1"]);
    let middles: Vec<_> = s.complete.iter().map(|g| g.middle()).collect();
    assert_eq!(middles, [None, Some("4242"), Some("snapshot")]);
    assert!(s.complete.iter().all(|g| g.job() == "harvest_argus"));
}

#[test]
fn subdirectories_are_scanned_to_the_configured_depth() {
    let (_base, root) = dropzone();
    Upload::new("client1", "20030715120003")
        .in_subdir("client1")
        .write(&root)
        .expect("write");
    Upload::new("client1", "20030715120002")
        .in_subdir("client1/harvest_argus")
        .write(&root)
        .expect("write");
    Upload::new("client1", "20030715120001")
        .in_subdir("a/b/c")
        .write(&root)
        .expect("write");
    let selection = Selection::new(["client1"], "harvest_argus").expect("selection");

    let s = Dropzone::new(&root).scan(&selection).expect("scan");
    assert_eq!(
        stems(&s),
        [
            "client1_20030715120002_harvest_argus",
            "client1_20030715120003_harvest_argus"
        ]
    );
    assert_eq!(s.complete[0].dir(), root.join("client1/harvest_argus"));
    assert!(
        s.ignored
            .iter()
            .any(|i| i.path == root.join("a/b/c") && i.reason == IgnoredReason::TooDeep)
    );

    let flat = Dropzone::new(&root)
        .with_max_depth(0)
        .scan(&selection)
        .expect("scan");
    assert!(flat.complete.is_empty());
    let deep = Dropzone::new(&root)
        .with_max_depth(3)
        .scan(&selection)
        .expect("scan");
    assert_eq!(deep.complete.len(), 3);
    assert_eq!(
        deep.complete[0].stem(),
        "client1_20030715120001_harvest_argus"
    );

    // A symbolic link to a directory is never followed.
    std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
    let s = Dropzone::new(&root)
        .with_max_depth(5)
        .scan(&selection)
        .expect("scan");
    assert!(s.ignored.iter().any(|i| i.path == root.join("etc")
        && i.file_type == FileKind::Symlink
        && i.reason == IgnoredReason::NotAnUpload));
}

#[test]
fn complete_groups_come_oldest_first() {
    let (_base, root) = dropzone();
    // Written newest first, with names whose byte order differs from their time order.
    Upload::new("zeta", "20030716000000")
        .write(&root)
        .expect("w");
    Upload::new("alpha", "20030715235959")
        .write(&root)
        .expect("w");
    Upload::new("beta", "20030715235959")
        .write(&root)
        .expect("w");
    Upload::new("alpha", "20030715235959")
        .pid(1)
        .in_subdir("alpha")
        .write(&root)
        .expect("w");
    Upload::new("alpha", "20021231120000")
        .write(&root)
        .expect("w");
    let s = scan(&root, &["*"]);
    assert_eq!(
        stems(&s),
        [
            "alpha_20021231120000_harvest_argus",
            "alpha_20030715235959_1_harvest_argus",
            "alpha_20030715235959_harvest_argus",
            "beta_20030715235959_harvest_argus",
            "zeta_20030716000000_harvest_argus",
        ]
    );
}

#[test]
fn groups_without_rdy_are_in_flight_with_their_age() {
    let (_base, root) = dropzone();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(7 * 3600);
    Upload::new("client1", "20030715120001")
        .orphan()
        .modified(old)
        .write(&root)
        .expect("orphan");
    Upload::new("client1", "20030715130001")
        .orphan()
        .keep_lock()
        .without(PartKind::Env)
        .modified(now - Duration::from_secs(60))
        .write(&root)
        .expect("writing");
    // Only the lock so far.
    fs::write(root.join("client1_20030715140001_harvest_argus.lck"), b"").expect("lck");
    let s = scan(&root, &["client1"]);
    assert!(s.complete.is_empty() && s.invalid.is_empty());
    assert_eq!(s.in_flight.len(), 3);
    let first = &s.in_flight[0];
    assert_eq!(first.client(), Some("client1"));
    assert_eq!(
        first.uploaded_at(),
        Some(datetime!(2003-07-15 12:00:01 UTC))
    );
    assert!(first.age(now) >= Duration::from_secs(7 * 3600));
    assert!(!first.is_locked());
    assert!(s.in_flight[1].is_locked());
    assert_eq!(s.in_flight[1].files().parts().len(), 3);
    let orphans: Vec<_> = s.orphans(now, Duration::from_secs(6 * 3600)).collect();
    assert_eq!(orphans.len(), 1);
    assert_eq!(
        orphans[0].files().stem(),
        OsStr::new("client1_20030715120001_harvest_argus")
    );
}

#[test]
fn a_group_the_server_still_locks_is_in_flight_until_its_lock_is_stale() {
    let (_base, root) = dropzone();
    let now = SystemTime::now();
    // `.rdy` written, `.lck` not yet removed: the server is finishing the upload.
    let held = Upload::new("client1", T1)
        .keep_lock()
        .write(&root)
        .expect("held");
    // Held too, although `.env` is missing for now: not invalid while the server holds it.
    Upload::new("client1", "20030715130001")
        .keep_lock()
        .without(PartKind::Env)
        .write(&root)
        .expect("held, partial");
    let selection = Selection::new(["client1"], "harvest_argus").expect("selection");
    let zone = Dropzone::new(&root).with_now(now);
    let s = zone.scan(&selection).expect("scan");
    assert!(stems(&s).is_empty(), "held groups are not complete");
    assert!(s.invalid.is_empty(), "held groups are not invalid");
    assert_eq!(s.in_flight.len(), 2);
    assert!(s.in_flight.iter().all(|f| f.is_held()));
    assert_eq!(s.orphans(now, Duration::ZERO).count(), 0, "never orphans");
    let one = zone
        .scan_group(&selection, &root, held.stem.as_str())
        .expect("scan one");
    assert!(one.complete.is_empty() && one.in_flight.len() == 1);
    let others = Selection::new(["client2"], "harvest_argus").expect("selection");
    let s = zone.scan(&others).expect("scan as another client");
    assert_eq!(s.foreign.len(), 2);
    assert!(
        s.foreign.iter().all(|f| !f.is_complete()),
        "held, not complete"
    );

    // A lock older than the limit is a dead server's leftover: the group is complete.
    let later = now + webjob_drop::scan::LOCK_STALE_AFTER + Duration::from_secs(1);
    let s = Dropzone::new(&root)
        .with_now(later)
        .scan(&selection)
        .expect("scan later");
    assert_eq!(stems(&s), [held.stem.as_str()]);
    assert!(s.complete[0].lck().is_some());
    assert_eq!(s.invalid.len(), 1);
    // Measured after the writes: no lock is dated after this `now`.
    let s = Dropzone::new(&root)
        .with_now(SystemTime::now())
        .with_lock_stale_after(Duration::ZERO)
        .scan(&selection)
        .expect("scan, no lock holds");
    assert_eq!(stems(&s), [held.stem.as_str()]);
}

#[test]
fn every_invalid_kind_is_reported_with_its_reason() {
    let (_base, root) = dropzone();
    let stem = |n: u32| format!("client1_2003071512000{n}_harvest_argus");
    // 1: `.out` is a symbolic link to /etc/passwd.
    Upload::new("client1", "20030715120001")
        .without(PartKind::Out)
        .write(&root)
        .expect("w");
    std::os::unix::fs::symlink("/etc/passwd", root.join(format!("{}.out", stem(1))))
        .expect("symlink");
    // 2: `.out` is a FIFO (the scan must not block on it).
    Upload::new("client1", "20030715120002")
        .without(PartKind::Out)
        .write(&root)
        .expect("w");
    nix::unistd::mkfifo(
        &root.join(format!("{}.out", stem(2))),
        Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    // 3: `.env` is a directory.
    Upload::new("client1", "20030715120003")
        .without(PartKind::Env)
        .write(&root)
        .expect("w");
    fs::create_dir(root.join(format!("{}.env", stem(3)))).expect("mkdir");
    // 4: `.rdy` alone.
    fs::write(root.join(format!("{}.rdy", stem(4))), b"").expect("rdy");
    // 5: `.rdy` without `.env`.
    Upload::new("client1", "20030715120005")
        .without(PartKind::Env)
        .write(&root)
        .expect("w");
    // 6: `.rdy` is a symbolic link.
    Upload::new("client1", "20030715120006")
        .without(PartKind::Rdy)
        .write(&root)
        .expect("w");
    std::os::unix::fs::symlink("/etc/passwd", root.join(format!("{}.rdy", stem(6))))
        .expect("symlink");
    // 7: no real date-time.
    Upload::new("client1", "20031315120007")
        .write(&root)
        .expect("w");

    let s = scan(&root, &["client1"]);
    assert!(s.complete.is_empty());
    let reasons = invalid_reasons(&s);
    let not_regular = |kind, ext: &str, file_type| InvalidReason::NotRegular {
        kind,
        ext: ext.into(),
        file_type,
    };
    assert_eq!(
        reasons[&stem(1)],
        [not_regular(PartKind::Out, "out", FileKind::Symlink)]
    );
    assert_eq!(
        reasons[&stem(2)],
        [not_regular(PartKind::Out, "out", FileKind::Fifo)]
    );
    assert_eq!(
        reasons[&stem(3)],
        [not_regular(PartKind::Env, "env", FileKind::Directory)]
    );
    assert_eq!(
        reasons[&stem(4)],
        [
            InvalidReason::Missing(PartKind::Out),
            InvalidReason::Missing(PartKind::Err),
            InvalidReason::Missing(PartKind::Env)
        ]
    );
    assert_eq!(reasons[&stem(5)], [InvalidReason::Missing(PartKind::Env)]);
    assert_eq!(
        reasons[&stem(6)],
        [not_regular(PartKind::Rdy, "rdy", FileKind::Symlink)]
    );
    assert_eq!(
        reasons["client1_20031315120007_harvest_argus"],
        [InvalidReason::BadStamp]
    );
    assert_eq!(s.invalid.len(), 7);
    let text = s.invalid[0].to_string();
    assert!(text.ends_with(": .out is a symbolic link"), "{text}");
}

#[test]
fn unreadable_parts_are_invalid() {
    if nix::unistd::geteuid().is_root() {
        // Permission bits do not stop root; the case is covered when run as a normal user.
        log_skip("unreadable_parts_are_invalid: running as root, mode 000 is still readable");
        return;
    }
    let (_base, root) = dropzone();
    let w = Upload::new("client1", T1).write(&root).expect("w");
    fs::set_permissions(
        w.path("env"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    let s = scan(&root, &["client1"]);
    assert!(matches!(
        s.invalid[0].reasons(),
        [InvalidReason::Unreadable {
            kind: PartKind::Env,
            ..
        }]
    ));
}

#[allow(clippy::print_stderr, reason = "a skipped test says so loudly")]
fn log_skip(why: &str) {
    eprintln!("SKIPPED: {why}");
}

#[test]
fn foreign_jobs_and_clients_are_reported_not_taken() {
    let (_base, root) = dropzone();
    Upload::new("client1", T1)
        .job("other_job")
        .write(&root)
        .expect("w");
    Upload::new("client1", T1)
        .job("xharvest_argus")
        .write(&root)
        .expect("w");
    Upload::new("client2", T1).write(&root).expect("w");
    Upload::new("client2", T1)
        .job("other")
        .orphan()
        .write(&root)
        .expect("w");
    fs::write(root.join("README"), b"x").expect("w");
    fs::write(root.join("notes.txt"), b"x").expect("w");
    let s = scan(&root, &["client1"]);
    assert!(s.complete.is_empty() && s.invalid.is_empty() && s.in_flight.is_empty());
    let foreign: Vec<_> = s
        .foreign
        .iter()
        .map(|f| (f.client(), f.reason(), f.is_complete()))
        .collect();
    assert_eq!(
        foreign,
        [
            ("client1", ForeignReason::OtherJob, true),
            ("client1", ForeignReason::OtherJob, true),
            ("client2", ForeignReason::OtherClient, true),
            ("client2", ForeignReason::OtherJob, false),
        ]
    );
    let ignored: Vec<_> = s.ignored.iter().map(|i| i.path.clone()).collect();
    assert_eq!(ignored, [root.join("README"), root.join("notes.txt")]);
}

#[test]
fn non_utf8_names_are_reported_not_crashed_on() {
    let (_base, root) = dropzone();
    let name = |bytes: &[u8]| root.join(OsStr::from_bytes(bytes));
    // Our client and job, but the middle field is not UTF-8: invalid, and quarantinable.
    for ext in ["out", "err", "env", "rdy"] {
        let mut n = b"client1_20030715120001_\xff\xfe_harvest_argus.".to_vec();
        n.extend_from_slice(ext.as_bytes());
        fs::write(name(&n), b"Hostname=client1\n").expect("write");
    }
    // Not UTF-8 in the client part: not an upload of anyone.
    fs::write(name(b"cli\xe9nt_20030715120001_harvest_argus.rdy"), b"").expect("w");
    fs::write(name(b"\xff.rdy"), b"").expect("w");
    fs::create_dir(name(b"dir\xff")).expect("mkdir");
    let s = scan(&root, &["client1"]);
    assert!(s.complete.is_empty());
    assert_eq!(s.invalid.len(), 1);
    assert_eq!(s.invalid[0].reasons(), [InvalidReason::NotText]);
    assert_eq!(s.invalid[0].client(), Some("client1"));
    assert!(s.invalid[0].to_string().contains(r"\xff\xfe"));
    assert_eq!(s.ignored.len(), 2, "{:?}", s.ignored);

    let base = root.parent().expect("parent").join("quarantine");
    let q = quarantine_group(&s.invalid[0], &base, &s.invalid[0].reason_text()).expect("q");
    assert_eq!(q.moved.len(), 4);
    assert_eq!(
        scan(&root, &["client1"]).invalid.len(),
        0,
        "moved out of the dropzone"
    );
}

#[test]
fn the_scan_changes_nothing() {
    let (_base, root) = dropzone();
    Upload::new("client1", T1)
        .rdy("Version=1\n")
        .write(&root)
        .expect("w");
    Upload::new("client1", "20030715120002")
        .orphan()
        .keep_lock()
        .write(&root)
        .expect("w");
    Upload::new("client2", T1)
        .in_subdir("client2")
        .write(&root)
        .expect("w");
    Upload::new("client1", "20030715120003")
        .without(PartKind::Out)
        .write(&root)
        .expect("w");
    nix::unistd::mkfifo(
        &root.join("client1_20030715120003_harvest_argus.out"),
        Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    let before = snapshot(&root);
    let s = scan(&root, &["*"]);
    assert_eq!(s.complete.len(), 2);
    assert_eq!(snapshot(&root), before);
}

/// Replaces the file at `path` with a link to `/etc/passwd`.
fn swap_for_link(path: &Path) {
    fs::remove_file(path).expect("rm");
    std::os::unix::fs::symlink("/etc/passwd", path).expect("symlink");
}

fn refused_as_link<T>(opened: webjob_drop::Result<T>) -> bool {
    matches!(
        opened,
        Err(Error::NotRegular {
            file_type: FileKind::Symlink,
            ..
        })
    )
}

#[test]
fn parts_are_read_safely_and_only_as_scanned() {
    let (_base, root) = dropzone();
    let w = Upload::new("client1", T1)
        .out(b"\x83\x10\x00\x20argus".to_vec())
        .err(b"harvest_argus: rotated\n".to_vec())
        .env(b"KidHostname=evil\r\nHostname=sensor1\r\nJid=\xff\r\n".to_vec())
        .rdy("Version=nph-webjob 1.9.0\nUseGMT=N\n")
        .with_manifest("sensor1", 42)
        .write(&root)
        .expect("w");
    let s = scan(&root, &["client1"]);
    let g = &s.complete[0];
    assert_eq!(
        g.read_env()
            .expect("env")
            .hostname()
            .expect("host")
            .as_str(),
        "sensor1"
    );
    assert_eq!(g.read_ready().expect("rdy").get_str("UseGMT"), Some("N"));
    let manifests = g.manifests().expect("manifests");
    assert_eq!(manifests.len(), 1);
    let m = manifests[0].as_ref().expect("valid manifest");
    assert_eq!((m.seq, m.bytes), (42, 9));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut g.open_out().expect("open"), &mut out).expect("read");
    assert_eq!(out, b"\x83\x10\x00\x20argus");
    assert_eq!(g.out().len(), Some(9));
    assert_eq!(g.rdy().kind(), PartKind::Rdy);

    // Swapped for a FIFO after the scan: refused at once, no blocking.
    fs::remove_file(w.path("out")).expect("rm");
    nix::unistd::mkfifo(&w.path("out"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
    assert!(matches!(
        g.open_out(),
        Err(Error::NotRegular {
            file_type: FileKind::Fifo,
            ..
        })
    ));
    // Swapped for a link to /etc/passwd: refused, never followed.
    swap_for_link(&w.path("out"));
    assert!(refused_as_link(g.open_out()));
    // Replaced by another regular file: not what the scan saw.
    fs::remove_file(w.path("out")).expect("rm");
    fs::write(w.path("out"), b"different and longer").expect("w");
    assert!(matches!(g.open_out(), Err(Error::Changed { .. })));
}

#[test]
fn an_env_opened_ahead_is_read_as_read_env_reads_it() {
    let (_base, root) = dropzone();
    let env = b"KidHostname=evil\nHostname=sensor1\n".to_vec();
    let w = Upload::new("client1", T1)
        .env(env.clone())
        .write(&root)
        .expect("w");
    let s = scan(&root, &["client1"]);
    let g = &s.complete[0];
    // Opened ahead, then the file is swapped: the reader gets what it opened.
    let opened = g.open_env().expect("open");
    assert_eq!(
        opened.file().metadata().expect("stat").len(),
        env.len() as u64
    );
    fs::remove_file(w.path("env")).expect("rm");
    fs::write(w.path("env"), b"Hostname=other\n").expect("w");
    let host = g
        .read_env_from(opened)
        .expect("read")
        .hostname()
        .expect("host");
    assert_eq!(host.as_str(), "sensor1");
    // Opened now, it is not the file the scan saw.
    assert!(matches!(g.read_env(), Err(Error::Changed { .. })));
    assert!(matches!(g.open_env(), Err(Error::Changed { .. })));

    // Swapped for a link: refused at the open, never followed.
    swap_for_link(&w.path("env"));
    assert!(refused_as_link(g.open_env()));
}

#[test]
fn hostile_env_records_never_yield_a_host() {
    let (_base, root) = dropzone();
    let long = format!("Hostname={}\n", "a".repeat(300));
    let cases: [&[u8]; 6] = [
        b"Hostname=../../etc/x\n",
        b"Hostname=a/b\n",
        long.as_bytes(),
        b"KidHostname=client1\n",
        b"Hostname=a\nHostname=b\n",
        b"Hostname=\xff\n",
    ];
    for (i, env) in cases.iter().enumerate() {
        Upload::new("client1", &format!("2003071512000{i}"))
            .env(env.to_vec())
            .write(&root)
            .expect("w");
    }
    let s = scan(&root, &["client1"]);
    assert_eq!(
        s.complete.len(),
        cases.len(),
        "the files are fine, the host is not"
    );
    let errors: Vec<_> = s
        .complete
        .iter()
        .map(|g| g.read_env().expect("read").hostname().expect_err("hostile"))
        .collect();
    assert!(matches!(errors[0], EnvError::Invalid { .. }));
    assert!(matches!(errors[1], EnvError::Invalid { .. }));
    assert!(matches!(errors[2], EnvError::Invalid { .. }));
    assert_eq!(errors[3], EnvError::Missing);
    assert_eq!(errors[4], EnvError::Duplicate { count: 2 });
    assert!(matches!(errors[5], EnvError::Invalid { .. }));

    // A huge `.env` is refused, not read into memory.
    Upload::new("client1", "20030715130000")
        .env(vec![b'x'; 2 * 1024 * 1024])
        .write(&root)
        .expect("w");
    let s = scan(&root, &["client1"]);
    let big = s.complete.last().expect("group");
    assert!(matches!(big.read_env(), Err(Error::TooLarge { .. })));
    // Opened ahead, it is refused by the read just the same.
    let opened = big.open_env().expect("open");
    assert!(matches!(
        big.read_env_from(opened),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn quarantining_a_symlink_part_moves_the_link_not_its_target() {
    let (base, root) = dropzone();
    let passwd_before = fs::read("/etc/passwd").expect("passwd");
    Upload::new("client1", T1)
        .without(PartKind::Out)
        .write(&root)
        .expect("w");
    let link = root.join("client1_20030715120001_harvest_argus.out");
    std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
    let s = scan(&root, &["client1"]);
    let quarantine = base.path().join("quarantine");
    let q = quarantine_group(&s.invalid[0], &quarantine, &s.invalid[0].reason_text())
        .expect("quarantine");
    let moved_link = q.path.join("client1_20030715120001_harvest_argus.out");
    assert!(
        fs::symlink_metadata(&moved_link)
            .expect("moved")
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read("/etc/passwd").expect("passwd"), passwd_before);
    let reason = fs::read_to_string(q.path.join("reason")).expect("reason");
    assert!(
        reason.contains("Reason=.out is a symbolic link"),
        "{reason}"
    );
    assert!(fs::read_dir(&root).expect("read").next().is_none());
}

#[test]
fn a_missing_dropzone_is_an_error() {
    let (_base, root) = dropzone();
    let selection = Selection::new(["client1"], "harvest_argus").expect("selection");
    let err = Dropzone::new(root.join("missing"))
        .scan(&selection)
        .expect_err("missing");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    fs::write(root.join("file"), b"").expect("w");
    assert!(Dropzone::new(root.join("file")).scan(&selection).is_err());
}

#[test]
fn a_single_group_can_be_scanned_alone() {
    let (_base, root) = dropzone();
    Upload::new("client1", T1).pid(1).write(&root).expect("w");
    let w = Upload::new("client1", T1)
        .in_subdir("client1")
        .write(&root)
        .expect("w");
    Upload::new("client1", "20030715120002")
        .in_subdir("client1")
        .without(PartKind::Err)
        .write(&root)
        .expect("w");
    Upload::new("client2", T1)
        .in_subdir("client1")
        .write(&root)
        .expect("w");
    let selection = Selection::new(["client1"], "harvest_argus").expect("selection");
    let zone = Dropzone::new(&root);
    let sub = root.join("client1");

    let one = zone.scan_group(&selection, &sub, &w.stem).expect("scan");
    assert_eq!(stems(&one), [w.stem.as_str()]);
    assert!(one.invalid.is_empty() && one.foreign.is_empty() && one.ignored.is_empty());
    assert_eq!(one.complete[0].dir(), sub);

    let bad = zone
        .scan_group(&selection, &sub, "client1_20030715120002_harvest_argus")
        .expect("scan");
    assert_eq!(
        bad.invalid[0].reasons(),
        [InvalidReason::Missing(PartKind::Err)]
    );
    let other = zone
        .scan_group(&selection, &sub, "client2_20030715120001_harvest_argus")
        .expect("scan");
    assert_eq!(other.foreign.len(), 1);
    let none = zone.scan_group(&selection, &sub, "nothing").expect("scan");
    assert!(none.complete.is_empty() && none.foreign.is_empty() && none.ignored.is_empty());

    assert!(matches!(
        zone.scan_group(&selection, Path::new("/etc"), "passwd"),
        Err(Error::OutsideDropzone { .. })
    ));
    assert!(matches!(
        zone.scan_group(&selection, &root.join("../.."), "x"),
        Err(Error::OutsideDropzone { .. })
    ));
    assert!(matches!(
        zone.with_max_depth(0).scan_group(&selection, &sub, &w.stem),
        Err(Error::OutsideDropzone { .. })
    ));
}

/// Per (client, reason): (complete, held) of the foreign uploads with a `.rdy`, as a full scan
/// reports them.
fn foreign_by_reporting(s: &Scan) -> BTreeMap<(String, ForeignReason), (u64, u64)> {
    let mut out = BTreeMap::new();
    for f in s
        .foreign
        .iter()
        .filter(|f| f.files().part(PartKind::Rdy).is_some())
    {
        let e: &mut (u64, u64) = out.entry((f.client().to_owned(), f.reason())).or_default();
        if f.is_complete() { e.0 += 1 } else { e.1 += 1 }
    }
    out
}

fn foreign_by_counting(s: &Scan) -> BTreeMap<(String, ForeignReason), (u64, u64)> {
    s.foreign_counted
        .iter()
        .map(|(k, c)| (k.clone(), (c.complete, c.held)))
        .collect()
}

#[test]
fn counted_foreign_uploads_are_judged_from_their_names_as_a_full_scan_judges_them() {
    let (_base, root) = dropzone();
    let sub = root.join("client1");
    fs::create_dir(&sub).expect("mkdir");
    for (dir, at) in [(&root, T1), (&root, "20030715130001"), (&sub, T1)] {
        Upload::new("client1", at)
            .job("other_job")
            .write(dir)
            .expect("other job");
    }
    Upload::new("client2", T1)
        .write(&root)
        .expect("other client");
    Upload::new("client2", "20030715130001")
        .keep_lock()
        .write(&root)
        .expect("other client, held");
    Upload::new("client2", T1)
        .job("other")
        .orphan()
        .write(&root)
        .expect("other job, no .rdy");
    // The consumer's own: one complete, one held, one invalid.
    let ours = Upload::new("client1", "20030715140001")
        .write(&root)
        .expect("ours");
    Upload::new("client1", "20030715150001")
        .keep_lock()
        .write(&sub)
        .expect("ours, held");
    Upload::new("client1", "20030715160001")
        .without(PartKind::Err)
        .write(&root)
        .expect("ours, invalid");
    let selection = Selection::new(["client1"], "harvest_argus").expect("selection");

    for now in [
        SystemTime::now(),
        SystemTime::now() + webjob_drop::scan::LOCK_STALE_AFTER + Duration::from_secs(1),
    ] {
        let full = Dropzone::new(&root)
            .with_now(now)
            .scan(&selection)
            .expect("full scan");
        let counted = Dropzone::new(&root)
            .with_now(now)
            .with_foreign_counted(true)
            .with_window(100)
            .scan(&selection)
            .expect("counted scan");
        assert!(counted.foreign.is_empty(), "counted, not reported");
        let by_counting = foreign_by_counting(&counted);
        assert_eq!(by_counting, foreign_by_reporting(&full));
        let stale = now > SystemTime::now() + Duration::from_secs(1);
        let (complete, held) = if stale { (2, 0) } else { (1, 1) };
        assert_eq!(
            by_counting,
            BTreeMap::from([
                (("client1".to_owned(), ForeignReason::OtherJob), (3, 0)),
                (
                    ("client2".to_owned(), ForeignReason::OtherClient),
                    (complete, held)
                ),
            ])
        );
        // The orphan without `.rdy` is reported by a full scan, not counted.
        assert_eq!(full.foreign_count(), 6);
        assert_eq!(counted.foreign_count(), 5);
        // The consumer's own uploads are judged alike.
        assert_eq!(stems(&counted), stems(&full));
        assert!(stems(&counted).contains(&ours.stem.as_str()));
        assert_eq!(invalid_reasons(&counted), invalid_reasons(&full));
        assert_eq!(counted.in_flight.len(), full.in_flight.len());
    }
}
