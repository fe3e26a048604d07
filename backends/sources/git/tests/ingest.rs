//! The Git source against an in-memory sink that counts every call:
//! incremental ingests do the little work they should.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;

use plumb_core::Tree;
use plumb_core::source::{Source, SourceError};
use plumb_core::testing::MemorySink;
use plumb_source_git::GitSource;
use plumb_testutils::fixture;
use plumb_testutils::git::GitRepo;

/// A copy of [`build_history`]'s repository of its own, and the temporary
/// directory holding it.
fn history() -> (tempfile::TempDir, GitRepo) {
    let (_, built) = fixture::cached("git-history", build_history);
    let tmp = tempfile::tempdir().unwrap();
    let repo = built.copy_to(tmp.path(), "repo");
    (tmp, repo)
}

/// A repository of 3 directories × 20 files, then 10 commits each
/// changing one file, at `dir/repo`.
fn build_history(dir: &Path) -> GitRepo {
    let repo = GitRepo::init(dir, "repo", &[]);
    for d in 0..3 {
        for f in 0..20 {
            repo.write(
                format!("d{d}/sub/f{f}.conf"),
                format!("v = {d}.{f}\n").as_bytes(),
            );
        }
    }
    repo.commit("initial");
    for i in 0..10 {
        repo.write(
            format!("d{}/sub/f{i}.conf", i % 3),
            format!("v = {i}\n").as_bytes(),
        );
        repo.commit(&format!("change {i}"));
    }
    repo
}

#[test]
fn nothing_new_is_cheap() {
    let (_tmp, repo) = history();
    let source = GitSource::new(&repo.dir, &[], None).unwrap();
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
    let (_tmp, repo) = history();
    let source = GitSource::new(&repo.dir, &[], None).unwrap();
    let sink = MemorySink::default();
    source.ingest(&sink).unwrap();

    repo.write("d1/sub/f7.conf", b"v = new\n");
    repo.commit("one more");
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
    repo.write("d1/sub/f7.conf", b"v = 1.7\n");
    repo.commit("revert");
    sink.reset_counts();
    let report = source.ingest(&sink).unwrap();
    assert_eq!(report.files_read, 0);
    assert_eq!(sink.counts().put_blob, 0);
}

#[test]
fn a_failing_sink_stops_the_ingest_with_its_own_error() {
    // Writes overlap reading: the sink's error must still be the one
    // reported, with every commit before it kept and nothing after it.
    let (_tmp, repo) = history();
    let source = GitSource::new(&repo.dir, &[], None).unwrap();
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
    let (_tmp, repo) = history();
    let source = GitSource::new(&repo.dir, &[], Some("d2/sub")).unwrap();
    let sink = MemorySink::default();
    source.ingest(&sink).unwrap();
    let log = sink.log();
    assert_eq!(log.len(), 11);
    assert_eq!(sink.tree(log[0].1.tree).entries().len(), 20);
    // Commits not touching d2/sub share its tree.
    let distinct: std::collections::HashSet<_> = log.iter().map(|(_, x)| x.tree).collect();
    assert_eq!(distinct.len(), 1 + 3);
    let missing = GitSource::new(&repo.dir, &[], Some("nope/x")).unwrap();
    let sink = MemorySink::default();
    missing.ingest(&sink).unwrap();
    assert!(
        sink.log()
            .iter()
            .all(|(_, x)| x.tree == Tree::default().id())
    );

    let err = GitSource::new(&repo.dir, &[], Some("../x")).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
}

#[test]
fn names_plumb_cannot_store_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(tmp.path(), "repo", &[]);
    let blob = repo.hash_object("blob", "x\n");
    // A tree entry named `a/b`, which only a hand-made tree can hold.
    let mut tree = b"100644 a/b\0".to_vec();
    tree.extend((0..20).map(|i| u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).unwrap()));
    let tree_id = repo.text_input(
        &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        Some(&tree),
    );
    let c = repo.text(&["commit-tree", &tree_id, "-m", "bad"]);
    repo.git(&["update-ref", "HEAD", &c]);
    let source = GitSource::new(&repo.dir, &[], None).unwrap();
    let err = source.ingest(&MemorySink::default()).unwrap_err();
    let SourceError::Read { source, .. } = &err else {
        panic!("{err}");
    };
    let reason = source.to_string();
    assert!(reason.contains(&format!("commit {c}")), "{reason}");
    assert!(reason.contains(&format!("tree {tree_id}")), "{reason}");
    assert!(reason.contains("\"a/b\""), "{reason}");
}

/// The bytes of a tree entry: mode, name, NUL, the raw id.
fn tree_entry(mode: &str, name: &str, id: &str) -> Vec<u8> {
    let mut out = format!("{mode} {name}\0").into_bytes();
    out.extend((0..id.len() / 2).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()));
    out
}

/// A tree written as-is, entries in the order given (Git's order).
fn literal_tree(repo: &GitRepo, entries: &[(&str, &str, &str)]) -> String {
    let bytes: Vec<u8> = entries
        .iter()
        .flat_map(|(mode, name, id)| tree_entry(mode, name, id))
        .collect();
    repo.text_input(
        &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        Some(&bytes),
    )
}

/// Repository metadata and stores (`.git`, `.hg`, `.plumb` in any case),
/// which only a hand-made tree can hold, are left out of the snapshot at
/// any depth, each with one warning naming the commit and the path.
#[test]
fn repository_metadata_in_a_tree_is_left_out_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(tmp.path(), "repo", &[]);
    let hook = repo.hash_object("blob", "#!/bin/sh\nrm -rf /\n");
    let conf = repo.hash_object("blob", "port = 80\n");
    let git_dir = literal_tree(
        &repo,
        &[("100644", "config", &conf), ("100755", "hook", &hook)],
    );
    let sub = literal_tree(
        &repo,
        &[
            ("40000", ".Hg", &git_dir),
            ("100644", ".PLUMB", &conf),
            ("100644", "ok.conf", &conf),
        ],
    );
    let root = literal_tree(
        &repo,
        &[
            ("40000", ".GIT", &git_dir),
            ("100644", ".gitignore", &conf),
            ("40000", "sub", &sub),
        ],
    );
    let c = repo.text(&["commit-tree", &root, "-m", "hostile"]);
    repo.git(&["update-ref", "HEAD", &c]);
    let source = GitSource::new(&repo.dir, &[], None).unwrap();
    let sink = MemorySink::default();
    let report = source.ingest(&sink).unwrap();
    let log = sink.log();
    assert_eq!(log.len(), 1);
    let paths: Vec<String> = sink
        .flatten(log[0].1.tree)
        .into_keys()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    assert_eq!(paths, [".gitignore", "sub", "sub/ok.conf"]);
    let mut warned: Vec<&str> = report
        .warnings
        .iter()
        .map(|w| {
            assert!(w.starts_with(&format!("git:sha1:{c}: left out ")), "{w}");
            w.split(" ").nth(3).unwrap().trim_end_matches(':')
        })
        .collect();
    warned.sort_unstable();
    assert_eq!(
        warned,
        [".GIT", "sub/.Hg", "sub/.PLUMB"],
        "{:?}",
        report.warnings
    );
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
