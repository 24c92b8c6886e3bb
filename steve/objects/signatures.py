"""Signature entries and the bytes a key signs (the encoding; signing is steve.trust).

An entry is ``{"key": <32-byte Ed25519 public key>, "sig": <64 bytes>}``; a signed
object carries a non-empty list of them, sorted by key, one per key.  What a key
signs for a value is :func:`signing_input`: a prefix, the purpose, and the
canonical CBOR of the value without its ``signatures`` field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from steve.errors import MalformedObject
from steve.objects import cbor
from steve.record import Record

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

SIGNED_PREFIX = b"STEVE-SIGNED-v1\x00"


class SignatureEntry(Record):
    __match_args__ = ("key", "sig")
    __slots__ = __match_args__
    key: bytes
    sig: bytes

    def __init__(self, key: bytes, sig: bytes) -> None:
        _set(self, "key", key)
        _set(self, "sig", sig)

    def to_value(self) -> dict[str, bytes]:
        return {"key": self.key, "sig": self.sig}


def signing_input(purpose: str, value: Mapping[str, Any]) -> bytes:
    """The exact bytes a key signs for ``value`` (its ``signatures`` field left out)."""
    unsigned = {k: v for k, v in value.items() if k != "signatures"}
    return SIGNED_PREFIX + purpose.encode() + b"\x00" + cbor.encode(unsigned)


class Signer(Protocol):
    """What signs: a key that knows its public half (``steve.trust.keys.SigningKey``)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def sign_bytes(message: bytes, keys: Sequence[Signer]) -> tuple[SignatureEntry, ...]:
    """One signature of ``message`` per distinct key, sorted by key."""
    unique = {k.public_key: k for k in keys}
    return tuple(SignatureEntry(pub, unique[pub].sign(message)) for pub in sorted(unique))


def signatures_value(entries: Sequence[SignatureEntry]) -> list[dict[str, bytes]]:
    return [e.to_value() for e in entries]


def parse_signatures(value: Any, where: str) -> tuple[SignatureEntry, ...]:
    """Signature entries from a decoded value: a non-empty list, sorted by key, unique,
    each key 32 and each signature 64 bytes (so one signed object has one encoding)."""
    if type(value) is not list or not value:
        raise MalformedObject(f"{where}: expected a non-empty array of signatures")
    out: list[SignatureEntry] = []
    for i, item in enumerate(value):
        if type(item) is not dict or set(item) != {"key", "sig"}:
            raise MalformedObject(f"{where}[{i}]: expected {{key, sig}}")
        key, sig = item["key"], item["sig"]
        if type(key) is not bytes or len(key) != 32 or type(sig) is not bytes or len(sig) != 64:
            raise MalformedObject(f"{where}[{i}]: a 32-byte key and a 64-byte signature")
        if out and key <= out[-1].key:
            raise MalformedObject(f"{where}: signatures must be sorted by key, one per key")
        out.append(SignatureEntry(key, sig))
    return tuple(out)


__all__ = [
    "SIGNED_PREFIX",
    "SignatureEntry",
    "Signer",
    "parse_signatures",
    "sign_bytes",
    "signatures_value",
    "signing_input",
]
