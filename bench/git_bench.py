#!/usr/bin/env python3
"""Benchmark plumb's Git source against git, side by side, on one generated history.

Usage:
    python3 bench/git_bench.py [--commits 5000] [--files 2000] [--runs 3]
                               [--plumb target/release/plumb] [--work bench/work]
                               [--json] [--check]

Generates (with `git fast-import`, cached under --work) a repository of
--commits commits over --files config files: one commit creating them all,
then commits editing 1-4 files each (a value changed, now and then a line
added, a file added or removed), and every 50 commits a side branch of 3
commits merged back with --no-ff. Then measures, each --runs times with the
two tools interleaved (the order alternates from run to run):

  1. full ingest into a fresh store (`plumb ingest`)
     vs `git fast-export --all > /dev/null` (reading every commit, tree and blob);
  2. a second ingest with nothing new (plumb only; goal < 50 ms);
  3. an ingest after one new commit (goal < 100 ms)
     vs `git fast-export main~1..main > /dev/null`;
  4. `plumb cat NAME@<sha>:PATH` vs `git show <sha>:PATH`, per call;
  5. `plumb diff NAME@<a> NAME@<b>` vs `git diff <a> <b>`, commits 100 apart;
  6. peak RSS of the full ingest at two history sizes (a quarter, and all):
     flat when memory is bounded by the largest tree, not by history;
  7. the journal's cost: the full ingest again into a store written with
     `PLUMB_JOURNAL=off`, in the same rotation as (1) (goal: with ≤ 1.05×
     without).

Reports medians, ratios plumb/git and goals. Python 3.11 standard library
only; reuses bench.py's runner (wall time, wait4 peak RSS, clean git env).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as base  # noqa: E402  (the house runner and helpers)
from bench import MB, BenchError, Runner, clean_env, du, log, median, pick_rss_method  # noqa: E402

REPO = base.REPO
SOURCE = "gitbench"
GEN_VERSION = 1
MERGE_EVERY = 50
SIDE_COMMITS = 3
DIFF_SPAN = 100

GOALS = {
    # key: (comparison, bound, label, what is compared)
    "ingest": ("<=", 1.5, "≤1.50", "ratio"),
    "noop": ("<", 0.050, "<50 ms", "plumb"),
    "one_commit": ("<", 0.100, "<100 ms", "plumb"),
    "cat": ("<=", 1.5, "≤1.50", "ratio"),
    "diff": ("<=", 1.5, "≤1.50", "ratio"),
    "peak_rss": ("<", 300.0, "<300 MB", "plumb"),
    "journal": ("<=", 1.05, "≤1.05", "ratio"),
}

KEYS = (
    "listen port host timeout retry backoff limit cache size path root level format user group "
    "mode owner token key cert tls cipher proxy upstream backend route rule enabled max min "
    "interval threshold replicas image tag version name namespace label memory cpu request "
    "volume mount target protocol address bind worker thread queue buffer compress zone region"
).split()
EXTS = (".conf", ".yaml", ".ini", ".env", ".properties", ".toml")


# --------------------------------------------------------------------------
# The generated history


def _line(rng: random.Random) -> bytes:
    k = rng.choice(KEYS)
    match rng.randrange(4):
        case 0:
            v = str(rng.randrange(1, 65536))
        case 1:
            v = f"{rng.choice(KEYS)}-{rng.randrange(100)}.example.internal"
        case 2:
            v = rng.choice(("true", "false", "on", "off"))
        case _:
            v = f"/srv/{rng.choice(KEYS)}/{rng.choice(KEYS)}"
    return f"{k}_{rng.randrange(40)} = {v}\n".encode()


def _new_file(rng: random.Random) -> list[bytes]:
    return [b"# generated\n"] + [_line(rng) for _ in range(rng.randrange(8, 60))]


def _edit(rng: random.Random, lines: list[bytes]) -> list[bytes]:
    lines = list(lines)
    i = rng.randrange(1, len(lines))
    if rng.random() < 0.2:
        lines.insert(i, _line(rng))
    else:
        lines[i] = _line(rng)
    return lines


class Gen:
    """Writes a fast-import stream, keeping the current file contents."""

    def __init__(self, out, seed: int):
        self.out = out
        self.rng = random.Random(seed)
        self.time = 1_700_000_000
        self.mark = 0
        self.count = 0

    def commit(self, ref: str, parent: int | None, merge: int | None,
               changes: dict[str, list[bytes] | None], msg: str) -> int:
        self.mark += 1
        self.count += 1
        self.time += 60
        w = self.out.write
        w(f"commit {ref}\nmark :{self.mark}\n".encode())
        who = f"Dev {self.count % 7} <dev{self.count % 7}@example.org> {self.time} +0100\n"
        w(f"author {who}committer {who}".encode())
        m = msg.encode()
        w(f"data {len(m)}\n".encode() + m + b"\n")
        if parent is not None:
            w(f"from :{parent}\n".encode())
        if merge is not None:
            w(f"merge :{merge}\n".encode())
        for path in sorted(changes):
            lines = changes[path]
            if lines is None:
                w(f"D {path}\n".encode())
            else:
                data = b"".join(lines)
                w(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        w(b"\n")
        return self.mark


def generate(repo: Path, commits: int, files: int, seed: int) -> None:
    """A history of `commits` commits over about `files` files."""
    env = clean_env()
    if repo.exists():
        shutil.rmtree(repo)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    p = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=repo, env=env,
                         stdin=subprocess.PIPE)
    assert p.stdin is not None
    g = Gen(p.stdin, seed)
    rng = g.rng
    dirs = max(1, files // 40)
    names: list[str] = []
    for i in range(files):
        d = i % dirs
        names.append(f"svc-{d:03d}/{'conf' if i % 3 else 'env/prod'}/{rng.choice(KEYS)}-{i}{rng.choice(EXTS)}")
    state: dict[str, list[bytes]] = {n: _new_file(rng) for n in names}
    head = g.commit("refs/heads/main", None, None, dict(state), "initial import")

    def changes_for(st: dict[str, list[bytes]]) -> dict[str, list[bytes] | None]:
        ch: dict[str, list[bytes] | None] = {}
        for _ in range(rng.randrange(1, 5)):
            r = rng.random()
            if r < 0.02 and len(st) > 10:
                victim = rng.choice(sorted(st))
                del st[victim]
                ch[victim] = None
            elif r < 0.04:
                n = f"svc-{rng.randrange(dirs):03d}/conf/new-{g.count}-{rng.randrange(1000)}.conf"
                st[n] = _new_file(rng)
                ch[n] = st[n]
            else:
                n = rng.choice(names)
                if n in st:
                    st[n] = _edit(rng, st[n])
                    ch[n] = st[n]
        return ch

    while g.count < commits:
        if g.count % MERGE_EVERY == 0 and commits - g.count > SIDE_COMMITS + 3:
            # A side branch from here, main moving on meanwhile, then a merge.
            side_state = dict(state)
            side = head
            side_changes: dict[str, list[bytes] | None] = {}
            for k in range(SIDE_COMMITS):
                ch = changes_for(side_state)
                side_changes.update(ch)
                side = g.commit("refs/heads/side", side, None, ch, f"side change {k}")
            for k in range(2):
                ch = changes_for(state)
                for n in ch:
                    side_changes.pop(n, None)
                head = g.commit("refs/heads/main", head, None, ch, f"main change {g.count}")
            for n, v in side_changes.items():
                if v is None:
                    state.pop(n, None)
                else:
                    state[n] = v
            head = g.commit("refs/heads/main", head, side, side_changes, "merge side")
            continue
        head = g.commit("refs/heads/main", head, None, changes_for(state), f"change {g.count}")
    p.stdin.write(b"done\n")
    p.stdin.close()
    if p.wait() != 0:
        raise BenchError("git fast-import failed")
    subprocess.run(["git", "branch", "-q", "-D", "side"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "repack", "-adq"], cwd=repo, check=True, env=env)


def ensure_repo(work: Path, commits: int, files: int, seed: int) -> Path:
    repo = work / f"git-c{commits}-f{files}-s{seed}-v{GEN_VERSION}"
    stamp = repo / ".git" / "plumb-bench-complete"
    if stamp.exists():
        log(f"using cached repository {repo}")
        return repo
    log(f"generating {commits} commits over {files} files with git fast-import")
    t0 = time.perf_counter()
    generate(repo, commits, files, seed)
    stamp.write_text("ok\n")
    log(f"generated in {time.perf_counter() - t0:.1f} s")
    return repo


# --------------------------------------------------------------------------
# The benchmark


def sh(r: Runner, cwd: Path, script: str, measured: bool = False):
    argv = ["bash", "-c", script]
    return r.measured(argv, cwd=cwd) if measured else r.timed(argv, cwd=cwd)


def side(p: list[float], g: list[float] | None, key: str) -> dict:
    op, bound, label, what = GOALS[key]
    d = {"plumb": p, "plumb_median": median(p), "goal": label}
    if g:
        d.update(git=g, git_median=median(g), ratio=median(p) / median(g),
                 paired_ratio_median=median([a / b for a, b in zip(p, g)]))
    value = d["ratio"] if what == "ratio" else d["plumb_median"]
    d["pass"] = value <= bound if op == "<=" else value < bound
    return d


def bench(args: argparse.Namespace) -> dict:
    plumb, runs = str(args.plumb), args.runs
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    src = ensure_repo(work, args.commits, args.files, args.seed)
    run_dir = work / "git-run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    scratch = run_dir / "out"
    scratch.mkdir()
    env = clean_env()
    r = Runner(scratch, env, pick_rss_method(args.rss))
    # A working copy: the one-new-commit runs add commits to it.
    repo = run_dir / "repo"
    r.out(["git", "clone", "-q", "--no-local", str(src), str(repo)])
    r.out(["git", "repack", "-adq"], cwd=repo)
    total = int(r.out(["git", "rev-list", "--count", "main"], cwd=repo))
    quarter = total // 4
    r.out(["git", "branch", "-f", "quarter", f"main~{total - quarter}"], cwd=repo)
    quarter_count = int(r.out(["git", "rev-list", "--count", "quarter"], cwd=repo))
    log(f"repository: {total} commits ({quarter_count} on `quarter`), "
        f"{len(r.out(['git', 'ls-tree', '-r', '--name-only', 'main'], cwd=repo).splitlines())} files at main")
    # Warm the page cache.
    r.out(["bash", "-c", "git fast-export --all > /dev/null"], cwd=repo)

    results: dict = {}
    floor = median([r.measured(["true"]).maxrss_kb * 1024 / MB for _ in range(3)])

    # ---- 1. full ingest ----------------------------------------------------
    log(f"full ingest: {runs} runs, interleaved with git fast-export --all")
    p_t, g_t, p_rss, nj_t = [], [], [], []
    store = None
    for i in range(runs):
        if store is not None:
            shutil.rmtree(store)
        store = run_dir / f"store-{i}"
        r.out([plumb, "--store", store, "init"])
        r.out([plumb, "--store", store, "source", "add", SOURCE, str(repo)])
        unjournaled = run_dir / f"store-nj-{i}"
        r.out([plumb, "--store", unjournaled, "init"])
        r.out([plumb, "--store", unjournaled, "source", "add", SOURCE, str(repo)])

        def do_plumb() -> None:
            run = r.measured([plumb, "--store", store, "ingest", SOURCE])
            if f"{total} new snapshots".encode() not in run.out:
                raise BenchError(f"plumb ingest did not record {total} snapshots: {run.out!r}")
            p_t.append(run.seconds)
            p_rss.append(run.maxrss_kb * 1024 / MB)

        def do_git() -> None:
            g_t.append(sh(r, repo, "git fast-export --all > /dev/null").seconds)

        def do_unjournaled() -> None:
            # The same ingest with the journal off: what the journal costs.
            r.env = {**env, "PLUMB_JOURNAL": "off"}
            try:
                run = r.measured([plumb, "--store", unjournaled, "ingest", SOURCE])
            finally:
                r.env = env
            nj_t.append(run.seconds)
            shutil.rmtree(unjournaled)

        steps = [do_plumb, do_git, do_unjournaled]
        for step in steps[i % 3:] + steps[:i % 3]:
            os.sync()
            step()
        log(f"  run {i + 1}/{runs}: plumb {p_t[-1]:.2f} s ({p_rss[-1]:.0f} MB), git {g_t[-1]:.2f} s, "
            f"plumb without journal {nj_t[-1]:.2f} s")
    results["ingest"] = side(p_t, g_t, "ingest")
    results["journal"] = side(p_t, nj_t, "journal")
    assert store is not None

    # Correctness: every commit is there; a sample of files match.
    logged = json.loads(r.out([plumb, "--store", store, "log", SOURCE, "--json"]))["snapshots"]
    if len(logged) != total:
        raise BenchError(f"plumb log holds {len(logged)} snapshots, git {total}")
    mid = r.out(["git", "rev-parse", f"main~{total // 2}"], cwd=repo).decode().strip()
    want = sorted(r.out(["git", "ls-tree", "-r", "--name-only", mid], cwd=repo).decode().splitlines())
    got = sorted(r.out([plumb, "--store", store, "ls", "-r", f"{SOURCE}@{mid}"]).decode().splitlines())
    if got != want:
        raise BenchError(f"plumb ls -r of {mid} differs from git ls-tree")
    sizes = {"store_bytes": du(store), "git_bytes": du(repo / ".git")}

    # ---- 2. nothing new -----------------------------------------------------
    log(f"second ingest, nothing new: {runs} runs")
    p_t = []
    for _ in range(runs):
        run = r.timed([plumb, "--store", store, "ingest", SOURCE])
        if b"up to date (0 files read" not in run.out:
            raise BenchError(f"a no-op ingest did work: {run.out!r}")
        p_t.append(run.seconds)
    results["noop"] = side(p_t, None, "noop")
    log(f"  median {median(p_t) * 1000:.1f} ms")

    # ---- 3. one new commit -------------------------------------------------
    log(f"one new commit: {runs} runs, vs git fast-export main~1..main")
    p_t, g_t, p_read = [], [], []
    edit_path = repo / want[len(want) // 2]
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True, env=env)
    for i in range(runs):
        with open(edit_path, "ab") as f:
            f.write(f"bench_edit = {i}\n".encode())
        r.out(["git", "commit", "-q", "-am", f"bench edit {i}"], cwd=repo)

        def do_plumb() -> None:
            run = r.timed([plumb, "--store", store, "ingest", SOURCE])
            if b" 1 new snapshot " not in run.out:
                raise BenchError(f"plumb did not record one snapshot: {run.out!r}")
            p_t.append(run.seconds)
            p_read.append(base.files_read(run.out))

        def do_git() -> None:
            g_t.append(sh(r, repo, "git fast-export main~1..main > /dev/null").seconds)

        for step in (do_plumb, do_git) if i % 2 == 0 else (do_git, do_plumb):
            os.sync()
            step()
        log(f"  run {i + 1}/{runs}: plumb {p_t[-1] * 1000:.0f} ms ({p_read[-1]} files read), "
            f"git {g_t[-1] * 1000:.0f} ms")
    results["one_commit"] = side(p_t, g_t, "one_commit")
    results["one_commit"]["plumb_files_read"] = p_read

    # ---- 4. cat -------------------------------------------------------------
    path = want[len(want) // 3]
    expect = r.out(["git", "show", f"{mid}:{path}"], cwd=repo)
    calls = args.cat_calls
    log(f"cat {mid[:12]}:{path}: {runs} samples of {calls} calls each")
    p_t, g_t = [], []
    for i in range(runs):
        def do_plumb() -> None:
            t = 0.0
            for _ in range(calls):
                run = r.timed([plumb, "--store", store, "cat", f"{SOURCE}@{mid}:{path}"])
                if run.out != expect:
                    raise BenchError("plumb cat printed other bytes than git show")
                t += run.seconds
            p_t.append(t / calls)

        def do_git() -> None:
            t = 0.0
            for _ in range(calls):
                run = r.timed(["git", "show", f"{mid}:{path}"], cwd=repo)
                t += run.seconds
            g_t.append(t / calls)

        for step in (do_plumb, do_git) if i % 2 == 0 else (do_git, do_plumb):
            step()
    results["cat"] = side(p_t, g_t, "cat")

    # ---- 5. diff ------------------------------------------------------------
    old = r.out(["git", "rev-parse", f"{mid}~{DIFF_SPAN}"], cwd=repo).decode().strip()
    changed = len(r.out(["git", "diff", "--name-only", old, mid], cwd=repo).splitlines())
    log(f"diff {old[:12]}..{mid[:12]} ({DIFF_SPAN} first-parent commits, {changed} files): {runs} samples")
    p_t, g_t = [], []
    for i in range(runs):
        def do_plumb() -> None:
            run = r.timed([plumb, "--store", store, "diff", f"{SOURCE}@{old}", f"{SOURCE}@{mid}"], check=False)
            if run.rc not in (0, 2):
                raise BenchError(f"plumb diff failed: {run.err!r}")
            p_t.append(run.seconds)

        def do_git() -> None:
            g_t.append(r.timed(["git", "diff", old, mid], cwd=repo).seconds)

        for step in (do_plumb, do_git) if i % 2 == 0 else (do_git, do_plumb):
            step()
    stat = r.timed([plumb, "--store", store, "diff", "--stat", f"{SOURCE}@{old}", f"{SOURCE}@{mid}"], check=False)
    results["diff"] = side(p_t, g_t, "diff")
    results["diff"]["files_changed"] = changed
    results["diff"]["plumb_stat_lines"] = len(stat.out.splitlines())

    # ---- 6. peak RSS at two history sizes -----------------------------------
    log(f"peak RSS of a full ingest of `quarter` ({quarter_count} commits): {runs} runs")
    q_rss = []
    for i in range(runs):
        qs = run_dir / f"store-q{i}"
        r.out([plumb, "--store", qs, "init"])
        r.out([plumb, "--store", qs, "source", "add", SOURCE, str(repo), "--ref", "quarter"])
        run = r.measured([plumb, "--store", qs, "ingest", SOURCE])
        q_rss.append(run.maxrss_kb * 1024 / MB)
        shutil.rmtree(qs)
    results["peak_rss"] = side(p_rss, None, "peak_rss")
    results["peak_rss"].update(quarter=q_rss, quarter_median=median(q_rss), quarter_commits=quarter_count,
                               full_commits=total, floor_mb=floor, method=r.rss_method)
    return {"results": results, "sizes": sizes, "commits": total, "files": len(want),
            "plumb": plumb, "runs": runs, "cat_calls": calls,
            "debug_build": "debug" in Path(plumb).parts}


def report(s: dict) -> str:
    res = s["results"]
    lines = [f"plumb git source vs git: {s['commits']} commits, {s['files']} files, {s['runs']} runs"]
    if s["debug_build"]:
        lines.append("WARNING: debug build; numbers say nothing about release performance")
    rows = [("measurement", "plumb", "git", "plumb/git", "goal", "")]

    def ms(x: float) -> str:
        return f"{x * 1000:.1f} ms"

    def row(label: str, key: str, fmt) -> None:
        d = res[key]
        g = fmt(d["git_median"]) if "git_median" in d else "-"
        ratio = f"{d['ratio']:.2f}" if "ratio" in d else "-"
        rows.append((label, fmt(d["plumb_median"]), g, ratio, d["goal"], "PASS" if d["pass"] else "MISS"))

    row("full ingest (git: fast-export --all)", "ingest", lambda x: f"{x:.2f} s")
    row("full ingest (vs plumb, journal off)", "journal", lambda x: f"{x:.2f} s")
    row("second ingest, nothing new", "noop", ms)
    row("one new commit (git: fast-export of it)", "one_commit", ms)
    row("cat SHA:PATH, per call (git show)", "cat", ms)
    row(f"diff {DIFF_SPAN} commits apart (git diff)", "diff", ms)
    m = res["peak_rss"]
    rows.append((f"peak RSS, full ingest of {m['full_commits']} commits", f"{m['plumb_median']:.1f} MB", "-", "-",
                 m["goal"], "PASS" if m["pass"] else "MISS"))
    rows.append((f"peak RSS, full ingest of {m['quarter_commits']} commits", f"{m['quarter_median']:.1f} MB",
                 "-", "-", "-", ""))
    z = s["sizes"]
    rows.append(("store size vs .git (packed)", f"{z['store_bytes'] / MB:.1f} MB", f"{z['git_bytes'] / MB:.1f} MB",
                 f"{z['store_bytes'] / z['git_bytes']:.2f}", "-", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("spread (min–max over runs; paired ratio = median of per-run ratios):")
    for key in ("ingest", "journal", "noop", "one_commit", "cat", "diff"):
        d = res[key]
        p = f"{min(d['plumb']) * 1000:.1f}–{max(d['plumb']) * 1000:.1f} ms"
        g = f"{min(d['git']) * 1000:.1f}–{max(d['git']) * 1000:.1f} ms" if "git" in d else "-"
        pr = f"{d['paired_ratio_median']:.2f}" if "paired_ratio_median" in d else "-"
        lines.append(f"  {key:<11} plumb {p:<22} git {g:<22} paired ratio {pr}")
    lines.append(f"  files read per one-commit ingest: {res['one_commit']['plumb_files_read']}")
    lines.append(f"  diff: {res['diff']['files_changed']} files changed")
    lines.append(f"  peak RSS read via {base.RSS_METHODS[m['method']]}; floor {m['floor_mb']:.1f} MB")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="Benchmark plumb's Git source against git.")
    ap.add_argument("--commits", type=int, default=5000, help="commits in the history (default 5000)")
    ap.add_argument("--files", type=int, default=2000, help="files in the first commit (default 2000)")
    ap.add_argument("--cat-calls", type=int, default=10, help="cat invocations per sample (default 10)")
    base.add_common_args(ap, runs=3)
    args = ap.parse_args()
    if args.commits < 4 * (DIFF_SPAN + 10) or args.files < 10 or args.runs < 1 or args.cat_calls < 1:
        ap.error(f"need --commits ≥ {4 * (DIFF_SPAN + 10)}, --files ≥ 10, positive --runs and --cat-calls")
    if not base.resolve_paths(args):
        return 1
    if not shutil.which("git"):
        print("git not found on PATH", file=sys.stderr)
        return 1
    try:
        summary = bench(args)
    except BenchError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2) if args.json else report(summary))
    missed = [k for k, v in summary["results"].items() if not v.get("pass", True)]
    return 2 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
