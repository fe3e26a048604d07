#!/usr/bin/env python3
"""Benchmark plumb's reconciler against rsync, side by side, on one generated tree.

Usage:
    python3 bench/reconcile_bench.py [--files 20000] [--mb 200] [--runs 5]
                                     [--plumb target/release/plumb] [--work bench/work]
                                     [--json] [--check]

The tree is bench.py's generated config tree (same generator, same cache
under --work). Setup, untimed: `plumb init`, `plumb source add NAME TREE
--vcs dir`, `plumb ingest NAME`. Then, each --runs times with the two tools
interleaved (the order alternates from run to run) and each tool writing to
its own destination directory on the same file system:

  1. first apply into an empty directory: `plumb apply T` (a new target,
     hence an empty inventory, and a new empty directory every run; the
     store and its snapshot are set up once) vs `rsync -a SRC/ DST/`;
  2. one file changed in the source, `plumb ingest` (untimed), then
     `plumb apply T` vs `rsync -a --checksum --delete SRC/ DST/`, each into
     the full copy the last run of (1) left;
  3. drift with nothing changed: `plumb drift T` (exit 0) vs
     `rsync -an --delete SRC/ DST/` (size and mtime only);
  4. `plumb drift T --full` (hashes every file) vs `rsync -anc --delete SRC/ DST/`;
  5. peak RSS of the first apply (wait4(2), as bench.py reads it).

Reports medians, the ratio plumb/rsync (below 1: plumb is faster), the
goal and PASS/MISS.

Not the same work: plumb's apply makes every file durable (each written to a
temporary file, one syncfs(2) on the destination's file system, then renamed
into place and the directories synced) and records what it applied in its
store; rsync -a syncs nothing (its writes sit in the page cache until the
kernel writes them back). sync(2) runs, untimed, before every timed command,
so neither side pays for the other's dirty pages.

The page cache is warm for both: before any timing, every source file is
read once (bench.warm_up), so are the files of the plumb store after the
ingest, and both binaries are run once; the destination trees are the
files the tools just wrote, and the correctness check (`diff -rq` against
the source) reads them again before the drift measurements.

Correctness, outside the timing: after every apply, each destination must
list exactly the source's paths with the same types, permission bits and
sizes, a sample of files (and the edited one) must hash alike, and
`diff -rq SRC DST` must find nothing; every plumb drift must exit 0 and
`rsync -ani --delete` (and -anic) must report nothing to do. Python 3.11
standard library only; builds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import stat
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as base  # noqa: E402  (the generator, runner and report helpers)
from bench import (  # noqa: E402
    MB,
    NEW_SNAPSHOT,
    RSS_METHODS,
    BenchError,
    Runner,
    clean_env,
    ensure_data,
    file_content,
    fmt_spread,
    fmt_time,
    log,
    median,
    mutated,
    pick_rss_method,
    render_table,
    side_by_side,
    warm_up,
)

REPO = base.REPO
SOURCE = "reconcile"  # the plumb source name
TARGET = "apply"  # prefix of the plumb target names, one per first-apply run
SAMPLE = 200  # files whose content is hashed after every apply

GOALS = {
    # key: (comparison, bound, label)
    "apply": ("<=", 1.0, "≤1.00"),
    # For information: the same work made durable on the rsync side too.
    "apply_durable": ("<=", 1.0, "info"),
    "one_change": ("<=", 0.25, "≤0.25"),
    "drift": ("<=", 1.0, "≤1.00"),
    "drift_full": ("<=", 1.0, "≤1.00"),
}

APPLIED = re.compile(rb"applied snapshot \S+ \(run \d+\): (\d+) created, (\d+) updated, (\d+) deleted, (\d+) unchanged")


def applied_counts(out: bytes) -> tuple[int, int, int, int]:
    """(created, updated, deleted, unchanged) from `plumb apply`'s summary line."""
    m = APPLIED.search(out)
    if not m:
        raise BenchError(f"plumb apply printed no summary line: {out[-500:]!r}")
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


# --------------------------------------------------------------------------
# Correctness


def listing(root: Path) -> list[tuple[str, str, int, int]]:
    """(relative path, type, permission bits, size) of everything under
    root, sorted; a directory's size is left out (it depends on history)."""
    out = []
    for dirpath, dirs, names in os.walk(root):
        for n in dirs + names:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            kind = "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "other"
            out.append((os.path.relpath(p, root), kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "f" else 0))
    out.sort()
    return out


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(r: Runner, tree: Path, want: list, dst: Path, sample: list[str], who: str) -> None:
    """dst must equal tree: same listing, same content of `sample`, and
    `diff -rq` finds nothing."""
    got = listing(dst)
    if got != want:
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        raise BenchError(f"{who}: {dst} does not match the source ({len(got)} entries, {len(want)} expected); "
                         f"missing or different e.g. {missing}, unexpected e.g. {extra}")
    for rel in sample:
        if digest(tree / rel) != digest(dst / rel):
            raise BenchError(f"{who}: {dst / rel} differs from the source")
    diff = r.timed(["diff", "-rq", str(tree), str(dst)], check=False)
    if diff.rc != 0:
        raise BenchError(f"{who}: diff -rq {tree} {dst} found differences:\n"
                         f"{(diff.out + diff.err).decode(errors='replace')[:2000]}")


def read_all(root: Path) -> int:
    """Read every file under root once (page cache warm-up); bytes read."""
    n = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while chunk := f.read(1 << 20):
                    n += len(chunk)
    return n


# --------------------------------------------------------------------------
# The benchmark


def bench(args: argparse.Namespace) -> dict:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tree, entries = ensure_data(work, args.files, args.mb, args.seed)

    run_dir = (args.dest or work) / "reconcile-run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir()
    scratch = run_dir / "out"
    scratch.mkdir()
    r = Runner(scratch, clean_env(), pick_rss_method(args.rss))

    # The file changed for measurement 2: restored to its generated content
    # first (a killed earlier run may have left an edit) and at the end, so
    # the cached tree stays valid for bench.py too.
    edit_index = len(entries) // 2
    edit_rel = entries[edit_index][0]
    edit_path = tree / edit_rel
    original = file_content(args.seed, edit_index, entries[edit_index][1])

    def restore() -> None:
        if edit_path.read_bytes() != original:
            edit_path.write_bytes(original)

    restore()
    try:
        return _bench(args, r, tree, entries, run_dir, edit_rel, edit_path, original)
    finally:
        restore()


def _bench(args, r: Runner, tree: Path, entries, run_dir: Path, edit_rel: str, edit_path: Path,
           original: bytes) -> dict:
    plumb, rsync, runs = args.plumb, args.rsync, args.runs
    store = run_dir / "store"
    results: dict = {}
    notes: list[str] = []
    total_bytes = sum(s for _, s in entries)

    def pl(*a) -> list:
        return [plumb, "--store", store, *a]

    src = f"{tree}/"  # rsync: the trailing slash copies the contents

    # ---- setup (untimed) -------------------------------------------------
    log("warm-up: reading the whole tree and both binaries once (untimed) so all comes from the page cache")
    warm_up(tree, entries)
    r.out([plumb, "--version"])
    r.out([rsync, "--version"])
    log("setup: plumb init, source add, ingest (untimed)")
    r.out(pl("init"))
    r.out(pl("source", "add", SOURCE, tree, "--vcs", "dir"))
    out = r.out(pl("ingest", SOURCE))
    if not NEW_SNAPSHOT.search(out):
        raise BenchError(f"plumb ingest did not report a new snapshot: {out!r}")
    store_bytes = read_all(store)
    log(f"store read once too ({store_bytes / MB:.1f} MB)")

    want = listing(tree)
    rng = random.Random(f"{args.seed}:reconcile-sample")
    sample = sorted({*rng.sample([rel for rel, _ in entries], min(SAMPLE, len(entries))), edit_rel})
    ndirs = sum(1 for e in want if e[1] == "d")

    # ---- 1. first apply into an empty directory ---------------------------
    floor = median([r.measured(["true"]).maxrss_kb * 1024 / MB for _ in range(3)])
    log(f"peak RSS via {RSS_METHODS[r.rss_method]}; the method's floor (max RSS of `true`) is {floor:.1f} MB")
    log(f"first apply into an empty directory: {runs} runs, plumb and rsync interleaved")
    p_times, s_times, p_rss, s_rss, sd_times = [], [], [], [], []
    pdst = sdst = None
    target = None
    for i in range(runs):
        if pdst is not None:  # keep only the last run's copies (for 2-4)
            r.out(pl("target", "remove", target))
            shutil.rmtree(pdst)
            shutil.rmtree(sdst)
        target = f"{TARGET}-{i}"
        pdst = run_dir / f"plumb-dst-{i}"
        sdst = run_dir / f"rsync-dst-{i}"
        pdst.mkdir()
        sdst.mkdir()
        r.out(pl("target", "add", target, f"dir:{pdst}", "--source", SOURCE, "--prune"))

        def do_plumb() -> None:
            run = r.measured(pl("apply", target))
            created, updated, deleted, kept = applied_counts(run.out)
            if (created, updated, deleted, kept) != (len(want), 0, 0, 0):
                raise BenchError(f"first plumb apply: {created} created, {updated} updated, {deleted} deleted, "
                                 f"{kept} unchanged; expected {len(want)} created ({len(entries)} files, "
                                 f"{ndirs} directories) and nothing else")
            p_times.append(run.seconds)
            p_rss.append(run.maxrss_kb * 1024 / MB)

        def do_rsync() -> None:
            run = r.measured([rsync, "-a", src, f"{sdst}/"])
            s_times.append(run.seconds)
            s_rss.append(run.maxrss_kb * 1024 / MB)
            # What making rsync's copy durable costs: syncfs(2) of its file system.
            flush = r.timed(["sync", "-f", str(sdst)])
            sd_times.append(run.seconds + flush.seconds)

        for step in (do_plumb, do_rsync) if i % 2 == 0 else (do_rsync, do_plumb):
            os.sync()  # no write-back of the other side's output during this one
            step()
        verify(r, tree, want, pdst, sample, "plumb apply")
        verify(r, tree, want, sdst, sample, "rsync -a")
        log(f"  run {i + 1}/{runs}: plumb {p_times[-1]:.2f} s ({p_rss[-1]:.0f} MB), "
            f"rsync {s_times[-1]:.2f} s ({s_rss[-1]:.0f} MB); both copies verified")
    results["apply"] = side_by_side(p_times, s_times, "apply", "s", GOALS, "rsync")
    durable = side_by_side(p_times, sd_times, "apply_durable", "s", GOALS, "rsync")
    durable.pop("pass")  # informative: not a goal
    results["apply_durable"] = durable
    results["peak_rss"] = {
        "plumb_mb": p_rss,
        "rsync_mb": s_rss,
        "plumb_median": median(p_rss),
        "rsync_median": median(s_rss),
        "plumb_max": max(p_rss),
        "rsync_max": max(s_rss),
        "ratio": median(p_rss) / median(s_rss),
        "method": r.rss_method,
        "floor_mb": floor,
    }

    # ---- 2. apply after one file changed ---------------------------------
    log(f"apply after one file changed ({edit_rel}): {runs} runs, into the last full copies")
    p_times, s_times = [], []
    for i in range(runs):
        new = mutated(original, i)
        edit_path.write_bytes(new)
        out = r.out(pl("ingest", SOURCE))
        if not NEW_SNAPSHOT.search(out):
            raise BenchError(f"plumb ingest after the edit did not report a new snapshot: {out!r}")

        def do_plumb() -> None:
            run = r.timed(pl("apply", target))
            counts = applied_counts(run.out)
            if counts != (0, 1, 0, len(want) - 1):
                raise BenchError(f"plumb apply after a one-file change: {counts} (created, updated, deleted, "
                                 f"unchanged); expected (0, 1, 0, {len(want) - 1})")
            p_times.append(run.seconds)

        def do_rsync() -> None:
            run = r.timed([rsync, "-a", "--checksum", "--delete", src, f"{sdst}/"])
            s_times.append(run.seconds)

        for step in (do_plumb, do_rsync) if i % 2 == 0 else (do_rsync, do_plumb):
            os.sync()
            step()
        for who, d in (("plumb apply", pdst), ("rsync -a --checksum --delete", sdst)):
            if (d / edit_rel).read_bytes() != new:
                raise BenchError(f"{who}: {d / edit_rel} does not hold the edited content")
        verify(r, tree, want_now := listing(tree), pdst, sample, "plumb apply")
        verify(r, tree, want_now, sdst, sample, "rsync -a --checksum --delete")
        log(f"  run {i + 1}/{runs}: plumb {p_times[-1] * 1000:.0f} ms, rsync {s_times[-1] * 1000:.0f} ms; "
            "both copies verified")
    results["one_change"] = side_by_side(p_times, s_times, "one_change", "s", GOALS, "rsync")

    # ---- 3, 4. drift, nothing changed ------------------------------------
    for flags in (["-ani"], ["-anic"]):
        run = r.timed([rsync, *flags, "--delete", src, f"{sdst}/"])
        if run.out.strip():
            raise BenchError(f"rsync {flags[0]} --delete reports changes on an identical copy:\n"
                             f"{run.out.decode(errors='replace')[:2000]}")
    for key, full, rflags in (("drift", False, "-an"), ("drift_full", True, "-anc")):
        pcmd = pl("drift", target, *(["--full"] if full else []))
        scmd = [rsync, rflags, "--delete", src, f"{sdst}/"]
        log(f"{' '.join(map(str, pcmd[3:]))} vs rsync {rflags} --delete: {runs} runs")
        p_times, s_times = [], []

        def do_plumb() -> None:
            run = r.timed(pcmd, check=False)
            if run.rc != 0 or b"in sync" not in run.out:
                raise BenchError(f"plumb drift{' --full' if full else ''} on an untouched copy: exit {run.rc} "
                                 f"(0 expected)\n{(run.out + run.err).decode(errors='replace')[:2000]}")
            p_times.append(run.seconds)

        def do_rsync() -> None:
            s_times.append(r.timed(scmd).seconds)

        for i in range(runs):
            for step in (do_plumb, do_rsync) if i % 2 == 0 else (do_rsync, do_plumb):
                os.sync()
                step()
            log(f"  run {i + 1}/{runs}: plumb {p_times[-1] * 1000:.0f} ms, rsync {s_times[-1] * 1000:.0f} ms")
        results[key] = side_by_side(p_times, s_times, key, "s", GOALS, "rsync")

    return {
        "params": {
            "files": len(entries),
            "dirs": ndirs,
            "mb": args.mb,
            "data_bytes": total_bytes,
            "runs": runs,
            "seed": args.seed,
        },
        "env": {
            "plumb": str(plumb),
            "plumb_version": r.out([plumb, "--version"]).decode().strip(),
            "rsync": str(rsync),
            "rsync_version": " ".join(r.out([rsync, "--version"]).decode().splitlines()[0].split()),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "results": results,
        "notes": notes,
    }


# --------------------------------------------------------------------------
# Report


def report(s: dict) -> str:
    p, res = s["params"], s["results"]
    lines = []
    lines.append(f"plumb reconcile bench: {p['files']} files in {p['dirs']} directories, "
                 f"{p['data_bytes'] / MB:.1f} MB, {p['runs']} run{'s' if p['runs'] != 1 else ''} "
                 "interleaved, medians shown")
    lines.append(f"  {s['env']['plumb_version']} ({s['env']['plumb']}) vs {s['env']['rsync_version']}, "
                 f"{s['env']['cpus']} CPUs, Python {s['env']['python']}")
    if "/debug/" in s["env"]["plumb"]:
        lines.append("  WARNING: a debug build; these numbers say nothing about release performance")
    lines.append("")
    rows = [("measure", "plumb", "rsync", "ratio", "goal", "result")]
    labels = {
        "apply": ("first apply, empty dir", "rsync -a"),
        "apply_durable": ("first apply, durable", "rsync -a; sync -f"),
        "one_change": ("apply, 1 file changed", "rsync -a -c --delete"),
        "drift": ("drift, nothing changed", "rsync -an --delete"),
        "drift_full": ("drift --full", "rsync -anc --delete"),
    }
    for key, (label, _) in labels.items():
        d = res[key]
        verdict_text = "-" if "pass" not in d else ("PASS" if d["pass"] else "MISS")
        rows.append((label, fmt_time(d["plumb_median"]), fmt_time(d["rsync_median"]), f"{d['ratio']:.2f}",
                     d["goal"], verdict_text))
    m = res["peak_rss"]
    rows.append(("peak RSS, first apply", f"{m['plumb_median']:.1f} MB", f"{m['rsync_median']:.1f} MB",
                 f"{m['ratio']:.2f}", "-", "-"))
    lines.extend(render_table(rows))
    lines.append("")
    lines.append("compared with (rsync side), spread (min–max over runs) and median of per-run ratios:")
    for key, (label, cmd) in labels.items():
        d = res[key]
        scale, unit = (1, "s") if d["plumb_median"] >= 1 else (1000, "ms")
        lines.append(f"  {label:<23} {cmd:<21} plumb {fmt_spread(d['plumb'], scale):<13} "
                     f"rsync {fmt_spread(d['rsync'], scale):<13} {unit:<2}  paired ratio {d['paired_ratio_median']:.2f}")
    lines.append(f"  peak RSS MB: plumb {fmt_spread(m['plumb_mb'])}, rsync {fmt_spread(m['rsync_mb'])} "
                 f"(rsync: largest of its processes); read via {RSS_METHODS[m['method']]}, "
                 f"floor {m['floor_mb']:.1f} MB")
    lines.append("")
    lines.append("notes:")
    lines.append("  ratios are plumb/rsync; times are wall clock of spawn to exit, page cache warm for both;")
    lines.append("  plumb apply makes every file durable (temp file, one syncfs, rename, directories synced)")
    lines.append("  and records its inventory; rsync does not sync; sync(2) runs untimed before every timed command;")
    lines.append("  every destination was checked against the source (listing, sample hashes, diff -rq) after each apply.")
    for n in s["notes"]:
        lines.append(f"  {n}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="Benchmark plumb's reconciler against rsync on a generated tree.")
    ap.add_argument("--files", type=int, default=20000, help="number of files (default 20000)")
    ap.add_argument("--mb", type=float, default=200, help="total size in MB = 10^6 bytes (default 200)")
    base.add_common_args(ap, runs=5)
    ap.add_argument("--dest", type=Path, default=None,
                    help="where the store and destination trees go (default: --work); a freshly made file "
                         "system avoids ext4's slow inode allocation after large deletions, which hits "
                         "both tools but unevenly")
    args = ap.parse_args()
    if args.files < 1 or args.runs < 1 or args.mb <= 0:
        ap.error("--files, --runs and --mb must be positive")

    if not base.resolve_paths(args):
        return 1
    args.rsync = shutil.which("rsync")
    if not args.rsync:
        print("rsync not found on PATH (apt-get install rsync)", file=sys.stderr)
        return 1
    for tool in ("diff",):
        if not shutil.which(tool):
            print(f"{tool} not found on PATH", file=sys.stderr)
            return 1
    t0 = time.perf_counter()
    try:
        summary = bench(args)
    except BenchError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    log(f"done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(report(summary))
    missed = [k for k, v in summary["results"].items() if "pass" in v and not v["pass"]]
    return 2 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
