"""`steve backup` of a 1 GiB repository against a plain `cp` of its database files.

    python bench/bench_backup.py [--runs 3] [--size-mib 1024]

Builds a repository of about ``--size-mib`` MiB from large random blobs
(1 MiB chunks, so the database is that size), closes it (its WAL folded
in), then per run, in alternating order:

* ``cp .steve/steve.db .steve/events.db DEST/``, and separately ``sync`` of
  the copies (``cp`` does not make its copy durable; ``steve backup`` does,
  so both figures are shown);
* ``steve -C REPO backup DEST2`` (the real console script; the repository
  uses the test suite's cheap Argon2id parameters so the key derivation does
  not count).

Between two measurements everything is flushed (``sync``, untimed) so one
measurement's write-back does not slow the next.  Goal (issue 16): the backup
within 1.5x of ``cp`` (median of the runs, same run).  Everything is deleted
at the end.  Set STEVE_BENCH_TMP to put the ~3 GiB of files elsewhere.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PASSPHRASE, fast_kdf, steve_exe
from steve.repo import Repo

GOAL = 1.5
CHUNK = 1 << 20
BLOB_MIB = 64


class _Random:
    """A readable stream of ``size`` random bytes (never held whole in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def build(root: Path, size_mib: int) -> int:
    """A repository of about ``size_mib`` MiB of blobs; returns its database bytes."""
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
        left = size_mib
        i = 0
        while left > 0:
            mib = min(BLOB_MIB, left)
            oid = repo.write_stream(_Random(mib * CHUNK))  # type: ignore[arg-type]
            repo.update_ref(f"refs/heads/blob{i}", oid, old=None)
            left -= mib
            i += 1
    steve_dir = root / ".steve"
    return sum(
        (steve_dir / n).stat().st_size
        for n in ("steve.db", "events.db")
        if (steve_dir / n).exists()
    )


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, env=env, stdout=subprocess.PIPE, text=True).stdout
    return time.perf_counter() - start, out


def settle() -> None:
    subprocess.run(["sync"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    base = Path(
        tempfile.mkdtemp(prefix="steve-bench-backup-", dir=os.environ.get("STEVE_BENCH_TMP"))
    )
    try:
        root = base / "repo"
        t0 = time.perf_counter()
        size = build(root, args.size_mib)
        print(
            f"repository: {size / 2**30:.2f} GiB of database files, built in {time.perf_counter() - t0:.0f}s",
            file=sys.stderr,
        )
        dbs = [
            str(root / ".steve" / n)
            for n in ("steve.db", "events.db")
            if (root / ".steve" / n).exists()
        ]
        env = {**os.environ, "STEVE_PASSPHRASE": PASSPHRASE}
        env.pop("STEVE_KEY_FILE", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # start-up as installed: compiled once, cached
        exe = steve_exe()
        # compile and cache the modules `steve backup` imports (not timed)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import steve.cli.main, steve.cli.backup, steve.porcelain.backup",
            ],
            check=True,
            env=env,
        )
        cp_s: list[float] = []
        sync_s: list[float] = []
        backup_s: list[float] = []
        inproc_s: list[float] = []  # the backup itself, as the command reports it
        for run in range(args.runs):
            order = ("cp", "backup") if run % 2 == 0 else ("backup", "cp")
            for what in order:
                settle()
                if what == "cp":
                    dest = base / f"cp{run}"
                    dest.mkdir()
                    cp_s.append(timed(["cp", *dbs, str(dest)])[0])
                    copies = [str(dest / Path(d).name) for d in dbs]
                    sync_s.append(timed(["sync", *copies])[0])
                    shutil.rmtree(dest)
                else:
                    dest = base / f"backup{run}"
                    wall, out = timed([exe, "-C", str(root), "backup", str(dest)], env)
                    backup_s.append(wall)
                    inside = re.search(r" in ([0-9.]+)s$", out.strip())
                    assert inside is not None, out
                    inproc_s.append(float(inside.group(1)))
                    shutil.rmtree(dest)
            print(
                f"run {run + 1}: cp {cp_s[-1]:.2f}s (+ sync {sync_s[-1]:.2f}s), "
                f"steve backup {backup_s[-1]:.2f}s (the copy itself {inproc_s[-1]:.2f}s)",
                file=sys.stderr,
            )
        start = [timed([exe, "-C", str(root), "show-ref"], env)[0] for _ in range(5)]
        cp, sync, bk, inproc, startup = (
            statistics.median(x) for x in (cp_s, sync_s, backup_s, inproc_s, start)
        )
        ratio, ratio_sync = bk / cp, bk / (cp + sync)
        print(f"| what | median of {args.runs} |")
        print("|---|---|")
        print(f"| `cp` of steve.db + events.db ({size / 2**30:.2f} GiB) | {cp:.2f} s |")
        print(f"| `cp` + `sync` of the copies | {cp + sync:.2f} s |")
        print(f"| `steve backup` (fsynced, manifest, event) | {bk:.2f} s |")
        print(
            f"| ratio backup / cp | {ratio:.2f}x (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'}) |"
        )
        print(f"| ratio backup / (cp + sync) | {ratio_sync:.2f}x |")
        print(
            f"| the backup inside the process (consistent copy, fsync, manifest) | {inproc:.2f} s |"
        )
        print(f"| ratio of that / cp | {inproc / cp:.2f}x |")
        print(f"| `steve show-ref` (process start-up and open, for scale) | {startup:.2f} s |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
