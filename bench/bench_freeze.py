"""Freezing 10,000 design manifests: through the library and through the CLI batch mode.

    python bench/bench_freeze.py [--runs 3] [--count 10000]

Drafts are distinct, realistic design manifests (3 acceptance criteria,
3 constraints, 1 axiom, 2 research questions).  Each run uses a fresh
encrypted repository (fast KDF):

- library: :func:`steve.porcelain.freeze.freeze_many` (one BatchWriter) in
  this process, and :func:`~steve.porcelain.freeze.freeze` one call (one
  transaction) per draft for comparison;
- CLI: ``steve freeze design - --batch`` reading the same drafts as JSON
  Lines on stdin, one id per line out (whole process: start-up, opening the
  database, validation, storing).

The ids of all three are checked to be identical (SOURCE_DATE_EPOCH fixes
the time).  No goal is set by the issue; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import statistics
import sys
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
    run,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    workdir,
)
from steve.porcelain.freeze import freeze, freeze_many
from steve.repo import Repo

T0 = 1_700_000_000


def count_arg(default: int) -> int:
    if "--count" in sys.argv:
        return int(sys.argv[sys.argv.index("--count") + 1])
    return default


def draft(i: int) -> dict[str, Any]:
    return {
        "project_id": "bench",
        "name": f"design {i}",
        "created_at": T0 + i,
        "intent": {"summary": f"Benchmark design number {i}.", "user_stories": []},
        "acceptance_criteria": [
            {"id": f"AC-{k:03d}", "description": f"criterion {k} of {i}", "testable": True}
            for k in range(1, 4)
        ],
        "constraints": [
            {"id": "C-001", "type": "Security", "description": "no network", "hard": True},
            {"id": "C-002", "type": "Performance", "description": "fast", "hard": False},
            {"id": "C-003", "type": "Resource", "description": "small", "hard": False},
        ],
        "axioms": ["C-001"],
        "research_questions": [
            {"id": "RQ-001", "question": f"question a {i}", "priority": "Must"},
            {"id": "RQ-002", "question": f"question b {i}", "priority": "Could"},
        ],
        "human_approved": True,
        "approval_timestamp": T0 + i + 1,
    }


def measure(runs: int = 3, count: int = 10_000) -> Report:
    drafts = [draft(i) for i in range(count)]
    times: dict[str, list[float]] = {"batch": [], "single": [], "cli": []}
    with workdir("steve-bench-freeze-") as tmp:
        jsonl = tmp / "drafts.jsonl"
        jsonl.write_text("".join(json.dumps(d) + "\n" for d in drafts))
        reference: list[str] | None = None
        for r in range(runs):
            with Repo.init(tmp / f"lib{r}", passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
                start = time.perf_counter()
                ids = [o.hex for o in freeze_many(repo, "design", drafts, now=T0, tz=0)]
                times["batch"].append(time.perf_counter() - start)
            reference = reference or ids
            if ids != reference:
                raise SystemExit("library ids differ between runs")
            with Repo.init(tmp / f"one{r}", passphrase=PASSPHRASE, kdf=fast_kdf()) as repo:
                start = time.perf_counter()
                single = [freeze(repo, "design", d, now=T0, tz=0).hex for d in drafts]
                times["single"].append(time.perf_counter() - start)
            if single != reference:
                raise SystemExit("freeze() ids differ from freeze_many()")
            root = tmp / f"cli{r}"
            Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()).close()
            env = {**steve_env(), "SOURCE_DATE_EPOCH": str(T0)}
            out = tmp / f"cli{r}.ids"
            result = run(
                [steve_exe(), "-C", str(root), "freeze", "design", "-", "--batch"],
                env=env,
                stdin=jsonl,
                stdout=out,
            )
            times["cli"].append(result.wall)
            if out.read_text().split() != reference:
                raise SystemExit("CLI batch ids differ from the library's")

    def row(name: str, label: str) -> list[str]:
        med = statistics.median(times[name])
        return [label, fmt_s(med), f"{count / med:,.0f}/s", f"{med / count * 1e6:.0f} µs"]

    detail = (
        f"{count:,} distinct design manifests, fresh encrypted repository per run, "
        f"medians of {runs} runs; all three produce identical ids.\n\n"
        + table(
            ["path", "total", "throughput", "per manifest"],
            [
                row("batch", "library `freeze_many` (one BatchWriter)"),
                row("single", "library `freeze` (one transaction each)"),
                row("cli", "`steve freeze design - --batch` (JSON Lines, whole process)"),
            ],
        )
    )
    return Report("freeze: 10,000 design manifests", detail, [])


def main() -> None:
    print(measure(runs_arg(3), count_arg(10_000)).markdown())


if __name__ == "__main__":
    main()
