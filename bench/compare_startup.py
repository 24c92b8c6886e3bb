"""Start-up of two source trees, interleaved in one run (issue 13, goal 5).

    python bench/compare_startup.py --base /path/to/other/tree [--runs 30]

The two measures of :mod:`bench.bench_startup` (a cached-key ``steve
cat-file -t ID``; the first line of ``steve log --oneline`` over a
1,000-manifest history), run with the same ``steve`` console script against
the tree this script belongs to and against ``--base`` (each put first on
``PYTHONPATH``; the script prints which ``steve`` package each one imports),
interleaved with ``python -c pass``: floor, base, this tree, round after
round, so that both see the same machine.  Reports medians of the wall
time (to the first line for ``log``) and of the process's CPU time (user +
system, ``wait4``), each also above the floor's, and the least wall time
(on a loaded machine the closest to the uncontended cost).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_export import build_history
from bench.common import (
    ensure_bytecode,
    init_steve,
    lock,
    steve_env,
    steve_exe,
    table,
    unlock,
    workdir,
)

HERE = Path(__file__).resolve().parent.parent


def tree_env(tree: Path | None) -> dict[str, str]:
    env = steve_env(passphrase=False)
    env.pop("PYTHONPATH", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def timed(cmd: list[str], env: dict[str, str], *, first_line: bool) -> tuple[float, float]:
    """(wall seconds, to the first line of stdout when ``first_line``; CPU seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if first_line:
        line = proc.stdout.readline()
        wall = time.perf_counter() - start
        proc.stdout.read()
    else:
        line = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if not first_line:
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0 or (not line and cmd[1:] != ["-c", "pass"]):
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    if "--base" not in sys.argv:
        raise SystemExit(__doc__)
    base = Path(sys.argv[sys.argv.index("--base") + 1]).resolve()
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 30
    ensure_bytecode()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(base / "steve")], check=True)
    steve = steve_exe()
    trees = {"base": base, "this": HERE}
    for name, tree in trees.items():
        where = subprocess.run(
            [sys.executable, "-c", "import steve; print(steve.__file__)"],
            env=tree_env(tree),
            cwd="/",  # not the current directory's steve
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"{name}: {tree} imports {where}")
    with workdir("steve-bench-compare-") as tmp:
        root = tmp / "steve"
        repo = init_steve(root, default_kdf=True)
        oid = repo.write_blob(b"start-up\n").hex
        repo.close()
        history = tmp / "history"
        build_history(history, 1000)
        unlock(root)
        unlock(history)
        cmds = {
            "cat-file -t": [steve, "-C", str(root), "cat-file", "-t", oid],
            "log --oneline, first line": [steve, "-C", str(history), "log", "--oneline"],
        }
        try:
            for cmd in cmds.values():  # delivers the outbox the library left (not timed)
                timed(cmd, tree_env(HERE), first_line=False)
            samples: dict[str, list[tuple[float, float]]] = {}
            for _ in range(runs):
                samples.setdefault("python -c pass", []).append(
                    timed([sys.executable, "-c", "pass"], tree_env(None), first_line=False)
                )
                for label, cmd in cmds.items():
                    for name, tree in trees.items():
                        samples.setdefault(f"{label} ({name})", []).append(
                            timed(cmd, tree_env(tree), first_line=label.startswith("log"))
                        )
        finally:
            lock(root)
            lock(history)
    floor_wall = statistics.median(w for w, _ in samples["python -c pass"])
    floor_cpu = statistics.median(c for _, c in samples["python -c pass"])
    floor_min = min(w for w, _ in samples["python -c pass"])
    rows = []
    for label, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        least = min(w for w, _ in values)
        rows.append(
            [
                label,
                str(len(values)),
                f"{wall * 1000:.1f} ms (+{(wall - floor_wall) * 1000:.1f})",
                f"{cpu * 1000:.1f} ms (+{(cpu - floor_cpu) * 1000:.1f})",
                f"{least * 1000:.1f} ms (+{(least - floor_min) * 1000:.1f})",
            ]
        )
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    header = ["command", "runs", "median wall (above floor)", "median CPU (above floor)"]
    print(table([*header, "min wall (above floor's min)"], rows))


if __name__ == "__main__":
    main()
