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
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from steve.errors import ObjectNotFound, WrongObjectType
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.summary import ManifestHead, read_head, summarize
from steve.repo import Repo

__all__ = ["LogEntry", "read_entry", "summarize", "walk"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    oid: ObjectId
    kind: ObjectType
    time: int
    tz: int
    parents: tuple[ObjectId, ...]
    summary: str


def read_entry(repo: Repo, oid: ObjectId) -> LogEntry:
    """The envelope of the manifest ``oid`` (tags are not peeled here).

    Read from the store's manifest index (one small row, no decoding); an
    object the index lacks is decoded instead.
    """
    head = repo.backend.manifest_head(oid)
    if head is None:
        found = repo.backend.read_with_info(oid)
        if found is None:
            raise ObjectNotFound(oid.hex)
        kind, _, data = found
        if not kind.is_manifest:
            raise WrongObjectType(oid.hex, "manifest", kind.value)
        head = read_head(oid.hex, data)
    return _entry(oid, head)


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
    if limit is not None and limit <= 0:
        return
    wanted = None if kinds is None else frozenset(kinds)
    fetch = _Prefetch(repo)
    seen: set[bytes] = set()
    heap: list[tuple[int, int, LogEntry]] = []
    order = 0
    for start in starts:
        oid = peel_to_manifest(repo, start)
        if oid.raw in seen:
            continue
        seen.add(oid.raw)
        entry = fetch.entry(oid)
        heap.append((-entry.time, order, entry))
        order += 1
    heapq.heapify(heap)
    shown = 0
    while heap:
        _, _, entry = heapq.heappop(heap)
        for parent in entry.parents:
            if parent.raw not in seen:
                seen.add(parent.raw)
                p = fetch.entry(parent)
                heapq.heappush(heap, (-p.time, order, p))
                order += 1
        if wanted is None or entry.kind in wanted:
            yield entry
            shown += 1
            if limit is not None and shown >= limit:
                return


class _Prefetch:
    """Index rows read ahead along first-parent chains, one query per run of history.

    A miss fetches the missed manifest and up to ``batch`` first-parent
    ancestors (the batch doubles up to ``MAX``, so ``log -n 1`` reads one
    short run).  Rows are dropped once used; the cache is cleared if it
    outgrows ``MAX`` (ancestors reached another way first), so memory stays
    bounded whatever the shape of the history.
    """

    FIRST = 64
    MAX = 8192

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.cache: dict[bytes, ManifestHead] = {}
        self.batch = self.FIRST

    def entry(self, oid: ObjectId) -> LogEntry:
        head = self.cache.pop(oid.raw, None)
        if head is None:
            if len(self.cache) > self.MAX:
                self.cache.clear()
            rows = self.repo.backend.manifest_chain(oid, self.batch)
            self.batch = min(self.batch * 2, self.MAX)
            if not rows:
                return read_entry(self.repo, oid)
            for got, h in rows[1:]:
                self.cache[got.raw] = h
            head = rows[0][1]
        return _entry(oid, head)


# --- formatting helpers (pure; the CLI prints) -------------------------------------------


def format_date(stamp: int, tz: int) -> str:
    """git's default date format: ``Thu Nov 14 22:13:20 2023 +0000``."""
    sign = "+" if tz >= 0 else "-"
    hours, minutes = divmod(abs(tz), 60)
    local = time.gmtime(stamp + tz * 60)
    return time.strftime("%a %b %d %H:%M:%S %Y", local) + f" {sign}{hours:02d}{minutes:02d}"


_FIELDS: dict[str, Callable[[LogEntry, int], str]] = {
    "ad": lambda e, n: format_date(e.time, e.tz),
    "at": lambda e, n: str(e.time),
    "H": lambda e, n: e.oid.hex,
    "h": lambda e, n: e.oid.short(n),
    "s": lambda e, n: e.summary,
    "k": lambda e, n: e.kind.value,
    "P": lambda e, n: " ".join(p.hex for p in e.parents),
    "p": lambda e, n: " ".join(p.short(n) for p in e.parents),
}
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
            for candidate in ("ad", "at", "H", "h", "s", "k", "P", "p", "n", "%"):
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
def _formatter(fmt: str, abbrev: int) -> Callable[[LogEntry], str]:
    """``fmt`` compiled once into one function (the per-entry cost of ``steve log``)."""
    parts = compile_format(fmt)
    if all(is_field and value in _FAST for is_field, value in parts[::2]) and all(
        not is_field for is_field, _ in parts[1::2]
    ):
        # the usual shapes (``%h %k %s``, ``%H``): field, literal, field, ...
        fields = [_FAST[value] for value in (v for f, v in parts[::2])]
        seps = [value for _, value in parts[1::2]]

        def fast(entry: LogEntry) -> str:
            out = [fields[0](entry, abbrev)]
            for sep, field in zip(seps, fields[1:], strict=False):
                out.append(sep)
                out.append(field(entry, abbrev))
            if len(seps) == len(fields):
                out.append(seps[-1])
            return "".join(out)

        return fast

    def general(entry: LogEntry) -> str:
        return "".join(
            _FIELDS[value](entry, abbrev) if is_field else value for is_field, value in parts
        )

    return general


_FAST: dict[str, Callable[[LogEntry, int], str]] = {
    "H": lambda e, n: e.oid.raw.hex(),
    "h": lambda e, n: e.oid.raw.hex()[:n],
    "s": lambda e, n: e.summary,
    "k": lambda e, n: e.kind._value_,
}


def format_entry(fmt: str, entry: LogEntry, abbrev: int = 12) -> str:
    """Expand ``%H %h %s %ad %at %k %p %P %n %%`` in ``fmt`` (others stay as typed)."""
    return _formatter(fmt, abbrev)(entry)


class Graph:
    """A simple lane graph for ``log --graph``: one column per line of descent.

    Each call to :meth:`prefix` returns the lane marks for the next entry
    (``*`` for the entry, ``|`` for other open lanes).  Merge and fork
    connectors are not drawn; lanes appear and close instead.
    """

    def __init__(self) -> None:
        self.lanes: list[bytes] = []

    def prefix(self, entry: LogEntry) -> str:
        raw = entry.oid.raw
        if raw in self.lanes:
            col = self.lanes.index(raw)
        else:
            self.lanes.append(raw)
            col = len(self.lanes) - 1
        marks = " ".join("*" if i == col else "|" for i in range(len(self.lanes)))
        parents = [p.raw for p in entry.parents]
        rest = [lane for i, lane in enumerate(self.lanes) if i != col and lane != raw]
        new_lanes = rest[:col]
        if parents and parents[0] not in rest:
            new_lanes.append(parents[0])
        new_lanes += rest[col:]
        for p in parents[1:]:
            if p not in new_lanes:
                new_lanes.append(p)
        self.lanes = new_lanes
        return marks + " "
