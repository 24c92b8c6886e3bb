"""Event append, before and after: two source trees measured interleaved in one run.

    python bench/compare_events.py OLD_TREE NEW_TREE [--runs 5] [--events 200000]

Each run, for each ``synchronous`` mode, starts one fresh interpreter per tree
(the order alternates from run to run) that imports ``steve`` from that tree
and runs *this* checkout's ``bench_events`` measurement once: 1 producer, 4
producers, then the raw SQLCipher baseline on the same rows.  Reported per
tree: the medians of the per-run ratios raw / steve, by wall time and by CPU
time (user + sys of the process, all threads: what a machine shared with other
jobs distorts least), and the median wall times.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, resource, sys, tempfile
tree, bench, sync, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
import steve.events.log
assert steve.events.log.__file__.startswith(tree), steve.events.log.__file__
import importlib.util
from pathlib import Path
spec = importlib.util.spec_from_file_location("bench_events", bench)
B = importlib.util.module_from_spec(spec)
spec.loader.exec_module(B)
assert sys.modules["steve.events.log"].__file__.startswith(tree)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

out = {}
key = os.urandom(32)
with tempfile.TemporaryDirectory(prefix="steve-bench-compare-") as d:
    tmp = Path(d)
    c = cpu(); w = B.steve_append(tmp / "e1.db", key, n, sync); out["s1"] = (w, cpu() - c)
    c = cpu(); w = B.steve_append(tmp / "e4.db", key, n, sync, 4); out["s4"] = (w, cpu() - c)
    rows = B.read_rows(tmp / "e1.db", key)
    c = cpu(); w = B.raw_insert(tmp / "raw.db", key, rows, sync); out["raw"] = (w, cpu() - c)
print(json.dumps(out))
"""


def arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def main() -> None:
    trees = [str(Path(t).resolve()) for t in sys.argv[1:3]]
    runs, events = arg("--runs", 5), arg("--events", 200_000)
    bench = str(HERE / "bench_events.py")
    results: dict[tuple[str, str], list[dict[str, list[float]]]] = {}
    for r in range(runs):
        for sync in ("NORMAL", "FULL"):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, tree, bench, sync, str(events)],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "LC_ALL": "C"},
                ).stdout
                results.setdefault((tree, sync), []).append(json.loads(out))
    print(f"{events:,} events, medians of {runs} interleaved runs\n")
    print("| tree | mode | raw/steve wall 1p | 4p | raw/steve CPU 1p | 4p | wall 1p, 4p, raw |")
    print("|---|---|---|---|---|---|---|")
    for (tree, sync), got in results.items():

        def ratio(k: str, i: int, got: list[dict[str, list[float]]] = got) -> str:
            return f"{statistics.median(x['raw'][i] / x[k][i] for x in got):.0%}"

        def wall(k: str, got: list[dict[str, list[float]]] = got) -> str:
            return f"{statistics.median(x[k][0] for x in got):.2f} s"

        print(
            f"| {tree} | {sync} | {ratio('s1', 0)} | {ratio('s4', 0)} | {ratio('s1', 1)} "
            f"| {ratio('s4', 1)} | {wall('s1')}, {wall('s4')}, {wall('raw')} |"
        )


if __name__ == "__main__":
    main()
