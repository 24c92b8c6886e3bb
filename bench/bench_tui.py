"""`steve tui` keeping up with a chatty build: display lag and peak RSS.

    python bench/bench_tui.py [--runs 3] [--seconds 10] [--rate 10000]

A producer PROCESS writes ``--rate`` log lines per second for ``--seconds``
through the path a build's step output takes: a :class:`steve.events.LogSpooler`
(64 KiB chunks) over the repository's :class:`steve.events.EventLog` with the
build's redactor, between ``build.started``/``step.started`` and
``step.built``/``build.finished`` events.  Each line carries the wall-clock
time it was written.  Meanwhile this process runs the TUI headless
(``App.run_test``) following the run, with the producer's node selected, and
samples the newest line in the log widget every 50 ms: lag = now - the time
in that line (so it includes the spooler's 64 KiB buffering, the event
writer's commit, the follower's poll and the screen's tick; it overstates
by up to the 50 ms sampling period).  At the end it waits until the
widget shows the very last line and reports that line's lag (the
spooler emits it when the stream closes).  Peak RSS is
this process's ``ru_maxrss`` (the TUI plus the harness; the producer is a
separate process).

The peer, in the same run: the same producer followed by a plain reader
(:meth:`EventLog.events` polled like ``steve events --follow``, chunks split
into lines, no screen), i.e. the lag the event path itself imposes.

Goal (issue 18): lag within 1 s of the producer at 10,000 lines/s, RSS under
150 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PASSPHRASE, fast_kdf, workdir
from steve.events import EventLog, LogSpooler
from steve.porcelain import runs, stages
from steve.porcelain.runs import Stage
from steve.porcelain.secrets import redactor_for
from steve.repo import Repo

GOAL_LAG_S = 1.0
GOAL_RSS_MIB = 150.0
NODE = "noisy"
SAMPLE_S = 0.05
T0 = 1_700_000_000


def int_arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the producer (a separate process: `bench_tui.py --produce ...`) -------------------


def produce(root: Path, run_id: str, plan: str, rate: int, seconds: float) -> None:
    repo = Repo.open(root, passphrase=PASSPHRASE)
    log = EventLog.for_repo(repo, redactor=redactor_for(repo))
    log.emit("build.started", {"plan": plan, "nodes": 1, "jobs": 1}, run_id=run_id)
    log.emit("step.started", {"node": NODE, "kind": "run", "status": "started"}, run_id=run_id)
    spool = LogSpooler(log, step=NODE, stream="stdout", run_id=run_id)
    start = time.time()
    written = 0
    total = int(rate * seconds)
    while written < total:
        now = time.time()
        due = min(total, int((now - start) * rate) + 1)
        if due > written:
            lines = "".join(
                f"line {i:08d} t={now:.6f} compiling module_{i % 997:03d}.c ok\n"
                for i in range(written, due)
            )
            spool.write(lines.encode())
            written = due
        time.sleep(0.005)
    spool.close()
    log.emit("step.built", {"node": NODE, "kind": "run", "status": "built"}, run_id=run_id)
    log.emit("build.finished", {"plan": plan, "ok": True}, run_id=run_id)
    log.flush()
    print(json.dumps({"lines": written, "elapsed": time.time() - start}))
    log.close()
    repo.close()


def start_producer(
    root: Path, run_id: str, plan: str, rate: int, seconds: float
) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--produce", str(root), run_id, plan, str(rate), str(seconds)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def stamp(line: str) -> float | None:
    at = line.find(" t=")
    if not line.startswith("line ") or at < 0:
        return None
    return float(line[at + 3 : line.index(" ", at + 3)])


# --- the repository ----------------------------------------------------------------------


def make_repo(root: Path) -> tuple[Repo, str, str]:
    root.mkdir(parents=True)
    repo = Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf())
    run = runs.new_run(repo, name="bench", now=T0, actor="bench")
    runs.goto(repo, run.id, Stage.RESEARCH, now=T0, actor="bench")
    runs.goto(repo, run.id, Stage.PLAN, now=T0, actor="bench")
    node = {
        "id": NODE,
        "kind": "run",
        "command": ["sh", "-c", "yes"],
        "image": "sha256:" + "ab" * 32,
    }
    draft = {"title": "bench plan", "nodes": [node]}
    rec = stages.record(repo, "plan", draft, run_id=run.id, now=T0, tz=0, actor="bench")
    return repo, run.id, rec.oid.hex


# --- one measurement ---------------------------------------------------------------------


def summary(lags: list[float], catch_up: float, lines: int, shown: int) -> dict[str, float]:
    lags = lags or [float("nan")]
    return {
        "lag_median": statistics.median(lags),
        "lag_p99": sorted(lags)[int(0.99 * (len(lags) - 1))],
        "lag_max": max(lags),
        "catch_up": catch_up,
        "lines": lines,
        "shown": shown,
    }


async def with_tui(root: Path, rate: int, seconds: float) -> dict[str, float]:
    from textual.widgets import Log

    from steve.tui.app import SteveTui

    repo, run_id, plan = make_repo(root)
    log = EventLog.for_repo(repo)
    app = SteveTui(repo, log)
    lags: list[float] = []
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            widget = app.query_one("#node-log", Log)
            producer = start_producer(root, run_id, plan, rate, seconds)
            while producer.poll() is None:
                await pilot.pause(SAMPLE_S)
                t = stamp(widget.lines[-1]) if widget.lines else None
                if t is not None:
                    lags.append(time.time() - t)
            out = json.loads(producer.communicate()[0])
            last = f"line {out['lines'] - 1:08d} "
            deadline = time.time() + 30
            while not (widget.lines and widget.lines[-1].startswith(last)):
                if time.time() > deadline:
                    raise SystemExit(f"the TUI never showed {last!r}")
                await pilot.pause(0.01)
            catch_up = time.time() - (stamp(widget.lines[-1]) or 0.0)
            total = app.tracker.logs[NODE].total if NODE in app.tracker.logs else 0
    finally:
        log.close()
        repo.close()
    return summary(lags, catch_up, out["lines"], total)


@dataclass
class Seen:
    last: str = ""  # the newest complete line
    lines: int = 0


def with_reader(root: Path, rate: int, seconds: float) -> dict[str, float]:
    """The peer: the event path alone (poll like `steve events --follow`, split lines)."""
    repo, run_id, plan = make_repo(root)
    log = EventLog.for_repo(repo)
    lags: list[float] = []
    state = Seen()
    stop = threading.Event()

    def follow() -> None:
        nxt = log.head().seq + 1
        while not stop.is_set():
            for event in log.events(run_id=run_id, from_seq=nxt):
                nxt = event.seq + 1
                data = event.payload.get("data")
                if event.event_type == "log.chunk" and isinstance(data, bytes):
                    lines = data.decode("utf-8", "replace").split("\n")
                    state.lines += len(lines) - 1
                    complete = [x for x in lines[:-1] if x]
                    if complete:
                        state.last = complete[-1]
            stop.wait(0.1)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    producer = start_producer(root, run_id, plan, rate, seconds)
    while producer.poll() is None:
        time.sleep(SAMPLE_S)
        t = stamp(state.last)
        if t is not None:
            lags.append(time.time() - t)
    out = json.loads(producer.communicate()[0])
    last = f"line {out['lines'] - 1:08d} "
    deadline = time.time() + 30
    while not state.last.startswith(last):
        if time.time() > deadline:
            raise SystemExit(f"the reader never saw {last!r}")
        time.sleep(0.01)
    catch_up = time.time() - (stamp(state.last) or 0.0)
    stop.set()
    reader.join()
    log.close()
    repo.close()
    return summary(lags, catch_up, out["lines"], state.lines)


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    if "--produce" in sys.argv:
        i = sys.argv.index("--produce")
        root, run_id, plan, per_s, secs = sys.argv[i + 1 : i + 6]
        produce(Path(root), run_id, plan, int(per_s), float(secs))
        return
    n_runs = int_arg("--runs", 3)
    seconds = float(int_arg("--seconds", 10))
    rate = int_arg("--rate", 10_000)
    print(f"# bench_tui: {rate} lines/s for {seconds:g} s, {n_runs} run(s), load {os.getloadavg()}")
    base = rss_mib()
    tui: list[dict[str, float]] = []
    peer: list[dict[str, float]] = []
    with workdir("tui") as tmp:
        for i in range(n_runs):
            peer.append(with_reader(tmp / f"peer{i}", rate, seconds))
            tui.append(asyncio.run(with_tui(tmp / f"tui{i}", rate, seconds)))
            print(f"run {i + 1}: tui {tui[-1]}\n       peer {peer[-1]}", flush=True)
    peak = rss_mib()

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print()
    print("| what | TUI | plain follower (peer) | ratio |")
    print("|---|---|---|---|")
    for key, label in (
        ("lag_median", "lag, median of samples (s)"),
        ("lag_p99", "lag, p99 of samples (s)"),
        ("lag_max", "lag, max (s)"),
        ("catch_up", "lag of the last line (s)"),
    ):
        a, b = med(tui, key), med(peer, key)
        print(f"| {label} | {a:.3f} | {b:.3f} | {a / b if b else float('nan'):.2f} |")
    lines = med(tui, "lines")
    print(
        f"| lines produced / in the node's log (+1: its start line) | {lines:.0f} / {med(tui, 'shown'):.0f} | "
        f"{med(peer, 'lines'):.0f} / {med(peer, 'shown'):.0f} | |"
    )
    print(f"| peak RSS of this process (MiB) | {peak:.1f} (before the TUI: {base:.1f}) | | |")
    worst = max(max(r["lag_max"] for r in tui), max(r["catch_up"] for r in tui))
    ok = worst <= GOAL_LAG_S and peak <= GOAL_RSS_MIB
    print(
        f"\ngoal: lag <= {GOAL_LAG_S:g} s and RSS <= {GOAL_RSS_MIB:g} MiB: "
        f"{'pass' if ok else 'FAIL'} (worst lag {worst:.3f} s, peak RSS {peak:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
