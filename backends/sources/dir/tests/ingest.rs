//! Behaviour of `DirSource::ingest` against an in-memory sink.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use plumb_core::source::{IngestReport, Source, SourceError};
use plumb_core::testing::{Flat, MemorySink};
use plumb_core::{EntryValue, Person, Snapshot, TreeId};
use plumb_source_dir::{DirSource, STAT_CACHE_KEY};
use plumb_testutils::fs::{chmod, write};

fn ingest(root: &Path, sink: &MemorySink) -> IngestReport {
    DirSource::new(root, None).unwrap().ingest(sink).unwrap()
}

fn latest_tree(sink: &MemorySink) -> TreeId {
    sink.log().last().unwrap().1.tree
}

/// Waits out the stat cache's racy window, so files written so far can be
/// cached.
fn wait_out_racy_window() {
    std::thread::sleep(std::time::Duration::from_millis(2500));
}

/// Paths as text, for readable assertions.
fn paths(flat: &Flat) -> Vec<String> {
    flat.keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

fn kinds(sink: &MemorySink) -> Vec<(String, &'static str)> {
    sink.flatten(latest_tree(sink))
        .into_iter()
        .map(|(k, (kind, _))| (String::from_utf8_lossy(&k).into_owned(), kind))
        .collect()
}

#[test]
fn basic_tree_shape_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.conf", b"port = 8080\n");
    write(root, "sub/b.conf", b"b\n");
    write(root, "sub/deep/c.yaml", b"");
    write(root, ".hidden", b"h");
    std::fs::create_dir_all(root.join("empty/nested-empty")).unwrap();

    let sink = MemorySink::new();
    let report = ingest(root, &sink);
    assert_eq!(report.new_snapshots.len(), 1);
    assert_eq!(report.files_read, 4);
    assert_eq!(report.bytes_read, 12 + 2 + 1);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(sink.counts().progress >= 1);

    let log = sink.log();
    assert_eq!(log.len(), 1);
    let (id, snap) = &log[0];
    assert_eq!(report.new_snapshots[0], *id);
    assert_eq!(snap.revision, "dir:1");
    assert!(snap.parents.is_empty());
    assert_eq!(snap.author, snap.committer);
    assert_eq!(snap.author.tz_minutes, 0);
    assert!(snap.author.time > 1_600_000_000);
    assert!(snap.author.email.contains(&b'@'));
    let canonical = std::fs::canonicalize(root).unwrap();
    assert_eq!(
        snap.extra_values("dir.root").collect::<Vec<_>>(),
        vec![canonical.as_os_str().as_bytes()]
    );
    assert_eq!(snap.extra_values("dir.path").count(), 0);
    assert!(snap.message.starts_with(b"snapshot of /"));

    let flat = sink.flatten(snap.tree);
    assert_eq!(
        paths(&flat),
        [
            ".hidden",
            "a.conf",
            "empty",
            "empty/nested-empty",
            "sub",
            "sub/b.conf",
            "sub/deep",
            "sub/deep/c.yaml"
        ]
    );
    assert_eq!(
        flat[&b"a.conf".to_vec()],
        ("file", b"port = 8080\n".to_vec())
    );
    assert_eq!(flat[&b"sub/b.conf".to_vec()], ("file", b"b\n".to_vec()));
    assert_eq!(flat[&b"sub/deep/c.yaml".to_vec()], ("file", Vec::new()));
    assert_eq!(flat[&b"empty/nested-empty".to_vec()].0, "tree");
}

#[test]
fn executable_if_any_x_bit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (name, mode) in [
        ("plain", 0o644),
        ("owner-x", 0o744),
        ("group-x", 0o654),
        ("other-x", 0o645),
        ("all-x", 0o755),
    ] {
        write(root, name, name.as_bytes());
        chmod(&root.join(name), mode);
    }
    let sink = MemorySink::new();
    ingest(root, &sink);
    assert_eq!(
        kinds(&sink),
        [
            ("all-x".to_owned(), "exec"),
            ("group-x".to_owned(), "exec"),
            ("other-x".to_owned(), "exec"),
            ("owner-x".to_owned(), "exec"),
            ("plain".to_owned(), "file"),
        ]
    );
}

#[test]
fn symlinks_are_stored_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"TOP SECRET CONTENT").unwrap();
    std::fs::create_dir(outside.path().join("d")).unwrap();
    std::fs::write(outside.path().join("d/inner"), b"INNER CONTENT").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "real.conf", b"real");
    let secret = outside.path().join("secret");
    let outdir = outside.path().join("d");
    std::os::unix::fs::symlink(&secret, root.join("to-file")).unwrap();
    std::os::unix::fs::symlink(&outdir, root.join("to-dir")).unwrap();
    std::os::unix::fs::symlink("real.conf", root.join("relative")).unwrap();
    std::os::unix::fs::symlink("../nowhere/at/all", root.join("dangling")).unwrap();

    let sink = MemorySink::new();
    let report = ingest(root, &sink);
    let flat = sink.flatten(latest_tree(&sink));
    assert_eq!(
        flat[&b"to-file".to_vec()],
        ("link", secret.as_os_str().as_bytes().to_vec())
    );
    assert_eq!(
        flat[&b"to-dir".to_vec()],
        ("link", outdir.as_os_str().as_bytes().to_vec())
    );
    assert_eq!(flat[&b"relative".to_vec()], ("link", b"real.conf".to_vec()));
    assert_eq!(
        flat[&b"dangling".to_vec()],
        ("link", b"../nowhere/at/all".to_vec())
    );
    assert!(!flat.contains_key(b"to-dir/inner".as_slice()));
    let blobs = sink.all_blob_contents();
    assert!(!blobs.contains(&b"TOP SECRET CONTENT".to_vec()));
    assert!(!blobs.contains(&b"INNER CONTENT".to_vec()));
    assert_eq!(report.files_read, 5);
}

#[test]
fn non_utf8_names_are_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let name = b"caf\xe9-\xff.conf";
    std::fs::write(root.join(OsStr::from_bytes(name)), b"latin-1").unwrap();
    std::fs::create_dir(root.join(OsStr::from_bytes(b"d\x80ir"))).unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"d\x80ir/x")), b"x").unwrap();

    let sink = MemorySink::new();
    ingest(root, &sink);
    let tree = sink.tree(latest_tree(&sink));
    let entry = tree.get(name).expect("entry under its raw name");
    assert_eq!(sink.blob(entry.value.blob().unwrap()), b"latin-1");
    let flat = sink.flatten(latest_tree(&sink));
    assert!(flat.contains_key(b"d\x80ir/x".as_slice()));
}

#[test]
fn gitignore_and_plumbignore_are_honoured_and_nested() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", b"*.log\nbuild/\n");
    write(root, ".plumbignore", b"*.tmp\n/top-only\n");
    write(root, "app.log", b"ignored");
    write(root, "x.tmp", b"ignored");
    write(root, "top-only", b"ignored");
    write(root, "build/out.bin", b"ignored");
    write(root, "keep.conf", b"kept");
    write(root, "sub/top-only", b"kept: anchored pattern is root-only");
    write(root, "sub/.gitignore", b"!important.log\nlocal.*\n");
    write(root, "sub/important.log", b"re-included");
    write(root, "sub/other.log", b"ignored");
    write(root, "sub/local.conf", b"ignored");
    write(root, "sub/deeper/secret", b"ignored");
    write(root, "sub/deeper/fine", b"kept");
    write(
        root,
        "sub/deeper/y.tmp",
        b"ignored by the root .plumbignore",
    );
    // A .plumbignore rule wins over a .gitignore rule.
    write(root, "sub/deeper/forced.log", b"kept");
    write(root, "sub/deeper/.plumbignore", b"secret\n!forced.log\n");

    let sink = MemorySink::new();
    let report = ingest(root, &sink);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        paths(&sink.flatten(latest_tree(&sink))),
        [
            ".gitignore",
            ".plumbignore",
            "keep.conf",
            "sub",
            "sub/.gitignore",
            "sub/deeper",
            "sub/deeper/.plumbignore",
            "sub/deeper/fine",
            "sub/deeper/forced.log",
            "sub/important.log",
            "sub/top-only",
        ]
    );
}

#[test]
fn ignore_files_outside_the_root_and_dot_ignore_do_not_apply() {
    let outer = tempfile::tempdir().unwrap();
    write(outer.path(), ".gitignore", b"*.conf\n");
    write(outer.path(), ".plumbignore", b"*.conf\n");
    let root = outer.path().join("root");
    write(&root, "a.conf", b"a");
    write(&root, ".ignore", b"*.conf\n");
    let sink = MemorySink::new();
    ingest(&root, &sink);
    assert_eq!(
        paths(&sink.flatten(latest_tree(&sink))),
        [".ignore", "a.conf"]
    );
}

#[test]
fn malformed_ignore_rule_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", b"a{b\n*.log\n");
    write(root, "x.log", b"ignored");
    write(root, "y.conf", b"kept");
    let sink = MemorySink::new();
    let report = ingest(root, &sink);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("a{b"), "{:?}", report.warnings);
    assert_eq!(
        paths(&sink.flatten(latest_tree(&sink))),
        [".gitignore", "y.conf"]
    );
}

#[test]
fn vcs_and_plumb_directories_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".git/config", b"[core]");
    write(root, ".git/objects/ab/cdef", b"obj");
    write(root, ".hg/store/x", b"x");
    write(root, ".plumb/db", b"db");
    write(root, "sub/.git/HEAD", b"ref");
    write(root, "sub/.hg/x", b"x");
    write(root, "sub/deep/.plumb/x", b"x");
    write(root, "worktree/.git", b"gitdir: /elsewhere\n");
    write(root, "sub/keep", b"k");
    write(root, ".github/workflow.yaml", b"kept");
    write(root, ".gitattributes", b"kept");

    let sink = MemorySink::new();
    ingest(root, &sink);
    assert_eq!(
        paths(&sink.flatten(latest_tree(&sink))),
        [
            ".gitattributes",
            ".github",
            ".github/workflow.yaml",
            "sub",
            "sub/deep",
            "sub/keep",
            "worktree",
        ]
    );
}

#[test]
fn fifo_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.conf", b"a");
    std::fs::create_dir(root.join("sub")).unwrap();
    let fifo = root.join("sub/pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());

    let sink = MemorySink::new();
    let report = ingest(root, &sink);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("FIFO"), "{:?}", report.warnings);
    assert!(
        report.warnings[0].ends_with("/sub/pipe"),
        "{:?}",
        report.warnings
    );
    assert_eq!(paths(&sink.flatten(latest_tree(&sink))), ["a.conf", "sub"]);
}

#[test]
fn unreadable_file_fails_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "ok.conf", b"ok");
    write(root, "locked.conf", b"locked");
    chmod(&root.join("locked.conf"), 0o000);
    if std::fs::File::open(root.join("locked.conf")).is_ok() {
        // Running as root (or with CAP_DAC_OVERRIDE): permissions don't bind.
        eprintln!("skipped: the file is still readable by this user");
        return;
    }
    let sink = MemorySink::new();
    let err = DirSource::new(root, None)
        .unwrap()
        .ingest(&sink)
        .unwrap_err();
    match err {
        SourceError::Io { path, source } => {
            assert!(path.ends_with("locked.conf"), "{}", path.display());
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(sink.log().is_empty());
}

#[test]
fn unreadable_directory_or_ignore_file_fails_naming_the_path() {
    for (locked, mode) in [("conf.d", 0o000), ("conf.d/.gitignore", 0o000)] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "conf.d/.gitignore", b"*.bak\n");
        write(root, "conf.d/x.conf", b"x");
        chmod(&root.join(locked), mode);
        if std::fs::read_dir(root.join(locked)).is_ok() || std::fs::read(root.join(locked)).is_ok()
        {
            eprintln!("skipped: {locked} is still readable by this user");
            chmod(&root.join(locked), 0o755);
            continue;
        }
        let sink = MemorySink::new();
        let err = DirSource::new(root, None)
            .unwrap()
            .ingest(&sink)
            .unwrap_err();
        chmod(&root.join(locked), 0o755);
        match err {
            SourceError::Io { path, source } => {
                assert!(path.ends_with(locked), "{}", path.display());
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(sink.log().is_empty());
    }
}

#[test]
fn file_vanishing_mid_walk_fails_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write(&root, "stays.conf", b"a");
    write(&root, "goes/away.conf", b"b");
    let doomed = root.join("goes/away.conf");
    // Runs after the walk listed the file and before any file is read.
    let sink = MemorySink::with_hook(move || std::fs::remove_file(&doomed).unwrap());
    let err = DirSource::new(&root, None)
        .unwrap()
        .ingest(&sink)
        .unwrap_err();
    assert!(err.to_string().contains("goes/away.conf"), "{err}");
    match err {
        SourceError::Io { path, source } => {
            assert!(path.ends_with("goes/away.conf"), "{}", path.display());
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(sink.log().is_empty());
}

#[test]
fn file_turning_into_a_fifo_mid_walk_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write(&root, "x.conf", b"a");
    let target = root.join("x.conf");
    let sink = MemorySink::with_hook(move || {
        std::fs::remove_file(&target).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(&target)
                .status()
                .unwrap()
                .success()
        );
    });
    let err = DirSource::new(&root, None)
        .unwrap()
        .ingest(&sink)
        .unwrap_err();
    assert!(
        matches!(&err, SourceError::Io { path, .. } if path.ends_with("x.conf")),
        "{err}"
    );
    assert!(err.to_string().contains("changed kind"), "{err}");
    assert!(sink.log().is_empty());
}

#[test]
fn unchanged_directory_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.conf", b"a");
    let sink = MemorySink::new();
    assert_eq!(ingest(root, &sink).new_snapshots.len(), 1);
    let again = ingest(root, &sink);
    assert!(again.new_snapshots.is_empty());
    assert_eq!(sink.log().len(), 1);
    // Touching a file without changing its bytes changes nothing either.
    write(root, "a.conf", b"a");
    assert!(ingest(root, &sink).new_snapshots.is_empty());
    assert_eq!(sink.log().len(), 1);
}

#[test]
fn a_change_commits_a_child_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.conf", b"one");
    write(root, "b.conf", b"b");
    let sink = MemorySink::new();
    let first = ingest(root, &sink).new_snapshots[0];
    write(root, "a.conf", b"two");
    let second = ingest(root, &sink);
    assert_eq!(second.new_snapshots.len(), 1);
    let log = sink.log();
    assert_eq!(log.len(), 2);
    let (id, snap) = &log[1];
    assert_eq!(*id, second.new_snapshots[0]);
    assert_eq!(snap.parents, vec![first]);
    assert_eq!(snap.revision, "dir:2");
    let flat = sink.flatten(snap.tree);
    assert_eq!(flat[&b"a.conf".to_vec()].1, b"two");

    // Removing a file and making one executable are changes too.
    std::fs::remove_file(root.join("b.conf")).unwrap();
    chmod(&root.join("a.conf"), 0o755);
    ingest(root, &sink);
    let log = sink.log();
    assert_eq!(log[2].1.revision, "dir:3");
    assert_eq!(log[2].1.parents, vec![log[1].0]);
    assert_eq!(kinds(&sink), [("a.conf".to_owned(), "exec")]);
}

#[test]
fn stat_cache_hit_avoids_rereading() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..300 {
        write(
            root,
            &format!("d{}/f{i}.conf", i % 7),
            format!("value {i}\n").as_bytes(),
        );
    }
    std::os::unix::fs::symlink("d0/f0.conf", root.join("link")).unwrap();
    wait_out_racy_window();

    let sink = MemorySink::new();
    let first = ingest(root, &sink);
    assert_eq!(first.files_read, 301);
    assert!(sink.counts().progress >= 2);
    let tree = latest_tree(&sink);
    assert!(sink.cache_value(STAT_CACHE_KEY).is_some());

    let puts = sink.counts().put_blob;
    let second = ingest(root, &sink);
    assert_eq!(second.files_read, 0);
    assert_eq!(second.bytes_read, 0);
    assert!(second.new_snapshots.is_empty());
    assert_eq!(sink.counts().put_blob, puts);

    // Same size, new bytes: the stat differs, so the file is read again.
    write(root, "d3/f3.conf", b"VALUE 3\n");
    let third = ingest(root, &sink);
    assert_eq!(third.files_read, 1);
    assert_eq!(third.new_snapshots.len(), 1);
    let flat = sink.flatten(latest_tree(&sink));
    assert_ne!(latest_tree(&sink), tree);
    assert_eq!(flat[&b"d3/f3.conf".to_vec()].1, b"VALUE 3\n");
    assert_eq!(flat[&b"link".to_vec()], ("link", b"d0/f0.conf".to_vec()));

    // The freshly written file is within the racy window: not trusted yet.
    let fourth = ingest(root, &sink);
    assert_eq!(fourth.files_read, 1);
    assert!(fourth.new_snapshots.is_empty());
}

#[test]
fn corrupt_stat_cache_is_ignored_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.conf", b"a");
    write(root, "b/c.conf", b"c");
    wait_out_racy_window();

    for garbage in [
        &b"\x01not a cache at all"[..],
        b"",
        b"\xff\xff\xff\xff\xff\xff",
    ] {
        let sink = MemorySink::new();
        use plumb_core::source::IngestSink;
        sink.cache_put(STAT_CACHE_KEY, garbage).unwrap();
        let first = ingest(root, &sink);
        assert_eq!(first.files_read, 2);
        assert!(first.warnings.is_empty());
        assert_ne!(sink.cache_value(STAT_CACHE_KEY).as_deref(), Some(garbage));
        assert_eq!(ingest(root, &sink).files_read, 0);
    }
}

#[test]
fn subdir_scopes_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", b"*.tmp\n");
    write(root, "top.conf", b"not in scope");
    write(root, "a/sibling.conf", b"not in scope");
    write(root, "a/b/c.conf", b"c");
    write(root, "a/b/x.tmp", b"ignored by an ancestor's .gitignore");
    write(root, "a/b/d/e.conf", b"e");
    write(root, "a/bb/f.conf", b"not in scope");

    let sink = MemorySink::new();
    let source = DirSource::new(root, Some(Path::new("./a/b/"))).unwrap();
    assert_eq!(source.subdir(), Some(Path::new("a/b")));
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.files_read, 2);
    let snap = &sink.log()[0].1;
    assert_eq!(paths(&sink.flatten(snap.tree)), ["c.conf", "d", "d/e.conf"]);
    assert_eq!(snap.extra_values("dir.path").collect::<Vec<_>>(), [b"a/b"]);
    assert!(snap.message.ends_with(b"/a/b"));

    // `.` and an empty path mean the root itself.
    for whole in [".", ""] {
        let s = DirSource::new(root, Some(Path::new(whole))).unwrap();
        assert_eq!(s.subdir(), None);
    }
}

#[test]
fn subdir_must_stay_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write(&root, "a/x.conf", b"x");
    write(&root, "file.conf", b"f");
    write(&root, ".git/config", b"");
    std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();

    for bad in [
        "..",
        "../root/a",
        "a/../..",
        "a/..",
        "/tmp",
        "missing",
        "file.conf",
        ".git",
        "a/.hg",
        "link",
        "up/root",
    ] {
        match DirSource::new(&root, Some(Path::new(bad))) {
            Err(SourceError::Invalid { .. }) => {}
            other => panic!("{bad:?} accepted or wrongly rejected: {other:?}"),
        }
    }
}

#[test]
fn subdir_excluded_by_ignore_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", b"build/\n");
    write(root, "build/out.conf", b"x");
    let source = DirSource::new(root, Some(Path::new("build"))).unwrap();
    let sink = MemorySink::new();
    let err = source.ingest(&sink).unwrap_err();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err}");
    assert!(sink.log().is_empty());
}

#[test]
fn root_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "file", b"f");
    for bad in [dir.path().join("missing"), dir.path().join("file")] {
        let err = DirSource::new(&bad, None).unwrap_err();
        assert!(
            matches!(&err, SourceError::Invalid { location, .. } if location.contains(&*bad.to_string_lossy())),
            "{err}"
        );
    }
    // A link to a directory is resolved once.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let source = DirSource::new(&link, None).unwrap();
    assert_eq!(source.root(), std::fs::canonicalize(dir.path()).unwrap());
}

#[test]
fn foreign_latest_revision_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", b"a");
    let sink = MemorySink::new();
    let person = Person::default();
    sink.seed(Snapshot {
        revision: "git:sha1:0000000000000000000000000000000000000000".to_owned(),
        author: person.clone(),
        committer: person,
        ..Snapshot::default()
    });
    let err = DirSource::new(dir.path(), None)
        .unwrap()
        .ingest(&sink)
        .unwrap_err();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err}");
    assert_eq!(sink.log().len(), 1);
}

#[test]
fn empty_root_is_an_empty_tree() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::new();
    let report = ingest(dir.path(), &sink);
    assert_eq!(report.new_snapshots.len(), 1);
    assert!(sink.tree(latest_tree(&sink)).is_empty());
    assert!(ingest(dir.path(), &sink).new_snapshots.is_empty());
}

#[test]
fn entry_values_match_blob_ids() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x", b"content");
    let sink = MemorySink::new();
    ingest(dir.path(), &sink);
    let tree = sink.tree(latest_tree(&sink));
    assert_eq!(
        tree.get(b"x").unwrap().value,
        EntryValue::File(plumb_core::Blob::id_of(b"content"))
    );
}
