"""Redaction throughput over step logs: STEVE's redactor vs a naive loop, same run.

    python bench/bench_redact.py [--runs 5] [--mb 64] [--secrets 100]

The input is a synthetic build log (compiler lines, test output, timestamps;
plain ASCII, ``--mb`` MiB) with a few of the registered values and a few key
shapes sprinkled in.  ``--secrets`` random values (16..64 bytes) are
registered.  Measured, as medians of ``--runs``:

- ``Redactor.bytes`` over the whole log, key shapes on and off;
- the stream redactor fed the same log in 64 KiB chunks (how step logs arrive);
- the naive loop: ``bytes.replace`` once per registered value (what one would
  write first; it is also wrong across chunk boundaries).

Goal (issue 16): at least 100 MB/s with 100 registered secrets.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steve.redact import Redactor

LINES = (
    b"2026-12-01T00:%02d:%02dZ build  gcc -O2 -Wall -fPIC -c src/module_%d.c -o obj/module_%d.o\n",
    b"2026-12-01T00:%02d:%02dZ test   tests/test_module_%d.py::test_case_%d PASSED\n",
    b"2026-12-01T00:%02d:%02dZ info   downloaded 0 packages, %d cached, %d skipped (offline)\n",
)


def make_log(size: int, values: list[bytes], rng: random.Random) -> bytes:
    out: list[bytes] = []
    total = i = 0
    while total < size:
        line = LINES[i % 3] % (i // 60 % 60, i % 60, i, i * 7)
        if i % 5000 == 17:
            line = b"env: TOKEN=" + rng.choice(values) + b" Authorization: Bearer abcdefgh123456\n"
        out.append(line)
        total += len(line)
        i += 1
    return b"".join(out)[:size]


def naive(values: dict[str, bytes]) -> Callable[[bytes], bytes]:
    ordered = sorted(values.items(), key=lambda kv: -len(kv[1]))

    def run(data: bytes) -> bytes:
        for name, value in ordered:
            data = data.replace(value, b"[REDACTED:" + name.encode() + b"]")
        return data
    return run


def streamed(redactor: Redactor, chunk: int) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        stream = redactor.stream()
        out = [stream.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)]
        out.append(stream.close())
        return b"".join(out)
    return run


def median_rate(fn: Callable[[bytes], bytes], data: bytes, runs: int) -> tuple[float, bytes]:
    times = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        out = fn(data)
        times.append(time.perf_counter() - start)
    return len(data) / statistics.median(times) / 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--secrets", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(16)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    values = {f"SECRET_{i}": bytes(rng.choice(alphabet) for _ in range(rng.randint(16, 64)))
              for i in range(args.secrets)}
    data = make_log(args.mb << 20, list(values.values()), rng)
    start = time.perf_counter()
    redactor = Redactor(values)
    build_ms = (time.perf_counter() - start) * 1000
    plain = Redactor(values, patterns=False)
    rows = [
        ("Redactor.bytes (secrets + shapes)", redactor.bytes),
        ("Redactor.bytes (secrets only)", plain.bytes),
        ("stream, 64 KiB chunks (secrets + shapes)", streamed(redactor, 64 << 10)),
        ("naive bytes.replace loop (secrets only)", naive(values)),
    ]
    print(f"log {len(data) / 1e6:.1f} MB, {args.secrets} secrets, runs={args.runs}, "
          f"cpus={os.cpu_count()}, automaton built in {build_ms:.1f} ms")
    outputs = []
    for label, fn in rows:
        rate, out = median_rate(fn, data, args.runs)
        outputs.append(out)
        print(f"  {label:45s} {rate:8.1f} MB/s")
    assert outputs[0] == outputs[2], "stream and whole differ"
    assert not any(v in outputs[0] for v in values.values())


if __name__ == "__main__":
    main()
