"""The LLM layer's cost: per-request overhead, first-text latency, offline replay.

    python bench/bench_llm.py [--requests 200] [--replay 50]

Everything against the loopback Anthropic Messages server of the tests
(tests/llm/servers.py: real HTTP on 127.0.0.1, SSE streaming), with the real
``anthropic`` SDK, in the same run:

1. **Per-request overhead.**  A bare SDK call (``messages.create(stream=True)``,
   every event read) against ``LLMSession.complete`` with the ``anthropic``
   provider on an encrypted on-disk repository: redaction (three registered
   secrets plus the key shapes), canonical CBOR and hashing, the budget check
   (a project limit is set, so it is really checked), recording (three objects,
   a ref, the charge and two events in one SQLCipher transaction, drained to
   nowhere).  Requests alternate bare/STEVE with distinct prompts; medians.
   Goal: overhead under 5 ms or 10 %, whichever is larger.
2. **First text to output.**  From the moment the SDK yields the first text
   event to the moment its bytes were written (``os.write`` to a pipe) by
   the ``on_text`` callback STEVE calls.  Goal: under 2 ms.
   Every exchange ends in one durable SQLCipher commit (``synchronous=FULL``:
   an fsync of the WAL), whose cost is the disk's; the cheapest durable
   commit (one ``set_meta``) is timed at the same moments for comparison.
   The same is measured with the repository on tmpfs, where an fsync costs
   nothing: the software's own cost.
3. **Offline replay.**  A 50-request run recorded from the server, the server
   stopped, then one new process (interpreter start, opening the encrypted
   repository with a raw key, 50 ``complete`` calls with ``--llm replay``'s
   provider, exit) timed whole.  Goal: under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import anthropic  # noqa: E402

from steve.llm.anthropic_provider import AnthropicProvider  # noqa: E402
from steve.llm.budget import Budgets  # noqa: E402
from steve.llm.session import LLMSession  # noqa: E402
from steve.llm.types import Request  # noqa: E402
from steve.redact import Redactor  # noqa: E402
from steve.repo import Repo  # noqa: E402
from steve.store.kdf import KdfParams  # noqa: E402
from tests.llm.servers import KEY, AnthropicServer  # noqa: E402

SYSTEM = "You are terse."
REPLY = "The loopback server answers this question in a handful of streamed pieces of text."


def request(i: int) -> Request:
    return Request.simple(
        "anthropic", "claude-bench", f"question number {i}: why?", system=SYSTEM, max_tokens=256
    )


def bare_call(client: anthropic.Anthropic, i: int) -> str:
    parts = []
    with client.messages.create(
        model="claude-bench",
        max_tokens=256,
        system=SYSTEM,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": f"question number {i}: why?"}]}
        ],
        stream=True,
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


class TimedProvider(AnthropicProvider):
    """The anthropic provider, timestamping the SDK's first text event."""

    first_event: float = 0.0

    def _events(self, stream: Any, request: Request) -> Iterator[Any]:
        def timed() -> Iterator[Any]:
            seen = False
            for event in stream:
                if not seen and event.type == "content_block_delta":
                    seen = True
                    self.first_event = time.perf_counter()
                yield event

        return super()._events(timed(), request)


def redactor() -> Redactor:
    return Redactor(
        {
            "DB_PASSWORD": b"correct horse battery staple",
            "DEPLOY_TOKEN": b"tok-2f9a8c1d5e7b",
            "ANTHROPIC_API_KEY": KEY.encode(),
        }
    )


def new_repo(where: Path) -> Repo:
    kdf = KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)
    return Repo.init(where, passphrase="bench", kdf=kdf)


def overhead(n: int, tmp: Path) -> dict[str, float]:
    """Bare SDK call vs ``complete`` on a repository in ``tmp`` (see the module doc)."""
    server = AnthropicServer(REPLY).start()
    repo = new_repo(tmp / "overhead")
    try:
        Budgets(repo).set_limit("project", 10**12)
        client = anthropic.Anthropic(api_key=KEY, base_url=server.base_url, max_retries=0)
        provider = TimedProvider(api_key=KEY, base_url=server.base_url, max_retries=0)
        session = LLMSession(repo, provider, redactor=redactor())
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        first_out: list[float] = []

        def on_text(text: str) -> None:
            os.write(wfd, text.encode())
            if not first_out:
                first_out.append(time.perf_counter())
            with contextlib.suppress(BlockingIOError):
                os.read(rfd, 1 << 16)

        for i in range(10):  # warm both paths (connections, imports, caches)
            bare_call(client, -i - 1)
            session.complete(request(-i - 1))
        bare: list[float] = []
        steve: list[float] = []
        latency: list[float] = []
        floor: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            with repo.transaction() as tx:  # the cheapest durable commit, same moment
                tx.set_meta("bench", str(i))
            floor.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            text = bare_call(client, i)
            bare.append(time.perf_counter() - t0)
            assert text == REPLY
            first_out.clear()
            t0 = time.perf_counter()
            ex = session.complete(request(i), on_text=on_text)
            steve.append(time.perf_counter() - t0)
            assert ex.response.text == REPLY
            latency.append(first_out[0] - provider.first_event)
        os.close(rfd)
        os.close(wfd)
        return {
            "bare_ms": statistics.median(bare) * 1000,
            "steve_ms": statistics.median(steve) * 1000,
            "latency_ms": statistics.median(latency) * 1000,
            "latency_p95_ms": sorted(latency)[int(len(latency) * 0.95)] * 1000,
            "commit_ms": statistics.median(floor) * 1000,
            "without_commit_ms": statistics.median(
                s - b - f for s, b, f in zip(steve, bare, floor, strict=True)
            )
            * 1000,
        }
    finally:
        repo.close()
        server.stop()


REPLAY_DRIVER = """
import sys
from pathlib import Path
from steve.llm.replay import ReplayProvider
from steve.llm.session import LLMSession
from steve.llm.types import Request
from steve.redact import Redactor
from steve.repo import Repo
root, key, n = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
with Repo.open(root, key=key) as repo:
    session = LLMSession(repo, ReplayProvider(repo), redactor=Redactor())
    ids = [session.complete(Request.simple("anthropic", "claude-bench",
           f"question number {i}: why?", system="You are terse.", max_tokens=256)).response_oid
           for i in range(n)]
print(len(set(ids)))
"""


def replay(n: int, tmp: Path, runs: int) -> dict[str, float]:
    server = AnthropicServer(REPLY).start()
    repo = new_repo(tmp / "replay")
    try:
        provider = AnthropicProvider(api_key=KEY, base_url=server.base_url, max_retries=0)
        session = LLMSession(repo, provider, redactor=Redactor())
        for i in range(n):
            session.complete(request(i))
        key = repo.key
        assert key is not None
    finally:
        repo.close()
        server.stop()  # replay must not need it
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-c", REPLAY_DRIVER, str(tmp / "replay"), key.hex(), str(n)]
    floor_argv = [sys.executable, "-c", "pass"]
    times: list[float] = []
    floor: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        assert out.stdout.strip() == str(n), out
        t0 = time.perf_counter()
        subprocess.run(floor_argv, check=True)
        floor.append(time.perf_counter() - t0)
    return {"replay_s": statistics.median(times), "python_floor_s": statistics.median(floor)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--replay", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5, help="whole-process replay runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="steve-bench-llm-") as d:
        tmp = Path(d)
        o = overhead(args.requests, tmp)
        r = replay(args.replay, tmp, args.runs)
    shm = None
    if Path("/dev/shm").is_dir():
        with tempfile.TemporaryDirectory(prefix="steve-bench-llm-", dir="/dev/shm") as d:
            shm = overhead(args.requests, Path(d))
    extra = o["steve_ms"] - o["bare_ms"]
    ratio = extra / o["bare_ms"] * 100
    limit = max(5.0, o["bare_ms"] * 0.10)
    print(f"requests: {args.requests} (alternating), replay: {args.replay} x {args.runs} runs")
    print("| what | median | goal | verdict |")
    print("|---|---|---|---|")
    print(f"| bare SDK call, streamed | {o['bare_ms']:.2f} ms | | |")
    print(f"| LLMSession.complete, same call | {o['steve_ms']:.2f} ms | | |")
    print(
        f"| STEVE's overhead | {extra:.2f} ms ({ratio:.1f} %) | < {limit:.2f} ms "
        f"| {'pass' if extra < limit else 'FAIL'} |"
    )
    print(
        f"| of which: one durable commit (a one-row transaction, same moments) "
        f"| {o['commit_ms']:.2f} ms | | |"
    )
    print(
        f"| overhead less that commit (median of per-request differences) "
        f"| {o['without_commit_ms']:.2f} ms | | |"
    )
    if shm is not None:
        shm_extra = shm["steve_ms"] - shm["bare_ms"]
        shm_limit = max(5.0, shm["bare_ms"] * 0.1)
        print(
            f"| same, repository on tmpfs (/dev/shm: fsync is free), overhead "
            f"| {shm_extra:.2f} ms ({shm_extra / shm['bare_ms'] * 100:.1f} % of "
            f"{shm['bare_ms']:.2f} ms) | < {shm_limit:.2f} ms "
            f"| {'pass' if shm_extra < shm_limit else 'FAIL'} |"
        )
    print(
        f"| first SDK text event -> bytes written | {o['latency_ms'] * 1000:.0f} us "
        f"(p95 {o['latency_p95_ms'] * 1000:.0f} us) | < 2 ms "
        f"| {'pass' if o['latency_ms'] < 2 else 'FAIL'} |"
    )
    print(
        f"| replay {args.replay} requests, whole process | {r['replay_s'] * 1000:.0f} ms "
        f"(python -c pass: {r['python_floor_s'] * 1000:.0f} ms) | < 1000 ms "
        f"| {'pass' if r['replay_s'] < 1 else 'FAIL'} |"
    )


if __name__ == "__main__":
    main()
