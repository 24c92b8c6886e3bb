"""Manifest heads: the envelope fields ``steve log`` needs, and the summary line.

A :class:`ManifestHead` is what the store's manifest index keeps for every
manifest object (kind, time, tz, parents, one-line summary), so a history
walk never decodes a whole manifest.  :func:`read_head` derives it from the
stored bytes; the index is derived data and ``steve fsck`` re-derives and
compares it.
"""

from __future__ import annotations

from typing import Any

from steve.errors import CorruptObject, MalformedObject
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.record import Record

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

SUMMARY_MAX = 100

HeadRow = tuple[bytes, str, int, int, bytes, str]
"""One manifest index row as stored: (oid, kind, time, tz, parents blob, summary).

The parents blob is the parent ids concatenated (32 bytes each, in order).
History walks work on these tuples directly: building objects per row is
most of the cost of ``steve log`` over a long history.
"""


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


class ManifestHead(Record):
    """Envelope fields of one manifest, as kept in the manifest index."""

    __match_args__ = ("kind", "time", "tz", "parents", "summary")
    __slots__ = __match_args__
    kind: ObjectType
    time: int
    tz: int
    parents: tuple[ObjectId, ...]
    summary: str

    def __init__(
        self,
        kind: ObjectType,
        time: int,
        tz: int,
        parents: tuple[ObjectId, ...],
        summary: str,
    ) -> None:
        _set(self, "kind", kind)
        _set(self, "time", time)
        _set(self, "tz", tz)
        _set(self, "parents", parents)
        _set(self, "summary", summary)

    def parents_blob(self) -> bytes:
        return b"".join(p.raw for p in self.parents)

    def row(self, oid: ObjectId) -> HeadRow:
        """This head as an index row of ``oid``."""
        return (oid.raw, self.kind.value, self.time, self.tz, self.parents_blob(), self.summary)

    @classmethod
    def from_row(cls, kind: str, time: int, tz: int, parents: bytes, summary: str) -> ManifestHead:
        return cls(_KINDS[kind], time, tz, split_parents(parents), summary)


def split_parents(blob: bytes) -> tuple[ObjectId, ...]:
    """The parent ids of an index row (concatenated 32-byte ids, checked length)."""
    n = len(blob)
    if n == 32:  # the common case, kept cheap for log walks
        return (ObjectId.trusted(bytes(blob)),)
    if n % 32:
        raise ValueError(f"manifest index parents of {n} bytes")
    return tuple(ObjectId.trusted(bytes(blob[i : i + 32])) for i in range(0, n, 32))


_KINDS = {t.value: t for t in ObjectType}


def read_head(oid_hex: str, data: bytes) -> ManifestHead:
    """The head of the stored manifest ``data`` (trusted decode; CorruptObject if unreadable)."""
    try:
        value = cbor.decode_trusted(data)
        kind = ObjectType(value["type"])
        if not kind.is_manifest:
            raise ValueError(f"not a manifest: {kind.value}")
        parents = tuple(ObjectId(p) for p in value["parents"])
        return ManifestHead(
            kind, int(value["time"]), int(value["tz"]), parents, summarize(kind, value["body"])
        )
    except (MalformedObject, KeyError, TypeError, ValueError) as exc:
        raise CorruptObject(oid_hex, f"unreadable manifest envelope: {exc}") from exc
