"""Frames: round trip, and a malformed, oversize or truncated frame closes that client
only; a foreign uid is refused (SO_PEERCRED) before any request is read."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.cli.serve import CommandExecutor
from steve.daemon.events import RepoEvents
from steve.daemon.paths import DaemonPaths, connect_unix
from steve.daemon.protocol import MAX_FRAME, decode_body, encode_frame, read_frame
from steve.daemon.server import Server
from steve.errors import BadFrame, FrameTooLarge
from steve.repo import Repo
from tests.daemon.conftest import PASSPHRASE, Daemon

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.binary() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), values, max_size=5), st.text())
def test_frames_round_trip(fields: dict[str, object], kind: str) -> None:
    message = {**fields, "t": kind}
    frame = encode_frame(message)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert decode_body(frame[4:]) == message


@given(st.binary(max_size=64))
def test_garbage_bodies_raise_only_bad_frame(body: bytes) -> None:
    with contextlib.suppress(BadFrame):
        decode_body(body)


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


def test_read_frame_limits() -> None:
    a, b = _pair()
    with a, b:
        a.sendall(struct.pack(">I", MAX_FRAME + 1))
        with pytest.raises(FrameTooLarge):
            read_frame(b)
    a, b = _pair()
    with a, b:
        a.sendall(encode_frame({"t": "ping"})[:-1])
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(BadFrame, match="truncated"):
            read_frame(b)


def _raw(daemon: Daemon) -> socket.socket:
    return connect_unix(daemon.socket, 10)


def _closed(sock: socket.socket) -> list[dict[str, object]]:
    """Every frame the daemon sent before closing the connection."""
    sock.settimeout(30)
    got = []
    while (message := read_frame(sock)) is not None:
        got.append(message)
    return got


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(struct.pack(">I", 5) + b"\xff\xff\xff\xff\xff", id="malformed"),
        pytest.param(struct.pack(">I", 3) + b"\x83\x01\x02", id="not-a-map"),
        pytest.param(struct.pack(">I", MAX_FRAME + 1), id="oversize"),
        pytest.param(struct.pack(">I", 100) + b"\xa1", id="truncated"),
        pytest.param(b"\x00\x00", id="truncated-header"),
    ],
)
def test_a_bad_frame_closes_that_client_only(daemon: Daemon, payload: bytes) -> None:
    good = daemon.client()
    bad = _raw(daemon)
    try:
        bad.sendall(payload)
        if payload.startswith(struct.pack(">I", 100)) or len(payload) < 4:
            bad.shutdown(socket.SHUT_WR)  # the stream ends inside the frame
        frames = _closed(bad)  # the daemon closed it
        assert all(f["t"] == "error" for f in frames)
        if frames:
            assert str(frames[0]["code"]).startswith("STEVE-DAEMON-00")
        assert good.call("ping")["t"] == "pong"  # the other client is served
        with daemon.client() as fresh:
            assert fresh.call("ping")["t"] == "pong"
    finally:
        bad.close()
        good.close()


@pytest.fixture
def open_server(served_repo: Path) -> Iterator[tuple[Server, Path]]:
    """An in-process steved whose socket sits in a directory other users can reach
    (0711, socket 0666): only SO_PEERCRED stands between them and the daemon."""
    shared = Path(tempfile.mkdtemp(prefix="steved-peer-", dir="/tmp"))
    shared.chmod(0o711)
    key = Repo.derive_key(served_repo, PASSPHRASE)
    server = Server(
        DaemonPaths(shared),
        CommandExecutor(served_repo),
        RepoEvents(served_repo / ".steve"),
        key,
        repository_id="peer-test",
    )
    server.bind()
    (shared / "steved.sock").chmod(0o666)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, shared / "steved.sock"
    finally:
        server.stop()
        thread.join(30)
        shutil.rmtree(shared, ignore_errors=True)


CLIENT = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
n = struct.unpack(">I", data[:4])[0]
sys.stdout.buffer.write(data[4:4 + n])
try:  # the connection is closed: a request cannot get through
    s.sendall(struct.pack(">I", 6) + b"\xa1atdping")
    print("SENT", file=sys.stderr)
except OSError:
    print("CLOSED", file=sys.stderr)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
def test_a_foreign_uid_is_refused_before_any_request(
    open_server: tuple[Server, Path],
) -> None:
    import os

    if os.getuid() != 0:
        pytest.skip("switching to another user needs root")
    server, sock = open_server
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            CLIENT,
            str(sock),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    message = decode_body(result.stdout)
    assert message["t"] == "error" and message["code"] == "STEVE-DAEMON-005"
    assert "65534" in str(message["detail"])
    assert server.stats.requests == 0  # nothing of the foreign peer was read
    # the owner is still served
    with connect_unix(sock, 10) as mine:
        mine.sendall(encode_frame({"t": "ping", "id": 1}))
        assert read_frame(mine)["t"] == "pong"  # type: ignore[index]
