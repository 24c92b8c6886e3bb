"""``steve verify`` and ``steve fsck`` against ``git fsck --full --strict``.

    python bench/bench_verify.py [--runs 3] [--dirs 1000]

A tree of ``--dirs`` directories x 99 small files (100,001 objects for the
default 1,000) built through the library (fast KDF), and the same files
committed to git with ``git fast-import`` (one object more: the commit).
Each run times, interleaved: ``steve verify TREE`` and ``steve fsck`` (whole
processes, passphrase in the environment), the library's ``verify()``
in-process, and ``git fsck --full --strict``.  Objects per second from the
medians.  Goal (issue 13): steve within 3x of git fsck's objects/s, for
verify and for fsck (ratio = git's objects/s over steve's).
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

from bench.bench_events import int_arg
from bench.common import (
    PASSPHRASE,
    Report,
    ensure_bytecode,
    fast_kdf,
    fmt_s,
    git_env,
    git_exe,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    timed_cpu,
    verdict,
    workdir,
)
from steve.objects.model import Blob, Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.porcelain.verify import verify
from steve.repo import Repo

GOAL = 3.0  # steve may take at most 3x git's time per object
FILES = 99


def content(d: int, f: int) -> bytes:
    return f"directory {d} file {f}\n".encode() * (1 + (d * FILES + f) % 7)


def build_steve(root: Path, dirs: int) -> ObjectId:
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
        with repo.writer() as w:
            top_entries = []
            for d in range(dirs):
                entries = [
                    TreeEntry(f"f{f:03d}.txt", Mode.FILE, w.add(Blob(content(d, f))))
                    for f in range(FILES)
                ]
                sub = w.add(Tree.from_entries(entries))
                top_entries.append(TreeEntry(f"d{d:04d}", Mode.TREE, sub))
            top = w.add(Tree.from_entries(top_entries))
        repo.update_ref("refs/heads/main", top, None, message="bench")
        return top


def build_git(root: Path, home: Path, dirs: int) -> None:
    env = git_env(home)
    subprocess.run([git_exe(), "init", "-q", "-b", "main", str(root)], env=env, check=True)
    proc = subprocess.Popen(
        [git_exe(), "fast-import", "--quiet"], cwd=root, env=env, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    msg = b"bench tree\n"
    proc.stdin.write(
        b"commit refs/heads/main\ncommitter bench <bench@localhost> 1600000000 +0000\n"
        + b"data %d\n%s" % (len(msg), msg)
    )
    for d in range(dirs):
        for f in range(FILES):
            data = content(d, f)
            proc.stdin.write(
                b"M 100644 inline d%04d/f%03d.txt\ndata %d\n%s\n" % (d, f, len(data), data)
            )
    proc.stdin.write(b"\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def git_objects(root: Path, env: dict[str, str]) -> int:
    out = subprocess.run(
        [git_exe(), "count-objects", "-v"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(": ") for line in out.splitlines())
    return int(fields["count"]) + int(fields["in-pack"])


def measure(runs: int = 3, dirs: int = 1000) -> Report:
    ensure_bytecode()
    with workdir("steve-bench-verify-") as tmp:
        home = tmp / "home"
        home.mkdir()
        top = build_steve(tmp / "steve", dirs)
        build_git(tmp / "git", home, dirs)
        genv = git_env(home)
        n_git = git_objects(tmp / "git", genv)
        env = steve_env()
        wall: dict[str, list[float]] = {"lib": [], "verify": [], "fsck": [], "git": []}
        cpu: dict[str, list[float]] = {"lib": [], "verify": [], "fsck": [], "git": []}
        n_steve = 0
        s = steve_exe()
        commands = {
            "verify": ([s, "-C", str(tmp / "steve"), "verify", top.hex], env, None),
            "fsck": ([s, "-C", str(tmp / "steve"), "fsck"], env, None),
            "git": ([git_exe(), "fsck", "--full", "--strict"], genv, tmp / "git"),
        }
        for _ in range(runs):
            with Repo.open(tmp / "steve", passphrase=PASSPHRASE) as repo:
                start, cpu0 = time.perf_counter(), time.process_time()
                report = verify(repo, top)
                wall["lib"].append(time.perf_counter() - start)
                cpu["lib"].append(time.process_time() - cpu0)
                if not report.ok:
                    raise SystemExit(f"verify found problems: {report.problems[:3]}")
                n_steve = report.objects
            for key, (cmd, cmd_env, cwd) in commands.items():
                w, c = timed_cpu(cmd, cmd_env, cwd)
                wall[key].append(w)
                cpu[key].append(c)
    mw = {k: statistics.median(v) for k, v in wall.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    names = {
        "lib": "steve library `verify()` (in-process)",
        "verify": "`steve verify TREE` (whole process)",
        "fsck": "`steve fsck` (whole process)",
        "git": "`git fsck --full --strict`",
    }
    per_git = mw["git"] / n_git  # seconds per object
    per_git_cpu = mc["git"] / n_git
    rows = []
    for key, name in names.items():
        n = n_git if key == "git" else n_steve
        rows.append(
            [
                name,
                f"{n:,}",
                fmt_s(mw[key]),
                fmt_s(mc[key]),
                f"{n / mw[key]:,.0f}",
                f"{mw[key] / n / per_git:.2f}x",
                f"{mc[key] / n / per_git_cpu:.2f}x",
            ]
        )
    detail = (
        f"{n_steve:,} objects; medians of {runs} runs, interleaved; load average "
        f"{os.getloadavg()[0]:.1f} at the end.\n\n"
        + table(
            ["command", "objects", "wall", "CPU", "objects/s", "vs git (wall)", "vs git (CPU)"],
            rows,
        )
    )
    goals = []
    for key in ("verify", "fsck"):
        ratio = mw[key] / n_steve / per_git
        ratio_cpu = mc[key] / n_steve / per_git_cpu
        goals.append(
            (
                f"1. `steve {key}` within 3x of `git fsck --full --strict` (time per object)",
                f"{ratio:.2f}x (CPU {ratio_cpu:.2f}x)",
                verdict(ratio <= GOAL),
            )
        )
    return Report("closure verification and fsck", detail, goals)


def main() -> None:
    report = measure(runs_arg(3), int_arg("--dirs", 1000))
    print(report.markdown())
    print(table(["goal", "measured", "verdict"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
