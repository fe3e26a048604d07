//! One conformance suite that every target backend passes, driven through
//! the real `plumb` binary: create, update, delete with prune off and on,
//! adopt, conflicts, idempotence, drift of each kind, rollback and pin,
//! and the audit log. The directory target is checked on real files, the
//! plugin target through a Python plugin keeping its state in SQLite.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Env;

/// Where a target keeps what plumb applies, and how a person would change
/// it behind plumb's back.
trait Place {
    fn location(&self) -> String;
    /// "missing", "file", "exec", "symlink" or "dir".
    fn kind(&self, path: &str) -> String;
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    fn link(&self, path: &str) -> Option<Vec<u8>>;
    fn write(&self, path: &str, content: &[u8]);
    fn remove(&self, path: &str);
    fn set_exec(&self, path: &str, exec: bool);
    fn relink(&self, path: &str, target: &str);
}

struct DirPlace(PathBuf);

impl Place for DirPlace {
    fn location(&self) -> String {
        format!("dir:{}", self.0.display())
    }
    fn kind(&self, path: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        match self.0.join(path).symlink_metadata() {
            Err(_) => "missing".into(),
            Ok(m) if m.file_type().is_symlink() => "symlink".into(),
            Ok(m) if m.is_dir() => "dir".into(),
            Ok(m) if m.permissions().mode() & 0o100 != 0 => "exec".into(),
            Ok(_) => "file".into(),
        }
    }
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let p = self.0.join(path);
        if p.symlink_metadata().ok()?.is_file() {
            std::fs::read(p).ok()
        } else {
            None
        }
    }
    fn link(&self, path: &str) -> Option<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        std::fs::read_link(self.0.join(path))
            .ok()
            .map(|t| t.as_os_str().as_bytes().to_vec())
    }
    fn write(&self, path: &str, content: &[u8]) {
        let p = self.0.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    fn remove(&self, path: &str) {
        std::fs::remove_file(self.0.join(path)).unwrap();
    }
    fn set_exec(&self, path: &str, exec: bool) {
        use std::os::unix::fs::PermissionsExt;
        let mode = if exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(self.0.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    fn relink(&self, path: &str, target: &str) {
        let p = self.0.join(path);
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
}

/// The Python plugin's SQLite file, changed with the plugin's own code.
struct PluginPlace {
    db: PathBuf,
}

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/targets/exec/tests/plugins")
}

const TAMPER: &str = r#"
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import sqlite_target as t
s = t.Store(sys.argv[2])
op, path = sys.argv[3], sys.argv[4].encode()
row = s.db.execute("SELECT kind, content, executable, target FROM entries WHERE path = ?", (path,)).fetchone()
if op == "kind":
    print("missing" if row is None else ("exec" if row[0] == "file" and row[2] else row[0]))
elif op == "read":
    if row is not None and row[0] == "file":
        sys.stdout.buffer.write(row[1])
    else:
        sys.exit(3)
elif op == "link":
    if row is not None and row[0] == "symlink":
        sys.stdout.buffer.write(row[3])
    else:
        sys.exit(3)
elif op == "write":
    data = sys.argv[5].encode()
    s.replace(path, "file", content=data, executable=bool(row and row[2]), sha256=hashlib.sha256(data).hexdigest())
elif op == "remove":
    s.db.execute("DELETE FROM entries WHERE path = ?", (path,))
elif op == "exec":
    s.replace(path, "file", content=row[1], executable=sys.argv[5] == "1", sha256=hashlib.sha256(row[1]).hexdigest())
elif op == "relink":
    s.replace(path, "symlink", target=sys.argv[5].encode())
"#;

impl PluginPlace {
    fn py(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("python3")
            .arg("-c")
            .arg(TAMPER)
            .arg(plugin_dir())
            .arg(&self.db)
            .args(args)
            .output()
            .expect("python3 runs (the plugin tests need it)");
        assert!(
            out.status.success() || out.status.code() == Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Place for PluginPlace {
    fn location(&self) -> String {
        format!(
            "exec:python3 {} {}",
            plugin_dir().join("sqlite_target.py").display(),
            self.db.display()
        )
    }
    fn kind(&self, path: &str) -> String {
        String::from_utf8(self.py(&["kind", path]).stdout)
            .unwrap()
            .trim()
            .to_string()
    }
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let out = self.py(&["read", path]);
        out.status.success().then_some(out.stdout)
    }
    fn link(&self, path: &str) -> Option<Vec<u8>> {
        let out = self.py(&["link", path]);
        out.status.success().then_some(out.stdout)
    }
    fn write(&self, path: &str, content: &[u8]) {
        self.py(&["write", path, std::str::from_utf8(content).unwrap()]);
    }
    fn remove(&self, path: &str) {
        self.py(&["remove", path]);
    }
    fn set_exec(&self, path: &str, exec: bool) {
        self.py(&["exec", path, if exec { "1" } else { "0" }]);
    }
    fn relink(&self, path: &str, target: &str) {
        self.py(&["relink", path, target]);
    }
}

/// A store with a directory source `src` (at `src/` in the env) and a
/// target `t` on `place`.
struct Rig {
    env: Env,
    place: Box<dyn Place>,
}

impl Rig {
    fn new(make: MakePlace, prune: bool) -> Self {
        let env = Env::new();
        env.ok(&["init"]);
        std::fs::create_dir_all(env.path("src")).unwrap();
        let place = make(&env);
        let rig = Self { env, place };
        rig.src("app.conf", b"port = 80\n");
        rig.src("conf.d/a.conf", b"a = 1\n");
        rig.src("bin/run", b"#!/bin/sh\necho run\n");
        rig.chmod_src("bin/run", 0o755);
        std::os::unix::fs::symlink("app.conf", rig.env.path("src/current")).unwrap();
        rig.env.add_dir_source("src", "src");
        rig.ingest();
        let location = rig.place.location();
        let mut add = vec!["target", "add", "t", location.as_str(), "--source", "src"];
        if prune {
            add.push("--prune");
        }
        rig.env.ok(&add);
        rig
    }

    fn src(&self, rel: &str, content: &[u8]) {
        self.env.write(&format!("src/{rel}"), content);
    }

    fn chmod_src(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            self.env.path(&format!("src/{rel}")),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }

    fn ingest(&self) {
        self.env.ok(&["ingest", "src"]);
    }

    fn code(&self, args: &[&str]) -> (i32, String, String) {
        self.env.code(args)
    }

    fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        self.env.json(args)
    }

    fn apply(&self) -> serde_json::Value {
        let (code, v) = self.json(&["apply", "t", "--json"]);
        assert_eq!(code, 0, "apply failed: {v}");
        v
    }

    fn drift(&self, full: bool) -> (i32, Vec<(String, String)>) {
        self.env.drift("t", full)
    }
}

fn dir_place(env: &Env) -> Box<dyn Place> {
    Box::new(DirPlace(env.path("target")))
}

fn plugin_place(env: &Env) -> Box<dyn Place> {
    Box::new(PluginPlace {
        db: env.path("plugin.sqlite"),
    })
}

/// Makes a place for a test's environment.
type MakePlace = fn(&Env) -> Box<dyn Place>;

const PLACES: [(&str, MakePlace); 2] = [("dir", dir_place), ("exec", plugin_place)];

fn counts(v: &serde_json::Value) -> (u64, u64, u64, u64) {
    let c = &v["counts"];
    (
        c["create"].as_u64().unwrap(),
        c["update"].as_u64().unwrap(),
        c["delete"].as_u64().unwrap(),
        c["keep"].as_u64().unwrap(),
    )
}

#[test]
fn create_then_idempotent() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, false);
        let (code, plan) = rig.json(&["plan", "t", "--json"]);
        assert_eq!(code, 2, "{name}: a plan with work exits 2: {plan}");
        // app.conf, conf.d, conf.d/a.conf, bin, bin/run, current
        assert_eq!(counts(&plan), (6, 0, 0, 0), "{name}: {plan}");
        let v = rig.apply();
        assert_eq!(counts(&v), (6, 0, 0, 0), "{name}");
        let p = &rig.place;
        assert_eq!(p.read("app.conf").unwrap(), b"port = 80\n", "{name}");
        assert_eq!(p.read("conf.d/a.conf").unwrap(), b"a = 1\n", "{name}");
        assert_eq!(p.kind("bin/run"), "exec", "{name}");
        assert_eq!(p.kind("app.conf"), "file", "{name}");
        assert_eq!(p.kind("conf.d"), "dir", "{name}");
        assert_eq!(p.link("current").unwrap(), b"app.conf", "{name}");
        // Apply twice: nothing the second time; plan and drift are clean.
        let v = rig.apply();
        assert_eq!(counts(&v), (0, 0, 0, 6), "{name}: {v}");
        let (code, _) = rig.json(&["plan", "t", "--json"]);
        assert_eq!(code, 0, "{name}");
        assert_eq!(rig.drift(false), (0, vec![]), "{name}");
        assert_eq!(rig.drift(true), (0, vec![]), "{name}");
    }
}

#[test]
fn update_and_delete_with_prune_off_then_on() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, false);
        rig.apply();
        rig.src("app.conf", b"port = 8080\n");
        rig.chmod_src("bin/run", 0o644);
        std::fs::remove_file(rig.env.path("src/conf.d/a.conf")).unwrap();
        std::fs::remove_dir(rig.env.path("src/conf.d")).unwrap();
        rig.ingest();
        let (code, plan) = rig.json(&["plan", "t", "--json"]);
        assert_eq!(code, 2, "{name}");
        assert_eq!(plan["counts"]["retain"], 2, "{name}: {plan}");
        let v = rig.apply();
        assert_eq!(counts(&v), (0, 2, 0, 2), "{name}: {v}");
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"port = 8080\n",
            "{name}"
        );
        assert_eq!(rig.place.kind("bin/run"), "file", "{name}");
        // Prune off: the dropped file stays, still owned.
        assert_eq!(
            rig.place.read("conf.d/a.conf").unwrap(),
            b"a = 1\n",
            "{name}"
        );
    }
}

#[test]
fn prune_deletes_only_what_plumb_created() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, true);
        rig.apply();
        rig.src("extra.conf", b"x\n");
        rig.ingest();
        rig.apply();
        assert_eq!(rig.place.read("extra.conf").unwrap(), b"x\n", "{name}");
        std::fs::remove_file(rig.env.path("src/extra.conf")).unwrap();
        std::fs::remove_file(rig.env.path("src/conf.d/a.conf")).unwrap();
        std::fs::remove_dir(rig.env.path("src/conf.d")).unwrap();
        rig.ingest();
        // A file a person put into a managed directory keeps it alive.
        rig.place.write("conf.d/mine.conf", b"mine\n");
        let v = rig.apply();
        assert_eq!(counts(&v).2, 2, "{name}: extra.conf and conf.d/a.conf: {v}");
        assert_eq!(rig.place.kind("extra.conf"), "missing", "{name}");
        assert_eq!(rig.place.kind("conf.d/a.conf"), "missing", "{name}");
        assert_eq!(
            rig.place.read("conf.d/mine.conf").unwrap(),
            b"mine\n",
            "{name}"
        );
        assert_eq!(rig.place.kind("conf.d"), "dir", "{name}");
        // Once the person's file is gone, the next prune removes the directory.
        rig.place.remove("conf.d/mine.conf");
        let v = rig.apply();
        assert_eq!(counts(&v).2, 1, "{name}: {v}");
        assert_eq!(rig.place.kind("conf.d"), "missing", "{name}");
    }
}

#[test]
fn conflicts_refuse_everything_until_adopt() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, true);
        // Something is already there that plumb did not make.
        rig.place.write("app.conf", b"hand-made\n");
        let (code, plan) = rig.json(&["plan", "t", "--json"]);
        assert_eq!(code, 2, "{name}");
        assert_eq!(plan["counts"]["conflict"], 1, "{name}: {plan}");
        let (code, _, err) = rig.code(&["apply", "t"]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains("conflict") && err.contains("app.conf"),
            "{name}: {err}"
        );
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"hand-made\n",
            "{name}"
        );
        assert_eq!(
            rig.place.kind("conf.d"),
            "missing",
            "{name}: nothing applied"
        );
        // The refusal is in the audit log.
        let runs = rig.json(&["runs", "t", "--json"]).1["runs"].clone();
        assert_eq!(runs[0]["outcome"], "refused", "{name}: {runs}");
        // Taken over only with --adopt.
        let (code, v) = rig.json(&["apply", "t", "--adopt", "--json"]);
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"port = 80\n",
            "{name}"
        );
        assert_eq!(rig.drift(true), (0, vec![]), "{name}");
    }
}

#[test]
fn drift_of_each_kind_then_heal() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, false);
        rig.apply();
        rig.place.write("app.conf", b"port = 81\n");
        rig.place.remove("conf.d/a.conf");
        rig.place.write("conf.d/new.conf", b"new\n");
        rig.place.set_exec("bin/run", false);
        rig.place.relink("current", "elsewhere");
        for full in [false, true] {
            let (code, found) = rig.drift(full);
            assert_eq!(code, 2, "{name}");
            let want: Vec<(String, String)> = [
                ("app.conf", "modified"),
                // The directory source records modes: an attribute.
                ("bin/run", "attribute"),
                ("conf.d/a.conf", "deleted"),
                ("conf.d/new.conf", "added"),
                ("current", "link"),
            ]
            .iter()
            .map(|(p, k)| (p.to_string(), k.to_string()))
            .collect();
            assert_eq!(found, want, "{name} full={full}");
        }
        // The human output carries a diff of the modified file.
        let (code, text, _) = rig.code(&["drift", "t"]);
        assert_eq!(code, 2);
        assert!(
            text.contains("-port = 80") && text.contains("+port = 81"),
            "{name}: {text}"
        );
        // Each check is a run.
        let runs = rig.json(&["runs", "t", "--json"]).1["runs"].clone();
        assert_eq!(runs[0]["kind"], "drift", "{name}");
        assert_eq!(runs[0]["outcome"], "drifted", "{name}");
        // Apply heals what it owns; the added file is not plumb's and stays.
        rig.apply();
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"port = 80\n",
            "{name}"
        );
        assert_eq!(rig.place.kind("bin/run"), "exec", "{name}");
        assert_eq!(rig.place.link("current").unwrap(), b"app.conf", "{name}");
        let (code, found) = rig.drift(false);
        assert_eq!(
            found,
            vec![("conf.d/new.conf".to_string(), "added".to_string())],
            "{name}"
        );
        assert_eq!(code, 2);
    }
}

#[test]
fn rollback_pins_until_unpin() {
    for (name, make) in PLACES {
        let rig = Rig::new(make, true);
        rig.apply();
        rig.src("app.conf", b"port = 2\n");
        rig.ingest();
        rig.apply();
        assert_eq!(rig.place.read("app.conf").unwrap(), b"port = 2\n");
        let (code, text, err) = rig.code(&["rollback", "t", "src@~1"]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(text.contains("pinned"), "{text}");
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"port = 80\n",
            "{name}"
        );
        // A newer snapshot does not move a pinned target.
        rig.src("app.conf", b"port = 3\n");
        rig.ingest();
        let (code, _) = rig.json(&["plan", "t", "--json"]);
        assert_eq!(code, 0, "{name}: pinned, nothing to do");
        rig.apply();
        assert_eq!(
            rig.place.read("app.conf").unwrap(),
            b"port = 80\n",
            "{name}"
        );
        let (code, _, err) = rig.code(&["apply", "t", "--rev", "src@latest"]);
        assert_eq!(code, 1, "{name}: applying past a pin is refused");
        assert!(err.contains("pinned"), "{err}");
        rig.env.ok(&["unpin", "t"]);
        rig.apply();
        assert_eq!(rig.place.read("app.conf").unwrap(), b"port = 3\n", "{name}");
        let runs = rig.json(&["runs", "t", "--json"]).1["runs"].clone();
        let kinds: Vec<&str> = runs
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["apply", "unpin", "apply", "rollback", "apply", "apply"],
            "{name}"
        );
        let first = &runs[5];
        assert_eq!(first["outcome"], "ok");
        assert_eq!(first["counts"]["create"], 6);
        assert!(first["user"].as_str().is_some_and(|u| !u.is_empty()));
        assert!(first["host"].as_str().is_some_and(|h| !h.is_empty()));
    }
}

/// A target on the SQLite plugin whose command line (`--misbehave MODE`
/// or nothing) is read from the file `mode` at each start, so the same
/// definition can misbehave and then behave.
fn plugin_with_mode_file(env: &Env, mode: &str) -> PathBuf {
    let mode_file = env.path("mode");
    std::fs::write(&mode_file, mode).unwrap();
    let wrapper = env.path("plugin.sh");
    std::fs::write(
        &wrapper,
        format!(
            "exec python3 {} {} $(cat {})\n",
            plugin_dir().join("sqlite_target.py").display(),
            env.path("plugin.sqlite").display(),
            mode_file.display()
        ),
    )
    .unwrap();
    let backend = format!("exec:sh {}", wrapper.display());
    env.ok(&["target", "add", "t", &backend, "--source", "src"]);
    mode_file
}

/// A plugin whose `read` fails for one path: plan and drift say they could
/// not read it, in text and in JSON, instead of diffing an empty file
/// (which hid a line injected into the target).
#[test]
fn a_failed_read_is_shown_never_an_empty_file() {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("src/app.conf", b"port = 80\n");
    env.write("src/other.conf", b"x = 1\n");
    env.add_dir_source("src", "src");
    env.ok(&["ingest", "src"]);
    let mode = plugin_with_mode_file(&env, "");
    env.ok(&["apply", "t"]);
    let place = PluginPlace {
        db: env.path("plugin.sqlite"),
    };
    place.write("app.conf", b"port = 80\nINJECTED = 1\n");
    std::fs::write(&mode, "--misbehave read-fails:app.conf").unwrap();

    // Exit 2, the line saying so, and no diff against nothing.
    let says_unreadable = |args: &[&str], diff_line: &str| {
        let (code, out, err) = env.code(args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            out.lines()
                .any(|l| l == "could not read app.conf: the disk is on fire"),
            "{out}"
        );
        assert!(!out.contains(diff_line), "no diff against nothing: {out}");
    };
    says_unreadable(&["drift", "t"], "-port = 80");
    let (code, v) = env.json(&["drift", "t", "--json"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["drifted"][0]["path"], "app.conf", "{v}");
    assert_eq!(v["drifted"][0]["read_error"], "the disk is on fire", "{v}");

    env.write("src/app.conf", b"port = 81\n");
    env.ok(&["ingest", "src"]);
    says_unreadable(&["plan", "t", "--adopt"], "+port = 81");
    let (code, v) = env.json(&["plan", "t", "--adopt", "--json"]);
    assert_eq!(code, 2, "{v}");
    let step = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "app.conf")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(step["read_error"], "the disk is on fire", "{v}");

    // Readable again: the diff shows the injected line.
    std::fs::write(&mode, "").unwrap();
    let (_, out, _) = env.code(&["plan", "t", "--adopt"]);
    assert!(out.contains("-INJECTED = 1"), "{out}");
}

/// A plugin that dies in the middle of an apply: the run fails with one
/// error line and is recorded as failed, only what the plugin confirmed is
/// recorded as applied (the rest stays pending, reported as unconfirmed),
/// and the next apply with a healthy plugin converges.
#[test]
fn a_plugin_crashing_mid_apply_confirms_nothing_it_did_not_answer() {
    let env = Env::new();
    env.ok(&["init"]);
    for i in 0..6 {
        env.write(&format!("src/f{i}.conf"), format!("n = {i}\n").as_bytes());
    }
    env.add_dir_source("src", "src");
    env.ok(&["ingest", "src"]);
    let mode = plugin_with_mode_file(&env, "--misbehave crash-apply:2");

    let (code, out, err) = env.code(&["apply", "t"]);
    assert_eq!(code, 1, "{err}");
    // The plugin's own stderr passes through, prefixed with its name;
    // plumb adds one error line saying what was done and what was not,
    // and nothing on stdout claims success.
    let ours: Vec<&str> = err.lines().filter(|l| !l.starts_with('[')).collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(
        ours[0].starts_with("plumb: error: t: apply failed, 2 of 6 changes made: ")
            && ours[0].contains("plugin exited")
            && ours[0].contains("4 of 6 changes not made"),
        "{err}"
    );
    // Only what failed is listed on stdout.
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().all(|l| l.starts_with("! failed   ")), "{out}");
    let runs = env.json(&["runs", "t", "--json"]).1["runs"].clone();
    assert_eq!(runs[0]["outcome"], "failed", "{runs}");
    // Two writes were answered; the others were not and stay pending.
    let (code, drift) = env.json(&["drift", "t", "--json"]);
    assert_eq!(code, 2, "{drift}");
    let unconfirmed = drift["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["drift"] == "unconfirmed")
        .count();
    assert_eq!(unconfirmed, 4, "{drift}");
    assert!(
        drift["snapshot"].is_null(),
        "not applied completely: {drift}"
    );

    std::fs::write(&mode, "").unwrap();
    let (code, v) = env.json(&["apply", "t", "--json"]);
    assert_eq!(code, 0, "{v}");
    let (code, drift) = env.json(&["drift", "t", "--json", "--full"]);
    assert_eq!(code, 0, "{drift}");
    let place = PluginPlace {
        db: env.path("plugin.sqlite"),
    };
    for i in 0..6 {
        assert_eq!(
            place.read(&format!("f{i}.conf")).unwrap(),
            format!("n = {i}\n").as_bytes()
        );
    }
}
