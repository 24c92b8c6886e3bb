"""Source records: what RESEARCH mirrored, kept as objects and found by URL.

A fetched page is two objects: its full bytes as a blob (the same bytes
fetched twice are one object) and a *source record*, a canonical-CBOR blob
that says where the bytes came from (the URL asked for, the final URL after
redirects, the status, the headers that matter, when, how long).  The ref
``refs/research/mirror/<key>`` (``key`` = BLAKE3 of the URL, see
:func:`url_key`) names a tree of the latest fetch of each URL, with the
entries ``content`` and ``record``: the ref reaches both objects, so ``gc``
keeps a mirrored page (a record blob alone would not: gc does not read ids
inside blobs).  The ref's reflog is the URL's fetch history, so ``steve
research refresh`` keeps the old fetch and the new one side by side.

    >>> oid = put_source(repo, tx, record, content, now=t)   # one transaction
    >>> lookup(repo, "https://example.org/a")                 # (record id, record) or None
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag

import blake3

from steve.errors import CorruptObject, MalformedObject
from steve.objects import cbor
from steve.objects.model import (
    Blob,
    Mode,
    ObjectType,
    Tree,
    TreeEntry,
    hash_object,
    object_size,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo, RepoTransaction, write_blob_stream

__all__ = [
    "MIRROR_PREFIX",
    "SOURCE_TYPE",
    "SourceRecord",
    "as_source",
    "lookup",
    "mirrored",
    "put_source",
    "read_source",
    "record_id",
    "url_key",
]

SOURCE_TYPE = "research.source"
MIRROR_PREFIX = "refs/research/mirror/"


def url_key(url: str) -> str:
    """The mirror key of ``url``: BLAKE3 of the URL without its fragment (a fragment
    never reaches the server, so ``page#a`` and ``page#b`` are one mirrored page)."""
    return blake3.blake3(urldefrag(url).url.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where one mirrored content blob came from."""

    url: str  # as asked for
    final_url: str  # after redirects
    status: int
    media_type: str  # lower case, no parameters ("text/html")
    content: ObjectId  # the blob of the full response body
    size: int
    fetched_at: int  # unix seconds
    elapsed_ms: int = 0
    charset: str | None = None
    redirects: tuple[str, ...] = ()  # every URL in between, in order
    headers: Mapping[str, str] = field(default_factory=dict)  # the ones that matter

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": SOURCE_TYPE,
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "media_type": self.media_type,
            "content": self.content.raw,
            "size": self.size,
            "fetched_at": self.fetched_at,
            "elapsed_ms": self.elapsed_ms,
            "redirects": list(self.redirects),
            "headers": dict(sorted(self.headers.items())),
        }
        if self.charset is not None:
            out["charset"] = self.charset
        return out

    @classmethod
    def from_record(cls, value: object, where: str = "source record") -> SourceRecord:
        if not isinstance(value, dict) or value.get("type") != SOURCE_TYPE:
            raise MalformedObject(f"{where}: not a {SOURCE_TYPE} record")
        try:
            headers = value["headers"]
            redirects = value["redirects"]
            content = value["content"]
            if not isinstance(headers, dict) or not isinstance(redirects, list):
                raise TypeError("headers or redirects")
            if not isinstance(content, bytes):
                raise TypeError("content")
            return cls(
                url=_str(value["url"]),
                final_url=_str(value["final_url"]),
                status=_int(value["status"]),
                media_type=_str(value["media_type"]),
                content=ObjectId(content),
                size=_int(value["size"]),
                fetched_at=_int(value["fetched_at"]),
                elapsed_ms=_int(value["elapsed_ms"]),
                charset=None if value.get("charset") is None else _str(value["charset"]),
                redirects=tuple(_str(r) for r in redirects),
                headers={_str(k): _str(v) for k, v in headers.items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedObject(f"{where}: {exc}") from None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def put_source(
    repo: Repo, tx: RepoTransaction, record: SourceRecord, content: bytes, *, now: int
) -> ObjectId:
    """Store ``content`` and ``record`` in ``tx`` and move the URL's mirror ref to a
    tree of the two (with its ``ref.updated`` and ``research.mirrored`` events);
    returns the record's id.  ``record.content`` must be the id of ``content``."""
    rows: list[tuple[ObjectId, ObjectType, int, bytes]] = []

    def add(obj: Any) -> ObjectId:
        oid, data = hash_object(obj)
        rows.append((oid, obj.type, object_size(obj), data))
        return oid

    content_id = write_blob_stream(io.BytesIO(content), add)
    if content_id != record.content:
        raise ValueError(f"record names {record.content.hex}, content is {content_id.hex}")
    rec_id = add(Blob(cbor.encode(record.to_record())))
    fetch_id = add(
        Tree.from_entries(
            [TreeEntry("content", Mode.FILE, content_id), TreeEntry("record", Mode.FILE, rec_id)]
        )
    )
    tx.put_many(rows)
    name = MIRROR_PREFIX + url_key(record.url)
    current = repo.refs.resolve(name, tx)
    old = None if current is None else current.target
    if old != fetch_id:
        target, previous = repo.refs.update(
            name, fetch_id, old, who=repo.identity, message=f"mirror {record.url}", now=now, tx=tx
        )
        tx.emit(
            "ref.updated",
            {"ref": target, "old": None if previous is None else previous.hex, "new": fetch_id.hex},
        )
    tx.emit(
        "research.mirrored",
        {
            "url": record.url,
            "final_url": record.final_url,
            "record": rec_id.hex,
            "content": record.content.hex,
            "size": record.size,
            "previous": None if old is None else record_id(repo, old).hex,
        },
    )
    return rec_id


def record_id(repo: Repo, fetch: ObjectId) -> ObjectId:
    """The source record's id in the mirror tree ``fetch`` (what a mirror ref and its
    reflog name)."""
    tree = repo.read_typed(fetch, ObjectType.TREE)
    assert isinstance(tree, Tree)
    for entry in tree.entries:
        if entry.name == "record":
            return entry.oid
    raise CorruptObject(fetch.hex, "a mirror tree without a record entry")


def read_source(repo: Repo, oid: ObjectId) -> SourceRecord:
    """The source record ``oid`` (CorruptObject if the blob is not one)."""
    try:
        return SourceRecord.from_record(cbor.decode(repo.read_blob(oid)), f"source {oid.hex}")
    except MalformedObject as exc:
        raise CorruptObject(oid.hex, exc.detail) from exc


def lookup(repo: Repo, url: str) -> tuple[ObjectId, SourceRecord] | None:
    """The latest mirrored record of ``url``, or None when it was never mirrored."""
    ref = repo.refs.resolve(MIRROR_PREFIX + url_key(url))
    if ref is None or ref.target is None:
        return None
    rec = record_id(repo, ref.target)
    return rec, read_source(repo, rec)


def mirrored(repo: Repo) -> Iterator[tuple[ObjectId, SourceRecord]]:
    """Every URL's latest record, in ref order."""
    for ref in repo.list_refs(MIRROR_PREFIX):
        if ref.target is not None:
            rec = record_id(repo, ref.target)
            yield rec, read_source(repo, rec)


SOURCE_PEEK = 64 * 1024
"""A blob longer than this is never a source record (records are a few hundred bytes)."""


def as_source(repo: Repo, oid: ObjectId, size: int) -> SourceRecord | None:
    """The source record blob ``oid`` of ``size`` bytes holds, or None when it is not one
    (what ``steve cat`` asks before printing a blob)."""
    if size > SOURCE_PEEK:
        return None
    try:
        value = cbor.decode(repo.read_blob(oid))
    except (MalformedObject, ValueError):
        return None
    if not isinstance(value, dict) or value.get("type") != SOURCE_TYPE:
        return None
    return SourceRecord.from_record(value, f"source {oid.hex}")
