//! `HgSource::ingest` against repositories built by the real `hg`, checked
//! changeset by changeset against `hg manifest` and `hg cat`.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plumb_core::source::{Source, SourceError};
use plumb_core::testing::{Flat, MemorySink};
use plumb_source_hg::HgSource;
use plumb_testutils::fixture;
use plumb_testutils::fs::write;
use plumb_testutils::hg::{all_nodes, commit, hg, hg_command, init, node};

fn source(root: &Path, refs: &[&str], path: Option<&str>) -> HgSource {
    let refs: Vec<String> = refs.iter().map(|s| (*s).to_owned()).collect();
    HgSource::new(root.to_str().unwrap(), &refs, path).unwrap()
}

fn ingest_all(root: &Path) -> MemorySink {
    let sink = MemorySink::new();
    source(root, &[], None).ingest(&sink).unwrap();
    sink
}

/// What `hg` says changeset `node` holds: path → (kind, content).
fn hg_files(root: &Path, node: &str) -> Flat {
    let manifest = hg(root, &["manifest", "-v", "-r", node]);
    let mut out = BTreeMap::new();
    if manifest.is_empty() {
        return out;
    }
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/%p", dir.path().display());
    hg(root, &["cat", "-r", node, "-o", &pattern, "glob:**"]);
    for line in manifest.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        // "644   path", "755 * path", "644 @ path"
        let kind = match line[4] {
            b'*' => "exec",
            b'@' => "link",
            _ => "file",
        };
        let path = line[6..].to_vec();
        let file: PathBuf = dir
            .path()
            .join(std::str::from_utf8(&path).expect("test paths are UTF-8"));
        let content = std::fs::read(&file).unwrap();
        out.insert(path, (kind, content));
    }
    out
}

/// Checks every snapshot in `sink` against `hg`: same files, kinds and
/// bytes, below `scope` (`""` for all). Returns how many were checked.
fn check_against_hg(root: &Path, sink: &MemorySink, scope: &str) -> usize {
    let log = sink.log();
    for (_, snap) in &log {
        let node = snap.revision.strip_prefix("hg:").unwrap();
        let mut expected = hg_files(root, node);
        if !scope.is_empty() {
            let prefix = format!("{scope}/");
            expected = expected
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix.as_bytes())?.to_vec(), v)))
                .collect();
        }
        let got = sink.files(snap.tree);
        let names = |m: &Flat| {
            m.keys()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&got), names(&expected), "file list of {node}");
        for (path, exp) in &expected {
            assert_eq!(
                &got[path],
                exp,
                "{} in {node}",
                String::from_utf8_lossy(path)
            );
        }
    }
    log.len()
}

#[test]
fn linear_history_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    init(&root, &[]);
    write(&root, "a.conf", b"port = 1\n");
    write(&root, "sub/deep/b.yaml", b"b: 1\n");
    commit(&root, "first", "1700000000 -3600");
    write(&root, "a.conf", b"port = 2\n");
    write(&root, "run.sh", b"#!/bin/sh\n");
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(root.join("run.sh"))
            .unwrap()
            .permissions(),
        0o755,
    );
    std::fs::set_permissions(
        root.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/deep/b.yaml", root.join("link")).unwrap();
    commit(&root, "second", "1700000100 18000");
    std::fs::remove_file(root.join("sub/deep/b.yaml")).unwrap();
    commit(&root, "third\n\nwith body", "1700000200 0");

    let sink = ingest_all(&root);
    assert_eq!(check_against_hg(&root, &sink, ""), 3);
    let log = sink.log();
    assert_eq!(log[0].1.revision, format!("hg:{}", node(&root, "0")));
    assert!(log[0].1.parents.is_empty());
    assert_eq!(log[1].1.parents, [log[0].0]);
    let first = &log[0].1;
    assert_eq!(first.author.name, b"Test User");
    assert_eq!(first.author.email, b"test@example.com");
    assert_eq!(first.author.time, 1_700_000_000);
    assert_eq!(first.author.tz_minutes, 60);
    assert_eq!(log[1].1.author.tz_minutes, -300);
    assert_eq!(log[2].1.message, b"third\n\nwith body");
    assert_eq!(
        first.extra_values("hg.branch").collect::<Vec<_>>(),
        [b"default"]
    );

    // Nothing new: nothing committed.
    let again = source(&root, &[], None).ingest(&sink).unwrap();
    assert!(again.new_snapshots.is_empty());
    assert_eq!(again.files_read, 0);
}

#[test]
fn unsupported_requirement_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    init(&root, &[]);
    write(&root, "a", b"a\n");
    commit(&root, "a", "0 0");
    let mut req = std::fs::read(root.join(".hg/requires")).unwrap();
    req.extend_from_slice(b"frobnicated-revlogs\n");
    std::fs::write(root.join(".hg/requires"), req).unwrap();
    let err = HgSource::new(root.to_str().unwrap(), &[], None).unwrap_err();
    let SourceError::Read { source, .. } = &err else {
        panic!("{err:?}")
    };
    let reason = source.to_string();
    assert!(reason.contains("\"frobnicated-revlogs\""), "{reason}");
}

/// Branches, merges, copies and renames, bookmarks and tags.
fn history_repo(root: &Path) {
    init(root, &[]);
    write(root, "app/main.conf", b"v = 1\n");
    write(root, "app/other.conf", b"o = 1\n");
    commit(root, "base", "1700000000 0");
    hg(root, &["copy", "-q", "app/main.conf", "app/copy.conf"]);
    hg(root, &["rename", "-q", "app/other.conf", "moved.conf"]);
    commit(root, "copy and rename", "1700000001 0");
    hg(root, &["branch", "-q", "stable"]);
    write(root, "app/main.conf", b"v = stable\n");
    commit(root, "on stable", "1700000002 0");
    hg(root, &["bookmark", "-q", "prod"]);
    hg(root, &["update", "-q", "default"]);
    write(root, "app/new.conf", b"new\n");
    commit(root, "default moves on", "1700000003 0");
    hg(root, &["tag", "-q", "-d", "1700000004 0", "v1.0"]);
    hg(root, &["merge", "-q", "stable"]);
    commit(root, "merge stable", "1700000005 0");
    write(root, "app/main.conf", b"v = 2\n");
    commit(root, "after merge", "1700000006 0");
}

#[test]
fn merges_copies_branches_bookmarks_tags() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    fixture::copy_of("hg-history", &root, history_repo);

    let sink = ingest_all(&root);
    // Every changeset reaches default's head through the merge.
    assert_eq!(check_against_hg(&root, &sink, ""), 7);
    let log = sink.log();
    let revs: Vec<String> = log.iter().map(|(_, s)| s.revision.clone()).collect();
    let expected: Vec<String> = all_nodes(&root).iter().map(|n| format!("hg:{n}")).collect();
    assert_eq!(revs, expected);
    let merge = &log[5].1;
    assert_eq!(merge.parents, [log[4].0, log[2].0]);
    let copies: Vec<&[u8]> = log[1].1.extra_values("hg.copy").collect();
    assert_eq!(
        copies,
        [
            &b"app/copy.conf\0app/main.conf"[..],
            b"moved.conf\0app/other.conf"
        ]
    );
    assert_eq!(
        log[2].1.extra_values("hg.branch").collect::<Vec<_>>(),
        [b"stable"]
    );

    // Refs: a bookmark, a tag, a branch, tip and a node.
    for (r, head) in [
        ("prod", "2"),
        ("v1.0", "3"),
        ("stable", "2"),
        ("default", "6"),
        ("tip", "6"),
    ] {
        let sink = MemorySink::new();
        source(&root, &[r], None).ingest(&sink).unwrap();
        let last = sink.log().last().unwrap().1.clone();
        assert_eq!(last.revision, format!("hg:{}", node(&root, head)), "{r}");
    }
    let n1 = node(&root, "1");
    let sink = MemorySink::new();
    source(&root, &[&n1], None).ingest(&sink).unwrap();
    assert_eq!(sink.log().len(), 2);
    let err = HgSource::new(root.to_str().unwrap(), &["nope".to_owned()], None)
        .unwrap()
        .ingest(&MemorySink::new())
        .unwrap_err();
    assert!(err.to_string().contains("unknown ref \"nope\""), "{err}");

    // Incremental: the stable branch first, then default adds the rest.
    let sink = MemorySink::new();
    source(&root, &["stable"], None).ingest(&sink).unwrap();
    assert_eq!(sink.log().len(), 3);
    let report = source(&root, &[], None).ingest(&sink).unwrap();
    assert_eq!(report.new_snapshots.len(), 4);
    assert_eq!(check_against_hg(&root, &sink, ""), 7);
}

#[test]
fn scoped_to_a_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    fixture::copy_of("hg-history", &root, history_repo);
    let sink = MemorySink::new();
    source(&root, &[], Some("app")).ingest(&sink).unwrap();
    assert_eq!(check_against_hg(&root, &sink, "app"), 7);
    let log = sink.log();
    assert_eq!(
        log[0].1.extra_values("hg.path").collect::<Vec<_>>(),
        [b"app"]
    );
    // The rename out of app/ is not a copy inside it.
    assert_eq!(log[1].1.extra_values("hg.copy").count(), 1);
    // A directory absent everywhere: every changeset, empty trees.
    let sink = MemorySink::new();
    source(&root, &[], Some("nowhere/x")).ingest(&sink).unwrap();
    assert_eq!(sink.log().len(), 7);
    assert!(sink.files(sink.log()[6].1.tree).is_empty());
}

/// Paths that exercise every rule of the store's path encoding.
const ODD_PATHS: &[&str] = &[
    "UPPER/Mixed_Case.TXT",
    "under_score/__init__.py",
    ".hidden/.dotfile",
    " leading space/ x",
    "trailing dot./file.",
    "aux.txt",
    "con/prn.conf",
    "lpt1/com9.d/x",
    "com0/nul",
    "dir.i/file.d",
    "dir.d/x.hg/y.i",
    "tilde~/a~b",
    "colon:star*?q/\"quote\"<lt>gt|",
    "caf\u{e9}/na\u{ef}ve-\u{65e5}\u{672c}.conf",
];

fn long_paths() -> Vec<String> {
    let seg = "Segment_With.Dots and Spaces";
    vec![
        format!("{}/{}.txt", "d".repeat(60), "f".repeat(90)),
        format!("{}/{}", [seg; 8].join("/"), "LeafName.CONF"),
        format!("{}/{}", ["ab."; 40].join("/"), "x"),
        format!("a/{}", "Z".repeat(200)),
        format!("{}/.{}", ["aux"; 30].join("/"), "y".repeat(50)),
        format!("{}/{}", "q".repeat(100), "noext"),
        format!("{}/..{}", "w".repeat(100), "i"),
    ]
}

#[test]
fn odd_and_long_paths_use_the_store_encoding() {
    for (variant, args) in [
        ("default", vec![]),
        ("no-dotencode", vec!["--config", "format.dotencode=false"]),
        ("no-fncache", vec!["--config", "format.usefncache=false"]),
        ("no-store", vec!["--config", "format.usestore=false"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        init(&root, &args);
        let mut paths: Vec<String> = ODD_PATHS.iter().map(|s| (*s).to_owned()).collect();
        if variant == "default" || variant == "no-dotencode" {
            paths.extend(long_paths());
        }
        for (i, p) in paths.iter().enumerate() {
            write(&root, p, format!("content {i} of {p}\n").as_bytes());
        }
        commit(&root, "odd", "0 0");
        for (i, p) in paths.iter().enumerate() {
            write(&root, p, format!("changed {i}\n").as_bytes());
        }
        commit(&root, "odd again", "1 0");
        let sink = ingest_all(&root);
        assert_eq!(check_against_hg(&root, &sink, ""), 2, "{variant}");
        let files = sink.files(sink.log()[1].1.tree);
        assert_eq!(files.len(), paths.len(), "{variant}");
    }
}

#[test]
fn compression_and_split_data_files() {
    for engine in ["zlib", "zstd", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let cfg = format!("format.revlog-compression={engine}");
        init(&root, &["--config", &cfg]);
        // Compressible, and large enough (> 128 KiB) to move to a .d file.
        // Random hex compresses about 2:1 whatever the engine.
        let mut big = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..8_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            big.extend_from_slice(
                format!("key{i} = {x:016x}{:016x}\n", x.rotate_left(23)).as_bytes(),
            );
        }
        write(&root, "small.conf", b"s = 1\n");
        write(&root, "big.conf", &big);
        commit(&root, "one", "0 0");
        for round in 0..4 {
            big.extend_from_slice(format!("appended {round}\n").as_bytes());
            let at = 1000 * (round + 1);
            big[at..at + 4].copy_from_slice(b"LINE");
            write(&root, "big.conf", &big);
            write(&root, "small.conf", format!("s = {round}\n").as_bytes());
            commit(&root, &format!("round {round}"), "0 0");
        }
        let store = root.join(".hg/store/data");
        if engine != "none" {
            assert!(
                store.join("big.conf.d").exists(),
                "{engine}: big.conf is split"
            );
        }
        assert!(
            !store.join("small.conf.d").exists(),
            "{engine}: small.conf is inline"
        );
        let sink = ingest_all(&root);
        assert_eq!(check_against_hg(&root, &sink, ""), 5, "{engine}");
    }
}

#[test]
fn obsolete_changesets_are_not_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    init(&root, &[]);
    let evo = ["--config", "experimental.evolution=all"];
    write(&root, "a", b"1\n");
    commit(&root, "one", "0 0");
    write(&root, "a", b"2\n");
    commit(&root, "two", "1 0");
    let amended = node(&root, "1");
    write(&root, "a", b"2 amended\n");
    let mut args = evo.to_vec();
    args.extend(["commit", "-q", "--amend", "-m", "two, amended", "-d", "2 0"]);
    hg(&root, &args);
    // A pruned changeset on top of the amended one.
    write(&root, "b", b"b\n");
    commit(&root, "to prune", "3 0");
    let mut args = evo.to_vec();
    args.extend(["prune", "-q", "-r", "."]);
    let mut c = hg_command(&root);
    c.args(["--config", "extensions.evolve="]);
    // `hg prune` needs the evolve extension; fall back to `debugobsolete`.
    if !c
        .args(&args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        let pruned = node(&root, ".");
        let mut args = evo.to_vec();
        args.extend(["update", "-q", "-r", ".^"]);
        hg(&root, &args);
        let mut args = evo.to_vec();
        args.extend(["debugobsolete", pruned.as_str()]);
        hg(&root, &args);
    }
    let visible = all_nodes(&root);
    assert_eq!(visible.len(), 2, "hg itself hides two changesets");
    assert!(root.join(".hg/store/obsstore").exists());

    let sink = ingest_all(&root);
    assert_eq!(check_against_hg(&root, &sink, ""), 2);
    let revs: Vec<String> = sink.log().iter().map(|(_, s)| s.revision.clone()).collect();
    assert_eq!(
        revs,
        visible
            .iter()
            .map(|n| format!("hg:{n}"))
            .collect::<Vec<_>>()
    );
    assert!(!revs.contains(&format!("hg:{amended}")));
    // Asking for a hidden changeset by id fails.
    let err = source(&root, &[&amended], None)
        .ingest(&MemorySink::new())
        .unwrap_err();
    assert!(err.to_string().contains("unknown ref"), "{err}");
}

#[test]
fn shared_repositories_read_the_source_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    fixture::copy_of("hg-history", &root, history_repo);
    let share = dir.path().join("share");
    hg(
        dir.path(),
        &[
            "--config",
            "extensions.share=",
            "share",
            "-q",
            "repo",
            "share",
        ],
    );
    let sink = ingest_all(&share);
    assert_eq!(check_against_hg(&root, &sink, ""), 7);
}

#[test]
fn remote_urls_are_refused() {
    for url in ["https://example.com/repo", "ssh://host/repo"] {
        let err = HgSource::new(url, &[], None).unwrap_err();
        assert!(err.to_string().contains("remote"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let err = HgSource::new(dir.path().to_str().unwrap(), &[], None).unwrap_err();
    assert!(
        err.to_string().contains("not a Mercurial repository"),
        "{err}"
    );
}

#[test]
fn corrupt_revision_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    init(&root, &["--config", "format.revlog-compression=none"]);
    write(&root, "f.conf", b"hello hello hello hello\n");
    commit(&root, "one", "0 0");
    let path = root.join(".hg/store/data/f.conf.i");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
    bytes[at] = b'j';
    std::fs::write(&path, bytes).unwrap();
    let err = source(&root, &[], None)
        .ingest(&MemorySink::new())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("f.conf.i") && msg.contains("revision 0") && msg.contains("hash mismatch"),
        "{msg}"
    );
}

/// A one-revision inline version-1 revlog holding `text` (null parents,
/// stored uncompressed), and the revision's node.
fn one_revision_revlog(text: &[u8], linkrev: i32) -> (Vec<u8>, [u8; 20]) {
    use sha1::{Digest, Sha1};
    let node: [u8; 20] = Sha1::new()
        .chain_update([0u8; 40])
        .chain_update(text)
        .finalize()
        .into();
    let chunk = [b"u".as_slice(), text].concat();
    let mut out = Vec::with_capacity(64 + chunk.len());
    out.extend_from_slice(&0x0001_0001u32.to_be_bytes()); // inline, version 1
    out.extend_from_slice(&[0; 4]); // offset 0, no flags
    for n in [chunk.len() as i32, text.len() as i32, 0, linkrev, -1, -1] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(&node);
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&chunk);
    (out, node)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file of a hand-made changeset: its manifest path, content, and where
/// its filelog is written (relative to `.hg/store`; `None`: nowhere).
struct Handmade<'a> {
    path: &'a str,
    content: &'a [u8],
    filelog: Option<&'a str>,
}

/// A repository at `root` of one changeset holding `files` (in manifest
/// order), written byte by byte: the paths are ones `hg` itself refuses to
/// commit. Layout `store` without `fncache`, as `hg --config
/// format.usefncache=false init` makes it. Returns the changeset's node.
fn handmade_repo(root: &Path, files: &[Handmade<'_>]) -> String {
    let store = root.join(".hg/store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(root.join(".hg/requires"), b"revlogv1\nstore\n").unwrap();
    let mut manifest = Vec::new();
    for f in files {
        let (log, node) = one_revision_revlog(f.content, 0);
        if let Some(at) = f.filelog {
            let at = store.join(at);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(at, log).unwrap();
        }
        manifest.extend_from_slice(format!("{}\0{}\n", f.path, hex(&node)).as_bytes());
    }
    let (log, manifest_node) = one_revision_revlog(&manifest, 0);
    std::fs::write(store.join("00manifest.i"), log).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path).collect();
    let changeset = format!(
        "{}\nTest User <test@example.com>\n0 0\n{}\n\nhand-made",
        hex(&manifest_node),
        names.join("\n")
    );
    let (log, node) = one_revision_revlog(changeset.as_bytes(), 0);
    std::fs::write(store.join("00changelog.i"), log).unwrap();
    // `hg` reads it as written.
    let listed = String::from_utf8(hg(root, &["manifest", "-r", "0"])).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), names);
    hex(&node)
}

/// A manifest path climbing out of the store (`../../../../out/secret`,
/// which without `fncache` names `out/secret.i` beside the repository) is
/// refused before anything is opened: one error naming the changeset and
/// the path, and the file outside is never read into the store.
#[test]
fn a_manifest_path_out_of_the_store_is_refused_before_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let node = handmade_repo(
        &root,
        &[
            Handmade {
                path: "../../../../out/secret",
                content: b"TOP SECRET\n",
                filelog: Some("../../../out/secret.i"),
            },
            Handmade {
                path: "conf",
                content: b"port = 80\n",
                filelog: Some("data/conf.i"),
            },
        ],
    );
    assert!(dir.path().join("out/secret.i").is_file(), "planted outside");
    let sink = MemorySink::new();
    let err = source(&root, &[], None).ingest(&sink).unwrap_err();
    let msg = err.to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains(&format!("changeset {node}"))
            && msg.contains("\"../../../../out/secret\"")
            && msg.contains("cannot be stored"),
        "{msg}"
    );
    assert!(
        !sink
            .all_blob_contents()
            .iter()
            .any(|b| b.as_slice() == b"TOP SECRET\n"),
        "the file outside was read into the store"
    );
    assert!(sink.log().is_empty());
}

/// Repository metadata and stores in a manifest (`.git`, `.plumb` as `hg`
/// commits them; `.Hg`, which `hg` refuses, written by hand) are left out
/// at any depth, each with one warning naming the changeset and the path,
/// and never read.
#[test]
fn repository_metadata_in_a_manifest_is_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    init(&root, &[]);
    write(&root, ".git/config", b"[core]\n\thooksPath = /tmp\n");
    write(&root, "sub/.PLUMB/x", b"store\n");
    write(&root, "sub/ok.conf", b"ok\n");
    commit(&root, "one", "0 0");
    let sink = MemorySink::new();
    let report = source(&root, &[], None).ingest(&sink).unwrap();
    let log = sink.log();
    assert_eq!(log.len(), 1);
    assert_eq!(
        sink.files(log[0].1.tree).into_keys().collect::<Vec<_>>(),
        [b"sub/ok.conf".to_vec()]
    );
    let node = node(&root, "0");
    assert_eq!(
        report.warnings,
        [".git/config", "sub/.PLUMB/x"].map(|p| format!(
            "hg:{node}: left out {p}: repository metadata or a plumb store is never snapshotted"
        ))
    );

    let hand = dir.path().join("hand");
    let node = handmade_repo(
        &hand,
        &[
            Handmade {
                path: "ok",
                content: b"ok\n",
                filelog: Some("data/ok.i"),
            },
            Handmade {
                path: "sub/.Hg/hgrc",
                content: b"[hooks]\n",
                filelog: None,
            },
        ],
    );
    let sink = MemorySink::new();
    let report = source(&hand, &[], None).ingest(&sink).unwrap();
    let log = sink.log();
    assert_eq!(
        sink.files(log[0].1.tree).into_keys().collect::<Vec<_>>(),
        [b"ok".to_vec()]
    );
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].starts_with(&format!("hg:{node}: left out sub/.Hg/hgrc: ")),
        "{:?}",
        report.warnings
    );
}
