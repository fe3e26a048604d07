//! End-to-end tests of Git sources: repositories built with the real `git`
//! program, ingested by the `plumb` binary, and checked commit by commit
//! against what `git` itself says.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::{Env, json_bytes};
use plumb_testutils::cli::split_z;
use plumb_testutils::fixture;
use plumb_testutils::fs::is_root;
use plumb_testutils::git::GitRepo as Repo;

/// One tree entry as `git ls-tree -r -z` reports it.
struct GitEntry {
    mode: String,
    kind: String,
    oid: String,
    path: Vec<u8>,
}

fn ls_tree(repo: &Repo, treeish: &str) -> Vec<GitEntry> {
    let out = repo.git(&["ls-tree", "-r", "-z", treeish]);
    out.split(|&b| b == 0)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let tab = r.iter().position(|&b| b == b'\t').unwrap();
            let head = std::str::from_utf8(&r[..tab]).unwrap();
            let mut parts = head.split(' ');
            GitEntry {
                mode: parts.next().unwrap().to_owned(),
                kind: parts.next().unwrap().to_owned(),
                oid: parts.next().unwrap().to_owned(),
                path: r[tab + 1..].to_vec(),
            }
        })
        .collect()
}

fn arg(parts: &[&[u8]]) -> OsString {
    OsStr::from_bytes(&parts.concat()).to_owned()
}

fn plumb_bytes(env: &Env, args: &[OsString]) -> Vec<u8> {
    let out = env.cmd(&[]).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "plumb {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The source's log as revision → (snapshot id, the log entry).
fn log_by_revision(env: &Env, name: &str) -> (Vec<String>, HashMap<String, serde_json::Value>) {
    let log = env.ok_json(&["log", name, "--json"])["snapshots"].clone();
    let mut order = Vec::new();
    let mut map = HashMap::new();
    for e in log.as_array().unwrap() {
        let rev = e["revision"].as_str().unwrap().to_owned();
        order.push(rev.clone());
        map.insert(rev, e.clone());
    }
    (order, map)
}

fn iso(s: &str) -> String {
    s.strip_suffix('Z')
        .map_or_else(|| s.to_owned(), |t| format!("{t}+00:00"))
}

/// The oracle: every commit in `commits` is a snapshot whose files, kinds,
/// contents, parents, people and message are what `git` says; the log is
/// parents-first. `subdir` scopes the comparison like `--path`.
fn check_source(
    env: &Env,
    name: &str,
    repo: &Repo,
    scheme: &str,
    commits: &[String],
    subdir: Option<&str>,
) {
    let (order, by_rev) = log_by_revision(env, name);
    assert_eq!(order.len(), commits.len(), "snapshot count of {name}");
    let id_to_rev: HashMap<String, String> = by_rev
        .iter()
        .map(|(r, e)| (e["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let position: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_str(), i))
        .collect();
    for sha in commits {
        let rev = format!("{scheme}{sha}");
        let entry = by_rev
            .get(&rev)
            .unwrap_or_else(|| panic!("{rev} not ingested"));

        // Files: names, kinds and bytes.
        let treeish = match subdir {
            Some(d) => format!("{sha}:{d}"),
            None => sha.clone(),
        };
        let exists = repo
            .command(&["cat-file", "-e", &treeish])
            .output()
            .unwrap()
            .status
            .success();
        let entries = if exists {
            ls_tree(repo, &treeish)
        } else {
            Vec::new()
        };
        let want: BTreeSet<Vec<u8>> = entries.iter().map(|e| e.path.clone()).collect();
        let target = format!("{name}@{sha}");
        let got = split_z(&env.ok(&["ls", "-r", "-z", &target]));
        assert_eq!(got, want, "files of {sha}");
        let listed = env.ok_json(&["ls", "-r", "--json", &target])["entries"].clone();
        let kinds: HashMap<Vec<u8>, String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    json_bytes(&e["path"]),
                    e["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for e in &entries {
            let lossy = String::from_utf8_lossy(&e.path).into_owned();
            let kind = match (e.mode.as_str(), e.kind.as_str()) {
                ("100644", "blob") => "file",
                ("100755", "blob") => "exec",
                ("120000", "blob") => "link",
                ("160000", "commit") => "submodule",
                other => panic!("unexpected git entry {other:?}"),
            };
            assert_eq!(kinds[&e.path], kind, "kind of {lossy} in {sha}");
            if e.kind == "commit" {
                let id = listed
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| json_bytes(&x["path"]) == e.path)
                    .unwrap()["id"]
                    .clone();
                assert_eq!(id, format!("{scheme}{}", e.oid).as_str());
                continue;
            }
            let want = repo.git(&["cat-file", "blob", &e.oid]);
            let got = plumb_bytes(
                env,
                &["cat".into(), arg(&[target.as_bytes(), b":", &e.path])],
            );
            assert!(got == want, "content of {lossy} in {sha}");
        }

        // Parents, in order, recorded before the child.
        let git_parents: Vec<String> = repo
            .text(&["rev-list", "--parents", "-n1", sha])
            .split(' ')
            .skip(1)
            .map(|p| format!("{scheme}{p}"))
            .collect();
        let parents: Vec<String> = entry["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| id_to_rev[p.as_str().unwrap()].clone())
            .collect();
        assert_eq!(parents, git_parents, "parents of {sha}");
        for p in &parents {
            assert!(position[p.as_str()] > position[rev.as_str()], "log order");
        }

        // People and message.
        let fmt = repo.text(&["log", "-1", "--format=%an%n%ae%n%aI%n%cn%n%ce%n%cI", sha]);
        let want: Vec<String> = fmt.lines().map(iso).collect();
        let got = [
            entry["author"]["name"].as_str().unwrap().to_owned(),
            entry["author"]["email"].as_str().unwrap().to_owned(),
            iso(entry["author"]["time"].as_str().unwrap()),
            entry["committer"]["name"].as_str().unwrap().to_owned(),
            entry["committer"]["email"].as_str().unwrap().to_owned(),
            iso(entry["committer"]["time"].as_str().unwrap()),
        ];
        let got: Vec<String> = got.iter().map(|s| iso(s)).collect();
        assert_eq!(got, want, "people of {sha}");
        let raw = repo.git(&["cat-file", "commit", sha]);
        let at = raw.windows(2).position(|w| w == b"\n\n").unwrap();
        assert_eq!(
            entry["message"].as_str().unwrap(),
            String::from_utf8_lossy(&raw[at + 2..]),
            "message of {sha}"
        );
    }
}

#[derive(Clone)]
struct Rich {
    repo: Repo,
    /// Commit with the hand-made signature.
    signed: String,
    /// The payload that signature covers.
    signed_payload: Vec<u8>,
    merge: String,
    /// A commit only a tag reaches.
    tagged_only: String,
}

const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEEplumbtestsignaturenotreal\n=abcd\n-----END PGP SIGNATURE-----";

/// A copy of [`build_rich`]'s repository at `env/rich`.
fn rich(env: &Env) -> Rich {
    let (_, built) = fixture::cached("git-rich", build_rich);
    Rich {
        repo: built.repo.copy_to(env, "rich"),
        ..built
    }
}

/// A repository exercising every kind of entry and history shape: exec
/// bits, symlinks, an empty file, an LFS pointer, a non-UTF-8 name, a
/// rename, a submodule, a branch and merge, annotated and lightweight
/// tags, a commit only a tag reaches, and a signed commit with extra
/// headers and a `-0000` zone; at `dir/rich`.
fn build_rich(dir: &Path) -> Rich {
    let repo = Repo::init(dir, "rich", &[]);
    repo.write("README", b"hello\n");
    repo.write("app.conf", b"port = 8080\n");
    repo.write("empty", b"");
    repo.write(
        "big.bin",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
    );
    repo.write(OsStr::from_bytes(b"caf\xe9.conf"), b"latin-1 name\n");
    repo.write("run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        repo.dir.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.conf", repo.dir.join("link")).unwrap();
    let first = repo.commit("first\n\nwith a body\n");

    repo.write("conf.d/x.yaml", b"k: v\n");
    repo.write("conf.d/deep/er/z.ini", b"[z]\n");
    repo.write("app.conf", b"port = 9090\n");
    repo.commit("add conf.d");

    repo.git(&["mv", "conf.d/x.yaml", "conf.d/y.yaml"]);
    repo.commit("rename");

    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("feature.conf", b"on = true\n");
    repo.commit("feature 1");
    repo.write("conf.d/feature.yaml", b"f: 1\n");
    repo.commit("feature 2");

    repo.git(&["checkout", "-q", "main"]);
    std::fs::set_permissions(
        repo.dir.join("run.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{first},vendor/lib"),
    ]);
    repo.commit("exec bit off, submodule");
    repo.git(&["tag", "lw"]);
    repo.git(&["merge", "-q", "--no-ff", "-m", "merge feature", "feature"]);
    let merge = repo.text(&["rev-parse", "HEAD"]);
    repo.git(&["tag", "-a", "-m", "release 1.0", "v1.0"]);

    // A commit only a tag reaches.
    repo.git(&["checkout", "-q", "-b", "tmp"]);
    repo.write("tmp.conf", b"tmp\n");
    let tagged_only = repo.commit("only tagged");
    repo.git(&["tag", "-a", "-m", "pre-release", "v0.9"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["branch", "-q", "-D", "tmp"]);

    // A signed commit, made by hand: no keys needed.
    let tree = repo.text(&["rev-parse", "HEAD^{tree}"]);
    let head = repo.text(&["rev-parse", "HEAD"]);
    let people = "author Signer <signer@example.org> 1700001000 -0000\n\
                  committer Signer <signer@example.org> 1700001000 +0530\n";
    let folded: String = SIGNATURE.replace('\n', "\n ");
    let body = "encoding UTF-8\n";
    let message = "signed commit\n";
    let commit = format!("tree {tree}\nparent {head}\n{people}{body}gpgsig {folded}\n\n{message}");
    let signed = repo.hash_object("commit", &commit);
    repo.git(&["update-ref", "refs/heads/main", &signed]);
    repo.git(&["reset", "-q", "--hard"]);
    let signed_payload =
        format!("tree {tree}\nparent {head}\n{people}{body}\n{message}").into_bytes();

    // A signed annotated tag of it, made by hand too.
    let tag_payload = format!(
        "object {signed}\ntype commit\ntag v2.0\n\
         tagger Tagger <tagger@example.org> 1700002000 +0100\n\nsigned release\n\nnotes\n"
    );
    let tag = format!("{tag_payload}{SIGNATURE}\n");
    let tag_id = repo.hash_object("tag", &tag);
    repo.git(&["update-ref", "refs/tags/v2.0", &tag_id]);

    std::fs::remove_file(repo.dir.join("link")).unwrap();
    std::os::unix::fs::symlink("../nowhere", repo.dir.join("link")).unwrap();
    std::fs::remove_dir_all(repo.dir.join("conf.d")).unwrap();
    repo.commit("dangling link, no conf.d");
    Rich {
        repo,
        signed,
        signed_payload,
        merge,
        tagged_only,
    }
}

fn add(env: &Env, name: &str, location: &Path, extra: &[&str]) {
    let mut args = vec!["source", "add", name, location.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.ok(&args);
}

#[test]
fn every_commit_matches_git() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    add(&env, "app", &rich.repo.dir, &[]);
    let out = env.ok_text(&["ingest", "app"]);
    let commits = rich.repo.rev_list(&["HEAD"]);
    assert!(
        out.contains(&format!("app: {} new snapshots", commits.len())),
        "{out}"
    );
    check_source(&env, "app", &rich.repo, "git:sha1:", &commits, None);
    // The tag-only commit is not on HEAD's history.
    assert!(!commits.contains(&rich.tagged_only));

    // The merge keeps both parents; the signed commit keeps its headers,
    // in order, and the payload its signature covers.
    let merge = env.ok_json(&["show", &format!("app@{}", rich.merge), "--json"]);
    assert_eq!(merge["parents"].as_array().unwrap().len(), 2);
    let signed = env.ok_json(&["show", &format!("app@{}", rich.signed), "--json"]);
    let extra: Vec<(String, String)> = signed["extra"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = extra.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["encoding", "gpgsig", "git.raw-author", "git.signed-payload"]
    );
    assert_eq!(extra[0].1, "UTF-8");
    assert_eq!(extra[1].1, SIGNATURE);
    assert_eq!(extra[2].1, "Signer <signer@example.org> 1700001000 -0000");
    assert_eq!(extra[3].1.as_bytes(), rich.signed_payload);
    // The payload is the commit minus its signature header.
    let raw = rich.repo.git(&["cat-file", "commit", &rich.signed]);
    assert!(raw.len() > rich.signed_payload.len());
    assert_eq!(
        signed["committer"]["time"].as_str().unwrap(),
        "2023-11-15T04:00:00+05:30"
    );

    // Symlinks are links: the target, not the file.
    let link = rich.repo.rev_list(&["HEAD~1"])[0].clone();
    assert_eq!(env.ok(&["cat", &format!("app@{link}:link")]), b"app.conf");
    assert_eq!(env.ok(&["cat", "app@latest:link"]), b"../nowhere");
    env.ok(&["fsck"]);
}

#[test]
fn refs_tags_and_globs() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    add(
        &env,
        "tags",
        &rich.repo.dir,
        &["--ref", "main", "--ref", "refs/tags/v*", "--ref", "lw"],
    );
    env.ok(&["ingest", "tags"]);
    let commits = rich.repo.rev_list(&["main", "v0.9", "v1.0", "v2.0", "lw"]);
    check_source(&env, "tags", &rich.repo, "git:sha1:", &commits, None);
    assert!(commits.contains(&rich.tagged_only));
    // Tagged commits resolve by hash and by tag name, short or full.
    let v09 = rich.repo.text(&["rev-parse", "v0.9^{commit}"]);
    env.ok(&["cat", &format!("tags@{v09}:tmp.conf")]);
    assert_eq!(env.ok(&["cat", "tags@v0.9:tmp.conf"]), b"tmp\n");
    let show = |rev: &str| env.ok_json(&["show", rev, "--json"])["revision"].clone();
    assert_eq!(
        show("tags@refs/tags/v1.0"),
        format!("git:sha1:{}", rich.merge).as_str()
    );
    let lw = rich.repo.text(&["rev-parse", "lw"]);
    assert_eq!(show("tags@lw"), format!("git:sha1:{lw}").as_str());

    // Annotated tags keep their tag object: tagger, message, and for a
    // signed one the signature and the bytes it covers, as Git has them.
    let ref_at = |rev: &str, name: &str| {
        let refs = env.ok_json(&["show", rev, "--json"])["refs"].clone();
        let found = refs.as_array().unwrap().iter().find(|r| r["name"] == name);
        found
            .unwrap_or_else(|| panic!("{name} not in {refs}"))
            .clone()
    };
    let v10 = ref_at("tags@v1.0", "refs/tags/v1.0");
    let field = |tag: &str, format: &str| {
        rich.repo.text(&[
            "for-each-ref",
            &format!("--format={format}"),
            &format!("refs/tags/{tag}"),
        ])
    };
    assert_eq!(v10["source"], "tags");
    assert_eq!(
        v10["tag"]["object"],
        field("v1.0", "%(*objectname)").as_str()
    );
    assert_eq!(v10["tag"]["name"], "v1.0");
    assert_eq!(v10["tag"]["message"], "release 1.0\n");
    assert_eq!(
        v10["tag"]["tagger"]["name"],
        field("v1.0", "%(taggername)").as_str()
    );
    assert_eq!(v10["tag"]["signature"], serde_json::Value::Null);
    let v20 = ref_at("tags@v2.0", "refs/tags/v2.0");
    assert_eq!(v20["tag"]["message"], "signed release\n\nnotes\n");
    assert_eq!(v20["tag"]["tagger"]["time"], "2023-11-14T23:46:40+01:00");
    assert_eq!(
        v20["tag"]["signature"],
        field("v2.0", "%(contents:signature)").as_str().to_owned() + "\n"
    );
    let raw = rich.repo.git(&["cat-file", "tag", "v2.0"]);
    let payload = v20["tag"]["signed_payload"].as_str().unwrap();
    assert_eq!(format!("{payload}{SIGNATURE}\n").as_bytes(), raw);
    // The text form says so on one line; a lightweight tag has no
    // annotation.
    let text = String::from_utf8(env.ok(&["show", "tags@v2.0"])).unwrap();
    assert!(
        text.contains("ref       refs/tags/v2.0 (tag by Tagger <tagger@example.org> 2023-11-14T23:46:40+01:00, signed): signed release\n"),
        "{text}"
    );
    let lw_ref = ref_at("tags@lw", "refs/tags/lw");
    assert_eq!(lw_ref["annotation"], serde_json::Value::Null);
    // Annotations survive gc, and fsck checks them.
    env.ok(&["gc"]);
    env.ok(&["fsck"]);
    assert_eq!(ref_at("tags@v2.0", "refs/tags/v2.0"), v20);
    let main = rich.repo.text(&["rev-parse", "main"]);
    assert_eq!(show("tags@main"), format!("git:sha1:{main}").as_str());
    // Short glob patterns, tried below refs/tags/ too.
    add(&env, "short", &rich.repo.dir, &["--ref", "v0.*"]);
    env.ok(&["ingest", "short"]);
    let commits = rich.repo.rev_list(&["v0.9"]);
    check_source(&env, "short", &rich.repo, "git:sha1:", &commits, None);

    // A ref that does not exist is named.
    add(
        &env,
        "bad",
        &rich.repo.dir,
        &["--ref", "main", "--ref", "nope"],
    );
    let err = env.fails(&["ingest", "bad"], 1);
    assert!(err.contains("\"nope\" does not exist"), "{err}");
    // A glob matching nothing warns and ingests nothing.
    add(&env, "none", &rich.repo.dir, &["--ref", "refs/tags/zzz*"]);
    let out = env.run(&["ingest", "none"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("matches no ref"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The recorded refs follow the repository: a deleted tag goes, a new
    // commit moves the branch.
    rich.repo.git(&["tag", "-d", "v0.9"]);
    rich.repo.write("new.conf", b"new\n");
    let new = rich.repo.commit("new");
    env.ok(&["ingest", "tags"]);
    assert_eq!(show("tags@main"), format!("git:sha1:{new}").as_str());
    let err = env.fails(&["show", "tags@v0.9"], 1);
    assert!(err.contains("v0.9"), "{err}");
}

#[test]
fn scoped_to_a_subdirectory() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    add(&env, "conf", &rich.repo.dir, &["--path", "conf.d"]);
    env.ok(&["ingest", "conf"]);
    let commits = rich.repo.rev_list(&["HEAD"]);
    // Every commit is a snapshot, with the subtree or the empty tree.
    check_source(
        &env,
        "conf",
        &rich.repo,
        "git:sha1:",
        &commits,
        Some("conf.d"),
    );
    let first = commits.last().unwrap();
    assert!(env.ok(&["ls", "-r", &format!("conf@{first}")]).is_empty());
    assert!(env.ok(&["ls", "-r", "conf@latest"]).is_empty());
    let deep = rich.repo.rev_list(&["HEAD~2"])[0].clone();
    assert_eq!(
        env.ok(&["cat", &format!("conf@{deep}:deep/er/z.ini")]),
        b"[z]\n"
    );
}

#[test]
fn incremental_ingest() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    add(&env, "app", &rich.repo.dir, &[]);
    env.ok(&["ingest", "app"]);
    let n = rich.repo.rev_list(&["HEAD"]).len();

    // Nothing new: nothing committed, nothing read (the work it does is
    // counted in backends/sources/git/tests).
    let out = env.ok_text(&["ingest", "app"]);
    assert_eq!(out.trim_end().split(" (").next(), Some("app: up to date"));
    assert!(out.contains("(0 files read"), "{out}");
    assert_eq!(
        env.ok_json(&["log", "app", "--json"])["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        n
    );

    // One new commit changing one file: one snapshot, one file read.
    rich.repo.write("app.conf", b"port = 7070\n");
    let new = rich.repo.commit("one more");
    let out = env.ok_text(&["ingest", "app"]);
    assert!(
        out.contains(&format!("app: 1 new snapshot (latest git:sha1:{new}")),
        "{out}"
    );
    assert!(out.contains(", 1 files read,"), "{out}");
    assert_eq!(env.ok(&["cat", "app@latest:app.conf"]), b"port = 7070\n");
    let commits = rich.repo.rev_list(&["HEAD"]);
    assert_eq!(commits.len(), n + 1);
    check_source(&env, "app", &rich.repo, "git:sha1:", &commits, None);

    // A second source over the same repository reuses the store's objects
    // but converts on its own (its cache is its own).
    add(&env, "again", &rich.repo.dir, &[]);
    let out = env.ok_text(&["ingest", "again"]);
    assert!(out.contains(&format!("{} new snapshots", n + 1)), "{out}");
}

#[test]
fn sha256_repository() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = Repo::init(&env, "sha256", &["--object-format=sha256"]);
    repo.write("a.conf", b"a\n");
    std::os::unix::fs::symlink("a.conf", repo.dir.join("l")).unwrap();
    let first = repo.commit("one");
    repo.write("d/b.conf", b"b\n");
    repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{first},sub"),
    ]);
    repo.commit("two");
    repo.git(&["checkout", "-q", "-b", "side", "HEAD~1"]);
    repo.write("side.conf", b"s\n");
    repo.commit("side");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "--no-ff", "-m", "merge", "side"]);
    assert_eq!(first.len(), 64);
    add(&env, "s", &repo.dir, &[]);
    env.ok(&["ingest", "s"]);
    let commits = repo.rev_list(&["HEAD"]);
    check_source(&env, "s", &repo, "git:sha256:", &commits, None);
}

#[test]
fn shallow_clone() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    let url = format!("file://{}", rich.repo.dir.display());
    let top = Repo::at(&env, ".");
    top.git(&["clone", "-q", "--depth", "3", &url, "shallow"]);
    let shallow = Repo::at(&env, "shallow");
    add(&env, "sh", &shallow.dir, &[]);
    env.ok(&["ingest", "sh"]);
    let commits = shallow.rev_list(&["HEAD"]);
    assert!(commits.len() < rich.repo.rev_list(&["HEAD"]).len());

    // The boundary commits: what git shows as parentless, with the cut-off
    // parents named in extra fields.
    let cut = std::fs::read_to_string(shallow.dir.join(".git/shallow")).unwrap();
    let cut: Vec<&str> = cut.lines().collect();
    assert!(!cut.is_empty());
    for sha in &cut {
        let show = env.ok_json(&["show", &format!("sh@{sha}"), "--json"]);
        assert!(show["parents"].as_array().unwrap().is_empty());
        let raw = String::from_utf8(rich.repo.git(&["cat-file", "commit", sha])).unwrap();
        let want: Vec<&str> = raw
            .lines()
            .filter_map(|l| l.strip_prefix("parent "))
            .collect();
        let got: Vec<String> = show["extra"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "git.shallow-parent")
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "shallow parents of {sha}");
    }
    check_source(&env, "sh", &shallow, "git:sha1:", &commits, None);
}

#[test]
fn locations_are_detected_and_opened() {
    let env = Env::new();
    env.ok(&["init"]);
    let rich = rich(&env);
    let top = Repo::at(&env, ".");
    top.git(&[
        "clone",
        "-q",
        "--bare",
        rich.repo.dir.to_str().unwrap(),
        "bare.git",
    ]);
    // A linked work tree has a `.git` file.
    rich.repo
        .git(&["worktree", "add", "-q", "../linked", "v1.0"]);
    let n = rich.repo.rev_list(&["HEAD"]).len();
    for (name, dir) in [
        ("work", rich.repo.dir.clone()),
        ("dotgit", rich.repo.dir.join(".git")),
        ("bare", env.path("bare.git")),
        ("linked", env.path("linked")),
    ] {
        add(&env, name, &dir, &[]);
        let list = env.ok_text(&["source", "list"]);
        let line = list.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(line.contains("\tgit\t"), "{line}");
        let out = env.ok_text(&["ingest", name]);
        let want = if name == "linked" {
            rich.repo.rev_list(&["v1.0"]).len()
        } else {
            n
        };
        assert!(
            out.contains(&format!("{want} new snapshots")),
            "{name}: {out}"
        );
    }
}

#[test]
fn bad_input_is_one_clear_error() {
    let env = Env::new();
    env.ok(&["init"]);

    // Not a repository.
    std::fs::create_dir_all(env.path("plain")).unwrap();
    add(&env, "plain", &env.path("plain"), &["--vcs", "git"]);
    let err = env.fails(&["ingest", "plain"], 1);
    assert!(err.contains("not a Git repository"), "{err}");

    // An empty repository.
    let empty = Repo::init(&env, "empty", &[]);
    add(&env, "empty", &empty.dir, &[]);
    let err = env.fails(&["ingest", "empty"], 1);
    assert!(err.contains("no commits"), "{err}");

    // A missing tree and a corrupt blob: named, with the commit.
    let repo = Repo::init(&env, "broken", &[]);
    repo.write("a/b.conf", b"b\n");
    repo.write("c.conf", b"c\n");
    let first = repo.commit("one");
    let tree = repo.text(&["rev-parse", "HEAD:a"]);
    let blob = repo.text(&["rev-parse", "HEAD:c.conf"]);
    let object = |id: &str| repo.dir.join(".git/objects").join(&id[..2]).join(&id[2..]);
    let saved = std::fs::read(object(&tree)).unwrap();
    std::fs::remove_file(object(&tree)).unwrap();
    add(&env, "broken", &repo.dir, &[]);
    let err = env.fails(&["ingest", "broken"], 1);
    assert!(err.contains(&format!("commit {first}")), "{err}");
    assert!(err.contains(&format!("tree {tree} is missing")), "{err}");
    std::fs::write(object(&tree), saved).unwrap();
    std::fs::set_permissions(object(&blob), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(object(&blob), b"this is not zlib data").unwrap();
    let err = env.fails(&["ingest", "broken"], 1);
    assert!(err.contains(&format!("commit {first}")), "{err}");
    assert!(err.contains(&format!("blob {blob}")), "{err}");
    // Nothing half-done was recorded.
    assert!(env.ok(&["log", "broken"]).is_empty());
}

#[test]
fn large_files_in_a_repository_of_another_user() {
    let env = Env::new();
    env.ok(&["init"]);
    let repo = Repo::init(&env, "large", &[]);
    // 17 MiB that do not compress away.
    let mut data = Vec::with_capacity(17 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 17 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    repo.write("large.bin", &data);
    repo.commit("large");
    repo.git(&["gc", "-q"]);
    // Owned by someone else, the repository opens with reduced trust.
    let chowned = is_root()
        && Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&repo.dir)
            .status()
            .is_ok_and(|s| s.success());
    if !chowned {
        eprintln!("note: not root; large file read from a repository of the current user");
    }
    add(&env, "large", &repo.dir, &[]);
    env.ok(&["ingest", "large"]);
    assert!(env.ok(&["cat", "large@latest:large.bin"]) == data);
}
