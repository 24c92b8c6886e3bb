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

Prints medians and the ratios after/before (no terminal: the goal is 1.00,
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
) -> float:
    env = {**env, "PYTHONPATH": str(tree), "STEVE_PROGRESS_DELAY": delay}
    with stdin.open("rb") as inp, open(os.devnull, "wb") as out:
        if not tty:
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "steve", *args],
                stdin=inp,
                stdout=out,
                stderr=subprocess.PIPE,
                env=env,
                check=True,
            )
            return time.perf_counter() - t0
        master, slave = pty.openpty()
        env = {**env, "TERM": "xterm-256color", "COLUMNS": "120"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "steve", *args], stdin=inp, stdout=out, stderr=slave, env=env
        )
        os.close(slave)
        drawn = 0
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            drawn += len(data)
        code = proc.wait()
        elapsed = time.perf_counter() - t0
        os.close(master)
        if code != 0:
            raise SystemExit(f"{args}: exit {code}, {drawn} bytes drawn")
        return elapsed


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
        print(f"before: {opts.before or _before_rev()}; runs: {opts.runs}; median seconds\n")
        print(
            "| command | before, no tty | after, no tty | ratio | after, tty "
            "| ratio | after, tty, delay 0 | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, (args, stdin) in commands.items():
            times: dict[str, list[float]] = {"before": [], "after": [], "tty": [], "tty0": []}
            for _ in range(opts.runs):
                times["before"].append(_time(before, args, env, stdin, tty=False))
                times["after"].append(_time(after, args, env, stdin, tty=False))
                times["tty"].append(_time(after, args, env, stdin, tty=True))
                times["tty0"].append(_time(after, args, env, stdin, tty=True, delay="0"))
            b, a, t, z = (statistics.median(times[k]) for k in ("before", "after", "tty", "tty0"))
            print(
                f"| `{name}` | {b:.3f} | {a:.3f} | {a / b:.2f} | {t:.3f} | {t / a:.2f} "
                f"| {z:.3f} | {z / a:.2f} |"
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
