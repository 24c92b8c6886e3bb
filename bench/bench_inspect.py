"""``steve inspect`` on a repository of 100,000 manifests and 1,000,000 events.

    python bench/bench_inspect.py [--runs 5] [--count 100000] [--events 1000000] [--keep DIR]

The repository: the 100,000-manifest linear history of bench_log.py (library,
BatchWriter, fast KDF), plus a run in BUILD whose three-node plan was built
(one node failed) through the real ``build`` with the in-process runner of
the stage tests, plus 1,000,000 events appended through the event store's
batch API (``EventStore.append``, 10,000 per transaction): 90 % step output
(``log.chunk``) of that run, the rest ``step.*``, ``ref.updated`` and a few
``gate.decision`` events spread over other runs.

Each subcommand (with ``--json``; ``resources`` also with and without the
container engine) is run whole-process ``--runs`` times, alternating, with
stdout on a pipe; reported: median wall and CPU seconds, beside the floor
of ``python -c pass`` and ``steve --version`` and two peers that open the
same repository (``steve status``; ``steve events`` printing the last event)
in the same run.  On a shared machine the CPU column is the steadier one.

Goal (issue 18): every subcommand answers in under 200 ms whole-process.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_log import build_steve, count_arg
from bench.common import (
    Report,
    ensure_bytecode,
    fmt_s,
    runs_arg,
    steve_env,
    table,
    timed_cpu,
    verdict,
    workdir,
)
from steve.events import EventLog
from steve.events.model import event_parts
from steve.objects import cbor
from steve.porcelain.build import build
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import chain_plan, run_with_plan

GOAL = 0.200
BATCH = 10_000


def _arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def build_repo(root: Path, count: int, n_events: int) -> str:
    """The repository described in the module docstring; returns the run id."""
    from bench.common import PASSPHRASE

    build_steve(root, count)
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        src = repo.write_blob(b"bench source")
        run_id, _ = run_with_plan(repo, chain_plan(src), name="bench")
        log = EventLog.for_repo(repo)
        repo.events.sink = log
        build(repo, FakeRunner(fail={"asm"}), events=log)
        log.flush()
        store = log.store()
        have = store.last_seq()
        now = int(time.time() * 1000) - n_events
        chunk = cbor.encode({"step": "gen", "stream": "stdout", "data": b"x" * 80 + b"\n"})
        other = cbor.encode({"ref": "refs/heads/x", "old": None, "new": None})
        gate = cbor.encode(
            {"kind": "network", "subject": "gen", "decision": "denied", "via": "rule",
             "actor": "bench", "reason": "no grant"}
        )  # fmt: skip
        i = have
        while i < n_events:
            batch = []
            for _ in range(min(BATCH, n_events - i)):
                i += 1
                if i % 10:
                    p = (now + i, "info", "log.chunk", run_id, None, None, "bench", chunk)
                elif i % 10_000 == 0:
                    p = (now + i, "warning", "gate.decision", f"R{i % 97}", None, None, "b", gate)
                else:
                    p = (now + i, "info", "ref.updated", f"R{i % 97}", None, None, "bench", other)
                batch.append(p)
            store.append(batch, parts=[event_parts(*p) for p in batch])
        log.close()
        return run_id


def _head(root: Path) -> int:
    from bench.common import PASSPHRASE

    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        log = EventLog.for_repo(repo)
        try:
            return log.head().seq
        finally:
            log.close()


def in_process(root: Path, runs: int) -> list[list[str]]:
    """Median milliseconds of each library call on the open repository."""
    from bench.common import PASSPHRASE
    from steve.porcelain import dag
    from steve.porcelain import inspect as ins

    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        log = EventLog.for_repo(repo)
        run_id = ins.run_state(repo, now=0).run
        calls = {
            "run_state": lambda: ins.run_state(repo, now=0),
            "manifests": lambda: ins.manifests(repo),
            "object_stats (resources)": repo.object_stats,
            "event head (resources)": lambda: log.head().seq,
            "tail 50": lambda: ins.tail(log, ins.LogFilter(), limit=50),
            "tail --type gate.decision": lambda: ins.tail(
                log, ins.LogFilter(event_type="gate.decision"), limit=50
            ),
            "tail --node gen -n 20": lambda: ins.tail(log, ins.LogFilter(node="gen"), limit=20),
            "plan_dag (with running nodes)": lambda: dag.plan_dag(repo, None, log),
            "decisions": lambda: ins.decisions(repo, log, now=0),
            "error_counts": lambda: ins.error_counts(repo),
        }
        rows = []
        try:
            for name, call in calls.items():
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    call()
                    times.append(time.perf_counter() - start)
                rows.append([name, f"{statistics.median(times) * 1000:.1f} ms"])
        finally:
            log.close()
        assert run_id is not None
        return rows


COMMANDS: list[tuple[str, list[str]]] = [
    ("state", ["inspect", "state", "--json"]),
    ("manifests", ["inspect", "manifests", "--json"]),
    ("resources (no engine)", ["inspect", "resources", "--no-containers", "--json"]),
    ("resources (engine)", ["inspect", "resources", "--json"]),
    ("logs -n 50", ["inspect", "logs", "--json"]),
    ("logs --type gate.decision", ["inspect", "logs", "--type", "gate.decision", "--json"]),
    ("logs --node gen -n 20", ["inspect", "logs", "--node", "gen", "-n", "20", "--json"]),
    ("dag", ["inspect", "dag", "--json"]),
    ("dag --format dot", ["inspect", "dag", "--format", "dot"]),
    ("decisions", ["inspect", "decisions", "--json"]),
    ("errors", ["inspect", "errors", "--json"]),
]


def measure(runs: int, count: int, n_events: int, keep: Path | None) -> Report:
    ensure_bytecode()
    with workdir("steve-bench-inspect-") as tmp:
        root = keep or tmp / "repo"
        started = time.perf_counter()
        if not (root / ".steve").is_dir():
            build_repo(root, count, n_events)
        built = time.perf_counter() - started
        head = _head(root)
        library = in_process(root, runs)
        env = steve_env()
        env["STEVE_DIR"] = str(root)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        steve = [sys.executable, "-m", "steve"]
        floors = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "steve --version": [*steve, "--version"],
            "steve status (peer)": [*steve, "status"],
            "steve events --from-seq HEAD (peer)": [*steve, "events", "--from-seq", str(head)],
        }
        walls: dict[str, list[float]] = {name: [] for name in [*floors, *dict(COMMANDS)]}
        cpus: dict[str, list[float]] = {name: [] for name in walls}
        out = tmp / "out"
        for _ in range(runs):
            for name, cmd in [*floors.items(), *((n, [*steve, *a]) for n, a in COMMANDS)]:
                wall, cpu = timed_cpu(cmd, env=env, stdout=out)
                walls[name].append(wall)
                cpus[name].append(cpu)
    med = {n: statistics.median(v) for n, v in walls.items()}
    cmed = {n: statistics.median(v) for n, v in cpus.items()}
    floor = med["python -c pass"]
    rows = [
        [name, fmt_s(med[name]), fmt_s(cmed[name]), fmt_s(max(0.0, med[name] - floor))]
        for name in walls
    ]
    detail = (
        f"{count:,} manifests + {n_events:,} events (built in {built:.0f} s), "
        f"median of {runs}, whole process, stdout on a pipe\n\n"
        + table(["command", "wall", "cpu", "wall - python floor"], rows)
        + "\n\nIn process (the library call alone, repository open):\n\n"
        + table(["call", "median"], library)
    )
    goals = [
        (f"inspect {name} < {GOAL * 1000:.0f} ms", fmt_s(med[name]), verdict(med[name] < GOAL))
        for name, _ in COMMANDS
    ]
    return Report("steve inspect on 100,000 manifests and 1,000,000 events", detail, goals)


def main() -> None:
    keep = Path(sys.argv[sys.argv.index("--keep") + 1]) if "--keep" in sys.argv else None
    report = measure(runs_arg(5), count_arg(100_000), _arg("--events", 1_000_000), keep)
    print(report.markdown())
    print(table(["goal", "measured", "verdict"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    main()
