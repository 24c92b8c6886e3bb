"""RESEARCH benchmarks (issue 17): mirroring throughput and local full-text search.

1. Mirror N fixture pages (default 1,000) from a loopback server (a separate
   process, so it does not share this process's GIL) with 8 concurrent
   fetches through ``steve.research.fetch.fetch_sources`` into a fresh
   encrypted repository (policy checks, robots.txt, hashing, batch commits),
   against a bare ``httpx`` loop doing the same GETs on 8 threads and
   keeping nothing.  Goal: at least half the bare throughput.
2. Extraction + indexing cost per page (``index_pending``: trafilatura, FTS5).
3. A local FTS search over M mirrored pages (default 10,000, stored as source
   records and indexed); median of the query times.  Goal: under 50 ms.

    python bench/bench_research.py [--pages 1000] [--runs 3] [--search-pages 10000]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fast_kdf  # noqa: E402
from steve.events.log import EventLog  # noqa: E402
from steve.porcelain.hostaction import DEFAULT_GATE  # noqa: E402
from steve.repo import Repo  # noqa: E402
from steve.research.fetch import fetch_sources, store_fetched  # noqa: E402
from steve.research.index import index_pending  # noqa: E402
from steve.research.policy import SourcePolicy  # noqa: E402
from steve.research.records import SourceRecord  # noqa: E402
from tests.research.server import VOCABULARY, page_html  # noqa: E402

JOBS = 8


def bare(urls: list[str]) -> tuple[float, float]:
    with httpx.Client(limits=httpx.Limits(max_connections=JOBS * 2)) as client:

        def get(url: str) -> int:
            r = client.get(url)
            r.raise_for_status()
            return len(r.content)

        t, c = time.perf_counter(), time.process_time()
        with cf.ThreadPoolExecutor(JOBS) as pool:
            total = sum(pool.map(get, urls))
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
    assert total > 0
    return elapsed, cpu


def mirror(urls: list[str], tmp: Path, n: int) -> tuple[float, float]:
    path = tmp / f"repo{n}"
    path.mkdir()
    repo = Repo.init(path, passphrase="pw", kdf=fast_kdf())
    log = EventLog.attach(repo)  # as the CLI does: events drained into events.db
    try:
        t, c = time.perf_counter(), time.process_time()
        out = fetch_sources(repo, urls, policy=SourcePolicy(), gate=DEFAULT_GATE, jobs=JOBS)
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        assert all(o.error is None for o in out), [o.error for o in out if o.error][:1]
        return elapsed, cpu
    finally:
        log.close()
        repo.close()


def query_set(n: int, pages: int) -> list[str]:
    """``n`` queries like people type: two content words (vocabulary ranks 50-2,000, in
    about 1-50 % of the pages; ranks below 50 play the part of "the" and "of"), every
    fifth one a word and a page's unique token."""
    rng = random.Random(17)
    out = []
    for i in range(n):
        a, b = (VOCABULARY[rng.randrange(50, 2000)] for _ in range(2))
        out.append(f"{a} u{rng.randrange(pages)}x" if i % 5 == 4 else f"{a} {b}")
    return out


def search_bench(tmp: Path, pages: int, queries: int) -> tuple[float, float, float, int, float]:
    path = tmp / "search"
    path.mkdir()
    repo = Repo.init(path, passphrase="pw", kdf=fast_kdf())
    try:
        batch: list[tuple[SourceRecord, bytes]] = []
        for i in range(pages):
            body = page_html(i)
            url = f"https://bench.example/page/{i}"
            cid = Repo.hash_stream(io.BytesIO(body))
            record = SourceRecord(url, url, 200, "text/html", cid, len(body), 1_767_225_600)
            batch.append((record, body))
            if len(batch) == 500:
                store_fetched(repo, batch, now=1)
                batch = []
        if batch:
            store_fetched(repo, batch, now=1)
        t = time.perf_counter()
        indexed = index_pending(repo)
        per_page = (time.perf_counter() - t) / max(indexed, 1)
        times = []
        hits = 0
        for q in query_set(queries, pages):
            t = time.perf_counter()
            found = repo.search_text(q, 10)
            times.append(time.perf_counter() - t)
            hits += len(found)
        assert hits > 0
        worst = []
        for _ in range(5):  # the most frequent word: it is in every page, all are ranked
            t = time.perf_counter()
            repo.search_text(VOCABULARY[0], 10)
            worst.append(time.perf_counter() - t)
        return per_page, statistics.median(times), max(times), indexed, statistics.median(worst)
    finally:
        repo.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--search-pages", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.research.server", str(args.pages)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        urls = [f"{base}/page/{i}" for i in range(args.pages)]
        bare(urls[:50])  # warm up the server's threads and the client
        with tempfile.TemporaryDirectory(prefix="bench-research-") as d:
            tmp = Path(d)
            b_runs, m_runs = [], []
            for n in range(args.runs):
                b_runs.append(bare(urls))
                m_runs.append(mirror(urls, tmp, n))
            b = statistics.median(r[0] for r in b_runs)
            m = statistics.median(r[0] for r in m_runs)
            bc = statistics.median(r[1] for r in b_runs) / args.pages * 1000
            mc = statistics.median(r[1] for r in m_runs) / args.pages * 1000
            print(f"pages {args.pages}, {JOBS} concurrent fetches, {args.runs} runs (median)")
            print(f"bare httpx loop : {b:.3f} s  {args.pages / b:8.0f} pages/s  "
                  f"client CPU {bc:.2f} ms/page")  # fmt: skip
            print(f"steve mirror    : {m:.3f} s  {args.pages / m:8.0f} pages/s  "
                  f"client CPU {mc:.2f} ms/page")  # fmt: skip
            ratio = b / m
            print(f"mirror / bare throughput: {ratio:.2f}  (goal >= 0.50: "
                  f"{'PASS' if ratio >= 0.5 else 'FAIL'})")  # fmt: skip
            per_page, med, top, indexed, every = search_bench(tmp, args.search_pages, args.queries)
            print(f"extract + index : {per_page * 1000:.2f} ms per page ({indexed} pages)")
            print(f"FTS search over {indexed} pages: median {med * 1000:.2f} ms, max "
                  f"{top * 1000:.2f} ms over {args.queries} queries (goal < 50 ms: "
                  f"{'PASS' if med < 0.05 else 'FAIL'})")  # fmt: skip
            print(f"worst case, a word in every page ({indexed} ranked): "
                  f"median {every * 1000:.2f} ms")  # fmt: skip
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
