"""Canonical CBOR (RFC 8949 section 4.2.1, core deterministic encoding).

STEVE's data model is deliberately small: ``int`` (64-bit range), ``bytes``,
``str``, ``bool``, ``None``, ``list`` and ``dict`` with **text keys only**.
No floats, no tags, no undefined, no simple values.  With text-only keys,
cbor2's ``canonical=True`` ordering (length first, then bytewise; RFC 7049)
equals RFC 8949's bytewise order of the encoded keys, because a text key's
encoding starts with a header that grows with its length.

cbor2 has no strict decoder, so :func:`decode` decodes with indefinite
lengths and duplicate keys disabled, checks the data model, re-encodes and
rejects any difference from the input (non-shortest integers and lengths,
unsorted keys, trailing bytes, bignum tags, ...).  One logical value has
exactly one encoding, so one object has exactly one id.
"""

from __future__ import annotations

from typing import Any

import cbor2

from steve.errors import MalformedObject

INT_MIN = -(2**64)
INT_MAX = 2**64 - 1
MAX_DEPTH = 32

# A CBOR value in STEVE's data model (recursive; ``Any`` keeps mypy usable).
Value = Any


def _check(value: Value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedObject(f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t is bytes or t is str or t is bool or value is None:
        return
    if t is int:
        if not INT_MIN <= value <= INT_MAX:
            raise MalformedObject(f"integer {value} outside the 64-bit CBOR range")
        return
    if t is list:
        for item in value:
            _check(item, depth + 1)
        return
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise MalformedObject(f"map key {key!r} is not a text string")
            _check(item, depth + 1)
        return
    raise MalformedObject(f"value of type {t.__name__} is outside STEVE's CBOR data model")


def encode(value: Value) -> bytes:
    """Canonical encoding of ``value``; raises MalformedObject outside the data model."""
    _check(value, 0)
    return _encode_unchecked(value)


def _encode_unchecked(value: Value) -> bytes:
    try:
        out: bytes = cbor2.dumps(value, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise MalformedObject(f"cannot encode: {exc}") from exc
    return out


def _reject_tag(decoder: object, tag: object) -> object:
    raise MalformedObject(f"CBOR tag {getattr(tag, 'tag', '?')} is not allowed")


def decode(data: bytes) -> Value:
    """Strictly decode ``data``: it must be the canonical encoding of one value."""
    value = decode_canonical(data)
    _check(value, 0)
    return value


def check_model(value: Value) -> None:
    """Raise MalformedObject unless ``value`` lies in STEVE's data model."""
    _check(value, 0)


def decode_canonical(data: bytes) -> Value:
    """:func:`decode` without the data-model check (:func:`check_model`): for callers
    that check every value's type themselves (the object model's fixed shapes)."""
    try:
        value = cbor2.loads(
            data,
            tag_hook=_reject_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=MAX_DEPTH + 1,
        )
    except MalformedObject:
        raise
    except (
        cbor2.CBORError,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        RecursionError,
        OverflowError,
        IndexError,
        KeyError,
        MemoryError,
    ) as exc:
        raise MalformedObject(f"not valid CBOR: {exc}") from exc
    if _encode_unchecked(value) != data:
        raise MalformedObject("not the canonical CBOR encoding (RFC 8949 section 4.2.1)")
    return value


def decode_trusted(data: bytes) -> Value:
    """Decode bytes already verified when stored (read path; no re-encode)."""
    try:
        return cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedObject(f"not valid CBOR: {exc}") from exc
