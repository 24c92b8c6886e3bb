"""The storage contract shared by every backend (memory, encrypted SQLite).

A backend stores objects (id, type, size, stored bytes, creation time), refs
(direct or symbolic) and a reflog.  Reads may happen at any time; every write
happens inside :meth:`Backend.transaction`, which is atomic: either all of
its object inserts, ref changes and reflog entries become visible, or none.
Compare-and-swap on refs is checked inside that same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, TypeAlias

from steve.errors import RefUpdateRejected
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import HeadRow, ManifestHead
from steve.record import Record

_set = object.__setattr__  # a frozen record's fields are set once, in __init__


class RefRecord(Record):
    """What a ref holds: an object id, or the name of another ref (symbolic)."""

    __match_args__ = ("target", "symbolic")

    __slots__ = __match_args__
    target: ObjectId | None
    symbolic: str | None

    def __init__(self, target: ObjectId | None = None, symbolic: str | None = None) -> None:
        _set(self, "target", target)
        _set(self, "symbolic", symbolic)
        self.__post_init__()

    def __post_init__(self) -> None:
        if (self.target is None) == (self.symbolic is None):
            raise ValueError("a ref holds exactly one of target or symbolic")


class ReflogEntry(Record):
    __match_args__ = ("ref", "old", "new", "who", "time", "tz", "message")
    __slots__ = __match_args__
    ref: str
    old: ObjectId | None
    new: ObjectId | None
    who: str
    time: int
    tz: int
    message: str

    def __init__(
        self,
        ref: str,
        old: ObjectId | None,
        new: ObjectId | None,
        who: str,
        time: int,
        tz: int,
        message: str,
    ) -> None:
        _set(self, "ref", ref)
        _set(self, "old", old)
        _set(self, "new", new)
        _set(self, "who", who)
        _set(self, "time", time)
        _set(self, "tz", tz)
        _set(self, "message", message)


class RunRecord(Record):
    """A run of the stage machine (``stage`` is a Stage value; the store keeps text)."""

    __match_args__ = ("id", "name", "stage", "created", "updated")

    __slots__ = __match_args__
    id: str
    name: str
    stage: str
    created: int
    updated: int

    def __init__(self, id: str, name: str, stage: str, created: int, updated: int) -> None:
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "stage", stage)
        _set(self, "created", created)
        _set(self, "updated", updated)


class TransitionRecord(Record):
    """One recorded stage change; ``from_stage`` is None for the run's creation."""

    __match_args__ = ("run_id", "seq", "from_stage", "to_stage", "trigger", "time", "actor")

    __slots__ = __match_args__
    run_id: str
    seq: int
    from_stage: str | None
    to_stage: str
    trigger: str
    time: int
    actor: str

    def __init__(
        self,
        run_id: str,
        seq: int,
        from_stage: str | None,
        to_stage: str,
        trigger: str,
        time: int,
        actor: str,
    ) -> None:
        _set(self, "run_id", run_id)
        _set(self, "seq", seq)
        _set(self, "from_stage", from_stage)
        _set(self, "to_stage", to_stage)
        _set(self, "trigger", trigger)
        _set(self, "time", time)
        _set(self, "actor", actor)


class OutboxEvent(Record):
    """An event waiting in ``steve.db``'s outbox until it is appended to ``events.db``.

    Written in the same transaction as the change it records (see
    :meth:`Transaction.append_outbox`); ``seq`` is the outbox's own counter
    (0 before the row is stored), never reused, so a drain can tell which
    rows the event log already holds.  ``payload`` is canonical CBOR.
    """

    __match_args__ = ("seq", "time_ms", "type", "run_id", "correlation_id", "actor", "payload")

    __slots__ = __match_args__
    seq: int
    time_ms: int
    type: str
    run_id: str | None
    correlation_id: str | None
    actor: str | None
    payload: bytes

    def __init__(
        self,
        seq: int,
        time_ms: int,
        type: str,
        run_id: str | None,
        correlation_id: str | None,
        actor: str | None,
        payload: bytes,
    ) -> None:
        _set(self, "seq", seq)
        _set(self, "time_ms", time_ms)
        _set(self, "type", type)
        _set(self, "run_id", run_id)
        _set(self, "correlation_id", correlation_id)
        _set(self, "actor", actor)
        _set(self, "payload", payload)


class ErrorCount(Record):
    """How often one error code was raised against the repository (the v7
    ``error_counts`` table): times in unix seconds, ``message`` the latest one."""

    __match_args__ = ("code", "count", "first", "last", "message")

    __slots__ = __match_args__
    code: str
    count: int
    first: int
    last: int
    message: str

    def __init__(self, code: str, count: int, first: int, last: int, message: str) -> None:
        _set(self, "code", code)
        _set(self, "count", count)
        _set(self, "first", first)
        _set(self, "last", last)
        _set(self, "message", message)


class SecretRecord(Record):
    """A vault entry (schema v6 ``secrets`` table): one row per name, its latest version.

    ``kind`` is ``value`` (``data`` is the value), ``command`` (``data`` is the
    command line, UTF-8, run at use time) or ``removed`` (a tombstone: ``data``
    is empty and the version is remembered, so a name set again gets a newer
    version and never reuses an action-cache key).
    """

    __match_args__ = ("name", "version", "kind", "data", "created", "who")

    __slots__ = __match_args__
    name: str
    version: int
    kind: str
    data: bytes
    created: int
    who: str

    def __init__(
        self,
        name: str,
        version: int,
        kind: str,
        data: bytes,
        created: int,
        who: str,
    ) -> None:
        _set(self, "name", name)
        _set(self, "version", version)
        _set(self, "kind", kind)
        _set(self, "data", data)
        _set(self, "created", created)
        _set(self, "who", who)


class ObjectInfo(Record):
    __match_args__ = ("oid", "type", "size", "created")
    __slots__ = __match_args__
    oid: ObjectId
    type: ObjectType
    size: int
    created: int

    def __init__(self, oid: ObjectId, type: ObjectType, size: int, created: int) -> None:
        _set(self, "oid", oid)
        _set(self, "type", type)
        _set(self, "size", size)
        _set(self, "created", created)


ObjectRow: TypeAlias = tuple[bytes, str, int, bytes | None]
"""One object as :meth:`ObjectReads.scan_objects` returns it: the id's 32 bytes, the
type's name (an :class:`ObjectType` value), size, stored bytes: plain values, for
passes over millions of rows."""


class TextHit(Record):
    """One answer of the research full-text index (schema v7 ``research_fts``):
    the source's URI, its content blob, title, a snippet with the matched terms
    in ``[...]`` and the rank (lower is better, as SQLite's bm25)."""

    __match_args__ = ("uri", "content", "title", "snippet", "rank")

    __slots__ = __match_args__
    uri: str
    content: ObjectId
    title: str
    snippet: str
    rank: float

    def __init__(self, uri: str, content: ObjectId, title: str, snippet: str, rank: float) -> None:
        _set(self, "uri", uri)
        _set(self, "content", content)
        _set(self, "title", title)
        _set(self, "snippet", snippet)
        _set(self, "rank", rank)


def text_terms(text: str) -> list[str]:
    """The index's tokens of ``text``: lower-case runs of letters and digits (what
    FTS5's ``unicode61`` tokenizer indexes, close enough for queries)."""
    return re.findall(r"\w+", text.lower())


def text_rowid(uri: str) -> int:
    """The index row of ``uri``: 63 bits of its BLAKE3 digest, so a source is
    replaced by rowid (FTS5 has no unique column to replace by)."""
    import blake3

    return int.from_bytes(blake3.blake3(uri.encode("utf-8")).digest(length=8)) >> 1


class Unset:
    """Sentinel: no compare-and-swap expectation."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"


ANY = Unset()


def describe(record: RefRecord | None) -> str | None:
    if record is None:
        return None
    return str(record.target) if record.target else f"ref: {record.symbolic}"


def check_expected(
    name: str, expected: RefRecord | Unset | None, current: RefRecord | None
) -> None:
    """The compare of compare-and-swap: raise RefUpdateRejected on a mismatch."""
    if not isinstance(expected, Unset) and expected != current:
        raise RefUpdateRejected(name, describe(expected), describe(current))


# --- writes: one protocol per concern, all inside one transaction ----------------------


class ObjectWrites(Protocol):
    def put(self, oid: ObjectId, type_: ObjectType, size: int, data: bytes) -> None: ...

    def put_many(self, rows: Iterable[tuple[ObjectId, ObjectType, int, bytes]]) -> None: ...

    def delete_objects(self, oids: Iterable[ObjectId]) -> int: ...


class RefWrites(Protocol):
    def read_ref(self, name: str) -> RefRecord | None: ...

    def set_ref(
        self, name: str, record: RefRecord | None, expected: RefRecord | Unset | None = ANY
    ) -> RefRecord | None:
        """Set (or with ``None`` delete) ``name``; returns the previous record.

        If ``expected`` is given and differs from the current record, raises
        RefUpdateRejected and the whole transaction is rolled back.
        """
        ...

    def append_reflog(self, entry: ReflogEntry) -> None: ...

    def delete_reflog(self, ref: str, keep_newest: int = 0) -> int: ...


class RunWrites(Protocol):
    def read_run(self, run_id: str) -> RunRecord | None: ...

    def insert_run(self, run: RunRecord) -> None: ...

    def set_run_stage(self, run_id: str, expected: str, stage: str, time: int) -> bool:
        """Compare-and-swap the run's stage; False (nothing changed) if it is not ``expected``."""
        ...

    def append_transition(self, record: TransitionRecord) -> None: ...

    def set_meta(self, key: str, value: str | None) -> None: ...


class ManifestIndexWrites(Protocol):
    def put_manifest_head(self, oid: ObjectId, head: ManifestHead | None) -> None:
        """Set (``None``: drop) the manifest index row of ``oid``; for repairs."""
        ...


class DerivedWrites(Protocol):
    def put_derived(self, space: str, key: bytes, value: bytes) -> None:
        """Set ``key`` in the derived-data ``space`` (e.g. the git export map)."""
        ...

    def delete_derived(self, space: str, key: bytes) -> None: ...


class OutboxWrites(Protocol):
    def append_outbox(self, event: OutboxEvent) -> None:
        """Queue ``event`` in the outbox; it commits (or rolls back) with the transaction."""
        ...

    def delete_outbox(self, upto: int) -> int:
        """Drop the outbox rows with ``seq <= upto`` (delivered); returns how many."""
        ...


class SecretWrites(Protocol):
    def read_secret(self, name: str) -> SecretRecord | None: ...
    def put_secret(self, record: SecretRecord) -> None:
        """Insert or replace the vault row of ``record.name``."""
        ...


class TextIndexWrites(Protocol):
    def put_text(self, uri: str, content: ObjectId, title: str, body: str) -> None:
        """Index ``body`` and ``title`` of ``uri`` (replacing what ``uri`` had)."""
        ...

    def delete_text(self, uri: str) -> None: ...


class Transaction(
    TextIndexWrites,
    SecretWrites,
    ObjectWrites,
    RefWrites,
    RunWrites,
    ManifestIndexWrites,
    DerivedWrites,
    OutboxWrites,
    Protocol,
):
    """One atomic write: every concern's writes commit together or not at all."""


# --- reads: one protocol per concern ------------------------------------------------------


class ObjectReads(Protocol):
    def has(self, oid: ObjectId) -> bool: ...

    def read(self, oid: ObjectId) -> bytes | None: ...

    def info(self, oid: ObjectId) -> ObjectInfo | None: ...

    def read_with_info(self, oid: ObjectId) -> tuple[ObjectType, int, bytes] | None:
        """Type, size and stored bytes in one lookup (the cat-file --batch path)."""
        ...

    def match_prefix(self, prefix_hex: str, limit: int = 16) -> list[ObjectId]: ...

    def iter_info(self) -> Iterator[ObjectInfo]: ...

    def scan_objects(self, after: int, limit: int, inline_max: int) -> tuple[int, list[ObjectRow]]:
        """Up to ``limit`` objects in storage order after position ``after`` (0: from
        the start) and the position to continue from; a row's bytes are None when
        longer than ``inline_max`` (read those one at a time).  Rows are returned
        whole so that no stream outlives the call; objects stored during a scan
        may or may not be seen.  Made for passes over every object (fsck): one
        sequential read instead of a lookup per id."""
        ...

    def count_estimate(self) -> int:
        """At least the number of stored objects, in constant time (a scan's cost)."""
        ...

    def lookup_objects(self, oids: Sequence[ObjectId], inline_max: int) -> list[ObjectRow]:
        """The stored ones of ``oids`` (any order; absent ids have no row), with bytes
        up to ``inline_max`` long (None when longer; ``inline_max < 0``: never)."""
        ...

    def iter_raw(self) -> Iterator[tuple[ObjectId, bytes]]: ...

    def count(self) -> int: ...


class RefReads(Protocol):
    def read_ref(self, name: str) -> RefRecord | None: ...

    def list_refs(self, prefix: str = "") -> list[tuple[str, RefRecord]]: ...

    def reflog(self, ref: str) -> list[ReflogEntry]:
        """Entries newest first."""
        ...

    def reflog_refs(self) -> list[str]: ...


class RunReads(Protocol):
    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self) -> list[RunRecord]:
        """Runs oldest first."""
        ...

    def transitions(self, run_id: str) -> list[TransitionRecord]:
        """A run's transitions in order (seq ascending)."""
        ...

    def get_meta(self, key: str) -> str | None: ...


class ManifestIndex(Protocol):
    def manifest_head(self, oid: ObjectId) -> ManifestHead | None:
        """The manifest index row of ``oid`` (None if it has none).

        Every manifest put through a transaction gets its row in the same
        transaction, derived from the stored bytes.
        """
        ...

    def manifest_chain(self, oid: ObjectId, limit: int) -> list[tuple[ObjectId, ManifestHead]]:
        """Index rows of ``oid`` and its first-parent ancestors, up to ``limit`` rows, in
        chain order.

        One query for a run of history (a log walk's prefetch); stops early at
        a root or at an ancestor the index lacks.
        """
        ...

    def manifest_rows(self, oid: bytes, limit: int) -> list[HeadRow]:
        """:meth:`manifest_chain` as raw index rows (no objects built per row)."""
        ...

    def relink_manifests(self) -> int:
        """Refresh the index's first-parent links (a speed hint for chains, never
        trusted for correctness); returns how many were fixed."""
        ...

    def iter_manifest_heads(self) -> Iterator[tuple[ObjectId, ManifestHead]]:
        """Every row of the manifest index, in id order (fsck compares them)."""
        ...


class DerivedMaps(Protocol):
    def get_derived(self, space: str, key: bytes) -> bytes | None: ...

    def iter_derived(self, space: str) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs of ``space`` in key order, streamed."""
        ...


class OutboxReads(Protocol):
    def outbox(self, limit: int, after: int = 0) -> list[OutboxEvent]:
        """The oldest ``limit`` undelivered events with ``seq > after``, in the order
        they were queued."""
        ...

    def outbox_count(self) -> int: ...


class SecretReads(Protocol):
    def get_secret(self, name: str) -> SecretRecord | None: ...
    def list_secrets(self) -> list[SecretRecord]:
        """Every vault row (tombstones included), by name."""
        ...


class TextIndex(Protocol):
    def search_text(self, terms: Sequence[str], limit: int) -> list[TextHit]:
        """The indexed sources holding every one of ``terms`` (tokens as
        :func:`text_terms` makes them), best first, at most ``limit``."""
        ...

    def text_count(self) -> int:
        """How many sources the full-text index holds."""
        ...


class ObjectStats(Protocol):
    def object_stats(self) -> list[tuple[str, int, int]]:
        """(type, objects, bytes of content) per object type, by type name."""
        ...


class ErrorCounts(Protocol):
    def count_error(self, code: str, message: str, now: int, wait: float) -> None:
        """Add one occurrence of ``code`` in a transaction of its own, waiting at most
        ``wait`` seconds for the write lock (RepositoryBusy after that)."""
        ...

    def error_counts(self) -> list[ErrorCount]:
        """Every counted code, most frequent first (ties: the latest first)."""
        ...


class Maintenance(Protocol):
    def check_integrity(self) -> list[str]:
        """The storage's own consistency check (page HMACs, structure); empty when sound."""
        ...

    def vacuum(self, full: bool = False) -> None:
        """Give the space freed by deletes back (after gc); ``full`` rebuilds the storage."""
        ...

    def free_pages(self) -> int:
        """Storage pages freed by deletes and not yet given back (0 if not paged)."""
        ...


class Backend(
    TextIndex,
    SecretReads,
    ObjectReads,
    RefReads,
    RunReads,
    ManifestIndex,
    DerivedMaps,
    OutboxReads,
    ErrorCounts,
    ObjectStats,
    Maintenance,
    Protocol,
):
    """An object database plus refs, runs, indexes and the outbox, written through
    one :class:`Transaction`.  See tests/store/test_contract.py."""

    location: str

    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def forbid_writes(self) -> None:
        """Refuse every later write through this handle (ReadOnlyStorage)."""
        ...

    def close(self) -> None: ...


def prefix_range(prefix_hex: str) -> tuple[bytes, bytes | None]:
    """The half-open byte range [lo, hi) of ids starting with ``prefix_hex``."""
    padded_lo = prefix_hex + "0" * (len(prefix_hex) % 2)
    lo = bytes.fromhex(padded_lo)
    # hi = prefix + 1 in hex arithmetic, then padded
    n = int(prefix_hex, 16) + 1
    if n >= 16 ** len(prefix_hex):
        return lo, None
    hi_hex = format(n, f"0{len(prefix_hex)}x")
    hi = bytes.fromhex(hi_hex + "0" * (len(hi_hex) % 2))
    return lo, hi
