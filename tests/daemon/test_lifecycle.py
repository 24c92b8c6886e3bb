"""steve daemon start|stop|status, ping, lock, a second daemon, stale files, SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from steve.daemon.client import Client
from steve.errors import (
    DaemonConnectionLost,
    DaemonLocked,
    DaemonNotRunning,
    DaemonShuttingDown,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.daemon.conftest import PASSPHRASE, Daemon, steve, wait_until


def test_start_status_ping_forwarded_write_stop(served_repo: Path) -> None:
    started = steve(served_repo, "daemon", "start")
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.decode().split()[0])
    try:
        for name in ("steved.sock", "steved.pid", "steved.log", "steved.lock"):
            mode = (served_repo / ".steve" / name).stat().st_mode & 0o777
            assert mode == 0o600, (name, oct(mode))
        assert (served_repo / ".steve" / "steved.pid").read_text().strip() == str(pid)
        again = steve(served_repo, "daemon", "start")
        assert again.returncode == 8 and b"[STEVE-DAEMON-002]" in again.stderr
        ping = steve(served_repo, "ping", "-c", "3")
        assert ping.returncode == 0 and f"pid {pid}".encode() in ping.stdout
        wrote = steve(served_repo, "hash-object", "-w", "--stdin", input=b"through steved\n")
        assert wrote.returncode == 0, wrote.stderr
        oid = wrote.stdout.decode().strip()
        status = json.loads(steve(served_repo, "daemon", "status", "--json").stdout)
        assert status["pid"] == pid and status["requests"] >= 1 and status["locked"] is False
        log = (served_repo / ".steve" / "steved.log").read_text().splitlines()
        records = [json.loads(line) for line in log]
        assert any(
            r["msg"] == "request done" and r["fields"]["command"] == ["hash-object"]
            for r in records
        )
        assert all({"ts", "level", "target", "correlation_id", "msg"} <= set(r) for r in records)
        assert "through steved" not in "\n".join(log)  # no plaintext content in logs
    finally:
        stopped = steve(served_repo, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (served_repo / ".steve" / "steved.sock").exists()
    with Repo.open(served_repo, passphrase=PASSPHRASE) as repo:
        assert repo.has_object(ObjectId.from_hex(oid))
    status = steve(served_repo, "daemon", "status")
    assert status.returncode == 11 and b"[STEVE-DAEMON-001]" in status.stderr


def test_stale_socket_and_pid_after_kill_9(daemon: Daemon) -> None:
    daemon.kill()
    assert daemon.socket.exists()  # left behind by the kill
    # the CLI notices the dead socket and runs directly
    direct = steve(daemon.repo, "hash-object", "-w", "--stdin", input=b"direct\n")
    assert direct.returncode == 0, direct.stderr
    # a new daemon takes over the stale files
    d2 = Daemon(daemon.repo).start()
    try:
        with d2.client() as c:
            assert c.call("ping")["pid"] == d2.proc.pid  # type: ignore[union-attr]
        assert (daemon.repo / ".steve" / "steved.pid").read_text().strip() == str(d2.proc.pid)  # type: ignore[union-attr]
    finally:
        d2.stop()


def test_lock_drops_the_daemon_key_and_a_client_unlocks_it(daemon: Daemon) -> None:
    locked = steve(daemon.repo, "lock")
    assert locked.returncode == 0 and b"steved dropped its key" in locked.stderr
    with daemon.client() as c:
        assert c.call("ping")["locked"] is True
        try:
            c.call("follow", from_seq=1)
            raise AssertionError("a locked daemon must refuse")
        except DaemonLocked:
            pass
    # a write with the passphrase at hand: the client sends the key, then runs
    wrote = steve(daemon.repo, "hash-object", "-w", "--stdin", input=b"after lock\n")
    assert wrote.returncode == 0, wrote.stderr
    with daemon.client() as c:
        assert c.call("ping")["locked"] is False


def test_key_ttl_expires(served_repo: Path) -> None:
    d = Daemon(served_repo).start("--ttl", "1s")
    try:
        with d.client() as c:
            wait_until(lambda: c.call("ping")["locked"] is True, timeout=20)
    finally:
        d.stop()


class _GatedStdin(io.RawIOBase):
    """stdin that signals its first read (the command is in flight), then waits for a gate."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)
        self.asked = threading.Event()
        self.gate = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.asked.set()
        self.gate.wait(30)
        return self.data.readinto(buffer)


def test_sigterm_finishes_the_in_flight_write(daemon: Daemon) -> None:
    stdin = _GatedStdin(os.urandom(3 << 20))
    results: dict[str, object] = {}

    def write() -> None:
        out: list[bytes] = []
        with daemon.client() as c:
            results["code"] = c.run(
                ["hash-object", "-w", "--stdin"],
                cwd=str(daemon.repo),
                env={},
                stdin=stdin,
                write=lambda fd, data: out.append(data),  # type: ignore[arg-type]
            )
        results["oid"] = b"".join(out).decode().strip()

    t = threading.Thread(target=write)
    t.start()
    assert stdin.asked.wait(60)  # the write runs in steved now
    daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    try:  # new requests are refused while it drains
        with daemon.client() as late:
            late.call("run", argv=["hash-object", "--stdin"], cwd="/", env={})
        raise AssertionError("accepted a request while stopping")
    except (DaemonShuttingDown, DaemonConnectionLost, DaemonNotRunning):
        pass
    stdin.gate.set()
    t.join(60)
    assert daemon.proc.wait(60) == 0  # type: ignore[union-attr]
    assert results["code"] == 0
    with Repo.open(daemon.repo, passphrase=PASSPHRASE) as repo:
        assert repo.has_object(ObjectId.from_hex(str(results["oid"])))
    try:
        Client(daemon.socket)
        raise AssertionError("the socket must be gone")
    except DaemonNotRunning:
        pass
