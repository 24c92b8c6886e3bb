"""Durability under load: a 1,000,000-event flood from 4 producer threads in bounded
memory, and SIGKILL during a flood, many times, losing no committed event."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from steve.events import EventLog

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FLOOD_EVENTS = 1_000_000
RSS_LIMIT_MIB = 128
SEED = 20261122


def child(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.events.children", *args]


def test_flood_of_a_million_events_stays_small_and_loses_nothing(tmp_path: Path) -> None:
    key = os.urandom(32)
    path = tmp_path / "events.db"
    proc = subprocess.run(
        child("flood", str(path), key.hex(), str(FLOOD_EVENTS), "4"),
        cwd=ROOT,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    result = json.loads(proc.stdout.decode().splitlines()[-1])
    assert result["committed"] == result["count"] == result["verified"] == FLOOD_EVENTS
    assert result["ok"] is True
    assert result["segments"] >= FLOOD_EVENTS // 100_000 - 1  # rotation happened on the way
    assert result["last_i"] == [FLOOD_EVENTS // 4 - 1] * 4  # every producer's last event
    assert result["rss_mib"] < RSS_LIMIT_MIB, result
    print(json.dumps(result))  # the figures, for the record (pytest -s)


def test_sigkill_during_a_flood_loses_no_committed_event(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    key = os.urandom(32)
    path = tmp_path / "events.db"
    committed_total = 0
    for iteration in range(12):
        proc = subprocess.Popen(
            child("crash", str(path), key.hex()),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        acked = [0]

        def read_acks(p: subprocess.Popen[bytes] = proc, box: list[int] = acked) -> None:
            assert p.stdout is not None
            for line in p.stdout:
                if line.startswith(b"ack "):
                    box[0] = int(line.split()[1])

        reader = threading.Thread(target=read_acks)
        reader.start()
        deadline = time.monotonic() + 30
        while acked[0] == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join()
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert acked[0] > 0, f"iteration {iteration}: the child never committed: {err[-2000:]}"
        with EventLog(path, key) as log:
            report = log.verify()
            count = log.store().count()
        assert report.ok, (iteration, report.problems)
        assert count == report.events
        # everything acknowledged before the kill is there
        assert count >= committed_total + acked[0], (iteration, count, committed_total, acked)
        committed_total = count
    with EventLog(path, key) as log:
        assert log.verify().segments >= 1
