"""kill -9 of steved mid-write, repeatedly: restart, every acknowledged write is there,
fsck and the event chain are clean, clients reconnect; and an event flood keeps the
daemon's memory bounded."""

from __future__ import annotations

import io
import os
import random
import threading
import time
from pathlib import Path

import pytest

from steve.errors import SteveError
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.daemon.conftest import PASSPHRASE, Daemon, steve

ROUNDS = 6
WRITERS = 4


@pytest.mark.slow
def test_kill_9_mid_write_loses_no_acknowledged_write(served_repo: Path) -> None:
    acked: dict[str, bytes] = {}
    events_acked: list[int] = []
    lock = threading.Lock()
    rng = random.Random(15)
    for _round in range(ROUNDS):
        daemon = Daemon(served_repo).start()
        stop = threading.Event()

        def writer(
            n: int, daemon: Daemon = daemon, stop: threading.Event = stop, rnd: int = _round
        ) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                data = f"round {rnd} writer {n} #{i} {os.urandom(8).hex()}\n".encode()
                out: list[bytes] = []
                try:
                    with daemon.client() as c:
                        if n == 0:  # events through the daemon's appender
                            reply = c.append("test.kill", [{"n": i}] * 20)
                            with lock:
                                events_acked.append(int(reply["head"]))
                            continue
                        code = c.run(
                            ["hash-object", "-w", "--stdin"],
                            cwd=str(served_repo),
                            env={},
                            stdin=io.BytesIO(data),
                            write=lambda fd, d, out=out: out.append(d),
                        )
                except (SteveError, OSError):
                    return  # the daemon died under us: not acknowledged
                if code == 0:
                    with lock:
                        acked[b"".join(out).decode().strip()] = data

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.5, 2.0))
        daemon.kill()  # SIGKILL, mid-write
        stop.set()
        for t in threads:
            t.join(60)
        daemon.stop()
    assert len(acked) > ROUNDS  # writes were acknowledged in most rounds
    # restart once more: clients reconnect and the repository is whole
    daemon = Daemon(served_repo).start()
    try:
        with daemon.client() as c:
            assert c.call("ping")["locked"] is False
        fsck = steve(served_repo, "fsck")
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        verify = steve(served_repo, "events", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        daemon.stop()
    with Repo.open(served_repo, passphrase=PASSPHRASE) as repo:
        for oid, data in acked.items():
            assert repo.read_object(ObjectId.from_hex(oid)).data == data  # type: ignore[attr-defined]
    from steve.events import EventLog

    key = Repo.derive_key(served_repo, PASSPHRASE)
    with EventLog(served_repo / ".steve" / "events.db", key, key_checked=True) as log:
        assert log.head().seq >= max(events_acked, default=0)


FLOOD = int(os.environ.get("STEVE_TEST_FLOOD", "100000"))
"""Events in the flood test (bench/bench_daemon.py floods 1,000,000)."""
RSS_LIMIT_KIB = 96 * 1024


@pytest.mark.slow
def test_event_flood_with_queries_keeps_rss_bounded(daemon: Daemon) -> None:
    samples: list[int] = []
    errors: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(daemon.rss_kib())
            time.sleep(0.1)

    def query() -> None:
        while not done.is_set():
            try:
                with daemon.client() as c:
                    c.call("status")
                    out: list[bytes] = []
                    c.run(
                        ["rev-parse", "HEAD"],
                        cwd=str(daemon.repo),
                        env={},
                        stdin=None,
                        write=lambda fd, d, out=out: out.append(d),
                    )
            except SteveError as exc:
                errors.append(str(exc))
            time.sleep(0.05)

    side = [threading.Thread(target=sample), *(threading.Thread(target=query) for _ in range(4))]
    for t in side:
        t.start()
    batch = 2000
    try:
        with daemon.client() as c:
            for start in range(0, FLOOD, batch):
                c.append(
                    "test.flood", [{"i": i, "pad": "p" * 32} for i in range(start, start + batch)]
                )
    finally:
        done.set()
        for t in side:
            t.join(60)
    assert errors == []
    assert max(samples) < RSS_LIMIT_KIB, f"peak RSS {max(samples)} KiB"
    with daemon.client() as c:  # nothing lost: every seq, in order, once
        n = 0
        for message in c.follow(1, once=True):
            n += 1
            assert message["event"]["seq"] == n
    assert n == FLOOD
    verify = steve(daemon.repo, "events", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.slow
def test_a_cli_follower_reconnects_after_kill_9_without_gap_or_duplicate(served_repo: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.daemon.conftest import env_for

    daemon = Daemon(served_repo).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "steve.cli.main", "events", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(served_repo),
    )
    try:
        assert proc.stdout is not None
        with daemon.client() as c:
            c.append("test.resume", [{"i": i} for i in range(50)])
        seqs = [json.loads(proc.stdout.readline())["seq"] for _ in range(50)]
        daemon.kill()  # the follower's connection drops; it retries for up to 10 s
        daemon = Daemon(served_repo).start()
        with daemon.client() as c:
            c.append("test.resume", [{"i": i} for i in range(50, 100)])
        seqs += [json.loads(proc.stdout.readline())["seq"] for _ in range(50)]
        assert seqs == list(range(1, 101))
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        daemon.stop()
