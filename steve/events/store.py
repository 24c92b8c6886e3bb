"""``events.db``: the append-only, hash-chained event table in SQLCipher.

Keyed with the repository's raw key (the same key as ``steve.db``), WAL
mode.  Triggers refuse every UPDATE and DELETE on ``events``, ``segments``
and ``checkpoints``; only ``head`` (the chain tip and the open segment's
counters, a cache that verification cross-checks) changes in place.

Signing keys are *not* kept here (see :mod:`steve.events.signing`): the
store is given a signer, asks it for the key only when a checkpoint is
due, and records only its public key in ``signing_keys`` (logs created
before this had their private key in that table; it is never read again).

Appends run in ``BEGIN IMMEDIATE`` transactions that read the chain head
inside the transaction, so several processes may append to one log: each
batch continues the chain where the last committed batch ended.

Opening, keying, file modes, read-only media and sqlite error translation
are :mod:`steve.store.sqlcipher`'s, shared with ``steve.db``.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

from blake3 import blake3

from steve.errors import (
    CorruptDatabase,
    NoSigningIdentity,
    RepositoryBusy,
    UnsupportedFormat,
)
from steve.events.model import (
    GENESIS,
    Event,
    Level,
    Shape,
    byte_string_head,
    encode_int,
    event_shape,
)
from steve.events.signing import (
    SignerSource,
    SigningKey,
    resolve_signer,
)
from steve.objects import cbor
from steve.store.sqlcipher import connect

SCHEMA_VERSION = 2
"""1: the first format; 2 adds ``events_by_type`` (what ``steve inspect`` and the
``--type`` filters read: the newest events of a type without a scan).  A
version-1 log is migrated in place when opened writable (one CREATE INDEX); a
read-only one is read as it is, without the index."""

_V1_TO_V2 = "CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, seq)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY) STRICT;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    level TEXT NOT NULL,
    event_type TEXT NOT NULL,
    run_id TEXT,
    correlation_id TEXT,
    causation_id TEXT,
    actor TEXT,
    payload BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id, seq)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, seq);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    segment_first INTEGER NOT NULL,
    segment_bytes INTEGER NOT NULL,
    segment_opened INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS segments (
    segment INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    opened INTEGER NOT NULL,
    sealed INTEGER NOT NULL,
    head_hash BLOB NOT NULL,
    reason TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    head_hash BLOB NOT NULL,
    time INTEGER NOT NULL,
    key_id BLOB NOT NULL,
    signature BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS signing_keys (
    key_id BLOB PRIMARY KEY,
    private_key BLOB NOT NULL, -- empty: only logs made before issue 12 held a key here
    public_key BLOB NOT NULL,
    created INTEGER NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS segments_no_update BEFORE UPDATE ON segments
    BEGIN SELECT RAISE(ABORT, 'segments are append-only'); END;
CREATE TRIGGER IF NOT EXISTS segments_no_delete BEFORE DELETE ON segments
    BEGIN SELECT RAISE(ABORT, 'segments are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS signing_keys_no_update BEFORE UPDATE ON signing_keys
    BEGIN SELECT RAISE(ABORT, 'signing keys are append-only'); END;
CREATE TRIGGER IF NOT EXISTS signing_keys_no_delete BEFORE DELETE ON signing_keys
    BEGIN SELECT RAISE(ABORT, 'signing keys are append-only'); END;
"""

_COLUMNS = (
    "seq, time, level, event_type, run_id, correlation_id, causation_id, actor, "
    "payload, prev_hash, hash"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"

_OUTBOX_KEY = "outbox:"
"""meta key prefix: the highest steve.db outbox seq delivered, per repository id."""

PAGE = 512
"""Rows fetched per query when streaming."""

INSERT_SIZES = (2048, 256, 32, 4, 1)
"""Rows per multi-row INSERT statement, largest first (2048 rows = 22,528 parameters,
under SQLite's default limit of 32,766).  A batch is written with as few statements
as these sizes allow: one sqlite3_step (one release and re-acquisition of the GIL)
per statement instead of per row, so producer threads do not starve the writer."""
_INSERT_SQL = {
    n: f"INSERT INTO events ({_COLUMNS}) VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?,?,?)"] * n)
    for n in INSERT_SIZES
}


def _insert_statements(rows: Sequence[Row]) -> list[tuple[str, list[Any]]]:
    """The statements (SQL, flat parameters) that insert ``rows`` in order."""
    out: list[tuple[str, list[Any]]] = []
    i, left = 0, len(rows)
    for size in INSERT_SIZES:
        while left >= size:
            out.append((_INSERT_SQL[size], list(chain.from_iterable(rows[i : i + size]))))
            i += size
            left -= size
    return out


@dataclass(frozen=True, slots=True)
class Rotation:
    """When the open segment is sealed: at the first event that makes it hold
    ``max_events`` events, or ``max_bytes`` of payload, or whose time is
    ``max_age_s`` or more after the time of the segment's first event.

    The rule depends only on the events themselves (their count, payload sizes
    and times, all inside the hash chain), so a verifier knows where a seal
    was due (:func:`steve.events.verify.verify_chain` with ``require_sealed``).
    """

    max_events: int = 100_000
    max_bytes: int = 64 << 20
    max_age_s: int = 24 * 3600

    def reason(self, events: int, size: int, age_ms: int) -> str | None:
        """Why a segment of ``events`` events, ``size`` payload bytes, spanning
        ``age_ms`` must be sealed now, or None."""
        if events >= self.max_events:
            return f"events>={self.max_events}"
        if size >= self.max_bytes:
            return f"bytes>={self.max_bytes}"
        if age_ms >= self.max_age_s * 1000:
            return f"age>={self.max_age_s}s"
        return None


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: bytes
    segment_first: int
    segment_bytes: int
    segment_opened: int


@dataclass(frozen=True, slots=True)
class Segment:
    segment: int
    first_seq: int
    last_seq: int
    size: int
    opened: int
    sealed: int
    head_hash: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    checkpoint: int
    seq: int
    head_hash: bytes
    time: int
    key_id: bytes
    signature: bytes

    def message(self, log_id: str, segments: int | None) -> bytes:
        return checkpoint_message(log_id, self.seq, self.head_hash, self.time, segments)


def checkpoint_message(
    log_id: str, seq: int, head_hash: bytes, time_ms: int, segments: int | None = None
) -> bytes:
    """The bytes a checkpoint signs: canonical CBOR of the log id, seq, head, time and
    (version 2) the number of sealed segments ending at or before ``seq``, so that a
    deleted seal breaks the signature.  Version 1 (no ``segments``) is what logs made
    before issue 12 signed."""
    if segments is None:
        return cbor.encode({"log": log_id, "seq": seq, "head": head_hash, "time": time_ms, "v": 1})
    return cbor.encode(
        {
            "log": log_id,
            "seq": seq,
            "head": head_hash,
            "time": time_ms,
            "segments": segments,
            "v": 2,
        }
    )


def segments_through(segments: Sequence[Segment], seq: int) -> int:
    """How many of ``segments`` end at or before ``seq`` (what a checkpoint at ``seq`` signs)."""
    return sum(1 for s in segments if s.last_seq <= seq)


@dataclass(frozen=True, slots=True)
class EventFilter:
    run_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    from_seq: int = 1
    min_level: Level | None = None


def _where(flt: EventFilter) -> tuple[list[str], list[Any]]:
    """The WHERE terms of ``flt`` (the first is ``seq >= ?``, bound by the caller) and
    their parameters.  A ``TYPE.*`` family is a range on ``event_type``, so the index
    by type serves it."""
    where = ["seq >= ?"]
    params: list[Any] = []
    if flt.run_id is not None:
        where.append("run_id = ?")
        params.append(flt.run_id)
    if flt.correlation_id is not None:
        where.append("correlation_id = ?")
        params.append(flt.correlation_id)
    if flt.event_type is not None:
        if flt.event_type.endswith(".*"):
            prefix = flt.event_type[:-1]  # "container."
            where.append("event_type >= ? AND event_type < ?")
            params.extend([prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)])
        else:
            where.append("event_type = ?")
            params.append(flt.event_type)
    if flt.min_level is not None:
        levels = [lv.value for lv in Level if lv.rank >= flt.min_level.rank]
        where.append(f"level IN ({','.join('?' * len(levels))})")
        params.extend(levels)
    return where, params


def _reason(rot: Rotation, sealed: Head) -> str:
    """The rotation limit that sealed ``sealed`` (its last event made the limit)."""
    events = sealed.seq - sealed.segment_first + 1
    return rot.reason(events, sealed.segment_bytes, 1 << 62) or "manual"


def row_to_event(row: Sequence[Any]) -> Event:
    return Event(
        int(row[0]),
        int(row[1]),
        Level(row[2]),
        str(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        bytes(row[8]),
        bytes(row[9]),
        bytes(row[10]),
    )


# One stored row, in column order (see _COLUMNS).
Row = tuple[int, int, str, str, str | None, str | None, str | None, str | None, bytes, bytes, bytes]

# One pending event handed to the store: everything but seq, prev_hash and hash.
# (time_ms, level, event_type, run_id, correlation_id, causation_id, actor, payload)
Pending = tuple[int, str, str, str | None, str | None, str | None, str | None, bytes]

# One pending event as the log's writer hands it over: (time_ms, payload, its
# event_shape, anything: the caller's, ignored)
Shaped = tuple[int, bytes, Shape, object]

_PACK_32 = struct.Struct(">BI").pack
_PACK_64 = struct.Struct(">BQ").pack
_BYTES_HEADS = tuple(bytes((0x40 | n,)) for n in range(24))
_U32_MAX = 0xFFFFFFFF
_U64_MAX = (1 << 64) - 1


def shaped(batch: Sequence[Pending]) -> list[Shaped]:
    """``batch`` as :data:`Shaped` events."""
    return [(p[0], p[7], event_shape(p[1], p[2], p[3], p[4], p[5], p[6]), None) for p in batch]


class EventStore:
    """One keyed connection to an ``events.db`` (or ``:memory:``), shared under a lock."""

    def __init__(
        self,
        path: Path | None,
        key: bytes | None,
        *,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
        rotation: Rotation | None = None,
        signer: SigningKey | SignerSource | None = None,
        key_checked: bool = False,
    ) -> None:
        """``key_checked``: ``key`` was verified against the repository config's key
        check, so an events.db whose first page does not decrypt is damaged (a
        CorruptDatabase), not opened with a wrong key (WrongKey)."""
        self.path = path
        self.rotation = rotation or Rotation()
        self.signer = signer
        self.lock = threading.RLock()
        if path is None:
            self._db = connect(None, key or bytes(32), busy_timeout=busy_timeout)
        else:
            if key is None:
                raise ValueError("an on-disk event log needs the repository key")
            self._db = connect(path, key, busy_timeout=busy_timeout, key_checked=key_checked)
        self._conn = self._db.conn
        self.read_only = self._db.read_only
        deadline = time.monotonic() + busy_timeout
        try:
            while True:
                try:
                    self._setup(synchronous, busy_timeout)
                    break
                except RepositoryBusy:
                    # SQLite does not wait (no busy handler) while another connection
                    # creates the file or switches it to WAL; retry until the timeout
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.02)
        except BaseException:
            self._db.close()
            raise
        self.log_id = self.get_meta("log_id") or ""
        self._has_type_index: bool | None = None

    # --- setup ---------------------------------------------------------------------

    def _setup(self, synchronous: str, busy_timeout: float) -> None:
        conn = self._conn
        with self._db.errors():
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._db.check_key()
        self._db.tune(synchronous=synchronous, cache_kib=8192)
        with self._db.errors():
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
        if row is None:
            self._create()
        with self._db.errors():
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None:
            raise CorruptDatabase(str(self.path), "events.db has no schema version")
        if type(version[0]) is int and version[0] > SCHEMA_VERSION:
            raise UnsupportedFormat(version[0], SCHEMA_VERSION)
        if version[0] == 1 and type(version[0]) is int:
            if not self.read_only:
                self._migrate_v1()
            return
        if version[0] != SCHEMA_VERSION:
            raise CorruptDatabase(str(self.path), f"unexpected schema version {version[0]!r}")

    def _migrate_v1(self) -> None:
        """Version 1 -> 2: add the index by type (idempotent; a concurrent opener that
        migrated first leaves nothing to do)."""
        with self._db.transaction():
            self._conn.execute(_V1_TO_V2)
            self._conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version' AND value = 1",
                (SCHEMA_VERSION,),
            )

    def _create(self) -> None:
        """Create the tables, the triggers and the head row (idempotent)."""
        with self._db.transaction():
            for stmt in SCHEMA.split(";\n"):
                if stmt.strip():
                    self._conn.execute(stmt)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", (uuid.uuid4().hex,)
            )
            now = int(time.time() * 1000)
            self._conn.execute(
                "INSERT OR IGNORE INTO head VALUES (1, 0, ?, 1, 0, ?)", (GENESIS, now)
            )

    def forbid_writes(self) -> None:
        """Refuse every later write on this connection (ReadOnlyStorage)."""
        with self.lock:
            self._db.forbid_writes()

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def get_meta(self, key: str) -> str | None:
        with self.lock, self._db.errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- appending -------------------------------------------------------------------

    def append(self, batch: Sequence[Pending], *, now_ms: int | None = None) -> list[Row]:
        """Append ``batch`` in one transaction, continuing the chain; returns the rows
        written (:func:`row_to_event` makes an :class:`Event` of one).

        The open segment is sealed, in the same transaction, at each event
        where a :class:`Rotation` limit is reached, and a checkpoint is signed
        there when the signer gives a key.
        """
        return self.append_shaped(shaped(batch), now_ms=now_ms)

    def append_shaped(self, batch: Sequence[Shaped], *, now_ms: int | None = None) -> list[Row]:
        """:meth:`append` of events whose shapes the caller has (the log's writer)."""
        with self.lock, self._db.transaction(), self._db.errors():
            return self._append(batch, now_ms)

    def delivered(self, source: str) -> int:
        """The highest outbox seq of ``source`` (a repository id) this log holds."""
        value = self.get_meta(_OUTBOX_KEY + source)
        return 0 if value is None else int(value)

    def append_outbox(self, source: str, batch: Sequence[tuple[int, Pending]]) -> list[Row]:
        """Append outbox events ``(outbox seq, pending)`` of ``source`` that this log does
        not hold yet, and remember the highest seq, in one transaction.

        Repeating a delivery (a drain killed after this commit, before the
        outbox rows were deleted) appends nothing twice.
        """
        if not batch:
            return []
        key = _OUTBOX_KEY + source
        with self.lock, self._db.transaction(), self._db.errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            mark = 0 if row is None else int(row[0])
            fresh = [p for seq, p in batch if seq > mark]
            if batch[-1][0] > mark:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, batch[-1][0]),
                )
            if not fresh:
                return []
            return self._append(shaped(fresh), None)

    def _append(self, batch: Sequence[Shaped], now_ms: int | None) -> list[Row]:
        """The body of :meth:`append`: the caller holds the lock and the transaction.

        Each event's canonical bytes (:func:`steve.events.model.canonical_bytes`)
        are its shape's parts around the seq, time and payload; the usual
        seq (65,536 .. 2**32-1) and time (after 1970-02-19, in ms) take the
        fixed 5- and 9-byte forms, anything else :func:`encode_int`.  Hashed
        with the previous hash in front, as :func:`chain_hash` does, by one
        hasher reset after each event (a new hasher per event costs more than
        the hashing).
        """
        rot = self.rotation
        max_events, max_bytes, max_age = rot.max_events, rot.max_bytes, rot.max_age_s * 1000
        conn = self._conn
        head = self._read_head()
        seq, prev = head.seq, head.hash
        first, size, opened = head.segment_first, head.segment_bytes, head.segment_opened
        rows: list[Row] = []
        add = rows.append
        seals: list[Head] = []
        hasher = blake3()
        update, digest_of, reset = hasher.update, hasher.digest, hasher.reset
        last_t, time_bytes = None, b""
        for t, payload, shape, _ in batch:
            lv, etype, run, corr, cause, actor, before_seq, before_time, after_time = shape
            seq += 1
            n = len(payload)
            if t != last_t:  # events of one batch mostly share their millisecond
                last_t = t
                time_bytes = _PACK_64(0x1B, t) if _U32_MAX < t <= _U64_MAX else encode_int(t)
            update(
                b"".join(
                    (
                        prev,
                        before_seq,
                        _PACK_32(0x1A, seq) if 0xFFFF < seq <= _U32_MAX else encode_int(seq),
                        before_time,
                        time_bytes,
                        after_time,
                        _BYTES_HEADS[n] if n < 24 else byte_string_head(n),
                        payload,
                    )
                )
            )
            digest: bytes = digest_of()
            reset()
            add((seq, t, lv, etype, run, corr, cause, actor, payload, prev, digest))
            prev = digest
            if seq == first:
                opened = t  # a segment's age counts from its first event's time
            size += n
            if seq - first + 1 >= max_events or size >= max_bytes or t - opened >= max_age:
                seals.append(Head(seq, digest, first, size, opened))
                first, size = seq + 1, 0
        for sql, params in _insert_statements(rows):
            conn.execute(sql, params)
        conn.execute(
            "UPDATE head SET seq = ?, hash = ?, segment_first = ?, segment_bytes = ?, "
            "segment_opened = ? WHERE id = 1",
            (seq, prev, first, size, opened),
        )
        if seals:
            stamp = now_ms if now_ms is not None else int(time.time() * 1000)
            key = resolve_signer(self.signer)
            for sealed in seals:
                self._insert_segment(sealed, _reason(rot, sealed), stamp, key)
        return rows

    def _read_head(self) -> Head:
        row = self._conn.execute(
            "SELECT seq, hash, segment_first, segment_bytes, segment_opened FROM head"
        ).fetchone()
        if row is None:
            raise CorruptDatabase(str(self.path), "events.db has no head row")
        return Head(int(row[0]), bytes(row[1]), int(row[2]), int(row[3]), int(row[4]))

    def _insert_segment(
        self, head: Head, reason: str, now_ms: int, key: SigningKey | None
    ) -> Segment:
        """Record the segment ``head.segment_first..head.seq`` as sealed and sign a
        checkpoint of it with ``key`` (if any), inside the caller's transaction."""
        conn = self._conn
        number = int(
            conn.execute("SELECT coalesce(max(segment), 0) + 1 FROM segments").fetchone()[0]
        )
        seg = Segment(
            number,
            head.segment_first,
            head.seq,
            head.segment_bytes,
            head.segment_opened,
            now_ms,
            head.hash,
            reason,
        )
        conn.execute(
            "INSERT INTO segments VALUES (?,?,?,?,?,?,?,?)",
            (
                seg.segment,
                seg.first_seq,
                seg.last_seq,
                seg.size,
                seg.opened,
                seg.sealed,
                seg.head_hash,
                seg.reason,
            ),
        )
        if key is not None:
            self._sign(key, head.seq, head.hash, now_ms)
        return seg

    def _sign(self, key: SigningKey, seq: int, head_hash: bytes, now_ms: int) -> Checkpoint:
        conn = self._conn
        conn.execute(
            "INSERT OR IGNORE INTO signing_keys VALUES (?, x'', ?, ?)",
            (key.key_id, key.public_key, now_ms),
        )
        (sealed,) = conn.execute(
            "SELECT count(*) FROM segments WHERE last_seq <= ?", (seq,)
        ).fetchone()
        signature = key.sign(checkpoint_message(self.log_id, seq, head_hash, now_ms, int(sealed)))
        number = int(
            conn.execute("SELECT coalesce(max(checkpoint), 0) + 1 FROM checkpoints").fetchone()[0]
        )
        cp = Checkpoint(number, seq, head_hash, now_ms, key.key_id, signature)
        conn.execute(
            "INSERT INTO checkpoints VALUES (?,?,?,?,?,?)",
            (cp.checkpoint, cp.seq, cp.head_hash, cp.time, cp.key_id, cp.signature),
        )
        return cp

    def seal(
        self, reason: str = "manual", now_ms: int | None = None, *, key: SigningKey | None = None
    ) -> Segment | None:
        """Seal the open segment now, signing a checkpoint with ``key`` (else the
        signer's, if it gives one); None when the segment is empty (nothing sealed)."""
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.lock, self._db.transaction(), self._db.errors():
            head = self._read_head()
            if head.seq < head.segment_first:
                return None
            seg = self._insert_segment(head, reason, stamp, key or resolve_signer(self.signer))
            self._conn.execute(
                "UPDATE head SET segment_first = ?, segment_bytes = 0 WHERE id = 1",
                (head.seq + 1,),
            )
            return seg

    def checkpoint(self, now_ms: int | None = None, *, key: SigningKey | None = None) -> Checkpoint:
        """Sign the current chain head with ``key`` (else the signer's) without
        sealing a segment.  Raises NoSigningIdentity when there is no key.
        """
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        key = key or resolve_signer(self.signer)
        if key is None:
            raise NoSigningIdentity("the event log was opened without a signing key")
        with self.lock, self._db.transaction(), self._db.errors():
            head = self._read_head()
            return self._sign(key, head.seq, head.hash, stamp)

    # --- reading -----------------------------------------------------------------------

    def head(self) -> Head:
        with self.lock, self._db.errors():
            return self._read_head()

    def count(self) -> int:
        with self.lock, self._db.errors():
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def last_seq(self) -> int:
        with self.lock, self._db.errors():
            row = self._conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def iter_events(self, flt: EventFilter | None = None, *, page: int = PAGE) -> Iterator[Event]:
        """Events matching ``flt`` in seq order, fetched in pages (bounded memory)."""
        flt = flt or EventFilter()
        where, params = _where(flt)
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        nxt = max(1, flt.from_seq)
        while True:
            with self.lock, self._db.errors():
                rows = self._conn.execute(sql, (nxt, *params, page)).fetchall()
            for row in rows:
                yield row_to_event(row)
            if len(rows) < page:
                return
            nxt = int(rows[-1][0]) + 1

    def latest(
        self, flt: EventFilter | None = None, *, limit: int, before: int | None = None
    ) -> list[Event]:
        """The newest ``limit`` events matching ``flt`` (``flt.from_seq`` <= seq <
        ``before``), newest first: one query walking the seq order (or an index)
        backwards.  An exact ``event_type`` reads the index by type."""
        flt = flt or EventFilter()
        where, params = _where(flt)
        where.append("seq < ?")
        params.append(before if before is not None else 1 << 62)
        hint = "INDEXED BY events_by_type " if self._typed(flt) else ""
        sql = (
            f"SELECT {_COLUMNS} FROM events {hint}WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?"
        )
        with self.lock, self._db.errors():
            rows = self._conn.execute(sql, (max(1, flt.from_seq), *params, limit)).fetchall()
        return [row_to_event(row) for row in rows]

    def _typed(self, flt: EventFilter) -> bool:
        """Whether to read the index by type: an exact type and a log that has it."""
        if flt.event_type is None or flt.event_type.endswith(".*"):
            return False
        if self._has_type_index is None:
            with self.lock, self._db.errors():
                row = self._conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_by_type'"
                ).fetchone()
            self._has_type_index = row is not None
        return self._has_type_index

    def count_types(self, types: Sequence[str]) -> int:
        """How many events have one of ``types`` (counted on the index by type)."""
        if not types:
            return 0
        marks = ",".join("?" * len(types))
        with self.lock, self._db.errors():
            row = self._conn.execute(
                f"SELECT count(*) FROM events WHERE event_type IN ({marks})", tuple(types)
            ).fetchone()
        return int(row[0])

    def iter_raw_rows(self, *, page: int = PAGE * 4) -> Iterator[tuple[Any, ...]]:
        """Every row in seq order (for verification), in pages."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
        last = -(1 << 62)
        while True:
            with self.lock, self._db.errors():
                rows = self._conn.execute(sql, (last, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = int(rows[-1][0])

    def segments(self) -> list[Segment]:
        with self.lock, self._db.errors():
            rows = self._conn.execute(
                "SELECT segment, first_seq, last_seq, bytes, opened, sealed, head_hash, reason "
                "FROM segments ORDER BY segment"
            ).fetchall()
        return [Segment(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7]) for r in rows]

    def checkpoints(self) -> list[Checkpoint]:
        with self.lock, self._db.errors():
            rows = self._conn.execute(
                "SELECT checkpoint, seq, head_hash, time, key_id, signature "
                "FROM checkpoints ORDER BY checkpoint"
            ).fetchall()
        return [Checkpoint(r[0], r[1], bytes(r[2]), r[3], bytes(r[4]), bytes(r[5])) for r in rows]

    def public_keys(self) -> dict[bytes, bytes]:
        """key id -> raw Ed25519 public key."""
        with self.lock, self._db.errors():
            rows = self._conn.execute("SELECT key_id, public_key FROM signing_keys").fetchall()
        return {bytes(k): bytes(p) for k, p in rows}

    def hash_at(self, seq: int) -> bytes | None:
        with self.lock, self._db.errors():
            row = self._conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def check_integrity(self) -> list[str]:
        with self.lock:
            return self._db.check_integrity()

    @contextmanager
    def raw_connection(self) -> Iterator[Any]:
        """The sqlite connection, under the lock (tests and benchmarks only)."""
        with self.lock:
            yield self._conn
