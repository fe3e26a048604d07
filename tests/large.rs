//! Objects of any size in bounded memory: a large file through directory
//! and Git ingest, `cat`, `diff`, `apply`, `fsck` and `gc`, each process's
//! peak resident memory measured (see `plumb_testutils::rss` for why RSS);
//! and objects over the store's limit, a Git decompression bomb among
//! them, refused with one line before they are inflated.
//!
//! The file is 64 MiB (16 chunks): a process that held it whole would pass
//! the bound. With `PLUMB_BIG_TESTS=1` it is 1.5 GiB, and the bound is
//! 256 MB.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Stdio;

use plumb_testutils::git::GitRepo;
use plumb_testutils::rss::{Measured, measured};

use crate::Env;

const MIB: u64 = 1 << 20;

fn big() -> bool {
    std::env::var("PLUMB_BIG_TESTS").is_ok_and(|v| v == "1")
}

/// The large file's size.
fn size() -> u64 {
    if big() { 1536 * MIB } else { 64 * MIB }
}

/// The most resident memory a process may use on it: less than the file
/// in the small case, 256 MB in the big one.
fn bound() -> u64 {
    if big() { 256_000_000 } else { 48 * MIB }
}

/// Writes `size` bytes of mixed content (pseudo-random blocks, which do not
/// compress, and text, which does) to `path`; `seed` varies it.
fn write_large(path: &Path, size: u64, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut x = seed | 1;
    let mut block = vec![0u8; MIB as usize];
    let mut left = size;
    let mut n = 0u64;
    while left > 0 {
        if n % 3 == 2 {
            for (i, b) in block.iter_mut().enumerate() {
                *b = b"key = value\n"[i % 12];
            }
        } else {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
        }
        let take = left.min(MIB) as usize;
        out.write_all(&block[..take]).unwrap();
        left -= take as u64;
        n += 1;
    }
    out.flush().unwrap();
}

/// Whether two files hold the same bytes, read a block at a time.
fn same_file(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = read_full(&mut a, &mut x);
        if n != read_full(&mut b, &mut y) || x[..n] != y[..n] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Runs `plumb ARGS`, stdout into `stdout` (or discarded), and requires
/// success within the memory bound.
fn bounded(env: &Env, args: &[&str], stdout: Option<&Path>) -> Measured {
    let out = match stdout {
        Some(p) => Stdio::from(File::create(p).unwrap()),
        None => Stdio::null(),
    };
    let m = measured(&env.cmd(args), out, env.as_ref());
    assert_eq!(m.code, 0, "plumb {args:?} failed: {}", m.stderr);
    assert!(
        m.peak_rss < bound(),
        "plumb {args:?} used {} MiB of memory at its peak, over {} MiB, for a file of {} MiB",
        m.peak_rss / MIB,
        bound() / MIB,
        size() / MIB
    );
    m
}

#[test]
fn a_large_file_streams_through_dir_ingest_cat_diff_apply_fsck_and_gc() {
    let env = Env::new();
    env.ok(&["init"]);
    let file = env.path("cfg/big.bin");
    write_large(&file, size(), 7);
    env.write("cfg/small.conf", b"port = 8080\n");
    // Another source's file, half as large, in the same pack.
    write_large(&env.path("tmp/other.bin"), size() / 2, 11);
    env.ok(&["source", "add", "app", "cfg"]);
    env.ok(&["source", "add", "tmp", "tmp"]);
    bounded(&env, &["ingest"], None);

    let copy = env.path("copy.bin");
    bounded(&env, &["cat", "app@latest:big.bin"], Some(&copy));
    assert!(same_file(&file, &copy), "cat gave other bytes");

    let out = add_target(&env);
    bounded(&env, &["apply", "web"], None);
    assert!(
        same_file(&file, &out.join("big.bin")),
        "apply wrote other bytes"
    );
    bounded(&env, &["drift", "web", "--full"], None);

    // A second version: the diff calls it binary rather than loading it.
    File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"one more line\n")
        .unwrap();
    bounded(&env, &["ingest", "app"], None);
    let diff = env.path("diff.txt");
    bounded(&env, &["diff", "app@~1", "app@latest"], Some(&diff));
    assert_eq!(
        std::fs::read_to_string(&diff).unwrap(),
        "diff --plumb a/big.bin b/big.bin\nBinary files a/big.bin and b/big.bin differ\n"
    );
    bounded(&env, &["apply", "web"], None);
    assert!(same_file(&file, &out.join("big.bin")));

    // gc rewrites the first pack, now about half garbage: the large blob
    // keeps its chunks, and its chunk list moves with them.
    env.ok(&["source", "remove", "tmp"]);
    let gc = String::from_utf8(env.ok(&["gc"])).unwrap();
    assert!(gc.contains("rewrote"), "{gc}");
    bounded(&env, &["fsck"], None);
    bounded(&env, &["cat", "app@~1:big.bin"], Some(&copy));
    let len = std::fs::metadata(&copy).unwrap().len();
    assert_eq!(len, size());
}

#[test]
fn a_damaged_chunk_is_an_error_and_never_applied() {
    let env = Env::new();
    env.ok(&["init"]);
    write_large(&env.path("cfg/big.bin"), 9 * MIB, 3);
    env.ok(&["source", "add", "app", "cfg"]);
    env.ok(&["ingest"]);
    // Flip one byte in the middle of the pack: inside some chunk.
    let packs = env.store().join("packs");
    let pack = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "plumbpack"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();

    let (code, _, err) = env.code(&["cat", "app@latest:big.bin"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is corrupt"), "{err}");

    let out = add_target(&env);
    let (code, _, err) = env.code(&["apply", "web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is corrupt"), "{err}");
    assert!(
        !out.join("big.bin").exists(),
        "a damaged file was put in place"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out).map_or(Vec::new(), |d| d.collect());
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let (code, _, err) = env.code(&["fsck"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is corrupt"), "{err}");
}

#[test]
fn git_ingest_streams_a_large_loose_object() {
    let env = Env::new();
    let repo = GitRepo::init(env.as_ref(), "repo", &[]);
    let file = env.path("repo/big.bin");
    write_large(&file, size(), 5);
    repo.commit("large");
    env.ok(&["init"]);
    env.ok(&["source", "add", "app", "repo"]);
    bounded(&env, &["ingest"], None);
    let copy = env.path("copy.bin");
    bounded(&env, &["cat", "app@latest:big.bin"], Some(&copy));
    assert!(same_file(&file, &copy));
}

/// Adds the directory target `web` at `out`, following `app`.
fn add_target(env: &Env) -> std::path::PathBuf {
    let out = env.path("out");
    env.ok(&[
        "target",
        "add",
        "web",
        &format!("dir:{}", out.display()),
        "--source",
        "app",
    ]);
    out
}

/// Sets the store's `max-object-size`.
fn limit(env: &Env, bytes: u64) {
    let format = env.store().join("plumb-store");
    let mut text = std::fs::read_to_string(&format).unwrap();
    text.push_str(&format!("max-object-size = {bytes}\n"));
    std::fs::write(&format, text).unwrap();
}

#[test]
fn a_git_object_bomb_is_refused_before_it_is_inflated() {
    let env = Env::new();
    let repo = GitRepo::init(env.as_ref(), "repo", &[]);
    // Zeros compress a thousandfold: a small loose object, a large blob.
    let inflated = if big() { 1536 * MIB } else { 64 * MIB };
    let zeros = File::create(env.path("repo/bomb")).unwrap();
    zeros.set_len(inflated).unwrap();
    let commit = repo.commit("bomb");
    let blob = repo.text(&["rev-parse", "HEAD:bomb"]);
    env.ok(&["init"]);
    limit(&env, inflated / 4);
    env.ok(&["source", "add", "app", "repo"]);
    for packed in [false, true] {
        if packed {
            repo.git(&["repack", "-adq"]);
            repo.git(&["prune-packed"]);
        }
        let m = measured(&env.cmd(&["ingest"]), Stdio::null(), env.as_ref());
        assert_eq!(m.code, 1, "{}", m.stderr);
        assert_eq!(m.stderr.lines().count(), 1, "{}", m.stderr);
        assert!(
            m.stderr.contains(&format!(
                "blob {blob} is {inflated} bytes, over the limit of {} bytes",
                inflated / 4
            )) && m.stderr.contains(&commit),
            "{}",
            m.stderr
        );
        assert!(
            m.peak_rss < 48 * MIB,
            "the refusal used {} MiB",
            m.peak_rss / MIB
        );
    }
}

#[test]
fn a_file_over_the_limit_is_refused_with_its_path() {
    let env = Env::new();
    env.ok(&["init"]);
    limit(&env, 5 * MIB);
    write_large(&env.path("cfg/big.bin"), 6 * MIB, 1);
    env.ok(&["source", "add", "app", "cfg"]);
    let err = env.fails(&["ingest"], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("big.bin: an object of 6291456 bytes is over the limit of 5242880 bytes"),
        "{err}"
    );
}

#[test]
fn a_mercurial_file_over_the_limit_is_refused_before_it_is_rebuilt() {
    let env = Env::new();
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    plumb_testutils::hg::init(&repo, &[]);
    write_large(&repo.join("big.bin"), 6 * MIB, 2);
    plumb_testutils::hg::hg(&repo, &["add", "big.bin"]);
    plumb_testutils::hg::commit(&repo, "large", "1700000000 0");
    // The file revision's node, as the manifest lists it.
    let manifest = plumb_testutils::hg::hg_text(&repo, &["manifest", "--debug", "-r", "."]);
    let node = &manifest[..40];
    env.ok(&["init"]);
    limit(&env, 5 * MIB);
    env.ok(&["source", "add", "app", "repo"]);
    let err = env.fails(&["ingest"], 1);
    assert!(
        err.contains(&format!(
            "file \"big.bin\" revision {} is 6291456 bytes, over the limit of 5242880 bytes",
            node
        )),
        "{err}"
    );
    // Within the limit, the same file is stored in chunks and reads back.
    limit(&env, 7 * MIB);
    env.ok(&["ingest"]);
    let copy = env.path("copy.bin");
    bounded(&env, &["cat", "app@latest:big.bin"], Some(&copy));
    assert!(same_file(&repo.join("big.bin"), &copy));
}
