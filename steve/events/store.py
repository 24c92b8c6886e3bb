"""``events.db``: the append-only, hash-chained event table in SQLCipher.

Keyed with the repository's raw key (the same key as ``steve.db``), WAL
mode.  Triggers refuse every UPDATE and DELETE on ``events``, ``segments``
and ``checkpoints``; only ``head`` (the chain tip and the open segment's
counters, a cache that verification cross-checks) changes in place.

Appends run in ``BEGIN IMMEDIATE`` transactions that read the chain head
inside the transaction, so several processes may append to one log: each
batch continues the chain where the last committed batch ended.

Opening, keying, file modes, read-only media and sqlite error translation
are :mod:`steve.store.sqlcipher`'s, shared with ``steve.db``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from steve.errors import CorruptDatabase, RepositoryBusy, UnsupportedFormat
from steve.events.model import GENESIS, Event, Level, chain_hash, encode_int, event_parts
from steve.objects import cbor
from steve.store.sqlcipher import connect

SCHEMA_VERSION = 1

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
    private_key BLOB NOT NULL,
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
    """When the open segment is sealed (checked after each committed batch)."""

    max_events: int = 100_000
    max_bytes: int = 64 << 20
    max_age_s: int = 24 * 3600


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

    def message(self, log_id: str) -> bytes:
        return checkpoint_message(log_id, self.seq, self.head_hash, self.time)


def checkpoint_message(log_id: str, seq: int, head_hash: bytes, time_ms: int) -> bytes:
    """The bytes a checkpoint signs: canonical CBOR of the log id, seq, head and time."""
    return cbor.encode({"log": log_id, "seq": seq, "head": head_hash, "time": time_ms, "v": 1})


def key_id_of(public_key: bytes) -> bytes:
    return chain_hash(b"steve-events-key", public_key)


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    raw: bytes = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class EventFilter:
    run_id: str | None = None
    correlation_id: str | None = None
    event_type: str | None = None
    from_seq: int = 1
    min_level: Level | None = None


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
        key_checked: bool = False,
    ) -> None:
        """``key_checked``: ``key`` was verified against the repository config's key
        check, so an events.db whose first page does not decrypt is damaged (a
        CorruptDatabase), not opened with a wrong key (WrongKey)."""
        self.path = path
        self.rotation = rotation or Rotation()
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
        if version[0] != SCHEMA_VERSION:
            raise CorruptDatabase(str(self.path), f"unexpected schema version {version[0]!r}")

    def _create(self) -> None:
        """Create the tables, the triggers, the head row and a signing key (idempotent)."""
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
            if self._conn.execute("SELECT count(*) FROM signing_keys").fetchone()[0] == 0:
                self._new_key(now)

    def _new_key(self, now: int) -> None:
        private = Ed25519PrivateKey.generate()
        raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = public_key_bytes(private.public_key())
        self._conn.execute(
            "INSERT INTO signing_keys VALUES (?,?,?,?)",
            (key_id_of(public), raw_private, public, now),
        )

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def get_meta(self, key: str) -> str | None:
        with self.lock, self._db.errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- appending -------------------------------------------------------------------

    def append(
        self,
        batch: Sequence[Pending],
        *,
        now_ms: int | None = None,
        parts: Sequence[tuple[bytes, bytes]] | None = None,
    ) -> list[Row]:
        """Append ``batch`` in one transaction, continuing the chain; returns the rows
        written (:func:`row_to_event` makes an :class:`Event` of one).

        ``parts``, if given, holds each event's :func:`event_parts` (built by
        the producers, so the writer only adds seqs and hashes).  After the
        rows are written the open segment is sealed (and a checkpoint signed)
        if a :class:`Rotation` limit is reached.
        """
        if parts is None:
            parts = [event_parts(*p) for p in batch]
        with self.lock, self._db.transaction(), self._db.errors():
            conn = self._conn
            head = self._read_head()
            seq, prev = head.seq, head.hash
            rows: list[Row] = []
            added = 0
            for (t, lv, etype, run, corr, cause, actor, payload), (before, after) in zip(
                batch, parts, strict=True
            ):
                seq += 1
                digest = chain_hash(prev, before + encode_int(seq) + after)
                rows.append((seq, t, lv, etype, run, corr, cause, actor, payload, prev, digest))
                added += len(payload)
                prev = digest
            for sql, params in _insert_statements(rows):
                conn.execute(sql, params)
            seg_bytes = head.segment_bytes + added
            conn.execute(
                "UPDATE head SET seq = ?, hash = ?, segment_bytes = ? WHERE id = 1",
                (seq, prev, seg_bytes),
            )
            stamp = now_ms if now_ms is not None else int(time.time() * 1000)
            reason = self._rotation_reason(head, seq, seg_bytes, stamp)
            if reason is not None:
                self._seal(
                    Head(seq, prev, head.segment_first, seg_bytes, head.segment_opened),
                    reason,
                    stamp,
                )
        return rows

    def _rotation_reason(self, head: Head, seq: int, seg_bytes: int, now_ms: int) -> str | None:
        events = seq - head.segment_first + 1
        if events <= 0:
            return None
        r = self.rotation
        if events >= r.max_events:
            return f"events>={r.max_events}"
        if seg_bytes >= r.max_bytes:
            return f"bytes>={r.max_bytes}"
        if now_ms - head.segment_opened >= r.max_age_s * 1000:
            return f"age>={r.max_age_s}s"
        return None

    def _read_head(self) -> Head:
        row = self._conn.execute(
            "SELECT seq, hash, segment_first, segment_bytes, segment_opened FROM head"
        ).fetchone()
        if row is None:
            raise CorruptDatabase(str(self.path), "events.db has no head row")
        return Head(int(row[0]), bytes(row[1]), int(row[2]), int(row[3]), int(row[4]))

    def _seal(self, head: Head, reason: str, now_ms: int) -> Segment | None:
        """Seal the open segment at ``head`` and sign a checkpoint (inside a transaction)."""
        if head.seq < head.segment_first:
            return None
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
        conn.execute(
            "UPDATE head SET segment_first = ?, segment_bytes = 0, segment_opened = ? WHERE id = 1",
            (head.seq + 1, now_ms),
        )
        self._sign(head.seq, head.hash, now_ms)
        return seg

    def _sign(self, seq: int, head_hash: bytes, now_ms: int) -> Checkpoint:
        row = self._conn.execute(
            "SELECT key_id, private_key FROM signing_keys ORDER BY created DESC LIMIT 1"
        ).fetchone()
        if row is None:
            self._new_key(now_ms)
            return self._sign(seq, head_hash, now_ms)
        private = Ed25519PrivateKey.from_private_bytes(bytes(row[1]))
        signature = private.sign(checkpoint_message(self.log_id, seq, head_hash, now_ms))
        number = int(
            self._conn.execute(
                "SELECT coalesce(max(checkpoint), 0) + 1 FROM checkpoints"
            ).fetchone()[0]
        )
        cp = Checkpoint(number, seq, head_hash, now_ms, bytes(row[0]), signature)
        self._conn.execute(
            "INSERT INTO checkpoints VALUES (?,?,?,?,?,?)",
            (cp.checkpoint, cp.seq, cp.head_hash, cp.time, cp.key_id, cp.signature),
        )
        return cp

    def seal(self, reason: str = "manual", now_ms: int | None = None) -> Segment | None:
        """Seal the open segment now (None when it is empty)."""
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.lock, self._db.transaction(), self._db.errors():
            return self._seal(self._read_head(), reason, stamp)

    def checkpoint(self, now_ms: int | None = None) -> Checkpoint:
        """Sign the current chain head without sealing a segment."""
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.lock, self._db.transaction(), self._db.errors():
            head = self._read_head()
            return self._sign(head.seq, head.hash, stamp)

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
                where.append("substr(event_type, 1, ?) = ?")
                prefix = flt.event_type[:-1]
                params.extend([len(prefix), prefix])
            else:
                where.append("event_type = ?")
                params.append(flt.event_type)
        if flt.min_level is not None:
            levels = [lv.value for lv in Level if lv.rank >= flt.min_level.rank]
            where.append(f"level IN ({','.join('?' * len(levels))})")
            params.extend(levels)
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
