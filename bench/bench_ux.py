"""The human side (issue 18): whole-process wall time of `steve help CODE`, an error
printed through the catalogue, `steve config list`, and shell completion (commands;
refs of a 100-ref repository opened with a fast-KDF passphrase), each against
`steve --version` in the same run (the start-up floor of a click command).

    python bench/bench_ux.py [--runs 20]

Runs this tree's code (``python -m steve`` with PYTHONPATH set to it), so it
measures the branch, not the installed copy.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from bench.common import fast_kdf, runs_arg, table, workdir  # noqa: E402
from steve.repo import Repo  # noqa: E402

PASSPHRASE = "bench-ux"


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of ``python -m steve ARGV``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "steve", *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    runs = runs_arg(20)
    with workdir("bench-ux") as tmp:
        repo = Repo.init(tmp, passphrase=PASSPHRASE, kdf=fast_kdf())
        oid = repo.write_blob(b"bench\n")
        for i in range(100):
            repo.update_ref(f"refs/heads/b{i:03d}", oid)
        repo.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
        env.update(PYTHONPATH=str(ROOT), LC_ALL="C", STEVE_DIR=str(tmp))
        keyed = {**env, "STEVE_PASSPHRASE": PASSPHRASE}

        def complete(words: str) -> dict[str, str]:
            cword = str(len(words.split(" ")) - 1)
            return {**keyed, "_STEVE_COMPLETE": "bash_complete", "COMP_WORDS": words,
                    "COMP_CWORD": cword}  # fmt: skip

        cases = [
            ("steve --version (peer)", ["--version"], env),
            ("steve help STEVE-KEY-001", ["help", "STEVE-KEY-001"], env),
            ("error: steve -C /nonexistent status", ["-C", "/nonexistent", "status"], env),
            ("steve config list", ["config", "list"], env),
            ("complete `steve rev-`", [], complete("steve rev-")),
            ("complete `steve rev-parse ` (100 refs)", [], complete("steve rev-parse ")),
            ("complete `steve freeze `", [], complete("steve freeze ")),
        ]
        results = [(label, timed(argv, e, runs)) for label, argv, e in cases]
    peer = results[0][1]
    rows = [[label, f"{t * 1000:.0f} ms", f"{t / peer:.2f}x"] for label, t in results]
    print(f"runs: {runs} (median wall time, whole process)\n")
    print(table(["command", "median", "vs --version"], rows))


if __name__ == "__main__":
    main()
