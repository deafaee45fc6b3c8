//! Unit tests of `publish`.

use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn publish_never_replaces_and_cleans_up_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("taken"), b"original").expect("write");
    let publisher = Publisher::open(dir.path()).expect("open");

    // Caught early at stage time.
    assert!(matches!(
        publisher.stage("taken"),
        Err(Error::Exists { .. })
    ));

    // Caught atomically at rename time: the name appears between stage and publish.
    let mut staged = publisher.stage("late").expect("stage");
    staged.write_all(b"new").expect("write");
    fs::write(dir.path().join("late"), b"someone else").expect("write");
    let err = publisher.publish(staged).expect_err("must not replace");
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert_eq!(
        fs::read(dir.path().join("late")).expect("read"),
        b"someone else"
    );
    assert_eq!(
        fs::read(dir.path().join("taken")).expect("read"),
        b"original"
    );
    assert_eq!(names(dir.path()), ["late", "taken"], "no temp file left");
}

#[test]
fn an_optimistic_stage_finds_a_taken_name_at_the_rename_and_a_kept_temp_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("taken"), b"original").expect("write");
    let publisher = Publisher::open(dir.path()).expect("open");

    // Not looked at when staged: the rename refuses, and the temp file is removed.
    let mut staged = publisher.stage_optimistic("taken").expect("stage");
    staged.write_all(b"new").expect("write");
    let err = publisher.publish(staged).expect_err("must not replace");
    assert!(matches!(err, Error::Exists { .. }), "{err}");
    assert_eq!(names(dir.path()), ["taken"]);

    // Kept: the refused file stays under its temporary name, whole, for its caller.
    let mut batch = publisher.batch();
    for name in ["taken", "free"] {
        let mut staged = publisher.stage_optimistic(name).expect("stage");
        staged.write_all(name.as_bytes()).expect("write");
        staged.keep_on_drop().expect("keep");
        let temp = staged.temp_path().to_path_buf();
        staged.keep_on_drop().expect("kept already");
        assert_eq!(staged.temp_path(), temp, "the same name, kept");
        batch.add(staged);
    }
    let report = batch.commit().expect("commit");
    assert_eq!(report.published, [dir.path().join("free")]);
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(report.failed[0].1, Error::Exists { .. }));
    let left: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| is_temp_name(OsStr::new(n)))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(fs::read(dir.path().join(&left[0])).expect("read"), b"taken");
    assert_eq!(
        fs::read(dir.path().join("taken")).expect("read"),
        b"original"
    );
    assert_eq!(fs::read(dir.path().join("free")).expect("read"), b"free");
}

#[test]
fn dropped_staged_file_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let publisher = Publisher::open(dir.path()).expect("open");
    let mut staged = publisher.stage("x.gz").expect("stage");
    staged.write_all(b"partial").expect("write");
    assert!(is_temp_name(staged.temp_path().file_name().expect("name")));
    drop(staged);
    assert!(names(dir.path()).is_empty());
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let publisher = Publisher::open(dir.path()).expect("open");
    let long = "a".repeat(256);
    let temp_like = format!("{TEMP_PREFIX}x");
    for bad in [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        long.as_str(),
        temp_like.as_str(),
    ] {
        assert!(
            matches!(publisher.stage(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(names(dir.path()).is_empty());
}

#[test]
fn batch_publishes_all_and_reports_conflicts() {
    for sync in [SyncMode::EachFile, SyncMode::FileSystem, SyncMode::Never] {
        let dir = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher::open(dir.path()).expect("open").with_sync(sync);
        let mut batch = publisher.batch();
        for i in 0..5 {
            let mut staged = publisher.stage(format!("f{i}")).expect("stage");
            write!(staged, "content {i}").expect("write");
            batch.add(staged);
        }
        fs::write(dir.path().join("f3"), b"raced").expect("write");
        assert_eq!(batch.len(), 5);
        let report = batch.commit().expect("commit");
        assert_eq!(report.published.len(), 4, "{sync:?}");
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0].0.ends_with("f3"));
        assert_eq!(fs::read(dir.path().join("f3")).expect("read"), b"raced");
        assert_eq!(fs::read(dir.path().join("f4")).expect("read"), b"content 4");
        assert_eq!(names(dir.path()), ["f0", "f1", "f2", "f3", "f4"]);
    }
}

#[test]
fn leftover_temps_are_cleaned_by_age_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let publisher = Publisher::open(dir.path()).expect("open");
    let mut staged = publisher.stage("crashed").expect("stage");
    // Simulate a crash: the process dies, the temp file stays.
    staged.keep_on_drop().expect("keep");
    let leftover = staged.temp_path().to_path_buf();
    drop(staged);
    fs::write(dir.path().join("keep.argus"), b"x").expect("write");
    fs::write(dir.path().join(".hidden"), b"x").expect("write");
    fs::create_dir(dir.path().join(format!("{TEMP_PREFIX}dir"))).expect("mkdir");

    let now = SystemTime::now();
    let young = clean_temp_files(dir.path(), Duration::from_secs(3600), now).expect("clean");
    assert!(young.is_empty(), "too young to be a leftover");
    let removed = clean_temp_files(dir.path(), Duration::ZERO, now).expect("clean");
    assert_eq!(removed, [leftover]);
    assert_eq!(
        names(dir.path()),
        [".argus-tmp.dir", ".hidden", "keep.argus"]
    );
}

#[test]
fn moves_never_replace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("sub/b");
    fs::write(&a, b"a").expect("write");
    create_dir_all_durably(&dir.path().join("sub")).expect("mkdir");
    fs::write(&b, b"b").expect("write");
    assert!(matches!(move_durably(&a, &b), Err(Error::Exists { .. })));
    assert_eq!(fs::read(&b).expect("read"), b"b");
    fs::remove_file(&b).expect("rm");
    move_durably(&a, &b).expect("move");
    assert_eq!(fs::read(&b).expect("read"), b"a");
    assert!(!a.exists());
}

#[test]
fn a_state_file_is_replaced_whole_and_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state");
    replace_durably(&path, b"one").expect("create");
    replace_durably(&path, b"two, longer").expect("replace");
    assert_eq!(fs::read(&path).expect("read"), b"two, longer");
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let names: Vec<_> = fs::read_dir(dir.path()).expect("dir").collect();
    assert_eq!(names.len(), 1, "no temporary file left");
    let missing = dir.path().join("no/such/dir/state");
    assert!(replace_durably(&missing, b"x").is_err());
}
