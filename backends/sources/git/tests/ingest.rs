//! The Git source against an in-memory sink that counts every call:
//! incremental ingests do the little work they should.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use plumb_core::Tree;
use plumb_core::source::{Source, SourceError};
use plumb_core::testing::MemorySink;
use plumb_source_git::GitSource;

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.org")
        .env("GIT_COMMITTER_NAME", "A")
        .env("GIT_COMMITTER_EMAIL", "a@example.org")
        .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run git");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"], None);
    git(dir, &["commit", "-q", "-m", message], None);
    git(dir, &["rev-parse", "HEAD"], None)
}

/// A repository of 3 directories × 20 files, then 10 commits each
/// changing one file.
fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    git(dir, &["-c", "init.defaultBranch=main", "init", "-q"], None);
    for d in 0..3 {
        for f in 0..20 {
            write(
                dir,
                &format!("d{d}/sub/f{f}.conf"),
                &format!("v = {d}.{f}\n"),
            );
        }
    }
    commit(dir, "initial");
    for i in 0..10 {
        write(
            dir,
            &format!("d{}/sub/f{i}.conf", i % 3),
            &format!("v = {i}\n"),
        );
        commit(dir, &format!("change {i}"));
    }
    tmp
}

#[test]
fn nothing_new_is_cheap() {
    let tmp = repo();
    let source = GitSource::new(tmp.path(), &[], None).unwrap();
    let sink = MemorySink::default();
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.new_snapshots.len(), 11);
    // 60 files plus 10 changed versions, each read once.
    assert_eq!(report.files_read, 70);
    let c = sink.counts();
    assert_eq!(c.put_blob, 70);
    // A first ingest does not ask the cache about objects it has not
    // converted yet: only the recorded refs are read.
    assert_eq!(c.cache_get, 1);
    assert_eq!(c.set_refs, 1);
    let refs = sink.refs();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, "refs/heads/main");
    assert_eq!(refs[0].snapshot, sink.log().last().unwrap().0);
    assert_eq!(refs[0].annotation, None);

    sink.reset_counts();
    let report = source.ingest(&sink).unwrap();
    assert!(report.new_snapshots.is_empty());
    assert_eq!(report.files_read, 0);
    {
        let c = sink.counts();
        // The one tip looked up by the walk and for its ref, the recorded
        // refs read back, and nothing else.
        assert_eq!(c.snapshot_for, 2);
        assert_eq!(c.cache_get, 1);
        assert_eq!(
            (c.put_blob, c.put_tree, c.cache_put, c.commit, c.set_refs),
            (0, 0, 0, 0, 0)
        );
    }
}

#[test]
fn one_new_commit_converts_only_what_changed() {
    let tmp = repo();
    let source = GitSource::new(tmp.path(), &[], None).unwrap();
    let sink = MemorySink::default();
    source.ingest(&sink).unwrap();

    write(tmp.path(), "d1/sub/f7.conf", "v = new\n");
    commit(tmp.path(), "one more");
    sink.reset_counts();
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.new_snapshots.len(), 1);
    assert_eq!(report.files_read, 1);
    {
        let c = sink.counts();
        assert_eq!(c.commit, 1);
        assert_eq!(c.put_blob, 1);
        // The root, d1 and d1/sub are new trees.
        assert_eq!(c.put_tree, 3);
        // Three trees, one blob, and the moved ref.
        assert_eq!(c.cache_put, 4 + 1);
        assert_eq!(c.set_refs, 1);
        // The walk: the tip, then its parent (known); recording: the
        // parent; then the ref.
        assert_eq!(c.snapshot_for, 4);
        // One look-up per entry of the changed trees (3 in the root, 1 in
        // d1, 20 in d1/sub), the root tree itself, and the refs.
        assert_eq!(c.cache_get, 3 + 1 + 20 + 1 + 1);
    }

    // Content seen in an earlier ingest is not read again.
    write(tmp.path(), "d1/sub/f7.conf", "v = 1.7\n");
    commit(tmp.path(), "revert");
    sink.reset_counts();
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.files_read, 0);
    assert_eq!(sink.counts().put_blob, 0);
}

#[test]
fn a_failing_sink_stops_the_ingest_with_its_own_error() {
    // Writes overlap reading: the sink's error must still be the one
    // reported, with every commit before it kept and nothing after it.
    let tmp = repo();
    let source = GitSource::new(tmp.path(), &[], None).unwrap();
    let sink = MemorySink::default();
    sink.fail_at_commit(Some(5));
    let err = source.ingest(&sink).unwrap_err();
    assert!(
        matches!(&err, SourceError::Sink(e) if e.to_string() == "no space left on device"),
        "{err}"
    );
    assert_eq!(sink.log().len(), 4);
    assert_eq!(sink.counts().set_refs, 0, "no refs after a failure");

    // The next ingest continues where it stopped.
    sink.fail_at_commit(None);
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.new_snapshots.len(), 7);
    assert_eq!(sink.log().len(), 11);
}

#[test]
fn every_commit_is_a_snapshot_when_scoped() {
    let tmp = repo();
    let source = GitSource::new(tmp.path(), &[], Some("d2/sub")).unwrap();
    let sink = MemorySink::default();
    source.ingest(&sink).unwrap();
    let log = sink.log();
    assert_eq!(log.len(), 11);
    assert_eq!(sink.tree(log[0].1.tree).entries().len(), 20);
    // Commits not touching d2/sub share its tree.
    let distinct: std::collections::HashSet<_> = log.iter().map(|(_, x)| x.tree).collect();
    assert_eq!(distinct.len(), 1 + 3);
    let missing = GitSource::new(tmp.path(), &[], Some("nope/x")).unwrap();
    let sink = MemorySink::default();
    missing.ingest(&sink).unwrap();
    assert!(
        sink.log()
            .iter()
            .all(|(_, x)| x.tree == Tree::default().id())
    );

    let err = GitSource::new(tmp.path(), &[], Some("../x")).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
}

#[test]
fn names_plumb_cannot_store_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    git(dir, &["init", "-q"], None);
    let blob = git(dir, &["hash-object", "-w", "--stdin"], Some(b"x\n"));
    // A tree entry named `a/b`, which only a hand-made tree can hold.
    let mut tree = b"100644 a/b\0".to_vec();
    tree.extend((0..20).map(|i| u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).unwrap()));
    let tree_id = git(
        dir,
        &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        Some(&tree),
    );
    let c = git(dir, &["commit-tree", &tree_id, "-m", "bad"], None);
    git(dir, &["update-ref", "HEAD", &c], None);
    let source = GitSource::new(dir, &[], None).unwrap();
    let err = source.ingest(&MemorySink::default()).unwrap_err();
    let SourceError::Read { source, .. } = &err else {
        panic!("{err}");
    };
    let reason = source.to_string();
    assert!(reason.contains(&format!("commit {c}")), "{reason}");
    assert!(reason.contains(&format!("tree {tree_id}")), "{reason}");
    assert!(reason.contains("\"a/b\""), "{reason}");
}

#[test]
fn not_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let err = GitSource::new(tmp.path(), &[], None).unwrap_err();
    assert!(err.to_string().contains("not a Git repository"), "{err}");
    let err = GitSource::new(tmp.path().join("missing"), &[], None).unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    let err = GitSource::new("https://example.org/x.git", &[], None).unwrap_err();
    assert!(err.to_string().contains("RemoteGitSource"), "{err}");
}
