"""The encrypted object database: SQLCipher 4 in WAL mode.

One file, ``steve.db``, keyed with a raw 256-bit key (derived by Argon2id in
:mod:`steve.store.kdf`).  Opening, keying, file modes, read-only media and
the translation of sqlite errors into typed errors are
:mod:`steve.store.sqlcipher`'s (shared with ``events.db``).  Writes run in
``BEGIN IMMEDIATE`` transactions: SQLite's write lock is the repository's
single-writer lock, and a second writer waits up to ``busy_timeout`` and then
fails with RepositoryBusy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlcipher3 import dbapi2 as sqlite

from steve.errors import CorruptDatabase, StorageError, UnsupportedFormat
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import HeadRow, ManifestHead, read_head
from steve.store.base import (
    ANY,
    ErrorCount,
    ObjectInfo,
    ObjectRow,
    OutboxEvent,
    ReflogEntry,
    RefRecord,
    RunRecord,
    SecretRecord,
    TextHit,
    TransitionRecord,
    Unset,
    check_expected,
    prefix_range,
    text_rowid,
)
from steve.store.sqlcipher import KeyedConnection, connect

SCHEMA_VERSION = 7

_IN_BATCH = 256  # ids per ``oid IN (...)`` lookup

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT;
CREATE TABLE objects (
    oid BLOB PRIMARY KEY,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    data BLOB NOT NULL
) STRICT;
CREATE TABLE refs (
    name TEXT PRIMARY KEY,
    target BLOB,
    symbolic TEXT,
    CHECK ((target IS NULL) <> (symbolic IS NULL))
) STRICT;
CREATE TABLE reflog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL,
    old BLOB,
    new BLOB,
    who TEXT NOT NULL,
    time INTEGER NOT NULL,
    tz INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX reflog_by_ref ON reflog (ref, seq);
"""

# Schema version 2: runs of the stage machine and their recorded transitions.
_SCHEMA_V2 = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    stage TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
) STRICT;
CREATE TABLE transitions (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    trigger TEXT NOT NULL,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
"""

# Schema version 3: derived data.  ``manifests`` is the manifest index (what
# ``steve log`` reads: one small row per manifest instead of decoding it),
# written in the same transaction as the object and checked by fsck.
# ``derived`` holds other rebuildable maps by ``space`` (the git export map,
# the action cache).
_DERIVED = """
CREATE TABLE derived (
    space TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (space, key)
) STRICT, WITHOUT ROWID;
"""

# Schema version 4: the manifest index gets positions, like git's commit-graph.
# ``pos`` is the row's position (insertion order, so a history written in
# order is stored in order) and ``p1`` the position of the first parent's
# row, filled at insert when that row exists.  A walk along first parents is
# then a chain of integer lookups on neighbouring pages instead of random
# 32-byte key searches.  ``p1`` is a hint: a walk follows it only when the
# row found there really is the first parent (see _CHAIN_SQL), and gc
# relinks stale or missing hints.
_MANIFESTS = """
CREATE TABLE manifests (
    pos INTEGER PRIMARY KEY,
    oid BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    time INTEGER NOT NULL,
    tz INTEGER NOT NULL,
    parents BLOB NOT NULL,
    p1 INTEGER,
    summary TEXT NOT NULL
) STRICT;
"""

# Schema version 5: the event outbox.  A change and the events that record it
# commit in one transaction here; the events are then appended to events.db
# and their rows deleted (the "drain", see steve.repo.Repo.drain).  ``seq`` is
# AUTOINCREMENT so a number is never reused: events.db remembers the highest
# seq it holds, which makes a drain interrupted between the two databases
# safe to repeat.
_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    type TEXT NOT NULL,
    run_id TEXT,
    correlation_id TEXT,
    actor TEXT,
    payload BLOB NOT NULL
);
"""

# Schema version 6: the secrets vault (steve.porcelain.secrets).  One row per
# name with its latest version; ``kind`` is value, command or removed (a
# tombstone keeping the version).  Values live only here, inside the
# encrypted database.
_SECRETS = """
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    created INTEGER NOT NULL,
    who TEXT NOT NULL
) STRICT;
"""

# Schema version 7: RESEARCH's full-text index over mirrored sources (FTS5, so
# the index is encrypted with the rest of the database; rebuildable from the
# mirrored blobs) and per-code error counts (what `steve inspect errors` reads).
# ``objects_by_type`` lets `steve inspect resources` count objects and bytes by
# type on a small index instead of reading every object's pages (a repository
# made at version 7 before it existed answers the same query by a scan).
_V7 = """
CREATE VIRTUAL TABLE IF NOT EXISTS research_fts USING fts5(
    uri UNINDEXED,
    content UNINDEXED,
    title,
    body,
    tokenize = 'unicode61'
);
CREATE TABLE IF NOT EXISTS error_counts (
    code TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX IF NOT EXISTS objects_by_type ON objects (type, size);
"""

# v3 -> v4: copy the index in time order (a history's rows end up in order),
# then link first parents.
_V3_TO_V4 = (
    """
ALTER TABLE manifests RENAME TO manifests_v3;
"""
    + _MANIFESTS
    + """
INSERT INTO manifests (oid, kind, time, tz, parents, summary)
    SELECT oid, kind, time, tz, parents, summary FROM manifests_v3 ORDER BY time, oid;
DROP TABLE manifests_v3;
"""
)

# Fill every missing or stale first-parent position (after a migration, a
# backfill in arbitrary order, a child stored before its parent, or gc).
_RELINK_SQL = """
UPDATE manifests SET p1 = (
    SELECT x.pos FROM manifests AS x WHERE x.oid = substr(manifests.parents, 1, 32)
)
WHERE length(parents) >= 32 AND p1 IS NOT (
    SELECT x.pos FROM manifests AS x WHERE x.oid = substr(manifests.parents, 1, 32)
)
"""

_PUT_HEAD = (
    "INSERT {} INTO manifests (oid, kind, time, tz, parents, p1, summary) VALUES "
    "(?1, ?2, ?3, ?4, ?5, (SELECT pos FROM manifests WHERE oid = substr(?5, 1, 32)), ?6)"
)

# A run of first-parent history in one statement: the log walk's prefetch.
# The join follows the p1 position and checks that the row there is the
# first parent, so a stale hint ends the run early instead of misleading it.
_CHAIN_SQL = """
WITH RECURSIVE chain(oid, kind, time, tz, parents, summary, p1, k) AS (
    SELECT oid, kind, time, tz, parents, summary, p1, 1 FROM manifests WHERE oid = ?1
    UNION ALL
    SELECT m.oid, m.kind, m.time, m.tz, m.parents, m.summary, m.p1, c.k + 1
    FROM chain AS c JOIN manifests AS m ON m.pos = c.p1
    WHERE c.k < ?2 AND m.oid = substr(c.parents, 1, 32)
)
SELECT oid, kind, time, tz, parents, summary FROM chain
"""

# what brings a database of each older version to SCHEMA_VERSION, and whether
# the manifest index is then backfilled from the stored manifests
_MIGRATIONS = {
    1: (_SCHEMA_V2 + _DERIVED + _MANIFESTS + _OUTBOX + _SECRETS + _V7, True),
    2: (_DERIVED + _MANIFESTS + _OUTBOX + _SECRETS + _V7, True),
    3: (_V3_TO_V4 + _OUTBOX + _SECRETS + _V7, False),
    4: (_OUTBOX + _SECRETS + _V7, False),
    5: (_SECRETS + _V7, False),
    6: (_V7, False),
}
_MANIFEST_TYPES = tuple(t.value for t in ObjectType if t.is_manifest)


_COUNT_ERROR = (
    "INSERT INTO error_counts (code, count, first, last, message) VALUES (?, 1, ?, ?, ?) "
    "ON CONFLICT (code) DO UPDATE SET count = count + 1, "
    "last = max(last, excluded.last), message = excluded.message"
)
_GET_SECRET = "SELECT name, version, kind, data, created, who FROM secrets WHERE name = ?"
_LIST_SECRETS = "SELECT name, version, kind, data, created, who FROM secrets ORDER BY name"


def _secret(row: tuple[Any, ...]) -> SecretRecord:
    name, version, kind, data, created, who = row
    return SecretRecord(str(name), int(version), str(kind), bytes(data), int(created), str(who))


def _oid(raw: bytes | None) -> ObjectId | None:
    return None if raw is None else ObjectId(bytes(raw))


def _record(target: bytes | None, symbolic: str | None) -> RefRecord:
    return RefRecord(_oid(target), symbolic)


class SqlCipherBackend:
    """An open, keyed ``steve.db``.  Use :meth:`create` or :meth:`open`."""

    def __init__(self, db: KeyedConnection) -> None:
        self.path = Path(db.location)
        self.location = db.location
        self.read_only = db.read_only
        self._db = db
        self._conn = db.conn
        self._busy_timeout = db.busy_timeout

    # --- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, key: bytes, busy_timeout: float = 30.0) -> SqlCipherBackend:
        db = connect(path, key, busy_timeout=busy_timeout)
        conn = db.conn
        try:
            with db.errors():
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
                with db.transaction():
                    schema = _SCHEMA + _SCHEMA_V2 + _DERIVED + _MANIFESTS + _OUTBOX + _SECRETS + _V7
                    for stmt in schema.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except BaseException:
            db.close()
            raise
        backend = cls(db)
        backend._tune()
        return backend

    @classmethod
    def open(
        cls, path: Path, key: bytes, busy_timeout: float = 30.0, *, key_checked: bool = True
    ) -> SqlCipherBackend:
        """Open an existing database (read-only on read-only media).  ``key_checked``:
        the caller has already checked the key (the config's key check)."""
        db = connect(path, key, busy_timeout=busy_timeout, key_checked=key_checked, create=False)
        conn = db.conn
        backend = cls(db)
        try:
            db.check_key()
            with backend._errors():
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except Exception:
            conn.close()
            raise
        if row is not None and type(row[0]) is int and row[0] > SCHEMA_VERSION:
            conn.close()
            raise UnsupportedFormat(row[0], SCHEMA_VERSION)
        if row is not None and row[0] in _MIGRATIONS:
            try:
                backend._migrate(row[0])
            except BaseException:
                conn.close()
                raise
        elif row is None or row[0] != SCHEMA_VERSION:
            conn.close()
            raise CorruptDatabase(str(path), f"unexpected schema version {row and row[0]}")
        backend._tune()
        return backend

    def _migrate(self, version: int) -> None:
        """Bring an older database to SCHEMA_VERSION in place, in one transaction."""
        with self.transaction() as tx:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != version:  # another process migrated meanwhile
                return
            script, backfill = _MIGRATIONS[version]
            for stmt in script.split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            if backfill:  # the manifest index from the stored manifests, oldest first
                marks = ",".join("?" * len(_MANIFEST_TYPES))
                heads = [
                    (ObjectId(bytes(oid)), read_head(bytes(oid).hex(), data))
                    for oid, data in self._conn.execute(
                        f"SELECT oid, data FROM objects WHERE type IN ({marks})", _MANIFEST_TYPES
                    )
                ]
                heads.sort(key=lambda item: (item[1].time, item[0].raw))
                for oid, head in heads:
                    tx.put_manifest_head(oid, head)
            self._conn.execute(_RELINK_SQL)
            self._conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,)
            )

    def _tune(self) -> None:
        self._db.tune(synchronous="FULL", cache_kib=16384)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return self._db.errors()

    def check_integrity(self) -> list[str]:
        """SQLCipher page HMACs plus sqlite's structural check; empty when sound."""
        return self._db.check_integrity()

    # --- reads --------------------------------------------------------------------

    def has(self, oid: ObjectId) -> bool:
        with self._errors():
            row = self._conn.execute("SELECT 1 FROM objects WHERE oid = ?", (oid.raw,)).fetchone()
        return row is not None

    def read(self, oid: ObjectId) -> bytes | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT data FROM objects WHERE oid = ?", (oid.raw,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def info(self, oid: ObjectId) -> ObjectInfo | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT type, size, created FROM objects WHERE oid = ?", (oid.raw,)
            ).fetchone()
        if row is None:
            return None
        return ObjectInfo(oid, ObjectType(row[0]), row[1], row[2])

    def read_with_info(self, oid: ObjectId) -> tuple[ObjectType, int, bytes] | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT type, size, data FROM objects WHERE oid = ?", (oid.raw,)
            ).fetchone()
        if row is None:
            return None
        return ObjectType(row[0]), row[1], bytes(row[2])

    def match_prefix(self, prefix_hex: str, limit: int = 16) -> list[ObjectId]:
        lo, hi = prefix_range(prefix_hex)
        with self._errors():
            if hi is None:
                rows = self._conn.execute(
                    "SELECT oid FROM objects WHERE oid >= ? ORDER BY oid LIMIT ?", (lo, limit)
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT oid FROM objects WHERE oid >= ? AND oid < ? ORDER BY oid LIMIT ?",
                    (lo, hi, limit),
                ).fetchall()
        return [ObjectId(bytes(r[0])) for r in rows]

    def _stream(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[Any]:
        """Stream rows in key order with a separate cursor, in bounded pages."""
        last = b""
        page = 512
        while True:
            with self._errors():
                rows = self._conn.execute(sql, (last, *params, page)).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = bytes(rows[-1][0])

    def iter_info(self) -> Iterator[ObjectInfo]:
        for oid, t, size, created in self._stream(
            "SELECT oid, type, size, created FROM objects WHERE oid > ? ORDER BY oid LIMIT ?"
        ):
            yield ObjectInfo(ObjectId(bytes(oid)), ObjectType(t), size, created)

    def scan_objects(self, after: int, limit: int, inline_max: int) -> tuple[int, list[ObjectRow]]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT oid, type, size, CASE WHEN length(data) <= ? THEN data END, rowid "
                "FROM objects WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (inline_max, after, limit),
            ).fetchall()
        if not rows:
            return after, []
        return int(rows[-1][4]), [(o, t, s, d) for o, t, s, d, _ in rows]

    def count_estimate(self) -> int:
        with self._errors():
            row = self._conn.execute("SELECT coalesce(max(rowid), 0) FROM objects").fetchone()
        return int(row[0])

    def lookup_objects(self, oids: Sequence[ObjectId], inline_max: int) -> list[ObjectRow]:
        out: list[ObjectRow] = []
        for i in range(0, len(oids), _IN_BATCH):
            part = sorted(o.raw for o in oids[i : i + _IN_BATCH])
            marks = ",".join("?" * len(part))
            with self._errors():
                out += self._conn.execute(
                    "SELECT oid, type, size, CASE WHEN length(data) <= ? THEN data END "
                    f"FROM objects WHERE oid IN ({marks})",
                    (inline_max, *part),
                ).fetchall()
        return out

    def iter_raw(self) -> Iterator[tuple[ObjectId, bytes]]:
        for oid, data in self._stream(
            "SELECT oid, data FROM objects WHERE oid > ? ORDER BY oid LIMIT ?"
        ):
            yield ObjectId(bytes(oid)), bytes(data)

    def count(self) -> int:
        with self._errors():
            return int(self._conn.execute("SELECT count(*) FROM objects").fetchone()[0])

    def read_ref(self, name: str) -> RefRecord | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT target, symbolic FROM refs WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _record(row[0], row[1])

    def list_refs(self, prefix: str = "") -> list[tuple[str, RefRecord]]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT name, target, symbolic FROM refs "
                "WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix),
            ).fetchall()
        return [(n, _record(t, s)) for n, t, s in rows]

    def reflog(self, ref: str) -> list[ReflogEntry]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT ref, old, new, who, time, tz, message FROM reflog "
                "WHERE ref = ? ORDER BY seq DESC",
                (ref,),
            ).fetchall()
        return [ReflogEntry(r, _oid(o), _oid(n), w, t, z, m) for r, o, n, w, t, z, m in rows]

    def reflog_refs(self) -> list[str]:
        with self._errors():
            rows = self._conn.execute("SELECT DISTINCT ref FROM reflog ORDER BY ref").fetchall()
        return [r[0] for r in rows]

    # --- runs ---------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT id, name, stage, created, updated FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return None if row is None else RunRecord(*row)

    def list_runs(self) -> list[RunRecord]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, name, stage, created, updated FROM runs ORDER BY created, id"
            ).fetchall()
        return [RunRecord(*r) for r in rows]

    def transitions(self, run_id: str) -> list[TransitionRecord]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT run_id, seq, from_stage, to_stage, trigger, time, actor "
                "FROM transitions WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [TransitionRecord(*r) for r in rows]

    def get_meta(self, key: str) -> str | None:
        with self._errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # --- derived data -------------------------------------------------------------

    def manifest_head(self, oid: ObjectId) -> ManifestHead | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT kind, time, tz, parents, summary FROM manifests WHERE oid = ?", (oid.raw,)
            ).fetchone()
        return None if row is None else ManifestHead.from_row(*row)

    def manifest_chain(self, oid: ObjectId, limit: int) -> list[tuple[ObjectId, ManifestHead]]:
        trusted, head = ObjectId.trusted, ManifestHead.from_row
        return [
            (trusted(o), head(k, tm, tz, ps, s))
            for o, k, tm, tz, ps, s in self.manifest_rows(oid.raw, limit)
        ]

    def manifest_rows(self, oid: bytes, limit: int) -> list[HeadRow]:
        with self._errors():
            rows: list[HeadRow] = self._conn.execute(_CHAIN_SQL, (oid, limit)).fetchall()
        return rows

    def relink_manifests(self) -> int:
        with self.transaction(), self._errors():
            return int(self._conn.execute(_RELINK_SQL).rowcount)

    def iter_manifest_heads(self) -> Iterator[tuple[ObjectId, ManifestHead]]:
        for oid, kind, tm, tz, parents, summary in self._stream(
            "SELECT oid, kind, time, tz, parents, summary FROM manifests "
            "WHERE oid > ? ORDER BY oid LIMIT ?"
        ):
            yield ObjectId(bytes(oid)), ManifestHead.from_row(kind, tm, tz, parents, summary)

    def get_derived(self, space: str, key: bytes) -> bytes | None:
        with self._errors():
            row = self._conn.execute(
                "SELECT value FROM derived WHERE space = ? AND key = ?", (space, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def iter_derived(self, space: str) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._stream(
            "SELECT key, value FROM derived WHERE key > ? AND space = ? ORDER BY key LIMIT ?",
            (space,),
        ):
            yield bytes(key), bytes(value)

    def search_text(self, terms: Sequence[str], limit: int) -> list[TextHit]:
        if not terms or limit <= 0:
            return []
        match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self._errors():
            rows = self._conn.execute(
                "SELECT uri, content, title, snippet(research_fts, 3, '[', ']', '...', 16), "
                "rank FROM research_fts WHERE research_fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
        return [
            TextHit(str(u), ObjectId.from_hex(str(c)), str(t or ""), str(sn or ""), float(r))
            for u, c, t, sn, r in rows
        ]

    def text_count(self) -> int:
        with self._errors():
            return int(self._conn.execute("SELECT count(*) FROM research_fts").fetchone()[0])

    def get_secret(self, name: str) -> SecretRecord | None:
        with self._errors():
            row = self._conn.execute(_GET_SECRET, (name,)).fetchone()
        return None if row is None else _secret(row)

    def list_secrets(self) -> list[SecretRecord]:
        with self._errors():
            rows = self._conn.execute(_LIST_SECRETS).fetchall()
        return [_secret(row) for row in rows]

    def count_error(self, code: str, message: str, now: int, wait: float) -> None:
        with self._errors():
            self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait * 1000))}")
        try:
            with self.transaction(), self._errors():
                self._conn.execute(_COUNT_ERROR, (code, now, now, message))
        finally:
            with self._errors():
                self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    def object_stats(self) -> list[tuple[str, int, int]]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT type, count(*), total(size) FROM objects GROUP BY type ORDER BY type"
            ).fetchall()
        return [(str(t), int(n), int(b)) for t, n, b in rows]

    def error_counts(self) -> list[ErrorCount]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT code, count, first, last, message FROM error_counts "
                "ORDER BY count DESC, last DESC, code"
            ).fetchall()
        return [ErrorCount(str(c), int(n), int(f), int(la), str(m)) for c, n, f, la, m in rows]

    def outbox(self, limit: int, after: int = 0) -> list[OutboxEvent]:
        with self._errors():
            rows = self._conn.execute(
                "SELECT seq, time, type, run_id, correlation_id, actor, payload FROM outbox "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxEvent(q, t, k, r, c, a, bytes(p)) for q, t, k, r, c, a, p in rows]

    def outbox_count(self) -> int:
        with self._errors():
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # --- writes -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[_SqlTx]:
        with self._db.transaction():
            yield _SqlTx(self._conn, self)

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (before the database files move)."""
        self._db.checkpoint()

    def vacuum(self, full: bool = False) -> None:
        """Return the pages freed by deletes to the file system, then fold the WAL into
        the main file and truncate it.  ``incremental_vacuum`` frees one page per
        step of the statement, so it is stepped to the end (``fetchall``); ``full``
        rebuilds the whole file instead (``VACUUM``: also defragments, needs free
        space for a second copy)."""
        with self._errors():
            if full:
                self._conn.execute("VACUUM").fetchall()
            else:
                self._conn.execute("PRAGMA incremental_vacuum").fetchall()
            # a reader on an older snapshot keeps the WAL; waiting the whole busy
            # timeout for it (`steve events --follow`) would gain nothing: the next
            # checkpoint after it moves on truncates the file
            self._conn.execute("PRAGMA busy_timeout = 1000")
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    def free_pages(self) -> int:
        """Pages on the free list (space a vacuum can give back), in 4 KiB pages."""
        with self._errors():
            return int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def forbid_writes(self) -> None:
        """This handle only reads from now on (see KeyedConnection.forbid_writes)."""
        self._db.forbid_writes()


class _SqlTx:
    def __init__(self, conn: Any, backend: SqlCipherBackend) -> None:
        self._conn = conn
        self._b = backend
        self._now = int(time.time())

    def put(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None:
        self.put_many([(oid, type_, size, data)])

    def put_many(self, rows: Iterable[tuple[ObjectId, ObjectType, int, bytes]]) -> None:
        now = self._now
        manifests: list[tuple[ObjectId, bytes]] = []

        blob = ObjectType.BLOB

        def object_rows() -> Iterator[tuple[bytes, str, int, int, bytes]]:
            for oid, t, s, d in rows:
                if t is blob:  # the commonest row: no enum property lookups
                    yield oid.raw, "blob", s, now, d
                    continue
                if t.is_manifest:
                    manifests.append((oid, d))
                yield oid.raw, t.value, s, now, d

        with self._b._errors():
            self._conn.executemany(
                "INSERT OR IGNORE INTO objects (oid, type, size, created, data) VALUES (?,?,?,?,?)",
                object_rows(),
            )
            if manifests:
                self._conn.executemany(
                    _PUT_HEAD.format("OR IGNORE"),
                    (read_head(oid.hex, d).row(oid) for oid, d in manifests),
                )

    def delete_objects(self, oids: Iterable[ObjectId]) -> int:
        n = 0
        with self._b._errors():
            for oid in oids:
                n += self._conn.execute("DELETE FROM objects WHERE oid = ?", (oid.raw,)).rowcount
                self._conn.execute("DELETE FROM manifests WHERE oid = ?", (oid.raw,))
        return n

    def put_manifest_head(self, oid: ObjectId, head: ManifestHead | None) -> None:
        with self._b._errors():
            if head is None:
                self._conn.execute("DELETE FROM manifests WHERE oid = ?", (oid.raw,))
            else:
                self._conn.execute(_PUT_HEAD.format("OR REPLACE"), head.row(oid))

    def read_secret(self, name: str) -> SecretRecord | None:
        with self._b._errors():
            row = self._conn.execute(_GET_SECRET, (name,)).fetchone()
        return None if row is None else _secret(row)

    def put_secret(self, record: SecretRecord) -> None:
        with self._b._errors():
            self._conn.execute(
                "INSERT OR REPLACE INTO secrets (name, version, kind, data, created, who) "
                "VALUES (?,?,?,?,?,?)",
                (
                    record.name,
                    record.version,
                    record.kind,
                    bytes(record.data),
                    record.created,
                    record.who,
                ),
            )

    def put_derived(self, space: str, key: bytes, value: bytes) -> None:
        with self._b._errors():
            self._conn.execute(
                "INSERT OR REPLACE INTO derived (space, key, value) VALUES (?,?,?)",
                (space, bytes(key), bytes(value)),
            )

    def put_text(self, uri: str, content: ObjectId, title: str, body: str) -> None:
        rowid = text_rowid(uri)
        with self._b._errors():
            self._conn.execute("DELETE FROM research_fts WHERE rowid = ?", (rowid,))
            self._conn.execute(
                "INSERT INTO research_fts (rowid, uri, content, title, body) VALUES (?,?,?,?,?)",
                (rowid, uri, content.hex, title, body),
            )

    def delete_text(self, uri: str) -> None:
        with self._b._errors():
            self._conn.execute("DELETE FROM research_fts WHERE rowid = ?", (text_rowid(uri),))

    def delete_derived(self, space: str, key: bytes) -> None:
        with self._b._errors():
            self._conn.execute(
                "DELETE FROM derived WHERE space = ? AND key = ?", (space, bytes(key))
            )

    def read_ref(self, name: str) -> RefRecord | None:
        with self._b._errors():
            row = self._conn.execute(
                "SELECT target, symbolic FROM refs WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _record(row[0], row[1])

    def set_ref(
        self, name: str, record: RefRecord | None, expected: RefRecord | Unset | None = ANY
    ) -> RefRecord | None:
        current = self.read_ref(name)
        check_expected(name, expected, current)
        with self._b._errors():
            if record is None:
                self._conn.execute("DELETE FROM refs WHERE name = ?", (name,))
            else:
                self._conn.execute(
                    "INSERT INTO refs (name, target, symbolic) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET target = excluded.target, "
                    "symbolic = excluded.symbolic",
                    (name, record.target.raw if record.target else None, record.symbolic),
                )
        return current

    def append_reflog(self, entry: ReflogEntry) -> None:
        with self._b._errors():
            self._conn.execute(
                "INSERT INTO reflog (ref, old, new, who, time, tz, message) VALUES (?,?,?,?,?,?,?)",
                (
                    entry.ref,
                    entry.old.raw if entry.old else None,
                    entry.new.raw if entry.new else None,
                    entry.who,
                    entry.time,
                    entry.tz,
                    entry.message,
                ),
            )

    def read_run(self, run_id: str) -> RunRecord | None:
        return self._b.get_run(run_id)

    def insert_run(self, run: RunRecord) -> None:
        with self._b._errors():
            try:
                self._conn.execute(
                    "INSERT INTO runs (id, name, stage, created, updated) VALUES (?,?,?,?,?)",
                    (run.id, run.name, run.stage, run.created, run.updated),
                )
            except sqlite.IntegrityError as exc:
                raise StorageError(f"run {run.id} already exists") from exc

    def set_run_stage(self, run_id: str, expected: str, stage: str, time: int) -> bool:
        with self._b._errors():
            cur = self._conn.execute(
                "UPDATE runs SET stage = ?, updated = ? WHERE id = ? AND stage = ?",
                (stage, time, run_id, expected),
            )
        return int(cur.rowcount) == 1

    def append_transition(self, record: TransitionRecord) -> None:
        with self._b._errors():
            try:
                self._conn.execute(
                    "INSERT INTO transitions "
                    "(run_id, seq, from_stage, to_stage, trigger, time, actor) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (
                        record.run_id,
                        record.seq,
                        record.from_stage,
                        record.to_stage,
                        record.trigger,
                        record.time,
                        record.actor,
                    ),
                )
            except sqlite.IntegrityError as exc:
                raise StorageError(
                    f"transition {record.run_id}#{record.seq} already exists"
                ) from exc

    def set_meta(self, key: str, value: str | None) -> None:
        with self._b._errors():
            if value is None:
                self._conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def append_outbox(self, event: OutboxEvent) -> None:
        with self._b._errors():
            self._conn.execute(
                "INSERT INTO outbox (time, type, run_id, correlation_id, actor, payload) "
                "VALUES (?,?,?,?,?,?)",
                (
                    event.time_ms,
                    event.type,
                    event.run_id,
                    event.correlation_id,
                    event.actor,
                    event.payload,
                ),
            )

    def delete_outbox(self, upto: int) -> int:
        with self._b._errors():
            return int(self._conn.execute("DELETE FROM outbox WHERE seq <= ?", (upto,)).rowcount)

    def delete_reflog(self, ref: str, keep_newest: int = 0) -> int:
        with self._b._errors():
            cur = self._conn.execute(
                "DELETE FROM reflog WHERE ref = ? AND seq NOT IN "
                "(SELECT seq FROM reflog WHERE ref = ? ORDER BY seq DESC LIMIT ?)",
                (ref, ref, keep_newest),
            )
            return int(cur.rowcount)
