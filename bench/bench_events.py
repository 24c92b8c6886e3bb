"""Event log append throughput vs raw SQLCipher inserts.

    python bench/bench_events.py [--runs 3] [--events 200000]

1. Durable append: ``--events`` events emitted from one producer thread (and,
   for the record, from 4 producer threads) into a
   fresh ``events.db`` through :class:`steve.events.EventLog` (validation,
   canonical CBOR, BLAKE3 chain, bounded queue, one writer, batches of 4096,
   WAL), then ``flush()``; with ``synchronous=NORMAL`` and ``FULL``.  The
   peer: the *same rows* (read back from the log) inserted into a fresh
   SQLCipher database with the same schema, indexes, triggers and pragmas by
   ``executemany`` in transactions of 4096 rows, in the same run.  Goal
   (issue 13): the event log reaches at least 70% of the raw rate, with one
   producer and with four.  (Closure verification moved to bench_verify.py.)
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Report,
    fmt_s,
    runs_arg,
    table,
    verdict,
    workdir,
)
from steve.events import EventLog
from steve.events.store import SCHEMA
from steve.store.sqlcipher import connect

GOAL_RATIO = 0.7  # issue 13 (issue 5 set 0.5)
SYNC_MODES = [m for m in ("NORMAL", "FULL") if os.environ.get("BENCH_SYNC", m) == m]
BATCH = 4096


def int_arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


# --- 1. append throughput ------------------------------------------------------------


def steve_append(path: Path, key: bytes, n: int, sync: str, producers: int = 1) -> float:
    log = EventLog(path, key, synchronous=sync, correlation_id="bench", actor="bench")
    log.store()  # open and create events.db before the clock starts, as raw_insert does
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
    conn = connect(path, key).conn
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
        ratios[f"{sync}, 1 producer"] = raw / s
        ratios[f"{sync}, 4 producers"] = raw / s4
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


def measure(runs: int = 3, events: int = 200_000) -> Report:
    with workdir("steve-bench-events-") as tmp:
        append_rows, ratios = measure_append(tmp, runs, events)
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
    )
    goals = [
        (
            f"3. durable append >= 70% of raw batched inserts ({sync})",
            f"{ratio:.0%}",
            verdict(ratio >= GOAL_RATIO),
        )
        for sync, ratio in ratios.items()
    ]
    return Report("event log append", detail, goals)


def main() -> None:
    report = measure(runs_arg(3), int_arg("--events", 200_000))
    print(report.markdown())
    print(table(["goal", "measured", "verdict"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
