"""A steved client: request/response, forwarded commands and event streams."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from steve.daemon.paths import connect_unix
from steve.daemon.protocol import CHUNK, Message, encode_frame, read_frame
from steve.errors import DaemonConnectionLost, DaemonNotRunning, InternalError, SteveError
from steve.messages import error_classes


def rebuild_error(message: Message) -> SteveError:
    """The daemon's ``error`` frame as the SteveError subclass it names."""
    cls = error_classes().get(str(message.get("code")))
    if cls is None:
        return InternalError("steved sent an unknown error", repr(message.get("code")))
    err = cls.__new__(cls)
    Exception.__init__(err, str(message.get("message", "")))
    err.message = str(message.get("message", ""))
    err.detail = str(message.get("detail", ""))
    err.action = str(message.get("action", cls.action))  # type: ignore[misc]
    return err


class Client:
    """One connection to steved (not thread-safe: one conversation at a time)."""

    def __init__(self, socket_path: Path, *, timeout: float | None = 5.0) -> None:
        try:
            self.sock = connect_unix(socket_path, timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning(f"{socket_path}: {exc.strerror}") from exc
        except OSError as exc:
            raise DaemonNotRunning(f"{socket_path}: {exc}") from exc
        self._ids = 0
        self._send_lock = threading.Lock()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: Message) -> None:
        frame = encode_frame(message)
        with self._send_lock:
            try:
                self.sock.sendall(frame)
            except OSError as exc:
                raise DaemonConnectionLost(str(exc)) from exc

    def receive(self) -> Message:
        message = read_frame(self.sock)
        if message is None:
            raise DaemonConnectionLost("steved closed the connection")
        return message

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def call(self, kind: str, **fields: Any) -> Message:
        """One request, one reply; an ``error`` reply is raised as its SteveError."""
        rid = self.next_id()
        self.send({"t": kind, "id": rid, **fields})
        reply = self.receive()
        if reply["t"] == "error":
            raise rebuild_error(reply)
        return reply

    def run(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: dict[str, str],
        stdin: BinaryIO | None,
        write: Callable[[int, bytes], None],
    ) -> int:
        """Run ``argv`` in the daemon; output goes to ``write(fd, data)``; returns the exit
        code.  stdin is sent only when the command reads it."""
        rid = self.next_id()
        self.send({"t": "run", "id": rid, "argv": argv, "cwd": cwd, "env": env})
        while True:
            reply = self.receive()
            kind = reply["t"]
            if kind == "out":
                write(int(reply["fd"]), bytes(reply["data"]))
            elif kind == "want-stdin":
                threading.Thread(target=self._pump, args=(rid, stdin), daemon=True).start()
            elif kind == "exit":
                return int(reply["code"])
            elif kind == "error":
                raise rebuild_error(reply)

    def _pump(self, rid: int, stdin: BinaryIO | None) -> None:
        read = getattr(stdin, "read1", None) or getattr(stdin, "read", None)
        try:
            while read is not None:
                data = read(CHUNK)
                if not data:
                    break
                self.send({"t": "stdin", "id": rid, "data": data})
            self.send({"t": "stdin", "id": rid, "data": b""})
        except (SteveError, OSError):
            pass

    def append(self, event_type: str, payloads: list[dict[str, Any]]) -> Message:
        return self.call("append", type=event_type, payloads=payloads)

    def follow(
        self, from_seq: int, *, once: bool = False, **filters: str | None
    ) -> Iterator[Message]:
        """``event`` and ``lagged`` messages from ``from_seq`` on (until ``end`` when once)."""
        rid = self.next_id()
        self.send(
            {
                "t": "follow",
                "id": rid,
                "from_seq": from_seq,
                "once": once,
                **{k: v for k, v in filters.items() if v is not None},
            }
        )
        while True:
            reply = self.receive()
            if reply["t"] == "error":
                raise rebuild_error(reply)
            if reply["t"] == "end":
                return
            yield reply


def shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
