"""What the progress display costs (issue 18): the same commands before and after it,
without a terminal, and with a terminal (the display drawn) after it.

    python bench/bench_progress.py [--runs 5] [--files 10000] [--before REV]

Builds one repository (the test suite's cheap Argon2id) and ``--files`` small
files, stores them once (``hash-object -w --stdin-paths``) so ``fsck`` has
``--files`` blobs to check, then times, per run and in alternating order:

* ``hash-object --stdin-paths`` of the files (hashing, no write; stdout to
  /dev/null, stderr a pipe), with the tree at ``--before`` (default: the
  parent of the commit that added ``steve/progress.py``, i.e. before the
  display) and with this tree; then with this tree and a pseudo-terminal as
  stderr, the display drawn after the default delay (0.5 s) and at once
  (``STEVE_PROGRESS_DELAY=0``: rich imported at start, the worst case);
* ``fsck`` of the repository, the same four ways.

The four ways take turns going first (a fixed order showed a 10 % bias for
whichever ran second on this machine).

Prints medians of the CPU time (user + sys of the process and its threads, the
figure least disturbed by other jobs on a shared machine) and of the wall time,
and the ratios after/before (no terminal: the goal is 1.00,
within noise) and terminal/no terminal (the display's own cost).
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PASSPHRASE, fast_kdf
from steve.repo import Repo

HERE = Path(__file__).resolve().parent.parent


def _before_rev() -> str:
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "steve/progress.py"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("steve/progress.py is not committed: give --before REV")
    return f"{added[-1]}^"


def _export_tree(rev: str, dest: Path) -> Path:
    """The ``steve`` package at ``rev``, unpacked under ``dest``."""
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "steve"], cwd=HERE, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _time(
    tree: Path, args: list[str], env: dict[str, str], stdin: Path, tty: bool, delay: str = "0.5"
) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys of the child and its threads) of one run."""
    env = {**env, "PYTHONPATH": str(tree), "STEVE_PROGRESS_DELAY": delay}
    master = slave = -1
    if tty:
        master, slave = pty.openpty()
        env = {**env, "TERM": "xterm-256color", "COLUMNS": "120"}
    with stdin.open("rb") as inp, open(os.devnull, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "steve", *args],
            stdin=inp,
            stdout=out,
            stderr=slave if tty else subprocess.DEVNULL,
            env=env,
        )
        if tty:
            os.close(slave)
            while True:
                try:
                    if not os.read(master, 1 << 16):
                        break
                except OSError:
                    break
            os.close(master)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args}: exit {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


PER_REPORT = """
import sys, time
from steve.cli.progress import TerminalProgress
n = int(sys.argv[1])
shown = TerminalProgress(0.0)
shown.start("bench", n, unit="units")
t0 = time.perf_counter()
for _ in range(n):
    shown.advance(1)
t1 = time.perf_counter()
shown.close()
progress = None
t2 = time.perf_counter()
for _ in range(n):
    if progress is not None:
        progress.advance(1)
t3 = time.perf_counter()
print((t1 - t0) / n * 1e9, (t3 - t2) / n * 1e9)
"""


def _per_report(n: int) -> tuple[float, float]:
    """ns per report: drawn on a pty (rich refreshing), and the None test alone."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", PER_REPORT, str(n)],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "PYTHONPATH": str(HERE), "TERM": "xterm-256color"},
    )
    os.close(slave)
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:
            break
    out, _ = proc.communicate()
    os.close(master)
    drawn, bare = out.split()
    return float(drawn), float(bare)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--before", default=None, help="git revision of the tree before")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("STEVE_BENCH_TMP")) as tmp_s:
        tmp = Path(tmp_s)
        before = _export_tree(opts.before or _before_rev(), tmp / "before")
        after = HERE
        files = tmp / "files"
        files.mkdir()
        for i in range(opts.files):
            (files / f"f{i:05d}.txt").write_bytes(b"file %d\n" % i * 8)
        paths = tmp / "paths"
        paths.write_text("".join(f"{files}/f{i:05d}.txt\n" for i in range(opts.files)))
        root = tmp / "repo"
        root.mkdir()
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()).close()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("STEVE_") and k != "NO_COLOR"
        }
        env.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(root))
        _time(after, ["hash-object", "-w", "--stdin-paths"], env, paths, tty=False)
        empty = tmp / "empty"
        empty.write_bytes(b"")
        commands = {
            f"hash-object --stdin-paths ({opts.files} files)": (
                ["hash-object", "--stdin-paths"],
                paths,
            ),
            f"fsck ({opts.files} blobs)": (["fsck"], empty),
        }
        print(f"before: {opts.before or _before_rev()}; runs: {opts.runs}; medians\n")
        print(
            "| command | before, no tty | after, no tty | ratio | after, tty "
            "| ratio | after, tty, delay 0 | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|")
        kinds = ("before", "after", "tty", "tty0")
        for name, (args, stdin) in commands.items():
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
            ways: dict[str, tuple[Path, bool, str]] = {
                "before": (before, False, "0.5"),
                "after": (after, False, "0.5"),
                "tty": (after, True, "0.5"),
                "tty0": (after, True, "0"),
            }
            for i in range(opts.runs):  # the order rotates: none always goes first
                for k in kinds[i % 4 :] + kinds[: i % 4]:
                    tree, tty, wait = ways[k]
                    runs[k].append(_time(tree, args, env, stdin, tty=tty, delay=wait))
            for what, at in (("CPU", 1), ("wall", 0)):
                b, a, t, z = (statistics.median(r[at] for r in runs[k]) for k in kinds)
                print(
                    f"| `{name}`, {what} s | {b:.3f} | {a:.3f} | {a / b:.2f} | {t:.3f} "
                    f"| {t / a:.2f} | {z:.3f} | {z / a:.2f} |"
                )
        per = [_per_report(1_000_000) for _ in range(3)]
        drawn = statistics.median(p[0] for p in per)
        bare = statistics.median(p[1] for p in per)
        print(
            f"\nper report (1,000,000 advance calls, in-process): drawn on a pty "
            f"{drawn:.0f} ns, progress=None {bare:.0f} ns"
        )


if __name__ == "__main__":
    main()
