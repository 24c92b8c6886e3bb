"""Run every STEVE benchmark against git and print one markdown report.

    python bench/run_all.py [--quick]
    python bench/run_all.py --check

``--quick`` uses fewer runs (and a 256 MiB file instead of 1 GiB) for a
smoke check; the figures in docs/benchmarks.md come from the full run.
Takes about 5 minutes on a 2-core machine and needs ~4 GiB of free space
in the temp directory (or STEVE_BENCH_TMP).

``--check`` runs every benchmark of a performance goal (issue 13) quickly,
on smaller inputs where the goal is a ratio, and prints one line per goal
with its figure and PASS or FAIL; it exits 1 if any goal fails.  A
regression shows in one command (a few minutes); it is not part of CI, and
on a loaded machine a ratio near its goal may flip between runs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    bench_build,
    bench_catfile,
    bench_container,
    bench_events,
    bench_export,
    bench_ingest,
    bench_large,
    bench_startup,
    bench_verify,
)
from bench.common import Report, git_exe, steve_exe, table


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), {mem} RAM, "
        f"{platform.system()} {platform.release()}\n"
        f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def versions() -> str:
    from sqlcipher3 import dbapi2 as sqlite

    conn = sqlite.connect(":memory:")
    cipher = conn.execute("PRAGMA cipher_version").fetchone()
    sqlite_version = conn.execute("SELECT sqlite_version()").fetchone()[0]
    conn.close()
    git = subprocess.run(
        [git_exe(), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return (
        f"- python {platform.python_version()} ({sys.executable})\n"
        f"- {git}\n"
        f"- SQLCipher {cipher[0] if cipher else '?'} (SQLite {sqlite_version})\n"
        f"- steve: {steve_exe()}"
    )


def check() -> int:
    """Each goal of issue 13 with its figure and PASS/FAIL; 1 if any fails."""
    started = time.time()
    print(machine())
    steps = (
        ("1. verify / fsck (100,001 objects)", lambda: bench_verify.measure(runs=1, dirs=1000)),
        ("2. export-git (2,000 manifests)", lambda: bench_export.measure(runs=2, count=2000)),
        ("3. event append (50,000 events)", lambda: bench_events.measure(runs=1, events=50_000)),
        ("4. ingest", lambda: bench_ingest.measure(runs=2)),
        ("4. cat-file --batch", lambda: bench_catfile.measure(runs=2)),
        ("5. start-up", lambda: bench_startup.measure(runs=7)[0]),
        ("6. large file (256 MiB)", lambda: bench_large.measure(runs=1, size=256 << 20)),
    )
    rows: list[list[str]] = []
    for label, step in steps:
        t0 = time.time()
        print(f"running {label} ...", file=sys.stderr, flush=True)
        report = step()
        rows += [[goal, measured, ok] for goal, measured, ok in report.goals]
        print(f"  {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print()
    print(table(["goal", "measured", "result"], rows))
    failed = sum(1 for r in rows if r[2] != "PASS")
    print(
        f"\n{len(rows) - failed} PASS, {failed} FAIL; {time.time() - started:.0f} s; "
        f"load average at end: {os.getloadavg()[0]:.2f}"
    )
    return 1 if failed else 0


def main() -> None:
    if "--check" in sys.argv:
        raise SystemExit(check())
    quick = "--quick" in sys.argv
    started = time.time()
    print("## Environment\n")
    print(machine())
    print(versions())
    print()
    reports: list[Report] = []
    reports.append(bench_ingest.measure(runs=3 if quick else 5))
    print(reports[-1].markdown(), flush=True)
    reports.append(bench_catfile.measure(runs=3 if quick else 5))
    print(reports[-1].markdown(), flush=True)
    reports.append(bench_large.measure(runs=3, size=(256 << 20) if quick else (1 << 30)))
    print(reports[-1].markdown(), flush=True)
    startup, extra = bench_startup.measure(runs=10 if quick else 20)
    reports.append(startup)
    print(startup.markdown())
    print(extra + "\n", flush=True)
    reports.append(bench_container.measure(runs=5 if quick else 15))
    print(reports[-1].markdown(), flush=True)
    reports.append(bench_build.measure(runs=3 if quick else 7))
    print(reports[-1].markdown(), flush=True)
    reports.append(
        bench_events.measure(runs=1 if quick else 3, events=50_000 if quick else 200_000)
    )
    print(reports[-1].markdown(), flush=True)
    reports.append(bench_export.measure(runs=3 if quick else 5))
    print(reports[-1].markdown(), flush=True)
    print("## Goals\n")
    rows = [[goal, measured, ok] for r in reports for goal, measured, ok in r.goals]
    print(table(["goal", "measured", "result"], rows))
    print(
        f"\nTotal time {time.time() - started:.0f} s; load average at end: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
