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
from typing import Any

from steve.errors import CorruptObject, MalformedObject, ObjectNotFound, WrongObjectType
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo

SUMMARY_MAX = 100


@dataclass(frozen=True, slots=True)
class LogEntry:
    oid: ObjectId
    kind: ObjectType
    time: int
    tz: int
    parents: tuple[ObjectId, ...]
    summary: str


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 3] + "..."


def summarize(kind: ObjectType, body: Any) -> str:
    """The one-line subject of a manifest (``%s``), from its raw body; never raises."""
    if not isinstance(body, dict):
        return ""
    get = body.get
    if kind is ObjectType.DESIGN:
        intent = get("intent")
        summary = _text(intent.get("summary")) if isinstance(intent, dict) else ""
        text = f"{_text(get('name'))}: {summary}" if summary else _text(get("name"))
    elif kind is ObjectType.RESEARCH:
        sources = get("sources")
        n = len(sources) if isinstance(sources, list) else 0
        text = f"{_text(get('title'))} ({n} source{'s' if n != 1 else ''})"
    elif kind is ObjectType.PLAN:
        nodes = get("nodes")
        n = len(nodes) if isinstance(nodes, list) else 0
        text = f"{_text(get('title'))} ({n} node{'s' if n != 1 else ''})"
    elif kind is ObjectType.BUILD_RECEIPT:
        text = f"node {_text(get('node'))}: exit {get('exit_status')}"
    elif kind is ObjectType.TEST_CERTIFICATE:
        failures = get("failures")
        n = len(failures) if isinstance(failures, list) else 0
        text = f"{_text(get('verdict'))} ({n} failure{'s' if n != 1 else ''})"
        if get("override"):
            text += " OVERRIDDEN"
    elif kind is ObjectType.DEPLOY_RECEIPT:
        decision = get("decision")
        verdict = _text(decision.get("decision")) if isinstance(decision, dict) else ""
        text = f"{verdict} deploy to {_text(get('target'))}"
    else:
        text = ""
    if get("amends"):
        text = f"amend {_text(get('amends'))[:12]}: {text}"
    return _first_line(text)


def read_entry(repo: Repo, oid: ObjectId) -> LogEntry:
    """Decode just the envelope of the manifest ``oid`` (tags are not peeled here)."""
    data = repo.backend.read(oid)
    if data is None:
        raise ObjectNotFound(oid.hex)
    try:
        value = cbor.decode_trusted(data)
        kind = ObjectType(value["type"])
        if not kind.is_manifest:
            raise WrongObjectType(oid.hex, "manifest", kind.value)
        parents = tuple(ObjectId(p) for p in value["parents"])
        return LogEntry(
            oid, kind, int(value["time"]), int(value["tz"]), parents, summarize(kind, value["body"])
        )
    except (MalformedObject, KeyError, TypeError, ValueError) as exc:
        raise CorruptObject(oid.hex, f"unreadable manifest envelope: {exc}") from exc


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
    seen: set[bytes] = set()
    heap: list[tuple[int, int, LogEntry]] = []
    order = 0
    for start in starts:
        oid = peel_to_manifest(repo, start)
        if oid.raw in seen:
            continue
        seen.add(oid.raw)
        entry = read_entry(repo, oid)
        heap.append((-entry.time, order, entry))
        order += 1
    heapq.heapify(heap)
    shown = 0
    while heap:
        _, _, entry = heapq.heappop(heap)
        for parent in entry.parents:
            if parent.raw not in seen:
                seen.add(parent.raw)
                p = read_entry(repo, parent)
                heapq.heappush(heap, (-p.time, order, p))
                order += 1
        if wanted is None or entry.kind in wanted:
            yield entry
            shown += 1
            if limit is not None and shown >= limit:
                return


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


def format_entry(fmt: str, entry: LogEntry, abbrev: int = 12) -> str:
    """Expand ``%H %h %s %ad %at %k %p %P %n %%`` in ``fmt`` (others stay as typed)."""
    return "".join(
        _FIELDS[value](entry, abbrev) if is_field else value
        for is_field, value in compile_format(fmt)
    )


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
