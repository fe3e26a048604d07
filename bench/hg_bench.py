#!/usr/bin/env python3
"""Benchmark plumb's Mercurial source against hg, side by side.

Usage:
    python3 bench/hg_bench.py [--changesets 5000] [--files 2000] [--runs 3]
                              [--plumb target/release/plumb] [--work bench/work]
                              [--json] [--check]

Builds (once, cached under --work) a repository of --changesets changesets
over --files files of INI-like config in nested directories: the first
changeset adds every file, each later one edits one to three files (some
add a file or rename one), and every 250th is a merge of a short side
branch. The repository is written in one `hg` process by a small generator
extension (`memctx` commits), which takes seconds rather than the minutes
thousands of `hg commit` runs would.

Then measures, with the two tools interleaved (the order alternates from
run to run, so machine drift hits both alike):

  1. full ingest into a fresh store (`plumb ingest`) vs
     `hg --config extensions.fastexport= fastexport > /dev/null`
     (goal: ratio <= 0.33),
  2. reading one file of an old changeset, per call
     (`plumb cat NAME@<node>:PATH` vs `hg cat -r <node> PATH`; goal <= 0.2),
  3. a second ingest with nothing new (absolute; goal < 50 ms).

Correctness checks stop the run with FAIL: every command exits 0, the
ingest records every changeset, and `plumb cat` prints exactly what
`hg cat` prints. Python 3.11 standard library only; builds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = "hgbench"
GEN_VERSION = 1  # bump when the generator changes: the cache is keyed by it
FILES_PER_DIR = 50
FANOUT = 8

GOALS = {
    "ingest": ("<=", 0.33, "≤0.33"),
    "cat": ("<=", 0.2, "≤0.20"),
    "noop_ms": ("<", 50.0, "<50 ms"),
}

WORDS = (
    "server client listen port host timeout retry backoff limit cache size path root "
    "log level format user group mode owner token secret key cert tls proxy upstream "
    "backend frontend route rule match enabled max min interval threshold replicas "
    "image tag version name namespace label selector memory cpu volume mount"
).split()
EXTS = ("conf", "yaml", "ini", "toml", "cfg")

# The generator: an hg extension adding a command that writes the whole
# history in-process. It is written into --work and loaded with
# `--config extensions.plumbgen=PATH`.
GENERATOR = r'''
import json
from mercurial import context, registrar

cmdtable = {}
command = registrar.command(cmdtable)

@command(b'plumbgen', [], b'PLAN')
def plumbgen(ui, repo, plan):
    with open(plan, 'rb') as f:
        steps = json.load(f)
    with repo.wlock(), repo.lock(), repo.transaction(b'plumbgen'):
        nodes = []
        for step in steps:
            files = {k.encode(): (v if v is None else v.encode()) for k, v in step['files'].items()}
            copies = {k.encode(): v.encode() for k, v in step.get('copies', {}).items()}
            parents = [nodes[p] if p >= 0 else repo.nullid for p in step['parents']]
            while len(parents) < 2:
                parents.append(repo.nullid)

            def filectx(repo, mctx, path, files=files, copies=copies):
                data = files[path]
                if data is None:
                    return None
                return context.memfilectx(repo, mctx, path, data, copysource=copies.get(path))

            ctx = context.memctx(repo, parents, step['message'].encode(), list(files),
                                 filectx, user=b'Bench <bench@example.com>',
                                 date=(step['time'], 0),
                                 extra={b'branch': step.get('branch', 'default').encode()})
            nodes.append(repo.commitctx(ctx))
'''


class BenchError(Exception):
    """A failed command or check: the numbers are void."""


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def hg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HG", "PLUMB_"))}
    env.update(HGPLAIN="1", HGRCPATH="/dev/null", HGUSER="Bench <bench@example.com>")
    env.pop("RUST_LOG", None)
    return env


def run(cmd: list[str], cwd: Path | None = None, stdout=subprocess.PIPE) -> tuple[float, bytes]:
    """Runs `cmd`; returns wall time from spawn to exit and its stdout."""
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=hg_env(), stdout=stdout, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}")
    return dt, p.stdout or b""


def content(rng: random.Random, lines: int) -> str:
    out = []
    for s in range(max(1, lines // 8)):
        out.append(f"[{rng.choice(WORDS)}-{s}]")
        for _ in range(8):
            out.append(f"{rng.choice(WORDS)}_{rng.choice(WORDS)} = {rng.randrange(100000)}")
        out.append("")
    return "\n".join(out) + "\n"


def dir_of(i: int) -> str:
    parts = []
    d = i // FILES_PER_DIR
    while True:
        parts.append(f"{WORDS[d % len(WORDS)]}-{d % FANOUT}")
        d //= FANOUT
        if d == 0:
            break
    return "/".join(reversed(parts))


def plan(changesets: int, files: int, seed: int) -> list[dict]:
    """The history, as the generator's steps."""
    rng = random.Random(seed)
    names = [f"{dir_of(i)}/{rng.choice(WORDS)}-{i}.{rng.choice(EXTS)}" for i in range(files)]
    state = {n: content(rng, rng.randrange(8, 80)) for n in names}
    steps = [{"parents": [-1], "files": dict(state), "message": "initial import", "time": 1_700_000_000}]
    head, side = 0, None
    for c in range(1, changesets):
        step: dict = {"files": {}, "time": 1_700_000_000 + 60 * c}
        if c % 250 == 0 and side is not None:
            step.update(parents=[head, side], message=f"merge side branch at {c}")
            side = None
            steps.append(step)
            head = len(steps) - 1
            continue
        on_side = c % 250 > 240
        if on_side and side is None:
            side = head
        for _ in range(rng.randrange(1, 4)):
            name = rng.choice(names)
            lines = state[name].split("\n")
            at = rng.randrange(len(lines))
            lines[at] = f"{rng.choice(WORDS)} = {rng.randrange(10**6)}  # change {c}"
            state[name] = "\n".join(lines)
            step["files"][name] = state[name]
        if c % 97 == 0:
            name = f"{dir_of(rng.randrange(files))}/added-{c}.conf"
            names.append(name)
            state[name] = content(rng, 16)
            step["files"][name] = state[name]
        if c % 211 == 0:
            old = rng.choice(names)
            if old not in step["files"]:
                new = old.rsplit("/", 1)[0] + f"/renamed-{c}.conf"
                names.remove(old)
                names.append(new)
                state[new] = state.pop(old)
                step["files"][old] = None
                step["files"][new] = state[new]
                step["copies"] = {new: old}
        step["message"] = f"change {c}"
        if on_side:
            step["parents"] = [side]
            step["branch"] = "default"
            steps.append(step)
            side = len(steps) - 1
        else:
            step["parents"] = [head]
            steps.append(step)
            head = len(steps) - 1
    return steps


def ensure_repo(work: Path, changesets: int, files: int, seed: int) -> Path:
    repo = work / f"hg-c{changesets}-f{files}-s{seed}-v{GEN_VERSION}"
    if (repo / ".hg" / "plumbgen-done").exists():
        return repo
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    log(f"generating {changesets} changesets over {files} files in {repo}")
    t = time.perf_counter()
    gen = work / "plumbgen.py"
    gen.write_text(GENERATOR)
    plan_file = work / "plumbgen-plan.json"
    plan_file.write_text(json.dumps(plan(changesets, files, seed)))
    run(["hg", "init", str(repo)])
    run(["hg", "--config", f"extensions.plumbgen={gen}", "plumbgen", str(plan_file)], cwd=repo)
    run(["hg", "update", "-q", "tip"], cwd=repo)
    plan_file.unlink()
    (repo / ".hg" / "plumbgen-done").write_text("ok\n")
    log(f"generated in {time.perf_counter() - t:.1f} s")
    return repo


def plumb_cmd(plumb: Path, store: Path, *args: str) -> list[str]:
    return [str(plumb), "--store", str(store), *args]


def side_by_side(p: list[float], h: list[float], key: str) -> dict:
    pm, hm = statistics.median(p), statistics.median(h)
    ratio = pm / hm if hm else float("inf")
    paired = statistics.median(a / b for a, b in zip(p, h) if b)
    op, bound, label = GOALS[key]
    ok = ratio <= bound if op == "<=" else ratio < bound
    return {"plumb": pm, "hg": hm, "ratio": ratio, "paired_ratio": paired, "goal": label,
            "pass": ok, "plumb_samples": p, "hg_samples": h}


def bench(args: argparse.Namespace) -> dict:
    plumb = Path(args.plumb).resolve()
    if not plumb.exists():
        raise BenchError(f"{plumb} is missing: run `cargo build --release` first")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    repo = ensure_repo(work, args.changesets, args.files, args.seed)
    nodes = run(["hg", "log", "-r", "all()", "-T", "{node}\n"], cwd=repo)[1].decode().split()
    nfiles = len(run(["hg", "files", "-r", "tip"], cwd=repo)[1].splitlines())
    log(f"repository: {len(nodes)} changesets, {nfiles} files at tip")
    scratch = work / "hg-run"

    ingest_p, ingest_h = [], []
    store = scratch / "store"
    for i in range(args.runs):
        order = ("plumb", "hg") if i % 2 == 0 else ("hg", "plumb")
        for side in order:
            if side == "plumb":
                if scratch.exists():
                    shutil.rmtree(scratch)
                scratch.mkdir(parents=True)
                run(plumb_cmd(plumb, store, "init"))
                run(plumb_cmd(plumb, store, "source", "add", SOURCE, str(repo), "--vcs", "hg"))
                subprocess.run(["sync"])
                dt, out = run(plumb_cmd(plumb, store, "ingest", SOURCE))
                if f"{len(nodes)} new snapshots" not in out.decode():
                    raise BenchError(f"plumb ingest recorded the wrong number of snapshots: {out!r}")
                ingest_p.append(dt)
                log(f"run {i + 1}: plumb ingest {dt:.2f} s")
            else:
                with open(os.devnull, "wb") as null:
                    dt, _ = run(["hg", "--config", "extensions.fastexport=", "fastexport"], cwd=repo, stdout=null)
                ingest_h.append(dt)
                log(f"run {i + 1}: hg fastexport {dt:.2f} s")

    # Reading one file of an old changeset.
    rng = random.Random(args.seed)
    picks = []
    for _ in range(args.cat_calls):
        node = nodes[rng.randrange(len(nodes) // 2)]
        files = run(["hg", "files", "-r", node], cwd=repo)[1].decode().split("\n")
        picks.append((node, rng.choice([f for f in files if f])))
    cat_p, cat_h = [], []
    for i in range(args.runs):
        for side in (("plumb", "hg") if i % 2 == 0 else ("hg", "plumb")):
            total = 0.0
            for node, path in picks:
                if side == "plumb":
                    dt, out = run(plumb_cmd(plumb, store, "cat", f"{SOURCE}@{node}:{path}"))
                    want = run(["hg", "cat", "-r", node, path], cwd=repo)[1] if i == 0 else None
                    if want is not None and out != want:
                        raise BenchError(f"plumb cat {node}:{path} differs from hg cat")
                else:
                    dt, _ = run(["hg", "cat", "-r", node, path], cwd=repo)
                total += dt
            (cat_p if side == "plumb" else cat_h).append(total / len(picks))

    noop = []
    for _ in range(max(3, args.runs)):
        dt, out = run(plumb_cmd(plumb, store, "ingest", SOURCE))
        if "up to date" not in out.decode():
            raise BenchError(f"second ingest recorded something: {out!r}")
        noop.append(dt * 1000)
    noop_ms = statistics.median(noop)
    return {
        "changesets": len(nodes),
        "files": nfiles,
        "plumb": str(plumb),
        "debug_build": "debug" in plumb.parts,
        "ingest": side_by_side(ingest_p, ingest_h, "ingest"),
        "cat": side_by_side(cat_p, cat_h, "cat"),
        "noop_ms": {"median": noop_ms, "samples": noop, "goal": GOALS["noop_ms"][2],
                    "pass": noop_ms < GOALS["noop_ms"][1]},
    }


def fmt(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def report(r: dict) -> str:
    lines = [
        f"plumb vs hg: {r['changesets']} changesets, {r['files']} files at tip"
        + ("  [DEBUG BUILD: numbers say nothing]" if r["debug_build"] else ""),
        f"{'measurement':<34}{'plumb':>11}{'hg':>11}{'ratio':>8}{'paired':>8}{'goal':>9}  result",
    ]
    for key, label in (("ingest", "full ingest vs fastexport"), ("cat", "cat one old file, per call")):
        m = r[key]
        lines.append(f"{label:<34}{fmt(m['plumb']):>11}{fmt(m['hg']):>11}{m['ratio']:>8.3f}"
                     f"{m['paired_ratio']:>8.3f}{m['goal']:>9}  {'PASS' if m['pass'] else 'MISS'}")
    n = r["noop_ms"]
    lines.append(f"{'second ingest, nothing new':<34}{n['median']:>8.1f} ms{'':>11}{'':>8}{'':>8}"
                 f"{n['goal']:>9}  {'PASS' if n['pass'] else 'MISS'}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changesets", type=int, default=5000)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--plumb", default=str(REPO / "target" / "release" / "plumb"))
    ap.add_argument("--work", default=str(REPO / "bench" / "work"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cat-calls", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if shutil.which("hg") is None:
        print("FAIL: hg is not installed", file=sys.stderr)
        return 1
    try:
        r = bench(args)
    except BenchError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(json.dumps(r, indent=2) if args.json else report(r))
    if args.check and not all(r[k]["pass"] for k in ("ingest", "cat", "noop_ms")):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
