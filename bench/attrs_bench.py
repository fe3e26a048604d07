#!/usr/bin/env python3
"""Benchmark the cost of declared attributes: the first apply of the same
20,000 files with and without a `.plumbattributes` file, in one run.

Usage:
    python3 bench/attrs_bench.py [--files 20000] [--runs 5]
                                 [--plumb target/release/plumb] [--work bench/work/attrs]
                                 [--json] [--check]

Setup, untimed: two Git repositories holding the same generated tree
(`--files` small configuration files in 200 directories), one of them with
a `.plumbattributes` file that gives every file and every directory a mode,
the running user as owner and their group as group (so every path is
resolved, chowned and chmodded); `plumb init`, one Git source per
repository, `plumb ingest`. Git records no modes, so the only difference is
the declaration. Then, `--runs` times, interleaved and alternating in
order: a new target on a new empty directory and `plumb apply` (the first
apply: every file written, made durable, and recorded), timed with
sync(2) run untimed before it. Reports the median of each side and the
ratio declared/plain; the goal is at most 1.1 (exit 2 with `--check` when
missed). Correctness, untimed: after each declared apply every file must
have mode 0640 and every directory 0750, and `plumb drift --full` must
exit 0. Python 3 standard library only; builds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.1
DIRS = 200


def run(args: list[str], cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> None:
    r = subprocess.run(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode not in ok:
        sys.exit(f"{' '.join(map(str, args))}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")


def make_repo(path: Path, files: int, declared: bool) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    for i in range(files):
        d = path / f"svc{i % DIRS:03d}"
        d.mkdir(exist_ok=True)
        (d / f"conf{i:05d}.ini").write_text(f"[svc]\nid = {i}\nport = {8000 + i % 1000}\n")
    if declared:
        uid, gid = os.getuid(), os.getgid()
        (path / ".plumbattributes").write_text(
            f"* mode=0640 owner={uid} group={gid}\n*/ mode=0750 owner={uid} group={gid}\n"
        )
    env = dict(os.environ, GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000")
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "tree"]):
        r = subprocess.run(["git", *args], cwd=path, env=env, stdout=subprocess.DEVNULL)
        if r.returncode:
            sys.exit(f"git {args}: exit {r.returncode}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--plumb", default="target/release/plumb")
    p.add_argument("--work", default="bench/work/attrs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true")
    a = p.parse_args()
    plumb = Path(a.plumb).resolve()
    if not plumb.exists():
        print(f"no {plumb}: run `cargo build --release -j2` first", file=sys.stderr)
        return 1
    work = Path(a.work).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = work / "store"
    P = [str(plumb), "--store", str(store)]
    print(f"generating {a.files} files twice", file=sys.stderr)
    make_repo(work / "plain", a.files, False)
    make_repo(work / "declared", a.files, True)
    run(P + ["init"])
    for name in ("plain", "declared"):
        run(P + ["source", "add", name, str(work / name)])
    run(P + ["ingest"])
    times: dict[str, list[float]] = {"plain": [], "declared": []}
    for i in range(a.runs):
        order = ["plain", "declared"] if i % 2 == 0 else ["declared", "plain"]
        for side in order:
            name = f"{side}{i}"
            dest = work / "dest" / name
            run(P + ["target", "add", name, f"dir:{dest}", "--source", side])
            os.sync()
            t = time.perf_counter()
            run(P + ["apply", name])
            times[side].append(time.perf_counter() - t)
            if side == "declared":
                for root, dirs, files in os.walk(dest):
                    for f in files:
                        m = os.stat(os.path.join(root, f)).st_mode & 0o7777
                        assert m == 0o640, (root, f, oct(m))
                    for d in dirs:
                        m = os.stat(os.path.join(root, d)).st_mode & 0o7777
                        assert m == 0o750, (root, d, oct(m))
            run(P + ["drift", name, "--full"])
            print(f"run {i + 1}/{a.runs} {side}: {times[side][-1]:.3f}s", file=sys.stderr)
            shutil.rmtree(dest)
    plain = statistics.median(times["plain"])
    declared = statistics.median(times["declared"])
    ratio = declared / plain
    ok = ratio <= GOAL
    if a.json:
        print(json.dumps({"files": a.files, "runs": a.runs, "samples": times,
                          "median_plain_s": plain, "median_declared_s": declared,
                          "ratio": ratio, "goal": GOAL, "pass": ok}))
    else:
        print(f"first apply of {a.files} files, median of {a.runs}")
        print(f"  without attributes  {plain:8.3f} s")
        print(f"  with attributes     {declared:8.3f} s")
        print(f"  ratio {ratio:.3f} (goal <= {GOAL}): {'PASS' if ok else 'MISS'}")
    return 2 if a.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
