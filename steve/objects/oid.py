"""Object ids: BLAKE3-256 digests of an object's exact stored bytes."""

from __future__ import annotations

import re

import blake3

from steve.errors import InvalidInput
from steve.record import Record

OID_BYTES = 32
OID_HEX = 2 * OID_BYTES
MIN_PREFIX = 4

_HEX = re.compile(r"[0-9a-f]+")


class ObjectId(Record):
    """A 32-byte BLAKE3 digest; prints as lowercase hex.

    Frozen and ordered by its bytes, as ``@dataclass(frozen=True, slots=True,
    order=True)`` made it (see :mod:`steve.record`; equality, hash and order
    written out: ids are compared and hashed on every hot path)."""

    __match_args__ = ("raw",)
    __slots__ = __match_args__
    raw: bytes

    def __init__(self, raw: bytes) -> None:
        object.__setattr__(self, "raw", raw)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != OID_BYTES:
            raise InvalidInput("invalid object id", f"expected {OID_BYTES} bytes")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.raw == other.raw
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.raw < other.raw
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.raw <= other.raw
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.raw > other.raw
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self.raw >= other.raw
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.raw,))

    @classmethod
    def from_hex(cls, text: str) -> ObjectId:
        if len(text) != OID_HEX or not _HEX.fullmatch(text):
            raise InvalidInput(
                "invalid object id", f"{text!r} is not {OID_HEX} lowercase hex digits"
            )
        return cls(bytes.fromhex(text))

    @classmethod
    def trusted(cls, raw: bytes) -> ObjectId:
        """An id from 32 bytes already known to be an id (read back from the store's
        own index); skips the checks of the constructor on hot paths."""
        oid = object.__new__(cls)
        object.__setattr__(oid, "raw", raw)
        return oid

    @classmethod
    def of(cls, data: bytes) -> ObjectId:
        """The id of ``data`` (the exact stored bytes of an object)."""
        return cls.trusted(digest(data))

    @property
    def hex(self) -> str:
        return self.raw.hex()

    def short(self, n: int = 12) -> str:
        return self.raw.hex()[:n]

    def __str__(self) -> str:
        return self.raw.hex()

    def __repr__(self) -> str:
        return f"ObjectId({self.short()})"


PARALLEL_HASH_MIN = 1 << 17
"""Inputs at least this long are hashed on all cores (BLAKE3's tree mode; the
digest is the same, the GIL is released)."""


def digest(data: bytes) -> bytes:
    """BLAKE3-256 of ``data``: an object id's 32 bytes."""
    if len(data) >= PARALLEL_HASH_MIN:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    return blake3.blake3(data).digest()


def is_hex_prefix(text: str) -> bool:
    return MIN_PREFIX <= len(text) <= OID_HEX and _HEX.fullmatch(text) is not None
