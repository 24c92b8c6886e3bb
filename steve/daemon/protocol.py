"""The wire format: length-prefixed canonical-CBOR frames.

A frame is a 4-byte big-endian unsigned length N followed by N bytes: the
canonical CBOR encoding (:mod:`steve.objects.cbor`) of a map whose ``"t"``
key names the message type.  N is at most :data:`MAX_FRAME`; a longer
announcement, a short read or bytes that are not one canonical map close
the connection (:class:`~steve.errors.BadFrame`,
:class:`~steve.errors.FrameTooLarge`).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from steve.errors import BadFrame, DaemonConnectionLost, FrameTooLarge, MalformedObject
from steve.objects import cbor

MAX_FRAME = 1 << 20
"""The largest frame body (1 MiB); stdin and output travel in chunks below it."""
CHUNK = 64 * 1024
"""Stdin and output chunk size."""
_HEADER = struct.Struct(">I")

Message = dict[str, Any]


def encode_frame(message: Message, *, limit: int = MAX_FRAME) -> bytes:
    body = cbor.encode(message)
    if len(body) > limit:
        raise FrameTooLarge(len(body), limit)
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> Message:
    try:
        value = cbor.decode(body)
    except MalformedObject as exc:
        raise BadFrame(exc.detail) from exc
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise BadFrame('a frame must be a map with a text "t" (message type)')
    return value


def _recv_exact(sock: socket.socket, n: int, *, at_start: bool) -> bytes | None:
    parts: list[bytes] = []
    got = 0
    while got < n:
        try:
            chunk = sock.recv(min(n - got, CHUNK))
        except TimeoutError:
            raise
        except OSError as exc:
            raise DaemonConnectionLost(str(exc)) from exc
        if not chunk:
            if at_start and got == 0:
                return None  # a clean end between frames
            raise BadFrame(f"truncated frame: {got} of {n} bytes")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_frame(sock: socket.socket, *, limit: int = MAX_FRAME) -> Message | None:
    """The next message, or None at a clean end of stream."""
    header = _recv_exact(sock, _HEADER.size, at_start=True)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise FrameTooLarge(size, limit)
    body = _recv_exact(sock, size, at_start=False)
    assert body is not None
    return decode_body(body)


def error_message(err: Any) -> Message:
    """An ``error`` frame for a :class:`~steve.errors.SteveError`."""
    return {
        "t": "error",
        "code": err.code,
        "message": err.message,
        "detail": err.detail,
        "action": err.action,
        "exit": err.exit_code,
    }
