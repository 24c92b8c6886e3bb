"""`steve attest` of a build receipt, in-process: the goal is under 50 ms (issue 16).

    python bench/bench_attest.py [--runs 20] [--files 1,10,50] [--file-kib 16]

For each count in ``--files``, a fresh encrypted repository (fast KDF) holds
build receipts whose output tree has that many files of ``--file-kib`` KiB.
Timed, each run (medians over ``--runs``):

- ``attest``: :func:`steve.porcelain.attest.attest` as `steve attest` calls it: read
  the receipt, hash every output file (SHA-256 and BLAKE3), build the CycloneDX
  SBOM, the in-toto statement and the DSSE envelope, sign it (Ed25519), store
  SBOM and envelope as blobs and move their refs; the library is imported and
  the key loaded before timing (the CLI pays those once per process);
- ``attest CPU``: the same call's CPU time (``time.process_time``): what it
  costs when the machine is not shared (it leaves out waiting for a core and
  for the disk);
- ``of which SBOM``: :func:`steve.trust.sbom.make_sbom` alone for the same files
  (cyclonedx-python-lib building and serialising the document);
- ``verify``: :func:`steve.porcelain.attest.verify_attestation` of the envelope.

Each run attests a new receipt (another node id), so nothing is a no-op; one
untimed attest first warms the libraries' caches.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PASSPHRASE, fast_kdf, runs_arg, table, workdir
from steve.objects.oid import ObjectId
from steve.porcelain.attest import artifact_files, attest, verify_attestation
from steve.porcelain.freeze import freeze
from steve.repo import Repo
from steve.trust.keys import SigningKey
from steve.trust.sbom import make_sbom

T0 = 1_700_000_000
GOAL_MS = 50.0
IMAGE = "sha256:" + "ab" * 32


def str_arg(name: str, default: str) -> str:
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def int_arg(name: str, default: int) -> int:
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def make_receipt(repo: Repo, outputs: ObjectId, plan: ObjectId, i: int) -> ObjectId:
    draft = {
        "plan": plan.hex,
        "node": f"node-{i}",
        "action_key": ObjectId.of(f"action {i}".encode()).hex,
        "image": IMAGE,
        "command": ["/bin/sh", "-c", "make all"],
        "env": {"LANG": "C.UTF-8"},
        "declared_outputs": ["out"],
        "outputs": {"out": outputs.hex},
        "exit_status": 0,
        "started_at": T0,
        "finished_at": T0 + 3,
    }
    return freeze(repo, "build_receipt", draft, now=T0, tz=0)


def measure(files: int, size: int, runs: int, key: SigningKey) -> list[str]:
    """One row: attest and its parts for a receipt with ``files`` output files."""
    with workdir("attest") as tmp:
        root = tmp / "repo"
        root.mkdir()
        src = tmp / "out"
        src.mkdir()
        for i in range(files):
            (src / f"artifact-{i:03}.bin").write_bytes(os.urandom(size))
        repo = Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf())
        try:
            tree = repo.write_tree(src)
            plan_draft = {
                "title": "bench",
                "nodes": [{"id": "n", "kind": "run", "command": ["make"], "image": IMAGE}],
                "edges": [],
            }
            plan = freeze(repo, "plan", plan_draft, now=T0, tz=0)
            receipts = [make_receipt(repo, tree, plan, i) for i in range(runs + 1)]
            attest(repo, receipts[-1], [key])  # first call: the library's caches warm up
            timed: list[float] = []
            cpu: list[float] = []
            sbom: list[float] = []
            check: list[float] = []
            for i in range(runs):
                t, c = time.perf_counter(), time.process_time()
                result = attest(repo, receipts[i], [key])
                timed.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                found = artifact_files(repo, {"out": tree.hex})
                t = time.perf_counter()
                make_sbom(f"steve:{receipts[i].hex}", found, time=T0, kind="artifacts")
                sbom.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                verify_attestation(result.data, [key.public_key])
                check.append((time.perf_counter() - t) * 1000)
        finally:
            repo.close()
    med = statistics.median(timed)
    return [
        str(files),
        f"{med:.1f} ms",
        f"{min(timed):.1f} ms",
        f"{statistics.median(cpu):.1f} ms",
        f"{statistics.median(sbom):.1f} ms",
        f"{statistics.median(check):.2f} ms",
        "PASS" if med < GOAL_MS else "FAIL",
    ]


def main() -> None:
    runs = runs_arg(20)
    size = int_arg("--file-kib", 16) * 1024
    counts = [int(c) for c in str_arg("--files", "1,10,50").split(",")]
    key = SigningKey.generate()
    rows = [measure(n, size, runs, key) for n in counts]
    print(f"receipts with N output files of {size // 1024} KiB; medians of {runs} runs\n")
    print(
        table(
            [
                "files",
                "attest (median)",
                "attest (min)",
                "attest CPU (median)",
                "of which SBOM",
                "verify",
                "< 50 ms",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
