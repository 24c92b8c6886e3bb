"""Event log append throughput vs raw SQLCipher inserts; ``steve verify`` vs ``git fsck``.

    python bench/bench_events.py [--runs 3] [--events 200000] [--objects 100000]

1. Durable append: ``--events`` events emitted from one producer thread (and,
   for the record, from 4 producer threads) into a
   fresh ``events.db`` through :class:`steve.events.EventLog` (validation,
   canonical CBOR, BLAKE3 chain, bounded queue, one writer, batches of 4096,
   WAL), then ``flush()``; with ``synchronous=NORMAL`` and ``FULL``.  The
   peer: the *same rows* (read back from the log) inserted into a fresh
   SQLCipher database with the same schema, indexes, triggers and pragmas by
   ``executemany`` in transactions of 4096 rows, in the same run.  Goal
   (issue 5): the event log reaches at least 50% of the raw rate.

2. Closure verification: a tree of 1,000 directories x 99 small files
   (100,001 objects) and the same files committed to git with
   ``git fast-import`` (100,002 objects: one commit more).  ``steve verify
   TREE`` (whole process, and the library call in-process) against ``git
   fsck --full --strict`` in the same run; objects per second.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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
from steve.events import EventLog
from steve.events.store import SCHEMA
from steve.objects.model import Blob, Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.porcelain.verify import verify
from steve.repo import Repo
from steve.store.sqlite import SqlCipherBackend

GOAL_RATIO = 0.5
SYNC_MODES = [m for m in ("NORMAL", "FULL") if os.environ.get("BENCH_SYNC", m) == m]
BATCH = 4096
DIRS = 1000
FILES = 99


def int_arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


# --- 1. append throughput ------------------------------------------------------------


def steve_append(path: Path, key: bytes, n: int, sync: str, producers: int = 1) -> float:
    log = EventLog(path, key, synchronous=sync, correlation_id="bench", actor="bench")
    per = n // producers

    def produce(w: int) -> None:
        for i in range(per):
            log.emit("bench.tick", {"w": w, "i": i, "note": "steady state"}, run_id=f"run{w}")

    start = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(w,)) for w in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.flush()
    elapsed = time.perf_counter() - start
    log.close()
    return elapsed


def read_rows(path: Path, key: bytes) -> list[tuple[Any, ...]]:
    with EventLog(path, key) as log, log.store().raw_connection() as conn:
        return list(conn.execute("SELECT * FROM events ORDER BY seq"))


def raw_insert(path: Path, key: bytes, rows: list[tuple[Any, ...]], sync: str) -> float:
    conn = SqlCipherBackend._connect(path, key, 30.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute("PRAGMA cache_size = -8192")
    for stmt in SCHEMA.split(";\n"):
        if stmt.strip():
            conn.execute(stmt)
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def measure_append(tmp: Path, runs: int, n: int) -> tuple[list[list[str]], dict[str, float]]:
    key = os.urandom(32)
    rows_out: list[list[str]] = []
    ratios: dict[str, float] = {}
    for sync in SYNC_MODES:
        steve_s: list[float] = []
        steve4_s: list[float] = []
        raw_s: list[float] = []
        for r in range(runs):
            ev = tmp / f"ev-{sync}-{r}.db"
            steve_s.append(steve_append(ev, key, n, sync))
            steve4_s.append(steve_append(tmp / f"ev4-{sync}-{r}.db", key, n, sync, producers=4))
            rows = read_rows(ev, key)
            raw_s.append(raw_insert(tmp / f"raw-{sync}-{r}.db", key, rows, sync))
            del rows
            for p in tmp.glob(f"*-{sync}-{r}.db*"):
                p.unlink()
        s, s4, raw = (statistics.median(x) for x in (steve_s, steve4_s, raw_s))
        ratios[sync] = raw / s
        rows_out.append(
            [
                f"synchronous={sync}",
                f"{n / s:,.0f} events/s ({fmt_s(s)})",
                f"{n / s4:,.0f} events/s ({fmt_s(s4)})",
                f"{n / raw:,.0f} rows/s ({fmt_s(raw)})",
                f"{raw / s:.0%} ({raw / s4:.0%} with 4 producers)",
            ]
        )
    return rows_out, ratios


# --- 2. closure verification -----------------------------------------------------------


def content(d: int, f: int) -> bytes:
    return f"directory {d} file {f}\n".encode() * (1 + (d * FILES + f) % 7)


def build_steve(root: Path) -> ObjectId:
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
        with repo.writer() as w:
            dirs = []
            for d in range(DIRS):
                entries = [
                    TreeEntry(f"f{f:03d}.txt", Mode.FILE, w.add(Blob(content(d, f))))
                    for f in range(FILES)
                ]
                dirs.append(TreeEntry(f"d{d:04d}", Mode.TREE, w.add(Tree.from_entries(entries))))
            top = w.add(Tree.from_entries(dirs))
        repo.update_ref("refs/heads/main", top, None, message="bench")
        return top


def build_git(root: Path, home: Path) -> None:
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
    for d in range(DIRS):
        for f in range(FILES):
            data = content(d, f)
            proc.stdin.write(
                b"M 100644 inline d%04d/f%03d.txt\ndata %d\n%s\n" % (d, f, len(data), data)
            )
    proc.stdin.write(b"\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-500:]}")
    return elapsed


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


def measure_verify(tmp: Path, runs: int) -> tuple[list[list[str]], float, int]:
    home = tmp / "home"
    home.mkdir()
    top = build_steve(tmp / "steve")
    build_git(tmp / "git", home)
    genv = git_env(home)
    n_git = git_objects(tmp / "git", genv)
    env = steve_env()
    lib: list[float] = []
    cli: list[float] = []
    git: list[float] = []
    n_steve = 0
    for _ in range(runs):
        with Repo.open(tmp / "steve", passphrase=PASSPHRASE) as repo:
            start = time.perf_counter()
            report = verify(repo, top)
            lib.append(time.perf_counter() - start)
            if not report.ok:
                raise SystemExit(f"verify found problems: {report.problems[:3]}")
            n_steve = report.objects
        cli.append(timed([steve_exe(), "-C", str(tmp / "steve"), "verify", top.hex], env))
        git.append(timed([git_exe(), "fsck", "--full", "--strict"], genv, cwd=tmp / "git"))
    m_lib, m_cli, m_git = (statistics.median(x) for x in (lib, cli, git))
    rows = [
        [
            "steve library `verify()` (in-process)",
            f"{n_steve:,}",
            fmt_s(m_lib),
            f"{n_steve / m_lib:,.0f}",
        ],
        [
            "`steve verify TREE` (whole process)",
            f"{n_steve:,}",
            fmt_s(m_cli),
            f"{n_steve / m_cli:,.0f}",
        ],
        ["`git fsck --full --strict`", f"{n_git:,}", fmt_s(m_git), f"{n_git / m_git:,.0f}"],
    ]
    return rows, (n_steve / m_cli) / (n_git / m_git), n_steve


def measure(runs: int = 3, events: int = 200_000) -> Report:
    with workdir("steve-bench-events-") as tmp:
        append_rows, ratios = measure_append(tmp, runs, events)
        verify_rows, verify_ratio, n_obj = measure_verify(tmp, runs)
    detail = (
        f"Append: {events:,} events, batches of {BATCH}, WAL; medians of {runs} runs.\n\n"
        + table(
            [
                "mode",
                "steve EventLog, 1 producer",
                "steve EventLog, 4 producers",
                "raw SQLCipher executemany",
                "steve / raw",
            ],
            append_rows,
        )
        + f"\n\nClosure verification: {n_obj:,} objects; medians of {runs} runs.\n\n"
        + table(["command", "objects", "time", "objects/s"], verify_rows)
        + f"\n\n`steve verify` runs at {verify_ratio:.2f}x git fsck's objects/s."
    )
    goals = [
        (
            f"events: durable append >= 50% of raw inserts ({sync})",
            f"{ratio:.0%}",
            verdict(ratio >= GOAL_RATIO),
        )
        for sync, ratio in ratios.items()
    ]
    return Report("event log append and closure verification", detail, goals)


def main() -> None:
    report = measure(runs_arg(3), int_arg("--events", 200_000))
    print(report.markdown())
    print(table(["goal", "measured", "verdict"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
