#!/usr/bin/env python3
"""Benchmark plumb against git, side by side, on one generated tree.

Usage:
    python3 bench/bench.py [--files 20000] [--mb 200] [--runs 5]
                           [--plumb target/release/plumb] [--work bench/work]
                           [--json] [--check]

Measures, each --runs times with the two tools interleaved (the order
alternates from run to run, so machine drift hits both alike):

  1. first ingest of the whole tree into a fresh store
     (`plumb ingest` vs `git add -A && git commit`),
  2. re-ingest after one file changed,
  3. reading one file from an old snapshot
     (`plumb cat NAME@~K:PATH` vs `git cat-file -p <blob>`),
  4. store size (`du -sb` of the store vs `.git` after `git gc`),
  5. peak RSS of the first ingest (from wait4(2) of that one child).

Reports the median of each side, the ratio plumb/git, the goal and
PASS/MISS. Absolute times on shared machines are noise; the ratios of
interleaved runs are what to compare. Python 3.11 standard library only.
Builds nothing: a missing plumb binary is reported with the command to run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = "bench"  # the plumb source name
GEN_VERSION = 1  # bump when the generator changes: the data cache is keyed by it
FILES_PER_DIR = 50
FANOUT = 8
RACY_WAIT = 3.0  # seconds; both tools distrust stats newer than ~2 s before a scan
MB = 1_000_000  # sizes are reported in MB = 10^6 bytes

GOALS = {
    # key: (comparison, bound, label)
    "ingest": ("<=", 0.5, "≤0.50"),
    "reingest": ("<=", 1.0, "≤1.00"),
    "cat": ("<=", 1.5, "≤1.50"),
    "peak_rss": ("<", 200.0, "<200 MB"),
}


class BenchError(Exception):
    """A failed command or a failed correctness check: the numbers are void."""


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Data generation

WORDS = (
    "server client listen port host timeout retry backoff limit cache size path root "
    "log level format user group mode owner token secret key cert tls ssl cipher proxy "
    "upstream backend frontend route rule match enabled disabled max min interval "
    "threshold replicas image tag version name namespace label selector memory cpu "
    "request env value volume mount source target protocol address bind worker thread "
    "queue buffer compress encoding charset locale zone region cluster node pool weight "
    "priority policy schedule cron database table schema index shard replica primary "
    "secondary alert metric endpoint health check probe delay jitter file dir prefix "
    "suffix pattern include exclude filter output input driver plugin module"
).split()
EXTS = ("conf", "yaml", "ini", "toml", "cfg", "properties", "env")
UNITS = ("ms", "s", "m", "h", "Mi", "Gi", "%")
BOOLS = ("true", "false", "yes", "no", "on", "off")


def _value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.22:
        return str(rng.randint(0, 65535))
    if r < 0.32:
        return rng.choice(BOOLS)
    if r < 0.47:
        return f"{rng.choice(WORDS)}-{rng.randint(0, 99)}.{rng.choice(WORDS)}.internal"
    if r < 0.60:
        return "/" + "/".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
    if r < 0.72:  # ids and digests: the part that does not compress
        if rng.random() < 0.3:
            return "%032x" % rng.getrandbits(128)
        return "%08x" % rng.getrandbits(32)
    if r < 0.82:
        return f"{rng.randint(1, 999)}{rng.choice(UNITS)}"
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))


def file_content(seed: int, index: int, size: int) -> bytes:
    """The deterministic content of file `index`: `size` bytes of INI-like
    config, with sections repeated with small edits as real config is."""
    rng = random.Random(f"{seed}:{index}")
    keys = [f"{rng.choice(WORDS)}_{rng.choice(WORDS)}" for _ in range(rng.randint(8, 40))]
    out: list[str] = []
    sections: list[list[str]] = []
    n = 0
    while n < size:
        if sections and rng.random() < 0.25:
            sec = list(rng.choice(sections))
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(sec))
                sec[i] = f"{sec[i].split(' = ', 1)[0]} = {_value(rng)}"
            hdr = f"[{rng.choice(WORDS)}.{rng.choice(WORDS)}-{rng.randint(0, 9)}]"
        else:
            hdr = f"[{rng.choice(WORDS)}.{rng.choice(WORDS)}]"
            sec = [f"{rng.choice(keys)} = {_value(rng)}" for _ in range(rng.randint(3, 12))]
            if rng.random() < 0.2:
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
                sec.insert(0, "# " + words)
            sections.append(sec)
        block = hdr + "\n" + "\n".join(sec) + "\n\n"
        out.append(block)
        n += len(block)
    return "".join(out).encode()[: size - 1] + b"\n"


def layout(seed: int, files: int, total: int) -> list[tuple[str, int]]:
    """(relative path, size) of every file: log-normal sizes summing to
    exactly `total`, ~FILES_PER_DIR files per leaf directory, leaf
    directories FANOUT-ary a few levels deep."""
    rng = random.Random(f"{seed}:layout")
    avg = total / files
    sigma = 1.0
    mu = math.log(avg) - sigma * sigma / 2
    raw = [min(rng.lognormvariate(mu, sigma), 50 * avg) for _ in range(files)]
    scale = total / sum(raw)
    sizes = [max(64, int(s * scale)) for s in raw]
    biggest = max(range(files), key=sizes.__getitem__)
    sizes[biggest] += total - sum(sizes)
    if sizes[biggest] < 64:
        raise SystemExit("--mb is too small for --files (need >= 64 bytes per file)")

    ndirs = max(1, math.ceil(files / FILES_PER_DIR))
    depth = max(1, math.ceil(math.log(ndirs, FANOUT))) if ndirs > 1 else 1
    level_names = [
        [f"{rng.choice(WORDS)}-{j}" for j in range(FANOUT)] for _ in range(depth)
    ]
    result = []
    for i in range(files):
        d = i // FILES_PER_DIR
        parts = []
        for level in range(depth):
            parts.append(level_names[level][d % FANOUT])
            d //= FANOUT
        name = f"{rng.choice(WORDS)}-{i}.{rng.choice(EXTS)}"
        result.append(("/".join(reversed(parts)) + "/" + name, sizes[i]))
    return result


def _write_chunk(args: tuple[str, int, list[tuple[int, str, int]]]) -> int:
    root, seed, items = args
    for index, rel, size in items:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(file_content(seed, index, size))
    return len(items)


def ensure_data(work: Path, files: int, mb: float, seed: int) -> tuple[Path, list[tuple[str, int]]]:
    """The generated tree for these parameters, generated once and cached."""
    total = int(mb * MB)
    key = f"data-f{files}-b{total}-s{seed}-v{GEN_VERSION}"
    base = work / key
    tree = base / "tree"
    manifest = base / "manifest.json"
    entries = layout(seed, files, total)
    if manifest.exists():
        log(f"using cached data {base}")
        return tree, entries
    if base.exists():
        shutil.rmtree(base)
    tree.mkdir(parents=True)
    log(f"generating {files} files, {total / MB:.1f} MB under {tree} (once; cached)")
    t0 = time.perf_counter()
    items = [(i, rel, size) for i, (rel, size) in enumerate(entries)]
    chunks = [(str(tree), seed, items[k : k + 200]) for k in range(0, len(items), 200)]
    workers = max(1, min(os.cpu_count() or 1, 8))
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        done = 0
        for n in pool.map(_write_chunk, chunks):
            done += n
    assert done == files
    manifest.write_text(json.dumps({"files": files, "bytes": total, "seed": seed}))
    log(f"generated in {time.perf_counter() - t0:.0f} s")
    return tree, entries


def compress_ratio(tree: Path, entries: list[tuple[str, int]], seed: int) -> float:
    """zlib -6 ratio of a sample of files, compressed one by one (as git does)."""
    rng = random.Random(f"{seed}:sample")
    sample = rng.sample(range(len(entries)), min(300, len(entries)))
    raw = packed = 0
    for i in sample:
        data = (tree / entries[i][0]).read_bytes()
        raw += len(data)
        packed += len(zlib.compress(data, 6))
    return raw / packed


def warm_up(tree: Path, entries: list[tuple[str, int]]) -> None:
    """Read every file once so both tools read from the page cache, and check
    the tree is what the manifest says."""
    total = 0
    for rel, size in entries:
        with open(tree / rel, "rb") as f:
            n = 0
            while chunk := f.read(1 << 20):
                n += len(chunk)
        if n != size:
            raise BenchError(f"cached data is damaged ({rel}: {n} != {size} bytes); delete {tree.parent}")
        total += n
    found = sum(len(fs) for _, _, fs in os.walk(tree))
    if found != len(entries):
        raise BenchError(f"cached tree has {found} files, expected {len(entries)}; delete {tree.parent}")


def newest_change(tree: Path) -> float:
    newest = 0.0
    for dirpath, _, names in os.walk(tree):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            newest = max(newest, st.st_mtime, st.st_ctime)
    return newest


# --------------------------------------------------------------------------
# Running commands


class Run:
    __slots__ = ("seconds", "maxrss_kb", "rc", "out", "err")

    def __init__(self, seconds: float, maxrss_kb: int, rc: int, out: bytes, err: bytes):
        self.seconds = seconds
        self.maxrss_kb = maxrss_kb
        self.rc = rc
        self.out = out
        self.err = err


GNU_TIME = "/usr/bin/time"
RSS_METHODS = {"time": f"{GNU_TIME} -f %M", "wait4": "os.wait4 in a minimal launcher"}

# Spawns argv[2:], waits for it with wait4(2) and writes "seconds maxrss_kb"
# to argv[1]. Run as `python3 -I -S -c`, so its own footprint stays small.
LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
t1 = time.perf_counter()
with open(out, "w") as f:
    f.write(f"{t1 - t0} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def pick_rss_method(wanted: str) -> str:
    if wanted != "auto":
        return wanted
    if os.access(GNU_TIME, os.X_OK):
        ok = subprocess.run([GNU_TIME, "-f", "%M", "true"], capture_output=True)
        if ok.returncode == 0 and ok.stderr.strip().isdigit():
            return "time"
    return "wait4"


class Runner:
    def __init__(self, scratch: Path, env: dict[str, str], rss_method: str):
        self.scratch = scratch
        self.env = env
        self.rss_method = rss_method

    def timed(self, argv: list[str], cwd: Path | None = None, check: bool = True) -> Run:
        """Run argv; wall time of spawn+exit, and the child's own max RSS
        from wait4(2) (which covers the children it waited for)."""
        with open(self.scratch / "stdout", "w+b") as fo, open(self.scratch / "stderr", "w+b") as fe:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, cwd=cwd, env=self.env)
            _, status, usage = os.wait4(p.pid, 0)
            t1 = time.perf_counter()
            p.returncode = os.waitstatus_to_exitcode(status)
            fo.seek(0)
            fe.seek(0)
            run = Run(t1 - t0, usage.ru_maxrss, p.returncode, fo.read(), fe.read())
        if check and run.rc != 0:
            raise BenchError(
                f"command failed (exit {run.rc}): {' '.join(map(str, argv))}\n"
                f"{run.err.decode(errors='replace')}{run.out.decode(errors='replace')[-2000:]}"
            )
        return run

    def measured(self, argv: list[str], cwd: Path | None = None) -> Run:
        """Like `timed`, but with a peak RSS that is the command's own.

        wait4(2) straight from this process would not do: exec(2) keeps the
        forking process's peak RSS in the child's ru_maxrss, so every child
        of this (large) Python process would report at least its size. So the
        command is started from a small process: GNU time if installed (adds
        ~1 MB), else a minimal Python launcher that spawns it and reads its
        rusage with os.wait4 (adds ~10 MB). `rss_floor` says how much."""
        rss = self.scratch / "rss"
        if self.rss_method == "time":
            run = self.timed([GNU_TIME, "-f", "%M", "-o", rss, *argv], cwd=cwd)
            run.maxrss_kb = int(rss.read_text().split()[-1])
        else:
            run = self.timed([sys.executable, "-I", "-S", "-c", LAUNCHER, rss, *argv], cwd=cwd)
            seconds, maxrss = rss.read_text().split()
            run.seconds, run.maxrss_kb = float(seconds), int(maxrss)
        return run

    def out(self, argv: list[str], cwd: Path | None = None) -> bytes:
        p = subprocess.run(argv, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True)
        if p.returncode != 0:
            raise BenchError(
                f"command failed (exit {p.returncode}): {' '.join(map(str, argv))}\n"
                f"{p.stderr.decode(errors='replace')}"
            )
        return p.stdout


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PLUMB_"))}
    env.pop("RUST_LOG", None)
    env["LC_ALL"] = "C"
    # git: no system/user config; identity set here; no automatic gc, which
    # would detach into the background after a commit of many loose objects
    # and steal CPU from whatever is timed next.
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    cfg = {
        "user.name": "bench",
        "user.email": "bench@example.invalid",
        "gc.auto": "0",
        "maintenance.auto": "false",
        "init.defaultBranch": "main",
    }
    env["GIT_CONFIG_COUNT"] = str(len(cfg))
    for i, (k, v) in enumerate(cfg.items()):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


def du(path: Path) -> int:
    if shutil.which("du"):
        out = subprocess.run(["du", "-sb", str(path)], capture_output=True, check=True).stdout
        return int(out.split()[0])
    total = 0
    for dirpath, dirs, names in os.walk(path):
        for n in names + dirs:
            total += os.lstat(os.path.join(dirpath, n)).st_size
    return total


# --------------------------------------------------------------------------
# The benchmark


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def verdict(key: str, value: float, goals: dict | None = None) -> bool:
    """Whether `value` meets goal `key` of `goals` (default: this script's GOALS)."""
    op, bound, _ = (GOALS if goals is None else goals)[key]
    return value <= bound if op == "<=" else value < bound


def mutated(original: bytes, run: int) -> bytes:
    """`original` with one line inserted in the middle: a one-line edit."""
    mid = original.rfind(b"\n", 0, len(original) // 2) + 1
    return original[:mid] + f"bench_edit = {run}\n".encode() + original[mid:]


NEW_SNAPSHOT = re.compile(rb"\b1 new snapshot\b")
FILES_READ = re.compile(rb"(\d+) files? read")


def files_read(out: bytes) -> int | None:
    m = FILES_READ.search(out)
    return int(m.group(1)) if m else None


def bench(args: argparse.Namespace) -> dict:
    plumb = args.plumb
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tree, entries = ensure_data(work, args.files, args.mb, args.seed)
    total_bytes = sum(s for _, s in entries)

    run_dir = work / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    scratch = run_dir / "out"
    scratch.mkdir()
    env = clean_env()
    r = Runner(scratch, env, pick_rss_method(args.rss))
    git = shutil.which("git") or "git"

    # The file edited between re-ingests: restored to its generated content
    # first (a killed earlier run may have left an edit) and at the end.
    edit_index = len(entries) // 2
    edit_rel = entries[edit_index][0]
    edit_path = tree / edit_rel
    original = file_content(args.seed, edit_index, entries[edit_index][1])

    def restore() -> None:
        if edit_path.read_bytes() != original:
            edit_path.write_bytes(original)

    restore()
    try:
        return _bench(args, r, git, plumb, tree, entries, total_bytes, run_dir, edit_rel, edit_path, original)
    finally:
        restore()


def _bench(args, r: Runner, git, plumb, tree, entries, total_bytes, run_dir, edit_rel, edit_path, original) -> dict:
    runs = args.runs
    results: dict = {}
    notes: list[str] = []

    log("checking the generated content's compressibility")
    ratio = compress_ratio(tree, entries, args.seed)
    log(f"sample compresses {ratio:.1f}x with zlib -6, file by file")

    log("warm-up: reading the whole tree and both binaries once (untimed) so all comes from the page cache")
    warm_up(tree, entries)
    r.out([plumb, "--version"])
    r.out([git, "--version"])

    # Both plumb's stat cache and git's racy-index check distrust a file whose
    # mtime/ctime is within ~2 s of the scan: such a file is re-read next time.
    # The baseline for the re-ingest test is the last first-ingest run, so the
    # tree must be older than that by more than 2 s. One wait, not per run.
    wait = newest_change(tree) + RACY_WAIT - time.time()
    if wait > 0:
        log(f"sleeping {wait:.1f} s once so every file is >{RACY_WAIT:.0f} s old before the first scan "
            "(plumb's stat cache and git's index distrust stats from the last ~2 s)")
        time.sleep(wait)
    else:
        log(f"no racy-timestamp wait needed: every file changed >{RACY_WAIT:.0f} s ago")
    notes.append(
        f"files were >{RACY_WAIT:.0f} s old at the first scan (racy-timestamp window of both tools); "
        f"waited {max(wait, 0):.1f} s once"
    )

    # ---- 1. first ingest -------------------------------------------------
    floor = median([r.measured(["true"]).maxrss_kb * 1024 / MB for _ in range(3)])
    log(f"peak RSS via {RSS_METHODS[r.rss_method]}; the method's floor (max RSS of `true`) is {floor:.1f} MB")
    log(f"first ingest: {runs} runs, plumb and git interleaved")
    p_times, g_times, p_rss, g_rss = [], [], [], []
    store = gitdir = None
    for i in range(runs):
        if store is not None:
            shutil.rmtree(store)
            shutil.rmtree(gitdir)
        store = run_dir / f"plumb-{i}"
        gitdir = run_dir / f"git-{i}"
        r.out([plumb, "--store", store, "init"])
        r.out([plumb, "--store", store, "source", "add", SOURCE, tree, "--vcs", "dir"])
        r.out([git, "--git-dir", gitdir, "--work-tree", tree, "init", "-q"])
        git_env = {"GIT_DIR": str(gitdir), "GIT_WORK_TREE": str(tree)}

        def do_plumb() -> None:
            run = r.measured([plumb, "--store", store, "ingest", SOURCE])
            if not NEW_SNAPSHOT.search(run.out + run.err):
                raise BenchError(f"plumb ingest did not report a new snapshot: {run.out!r} {run.err!r}")
            p_times.append(run.seconds)
            p_rss.append(run.maxrss_kb * 1024 / MB)

        def do_git() -> None:
            run = git_shell(r, tree, git_env, "git add -A && git commit -q -m x", measured=True)
            g_times.append(run.seconds)
            g_rss.append(run.maxrss_kb * 1024 / MB)

        for step in (do_plumb, do_git) if i % 2 == 0 else (do_git, do_plumb):
            os.sync()  # no write-back of the other side's output during this one
            step()
        log(f"  run {i + 1}/{runs}: plumb {p_times[-1]:.2f} s, git {g_times[-1]:.2f} s")

    # Sanity: both hold exactly the tree.
    want = sorted(rel for rel, _ in entries)
    listed = r.out([plumb, "--store", store, "ls", "-r", f"{SOURCE}@latest"]).decode().splitlines()
    if sorted(listed) != want:
        raise BenchError(f"plumb ls -r lists {len(listed)} paths, not the {len(want)} files of the tree")
    tracked = r.out([git, "--git-dir", gitdir, "ls-tree", "-r", "--name-only", "HEAD"]).decode().splitlines()
    if sorted(tracked) != want:
        raise BenchError(f"git tracks {len(tracked)} paths, not the {len(want)} files of the tree")
    if (tree / ".git").exists() or (tree / ".plumb").exists():
        raise BenchError("something wrote a .git or .plumb into the data tree")

    results["ingest"] = side_by_side(p_times, g_times, "ingest", "s")
    results["peak_rss"] = {
        "plumb_mb": p_rss,
        "git_mb": g_rss,
        "plumb_median": median(p_rss),
        "git_median": median(g_rss),
        "plumb_max": max(p_rss),
        "git_max": max(g_rss),
        "ratio": median(p_rss) / median(g_rss),
        "goal": GOALS["peak_rss"][2],
        "pass": verdict("peak_rss", max(p_rss)),
        "method": r.rss_method,
        "floor_mb": floor,
    }

    # ---- 2. re-ingest after a one-file change ----------------------------
    log(f"re-ingest after editing {edit_rel}: {runs} runs, from the last first-ingest state")
    p_times, g_times, p_read = [], [], []
    git_env = {"GIT_DIR": str(gitdir), "GIT_WORK_TREE": str(tree)}
    for i in range(runs):
        edit_path.write_bytes(mutated(original, i))
        head_before = r.out([git, "--git-dir", gitdir, "rev-parse", "HEAD"]).strip()

        def do_plumb() -> None:
            run = r.timed([plumb, "--store", store, "ingest", SOURCE])
            out = run.out + run.err
            if not NEW_SNAPSHOT.search(out):
                raise BenchError(f"plumb re-ingest did not report a new snapshot: {out!r}")
            p_times.append(run.seconds)
            p_read.append(files_read(out))

        def do_git() -> None:
            run = git_shell(r, tree, git_env, "git add -A && git commit -q -m y")
            g_times.append(run.seconds)

        for step in (do_plumb, do_git) if i % 2 == 0 else (do_git, do_plumb):
            os.sync()  # no write-back of the other side's output during this one
            step()
        head = r.out([git, "--git-dir", gitdir, "rev-parse", "HEAD"]).strip()
        changed = r.out([git, "--git-dir", gitdir, "diff-tree", "--no-commit-id", "--name-only", "-r", head])
        if head == head_before or changed.decode().split() != [edit_rel]:
            raise BenchError(f"git commit did not record exactly the edited file: {changed!r}")
        log(f"  run {i + 1}/{runs}: plumb {p_times[-1] * 1000:.0f} ms "
            f"({p_read[-1]} files read), git {g_times[-1] * 1000:.0f} ms")
    results["reingest"] = side_by_side(p_times, g_times, "reingest", "s")
    results["reingest"]["plumb_files_read"] = p_read
    if any(n is not None and n > 1 for n in p_read):
        notes.append(f"plumb re-read {p_read} files per re-ingest (1 expected: the edited one)")

    # ---- 3. cat from an old snapshot -------------------------------------
    snapshots = json.loads(r.out([plumb, "--store", store, "log", SOURCE, "--json"]))
    commits = int(r.out([git, "--git-dir", gitdir, "rev-list", "--count", "HEAD"]))
    if len(snapshots) != runs + 1 or commits != runs + 1:
        raise BenchError(f"expected {runs + 1} snapshots and commits, got {len(snapshots)} and {commits}")
    k = max(1, runs // 2)
    expect = mutated(original, runs - 1 - k) if k < runs else original
    rev = f"{SOURCE}@~{k}:{edit_rel}"
    sha = r.out([git, "--git-dir", gitdir, "rev-parse", f"HEAD~{k}:{edit_rel}"]).decode().strip()
    plumb_cmd = [plumb, "--store", store, "cat", rev]
    git_cmd = [git, "--git-dir", gitdir, "cat-file", "-p", sha]
    for cmd in (plumb_cmd, git_cmd):
        got = r.out(cmd)
        if got != expect:
            raise BenchError(f"{' '.join(map(str, cmd))} printed {len(got)} bytes that differ from "
                             f"the {len(expect)} bytes of that revision")
    calls = args.cat_calls
    log(f"cat {rev} vs git cat-file -p <blob>: {runs} samples of {calls} calls each")
    p_times, g_times = [], []

    def sample(cmd: list, into: list) -> None:
        t = 0.0
        for _ in range(calls):
            run = r.timed(cmd)
            if run.out != expect:
                raise BenchError(f"{' '.join(map(str, cmd))} printed the wrong bytes")
            t += run.seconds
        into.append(t / calls)

    for i in range(runs):
        pair = ((plumb_cmd, p_times), (git_cmd, g_times))
        for cmd, into in pair if i % 2 == 0 else reversed(pair):
            sample(cmd, into)
        log(f"  sample {i + 1}/{runs}: plumb {p_times[-1] * 1000:.1f} ms, git {g_times[-1] * 1000:.1f} ms per call")
    results["cat"] = side_by_side(p_times, g_times, "cat", "s")
    results["cat"]["k"] = k

    # ---- 4. store size ---------------------------------------------------
    log("store size: du -sb of the plumb store vs .git (before and after git gc -q)")
    git_loose = du(gitdir)
    r.out([git, "--git-dir", gitdir, "gc", "-q"])
    plumb_size, git_size = du(store), du(gitdir)
    results["size"] = {
        "plumb_bytes": plumb_size,
        "git_bytes": git_size,
        "git_bytes_before_gc": git_loose,
        "data_bytes": total_bytes,
        "snapshots": runs + 1,
        "ratio": plumb_size / git_size,
    }

    return {
        "params": {
            "files": args.files,
            "mb": args.mb,
            "data_bytes": total_bytes,
            "runs": runs,
            "cat_calls": calls,
            "seed": args.seed,
            "zlib6_ratio": round(ratio, 2),
        },
        "env": {
            "plumb": str(plumb),
            "plumb_version": r.out([plumb, "--version"]).decode().strip(),
            "git_version": r.out([git, "--version"]).decode().strip(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "results": results,
        "notes": notes,
    }


def git_shell(r: Runner, tree: Path, git_env: dict[str, str], script: str, measured: bool = False) -> Run:
    """Time `script` under bash with the given GIT_DIR/GIT_WORK_TREE."""
    saved = r.env
    r.env = {**saved, **git_env}
    try:
        return (r.measured if measured else r.timed)(["bash", "-c", script], cwd=tree)
    finally:
        r.env = saved


def side_by_side(p: list[float], g: list[float], key: str, unit: str,
                 goals: dict | None = None, other: str = "git") -> dict:
    """Medians of plumb's samples `p` and the other tool's `g` (keyed by
    `other`), the ratio plumb/other, the median paired ratio and the
    verdict for goal `key` of `goals` (default: this script's GOALS)."""
    goals = GOALS if goals is None else goals
    pm, gm = median(p), median(g)
    ratio = pm / gm
    return {
        "unit": unit,
        "plumb": p,
        other: g,
        "plumb_median": pm,
        f"{other}_median": gm,
        "ratio": ratio,
        "paired_ratio_median": median([a / b for a, b in zip(p, g)]),
        "goal": goals[key][2],
        "pass": verdict(key, ratio, goals),
    }


# --------------------------------------------------------------------------
# Report


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.1f} ms"


def fmt_spread(xs: list[float], scale: float = 1.0) -> str:
    return f"{min(xs) * scale:.3g}–{max(xs) * scale:.3g}"


def render_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Text lines of a table: the first row is the header, underlined; the
    first column left-aligned, the others right-aligned."""
    lines = []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def report(s: dict) -> str:
    p, res = s["params"], s["results"]
    lines = []
    lines.append(f"plumb bench: {p['files']} files, {p['data_bytes'] / MB:.1f} MB "
                 f"(zlib -6 ratio {p['zlib6_ratio']}x), {p['runs']} run{'s' if p['runs'] != 1 else ''} "
                 "interleaved, medians shown")
    lines.append(f"  {s['env']['plumb_version']} ({s['env']['plumb']}) vs {s['env']['git_version']}, "
                 f"{s['env']['cpus']} CPUs, Python {s['env']['python']}")
    if "/debug/" in s["env"]["plumb"]:
        lines.append("  WARNING: a debug build; these numbers say nothing about release performance")
    lines.append("")
    rows = [("measure", "plumb", "git", "ratio", "goal", "result")]
    size = f"{p['files']} files/{p['data_bytes'] / MB:.0f} MB"

    def row(label: str, d: dict, fmt) -> None:
        rows.append((label, fmt(d["plumb_median"]), fmt(d["git_median"]), f"{d['ratio']:.2f}",
                     d["goal"], "PASS" if d["pass"] else "MISS"))

    row(f"ingest {size}", res["ingest"], fmt_time)
    row("re-ingest, 1 file changed", res["reingest"], fmt_time)
    row(f"cat @~{res['cat']['k']} (per call)", res["cat"], fmt_time)
    z = res["size"]
    rows.append((f"store size, {z['snapshots']} snapshots", f"{z['plumb_bytes'] / MB:.1f} MB",
                 f"{z['git_bytes'] / MB:.1f} MB", f"{z['ratio']:.2f}", "-", "-"))
    m = res["peak_rss"]
    rows.append(("peak RSS, first ingest", f"{m['plumb_median']:.1f} MB", f"{m['git_median']:.1f} MB",
                 f"{m['ratio']:.2f}", m["goal"], "PASS" if m["pass"] else "MISS"))
    lines.extend(render_table(rows))
    lines.append("")
    lines.append("spread (min–max over runs):")
    for key, label in (("ingest", "ingest s"), ("reingest", "re-ingest ms"), ("cat", "cat ms/call")):
        d = res[key]
        scale = 1 if key == "ingest" else 1000
        lines.append(f"  {label:<14} plumb {fmt_spread(d['plumb'], scale):<15} git {fmt_spread(d['git'], scale):<15} "
                     f"paired ratio median {d['paired_ratio_median']:.2f}")
    lines.append(f"  peak RSS MB    plumb {fmt_spread(m['plumb_mb']):<15} git {fmt_spread(m['git_mb']):<15} "
                 f"goal judged on plumb's max, {m['plumb_max']:.1f} MB")
    lines.append(f"  peak RSS read via {RSS_METHODS[m['method']]}; that method's floor is {m['floor_mb']:.1f} MB")
    lines.append(f"  git .git before gc: {z['git_bytes_before_gc'] / MB:.1f} MB; data itself {z['data_bytes'] / MB:.1f} MB")
    lines.append(f"  plumb files read per re-ingest: {res['reingest']['plumb_files_read']}")
    lines.append("")
    lines.append("notes:")
    lines.append("  times are wall clock of spawn to exit; git's ingest is `bash -c 'git add -A && git commit -q'`;")
    lines.append("  git cat-file is given the blob id (resolved untimed), plumb cat resolves NAME@~K:PATH itself;")
    lines.append("  git runs with gc.auto=0 so no background gc overlaps the next measurement;")
    lines.append("  sync(2) runs before every timed ingest, untimed, so neither side flushes the other's writes.")
    for n in s["notes"]:
        lines.append(f"  {n}")
    return "\n".join(lines)


def add_common_args(ap: argparse.ArgumentParser, runs: int) -> None:
    """The options every bench script takes: runs, binary, work directory,
    seed, RSS method, JSON output and --check."""
    ap.add_argument("--runs", type=int, default=runs, help=f"repetitions of each measurement (default {runs})")
    ap.add_argument("--plumb", type=Path, default=None, help="plumb binary (default target/release/plumb)")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default bench/work)")
    ap.add_argument("--seed", type=int, default=1, help="data generator seed (default 1)")
    ap.add_argument("--rss", choices=("auto", "time", "wait4"), default="auto",
                    help="how peak RSS is read: GNU time if present (auto), or os.wait4 from a small launcher")
    ap.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    ap.add_argument("--check", action="store_true", help="exit 2 if any goal is missed")


def resolve_paths(args: argparse.Namespace) -> bool:
    """Makes --plumb and --work absolute; False (with the build command
    printed) when the plumb binary is missing."""
    args.plumb = (args.plumb or REPO / "target/release/plumb").absolute()
    args.work = (args.work or REPO / "bench/work").absolute()
    if os.access(args.plumb, os.X_OK):
        return True
    release = "--release " if "debug" not in args.plumb.parts else ""
    print(f"plumb binary not found: {args.plumb}\nbuild it first:\n"
          f"    cargo build {release}-j2 --manifest-path {REPO / 'Cargo.toml'}", file=sys.stderr)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description="Benchmark plumb against git on a generated tree.")
    ap.add_argument("--files", type=int, default=20000, help="number of files (default 20000)")
    ap.add_argument("--mb", type=float, default=200, help="total size in MB = 10^6 bytes (default 200)")
    ap.add_argument("--cat-calls", type=int, default=20, help="cat invocations per sample (default 20)")
    add_common_args(ap, runs=5)
    args = ap.parse_args()
    if args.files < 1 or args.runs < 1 or args.cat_calls < 1 or args.mb <= 0:
        ap.error("--files, --runs, --cat-calls and --mb must be positive")
    if not resolve_paths(args):
        return 1
    if not shutil.which("git"):
        print("git not found on PATH", file=sys.stderr)
        return 1
    try:
        summary = bench(args)
    except BenchError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(report(summary))
    missed = [k for k, v in summary["results"].items() if "pass" in v and not v["pass"]]
    return 2 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
