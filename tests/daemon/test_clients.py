"""Fifty concurrent clients; follow with resume; a lagging follower is told; metrics."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from steve.cli.serve import CommandExecutor
from steve.daemon.events import RepoEvents, event_from_wire
from steve.daemon.paths import DaemonPaths
from steve.daemon.server import Limits, Server
from steve.events import EventLog
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.daemon.conftest import PASSPHRASE, Daemon, steve


def _run(daemon: Daemon, argv: list[str], stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    out: dict[int, list[bytes]] = {1: [], 2: []}
    with daemon.client() as c:
        code = c.run(
            argv,
            cwd=str(daemon.repo),
            env={"STEVE_AUTHOR_NAME": "T"},
            stdin=io.BytesIO(stdin),
            write=lambda fd, d: out[fd].append(d),
        )
    return code, b"".join(out[1]), b"".join(out[2])


@pytest.mark.slow
def test_fifty_concurrent_clients_mixed_reads_and_writes(daemon: Daemon) -> None:
    acked: dict[str, bytes] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        try:
            for i in range(4):
                data = f"client {n} write {i} {os.urandom(4).hex()}\n".encode()
                code, out, err = _run(daemon, ["hash-object", "-w", "--stdin"], data)
                if code != 0:
                    failures.append(f"{n}/{i}: write exit {code} {err!r}")
                    continue
                oid = out.decode().strip()
                with lock:
                    acked[oid] = data
                code, out, err = _run(daemon, ["cat-file", "-p", oid])
                if code != 0 or out != data:
                    failures.append(f"{n}/{i}: read back {code} {err!r}")
                code, _, err = _run(daemon, ["update-ref", f"refs/heads/c{n}", oid])
                if code != 0:
                    failures.append(f"{n}/{i}: update-ref exit {code} {err!r}")
                with daemon.client() as c:  # a plain request between commands
                    c.call("ping")
        except Exception as exc:  # reported below
            failures.append(f"{n}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert failures == []
    assert len(acked) == 200
    with Repo.open(daemon.repo, passphrase=PASSPHRASE) as repo:
        for oid, data in acked.items():
            assert repo.read_object(ObjectId.from_hex(oid)).data == data  # type: ignore[attr-defined]
        for n in range(50):  # each client's last write is its branch
            assert repo.refs.resolve(f"refs/heads/c{n}") is not None
    fsck = steve(daemon.repo, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    verify = steve(daemon.repo, "events", "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with daemon.client() as c:  # one ref event per update-ref, all delivered from the outbox
        updates = sum(1 for m in c.follow(1, once=True, event_type="ref.*") if m["t"] == "event")
    assert updates == 200


def test_follow_resume_has_no_gap_and_no_duplicate(daemon: Daemon) -> None:
    with daemon.client() as c:
        c.append("test.follow", [{"i": i} for i in range(300)])
    seen: list[int] = []
    nxt = 1
    for _round in range(4):  # read a while, drop the connection, resume from the last seq
        with daemon.client() as c:
            for message in c.follow(nxt):
                assert message["t"] == "event"
                seq = event_from_wire(message["event"]).seq
                seen.append(seq)
                nxt = seq + 1
                if len(seen) % 80 == 0:
                    break
        with daemon.client() as w:  # more events arrive while nobody follows
            w.append("test.follow", [{"j": _round}] * 10)
    with daemon.client() as c:
        for message in c.follow(nxt, once=True):
            seen.append(event_from_wire(message["event"]).seq)
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) == 340
    verify = steve(daemon.repo, "events", "verify")
    assert verify.returncode == 0, verify.stderr


def test_cli_follow_through_the_daemon(daemon: Daemon) -> None:
    with daemon.client() as c:
        c.append("test.cli", [{"i": i} for i in range(5)])
    import subprocess
    import sys

    from tests.daemon.conftest import env_for

    proc = subprocess.Popen(
        [sys.executable, "-m", "steve.cli.main", "events", "--follow", "--from-seq", "3", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(daemon.repo),
    )
    try:
        assert proc.stdout is not None
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert [e["seq"] for e in lines] == [3, 4, 5]
        with daemon.client() as c:
            c.append("test.cli", [{"late": True}])
        assert json.loads(proc.stdout.readline())["seq"] == 6
    finally:
        proc.terminate()
        proc.wait(30)
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()


def test_a_lagging_follower_is_told_what_it_missed(served_repo: Path, tmp_path: Path) -> None:
    key = Repo.derive_key(served_repo, PASSPHRASE)
    with EventLog(served_repo / ".steve" / "events.db", key, key_checked=True) as log:
        for i in range(3000):
            log.emit("test.lag", {"i": i, "pad": "x" * 200})
        log.flush()
    server = Server(
        DaemonPaths(served_repo / ".steve"),
        CommandExecutor(served_repo),
        RepoEvents(served_repo / ".steve"),
        key,
        repository_id="lag-test",
        limits=Limits(output=64 * 1024, max_lag=1000),
    )
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from steve.daemon.client import Client

        with Client(server.paths.socket) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stream = c.follow(1, once=True)
            first = next(stream)
            import time

            time.sleep(3)  # a stuck reader: the daemon stops sending and falls behind
            seqs = [event_from_wire(first["event"]).seq]
            notices = []
            for message in stream:
                if message["t"] == "lagged":
                    notices.append((int(message["first"]), int(message["last"])))
                else:
                    seqs.append(event_from_wire(message["event"]).seq)
        assert notices, "the follower must be told it lagged"
        # every seq is either delivered or inside a reported range: none silently skipped
        covered = set(seqs)
        for first_missed, last_missed in notices:
            covered |= set(range(first_missed, last_missed + 1))
        assert covered == set(range(1, 3001))
        assert len(seqs) == len(set(seqs))
    finally:
        server.stop()
        thread.join(30)


def test_health_and_metrics_on_loopback(served_repo: Path) -> None:
    d = Daemon(served_repo).start("--http", "127.0.0.1:0")
    try:
        with d.client() as c:
            c.append("test.metrics", [{"i": 1}, {"i": 2}])
        code, _, _ = _run(d, ["hash-object", "-w", "--stdin"], b"m\n")
        assert code == 0
        base = f"http://127.0.0.1:{d.http_port}"
        health = json.loads(urllib.request.urlopen(base + "/healthz", timeout=30).read())
        assert health["status"] == "ok" and health["event_head"] == 2
        assert health["writer_queue"] == 0 and health["last_commit"] is not None
        text = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
        from prometheus_client.parser import text_string_to_metric_families

        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families.values()
            for s in f.samples
        }
        assert samples[("steved_requests_total", (("method", "append"), ("outcome", "ok")))] == 1
        assert samples[("steved_events_appended_total", ())] == 2
        assert samples[("steved_resident_memory_bytes", ())] > 1 << 20
        assert ("steved_writer_queue_depth", ()) in samples
        assert ("steved_events_per_second", ()) in samples
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/nope", timeout=30)
    finally:
        d.stop()


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "192.168.1.2:80", "example.org:80", "x"])
def test_a_non_loopback_listener_is_refused(served_repo: Path, address: str) -> None:
    result = steve(served_repo, "daemon", "start", "--http", address)
    assert result.returncode == 6 and b"[STEVE-DAEMON-009]" in result.stderr
    assert not (served_repo / ".steve" / "steved.sock").exists()


def test_a_stuck_reader_is_cut_off_and_a_slow_one_gets_everything(
    served_repo: Path,
) -> None:
    key = Repo.derive_key(served_repo, PASSPHRASE)
    big = os.urandom(5 << 20)
    with Repo.open(served_repo, key=key) as repo:
        oid = repo.write_blob(big).hex
    server = Server(
        DaemonPaths(served_repo / ".steve"),
        CommandExecutor(served_repo),
        RepoEvents(served_repo / ".steve"),
        key,
        repository_id="slow-test",
        limits=Limits(output=256 * 1024, stall=2.0),
    )
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from steve.daemon.client import Client
        from steve.daemon.protocol import encode_frame, read_frame

        stuck = Client(server.paths.socket)
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.send(
            {
                "t": "run",
                "id": 1,
                "argv": ["cat-file", "-p", oid],
                "cwd": str(served_repo),
                "env": {},
            }
        )
        import time

        time.sleep(1.0)
        with Client(server.paths.socket) as other:  # served meanwhile (ping needs no writer)
            assert other.call("ping")["t"] == "pong"
        time.sleep(4.0)  # past the stall limit: the stuck reader was cut off
        stuck.sock.settimeout(30)
        total = 0
        with pytest.raises(Exception):  # noqa: B017 - truncated stream or reset
            while (message := read_frame(stuck.sock)) is not None:
                total += len(message.get("data", b""))
            raise EOFError("closed")
        assert 0 < total < len(big)  # it got output, then was cut off
        stuck.close()
        # a reader that reads, however slowly, gets every byte and the exit code
        got: list[bytes] = []

        def slow(fd: int, data: bytes) -> None:
            got.append(data)
            if len(got) % 16 == 0:
                time.sleep(0.01)

        with Client(server.paths.socket) as reader:
            code = reader.run(
                ["cat-file", "-p", oid], cwd=str(served_repo), env={}, stdin=None, write=slow
            )
        assert code == 0 and b"".join(got) == big
        assert encode_frame({"t": "x"})  # the codec still works (nothing global broke)
    finally:
        server.stop()
        thread.join(30)


def test_a_full_writer_queue_answers_busy(served_repo: Path) -> None:
    from steve.daemon.client import Client
    from steve.errors import DaemonBusy

    key = Repo.derive_key(served_repo, PASSPHRASE)
    server = Server(
        DaemonPaths(served_repo / ".steve"),
        CommandExecutor(served_repo),
        RepoEvents(served_repo / ".steve"),
        key,
        repository_id="busy-test",
        limits=Limits(queue=1),
    )
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    run = {"argv": ["hash-object", "-w", "--stdin"], "cwd": str(served_repo), "env": {}}
    try:
        first = Client(server.paths.socket)
        first.send({"t": "run", "id": 1, **run})
        assert first.receive()["t"] == "want-stdin"  # in flight: the writer waits for stdin
        second = Client(server.paths.socket)
        second.send({"t": "run", "id": 1, **run})  # queued (the queue holds one)
        # the server reads each connection on its own: wait until the second request is
        # really queued, or the third could take its place (and then wait, unanswered)
        deadline = time.monotonic() + 30
        while server.queue_depth() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.queue_depth() == 1
        with Client(server.paths.socket) as third, pytest.raises(DaemonBusy):
            third.sock.settimeout(30)  # a wrong answer fails the test, never hangs it
            third.call("run", **run)
        assert server.queue_depth() == 1
        first.send({"t": "stdin", "id": 1, "data": b"one\n"})
        first.send({"t": "stdin", "id": 1, "data": b""})
        while (m := first.receive())["t"] != "exit":
            pass
        assert m["code"] == 0
        assert second.receive()["t"] == "want-stdin"  # the queued one runs next
        second.send({"t": "stdin", "id": 1, "data": b""})
        while (m := second.receive())["t"] != "exit":
            pass
        assert m["code"] == 0
        first.close()
        second.close()
    finally:
        server.stop()
        thread.join(30)
