//! The target conformance suite: the [`Target`] contract checked through
//! the trait alone, so every target runs the same checks in its own tests,
//! in a line:
//!
//! ```ignore
//! fn dir_targets() -> impl FnMut() -> Box<dyn Target> {
//!     let tmp = tempfile::tempdir().expect("a temporary directory");
//!     let mut n = 0;
//!     move || {
//!         n += 1;
//!         Box::new(DirTarget::new(tmp.path().join(n.to_string())))
//!     }
//! }
//! plumb_core::target_conformance!(dir_targets());
//! ```
//!
//! Each check asks the factory for fresh, empty targets; whatever backs
//! them (a directory, a plugin's database) lives as long as the factory.

use std::time::Duration;

use sha2::Digest as _;

use super::MemoryContent;
use super::target::{apply, apply_ok, observe_one, path, request, try_observe_one};
use crate::target::{Change, Digest, DigestKind, ObserveRequest, Observed, Target, TargetError};
use crate::{Attrs, Blob, Name, Owner, ResolvedAttrs};

/// Makes a fresh, empty target for a check of the suite.
pub type TargetFactory<'a> = dyn FnMut() -> Box<dyn Target> + 'a;

/// Defines one `#[test]` per check of the target conformance suite, for
/// the targets `$make` makes (an expression evaluated by each test, giving
/// an `FnMut() -> Box<dyn Target>`; see
/// [`TargetFactory`](crate::testing::target_suite::TargetFactory)).
#[macro_export]
macro_rules! target_conformance {
    ($make:expr) => {
        #[test]
        fn observe_answers_every_request_in_order() {
            $crate::testing::target_suite::observe_answers_every_request_in_order(&mut $make);
        }

        #[test]
        fn observe_is_read_only() {
            $crate::testing::target_suite::observe_is_read_only(&mut $make);
        }

        #[test]
        fn apply_confirms_each_change_once() {
            $crate::testing::target_suite::apply_confirms_each_change_once(&mut $make);
        }

        #[test]
        fn files_round_trip() {
            $crate::testing::target_suite::files_round_trip(&mut $make);
        }

        #[test]
        fn symlinks_round_trip() {
            $crate::testing::target_suite::symlinks_round_trip(&mut $make);
        }

        #[test]
        fn directories_round_trip() {
            $crate::testing::target_suite::directories_round_trip(&mut $make);
        }

        #[test]
        fn changes_are_idempotent() {
            $crate::testing::target_suite::changes_are_idempotent(&mut $make);
        }

        #[test]
        fn a_change_under_a_blocked_path_fails_alone() {
            $crate::testing::target_suite::a_change_under_a_blocked_path_fails_alone(&mut $make);
        }

        #[test]
        fn tokens_are_stable_until_the_file_changes() {
            $crate::testing::target_suite::tokens_are_stable_until_the_file_changes(&mut $make);
        }

        #[test]
        fn recover_is_idempotent_and_changes_nothing() {
            $crate::testing::target_suite::recover_is_idempotent_and_changes_nothing(&mut $make);
        }

        #[test]
        fn attributes_are_applied_and_observed() {
            $crate::testing::target_suite::attributes_are_applied_and_observed(&mut $make);
        }
    };
}

/// The digest a target of `kind` gives for `bytes`.
fn digest(kind: DigestKind, bytes: &[u8]) -> Digest {
    match kind {
        DigestKind::Blob => Digest::Blob(Blob::id_of(bytes)),
        DigestKind::Sha256 => Digest::Sha256(sha2::Sha256::digest(bytes).into()),
    }
}

/// A file as a target of `kind` shows it when asked for its digest (the
/// token aside).
fn file(kind: DigestKind, bytes: &[u8], executable: bool) -> Observed {
    Observed::File {
        size: bytes.len() as u64,
        executable,
        digest: Some(digest(kind, bytes)),
        token: None,
        attrs: ResolvedAttrs::default(),
    }
}

/// `observed` without its change token, which a target may withhold, and
/// without attributes, which only some targets report (checked by
/// [`attributes_are_applied_and_observed`]).
fn untokened(observed: Observed) -> Observed {
    match observed {
        Observed::File {
            size,
            executable,
            digest,
            ..
        } => Observed::File {
            size,
            executable,
            digest,
            token: None,
            attrs: ResolvedAttrs::default(),
        },
        Observed::Dir { children, .. } => Observed::Dir {
            children,
            attrs: ResolvedAttrs::default(),
        },
        other => other,
    }
}

/// The attributes observed at a path.
fn attrs_at(target: &mut dyn Target, at: &[u8]) -> ResolvedAttrs {
    match observe_one(target, request(at, false, false)) {
        Observed::File { attrs, .. } | Observed::Dir { attrs, .. } => attrs,
        other => panic!("{at:?}: no file or directory: {other:?}"),
    }
}

/// Observes one path with its digest and listing, token aside.
fn look(target: &mut dyn Target, at: &[u8]) -> Observed {
    untokened(observe_one(target, request(at, true, true)))
}

fn symlink(at: &[u8], to: &[u8]) -> Change {
    Change::Symlink {
        path: path(at),
        target: to.to_vec(),
    }
}

fn make_dir(at: &[u8]) -> Change {
    make_dir_with(at, ResolvedAttrs::default())
}

fn make_dir_with(at: &[u8], attrs: ResolvedAttrs) -> Change {
    Change::MakeDir {
        path: path(at),
        attrs,
    }
}

fn remove(at: &[u8]) -> Change {
    Change::Remove { path: path(at) }
}

fn remove_dir(at: &[u8]) -> Change {
    Change::RemoveDir { path: path(at) }
}

fn dir(children: &[&[u8]]) -> Observed {
    let children = children
        .iter()
        .map(|n| Name::new(n.to_vec()).expect("a valid name"))
        .collect();
    Observed::Dir {
        children: Some(children),
        attrs: ResolvedAttrs::default(),
    }
}

fn blocked_at(observed: &Observed) -> Option<&[u8]> {
    match observed {
        Observed::Blocked { at, .. } => Some(at.as_bytes()),
        _ => None,
    }
}

/// Observe answers every request, in order, one answer each: duplicates,
/// missing paths, paths below a file or a symlink, and a long batch in no
/// particular order.
pub fn observe_answers_every_request_in_order(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let kind = target.digest_kind();
    let content = MemoryContent::new();
    apply_ok(&mut *target, &content, &[make_dir(b"d")]);
    apply_ok(
        &mut *target,
        &content,
        &[
            content.write(b"a", b"1", false),
            content.write(b"b", b"22", true),
            content.write(b"d/f", b"333", false),
            symlink(b"l", b"a"),
        ],
    );
    let requests = [
        request(b"b", true, false),
        request(b"missing", true, true),
        request(b"a", true, false),
        request(b"d", false, true),
        request(b"l", true, true),
        request(b"a", true, true),
        request(b"d/f", true, false),
        request(b"missing/deeper", false, false),
        request(b"a/below", false, false),
        request(b"l/below", false, false),
        request(b"b", true, false),
    ];
    let got: Vec<Observed> = target
        .observe(&requests)
        .expect("observe")
        .into_iter()
        .map(|r| untokened(r.expect("observable")))
        .collect();
    assert_eq!(got.len(), requests.len(), "one answer per request");
    assert_eq!(got[0], file(kind, b"22", true));
    assert_eq!(got[1], Observed::Missing);
    assert_eq!(got[2], file(kind, b"1", false));
    assert_eq!(got[3], dir(&[b"f"]));
    assert_eq!(
        got[4],
        Observed::Symlink {
            target: b"a".to_vec()
        }
    );
    assert_eq!(got[5], file(kind, b"1", false));
    assert_eq!(got[6], file(kind, b"333", false));
    assert_eq!(got[7], Observed::Missing);
    assert_eq!(blocked_at(&got[8]), Some(&b"a"[..]), "{:?}", got[8]);
    assert_eq!(blocked_at(&got[9]), Some(&b"l"[..]), "{:?}", got[9]);
    assert_eq!(got[10], got[0]);

    // Many paths, present and missing, in no particular order.
    let changes: Vec<Change> = (0..50)
        .map(|i| content.write(format!("n{i}").as_bytes(), &vec![b'x'; i + 1], false))
        .collect();
    apply_ok(&mut *target, &content, &changes);
    let order: Vec<usize> = (0..100).map(|i| (i * 37) % 100).collect();
    let requests: Vec<ObserveRequest> = order
        .iter()
        .map(|i| request(format!("n{i}").as_bytes(), false, false))
        .collect();
    let got = target.observe(&requests).expect("observe");
    assert_eq!(got.len(), requests.len(), "one answer per request");
    for (i, answer) in order.iter().zip(got) {
        match answer.expect("observable") {
            Observed::File { size, .. } if *i < 50 => assert_eq!(size, *i as u64 + 1, "n{i}"),
            Observed::Missing if *i >= 50 => {}
            other => panic!("n{i}: {other:?}"),
        }
    }
}

/// Observing and reading change nothing: missing paths stay missing (and
/// their parents are not made), and what is there looks the same however
/// often it is looked at.
pub fn observe_is_read_only(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    let nothing = [&b"x"[..], b"x/y/z", b"d"];
    for _ in 0..2 {
        for at in nothing {
            assert_eq!(look(&mut *target, at), Observed::Missing, "{at:?}");
            assert!(target.read(&path(at)).is_err(), "{at:?} is no file");
        }
    }
    apply_ok(&mut *target, &content, &[make_dir(b"d")]);
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"d/f", b"data", true), symlink(b"l", b"d/f")],
    );
    let paths = [&b"d"[..], b"d/f", b"l", b"d/f/x", b"l/x", b"d/none/x"];
    let first: Vec<Observed> = paths.iter().map(|p| look(&mut *target, p)).collect();
    for _ in 0..2 {
        assert_eq!(target.read(&path(b"d/f")).expect("a file"), b"data");
        let again: Vec<Observed> = paths.iter().map(|p| look(&mut *target, p)).collect();
        assert_eq!(again, first);
    }
    assert_eq!(first[0], dir(&[b"f"]), "observing made nothing");
    assert_eq!(look(&mut *target, b"d/none"), Observed::Missing);
}

/// Apply reports every change once, with its own outcome, whether it
/// succeeded or failed; an empty apply reports nothing.
pub fn apply_confirms_each_change_once(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    let (outcomes, result) = apply(&mut *target, &content, &[]);
    result.expect("an empty apply");
    assert!(outcomes.is_empty());

    let mut changes = Vec::new();
    for i in 0..20 {
        changes.push(make_dir(format!("d{i}").as_bytes()));
        changes.push(content.write(format!("f{i}").as_bytes(), format!("{i}").as_bytes(), false));
        changes.push(symlink(format!("l{i}").as_bytes(), b"f0"));
    }
    let (outcomes, result) = apply(&mut *target, &content, &changes);
    result.expect("the target works");
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o, &Some(Ok(())), "change {i}: {:?}", changes[i]);
    }

    // Some fail (a directory where a file is, a file where a directory
    // is): each is reported once, the others succeed.
    let changes = [
        make_dir(b"f1"),
        content.write(b"g", b"g", false),
        content.write(b"d1", b"in the way", false),
        make_dir(b"e"),
    ];
    let (outcomes, result) = apply(&mut *target, &content, &changes);
    result.expect("apply goes on after path errors");
    assert!(matches!(outcomes[0], Some(Err(_))), "{outcomes:?}");
    assert_eq!(outcomes[1], Some(Ok(())));
    assert!(matches!(outcomes[2], Some(Err(_))), "{outcomes:?}");
    assert_eq!(outcomes[3], Some(Ok(())));
}

/// A written file reads back with its size, executable bit, digest (of
/// the target's kind) and bytes; rewriting changes each; removing it
/// leaves nothing.
pub fn files_round_trip(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let kind = target.digest_kind();
    let content = MemoryContent::new();
    let versions: [(&[u8], bool); 5] = [
        (b"port = 8080\n", false),
        (b"#!/bin/sh\n\0binary\xff and longer\n", true),
        (b"#!/bin/sh\n\0binary\xff and longer\n", false),
        (b"", false),
        (b"shorter", true),
    ];
    for (bytes, executable) in versions {
        apply_ok(
            &mut *target,
            &content,
            &[content.write(b"f", bytes, executable)],
        );
        assert_eq!(look(&mut *target, b"f"), file(kind, bytes, executable));
        assert_eq!(target.read(&path(b"f")).expect("a file"), bytes);
    }
    apply_ok(&mut *target, &content, &[remove(b"f")]);
    assert_eq!(look(&mut *target, b"f"), Observed::Missing);
    match target.read(&path(b"f")) {
        Err(TargetError::Path { path: at, .. }) => assert_eq!(at, path(b"f")),
        other => panic!("reading a missing file: {other:?}"),
    }
}

/// A symlink is kept as its target's bytes, never followed (dangling or
/// not UTF-8 alike), and replaces a file or is replaced by one.
pub fn symlinks_round_trip(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let kind = target.digest_kind();
    let content = MemoryContent::new();
    for to in [&b"no/such/place"[..], b"../\xfe\xff", b"f"] {
        apply_ok(&mut *target, &content, &[symlink(b"l", to)]);
        assert_eq!(
            look(&mut *target, b"l"),
            Observed::Symlink {
                target: to.to_vec()
            }
        );
        assert!(target.read(&path(b"l")).is_err(), "a symlink is no file");
    }
    // A file replaces the symlink, and a symlink the file.
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"l", b"now a file", false)],
    );
    assert_eq!(look(&mut *target, b"l"), file(kind, b"now a file", false));
    apply_ok(&mut *target, &content, &[symlink(b"l", b"elsewhere")]);
    assert_eq!(
        look(&mut *target, b"l"),
        Observed::Symlink {
            target: b"elsewhere".to_vec()
        }
    );
    apply_ok(&mut *target, &content, &[remove(b"l")]);
    assert_eq!(look(&mut *target, b"l"), Observed::Missing);
}

/// Directories are made (again: fine), list their names sorted, refuse
/// removal while not empty (that change alone), and are removed when
/// empty; removing what is not there is fine.
pub fn directories_round_trip(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    apply_ok(&mut *target, &content, &[make_dir(b"d"), make_dir(b"e")]);
    apply_ok(&mut *target, &content, &[make_dir(b"d")]);
    apply_ok(&mut *target, &content, &[make_dir(b"d/sub")]);
    assert_eq!(look(&mut *target, b"e"), dir(&[]));
    assert!(target.read(&path(b"d")).is_err(), "a directory is no file");
    apply_ok(
        &mut *target,
        &content,
        &[
            content.write(b"d/b", b"b", false),
            content.write(b"d/a", b"a", false),
            symlink(b"d/c", b"a"),
        ],
    );
    assert_eq!(look(&mut *target, b"d"), dir(&[b"a", b"b", b"c", b"sub"]));
    assert_eq!(
        untokened(observe_one(&mut *target, request(b"d", false, false))),
        Observed::Dir {
            children: None,
            attrs: ResolvedAttrs::default()
        },
        "listed only when asked"
    );

    let changes = [remove_dir(b"d"), content.write(b"x", b"x", false)];
    let (outcomes, result) = apply(&mut *target, &content, &changes);
    result.expect("apply goes on after path errors");
    assert!(matches!(outcomes[0], Some(Err(_))), "{outcomes:?}");
    assert_eq!(outcomes[1], Some(Ok(())));
    assert_eq!(look(&mut *target, b"d"), dir(&[b"a", b"b", b"c", b"sub"]));

    apply_ok(
        &mut *target,
        &content,
        &[
            remove(b"d/a"),
            remove(b"d/b"),
            remove(b"d/c"),
            remove_dir(b"d/sub"),
            remove(b"never"),
            remove_dir(b"nowhere"),
        ],
    );
    apply_ok(
        &mut *target,
        &content,
        &[remove_dir(b"d"), remove_dir(b"e")],
    );
    for at in [&b"d"[..], b"d/a", b"d/sub", b"e"] {
        assert_eq!(look(&mut *target, at), Observed::Missing, "{at:?}");
    }
}

/// Making a change that is already made succeeds and changes nothing.
pub fn changes_are_idempotent(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    let made = [
        content.write(b"f", b"content", true),
        symlink(b"l", b"f"),
        make_dir(b"d"),
    ];
    let removed = [remove(b"f"), remove(b"l"), remove_dir(b"d")];
    apply_ok(&mut *target, &content, &made);
    let paths = [&b"f"[..], b"l", b"d"];
    let first: Vec<Observed> = paths.iter().map(|p| look(&mut *target, p)).collect();
    apply_ok(&mut *target, &content, &made);
    let again: Vec<Observed> = paths.iter().map(|p| look(&mut *target, p)).collect();
    assert_eq!(again, first);
    for _ in 0..2 {
        apply_ok(&mut *target, &content, &removed);
        for at in paths {
            assert_eq!(look(&mut *target, at), Observed::Missing, "{at:?}");
        }
    }
}

/// A change below a file or a symlink fails, alone: the others in the same
/// apply are made, and nothing is made through the symlink.
pub fn a_change_under_a_blocked_path_fails_alone(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"f", b"file", false), make_dir(b"d")],
    );
    apply_ok(&mut *target, &content, &[symlink(b"l", b"d")]);
    let changes = [
        content.write(b"f/x", b"x", false),
        content.write(b"l/x", b"x", false),
        make_dir(b"f/sub"),
        symlink(b"l/s", b"f"),
        content.write(b"ok", b"ok", false),
        content.write(b"d/ok", b"ok", false),
    ];
    let (outcomes, result) = apply(&mut *target, &content, &changes);
    result.expect("apply goes on after path errors");
    for (i, o) in outcomes.iter().enumerate() {
        if i < 4 {
            assert!(matches!(o, Some(Err(_))), "change {i}: {o:?}");
        } else {
            assert_eq!(o, &Some(Ok(())), "change {i}");
        }
    }
    for (at, blocker) in [(&b"f/x"[..], &b"f"[..]), (b"l/x", b"l"), (b"l/s", b"l")] {
        let seen = look(&mut *target, at);
        assert_eq!(blocked_at(&seen), Some(blocker), "{at:?}: {seen:?}");
        assert!(target.read(&path(at)).is_err(), "{at:?} is blocked");
    }
    assert_eq!(
        look(&mut *target, b"d"),
        dir(&[b"ok"]),
        "nothing went through l"
    );
    assert_eq!(
        look(&mut *target, b"l"),
        Observed::Symlink {
            target: b"d".to_vec()
        }
    );
}

/// A change token, once given, stays the same while the file does, and
/// differs once its content changed: equal tokens promise equal content.
pub fn tokens_are_stable_until_the_file_changes(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    let token = |target: &mut dyn Target| {
        std::thread::sleep(target.settle_time() + Duration::from_millis(5));
        match observe_one(target, request(b"f", false, false)) {
            Observed::File { token, .. } => token,
            other => panic!("expected a file, got {other:?}"),
        }
    };
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"f", b"one", false)],
    );
    let first = token(&mut *target);
    assert_eq!(token(&mut *target), first, "unchanged file, same token");
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"f", b"two!", false)],
    );
    let second = token(&mut *target);
    if first.is_some() && second.is_some() {
        assert_ne!(first, second, "changed content, another token");
    }
}

/// Recover accepts any paths, pending or not, any number of times, and
/// leaves what is there alone.
pub fn recover_is_idempotent_and_changes_nothing(make: &mut TargetFactory<'_>) {
    let mut target = make();
    let content = MemoryContent::new();
    apply_ok(&mut *target, &content, &[make_dir(b"d")]);
    apply_ok(
        &mut *target,
        &content,
        &[content.write(b"d/f", b"kept", false)],
    );
    let before = (look(&mut *target, b"d"), look(&mut *target, b"d/f"));
    for _ in 0..2 {
        target
            .recover(&[path(b"d/f"), path(b"d"), path(b"x/y")])
            .expect("recover");
        target.recover(&[]).expect("recover nothing");
    }
    let after = (look(&mut *target, b"d"), look(&mut *target, b"d/f"));
    assert_eq!(after, before);
    assert_eq!(
        try_observe_one(&mut *target, request(b"x", false, false)).expect("observable"),
        Observed::Missing
    );
}

/// A target that supports attributes applies those a change sets and
/// reports them: files and directories get the mode, owner and group
/// asked for; without a mode, a new file is 0644 or 0755 and a new
/// directory 0755; an update keeps the replaced file's mode apart from
/// the execute bits; an unknown owner name is refused when resolved.
/// (Owner and group are the running user's own, which any user may set.)
pub fn attributes_are_applied_and_observed(make: &mut TargetFactory<'_>) {
    let mut target = make();
    if !target.supports_attrs() {
        return;
    }
    let content = MemoryContent::new();
    let probe = tempfile::NamedTempFile::new().expect("a temporary file");
    let meta = std::os::unix::fs::MetadataExt::uid(&probe.as_file().metadata().expect("stat"));
    let gid = std::os::unix::fs::MetadataExt::gid(&probe.as_file().metadata().expect("stat"));
    let me = |mode: u32| ResolvedAttrs {
        mode: Some(mode),
        uid: Some(meta),
        gid: Some(gid),
    };
    let resolved = target
        .resolve_attrs(&Attrs {
            mode: Some(0o640),
            owner: Some(Owner::Id(meta)),
            group: Some(Owner::Id(gid)),
        })
        .expect("one's own uid and gid resolve");
    assert_eq!(resolved, me(0o640));
    assert!(
        target
            .resolve_attrs(&Attrs {
                owner: Some(Owner::Name("plumb-no-such-user".into())),
                ..Attrs::default()
            })
            .is_err(),
        "an unknown user is refused when resolved"
    );

    apply_ok(
        &mut *target,
        &content,
        &[
            content.write_with(b"secret", b"s", false, me(0o600)),
            content.write_with(b"tool", b"t", true, me(0o750)),
            content.write(b"plain", b"p", false),
            content.write(b"exec", b"e", true),
            make_dir_with(b"private", me(0o700)),
            make_dir(b"public"),
        ],
    );
    for (at, mode) in [
        (&b"secret"[..], 0o600),
        (b"tool", 0o750),
        (b"plain", 0o644),
        (b"exec", 0o755),
        (b"private", 0o700),
        (b"public", 0o755),
    ] {
        assert_eq!(attrs_at(&mut *target, at), me(mode), "{at:?}");
    }

    // Updates without a mode keep the one found, execute bits aside.
    apply_ok(
        &mut *target,
        &content,
        &[
            content.write(b"secret", b"s2", true),
            content.write(b"tool", b"t2", false),
            make_dir(b"private"),
        ],
    );
    assert_eq!(attrs_at(&mut *target, b"secret"), me(0o700));
    assert_eq!(attrs_at(&mut *target, b"tool"), me(0o640));
    assert_eq!(attrs_at(&mut *target, b"private"), me(0o700));

    // Attributes set on what is already there.
    apply_ok(
        &mut *target,
        &content,
        &[
            make_dir_with(b"public", me(0o750)),
            content.write_with(b"plain", b"p", false, me(0o400)),
        ],
    );
    assert_eq!(attrs_at(&mut *target, b"public"), me(0o750));
    assert_eq!(attrs_at(&mut *target, b"plain"), me(0o400));
}
