"""Bulk ingest: 20,000 x 1 KiB files with ``hash-object -w --stdin-paths``.

    python bench/bench_ingest.py [--runs 5] [--sweep]

Each run starts from a fresh ``git init`` and fresh ``steve`` repositories:
one with fast KDF parameters, one with the default Argon2id (64 MiB, 4
passes) opened by passphrase (the key derivation is part of the time), and
one with the default KDF opened through the cached key of ``steve unlock``.
Goal (issue 2): steve at least 2x faster than git.

``--sweep`` also times the library's BatchWriter thresholds and SQLCipher
``cache_size`` in-process (no subprocess) to justify the chosen values.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Report,
    Series,
    ensure_bytecode,
    fmt_s,
    git_env,
    git_exe,
    git_init,
    init_steve,
    lock,
    make_large_file,
    make_small_files,
    run,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    unlock,
    verdict,
    workdir,
)
from steve.repo import Repo
from steve.store.sqlite import SqlCipherBackend

COUNT = 20_000
SIZE = 1024
GOAL = 0.33  # issue 13: steve's time at most 0.33x git's (issue 2: at least 2x faster)


def _ids(path: Path) -> list[str]:
    ids = path.read_text().split()
    if len(ids) != COUNT:
        raise SystemExit(f"{path}: expected {COUNT} ids, got {len(ids)}")
    return ids


def measure(runs: int = 5) -> Report:
    ensure_bytecode()
    steve = steve_exe()
    series = {
        name: Series(name)
        for name in (
            "git",
            "steve (fast KDF)",
            "steve (default KDF, passphrase)",
            "steve (default KDF, cached key)",
        )
    }
    with workdir("steve-bench-ingest-") as tmp:
        listing = make_small_files(tmp / "files", COUNT, SIZE)
        home = tmp / "home"
        home.mkdir()
        reference: list[str] | None = None
        for i in range(runs):
            g = tmp / f"git{i}"
            git_init(g, home)
            out = tmp / f"git{i}.ids"
            series["git"].add(
                run(
                    [git_exe(), "hash-object", "-w", "--stdin-paths"],
                    cwd=g,
                    env=git_env(home),
                    stdin=listing,
                    stdout=out,
                )
            )
            _ids(out)
            for name, default_kdf, cached in (
                ("steve (fast KDF)", False, False),
                ("steve (default KDF, passphrase)", True, False),
                ("steve (default KDF, cached key)", True, True),
            ):
                root = tmp / f"steve{i}-{default_kdf}-{cached}"
                init_steve(root, default_kdf=default_kdf).close()
                if cached:
                    unlock(root)
                out = tmp / f"{root.name}.ids"
                try:
                    series[name].add(
                        run(
                            [steve, "-C", str(root), "hash-object", "-w", "--stdin-paths"],
                            env=steve_env(passphrase=not cached),
                            stdin=listing,
                            stdout=out,
                        )
                    )
                finally:
                    if cached:
                        lock(root)
                ids = _ids(out)
                if reference is None:
                    reference = ids
                elif ids != reference:
                    raise SystemExit("steve ids differ between runs")
    git_median = series["git"].median
    rows = []
    goals = []
    for s in series.values():
        ratio = git_median / s.median
        rows.append(
            [
                s.name,
                fmt_s(s.median),
                fmt_s(s.minimum),
                f"{s.max_rss_mib:.0f}",
                "1.00x" if s.name == "git" else f"{ratio:.2f}x",
            ]
        )
        if s.name.startswith("steve (default"):
            goals.append(
                (
                    f"4. ingest 20k x 1 KiB, {s.name}: <= {GOAL}x git's time",
                    f"{1 / ratio:.2f}x",
                    verdict(1 / ratio <= GOAL),
                )
            )
    detail = (
        f"{COUNT:,} files x {SIZE} B, `hash-object -w --stdin-paths < paths > ids`, "
        f"fresh repository per run, median of {runs} runs.\n\n"
        + table(["tool", "median", "min", "peak RSS MiB", "speed-up vs git"], rows)
    )
    return Report("Bulk ingest", detail, goals)


def _pragma(repo: Repo, sql: str) -> None:
    """Set a pragma on the open connection (benchmark-only reach into the backend)."""
    backend = repo.backend
    assert isinstance(backend, SqlCipherBackend)
    backend._conn.execute(sql)


def sweep() -> str:
    """In-process: BatchWriter thresholds and cache_size (library level)."""
    import steve.repo as repo_mod
    from steve.objects.oid import ObjectId

    rows = []
    with workdir("steve-bench-sweep-") as tmp:
        listing = make_small_files(tmp / "files", COUNT, SIZE)
        paths = listing.read_text().split()
        blobs = [Path(p).read_bytes() for p in paths]
        saved = (repo_mod.BATCH_BYTES, repo_mod.BATCH_OBJECTS)
        ids: list[ObjectId] = []
        try:
            for objects in (256, 1024, 4096, 16384):
                times = []
                for i in range(3):
                    repo_mod.BATCH_OBJECTS = objects
                    repo = init_steve(tmp / f"b{objects}-{i}", default_kdf=False)
                    start = time.perf_counter()
                    with repo.writer() as w:
                        ids = [w.add_stream(io.BytesIO(b)) for b in blobs]
                    times.append(time.perf_counter() - start)
                    repo.close()
                rows.append([f"BATCH_OBJECTS={objects}", fmt_s(sorted(times)[1])])
        finally:
            repo_mod.BATCH_BYTES, repo_mod.BATCH_OBJECTS = saved
        repo = init_steve(tmp / "read", default_kdf=False)
        with repo.writer() as w:
            for b in blobs:
                w.add_stream(io.BytesIO(b))
        repo.close()
        for cache in (-2000, -16384, -65536):
            times = []
            for _ in range(3):
                r = repo_mod.Repo.open(tmp / "read", passphrase="bench passphrase")
                _pragma(r, f"PRAGMA cache_size = {cache}")
                start = time.perf_counter()
                for oid in ids:
                    r.backend.read_with_info(oid)
                times.append(time.perf_counter() - start)
                r.close()
            rows.append([f"read 20k, cache_size={cache}", fmt_s(sorted(times)[1])])
        # large writes: commit size and WAL checkpoint interval (durability unchanged)
        big = tmp / "big"
        make_large_file(big, 256 << 20)
        os.sync()  # let the file's writeback finish before timing writes
        configs = ((8, 1000), (16, 1000), (8, 16384))
        write_times: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
        try:
            for i in range(3):  # round-robin, so machine noise hits every setting alike
                for batch_mib, ckpt in configs:
                    repo_mod.BATCH_BYTES = batch_mib << 20
                    where = tmp / f"w{batch_mib}-{ckpt}-{i}"
                    repo = init_steve(where, default_kdf=False)
                    _pragma(repo, f"PRAGMA wal_autocheckpoint = {ckpt}")
                    start = time.perf_counter()
                    with big.open("rb") as fh:
                        repo.write_stream(fh)
                    write_times[(batch_mib, ckpt)].append(time.perf_counter() - start)
                    repo.close()
                    shutil.rmtree(where)
            for (batch_mib, ckpt), times in write_times.items():
                rows.append(
                    [
                        f"write 256 MiB, BATCH_BYTES={batch_mib} MiB, wal_autocheckpoint={ckpt}",
                        fmt_s(sorted(times)[1]),
                    ]
                )
        finally:
            repo_mod.BATCH_BYTES, repo_mod.BATCH_OBJECTS = saved
    return table(["setting (in-process, median of 3)", "time"], rows)


def main() -> None:
    report = measure(runs_arg(5))
    print(report.markdown())
    for goal in report.goals:
        print(f"- {goal[0]}: {goal[1]} {goal[2]}")
    if "--sweep" in sys.argv:
        print("\n" + sweep())


if __name__ == "__main__":
    main()
