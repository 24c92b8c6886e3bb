"""The event log: producers, one bounded queue, one writer thread, batched commits.

    >>> log = EventLog.attach(repo, correlation_id=uuid.uuid4().hex)
    >>> log.emit("container.started", {"image": digest}, run_id=run.id)
    >>> log.flush()          # everything emitted so far is committed
    >>> log.close()

:meth:`EventLog.emit` validates and encodes the event in the caller's
thread, then hands it to a bounded queue.  When the queue is full the
caller blocks until the writer has drained it (backpressure): memory stays
bounded and nothing is dropped, except debug-level events when the log was
opened with ``drop_debug=True``; those are counted and the count is itself
recorded as an ``events.dropped`` event.  One writer thread takes up to
``batch_size`` events at a time and appends them in one transaction
(:meth:`steve.events.store.EventStore.append`).

An event is *committed* once :meth:`flush` (or :meth:`append`) returned
after it was emitted: it is then in ``events.db`` and survives a killed
process (and, with ``synchronous="FULL"``, a power cut).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from steve.errors import EventLogUnavailable, InvalidEvent, MalformedObject, SteveError
from steve.events.model import (
    Event,
    Level,
    Shape,
    check_event_type,
    check_text,
    encode_payload,
    event_shape,
)
from steve.events.signing import SignerSource, SigningKey
from steve.events.store import (
    Checkpoint,
    EventFilter,
    EventStore,
    Head,
    Rotation,
    Row,
    Segment,
    row_to_event,
)
from steve.events.verify import ChainReport, signed_checkpoints, verify_chain
from steve.objects import cbor
from steve.store.base import OutboxEvent

if TYPE_CHECKING:
    from steve.events.jsonlog import JsonLogger
    from steve.redact import Redactor
    from steve.repo import Repo

EVENTS_DB = "events.db"
QUEUE_SIZE = 8192
"""Events the queue holds before producers block."""
BATCH_SIZE = 4096
"""Most events appended in one transaction."""

# A queued event: (time in ms, canonical payload, shape, slot for append(): a
# one-element list the writer fills with the Event, or None)
_Item = tuple[int, bytes, Shape, list[Event] | None]


LINGER = 0.002
"""Seconds the writer waits for a batch to fill once producers go quiet (see _Queue)."""

SHAPES_MAX = 4096
"""Most event shapes (type, ids, actor, level) a log remembers as already checked."""


class _Queue:
    """A bounded FIFO that producers append to without a lock, and a take-many for
    whoever writes next.

    A producer appends to :attr:`items` (``deque.append`` is atomic) after
    checking there is room; only when the queue is full (or it waits for its
    own event, :meth:`EventLog.append`) does it take the lock (:meth:`put`).
    The writer thread sleeps on an empty queue with :attr:`idle` set, and the
    producer that finds it set wakes it; nobody notifies per event.  Tickets
    are positions in queue order: :meth:`ticket` (taken + still queued, read
    under the lock, so no take interleaves) is at least the position of
    every event queued before the call, and :attr:`committed` counts
    committed events in that order.

    Batches are written by whoever holds the log's write lock: a producer
    that finds ``batch`` events queued writes them itself (group commit, no
    hand-over to another thread), and the writer thread takes a batch when
    someone waits for an event still queued (:meth:`wait_committed`:
    ``flush``, ``append``), when producers have been quiet for
    :data:`LINGER`, when a full batch is left (its producer found the lock
    taken), or at close.  Under a flood every transaction is a full batch; a
    lone event is committed within a few milliseconds, or at once if its
    producer waits for it.

    A lock-free append can race with :meth:`close`: the producer then checks
    :attr:`closed` after appending and calls :meth:`recall`, which raises if
    the writer has already drained the queue for the last time
    (:attr:`finished`); otherwise the writer still writes the event.
    """

    def __init__(self, maxsize: int, batch: int) -> None:
        self.items: collections.deque[_Item] = collections.deque()
        self.max = maxsize
        self.batch = batch
        self._lock = threading.Lock()
        self.taken = 0  # events handed to a writer so far
        self.wanted = 0  # highest ticket someone waits to see committed
        self.idle = False  # the writer thread sleeps on an empty queue
        self.slots = 0  # queued events with a slot (append() waits for them)
        self.not_empty = threading.Condition(self._lock)
        self.not_full = threading.Condition(self._lock)
        self.done = threading.Condition(self._lock)
        self.closed = False
        self.finished = False  # closed, and nothing will take from the queue any more
        self.error: SteveError | None = None
        self.committed = 0
        self.dropped = 0
        self.dropped_unreported = 0

    def __len__(self) -> int:
        return len(self.items)

    def ticket(self) -> int:
        """How many events were queued so far (the ticket of the last one)."""
        with self._lock:
            return self.taken + len(self.items)

    def wake(self) -> None:
        """Wake the writer thread if it sleeps on an empty queue."""
        with self._lock:
            if self.idle:
                self.idle = False
                self.not_empty.notify()

    def put(self, item: _Item, *, block: bool) -> int | None:
        """Queue ``item`` under the lock (the queue is full, or ``item`` has a slot);
        returns its ticket, or None when full and not blocking."""
        with self._lock:
            while len(self.items) >= self.max and not self.closed:
                if not block:
                    self.dropped += 1
                    self.dropped_unreported += 1
                    return None
                self.not_full.wait()
            if self.closed:
                raise self.unavailable()
            self.items.append(item)
            if item[3] is not None:
                self.slots += 1
            if self.idle:
                self.idle = False
                self.not_empty.notify()
            return self.taken + len(self.items)

    def recall(self) -> None:
        """Called by a producer that found the queue closed after its lock-free append:
        raises if nothing will write what it appended (which is then discarded)."""
        with self._lock:
            if self.finished:
                self.items.clear()
                raise self.unavailable()

    def unavailable(self) -> SteveError:
        if self.error is not None:
            return EventLogUnavailable(f"the writer stopped: {self.error}")
        return EventLogUnavailable("the event log is closed")

    def wait_ready(self) -> None:
        """Block the writer thread until it has a batch to write, or the queue closed."""
        with self._lock:
            while not self.closed:
                self.idle = True  # before looking: a producer appending now wakes us
                queued = len(self.items)
                if queued >= self.batch or (queued and self.wanted > self.taken):
                    self.idle = False
                    return
                if not queued:
                    self.not_empty.wait()
                    continue
                self.idle = False
                seen = self.taken + queued
                self.not_empty.wait(LINGER)
                if self.taken + len(self.items) == seen:
                    return  # producers were quiet for LINGER
            self.idle = False

    def take(self) -> tuple[list[_Item], int]:
        """Up to ``batch`` items now and the dropped count to report (the caller holds
        the log's write lock, so batches are written in queue order)."""
        with self._lock:
            items = self.items
            n = min(self.batch, len(items))
            self.taken += n
            batch = [items.popleft() for _ in range(n)]
            if batch:
                self.not_full.notify(n)  # one blocked producer per freed slot, no stampede
            dropped, self.dropped_unreported = self.dropped_unreported, 0
            return batch, dropped

    def finish(self) -> bool:
        """The writer thread's last look at a closed queue: True (and nothing will take
        from it any more) if it is empty."""
        with self._lock:
            if self.items and self.error is None:
                return False
            self.finished = True
            return True

    def mark_committed(self, n: int, slots: int) -> None:
        with self._lock:
            self.committed += n
            self.slots -= slots
            self.done.notify_all()

    def fail(self, error: SteveError) -> None:
        with self._lock:
            self.error = error
            self.closed = True
            self.finished = True
            self.items.clear()
            self.not_full.notify_all()
            self.not_empty.notify_all()
            self.done.notify_all()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self.not_empty.notify_all()
            self.not_full.notify_all()

    def wait_committed(self, ticket: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if ticket > self.wanted:
                self.wanted = ticket
                if ticket > self.taken:
                    self.not_empty.notify()  # write it now, do not linger
            while self.committed < ticket:
                if self.error is not None:
                    raise self.unavailable()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise EventLogUnavailable(
                        f"events not committed within {timeout:g}s "
                        f"({self.committed} of {ticket} done)"
                    )
                self.done.wait(left)


class EventLog:
    """An append-only, hash-chained event log in ``events.db`` (or in memory).

    Thread-safe: any number of producer threads may :meth:`emit`.  Reads
    (:meth:`events`, :meth:`follow`, :meth:`verify`) may run at any time.
    The database is opened (and created if absent) on first use.
    """

    def __init__(
        self,
        path: Path | None,
        key: bytes | None,
        *,
        correlation_id: str | None = None,
        actor: str | None = None,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        synchronous: str = "FULL",
        rotation: Rotation | None = None,
        drop_debug: bool = False,
        busy_timeout: float = 30.0,
        logger: JsonLogger | None = None,
        signer: SigningKey | SignerSource | None = None,
        key_checked: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be positive")
        self.path = path
        self._key = key
        # the checked shapes of events emitted so far: see emit (bounded: SHAPES_MAX)
        self._shapes: dict[tuple[object, ...], Shape] = {}
        self._correlation_id = check_text("correlation id", correlation_id)
        self._actor = check_text("actor", actor)
        self.drop_debug = drop_debug
        self.logger = logger
        self._batch = batch_size
        self._queue_size = queue_size
        self._sync = synchronous
        self._rotation = rotation
        self._busy = busy_timeout
        self._signer = signer
        self._key_checked = key_checked  # see EventStore
        self._open_lock = threading.Lock()
        self._store: EventStore | None = None
        self._queue = _Queue(queue_size, batch_size)
        self._write_lock = threading.Lock()  # held while a batch is taken and written
        self._thread: threading.Thread | None = None
        self._closed = False
        # every payload is redacted before it is encoded (docs/secrets.md); settable
        self.redactor = redactor

    @property
    def correlation_id(self) -> str | None:
        """The correlation id of events emitted without one."""
        return self._correlation_id

    @correlation_id.setter
    def correlation_id(self, value: str | None) -> None:
        self._correlation_id = check_text("correlation id", value)
        self._shapes = {}

    @property
    def actor(self) -> str | None:
        """The actor of events emitted without one."""
        return self._actor

    @actor.setter
    def actor(self, value: str | None) -> None:
        self._actor = check_text("actor", value)
        self._shapes = {}

    # --- construction ------------------------------------------------------------------

    @classmethod
    def memory(cls, **kwargs: Any) -> EventLog:
        """A log held in memory (for :meth:`steve.repo.Repo.memory` and tests)."""
        return cls(None, None, **kwargs)

    @classmethod
    def for_repo(cls, repo: Repo, **kwargs: Any) -> EventLog:
        """The log of ``repo``: ``.steve/events.db`` keyed like ``steve.db``, or in memory."""
        if repo.steve_dir is None or repo.key is None:
            return cls.memory(**kwargs)
        # the repository's key passed the config's key check when it was opened
        return cls(repo.steve_dir / EVENTS_DB, repo.key, key_checked=True, **kwargs)

    @classmethod
    def attach(cls, repo: Repo, **kwargs: Any) -> EventLog:
        """:meth:`for_repo`, made the repository's event sink: the events its
        changes commit to the outbox of ``steve.db`` (ref updates, freezes, run
        transitions) are drained into this log, starting with any left over."""
        log = cls.for_repo(repo, **kwargs)
        repo.events.sink = log
        repo.drain()
        return log

    def deliver(self, source: str, events: Sequence[OutboxEvent]) -> int:
        """Append drained outbox events (a :class:`steve.repo.EventSink`); returns how
        many were new.

        Events emitted to this log before the call are written first, so the
        log keeps the order in which things happened.  The outbox seqs already
        delivered for ``source`` are skipped inside the same transaction (see
        :meth:`EventStore.append_outbox`).  Raises EventLogUnavailable or a
        storage error if the log cannot be written; the events then stay in
        the outbox.
        """
        batch = [
            (
                e.seq,
                (
                    e.time_ms,
                    Level.INFO.value,
                    check_event_type(e.type),
                    e.run_id,
                    e.correlation_id or self._correlation_id,
                    None,
                    e.actor or self._actor,
                    encode_payload(self._redacted(decode_outbox_payload(e))),
                ),
            )
            for e in events
        ]
        self._writer()
        q = self._queue
        with self._write_lock:
            while self._write_next():
                pass
            if q.error is not None:
                raise q.unavailable()
            rows = self.store().append_outbox(source, batch)
        if self.logger is not None and rows:
            self._log(rows)
        return len(rows)

    def store(self) -> EventStore:
        """The open store (opened, and created if absent, on first call)."""
        if self._store is None:
            with self._open_lock:
                if self._closed:
                    raise EventLogUnavailable("the event log is closed")
                if self._store is None:
                    self._store = EventStore(
                        self.path,
                        self._key,
                        busy_timeout=self._busy,
                        synchronous=self._sync,
                        rotation=self._rotation,
                        signer=self._signer,
                        key_checked=self._key_checked,
                    )
        return self._store

    def forbid_writes(self) -> None:
        """Open the store now and make it read-only: a later append or emit fails
        with ReadOnlyStorage.  For followers that must not change anything."""
        self.store().forbid_writes()

    @property
    def opened(self) -> bool:
        return self._store is not None

    # --- writing ---------------------------------------------------------------------

    def _writer(self) -> None:
        if self._thread is None:
            self.store()  # open (or create) events.db here, so opening errors reach the caller
            with self._open_lock:
                if self._thread is None:
                    if self._closed:
                        raise EventLogUnavailable("the event log is closed")
                    thread = threading.Thread(
                        target=self._run, name="steve-events-writer", daemon=True
                    )
                    thread.start()
                    atexit.register(self.close)
                    self._thread = thread

    def _run(self) -> None:
        q = self._queue
        while True:
            q.wait_ready()
            with self._write_lock:
                if not self._write_next() and q.closed and q.finish():
                    return

    def _write_next(self) -> bool:
        """Write the next batch (the caller holds the write lock); False if there was
        nothing to write or the write failed (the queue is then failed: every
        later emit and flush raises EventLogUnavailable)."""
        q = self._queue
        store = self._store
        assert store is not None
        if q.error is not None or q.finished:
            return False  # failed, or closed and drained (the store may be closed)
        batch, dropped = q.take()
        if not batch and not dropped:
            return False
        n = len(batch)
        if dropped:
            batch.append(
                (
                    time.time_ns() // 1_000_000,
                    encode_payload({"count": dropped, "total": q.dropped}),
                    self._shape("events.dropped", None, None, None, None, Level.WARNING.value),
                    None,
                )
            )
        try:
            written = store.append_shaped(batch)
        except SteveError as exc:
            q.fail(exc)
            return False
        slots = 0
        if q.slots:
            for item, stored in zip(batch, written, strict=False):
                if item[3] is not None:
                    item[3].append(row_to_event(stored))
                    slots += 1
        q.mark_committed(n, slots)
        if self.logger is not None:
            self._log(written)
        return True

    def _log(self, rows: list[Row]) -> None:
        logger = self.logger
        assert logger is not None
        for row in rows:
            if logger.enabled(Level(row[2])):
                e = row_to_event(row)
                fields = {"seq": e.seq, "run_id": e.run_id, "type": e.event_type}
                fields.update(e.payload)
                logger.log(
                    e.level,
                    e.event_type,
                    fields,
                    target="steve.events",
                    correlation_id=e.correlation_id,
                )

    def _redacted(self, payload: Mapping[str, object]) -> Mapping[str, object]:
        if self.redactor is None or not isinstance(payload, Mapping):
            return payload
        out = self.redactor.value(payload)
        assert isinstance(out, dict)
        return out

    def _shape(
        self,
        event_type: str,
        run_id: str | None,
        correlation_id: str | None,
        causation_id: str | None,
        actor: str | None,
        level: str,
    ) -> Shape:
        """The checked shape of an event with these fields (InvalidEvent if one is
        bad), remembered for the next emit with the same fields."""
        shape = event_shape(
            Level.parse(level).value,
            check_event_type(event_type),
            check_text("run id", run_id),
            check_text("correlation id", correlation_id) or self._correlation_id,
            check_text("causation id", causation_id),
            check_text("actor", actor) or self._actor,
        )
        if len(self._shapes) < SHAPES_MAX:
            key = (event_type, run_id, correlation_id, causation_id, actor, level)
            if all(type(v) is str or v is None for v in key):
                self._shapes[key] = shape
        return shape

    def emit(
        self,
        event_type: str,
        payload: Mapping[str, object],
        *,
        run_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: str | None = None,
        level: str = "info",
    ) -> None:
        """Queue one event; blocks while the queue is full (backpressure).

        ``correlation_id`` and ``actor`` default to the log's.  Raises
        InvalidEvent for a bad type, level or payload (nothing queued) and
        EventLogUnavailable once the writer has failed or the log is closed.

        The hot path of every producer: the fields are checked and encoded
        once per distinct combination (:meth:`_shape`, cached), the payload is
        redacted and encoded here, and the event is appended to the queue
        without a lock (see :class:`_Queue`).
        """
        if self._closed:
            raise EventLogUnavailable("the event log is closed")
        try:
            shape = self._shapes.get(
                (event_type, run_id, correlation_id, causation_id, actor, level)
            )
        except TypeError:  # an unhashable field: _shape says what is wrong with it
            shape = None
        if shape is None:
            shape = self._shape(event_type, run_id, correlation_id, causation_id, actor, level)
        if self.redactor is not None:
            payload = self._redacted(payload)
        item = (time_ns() // 1_000_000, encode_payload(payload), shape, None)
        if self._thread is None:
            self._writer()
        q = self._queue
        items = q.items
        if len(items) < q.max:
            items.append(item)
            if q.idle:
                q.wake()
            if q.closed:
                q.recall()
        else:
            q.put(item, block=not (self.drop_debug and shape[0] == "debug"))
        if len(items) >= q.batch and self._write_lock.acquire(blocking=False):
            # group commit: this producer writes the full batch itself, with no
            # hand-over to the writer thread (which two threads sharing the GIL
            # and this machine's CPUs make slow)
            try:
                if not self._write_next() and q.error is not None:
                    raise q.unavailable()
            finally:
                self._write_lock.release()

    def append(
        self,
        event_type: str,
        payload: Mapping[str, object],
        *,
        run_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: str | None = None,
        level: str = "info",
        timeout: float | None = None,
    ) -> Event:
        """:meth:`emit` and wait until the event is committed; returns it (with seq and hash)."""
        if self._closed:
            raise EventLogUnavailable("the event log is closed")
        shape = self._shape(event_type, run_id, correlation_id, causation_id, actor, level)
        if self.redactor is not None:
            payload = self._redacted(payload)
        slot: list[Event] = []
        item = (time.time_ns() // 1_000_000, encode_payload(payload), shape, slot)
        self._writer()
        ticket = self._queue.put(item, block=True)
        assert ticket is not None
        self._queue.wait_committed(ticket, timeout)
        return slot[0]

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every event emitted before this call is committed; returns how many
        events this log has committed in total."""
        q = self._queue
        ticket = q.ticket()
        if ticket:
            q.wait_committed(ticket, timeout)
        elif q.error is not None:
            raise EventLogUnavailable(f"the writer stopped: {q.error}")
        return q.committed

    @property
    def dropped(self) -> int:
        """Debug-level events dropped because the queue was full (``drop_debug=True``)."""
        return self._queue.dropped

    @property
    def committed(self) -> int:
        return self._queue.committed

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database (idempotent)."""
        if self._closed:
            return
        with self._open_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._queue.close()
        if thread is not None:
            thread.join()
            atexit.unregister(self.close)
        if self._store is not None:
            self._store.close()
        error = self._queue.error
        if error is not None:
            raise EventLogUnavailable(f"the writer stopped: {error}")

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        with contextlib.suppress(SteveError):  # the error already propagating matters more
            self.close()

    # --- seals and checkpoints ---------------------------------------------------------

    def seal(self, *, key: SigningKey | None = None) -> Segment | None:
        """Commit what is queued, then seal the open segment and sign a checkpoint
        (with ``key``, else the log's signer's key if it gives one)."""
        self.flush()
        return self.store().seal("manual", key=key)

    def checkpoint(self, *, key: SigningKey | None = None) -> Checkpoint:
        """Commit what is queued, then sign the chain head (no new segment) with
        ``key`` or the signer's; raises NoSigningIdentity when there is none."""
        self.flush()
        return self.store().checkpoint(key=key)

    # --- reading -----------------------------------------------------------------------

    def head(self) -> Head:
        return self.store().head()

    def events(
        self,
        *,
        run_id: str | None = None,
        correlation_id: str | None = None,
        event_type: str | None = None,
        from_seq: int = 1,
        min_level: Level | None = None,
    ) -> Iterator[Event]:
        """Matching events in seq order, streamed in pages.  ``event_type`` may end in
        ``.*`` to match a family (``container.*``)."""
        flt = EventFilter(run_id, correlation_id, event_type, from_seq, min_level)
        return self.store().iter_events(flt)

    def latest(
        self,
        *,
        limit: int,
        run_id: str | None = None,
        correlation_id: str | None = None,
        event_type: str | None = None,
        from_seq: int = 1,
        before: int | None = None,
    ) -> list[Event]:
        """The newest ``limit`` matching events with seq < ``before``, newest first (a
        tail without a scan)."""
        flt = EventFilter(run_id, correlation_id, event_type, from_seq)
        return self.store().latest(flt, limit=limit, before=before)

    def count_types(self, types: Sequence[str]) -> int:
        """How many events have one of ``types``."""
        return self.store().count_types(types)

    def follow(
        self,
        *,
        run_id: str | None = None,
        correlation_id: str | None = None,
        event_type: str | None = None,
        from_seq: int = 1,
        min_level: Level | None = None,
        poll: float = 0.2,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[Event]:
        """Like :meth:`events`, then keep polling for new events until ``stop()`` is true."""
        nxt = from_seq
        while True:
            for event in self.events(
                run_id=run_id,
                correlation_id=correlation_id,
                event_type=event_type,
                from_seq=nxt,
                min_level=min_level,
            ):
                nxt = event.seq + 1
                yield event
            if stop is not None and stop():
                return
            time.sleep(poll)

    def verify(
        self,
        *,
        public_key: bytes | None = None,
        require_sealed: bool | None = None,
        witnessed: Sequence[Checkpoint] = (),
    ) -> ChainReport:
        """Verify the whole chain, head, seals and checkpoint signatures, and with a
        pinned ``public_key`` what its signatures cover (see :mod:`steve.events.verify`)."""
        return verify_chain(
            self.store(),
            public_key=public_key,
            require_sealed=require_sealed,
            witnessed=witnessed,
        )

    def public_keys(self) -> dict[bytes, bytes]:
        return self.store().public_keys()

    def signed_checkpoints(self, public_key: bytes) -> list[tuple[Checkpoint, bytes]]:
        """Every checkpoint ``public_key`` signed, with the bytes it signed."""
        return signed_checkpoints(self.store(), public_key)


def decode_outbox_payload(event: OutboxEvent) -> dict[str, object]:
    try:
        value = cbor.decode(event.payload)
    except MalformedObject as exc:
        raise InvalidEvent("invalid outbox payload", exc.detail) from exc
    if not isinstance(value, dict):
        raise InvalidEvent("invalid outbox payload", f"outbox row {event.seq} is not a map")
    return value


def open_log(path: Path, key: bytes, **kwargs: Any) -> EventLog:
    """An :class:`EventLog` on the ``events.db`` at ``path``."""
    return EventLog(path, key, **kwargs)
