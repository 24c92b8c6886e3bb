"""The steved server: a unix socket, one writer thread, event streams.

Threads: the accept loop (the caller's thread), one reader and one sender per
client, the **writer** (the only thread that runs forwarded commands and
appends events, one request at a time, in arrival order) and one thread per
event follower.  Every queue is bounded: the writer queue
(:attr:`Limits.queue`, a full queue answers ``DaemonBusy``), each client's
output buffer (:attr:`Limits.output`, a client that stops reading is cut off)
and each stdin hand-over (a few chunks; the socket applies back-pressure).
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from steve.daemon.paths import DaemonPaths, socket_address
from steve.daemon.protocol import (
    CHUNK,
    MAX_FRAME,
    Message,
    encode_frame,
    error_message,
    read_frame,
)
from steve.errors import (
    BadFrame,
    DaemonBusy,
    DaemonConnectionLost,
    DaemonLocked,
    DaemonShuttingDown,
    FrameTooLarge,
    InternalError,
    InvalidInput,
    PeerRefused,
    SlowClient,
    SteveError,
)
from steve.events.jsonlog import JsonLogger
from steve.events.model import Level

_UCRED = struct.Struct("3i")  # pid, uid, gid
PAGE = 256


@dataclass(frozen=True)
class Limits:
    frame: int = MAX_FRAME
    queue: int = 256
    """Requests waiting for the writer."""
    output: int = 4 << 20
    """Bytes buffered for one client before it is cut off."""
    max_lag: int = 100_000
    """Events a follower may fall behind the head before the gap is skipped (and reported)."""
    stdin_chunks: int = 4
    stall: float = 10.0
    """Seconds a command's output may wait for a client that reads nothing before the
    client is cut off (the writer thread waits that long at most)."""


def peer_uid(sock: socket.socket) -> int:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


class Job:
    """One forwarded command: what the client sent and the channel back to it."""

    def __init__(self, conn: Connection, request: Message, correlation_id: str) -> None:
        self.conn = conn
        self.request = request
        self.correlation_id = correlation_id
        self._stdin: queue.Queue[bytes | None] = queue.Queue(conn.server.limits.stdin_chunks)
        self._stdin_asked = False
        self._stdin_done = False
        self.done = threading.Event()

    @property
    def argv(self) -> list[str]:
        return [str(a) for a in self.request.get("argv", [])]

    @property
    def cwd(self) -> str:
        return str(self.request.get("cwd", "/"))

    @property
    def env(self) -> dict[str, str]:
        env = self.request.get("env", {})
        return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}

    def write(self, fd: int, data: bytes) -> None:
        """Send output to the client (a cut-off client's output is discarded)."""
        limits = self.conn.server.limits
        for start in range(0, len(data), CHUNK):
            if not self.conn.wait_room(limits.output // 2, limits.stall):
                return
            self.conn.send({"t": "out", "fd": fd, "data": data[start : start + CHUNK]})

    def read_stdin(self) -> bytes:
        """The next chunk of the client's stdin (b"" at its end); asks for it on first use."""
        if self._stdin_done:
            return b""
        if not self._stdin_asked:
            self._stdin_asked = True
            self.conn.send({"t": "want-stdin"})
        while True:
            try:
                chunk = self._stdin.get(timeout=0.5)
            except queue.Empty:
                if self.conn.closed.is_set():
                    self._stdin_done = True
                    return b""
                continue
            if chunk is None:
                self._stdin_done = True
                return b""
            return chunk

    def feed_stdin(self, data: bytes | None) -> None:
        while not self.conn.closed.is_set() and not self.done.is_set():
            try:
                self._stdin.put(data, timeout=0.5)
                return
            except queue.Full:
                continue


class Executor(Protocol):
    """What runs a forwarded command (the CLI provides it): called on the writer thread."""

    def run(self, job: Job, key: bytes) -> int: ...

    def drop(self) -> None:
        """Forget every handle opened with the key (the key was dropped)."""


class EventSource(Protocol):
    """Appends and reads the repository's events with the held key (the writer thread
    appends; each follower reads through its own handle)."""

    def append(self, key: bytes, event_type: str, payloads: list[dict[str, Any]]) -> int: ...

    def head(self, key: bytes) -> int: ...

    def reader(self, key: bytes) -> EventReader: ...

    def close(self) -> None:
        """Close the appender (the key was dropped, or the daemon stops)."""


class EventReader(Protocol):
    def head(self) -> int: ...

    def page(
        self, from_seq: int, limit: int, filters: dict[str, str | None]
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class Metrics(Protocol):
    def request(self, method: str, outcome: str) -> None: ...

    def events(self, n: int) -> None: ...

    def command(self, argv: list[str], code: int) -> None: ...


class _NoMetrics:
    def request(self, method: str, outcome: str) -> None:
        pass

    def events(self, n: int) -> None:
        pass

    def command(self, argv: list[str], code: int) -> None:
        pass


class Connection:
    """One client: a reader thread (requests) and a sender thread (bounded output)."""

    def __init__(self, server: Server, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        self.closed = threading.Event()
        self._out: collections.deque[bytes] = collections.deque()
        self._out_bytes = 0
        self._cv = threading.Condition()
        self.jobs: dict[int, Job] = {}

    # --- output -------------------------------------------------------------------------

    def buffered(self) -> int:
        return self._out_bytes

    def send(self, message: Message) -> bool:
        """Queue ``message``; cuts the client off when its buffer would pass the limit."""
        if self.closed.is_set():
            return False
        frame = encode_frame(message, limit=self.server.limits.frame)
        with self._cv:
            if self._out_bytes + len(frame) > self.server.limits.output:
                self.server.log(
                    Level.WARNING,
                    "client cut off",
                    client=self.number,
                    code=SlowClient.code,
                    buffered=self._out_bytes,
                )
                self.close()
                return False
            self._out.append(frame)
            self._out_bytes += len(frame)
            self._cv.notify()
        return True

    def _sender(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._out and not self.closed.is_set():
                        self._cv.wait()
                    if not self._out:
                        return
                    frame = self._out.popleft()
                try:
                    self.sock.sendall(frame)
                except OSError:
                    self.close()
                    return
                with self._cv:
                    self._out_bytes -= len(frame)
                    self._cv.notify_all()
        finally:
            self.closed.set()

    def wait_room(self, threshold: int, stall: float) -> bool:
        """Wait until at most ``threshold`` bytes are buffered (back-pressure for a
        command's output); a client that reads nothing for ``stall`` seconds is cut
        off.  False when the client is gone."""
        with self._cv:
            while self._out_bytes > threshold and not self.closed.is_set():
                before = self._out_bytes
                self._cv.wait(stall)
                if self._out_bytes >= before and not self.closed.is_set():
                    self.server.log(
                        Level.WARNING,
                        "client cut off",
                        client=self.number,
                        code=SlowClient.code,
                        buffered=self._out_bytes,
                    )
                    self._cut()
                    return False
            return not self.closed.is_set()

    def _cut(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._out.clear()
        self._out_bytes = 0
        self._cv.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait until everything queued was sent (or the client is gone)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._out and not self.closed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cv.wait(left)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with self._cv:
            self._out.clear()
            self._out_bytes = 0
            self._cv.notify_all()

    # --- input --------------------------------------------------------------------------

    def serve(self) -> None:
        sender = threading.Thread(
            target=self._sender, name=f"steved-send-{self.number}", daemon=True
        )
        sender.start()
        try:
            while not self.closed.is_set():
                try:
                    message = read_frame(self.sock, limit=self.server.limits.frame)
                except (BadFrame, FrameTooLarge) as exc:
                    self.server.log(Level.WARNING, "bad frame", client=self.number, code=exc.code)
                    self.server.metrics.request("frame", "malformed")
                    self.send(error_message(exc))
                    self.drain(1.0)
                    return
                except DaemonConnectionLost:
                    return
                if message is None:
                    return
                self.server.dispatch(self, message)
        finally:
            self.close()
            sender.join(timeout=5)
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server.forget(self)


@dataclass
class Stats:
    started: float = field(default_factory=time.time)
    last_commit: float | None = None
    requests: int = 0
    clients: int = 0


class Server:
    """Serves one repository on its socket until :meth:`stop`."""

    def __init__(
        self,
        paths: DaemonPaths,
        executor: Executor,
        events: EventSource,
        key: bytes | None,
        *,
        repository_id: str,
        limits: Limits | None = None,
        ttl: float | None = None,
        owner_uid: int | None = None,
        logger: JsonLogger | None = None,
        metrics: Metrics | None = None,
        key_check: Callable[[bytes], bool] = lambda key: True,
    ) -> None:
        self.paths = paths
        self.executor = executor
        self.event_source = events
        self.repository_id = repository_id
        self.limits = limits or Limits()
        self.ttl = ttl
        self.owner_uid = os.getuid() if owner_uid is None else owner_uid
        self.logger = logger
        self.metrics: Metrics = metrics or _NoMetrics()
        self.stats = Stats()
        self._key = key
        self._key_check = key_check
        self._key_deadline = None if (ttl is None or key is None) else time.monotonic() + ttl
        self._key_lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue(self.limits.queue)
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._connections: set[Connection] = set()
        self._conn_lock = threading.Lock()
        self._numbers = 0
        self._writer = threading.Thread(target=self._write_loop, name="steved-writer", daemon=True)
        self.event_head = 0
        self.in_flight = 0

    # --- logging ------------------------------------------------------------------------

    def log(self, level: Level, msg: str, correlation_id: str | None = None, **fields: Any) -> None:
        if self.logger is not None:
            self.logger.log(level, msg, fields, target="steved", correlation_id=correlation_id)

    # --- key ----------------------------------------------------------------------------

    def key(self) -> bytes | None:
        with self._key_lock:
            if self._key_deadline is not None and time.monotonic() >= self._key_deadline:
                self._drop_locked("ttl")
            return self._key

    def drop_key(self, why: str) -> bool:
        with self._key_lock:
            return self._drop_locked(why)

    def _drop_locked(self, why: str) -> bool:
        had = self._key is not None
        self._key = None
        self._key_deadline = None
        if had:
            self.log(Level.INFO, "key dropped", reason=why)
        return had

    def set_key(self, key: bytes) -> None:
        if not self._key_check(key):
            from steve.errors import WrongKey

            raise WrongKey("the key sent to steved")
        with self._key_lock:
            self._key = key
            self._key_deadline = None if self.ttl is None else time.monotonic() + self.ttl
        self.log(Level.INFO, "key set by a client")

    # --- lifecycle ----------------------------------------------------------------------

    def bind(self) -> None:
        path = self.paths.socket
        path.unlink(missing_ok=True)  # a stale socket: the caller holds the daemon lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, fd = socket_address(path)
        old = os.umask(0o177)
        try:
            sock.bind(address)
        finally:
            os.umask(old)
            if fd is not None:
                os.close(fd)
        path.chmod(0o600)
        sock.listen(128)
        sock.settimeout(0.25)
        self._listener = sock
        key = self.key()
        if key is not None:
            self.event_head = self.event_source.head(key)

    def serve_forever(self) -> None:
        """Accept clients until :meth:`stop`; then drain the writer queue and return."""
        assert self._listener is not None, "bind() first"
        self._writer.start()
        self.log(Level.INFO, "serving", socket=str(self.paths.socket), pid=os.getpid())
        try:
            while not self._stopping.is_set():
                self.key()  # expires the key on time even when idle
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stopping.is_set():
                        break
                    raise
                self._accept(sock)
        finally:
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.paths.socket.unlink()
            self._queue.put(None)  # after every accepted job: the writer finishes them first
            self._writer.join()
            with self._conn_lock:
                conns = list(self._connections)
            for conn in conns:
                conn.drain(2.0)
                conn.close()
            self.drop_key("exit")
            self.log(Level.INFO, "stopped")

    def stop(self) -> None:
        """Refuse new requests, finish the accepted ones, then return from serve_forever
        (safe from a signal handler)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _accept(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        try:
            uid = peer_uid(sock)
        except OSError:
            sock.close()
            return
        if uid != self.owner_uid:
            # refused before any request is read: one error frame, then close
            err = PeerRefused(uid, self.owner_uid)
            self.log(Level.WARNING, "foreign peer refused", uid=uid, code=err.code)
            self.metrics.request("connect", "refused")
            try:
                sock.sendall(encode_frame(error_message(err)))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            return
        with self._conn_lock:
            self._numbers += 1
            conn = Connection(self, sock, self._numbers)
            self._connections.add(conn)
            self.stats.clients = len(self._connections)
        threading.Thread(
            target=conn.serve, name=f"steved-client-{conn.number}", daemon=True
        ).start()

    def forget(self, conn: Connection) -> None:
        with self._conn_lock:
            self._connections.discard(conn)
            self.stats.clients = len(self._connections)

    def queue_depth(self) -> int:
        return self._queue.qsize()

    # --- requests -----------------------------------------------------------------------

    def dispatch(self, conn: Connection, message: Message) -> None:
        kind = message["t"]
        self.stats.requests += 1
        correlation_id = os.urandom(16).hex()
        try:
            self._dispatch(conn, kind, message, correlation_id)
        except SteveError as exc:
            self.metrics.request(kind, "error")
            self.log(Level.INFO, "request failed", correlation_id, method=kind, code=exc.code)
            conn.send({**error_message(exc), "id": message.get("id")})

    def _dispatch(self, conn: Connection, kind: str, message: Message, correlation_id: str) -> None:
        if kind == "ping":
            conn.send(
                {
                    "t": "pong",
                    "id": message.get("id"),
                    "pid": os.getpid(),
                    "repository": self.repository_id,
                    "locked": self.key() is None,
                }
            )
            self.metrics.request(kind, "ok")
        elif kind == "status":
            conn.send({"t": "status", "id": message.get("id"), **self.status()})
            self.metrics.request(kind, "ok")
        elif kind == "lock":
            dropped = self.drop_key("steve lock")
            conn.send({"t": "locked", "id": message.get("id"), "dropped": dropped})
            self.metrics.request(kind, "ok")
        elif kind == "unlock":
            key = message.get("key")
            if not isinstance(key, bytes):
                raise BadFrame("unlock needs a byte-string key")
            self.set_key(key)
            conn.send({"t": "unlocked", "id": message.get("id")})
            self.metrics.request(kind, "ok")
        elif kind in ("run", "append"):
            if self.stopping:
                raise DaemonShuttingDown()
            if self.key() is None:
                raise DaemonLocked()
            job = Job(conn, message, correlation_id)
            conn.jobs[int(message.get("id") or 0)] = job
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise DaemonBusy(self.limits.queue) from None
        elif kind == "stdin":
            target = conn.jobs.get(int(message.get("id") or 0))
            if target is not None:
                data = message.get("data", b"")
                target.feed_stdin(data if isinstance(data, bytes) and data else None)
        elif kind == "follow":
            key = self.key()
            if key is None:
                raise DaemonLocked()
            threading.Thread(
                target=self._follow, args=(conn, message, key), name="steved-follow", daemon=True
            ).start()
            self.metrics.request(kind, "ok")
        elif kind == "stop":
            conn.send({"t": "stopping", "id": message.get("id"), "pid": os.getpid()})
            self.log(Level.INFO, "stop requested by a client", correlation_id)
            self.stop()
        else:
            raise BadFrame(f"unknown message type {kind!r}")

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "repository": self.repository_id,
            "locked": self.key() is None,
            "queue": self.queue_depth(),
            "in_flight": self.in_flight,
            "clients": self.stats.clients,
            "requests": self.stats.requests,
            "event_head": self.event_head,
            "last_commit": None if self.stats.last_commit is None else int(self.stats.last_commit),
            "uptime": int(time.time() - self.stats.started),
        }

    # --- the writer ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                if self.key() is None:  # dropped: close what was opened with it, here
                    self.executor.drop()
                    self.event_source.close()
                continue
            if job is None:
                self.executor.drop()
                self.event_source.close()
                return
            self.in_flight = 1
            try:
                self._run(job)
            finally:
                self.in_flight = 0
                job.done.set()  # stdin it did not read is dropped, not waited for
                job.conn.jobs.pop(int(job.request.get("id") or 0), None)

    def _run(self, job: Job) -> None:
        kind = job.request["t"]
        rid = job.request.get("id")
        if job.conn.closed.is_set():  # the client left before its turn: nothing ran
            self.metrics.request(kind, "abandoned")
            return
        key = self.key()
        if key is None:
            job.conn.send({**error_message(DaemonLocked()), "id": rid})
            self.metrics.request(kind, "error")
            return
        started = time.monotonic()
        try:
            if kind == "append":
                event_type = job.request.get("type")
                payloads = job.request.get("payloads")
                if not isinstance(event_type, str) or not isinstance(payloads, list):
                    raise InvalidInput("append needs a text type and a list of payloads")
                head = self.event_source.append(key, event_type, payloads)
                self.event_head = head
                self.stats.last_commit = time.time()
                self.metrics.events(len(payloads))
                job.conn.send({"t": "appended", "id": rid, "head": head, "count": len(payloads)})
                code = 0
            else:
                code = self.executor.run(job, key)
                self.stats.last_commit = time.time()
                self.event_head = self.event_source.head(key)
                self.metrics.command(job.argv, code)
                job.conn.send({"t": "exit", "id": rid, "code": code})
        except SteveError as exc:
            self.metrics.request(kind, "error")
            job.conn.send({**error_message(exc), "id": rid})
            self.log(Level.INFO, "request failed", job.correlation_id, method=kind, code=exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - the writer thread must survive a bug
            err = InternalError("internal error in steved", f"{type(exc).__name__}: {exc}")
            self.metrics.request(kind, "error")
            job.conn.send({**error_message(err), "id": rid})
            self.log(
                Level.ERROR,
                "request crashed",
                job.correlation_id,
                method=kind,
                error=type(exc).__name__,
            )
            return
        self.metrics.request(kind, "ok" if code == 0 else "failed")
        self.log(
            Level.INFO,
            "request done",
            job.correlation_id,
            method=kind,
            command=job.argv[:1],
            exit=code,
            ms=int((time.monotonic() - started) * 1000),
        )

    # --- followers ----------------------------------------------------------------------

    def _follow(self, conn: Connection, message: Message, key: bytes) -> None:
        rid = message.get("id")
        nxt = message.get("from_seq", 1)
        if not isinstance(nxt, int) or nxt < 1:
            conn.send({**error_message(InvalidInput("from_seq must be >= 1")), "id": rid})
            return
        filters = {
            name: (str(message[name]) if message.get(name) is not None else None)
            for name in ("run_id", "correlation_id", "event_type")
        }
        once = bool(message.get("once"))
        reader = self.event_source.reader(key)
        low_water = self.limits.output // 4
        try:
            while not conn.closed.is_set():
                if conn.buffered() > low_water:  # back-pressure: wait for the client
                    time.sleep(0.01)
                    head = reader.head()
                    if head - nxt + 1 > self.limits.max_lag:
                        first, last = nxt, head - self.limits.max_lag // 2
                        conn.send({"t": "lagged", "id": rid, "first": first, "last": last})
                        self.log(Level.WARNING, "follower lagged", first=first, last=last)
                        nxt = last + 1
                    continue
                head = reader.head()  # before the page: the page then covers up to it
                events = reader.page(nxt, PAGE, filters)
                for event in events:
                    if conn.buffered() > low_water:
                        break  # the rest after the client caught up (or a lag notice)
                    conn.send({"t": "event", "id": rid, "event": event})
                    nxt = int(event["seq"]) + 1
                else:
                    if len(events) < PAGE:  # up to head, everything matched was sent
                        nxt = max(nxt, head + 1)
                    if not events and (once or self.stopping):
                        conn.send({"t": "end", "id": rid, "next": nxt})
                        return
                    if not events:
                        time.sleep(0.05)
        except SteveError as exc:
            conn.send({**error_message(exc), "id": rid})
        finally:
            reader.close()


def wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False
