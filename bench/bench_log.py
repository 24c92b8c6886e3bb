"""``steve log --oneline`` over a 100,000-manifest linear history vs ``git log --oneline``.

    python bench/bench_log.py [--runs 5] [--count 100000]

The STEVE history is built through the library (BatchWriter, fast KDF), one
research manifest per step, each the parent of the next, ``refs/heads/main``
at the tip.  The git repository of the same shape (100,000 linear commits,
one-line messages, same times) is built with ``git fast-import``.  Both are
built once and walked ``--runs`` times, alternating, in the same run.

Measured (medians):

- in-process: the time from calling :func:`steve.porcelain.history.walk` to
  its first entry (goal < 100 ms), and to the end of the walk;
- whole process: ``steve log --oneline`` and ``git log --oneline`` with
  stdout on a pipe, time to the first line and to EOF (fork + exec +
  interpreter start + opening the encrypted database included for steve).

Also measured, as the floor under any Python command: the same interpreter
running ``-c pass`` with this environment's ``site`` (its ``.pth`` files
run at every start) and with ``-I -S`` (no site).  The steve package is
byte-compiled first, as a wheel install is (this environment may set
PYTHONDONTWRITEBYTECODE, which would otherwise recompile every module on
every run).

Goal (issue 3): first line within 100 ms; whole walk within 2x of git.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PASSPHRASE,
    Report,
    fast_kdf,
    fmt_s,
    git_env,
    git_exe,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    verdict,
    workdir,
)
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.history import walk
from steve.repo import Repo

T0 = 1_600_000_000
GOAL_FIRST = 0.100
GOAL_RATIO = 2.0


def count_arg(default: int) -> int:
    if "--count" in sys.argv:
        return int(sys.argv[sys.argv.index("--count") + 1])
    return default


def build_steve(root: Path, count: int) -> ObjectId:
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
        prev: tuple[ObjectId, ...] = ()
        with repo.writer() as w:
            for i in range(count):
                body = {"title": f"step {i}", "sources": []}
                prev = (w.add(Manifest(ObjectType.RESEARCH, 1, prev, (), T0 + i, 0, body)),)
        repo.update_ref("refs/heads/main", prev[0], None, message="bench")
        return prev[0]


def build_git(root: Path, home: Path, count: int) -> None:
    env = git_env(home)
    subprocess.run([git_exe(), "init", "-q", "-b", "main", str(root)], env=env, check=True)
    proc = subprocess.Popen(
        [git_exe(), "fast-import", "--quiet"], cwd=root, env=env, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    for i in range(count):
        msg = f"step {i} (0 sources)\n".encode()
        parts = [
            b"commit refs/heads/main\n",
            b"mark :%d\n" % (i + 1),
            b"committer bench <bench@localhost> %d +0000\n" % (T0 + i),
            b"data %d\n%s" % (len(msg), msg),
        ]
        if i:
            parts.append(b"from :%d\n" % i)
        parts.append(b"\n")
        out.write(b"".join(parts))
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def timed_stream(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float, int]:
    """(seconds to the first line, seconds to EOF, lines) for ``cmd`` writing to a pipe."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    t_first = time.perf_counter() - start
    lines = 1 if first else 0
    while chunk := proc.stdout.read(1 << 16):
        lines += chunk.count(b"\n")
    if proc.wait() != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return t_first, time.perf_counter() - start, lines


def in_process(root: Path, head: ObjectId, count: int) -> tuple[float, float]:
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        start = time.perf_counter()
        gen = walk(repo, [head])
        next(gen)
        t_first = time.perf_counter() - start
        n = 1 + sum(1 for _ in gen)
        total = time.perf_counter() - start
    if n != count:
        raise SystemExit(f"walk saw {n} manifests, expected {count}")
    return t_first, total


def interpreter_floor(runs: int) -> tuple[float, float]:
    """Median seconds of ``python -c pass`` with site, and with ``-I -S``."""
    env = steve_env()
    with_site, bare = [], []
    for _ in range(runs):
        for args, out in (([], with_site), (["-I", "-S"], bare)):
            start = time.perf_counter()
            subprocess.run([sys.executable, *args, "-c", "pass"], env=env, check=True)
            out.append(time.perf_counter() - start)
    return statistics.median(with_site), statistics.median(bare)


def measure(runs: int = 5, count: int = 100_000) -> Report:
    import steve

    compileall.compile_dir(Path(steve.__file__).parent, quiet=1)
    with workdir("steve-bench-log-") as tmp:
        home = tmp / "home"
        home.mkdir()
        t = time.perf_counter()
        head = build_steve(tmp / "steve", count)
        build_steve_s = time.perf_counter() - t
        t = time.perf_counter()
        build_git(tmp / "git", home, count)
        build_git_s = time.perf_counter() - t
        env = steve_env()
        steve_cmd = [steve_exe(), "-C", str(tmp / "steve"), "log", "--oneline"]
        git_cmd = [git_exe(), "log", "--oneline"]
        results: dict[str, list[tuple[float, float]]] = {"lib": [], "steve": [], "git": []}
        for _ in range(runs):
            results["lib"].append(in_process(tmp / "steve", head, count))
            first, total, lines = timed_stream(steve_cmd, env)
            if lines != count:
                raise SystemExit(f"steve log printed {lines} lines, expected {count}")
            results["steve"].append((first, total))
            first, total, lines = timed_stream(git_cmd, git_env(home), cwd=tmp / "git")
            if lines != count:
                raise SystemExit(f"git log printed {lines} lines, expected {count}")
            results["git"].append((first, total))

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    site_s, bare_s = interpreter_floor(max(runs, 5))

    ratio = med("steve", 1) / med("git", 1)
    rows = [
        ["steve library walk (in-process)", fmt_s(med("lib", 0)), fmt_s(med("lib", 1)), ""],
        [
            "`steve log --oneline` (whole process)",
            fmt_s(med("steve", 0)),
            fmt_s(med("steve", 1)),
            f"{ratio:.1f}x",
        ],
        ["`git log --oneline`", fmt_s(med("git", 0)), fmt_s(med("git", 1)), "1.0x"],
        ["`python -c pass` (this environment's site)", fmt_s(site_s), "", ""],
        ["`python -I -S -c pass` (no site)", fmt_s(bare_s), "", ""],
    ]
    detail = (
        f"{count:,} manifests / commits, linear; medians of {runs} runs. "
        f"Build: steve library {fmt_s(build_steve_s)}, git fast-import {fmt_s(build_git_s)}.\n\n"
        + table(["command", "first line", "whole walk", "vs git"], rows)
    )
    goals = [
        (
            "log: first line < 100 ms after the walk starts",
            fmt_s(med("lib", 0)),
            verdict(med("lib", 0) < GOAL_FIRST),
        ),
        (
            "log: first line < 100 ms, whole process",
            fmt_s(med("steve", 0)),
            verdict(med("steve", 0) < GOAL_FIRST),
        ),
        ("log: whole walk <= 2x git log --oneline", f"{ratio:.1f}x", verdict(ratio <= GOAL_RATIO)),
    ]
    return Report("steve log over a 100,000-manifest history", detail, goals)


def main() -> None:
    report = measure(runs_arg(5), count_arg(100_000))
    print(report.markdown())
    print(table(["goal", "measured", "verdict"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
