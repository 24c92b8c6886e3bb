"""Spooling the output of long-running steps into the event log in bounded chunks.

    >>> with LogSpooler(log, run_id=run.id, step="build", stream="stdout") as sp:
    ...     for data in container.logs(stream=True):
    ...         sp.write(data)

Bytes are cut into ``log.chunk`` events of at most ``chunk_size`` bytes
(payload ``{"step", "stream", "index", "offset", "data"}``); at most one
chunk is buffered, and :meth:`EventLog.emit` blocks when the writer is
behind, so a chatty container slows down instead of filling memory.  After
``max_bytes`` the rest is counted but not stored.  A partial chunk is also
emitted when a write arrives ``flush_interval`` seconds (default 0.25) or
more after the last chunk, so a follower (``steve inspect logs -f``, ``steve
tui``) sees a slow step's lines as they come instead of at its end; a chatty
step still fills whole chunks.  :meth:`LogSpooler.close`
emits a ``log.end`` event with the totals and the BLAKE3 of every byte
written (stored or not), so a reader can check a reassembled stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import BinaryIO

import blake3

from steve.errors import InvalidEvent
from steve.events.log import EventLog
from steve.events.model import check_text

CHUNK_SIZE = 64 << 10
"""Default largest chunk (64 KiB)."""
MAX_BYTES = 256 << 20
"""Default cap on stored bytes per stream (256 MiB); the rest is counted only."""
FLUSH_INTERVAL = 0.25
"""Default seconds after which a write emits the partial chunk (None: only full chunks)."""


class LogSpooler:
    """A writable byte sink that turns a step's output stream into chunk events."""

    def __init__(
        self,
        log: EventLog,
        *,
        step: str,
        stream: str = "stdout",
        run_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_bytes: int = MAX_BYTES,
        flush_interval: float | None = FLUSH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= chunk_size <= 512 << 10:
            raise InvalidEvent("invalid chunk size", f"{chunk_size} (1..524288 bytes)")
        if max_bytes < 0:
            raise InvalidEvent("invalid byte cap", str(max_bytes))
        self._log = log
        self.step = check_text("step", step) or step
        self.stream = check_text("stream", stream) or stream
        self._run = run_id
        self._corr = correlation_id
        self._cause = causation_id
        self._chunk = chunk_size
        self._max = max_bytes
        self._buf = bytearray()
        self._hash = blake3.blake3()
        self.index = 0  # chunks emitted
        self.stored = 0  # bytes stored in chunks
        self.total = 0  # bytes written, stored or not
        self.closed = False
        self._interval = flush_interval
        self._clock = clock
        self._last = clock()  # when the last chunk was emitted (or the spooler made)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Accept ``data``; emits full chunks (blocking if the log is behind)."""
        if self.closed:
            raise ValueError("write to a closed LogSpooler")
        view = memoryview(data).cast("B")
        n = len(view)
        self.total += n
        self._hash.update(view)
        room = self._max - self.stored - len(self._buf)
        if room <= 0:
            return n
        view = view[:room]
        while view:
            take = min(len(view), self._chunk - len(self._buf))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) >= self._chunk:
                self._emit_chunk()
        slow = self._interval is not None and self._clock() - self._last >= self._interval
        if self._buf and slow:
            self._emit_chunk()  # a slow step: its lines go out as they come
        return n

    def _emit_chunk(self) -> None:
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        self._log.emit(
            "log.chunk",
            {
                "step": self.step,
                "stream": self.stream,
                "index": self.index,
                "offset": self.stored,
                "data": data,
            },
            run_id=self._run,
            correlation_id=self._corr,
            causation_id=self._cause,
        )
        self.index += 1
        self.stored += len(data)
        self._last = self._clock()

    def flush(self) -> None:
        """Emit the buffered partial chunk now."""
        self._emit_chunk()

    def close(self, *, exit_code: int | None = None) -> None:
        """Emit the last chunk and a ``log.end`` summary (idempotent)."""
        if self.closed:
            return
        self._emit_chunk()
        self.closed = True
        payload: dict[str, object] = {
            "step": self.step,
            "stream": self.stream,
            "chunks": self.index,
            "stored_bytes": self.stored,
            "total_bytes": self.total,
            "truncated": self.total > self.stored,
            "blake3": self._hash.hexdigest(),
        }
        if exit_code is not None:
            payload["exit_code"] = exit_code
        self._log.emit(
            "log.end",
            payload,
            run_id=self._run,
            correlation_id=self._corr,
            causation_id=self._cause,
        )

    def __enter__(self) -> LogSpooler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def spool_log(
    log: EventLog,
    source: BinaryIO | Iterable[bytes],
    *,
    step: str,
    stream: str = "stdout",
    run_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    max_bytes: int = MAX_BYTES,
) -> LogSpooler:
    """Spool all of ``source`` (a binary file or an iterable of byte strings) and close.

    Returns the closed spooler (its ``index``, ``stored`` and ``total`` say what was kept).
    """
    sp = LogSpooler(
        log,
        step=step,
        stream=stream,
        run_id=run_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        chunk_size=chunk_size,
        max_bytes=max_bytes,
    )
    with sp:
        read = getattr(source, "read", None)
        if read is not None:
            while data := read(chunk_size):
                sp.write(data)
        else:
            for data in source:
                sp.write(data)
    return sp


def reassemble(log: EventLog, *, step: str, stream: str, run_id: str | None = None) -> bytes:
    """The stored bytes of one spooled stream, in order (for tests and `steve events`)."""
    parts: list[bytes] = []
    for event in log.events(run_id=run_id, event_type="log.chunk"):
        p = event.payload
        if p.get("step") == step and p.get("stream") == stream:
            parts.append(p["data"])
    return b"".join(parts)
