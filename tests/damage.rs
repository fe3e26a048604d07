//! No damaged input makes plumb panic: every page of a small store's
//! database is zeroed, and bits are flipped in each, and commands run on
//! each copy must end with exit 0, 1 or 2 (never 101) and, on failure, one
//! line. And `fsck` finds a flipped bit in an index row that still decodes.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::time::{Duration, Instant};

use plumb::reconcile::TargetStore;
use plumb::store::{Keyspace, Store, keyed};

use crate::Env;

pub(crate) const PAGE: usize = 4096;
/// The whole run stays within this, however slow the machine.
const BUDGET: Duration = Duration::from_secs(60);

/// A store with every kind of row: two sources, refs, caches, a target
/// applied twice (inventory, runs).
pub(crate) fn small_store() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    env.write("cfg/app.conf", b"port = 8080\n");
    env.write("cfg/nested/x.yaml", b"k: v\n");
    env.write("other/a.txt", b"a\n");
    env.ok(&["source", "add", "app", "cfg"]);
    env.ok(&["source", "add", "other", "other"]);
    env.ok(&["ingest"]);
    let out = env.path("out");
    env.ok(&[
        "target",
        "add",
        "web",
        &format!("dir:{}", out.display()),
        "--source",
        "app",
    ]);
    env.ok(&["apply", "web"]);
    env.write("cfg/app.conf", b"port = 9090\n");
    env.ok(&["ingest"]);
    env.ok(&["apply", "web"]);
    env
}

/// Every command, with arguments that succeed on the undamaged store.
const COMMANDS: &[&[&str]] = &[
    &["log", "app"],
    &["ls", "-r", "app@latest"],
    &["cat", "app@latest:app.conf"],
    &["show", "app@~1", "--json"],
    &["diff", "app@~1", "app@latest"],
    &["source", "list"],
    &["target", "list"],
    &["runs", "web"],
    &["plan", "web"],
    &["drift", "web"],
    &["apply", "web"],
    &["ingest"],
    &["gc"],
    &["fsck", "--json"],
];

/// Runs `args` on the environment's store: no panic, an exit code scripts
/// know, one line on failure (fsck's report aside).
fn no_panic(env: &Env, args: &[&str], damage: &str) {
    let out = env.cmd(&["--no-wait"]).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "plumb {args:?} on {damage}: exit {code:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} on {damage}: {err}");
    if code == Some(1) {
        let lines = err
            .lines()
            .filter(|l| !l.starts_with("plumb: fsck:") && !l.starts_with("plumb: warning:"))
            .count();
        assert_eq!(lines, 1, "plumb {args:?} on {damage}: {err}");
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn every_damaged_page_gives_one_line_never_a_panic() {
    let env = small_store();
    let pristine = std::fs::read(env.store().join("store.redb")).unwrap();
    let pages = pristine.len().div_ceil(PAGE);
    let saved = env.path("pristine");
    copy_dir(&env.store(), &saved);
    let started = Instant::now();
    let mut runs = 0usize;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    'pages: for page in 0..pages {
        // The page zeroed, then three single-bit flips in it.
        for variant in 0..4 {
            if started.elapsed() > BUDGET {
                break 'pages;
            }
            let mut bytes = pristine.clone();
            let end = ((page + 1) * PAGE).min(bytes.len());
            let damage = if variant == 0 {
                bytes[page * PAGE..end].fill(0);
                format!("page {page} zeroed")
            } else {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = page * PAGE + (seed as usize) % (end - page * PAGE);
                let bit = (seed >> 32) % 8;
                bytes[at] ^= 1 << bit;
                format!("bit {bit} of byte {at} flipped")
            };
            // Each copy starts from the whole pristine store: writers on
            // the last copy may have changed packs and rows.
            std::fs::remove_dir_all(env.store()).unwrap();
            copy_dir(&saved, &env.store());
            std::fs::write(env.store().join("store.redb"), &bytes).unwrap();
            // fsck always; two other commands, in turn, so that every
            // command meets every kind of page.
            let i = page * 4 + variant;
            for args in [
                &["fsck"][..],
                COMMANDS[i % COMMANDS.len()],
                COMMANDS[(i * 7 + 3) % COMMANDS.len()],
            ] {
                no_panic(&env, args, &damage);
                runs += 1;
            }
        }
    }
    assert!(
        runs >= 3 * 4 * pages.min(8),
        "only {runs} runs in the budget"
    );
}

#[test]
fn fsck_finds_a_flipped_bit_in_an_inventory_row() {
    let env = small_store();
    let row = {
        let store = Store::open_read_only(&env.store()).unwrap();
        assert!(!store.inventory("web").unwrap().entries.is_empty());
        store
            .keyspace_get(Keyspace::Inventory, &keyed("web", b"/"))
            .unwrap()
            .unwrap()
    };
    let path = env.store().join("store.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut flipped = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..]
        .windows(row.len())
        .position(|w| w == row.as_slice())
    {
        // A bit in the middle of the row: it still decodes (the blob id or
        // a stat field changes), so only the page's checksum tells.
        let pos = at + found + row.len() / 2;
        bytes[pos] ^= 0x10;
        flipped += 1;
        at = at + found + row.len();
    }
    assert!(flipped > 0, "the inventory row is not in the file as is");
    std::fs::write(&path, &bytes).unwrap();
    let out = env.run(&["fsck"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("store.redb is damaged"), "{err}");
    let (code, v) = env.json(&["fsck", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(v["outcome"], "damaged");
    assert_eq!(v["database"], "damaged");
}
