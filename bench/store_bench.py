#!/usr/bin/env python3
"""Many processes, one store: what a writer costs the readers, and the readers
the writer, for each of redb's sharing modes, in one run.

Usage:
    python3 bench/store_bench.py [--commits 3000] [--runs 5] [--cat-samples 200]
                                 [--plumb target/release/plumb] [--work bench/work/store]
                                 [--modes single,multi] [--json]

For each mode (`single`: redb's SingleWriter, plumb's default; `multi`:
MultiWriter, selected with PLUMB_REDB_SHARING=multi), with the measurements
interleaved run by run:

  1. `cat` latency idle: `plumb cat q@latest:f.txt`, one process at a time,
     on a store nobody writes to;
  2. `cat` latency while `plumb ingest` of a Git history of --commits
     commits runs into the same store;
     goal: p50 during ingest <= 1.5x p50 idle;
  3. ingest throughput (commits/s) alone, and with four `cat`/`log` query
     loops beside it; goal: with queries >= 0.85x alone.

Reports medians and ratios per mode, the goal and PASS/MISS. Python 3.11
standard library, git. Builds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = {"single": None, "multi": "multi"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_history(path: Path, commits: int) -> None:
    """A Git repository of `commits` commits, each changing two of 200
    small configuration files, made with git fast-import."""
    if (path / "HEAD").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    lines = []
    for c in range(commits):
        lines.append("commit refs/heads/main\n")
        lines.append(f"committer Bench <b@example.com> {1700000000 + c} +0000\n")
        msg = f"change {c}\n"
        lines.append(f"data {len(msg)}\n{msg}")
        if c == 0:
            for f in range(200):
                body = f"# file {f}\n" + "".join(f"key{k} = {f * k}\n" for k in range(40))
                lines.append(f"M 644 inline conf/d{f % 10}/f{f}.conf\ndata {len(body.encode())}\n{body}")
        for f in (c % 200, (c * 7 + 3) % 200):
            body = f"# file {f} at {c}\n" + "".join(f"key{k} = {c * k}\n" for k in range(40))
            lines.append(f"M 644 inline conf/d{f % 10}/f{f}.conf\ndata {len(body.encode())}\n{body}")
        lines.append("\n")
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        input="".join(lines).encode(),
        check=True,
    )


class Store:
    def __init__(self, plumb: Path, dir: Path, mode: str, repo: Path, small: Path):
        self.plumb, self.dir, self.repo = plumb, dir, repo
        self.env = dict(os.environ, NO_COLOR="1")
        self.env.pop("PLUMB_STORE", None)
        self.env.pop("PLUMB_REDB_SHARING", None)
        if MODES[mode]:
            self.env["PLUMB_REDB_SHARING"] = MODES[mode]
        shutil.rmtree(dir, ignore_errors=True)
        self.run("init")
        self.run("source", "add", "q", str(small), "--vcs", "dir")
        self.run("ingest", "q")
        self.sources = 0

    def cmd(self, *args: str) -> list[str]:
        return [str(self.plumb), "--store", str(self.dir), *args]

    def run(self, *args: str) -> None:
        subprocess.run(self.cmd(*args), env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def timed(self, *args: str) -> float:
        t = time.perf_counter()
        self.run(*args)
        return time.perf_counter() - t

    def new_source(self) -> str:
        self.sources += 1
        name = f"g{self.sources}"
        self.run("source", "add", name, str(self.repo), "--vcs", "git")
        return name

    def ingest(self) -> float:
        """Seconds for one full ingest of the history, as a new source."""
        return self.timed("ingest", self.new_source())

    def start_ingest(self) -> subprocess.Popen:
        name = self.new_source()
        return subprocess.Popen(self.cmd("ingest", name), env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cat_samples(store: Store, n: int, while_running: subprocess.Popen | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if while_running is not None and while_running.poll() is not None:
            break
        out.append(store.timed("cat", "q@latest:f.txt"))
    return out


def query_loops(store: Store, stop: threading.Event, count: list[int]) -> list[threading.Thread]:
    def loop(args: tuple[str, ...]) -> None:
        while not stop.is_set():
            store.run(*args)
            count[0] += 1
    threads = []
    for args in [("cat", "q@latest:f.txt"), ("log", "q"), ("cat", "q@latest:f.txt"), ("log", "q", "-n", "1")]:
        t = threading.Thread(target=loop, args=(args,))
        t.start()
        threads.append(t)
    return threads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cat-samples", type=int, default=200)
    ap.add_argument("--plumb", type=Path, default=REPO / "target/release/plumb")
    ap.add_argument("--work", type=Path, default=REPO / "bench/work/store")
    ap.add_argument("--modes", default="single,multi")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.plumb.exists():
        log(f"no plumb binary at {a.plumb}: run `cargo build --release -j2` first")
        return 1
    a.work.mkdir(parents=True, exist_ok=True)
    repo = a.work / f"history-{a.commits}.git"
    log(f"generating a history of {a.commits} commits…")
    make_history(repo, a.commits)
    small = a.work / "small"
    small.mkdir(exist_ok=True)
    (small / "f.txt").write_text("hello\n")
    modes = a.modes.split(",")
    res: dict[str, dict[str, list[float]]] = {
        m: {"cat_idle": [], "cat_busy": [], "ingest_alone": [], "ingest_queries": [], "queries": []}
        for m in modes
    }
    for run in range(a.runs):
        order = modes if run % 2 == 0 else list(reversed(modes))
        for m in order:
            log(f"run {run + 1}/{a.runs}, mode {m}")
            st = Store(a.plumb, a.work / f"store-{m}", m, repo, small)
            r = res[m]
            r["cat_idle"] += cat_samples(st, a.cat_samples)
            p = st.start_ingest()
            time.sleep(0.05)
            r["cat_busy"] += cat_samples(st, a.cat_samples, p)
            p.wait()
            # Throughput alone and beside four query loops, alternating.
            pair = [("alone", False), ("queries", True)]
            if run % 2:
                pair.reverse()
            for key, with_queries in pair:
                stop, count = threading.Event(), [0]
                threads = query_loops(st, stop, count) if with_queries else []
                secs = st.ingest()
                stop.set()
                for t in threads:
                    t.join()
                r[f"ingest_{key}"].append(a.commits / secs)
                if with_queries:
                    r["queries"].append(count[0] / secs)
    summary = {}
    for m in modes:
        r = res[m]
        med = {k: statistics.median(v) if v else float("nan") for k, v in r.items()}
        summary[m] = {
            "cat_idle_p50_ms": med["cat_idle"] * 1000,
            "cat_busy_p50_ms": med["cat_busy"] * 1000,
            "cat_ratio": med["cat_busy"] / med["cat_idle"],
            "ingest_alone_commits_per_s": med["ingest_alone"],
            "ingest_queries_commits_per_s": med["ingest_queries"],
            "ingest_ratio": med["ingest_queries"] / med["ingest_alone"],
            "queries_per_s": med["queries"],
            "cat_busy_samples": len(r["cat_busy"]),
        }
    if a.json:
        print(json.dumps({"commits": a.commits, "runs": a.runs, "modes": summary, "samples": res}, indent=2))
        return 0
    print(f"{a.commits} commits, {a.runs} runs, medians")
    print(f"{'mode':<7} {'cat idle':>9} {'cat busy':>9} {'ratio':>6} {'goal':>6}  "
          f"{'ingest':>9} {'+queries':>9} {'ratio':>6} {'goal':>6}  {'q/s':>6}")
    for m, s in summary.items():
        cat_ok = "PASS" if s["cat_ratio"] <= 1.5 else "MISS"
        ing_ok = "PASS" if s["ingest_ratio"] >= 0.85 else "MISS"
        print(f"{m:<7} {s['cat_idle_p50_ms']:>7.2f}ms {s['cat_busy_p50_ms']:>7.2f}ms "
              f"{s['cat_ratio']:>6.2f} {cat_ok:>6}  {s['ingest_alone_commits_per_s']:>7.0f}/s "
              f"{s['ingest_queries_commits_per_s']:>7.0f}/s {s['ingest_ratio']:>6.2f} {ing_ok:>6}  "
              f"{s['queries_per_s']:>6.0f}")
    print("cat goal: p50 during an ingest <= 1.5x idle; ingest goal: with four query loops >= 0.85x alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
