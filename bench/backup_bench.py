#!/usr/bin/env python3
"""`plumb backup` against `cp -a` of the same store's files, in one run.

Usage:
    python3 bench/backup_bench.py [--mib 1024] [--file-kib 64] [--runs 3]
                                  [--plumb target/release/plumb] [--work bench/work/backup]
                                  [--json]

Builds a store of about --mib MiB: a directory source of incompressible
files of --file-kib KiB (so the packs hold --mib MiB), ingested once. Then,
run by run, interleaved, with the page cache dropped of nothing (both sides
read a warm source, as a backup of a busy store would):

  1. `cp -a STORE DEST` into an absent DEST (the reference), and `cp -a`
     then `sync` of DEST's file system (the reference made durable, as a
     backup is: it syncs every file it writes);
  2. `plumb backup DEST` into an absent DEST (a first backup);
     goal: throughput >= 0.8x cp -a;
  3. `plumb backup --verify-all DEST` into an absent DEST;
  4. after a small ingest (one file changed), `plumb backup DEST` into the
     backup of step 2: the incremental backup.

Reports the median seconds and MiB/s of each, the ratios, the writer turn
held (from the backup's report), and the goal with PASS/MISS. Python 3.11
standard library. Builds nothing.
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

REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_size
    return total


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, bytes]:
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env).stdout
    return time.perf_counter() - t, out


def sync() -> None:
    os.sync()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--file-kib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--plumb", type=Path, default=REPO / "target/release/plumb")
    ap.add_argument("--work", type=Path, default=REPO / "bench/work/backup")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    plumb = str(a.plumb.resolve())
    work = a.work.resolve()
    src, store = work / "src", work / "store"
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PLUMB_STORE", None)

    marker = work / f"built-{a.mib}-{a.file_kib}"
    if not marker.exists():
        shutil.rmtree(work, ignore_errors=True)
        src.mkdir(parents=True)
        n = a.mib * 1024 // a.file_kib
        log(f"writing {n} files of {a.file_kib} KiB")
        for i in range(n):
            d = src / f"d{i % 64:02}"
            d.mkdir(exist_ok=True)
            (d / f"f{i}.bin").write_bytes(os.urandom(a.file_kib * 1024))
        subprocess.run([plumb, "--store", str(store), "init"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([plumb, "--store", str(store), "source", "add", "s", str(src)], check=True,
                       stdout=subprocess.DEVNULL)
        log("ingesting")
        subprocess.run([plumb, "--store", str(store), "ingest"], check=True, stdout=subprocess.DEVNULL)
        marker.write_text("")
    size = du(store)
    log(f"store: {size / 2**20:.0f} MiB")

    def fresh(name: str) -> Path:
        p = work / name
        shutil.rmtree(p, ignore_errors=True)
        sync()
        return p

    cp, cp_sync, full, verify_all, incr, turn, incr_copied = [], [], [], [], [], [], []
    for run in range(a.runs):
        d = fresh("cp")
        cp.append(timed(["cp", "-a", str(store), str(d)])[0])
        d = fresh("cp-sync")
        t = time.perf_counter()
        subprocess.run(["cp", "-a", str(store), str(d)], check=True)
        subprocess.run(["sync", "-f", str(d)], check=True)
        cp_sync.append(time.perf_counter() - t)
        d = fresh("backup")
        t, out = timed([plumb, "--store", str(store), "backup", str(d), "--json"], env)
        full.append(t)
        turn.append(json.loads(out)["turn_ms"])
        d = fresh("verified")
        verify_all.append(timed([plumb, "--store", str(store), "backup", str(d), "--verify-all", "--json"], env)[0])
        # A small ingest, then the incremental backup into "backup".
        (src / "d00" / "changed.txt").write_text(f"run {run} {time.time()}\n")
        subprocess.run([plumb, "--store", str(store), "ingest"], check=True, stdout=subprocess.DEVNULL, env=env)
        sync()
        t, out = timed([plumb, "--store", str(store), "backup", str(work / "backup"), "--json"], env)
        incr.append(t)
        incr_copied.append(json.loads(out)["bytes"]["copied"])
        log(f"run {run + 1}: cp -a {cp[-1]:.2f}s, cp -a + sync {cp_sync[-1]:.2f}s, backup {full[-1]:.2f}s, --verify-all {verify_all[-1]:.2f}s, "
            f"incremental {incr[-1]:.3f}s")
    for name in ("cp", "cp-sync", "backup", "verified"):
        shutil.rmtree(work / name, ignore_errors=True)

    med = statistics.median
    mib = size / 2**20
    ratio = med(cp) / med(full)
    result = {
        "store_mib": round(mib),
        "cp_a_s": round(med(cp), 3),
        "backup_s": round(med(full), 3),
        "verify_all_s": round(med(verify_all), 3),
        "incremental_s": round(med(incr), 3),
        "incremental_bytes_copied": int(med(incr_copied)),
        "cp_a_mib_s": round(mib / med(cp)),
        "cp_a_sync_s": round(med(cp_sync), 3),
        "cp_a_sync_mib_s": round(mib / med(cp_sync)),
        "backup_vs_cp_a_sync": round(med(cp_sync) / med(full), 2),
        "backup_mib_s": round(mib / med(full)),
        "verify_all_mib_s": round(mib / med(verify_all)),
        "backup_vs_cp_a": round(ratio, 2),
        "turn_ms": med(turn),
        "goal": ">= 0.8x cp -a throughput",
        "verdict": "PASS" if ratio >= 0.8 else "MISS",
    }
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"store {mib:.0f} MiB, medians of {a.runs} runs")
        print(f"  cp -a             {result['cp_a_s']:7.2f}s  {result['cp_a_mib_s']:5} MiB/s")
        print(f"  cp -a + sync      {result['cp_a_sync_s']:7.2f}s  {result['cp_a_sync_mib_s']:5} MiB/s  "
              f"(backup {result['backup_vs_cp_a_sync']:.2f}x of it)")
        print(f"  backup            {result['backup_s']:7.2f}s  {result['backup_mib_s']:5} MiB/s  "
              f"{ratio:.2f}x cp -a (goal >= 0.8x: {result['verdict']}), writer turn held {result['turn_ms']} ms")
        print(f"  backup --verify-all {result['verify_all_s']:5.2f}s  {result['verify_all_mib_s']:5} MiB/s")
        print(f"  incremental       {result['incremental_s']:7.3f}s  ({result['incremental_bytes_copied']} pack bytes copied)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
