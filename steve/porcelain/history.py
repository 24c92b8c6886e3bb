"""History: walking manifest parents like ``git log``.

:func:`walk` is a generator: it keeps a heap frontier ordered newest first
(time descending; equal times in the order they were queued, as git's
commit queue does, so with equal times a child always comes before its
parents and the order is still deterministic) and a set of ids already queued, reads
one object per step and yields each manifest as soon as it is the newest
one left.  The first entry is out after reading the start objects, and the
memory held is the frontier plus the seen set (32-byte ids), never the
history.  It reads envelopes straight from the stored CBOR (no schema
models), so ``steve log`` never imports pydantic.
"""

from __future__ import annotations

import functools
import heapq
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from steve.errors import ObjectNotFound, WrongObjectType
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import HeadRow, ManifestHead, read_head, split_parents, summarize
from steve.porcelain.escape import escape_text
from steve.record import Record
from steve.repo import Repo

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

__all__ = ["LogEntry", "entry_of", "read_entry", "summarize", "walk", "walk_rows"]


class LogEntry(Record):
    __match_args__ = ("oid", "kind", "time", "tz", "parents", "summary")
    __slots__ = __match_args__
    oid: ObjectId
    kind: ObjectType
    time: int
    tz: int
    parents: tuple[ObjectId, ...]
    summary: str

    def __init__(
        self,
        oid: ObjectId,
        kind: ObjectType,
        time: int,
        tz: int,
        parents: tuple[ObjectId, ...],
        summary: str,
    ) -> None:
        _set(self, "oid", oid)
        _set(self, "kind", kind)
        _set(self, "time", time)
        _set(self, "tz", tz)
        _set(self, "parents", parents)
        _set(self, "summary", summary)


def read_entry(repo: Repo, oid: ObjectId) -> LogEntry:
    """The envelope of the manifest ``oid`` (tags are not peeled here).

    Read from the store's manifest index (one small row, no decoding); an
    object the index lacks is decoded instead.
    """
    head = repo.manifest_head(oid)
    return _entry(oid, head if head is not None else _decode_head(repo, oid))


def _decode_head(repo: Repo, oid: ObjectId) -> ManifestHead:
    """The head of a manifest the index lacks, decoded from its stored bytes."""
    found = repo.read_with_info(oid)
    if found is None:
        raise ObjectNotFound(oid.hex)
    kind, _, data = found
    if not kind.is_manifest:
        raise WrongObjectType(oid.hex, "manifest", kind.value)
    return read_head(oid.hex, data)


def _entry(oid: ObjectId, head: ManifestHead) -> LogEntry:
    return LogEntry(oid, head.kind, head.time, head.tz, head.parents, head.summary)


def peel_to_manifest(repo: Repo, oid: ObjectId) -> ObjectId:
    """Follow tags from ``oid``; the result must be a manifest."""
    for _ in range(64):
        kind = repo.object_type(oid)
        if kind.is_manifest:
            return oid
        if kind is not ObjectType.TAG:
            raise WrongObjectType(oid.hex, "manifest", kind.value)
        data = repo.read_raw(oid)
        oid = ObjectId(cbor.decode_trusted(data)["object"])
    raise WrongObjectType(oid.hex, "manifest", "tag")


def walk(
    repo: Repo,
    starts: Iterable[ObjectId],
    *,
    kinds: Sequence[ObjectType] | None = None,
    limit: int | None = None,
) -> Iterator[LogEntry]:
    """Manifests reachable from ``starts`` through parents, newest first (streamed).

    ``kinds`` filters what is yielded (the walk still passes through other
    kinds); ``limit`` stops after that many entries.
    """
    for row in walk_rows(repo, starts, kinds=kinds, limit=limit):
        yield entry_of(row)


def entry_of(row: HeadRow) -> LogEntry:
    """The :class:`LogEntry` of one index row."""
    oid, kind, stamp, tz, parents, summary = row
    return LogEntry(ObjectId.trusted(oid), _KINDS[kind], stamp, tz, split_parents(parents), summary)


_KINDS = {t.value: t for t in ObjectType}


def walk_rows(
    repo: Repo,
    starts: Iterable[ObjectId],
    *,
    kinds: Sequence[ObjectType] | None = None,
    limit: int | None = None,
) -> Iterator[HeadRow]:
    """:func:`walk` as raw index rows: the same order, no objects built per manifest.

    The frontier is a heap keyed (-time, queue order).  A run of single-parent
    history whose next parent is newer than everything queued never touches
    the heap: the parent is simply the next entry, which is what the heap
    would have popped.
    """
    if limit is not None and limit <= 0:
        return
    wanted = None if kinds is None else frozenset(k.value for k in kinds)
    fetch = _Prefetch(repo).row
    seen: set[bytes] = set()
    heap: list[tuple[int, int, HeadRow]] = []
    order = 0
    for start in starts:
        raw = peel_to_manifest(repo, start).raw
        if raw in seen:
            continue
        seen.add(raw)
        row = fetch(raw)
        heap.append((-row[2], order, row))
        order += 1
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    left = -1 if limit is None else limit
    while heap:
        row = pop(heap)[2]
        while True:
            parents = row[4]
            after: HeadRow | None = None
            if len(parents) == 32:  # the common case: one parent
                if parents not in seen:
                    seen.add(parents)
                    parent = fetch(parents)
                    if not heap or -parent[2] < heap[0][0]:
                        after = parent
                    else:
                        push(heap, (-parent[2], order, parent))
                        order += 1
            else:
                for i in range(0, len(parents), 32):
                    praw = parents[i : i + 32]
                    if praw not in seen:
                        seen.add(praw)
                        parent = fetch(praw)
                        push(heap, (-parent[2], order, parent))
                        order += 1
            if wanted is None or row[1] in wanted:
                yield row
                left -= 1
                if left == 0:
                    return
            if after is None:
                break
            row = after


class _Prefetch:
    """Index rows read ahead along first-parent chains, one query per run of history.

    A miss fetches the missed manifest and up to ``batch`` first-parent
    ancestors (the batch doubles up to ``MAX``, so ``log -n 1`` reads one
    short run).  A linear walk asks for exactly those rows in that order
    and is served from the chain by position; rows left over when the walk
    turns elsewhere are kept in a cache that is cleared if it outgrows
    ``MAX`` (ancestors reached another way first), so memory stays bounded
    whatever the shape of the history.
    """

    FIRST = 64
    MAX = 8192

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.chain: list[HeadRow] = []
        self.at = 0
        self.cache: dict[bytes, HeadRow] = {}
        self.batch = self.FIRST

    def row(self, raw: bytes) -> HeadRow:
        chain, at = self.chain, self.at
        if at < len(chain):
            row = chain[at]
            if row[0] == raw:
                self.at = at + 1
                return row
        return self._miss(raw)

    def _miss(self, raw: bytes) -> HeadRow:
        cache = self.cache
        if self.at < len(self.chain):
            if len(cache) > self.MAX:
                cache.clear()
            for row in self.chain[self.at :]:
                cache[row[0]] = row
        self.chain, self.at = [], 0
        found = cache.pop(raw, None)
        if found is not None:
            return found
        rows = self.repo.manifest_rows(raw, self.batch)
        self.batch = min(self.batch * 2, self.MAX)
        if not rows:
            oid = ObjectId(raw)
            return _decode_head(self.repo, oid).row(oid)
        self.chain, self.at = rows, 1
        return rows[0]


# --- formatting helpers (pure; the CLI prints) -------------------------------------------


def format_date(stamp: int, tz: int) -> str:
    """git's default date format: ``Thu Nov 14 22:13:20 2023 +0000``."""
    sign = "+" if tz >= 0 else "-"
    hours, minutes = divmod(abs(tz), 60)
    local = time.gmtime(stamp + tz * 60)
    return time.strftime("%a %b %d %H:%M:%S %Y", local) + f" {sign}{hours:02d}{minutes:02d}"


def _short(n: int) -> Callable[[bytes], str]:
    """Hex of the first ``n`` digits of a raw id, converting only the bytes needed."""
    k = (n + 1) // 2
    if n >= 64:
        return bytes.hex
    if n % 2 == 0:
        return lambda raw: raw[:k].hex()
    return lambda raw: raw[:k].hex()[:n]


def _ids(blob: bytes, hexer: Callable[[bytes], str]) -> str:
    return " ".join(hexer(blob[i : i + 32]) for i in range(0, len(blob), 32))


def _field(name: str, n: int) -> Callable[[HeadRow], str]:
    """The getter of placeholder ``name`` on an index row (``n``: short-id length)."""
    if name == "H":
        return lambda r: r[0].hex()
    if name == "h":
        short = _short(n)
        return lambda r: short(r[0])
    if name == "s":  # text from the manifest: shown escaped (escape_text)
        return lambda r: escape_text(r[5], one_line=True)
    if name == "k":
        return operator.itemgetter(1)
    if name == "at":
        return lambda r: str(r[2])
    if name == "ad":
        return lambda r: format_date(r[2], r[3])
    if name == "P":
        return lambda r: _ids(r[4], bytes.hex)
    if name == "p":
        short = _short(n)
        return lambda r: _ids(r[4], short)
    raise ValueError(f"unknown placeholder %{name}")


_NAMES = ("ad", "at", "H", "h", "s", "k", "P", "p", "n", "%")
_LITERALS = {"n": "\n", "%": "%"}


@functools.lru_cache(maxsize=32)
def compile_format(fmt: str) -> tuple[tuple[bool, str], ...]:
    """Split ``fmt`` once into literal text and placeholder names."""
    parts: list[tuple[bool, str]] = []
    text: list[str] = []
    i = 0
    while i < len(fmt):
        name = None
        if fmt[i] == "%":
            for candidate in _NAMES:
                if fmt.startswith(candidate, i + 1):
                    name = candidate
                    break
        if name is None:
            text.append(fmt[i])
            i += 1
        elif name in _LITERALS:
            text.append(_LITERALS[name])
            i += 1 + len(name)
        else:
            if text:
                parts.append((False, "".join(text)))
                text = []
            parts.append((True, name))
            i += 1 + len(name)
    if text:
        parts.append((False, "".join(text)))
    return tuple(parts)


@functools.lru_cache(maxsize=32)
def row_formatter(fmt: str, abbrev: int = 12) -> Callable[[HeadRow], str]:
    """``fmt`` compiled once into one function of an index row (the per-entry cost of
    ``steve log``): literals go into a ``str.format`` template, placeholders become
    getters, and the usual shapes (up to four placeholders) call them without a loop."""
    template: list[str] = []
    fields: list[Callable[[HeadRow], str]] = []
    for is_field, value in compile_format(fmt):
        if is_field:
            template.append("{}")
            fields.append(_field(value, abbrev))
        else:
            template.append(value.replace("{", "{{").replace("}", "}}"))
    fill = "".join(template).format
    if not fields:
        text = fill()
        return lambda r: text
    if len(fields) == 1:
        (f0,) = fields
        return lambda r: fill(f0(r))
    if len(fields) == 2:
        f0, f1 = fields
        return lambda r: fill(f0(r), f1(r))
    if len(fields) == 3:
        f0, f1, f2 = fields
        return lambda r: fill(f0(r), f1(r), f2(r))
    if len(fields) == 4:
        f0, f1, f2, f3 = fields
        return lambda r: fill(f0(r), f1(r), f2(r), f3(r))
    return lambda r: fill(*[f(r) for f in fields])


def format_entry(fmt: str, entry: LogEntry, abbrev: int = 12) -> str:
    """Expand ``%H %h %s %ad %at %k %p %P %n %%`` in ``fmt`` (others stay as typed)."""
    parents = b"".join(p.raw for p in entry.parents)
    row = (entry.oid.raw, entry.kind.value, entry.time, entry.tz, parents, entry.summary)
    return row_formatter(fmt, abbrev)(row)
