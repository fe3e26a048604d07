//! The directory target against real files in temporary directories.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use plumb_core::Blob;
use plumb_core::target::{
    Change, Digest, DigestKind, ObserveRequest, Observed, Target, TargetError,
};
use plumb_core::testing::MemoryContent;
use plumb_core::testing::target::{apply_ok, observe_one, path as p, request, try_observe_one};
use plumb_target_dir::DirTarget;
use plumb_testutils::fs::{is_root, mode_of};

fn setup() -> (tempfile::TempDir, DirTarget, MemoryContent) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let target = DirTarget::new(tmp.path().join("root"));
    (tmp, target, MemoryContent::default())
}

/// Applies `changes`; returns each change's outcome as text, requiring
/// that every one was reported.
fn apply(
    target: &mut DirTarget,
    store: &MemoryContent,
    changes: &[Change],
) -> Result<Vec<Result<(), String>>, TargetError> {
    let (outcomes, result) = plumb_core::testing::target::apply(target, store, changes);
    result?;
    Ok(outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|| panic!("change {i} never reported")))
        .collect())
}

/// Observes one path.
fn observe(
    target: &mut DirTarget,
    path: &[u8],
    digest: bool,
    list: bool,
) -> Result<Observed, TargetError> {
    try_observe_one(target, request(path, digest, list)).map(sans_attrs)
}

/// Observes one path, with its digest and listing; it must be observable.
fn look(target: &mut DirTarget, path: &[u8]) -> Observed {
    sans_attrs(observe_one(target, request(path, true, true)))
}

/// `observed` without its attributes (checked on their own).
fn sans_attrs(observed: Observed) -> Observed {
    match observed {
        Observed::File {
            size,
            executable,
            digest,
            token,
            ..
        } => Observed::File {
            size,
            executable,
            digest,
            token,
            attrs: Default::default(),
        },
        Observed::Dir { children, .. } => Observed::Dir {
            children,
            attrs: Default::default(),
        },
        other => other,
    }
}

fn names_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    names
}

#[test]
fn describes_itself() {
    let (tmp, target, _) = setup();
    assert_eq!(
        target.describe(),
        format!("dir:{}", tmp.path().join("root").display())
    );
    assert_eq!(target.digest_kind(), DigestKind::Blob);
}

#[test]
fn missing_root_is_all_missing_and_created_by_the_first_apply() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("a/b/root");
    let mut target = DirTarget::new(root.clone());
    assert_eq!(look(&mut target, b"x"), Observed::Missing);
    assert_eq!(look(&mut target, b"x/y/z"), Observed::Missing);
    assert!(target.read(&p(b"x")).is_err());
    target.recover(&[p(b"x")]).expect("nothing to recover");
    let store = MemoryContent::default();
    apply_ok(&mut target, &store, &[]);
    assert!(!root.exists(), "an empty apply creates nothing");

    let write = store.write(b"x", b"hello\n", false);
    apply_ok(&mut target, &store, &[write]);
    assert_eq!(fs::read(root.join("x")).expect("written"), b"hello\n");
}

#[test]
fn creates_updates_and_replaces() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let changes = [
        store.write(b"a", b"one", false),
        Change::Symlink {
            path: p(b"link"),
            target: b"../somewhere/else".to_vec(),
        },
        Change::MakeDir {
            path: p(b"d"),
            attrs: Default::default(),
        },
    ];
    apply_ok(&mut target, &store, &changes);
    assert_eq!(fs::read(root.join("a")).expect("a"), b"one");
    assert_eq!(
        fs::read_link(root.join("link"))
            .expect("a link")
            .as_os_str(),
        "../somewhere/else"
    );
    assert!(root.join("d").is_dir());

    // Update a file; replace the link with a file and a file with a link.
    fs::write(root.join("b"), b"plain").expect("write b");
    let changes = [
        store.write(b"a", b"two, longer", true),
        store.write(b"link", b"now a file", false),
        Change::Symlink {
            path: p(b"b"),
            target: b"a".to_vec(),
        },
        store.write(b"d/inner", b"inside", false),
    ];
    apply_ok(&mut target, &store, &changes);
    assert_eq!(fs::read(root.join("a")).expect("a"), b"two, longer");
    assert_eq!(mode_of(&root.join("a")), 0o755);
    assert!(
        fs::symlink_metadata(root.join("link"))
            .expect("link")
            .is_file()
    );
    assert_eq!(fs::read(root.join("link")).expect("link"), b"now a file");
    assert_eq!(fs::read_link(root.join("b")).expect("b").as_os_str(), "a");
    assert_eq!(fs::read(root.join("d/inner")).expect("inner"), b"inside");

    // Making the same changes again succeeds and changes nothing.
    apply_ok(&mut target, &store, &changes);
    assert_eq!(fs::read(root.join("a")).expect("a"), b"two, longer");
    assert_eq!(
        names_in(&root),
        vec![
            b"a".to_vec(),
            b"b".to_vec(),
            b"d".to_vec(),
            b"link".to_vec()
        ],
        "no temporary files are left behind"
    );
}

#[test]
fn changes_across_many_directories_are_each_confirmed_or_failed() {
    // Past a few directories, their syncs are made as one: every change
    // must still get its own outcome.
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let dirs: Vec<Change> = (0..40)
        .map(|d| Change::MakeDir {
            path: p(format!("d{d:02}").as_bytes()),
            attrs: Default::default(),
        })
        .collect();
    apply_ok(&mut target, &store, &dirs);
    fs::create_dir(root.join("d07/in-the-way")).expect("a directory in the way");
    let writes: Vec<Change> = (0..40)
        .flat_map(|d| {
            let name = if d == 7 { "in-the-way" } else { "f" };
            [
                store.write(format!("d{d:02}/{name}").as_bytes(), b"x", false),
                store.write(format!("d{d:02}/g").as_bytes(), b"y", true),
            ]
        })
        .collect();
    let outcomes = apply(&mut target, &store, &writes).expect("the target works");
    for (i, r) in outcomes.iter().enumerate() {
        match i {
            14 => assert!(
                r.as_ref().is_err_and(|e| e.contains("is a directory")),
                "{r:?}"
            ),
            _ => assert_eq!(r, &Ok(()), "change {i}"),
        }
    }
    assert_eq!(fs::read(root.join("d39/f")).expect("written"), b"x");
    assert_eq!(mode_of(&root.join("d00/g")), 0o755);
    assert_eq!(
        names_in(&root.join("d07")),
        vec![b"g".to_vec(), b"in-the-way".to_vec()]
    );
}

#[test]
fn observes_files_links_dirs_and_others() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let data = b"#!/bin/sh\necho hi\n";
    apply_ok(
        &mut target,
        &store,
        &[
            store.write(b"run", data, true),
            store.write(b"conf", b"x = 1\n", false),
            Change::MakeDir {
                path: p(b"dir"),
                attrs: Default::default(),
            },
        ],
    );
    symlink(OsStr::from_bytes(b"t\xffarget"), root.join("l")).expect("link");
    fs::write(root.join("dir/z"), b"").expect("z");
    fs::write(root.join("dir/a"), b"").expect("a");
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("socket");

    match look(&mut target, b"run") {
        Observed::File {
            size,
            executable,
            digest,
            ..
        } => {
            assert_eq!(size, data.len() as u64);
            assert!(executable);
            assert_eq!(digest, Some(Digest::Blob(Blob::id_of(data))));
        }
        other => panic!("{other:?}"),
    }
    match observe(&mut target, b"conf", false, false).expect("conf") {
        Observed::File {
            executable, digest, ..
        } => {
            assert!(!executable);
            assert_eq!(digest, None, "not asked for");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        look(&mut target, b"l"),
        Observed::Symlink {
            target: b"t\xffarget".to_vec()
        }
    );
    let children = |names: &[&[u8]]| Observed::Dir {
        children: Some(
            names
                .iter()
                .map(|n| plumb_core::Name::new(n.to_vec()).expect("name"))
                .collect(),
        ),
        attrs: Default::default(),
    };
    assert_eq!(look(&mut target, b"dir"), children(&[b"a", b"z"]));
    assert_eq!(
        observe(&mut target, b"dir", false, false).expect("dir"),
        Observed::Dir {
            children: None,
            attrs: Default::default()
        }
    );
    assert_eq!(
        look(&mut target, b"sock"),
        Observed::Other {
            what: "socket".to_owned()
        }
    );
    assert_eq!(look(&mut target, b"nothing"), Observed::Missing);
    assert_eq!(look(&mut target, b"nothing/below"), Observed::Missing);
    // A file where a directory should be blocks the path below it.
    assert_eq!(
        look(&mut target, b"conf/below"),
        Observed::Blocked {
            at: p(b"conf"),
            what: "file".to_owned()
        }
    );
    // Answers come in the order asked, whatever order they are looked at.
    let requests: Vec<ObserveRequest> = [&b"sock"[..], b"dir/z", b"run", b"dir", b"a/b/c"]
        .iter()
        .map(|path| ObserveRequest {
            path: p(path),
            digest: false,
            list: false,
        })
        .collect();
    let out = target.observe(&requests).expect("observed");
    assert!(matches!(out[0], Ok(Observed::Other { .. })));
    assert!(matches!(out[1], Ok(Observed::File { size: 0, .. })));
    assert!(matches!(
        out[2],
        Ok(Observed::File {
            executable: true,
            ..
        })
    ));
    assert!(matches!(out[3], Ok(Observed::Dir { .. })));
    assert!(matches!(out[4], Ok(Observed::Missing)));
}

#[test]
fn digest_is_the_blob_id() {
    let (tmp, mut target, _) = setup();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("root");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("small", b"port = 8080\n"),
        ("big", &big),
    ] {
        fs::write(root.join(name), bytes).expect("write");
        match look(&mut target, name.as_bytes()) {
            Observed::File { digest, size, .. } => {
                assert_eq!(size, bytes.len() as u64);
                assert_eq!(digest, Some(Digest::Blob(Blob::id_of(bytes))), "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn token_is_withheld_right_after_writing_and_changes_with_the_file() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    apply_ok(&mut target, &store, &[store.write(b"f", b"first", false)]);
    let token = |target: &mut DirTarget| match look(target, b"f") {
        Observed::File { token, .. } => token,
        other => panic!("{other:?}"),
    };
    assert_eq!(token(&mut target), None, "racy right after writing");
    std::thread::sleep(Duration::from_millis(80));
    let first = token(&mut target).expect("settled");
    assert_eq!(token(&mut target), Some(first.clone()), "stable");

    fs::write(root.join("f"), b"secnd").expect("rewrite, same size");
    assert_eq!(token(&mut target), None);
    std::thread::sleep(Duration::from_millis(80));
    let second = token(&mut target).expect("settled");
    assert_ne!(first, second);
}

#[test]
fn updates_keep_the_mode_but_the_execute_bits_and_replace_read_only_files() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("root");
    fs::write(root.join("ro"), b"old").expect("ro");
    fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o444)).expect("chmod");
    fs::write(root.join("odd"), b"old").expect("odd");
    fs::set_permissions(root.join("odd"), fs::Permissions::from_mode(0o4775)).expect("chmod");
    apply_ok(
        &mut target,
        &store,
        &[
            store.write(b"ro", b"new", false),
            store.write(b"odd", b"new", true),
            store.write(b"plain", b"new", false),
        ],
    );
    assert_eq!(fs::read(root.join("ro")).expect("ro"), b"new");
    assert_eq!(
        mode_of(&root.join("ro")),
        0o444,
        "an admin's chmod survives"
    );
    assert_eq!(mode_of(&root.join("odd")), 0o775, "set-user-id is not kept");
    assert_eq!(mode_of(&root.join("plain")), 0o644);
    // Only the execute bits change: set where reading is allowed.
    apply_ok(&mut target, &store, &[store.write(b"ro", b"new", true)]);
    assert_eq!(mode_of(&root.join("ro")), 0o555);
    fs::set_permissions(root.join("plain"), fs::Permissions::from_mode(0o640)).expect("chmod");
    apply_ok(&mut target, &store, &[store.write(b"plain", b"new", true)]);
    assert_eq!(mode_of(&root.join("plain")), 0o750);
    apply_ok(&mut target, &store, &[store.write(b"plain", b"v3", false)]);
    assert_eq!(mode_of(&root.join("plain")), 0o640);
    apply_ok(&mut target, &store, &[store.write(b"plain", b"new", true)]);
    assert!(matches!(
        look(&mut target, b"plain"),
        Observed::File {
            executable: true,
            ..
        }
    ));
}

#[test]
fn odd_names_work() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let names: [&[u8]; 5] = [
        b"with space",
        b"new\nline",
        b"caf\xe9",
        b"\xff\xfe",
        b"-dash \t tab",
    ];
    let mut changes = vec![Change::MakeDir {
        path: p(b"d\xe9 r"),
        attrs: Default::default(),
    }];
    changes.extend(names.iter().map(|n| store.write(n, n, false)));
    apply_ok(&mut target, &store, &changes);
    let inner: Vec<Change> = names
        .iter()
        .map(|n| {
            let mut path = b"d\xe9 r/".to_vec();
            path.extend_from_slice(n);
            store.write(&path, b"inner", false)
        })
        .collect();
    apply_ok(&mut target, &store, &inner);
    for n in names {
        assert_eq!(
            fs::read(root.join(OsStr::from_bytes(n))).expect("written"),
            n
        );
        let mut path = b"d\xe9 r/".to_vec();
        path.extend_from_slice(n);
        assert!(matches!(
            look(&mut target, &path),
            Observed::File { size: 5, .. }
        ));
        assert_eq!(target.read(&p(&path)).expect("read"), b"inner");
    }
    match look(&mut target, b"d\xe9 r") {
        Observed::Dir {
            children: Some(children),
            ..
        } => {
            let mut expected: Vec<&[u8]> = names.to_vec();
            expected.sort();
            let got: Vec<&[u8]> = children.iter().map(|c| c.as_bytes()).collect();
            assert_eq!(got, expected);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn long_names_use_a_hashed_temporary_name() {
    let (tmp, mut target, store) = setup();
    let dir = tmp.path().join("root/d");
    let long = vec![b'n'; 250];
    let mut path = b"d/".to_vec();
    path.extend_from_slice(&long);
    apply_ok(
        &mut target,
        &store,
        &[Change::MakeDir {
            path: p(b"d"),
            attrs: Default::default(),
        }],
    );
    apply_ok(&mut target, &store, &[store.write(&path, b"long", false)]);
    assert_eq!(
        fs::read(dir.join(OsStr::from_bytes(&long))).expect("long"),
        b"long"
    );
    assert_eq!(names_in(&dir), vec![long.clone()]);
    // A leftover temporary file is hidden from the listing, found, and
    // recovered.
    let hashed = format!(
        ".{}.plumb-tmp-0123456789abcdef",
        &blake3::hash(&long).to_hex()[..16]
    );
    fs::write(dir.join(&hashed), b"partial").expect("leftover");
    match look(&mut target, b"d") {
        Observed::Dir {
            children: Some(children),
            ..
        } => assert_eq!(children.len(), 1),
        other => panic!("{other:?}"),
    }
    let found = target.leftovers(&[p(&path)]).expect("leftovers");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].of, p(&path));
    assert_eq!(found[0].path.file_name(), hashed.as_bytes());
    target.recover(&[p(&path)]).expect("recovered");
    assert!(!dir.join(&hashed).exists());
    assert_eq!(names_in(&dir), vec![long]);
}

#[test]
fn symlink_above_a_path_blocks_it_and_nothing_escapes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    symlink(&outside, root.join("a")).expect("link");
    fs::create_dir(root.join("real")).expect("real");
    symlink("../../outside", root.join("real/up")).expect("link");
    let mut target = DirTarget::new(root.clone());
    let store = MemoryContent::default();

    for (path, at) in [
        (&b"a/x"[..], &b"a"[..]),
        (b"a/b/c", b"a"),
        (b"real/up/x", b"real/up"),
    ] {
        assert_eq!(
            look(&mut target, path),
            Observed::Blocked {
                at: p(at),
                what: "symlink".to_owned()
            },
            "{}",
            String::from_utf8_lossy(path)
        );
        let err = target.read(&p(path)).expect_err("blocked");
        assert!(err.to_string().contains("blocked"), "{err}");
    }
    // The link itself is observed, not followed.
    assert!(matches!(look(&mut target, b"a"), Observed::Symlink { .. }));

    let changes = [
        store.write(b"a/x", b"escaped", false),
        store.write(b"real/up/x", b"escaped", true),
        Change::Symlink {
            path: p(b"a/l"),
            target: b"/etc/passwd".to_vec(),
        },
        Change::MakeDir {
            path: p(b"a/d"),
            attrs: Default::default(),
        },
        Change::Remove { path: p(b"a/y") },
        Change::RemoveDir { path: p(b"a/e") },
        store.write(b"fine", b"inside", false),
    ];
    let outcomes = apply(&mut target, &store, &changes).expect("the target works");
    for (change, outcome) in changes.iter().zip(&outcomes).take(6) {
        let err = outcome.as_ref().expect_err("blocked");
        assert!(
            err.starts_with(&change.path().to_string()) && err.contains("symlink"),
            "{err}"
        );
    }
    assert!(outcomes[6].is_ok());
    assert!(names_in(&outside).is_empty(), "nothing written outside");

    // Recovering does not reach through the link either.
    let planted = outside.join(".x.plumb-tmp-0123456789abcdef");
    fs::write(&planted, b"not ours").expect("planted");
    assert_eq!(target.leftovers(&[p(b"a/x")]).expect("none"), vec![]);
    target.recover(&[p(b"a/x")]).expect("nothing to recover");
    assert!(planted.exists());
}

#[test]
fn stale_temporary_files_are_never_written_through() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("hard"), b"keep").expect("hard");
    fs::write(outside.join("soft"), b"keep").expect("soft");
    fs::hard_link(outside.join("hard"), root.join(".f.plumb-tmp")).expect("hard link");
    symlink(outside.join("soft"), root.join(".g.plumb-tmp")).expect("symlink");
    apply_ok(
        &mut target,
        &store,
        &[
            store.write(b"f", b"new f", false),
            store.write(b"g", b"new g", false),
        ],
    );
    assert_eq!(fs::read(outside.join("hard")).expect("hard"), b"keep");
    assert_eq!(fs::read(outside.join("soft")).expect("soft"), b"keep");
    assert_eq!(fs::read(root.join("f")).expect("f"), b"new f");
    assert_eq!(fs::read(root.join("g")).expect("g"), b"new g");
    // Named like the temporary files of old, they are someone else's.
    assert!(root.join(".f.plumb-tmp").exists());
    assert!(fs::symlink_metadata(root.join(".g.plumb-tmp")).is_ok());
}

#[test]
fn root_that_is_a_symlink_or_a_file_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tmp.path().join("real");
    fs::create_dir(&real).expect("real");
    symlink(&real, tmp.path().join("link")).expect("link");
    fs::write(tmp.path().join("file"), b"").expect("file");
    for (name, what) in [("link", "symlink"), ("file", "not a directory")] {
        let root = tmp.path().join(name);
        let mut target = DirTarget::new(root.clone());
        let check = |e: TargetError| {
            assert!(matches!(e, TargetError::Target { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.contains(&root.display().to_string()), "{text}");
            assert!(text.contains(what), "{text}");
        };
        check(
            target
                .observe(&[ObserveRequest {
                    path: p(b"x"),
                    digest: false,
                    list: false,
                }])
                .expect_err("root"),
        );
        check(target.read(&p(b"x")).expect_err("root"));
        check(target.recover(&[p(b"x")]).expect_err("root"));
        let store = MemoryContent::default();
        let change = store.write(b"x", b"x", false);
        check(apply(&mut target, &store, &[change]).expect_err("root"));
    }
    // A trailing slash does not make the link acceptable.
    let mut target = DirTarget::new(tmp.path().join("link/"));
    assert!(target.read(&p(b"x")).is_err());
    assert!(names_in(&real).is_empty());
}

#[test]
fn directory_in_the_way_of_a_file_or_link_is_an_error() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("d/sub")).expect("dirs");
    fs::create_dir_all(root.join("e")).expect("dirs");
    let changes = [
        store.write(b"d", b"file", false),
        Change::Symlink {
            path: p(b"e"),
            target: b"x".to_vec(),
        },
        Change::Remove { path: p(b"d") },
    ];
    let outcomes = apply(&mut target, &store, &changes).expect("the target works");
    for o in &outcomes {
        let err = o.as_ref().expect_err("a directory is there");
        assert!(err.contains("is a directory"), "{err}");
    }
    assert!(root.join("d/sub").is_dir() && root.join("e").is_dir());
    assert_eq!(names_in(&root), vec![b"d".to_vec(), b"e".to_vec()]);
    assert!(target.read(&p(b"d")).is_err());
}

#[test]
fn make_dir_remove_and_remove_dir() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("full/x")).expect("dirs");
    fs::create_dir(root.join("empty")).expect("empty");
    fs::create_dir(root.join("exists")).expect("exists");
    fs::write(root.join("file"), b"").expect("file");
    fs::write(root.join("gone"), b"").expect("gone");
    symlink("empty", root.join("dirlink")).expect("link");
    symlink("file", root.join("filelink")).expect("link");
    let changes = [
        Change::MakeDir {
            path: p(b"new"),
            attrs: Default::default(),
        },
        Change::MakeDir {
            path: p(b"exists"),
            attrs: Default::default(),
        },
        Change::MakeDir {
            path: p(b"file"),
            attrs: Default::default(),
        },
        Change::MakeDir {
            path: p(b"dirlink"),
            attrs: Default::default(),
        },
        Change::RemoveDir { path: p(b"full") },
        Change::RemoveDir { path: p(b"empty") },
        Change::RemoveDir { path: p(b"never") },
        Change::Remove { path: p(b"gone") },
        Change::Remove {
            path: p(b"filelink"),
        },
        Change::Remove { path: p(b"absent") },
        Change::MakeDir {
            path: p(b"nowhere/new"),
            attrs: Default::default(),
        },
    ];
    let outcomes = apply(&mut target, &store, &changes).expect("the target works");
    let errors: Vec<Option<&str>> = outcomes
        .iter()
        .map(|o| o.as_ref().err().map(String::as_str))
        .collect();
    assert_eq!(
        errors,
        vec![
            None,
            None,
            Some("file: a file is in the way"),
            Some("dirlink: a symlink is in the way"),
            Some("full: directory not empty"),
            None,
            None,
            None,
            None,
            None,
            Some("nowhere/new: directory nowhere does not exist"),
        ]
    );
    assert!(root.join("new").is_dir());
    assert!(root.join("full/x").is_dir());
    assert!(!root.join("empty").exists());
    assert!(!root.join("gone").exists());
    assert!(fs::symlink_metadata(root.join("filelink")).is_err());
    assert!(root.join("file").is_file(), "the link's target stays");
    // RemoveDir on a file is an error too.
    let outcomes = apply(
        &mut target,
        &store,
        &[Change::RemoveDir { path: p(b"file") }],
    )
    .expect("works");
    assert_eq!(
        outcomes[0].as_ref().expect_err("a file"),
        "file: is a file, not a directory"
    );
}

#[test]
fn content_of_the_wrong_size_or_missing_is_an_error() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let id = store.put(b"abc");
    let changes = [
        Change::WriteFile {
            path: p(b"short"),
            blob: id,
            size: 4,
            executable: false,
            attrs: Default::default(),
        },
        Change::WriteFile {
            path: p(b"absent"),
            blob: Blob::id_of(b"not stored"),
            size: 10,
            executable: false,
            attrs: Default::default(),
        },
    ];
    let outcomes = apply(&mut target, &store, &changes).expect("the target works");
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    assert!(names_in(&root).is_empty(), "no temporary file left");
}

#[test]
fn listing_hides_temporary_files_and_recover_removes_them() {
    let (tmp, mut target, _) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("d")).expect("dirs");
    const TAG: &str = ".plumb-tmp-0123456789abcdef";
    for name in [
        format!(".a{TAG}"),
        format!("d/.b{TAG}"),
        format!(".keep{TAG}"),
        // Not of the shape: someone else's.
        "d/.b.plumb-tmp".into(),
        ".a.plumb-tmp-0123456789ABCDEF".into(),
        ".a.plumb-tmp-0123".into(),
        "keep".into(),
        ".hidden".into(),
        "d/b".into(),
    ] {
        fs::write(root.join(name), b"").expect("write");
    }
    symlink("x", root.join(format!(".l{TAG}"))).expect("link");
    // A directory is never a temporary file.
    fs::create_dir(root.join(format!(".m{TAG}"))).expect("dir");
    match look(&mut target, b"d") {
        Observed::Dir {
            children: Some(children),
            ..
        } => assert_eq!(
            children,
            vec![
                plumb_core::Name::new(b".b.plumb-tmp".to_vec()).expect("name"),
                plumb_core::Name::new(b"b".to_vec()).expect("name"),
            ]
        ),
        other => panic!("{other:?}"),
    }
    let asked = [p(b"a"), p(b"d/b"), p(b"l"), p(b"m"), p(b"missing/x")];
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = target
        .leftovers(&asked)
        .expect("leftovers")
        .into_iter()
        .map(|l| (l.of.as_bytes().to_vec(), l.path.as_bytes().to_vec()))
        .collect();
    found.sort();
    let want = |of: &str, at: String| (of.as_bytes().to_vec(), at.into_bytes());
    assert_eq!(
        found,
        vec![
            want("a", format!(".a{TAG}")),
            want("d/b", format!("d/.b{TAG}")),
            want("l", format!(".l{TAG}")),
        ]
    );
    target.recover(&asked).expect("recovered");
    assert_eq!(
        names_in(&root),
        [
            ".a.plumb-tmp-0123",
            ".a.plumb-tmp-0123456789ABCDEF",
            ".hidden",
            &format!(".keep{TAG}"),
            &format!(".m{TAG}"),
            "d",
            "keep",
        ]
        .map(|n| n.as_bytes().to_vec())
    );
    assert_eq!(
        names_in(&root.join("d")),
        vec![b".b.plumb-tmp".to_vec(), b"b".to_vec()]
    );
    assert_eq!(target.leftovers(&asked).expect("none left"), vec![]);
    // Idempotent.
    target.recover(&asked).expect("again");
}

/// A file named like a temporary file of old (`.NAME.plumb-tmp`) is a
/// user's file: writing `NAME` beside it leaves it alone, and the temporary
/// file that is used is gone once the write is done.
#[test]
fn a_file_named_like_a_temporary_survives_writing_beside_it() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("d")).expect("dirs");
    fs::write(root.join(".a.plumb-tmp"), b"mine\n").expect("user's file");
    fs::write(root.join("d/.l.plumb-tmp"), b"mine too\n").expect("user's file");
    let long = vec![b'n'; 250];
    let hashed = format!(".plumb-tmp-{}", &blake3::hash(&long).to_hex()[..16]);
    fs::write(root.join(&hashed), b"and this\n").expect("user's file");
    apply_ok(
        &mut target,
        &store,
        &[
            store.write(b"a", b"new a", false),
            store.write(&long, b"long", false),
            Change::Symlink {
                path: p(b"d/l"),
                target: b"a".to_vec(),
            },
        ],
    );
    assert_eq!(
        fs::read(root.join(".a.plumb-tmp")).expect("kept"),
        b"mine\n"
    );
    assert_eq!(
        fs::read(root.join("d/.l.plumb-tmp")).expect("kept"),
        b"mine too\n"
    );
    assert_eq!(fs::read(root.join(&hashed)).expect("kept"), b"and this\n");
    assert_eq!(fs::read(root.join("a")).expect("a"), b"new a");
    let mut want = vec![
        hashed.into_bytes(),
        b".a.plumb-tmp".to_vec(),
        b"a".to_vec(),
        b"d".to_vec(),
        long,
    ];
    want.sort();
    assert_eq!(names_in(&root), want, "no temporary file left");
    match look(&mut target, b"d") {
        Observed::Dir {
            children: Some(children),
            ..
        } => assert_eq!(children.len(), 2, "{children:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn read_returns_file_bytes_only() {
    let (tmp, mut target, _) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("d")).expect("dirs");
    fs::write(root.join("f"), b"content").expect("f");
    symlink("f", root.join("l")).expect("link");
    assert_eq!(target.read(&p(b"f")).expect("read"), b"content");
    for (path, why) in [
        (&b"l"[..], "is a symlink"),
        (b"d", "is a directory"),
        (b"nope", "no such file"),
        (b"f/x", "blocked"),
    ] {
        let err = target.read(&p(path)).expect_err("not a file").to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn permission_denied_is_one_line_naming_the_path() {
    if is_root() {
        eprintln!("skipped: root bypasses permissions");
        return;
    }
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("locked")).expect("dirs");
    fs::write(root.join("locked/f"), b"").expect("f");
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).expect("chmod");
    let one_line = |e: TargetError, path: &str| {
        let text = e.to_string();
        assert!(matches!(e, TargetError::Path { .. }), "{text}");
        assert!(!text.contains('\n'), "{text:?}");
        assert!(text.starts_with(path), "{text}");
        assert!(text.contains("permission denied"), "{text}");
    };
    one_line(
        observe(&mut target, b"locked/f", false, false).expect_err("denied"),
        "locked/f",
    );
    one_line(
        observe(&mut target, b"locked", false, true).expect_err("denied"),
        "locked",
    );
    one_line(
        target.read(&p(b"locked/f")).expect_err("denied"),
        "locked/f",
    );
    let outcomes = apply(
        &mut target,
        &store,
        &[store.write(b"locked/g", b"g", false)],
    )
    .expect("the target works");
    let err = outcomes[0].as_ref().expect_err("denied");
    assert!(
        err.starts_with("locked/g") && err.contains("permission denied"),
        "{err}"
    );
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn many_files_in_parallel() {
    let (tmp, mut target, store) = setup();
    let root = tmp.path().join("root");
    let dirs: Vec<Vec<u8>> = (0..20).map(|d| format!("dir{d}").into_bytes()).collect();
    let made: Vec<Change> = dirs
        .iter()
        .map(|d| Change::MakeDir {
            path: p(d),
            attrs: Default::default(),
        })
        .collect();
    apply_ok(&mut target, &store, &made);
    let mut files = Vec::new();
    for d in &dirs {
        for f in 0..100 {
            let mut path = d.clone();
            path.extend_from_slice(format!("/file{f}").as_bytes());
            let bytes = format!("{} {f}\n", String::from_utf8_lossy(d)).repeat(f + 1);
            files.push((path, bytes.into_bytes()));
        }
    }
    let changes: Vec<Change> = files
        .iter()
        .map(|(path, bytes)| store.write(path, bytes, false))
        .collect();
    apply_ok(&mut target, &store, &changes);
    let requests: Vec<ObserveRequest> = files
        .iter()
        .map(|(path, _)| ObserveRequest {
            path: p(path),
            digest: true,
            list: false,
        })
        .collect();
    let out = target.observe(&requests).expect("observed");
    for ((path, bytes), o) in files.iter().zip(out) {
        match o.expect("observable") {
            Observed::File { digest, .. } => {
                assert_eq!(digest, Some(Digest::Blob(Blob::id_of(bytes))), "{path:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names_in(&root.join("dir7")).len(), 100);
}

/// Stat-only observation of 20,000 files; run with `--ignored --nocapture`
/// (in release mode) to see the time.
#[test]
#[ignore = "a timing benchmark"]
fn observe_twenty_thousand() {
    let (tmp, mut target, _) = setup();
    let root = tmp.path().join("root");
    let mut requests = Vec::new();
    for d in 0..200 {
        let dir = root.join(format!("d{d}"));
        fs::create_dir_all(&dir).expect("dir");
        for f in 0..100 {
            fs::write(dir.join(format!("f{f}")), b"x").expect("file");
            requests.push(ObserveRequest {
                path: p(format!("d{d}/f{f}").as_bytes()),
                digest: false,
                list: false,
            });
        }
    }
    for round in 0..40 {
        let start = std::time::Instant::now();
        let out = target.observe(&requests).expect("observed");
        let took = start.elapsed();
        assert!(out.iter().all(|o| matches!(o, Ok(Observed::File { .. }))));
        eprintln!("round {round}: {} paths in {took:?}", out.len());
    }
}
