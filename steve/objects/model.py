"""The object model: typed envelopes around canonical CBOR.

Every object is the canonical CBOR encoding of a map with at least
``{"type": <text>, "v": <schema version>}``; its id is BLAKE3-256 of those
bytes.  The types:

``blob``
    ``{"type": "blob", "v": 1, "data": <bytes>}`` for content of at most
    :data:`CHUNK_SIZE` bytes, or ``{"type": "blob", "v": 1, "size": N,
    "chunks": [[<id>, <len>], ...]}`` for larger content, cut into fixed
    chunks of :data:`CHUNK_SIZE` bytes (the last may be shorter), each chunk
    a small blob.  Which form is used depends only on the length, so equal
    content always gets the same id.
``tree``
    ``{"type": "tree", "v": 1, "entries": [[name, mode, id], ...]}`` sorted
    by the UTF-8 bytes of ``name``; modes are git's (100644, 100755, 120000,
    040000).
``tag``
    an annotated tag: target id and type, tag name, tagger, time, offset,
    message; a *signed* tag (``"v": 2``) adds ``signatures``, a list of
    signature entries (:mod:`steve.objects.signatures`) over the tag without
    that field, purpose ``tag``.
manifests (``design`` ... ``deploy_receipt``)
    ``{"type": kind, "v": N, "parents": [ids], "links": [ids], "time": T,
    "tz": minutes, "body": {...}}``: ``parents`` are the manifests it builds
    on (the history DAG), ``links`` every other object the body refers to,
    sorted, so history walks, fsck and gc need no knowledge of the schemas.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias

from steve.errors import MalformedObject
from steve.objects import cbor
from steve.objects.oid import OID_BYTES, ObjectId
from steve.objects.signatures import (
    SignatureEntry,
    parse_signatures,
    signatures_value,
    signing_input,
)
from steve.record import Record

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

CHUNK_SIZE = 1 << 20  # 1 MiB

TIME_MIN = 0
TIME_MAX = 253_402_300_799
"""The range of every object time (tags, manifests), in unix seconds:
1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.  git's timestamps (unsigned,
no sign allowed), SQLite's INTEGER and Python's datetime all hold it, so an
object that decodes also displays, indexes and exports to git."""
TZ_MAX = 24 * 60 - 1
"""Offsets from UTC are -TZ_MAX..TZ_MAX minutes (git's +HHMM holds them)."""


def check_time(time: int, tz: int, where: str) -> None:
    """Raise MalformedObject unless ``time`` and ``tz`` lie in the documented range."""
    if type(time) is not int or not TIME_MIN <= time <= TIME_MAX:
        raise MalformedObject(
            f"{where}.time {time!r} outside {TIME_MIN}..{TIME_MAX} (unix seconds up to year 9999)"
        )
    if type(tz) is not int or not -TZ_MAX <= tz <= TZ_MAX:
        raise MalformedObject(f"{where}.tz {tz!r} outside -{TZ_MAX}..{TZ_MAX} minutes")


class ObjectType(enum.StrEnum):
    BLOB = "blob"
    TREE = "tree"
    TAG = "tag"
    DESIGN = "design"
    RESEARCH = "research"
    PLAN = "plan"
    BUILD_RECEIPT = "build_receipt"
    TEST_CERTIFICATE = "test_certificate"
    DEPLOY_RECEIPT = "deploy_receipt"

    @property
    def is_manifest(self) -> bool:
        return self not in (ObjectType.BLOB, ObjectType.TREE, ObjectType.TAG)

    @classmethod
    def parse(cls, text: str) -> ObjectType:
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise MalformedObject(f"unknown object type {text!r} (known: {names})") from None


MANIFEST_TYPES = tuple(t for t in ObjectType if t.is_manifest)


class Mode(enum.IntEnum):
    """Tree entry modes, numerically git's."""

    FILE = 0o100644
    EXECUTABLE = 0o100755
    SYMLINK = 0o120000
    TREE = 0o040000

    @property
    def git(self) -> str:
        return f"{self.value:06o}"

    @property
    def object_type(self) -> ObjectType:
        return ObjectType.TREE if self is Mode.TREE else ObjectType.BLOB


_BAD_NAME = re.compile(r"[/\x00]")


def check_entry_name(name: str) -> None:
    if not name or name in (".", "..") or _BAD_NAME.search(name) or name == ".steve":
        raise MalformedObject(f"invalid tree entry name {name!r}")


# --- typed objects ----------------------------------------------------------------


class Blob(Record):
    __match_args__ = ("data",)
    __slots__ = __match_args__
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", data)

    type = ObjectType.BLOB

    @property
    def size(self) -> int:
        return len(self.data)

    def to_value(self) -> dict[str, Any]:
        if len(self.data) > CHUNK_SIZE:
            raise MalformedObject(f"inline blob larger than {CHUNK_SIZE} bytes; chunk it")
        return {"type": "blob", "v": 1, "data": self.data}

    def references(self) -> list[ObjectId]:
        return []


class ChunkedBlob(Record):
    __match_args__ = ("size", "chunks")
    __slots__ = __match_args__
    size: int
    chunks: tuple[tuple[ObjectId, int], ...]

    def __init__(self, size: int, chunks: tuple[tuple[ObjectId, int], ...]) -> None:
        _set(self, "size", size)
        _set(self, "chunks", chunks)

    type = ObjectType.BLOB

    def to_value(self) -> dict[str, Any]:
        _check_chunks(self.size, self.chunks)
        return {
            "type": "blob",
            "v": 1,
            "size": self.size,
            "chunks": [[oid.raw, n] for oid, n in self.chunks],
        }

    def references(self) -> list[ObjectId]:
        return [oid for oid, _ in self.chunks]


def _check_chunks(size: int, chunks: Sequence[tuple[ObjectId, int]]) -> None:
    if size <= CHUNK_SIZE:
        raise MalformedObject(f"chunked blob of {size} bytes must be stored inline")
    if sum(n for _, n in chunks) != size:
        raise MalformedObject("chunk lengths do not add up to the blob size")
    for i, (_, n) in enumerate(chunks):
        last = i == len(chunks) - 1
        if not (0 < n <= CHUNK_SIZE) or (not last and n != CHUNK_SIZE):
            raise MalformedObject(f"chunk {i} has length {n}; chunks are {CHUNK_SIZE} bytes")


class TreeEntry(Record):
    __match_args__ = ("name", "mode", "oid")
    __slots__ = __match_args__
    name: str
    mode: Mode
    oid: ObjectId

    def __init__(self, name: str, mode: Mode, oid: ObjectId) -> None:
        _set(self, "name", name)
        _set(self, "mode", mode)
        _set(self, "oid", oid)


class Tree(Record):
    __match_args__ = ("entries",)
    __slots__ = __match_args__
    entries: tuple[TreeEntry, ...]

    def __init__(self, entries: tuple[TreeEntry, ...]) -> None:
        _set(self, "entries", entries)

    type = ObjectType.TREE

    @classmethod
    def from_entries(cls, entries: Sequence[TreeEntry]) -> Tree:
        ordered = tuple(sorted(entries, key=lambda e: e.name.encode()))
        tree = cls(ordered)
        tree.validate()
        return tree

    def validate(self) -> None:
        prev: bytes | None = None
        for e in self.entries:
            check_entry_name(e.name)
            key = e.name.encode()
            if prev is not None and key <= prev:
                raise MalformedObject(f"tree entries not sorted or duplicated at {e.name!r}")
            prev = key

    def to_value(self) -> dict[str, Any]:
        self.validate()
        return {
            "type": "tree",
            "v": 1,
            "entries": [[e.name, int(e.mode), e.oid.raw] for e in self.entries],
        }

    def references(self) -> list[ObjectId]:
        return [e.oid for e in self.entries]

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)


class Person(Record):
    __match_args__ = ("name", "email")
    __slots__ = __match_args__
    name: str
    email: str

    def __init__(self, name: str, email: str) -> None:
        _set(self, "name", name)
        _set(self, "email", email)

    def to_value(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email}

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Tag(Record):
    __match_args__ = (
        "object",
        "object_type",
        "name",
        "tagger",
        "time",
        "tz",
        "message",
        "signatures",
    )
    __slots__ = __match_args__
    object: ObjectId
    object_type: ObjectType
    name: str
    tagger: Person
    time: int
    tz: int  # offset from UTC in minutes
    message: str
    signatures: tuple[SignatureEntry, ...]  # a signed tag (v2) when not empty

    def __init__(
        self,
        object: ObjectId,
        object_type: ObjectType,
        name: str,
        tagger: Person,
        time: int,
        tz: int,
        message: str,
        signatures: tuple[SignatureEntry, ...] = (),
    ) -> None:
        _set(self, "object", object)
        _set(self, "object_type", object_type)
        _set(self, "name", name)
        _set(self, "tagger", tagger)
        _set(self, "time", time)
        _set(self, "tz", tz)
        _set(self, "message", message)
        _set(self, "signatures", signatures)

    type = ObjectType.TAG

    def to_value(self) -> dict[str, Any]:
        check_time(self.time, self.tz, "tag")
        value: dict[str, Any] = {
            "type": "tag",
            "v": 2 if self.signatures else 1,
            "object": self.object.raw,
            "object_type": self.object_type.value,
            "tag": self.name,
            "tagger": self.tagger.to_value(),
            "time": self.time,
            "tz": self.tz,
            "message": self.message,
        }
        if self.signatures:
            keys = [e.key for e in self.signatures]
            if keys != sorted(set(keys)):
                raise MalformedObject("tag signatures must be sorted by key, one per key")
            value["signatures"] = signatures_value(self.signatures)
        return value

    def signed_bytes(self) -> bytes:
        """What each signature of the tag signs: the signed tag without ``signatures``."""
        value = self.to_value() if self.signatures else {**self.to_value(), "v": 2}
        return signing_input("tag", value)

    def references(self) -> list[ObjectId]:
        return [self.object]


class Manifest(Record):
    """The envelope every manifest kind uses; ``body`` is schema-specific."""

    __match_args__ = ("kind", "version", "parents", "links", "time", "tz", "body")
    __slots__ = __match_args__
    _hashed = __match_args__[:-1]  # body: field(hash=False)
    kind: ObjectType
    version: int
    parents: tuple[ObjectId, ...]
    links: tuple[ObjectId, ...]
    time: int
    tz: int
    body: dict[str, Any]

    def __init__(
        self,
        kind: ObjectType,
        version: int,
        parents: tuple[ObjectId, ...],
        links: tuple[ObjectId, ...],
        time: int,
        tz: int,
        body: dict[str, Any],
    ) -> None:
        _set(self, "kind", kind)
        _set(self, "version", version)
        _set(self, "parents", parents)
        _set(self, "links", links)
        _set(self, "time", time)
        _set(self, "tz", tz)
        _set(self, "body", body)

    @property
    def type(self) -> ObjectType:
        return self.kind

    def to_value(self) -> dict[str, Any]:
        if not self.kind.is_manifest:
            raise MalformedObject(f"{self.kind} is not a manifest kind")
        if list(self.links) != sorted(set(self.links)):
            raise MalformedObject("manifest links must be sorted and unique")
        if len(set(self.parents)) != len(self.parents):
            raise MalformedObject("manifest parents must be unique")
        check_time(self.time, self.tz, self.kind.value)
        return {
            "type": self.kind.value,
            "v": self.version,
            "parents": [p.raw for p in self.parents],
            "links": [p.raw for p in self.links],
            "time": self.time,
            "tz": self.tz,
            "body": self.body,
        }

    def references(self) -> list[ObjectId]:
        return [*self.parents, *self.links]


StoredObject: TypeAlias = Blob | ChunkedBlob | Tree | Tag | Manifest


# --- encoding ---------------------------------------------------------------------


def encode_object(obj: StoredObject) -> bytes:
    return cbor.encode(obj.to_value())


def hash_object(obj: StoredObject) -> tuple[ObjectId, bytes]:
    data = encode_object(obj)
    return ObjectId.of(data), data


def _oid(value: Any, where: str) -> ObjectId:
    if type(value) is not bytes or len(value) != OID_BYTES:
        raise MalformedObject(f"{where}: expected a {OID_BYTES}-byte object id")
    return ObjectId.trusted(value)  # the constructor's checks, just made


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise MalformedObject(f"{where}: expected an integer")
    return int(value)


def _str(value: Any, where: str) -> str:
    if type(value) is not str:
        raise MalformedObject(f"{where}: expected a text string")
    return str(value)


def _keys(value: dict[str, Any], required: set[str], where: str) -> None:
    keys = set(value)
    if keys != required:
        missing, extra = required - keys, keys - required
        raise MalformedObject(
            f"{where}: fields differ from the schema"
            + (f"; missing {sorted(missing)}" if missing else "")
            + (f"; unexpected {sorted(extra)}" if extra else "")
        )


_MODES = {m.value: m for m in Mode}
_FIXED_SHAPES = frozenset({"blob", "tree", "tag"})
"""Types whose :func:`object_from_value` checks the type of every value it holds
(so their decoding need not walk the value for the data model first)."""


def object_from_value(value: Any) -> StoredObject:
    """Build the typed object from a decoded envelope, checking its shape."""
    if type(value) is not dict:
        raise MalformedObject("an object must be a CBOR map")
    kind = ObjectType.parse(_str(value.get("type"), "type"))
    version = _int(value.get("v"), "v")
    if kind is ObjectType.BLOB:
        if version != 1:
            raise MalformedObject(f"blob schema version {version} is not supported")
        if "data" in value:
            _keys(value, {"type", "v", "data"}, "blob")
            data = value["data"]
            if type(data) is not bytes:
                raise MalformedObject("blob.data: expected a byte string")
            if len(data) > CHUNK_SIZE:
                raise MalformedObject("blob.data larger than one chunk")
            return Blob(data)
        _keys(value, {"type", "v", "size", "chunks"}, "blob")
        size = _int(value["size"], "blob.size")
        raw_chunks = value["chunks"]
        if type(raw_chunks) is not list:
            raise MalformedObject("blob.chunks: expected an array")
        chunks: list[tuple[ObjectId, int]] = []
        for i, c in enumerate(raw_chunks):
            if type(c) is not list or len(c) != 2:
                raise MalformedObject(f"blob.chunks[{i}]: expected [id, length]")
            chunks.append((_oid(c[0], f"blob.chunks[{i}]"), _int(c[1], f"blob.chunks[{i}]")))
        _check_chunks(size, chunks)
        return ChunkedBlob(size, tuple(chunks))
    if kind is ObjectType.TREE:
        if version != 1:
            raise MalformedObject(f"tree schema version {version} is not supported")
        _keys(value, {"type", "v", "entries"}, "tree")
        raw_entries = value["entries"]
        if type(raw_entries) is not list:
            raise MalformedObject("tree.entries: expected an array")
        entries = []
        modes, trusted = _MODES, ObjectId.trusted
        for i, e in enumerate(raw_entries):
            if type(e) is not list or len(e) != 3:
                raise MalformedObject(f"tree.entries[{i}]: expected [name, mode, id]")
            name, mode_int, raw = e
            if type(name) is not str:
                _str(name, f"tree.entries[{i}].name")
            if type(mode_int) is not int:
                _int(mode_int, f"tree.entries[{i}].mode")
            mode = modes.get(mode_int)
            if mode is None:
                raise MalformedObject(f"tree.entries[{i}].mode {mode_int:o} unknown")
            if type(raw) is not bytes or len(raw) != OID_BYTES:
                _oid(raw, f"tree.entries[{i}].id")
            entries.append(TreeEntry(name, mode, trusted(raw)))
        tree = Tree(tuple(entries))
        tree.validate()
        return tree
    if kind is ObjectType.TAG:
        if version not in (1, 2):
            raise MalformedObject(f"tag schema version {version} is not supported")
        fields = {"type", "v", "object", "object_type", "tag", "tagger", "time", "tz", "message"}
        _keys(value, fields | {"signatures"} if version == 2 else fields, "tag")
        tagger = value["tagger"]
        if type(tagger) is not dict:
            raise MalformedObject("tag.tagger: expected a map")
        _keys(tagger, {"name", "email"}, "tag.tagger")
        check_time(value["time"], value["tz"], "tag")
        return Tag(
            object=_oid(value["object"], "tag.object"),
            object_type=ObjectType.parse(_str(value["object_type"], "tag.object_type")),
            name=_str(value["tag"], "tag.tag"),
            tagger=Person(
                _str(tagger["name"], "tag.tagger.name"), _str(tagger["email"], "tag.tagger.email")
            ),
            time=_int(value["time"], "tag.time"),
            tz=_int(value["tz"], "tag.tz"),
            message=_str(value["message"], "tag.message"),
            signatures=(
                parse_signatures(value["signatures"], "tag.signatures") if version == 2 else ()
            ),
        )
    # manifests
    _keys(value, {"type", "v", "parents", "links", "time", "tz", "body"}, kind.value)
    if version < 1:
        raise MalformedObject(f"{kind}.v must be at least 1")
    parents, links = value["parents"], value["links"]
    if type(parents) is not list or type(links) is not list:
        raise MalformedObject(f"{kind}: parents and links must be arrays")
    body = value["body"]
    if type(body) is not dict:
        raise MalformedObject(f"{kind}.body: expected a map")
    check_time(value["time"], value["tz"], kind.value)
    manifest = Manifest(
        kind=kind,
        version=version,
        parents=tuple(_oid(p, f"{kind}.parents[{i}]") for i, p in enumerate(parents)),
        links=tuple(_oid(p, f"{kind}.links[{i}]") for i, p in enumerate(links)),
        time=_int(value["time"], f"{kind}.time"),
        tz=_int(value["tz"], f"{kind}.tz"),
        body=body,
    )
    manifest.to_value()  # re-checks sortedness/uniqueness invariants
    return manifest


def decode_object(data: bytes) -> StoredObject:
    """Strictly decode stored bytes into a typed object (canonical form enforced)."""
    value = cbor.decode_canonical(data)
    if type(value) is not dict or value.get("type") not in _FIXED_SHAPES:
        cbor.check_model(value)  # a manifest's body is free-form
    return object_from_value(value)


_BLOB_HEAD = b"\xa3\x61v\x01\x64data"  # map(3), "v": 1, "data": (canonical key order)
_BLOB_TAIL = b"\x64type\x64blob"  # "type": "blob"
_BLOB_MIN = {1: 0, 2: 24, 3: 256, 5: 65536}  # shortest-form rule per header length
assert len(_BLOB_HEAD) == 9 and len(_BLOB_TAIL) == 10


def inline_blob_length(data: bytes) -> int | None:
    """The content length of the inline blob whose canonical encoding ``data`` is
    exactly, else None.

    A strict fast path for the commonest object (verify and fsck read every
    one): it accepts only bytes equal to ``encode_object(Blob(content))``,
    header lengths in shortest form, content of at most :data:`CHUNK_SIZE`
    bytes.  None says nothing about validity: :func:`decode_object` then
    decides, and explains.
    """
    head = 9  # len(_BLOB_HEAD)
    if not data.startswith(_BLOB_HEAD) or not data.endswith(_BLOB_TAIL) or len(data) < 20:
        return None
    first = data[head]
    if 0x40 <= first < 0x58:
        hlen, length = 1, first - 0x40
    elif first == 0x58:
        hlen, length = 2, data[head + 1]
    elif first == 0x59:
        hlen, length = 3, int.from_bytes(data[head + 1 : head + 3], "big")
    elif first == 0x5A:
        hlen, length = 5, int.from_bytes(data[head + 1 : head + 5], "big")
    else:
        return None
    if length < _BLOB_MIN[hlen] or length > CHUNK_SIZE or length + hlen + 19 != len(data):
        return None
    return length


def decode_inline_blob(data: bytes) -> Blob | None:
    """:func:`inline_blob_length`'s blob itself."""
    length = inline_blob_length(data)
    if length is None:
        return None
    return Blob(data[len(data) - 10 - length : len(data) - 10])


def encode_blob(content: bytes) -> bytes:
    """``encode_object(Blob(content))``, built directly (bulk ingest's hot path: no
    value dict, no data-model walk, no cbor2 call); tests/objects check the two agree."""
    n = len(content)
    if n > CHUNK_SIZE:
        raise MalformedObject(f"inline blob larger than {CHUNK_SIZE} bytes; chunk it")
    if type(content) is not bytes:  # as cbor.encode's data-model check says
        raise MalformedObject(
            f"value of type {type(content).__name__} is outside STEVE's CBOR data model"
        )
    if n < 24:
        head = _SHORT_HEADS[n]
    elif n < 256:
        head = bytes((0x58, n))
    elif n < 65536:
        head = b"\x59" + n.to_bytes(2, "big")
    else:
        head = b"\x5a" + n.to_bytes(4, "big")
    return b"".join((_BLOB_HEAD, head, content, _BLOB_TAIL))


_SHORT_HEADS = [bytes((0x40 + n,)) for n in range(24)]


_TREE_HEAD = b"\xa3\x61v\x01\x64type\x64tree\x67entries"  # canonical key order
_ENTRY_ID = b"\x58\x20"  # a 32-byte byte string


def _head(data: bytes, at: int, major: int) -> tuple[int, int]:
    """Length argument and new offset of the shortest-form CBOR header of ``major``
    type (0x40, 0x60, 0x80) at ``at``; (-1, at) if it is not one."""
    first = data[at]
    if major <= first < major + 24:
        return first - major, at + 1
    if first == major + 24 and data[at + 1] >= 24:
        return data[at + 1], at + 2
    if first == major + 25:
        n = int.from_bytes(data[at + 1 : at + 3], "big")
        return (n, at + 3) if n >= 256 else (-1, at)
    if first == major + 26:
        n = int.from_bytes(data[at + 1 : at + 5], "big")
        return (n, at + 5) if n >= 65536 else (-1, at)
    return -1, at


def tree_entries(data: bytes) -> list[tuple[str, Mode, bytes]] | None:
    """The entries ``(name, mode, raw id)`` of the valid tree whose canonical encoding
    ``data`` is exactly, else None.

    The tree counterpart of :func:`inline_blob_length`: no intermediate CBOR
    values and no objects per entry; it accepts only what :func:`decode_object`
    accepts as a tree (shortest-form headers, valid names in strictly increasing
    byte order, known modes), and None says nothing about validity.
    """
    try:
        if not data.startswith(_TREE_HEAD):
            return None
        count, at = _head(data, len(_TREE_HEAD), 0x80)
        if count < 0:
            return None
        out: list[tuple[str, Mode, bytes]] = []
        prev = b""
        modes, bad = _MODES, _BAD_NAME
        for _ in range(count):
            if data[at] != 0x83:
                return None
            n, at = _head(data, at + 1, 0x60)
            if n < 0:
                return None
            key = data[at : at + n]
            at += n
            if len(key) != n or (out and key <= prev) or data[at] != 0x19:
                return None
            mode = modes.get(int.from_bytes(data[at + 1 : at + 3], "big"))
            if mode is None or data[at + 3 : at + 5] != _ENTRY_ID:
                return None
            raw = data[at + 5 : at + 37]
            at += 37
            name = key.decode()
            if not name or name in (".", "..", ".steve") or bad.search(name) or len(raw) != 32:
                return None
            out.append((name, mode, raw))
            prev = key
        return out if at == len(data) else None
    except (IndexError, UnicodeDecodeError):
        return None


def decode_object_trusted(data: bytes) -> StoredObject:
    """Decode bytes read back from the authenticated store (no canonical re-check)."""
    return object_from_value(cbor.decode_trusted(data))


def object_size(obj: StoredObject) -> int:
    """The size ``cat-file -s`` reports: content bytes for blobs, stored bytes otherwise."""
    if isinstance(obj, Blob):
        return len(obj.data)
    if isinstance(obj, ChunkedBlob):
        return obj.size
    return len(encode_object(obj))
