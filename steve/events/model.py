"""Events: the record, its canonical bytes and its place in the hash chain.

An event's *canonical bytes* are the canonical CBOR encoding
(:mod:`steve.objects.cbor`) of one map::

    {"v": 1, "seq": N, "time": unix-ms, "level": "info", "type": "ref.updated",
     "run": str|null, "corr": str|null, "cause": str|null, "actor": str|null,
     "payload": <canonical CBOR bytes of the payload map, as a byte string>}

and its hash is ``BLAKE3(prev_hash || canonical bytes)``, where
``prev_hash`` is the previous event's hash (32 zero bytes for seq 1).  The
sequence number is inside the hashed bytes, so an edit, a deletion, an
insertion or a reorder changes some event's hash or breaks some link.
"""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import blake3
import cbor2

from steve.errors import InvalidEvent, MalformedObject
from steve.objects import cbor

EVENT_VERSION = 1
HASH_BYTES = 32
GENESIS = bytes(HASH_BYTES)
"""The ``prev_hash`` of the first event."""

MAX_PAYLOAD = 1 << 20
"""Largest encoded payload of one event (1 MiB); spool bigger data in chunks."""

MAX_TEXT = 256
"""Longest event type, run id, correlation id, causation id or actor."""

_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*")


class Level(enum.StrEnum):
    """Event and log levels, least to most severe."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @classmethod
    def parse(cls, text: str) -> Level:
        level = _LEVELS.get(text)
        if level is None:
            names = ", ".join(m.value for m in cls)
            raise InvalidEvent("unknown level", f"{text!r} (known: {names})")
        return level

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.DEBUG: 10, Level.INFO: 20, Level.WARNING: 30, Level.ERROR: 40}
_LEVELS: dict[object, Level] = {level.value: level for level in Level}
_KNOWN_TYPES: set[str] = set()  # event types already checked (bounded, see below)
_FLAT = (str, bytes, bool, type(None))


def check_event_type(event_type: str) -> str:
    """``event_type`` if it is a dotted lowercase name like ``ref.updated``."""
    if event_type in _KNOWN_TYPES:
        return event_type
    if (
        not isinstance(event_type, str)
        or len(event_type) > MAX_TEXT
        or not _TYPE.fullmatch(event_type)
    ):
        raise InvalidEvent(
            "invalid event type",
            f"{event_type!r} is not a dotted lowercase name such as 'run.transition'",
        )
    if len(_KNOWN_TYPES) < 4096:
        _KNOWN_TYPES.add(event_type)
    return event_type


def check_text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise InvalidEvent(f"invalid {name}", f"{value!r} must be 1..{MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"invalid {name}", "not valid Unicode text") from None
    return value


def encode_payload(payload: Mapping[str, object]) -> bytes:
    """The canonical CBOR bytes of ``payload`` (a map with text keys)."""
    if not isinstance(payload, Mapping):
        raise InvalidEvent("invalid payload", "the payload must be a mapping")
    value = payload if type(payload) is dict else dict(payload)
    if _flat(value):  # fast path: the common one-level map of scalars
        data: bytes = cbor2.dumps(value, canonical=True)
    else:
        try:
            data = cbor.encode(value)
        except MalformedObject as exc:
            raise InvalidEvent("invalid payload", exc.detail) from exc
    if len(data) > MAX_PAYLOAD:
        raise InvalidEvent(
            "payload too large",
            f"{len(data)} bytes encoded, limit {MAX_PAYLOAD}; spool large data with LogSpooler",
        )
    return data


def _flat(value: dict[Any, Any]) -> bool:
    """True if ``value`` is a map of text keys to strings, bytes, bools, None or 64-bit
    ints: then cbor2's canonical encoding is STEVE's (equal to ``cbor.encode``)."""
    for k, v in value.items():
        if type(k) is not str:
            return False
        t = type(v)
        if t is int:
            if not cbor.INT_MIN <= v <= cbor.INT_MAX:
                return False
        elif t not in _FLAT:
            return False
    return True


def canonical_bytes(
    seq: int,
    time_ms: int,
    level: str,
    event_type: str,
    run_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
    payload: bytes,
) -> bytes:
    """The bytes an event's hash covers (see the module docstring).

    Equal to ``cbor.encode`` of the map (tests check it); faster because the
    keys are inserted in canonical order (shorter first, then bytewise) and
    every value is an int, a text string, None or a byte string, whose cbor2
    encoding is already the shortest form.
    """
    if (
        type(seq) is not int
        or type(time_ms) is not int
        or not (cbor.INT_MIN <= seq <= cbor.INT_MAX and cbor.INT_MIN <= time_ms <= cbor.INT_MAX)
    ):
        raise MalformedObject("seq and time must be 64-bit integers")
    for text in (level, event_type, run_id, correlation_id, causation_id, actor):
        if text is not None and type(text) is not str:
            raise MalformedObject("event text fields must be strings")
    if type(payload) is not bytes:
        raise MalformedObject("the payload must be bytes")
    return event_bytes(
        seq, time_ms, level, event_type, run_id, correlation_id, causation_id, actor, payload
    )


def event_bytes(
    seq: int,
    time_ms: int,
    level: str,
    event_type: str,
    run_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
    payload: bytes,
) -> bytes:
    """:func:`canonical_bytes` without the type checks (the writer's fields are checked)."""
    value: dict[str, Any] = {
        "v": EVENT_VERSION,
        "run": run_id,
        "seq": seq,
        "corr": correlation_id,
        "time": time_ms,
        "type": event_type,
        "actor": actor,
        "cause": causation_id,
        "level": level,
        "payload": payload,
    }
    try:
        data: bytes = cbor2.dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedObject(f"cannot encode event: {exc}") from exc
    return data


def chain_hash(prev_hash: bytes, event_bytes: bytes) -> bytes:
    """``BLAKE3(prev_hash || event_bytes)``."""
    h = blake3.blake3(prev_hash)
    h.update(event_bytes)
    digest: bytes = h.digest()
    return digest


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event.  ``payload_bytes`` is canonical CBOR; see :attr:`payload`."""

    seq: int
    time: int
    level: Level
    event_type: str
    run_id: str | None
    correlation_id: str | None
    causation_id: str | None
    actor: str | None
    payload_bytes: bytes
    prev_hash: bytes
    hash: bytes

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = cbor.decode_trusted(self.payload_bytes)
        return value

    def canonical_bytes(self) -> bytes:
        return canonical_bytes(
            self.seq,
            self.time,
            self.level.value,
            self.event_type,
            self.run_id,
            self.correlation_id,
            self.causation_id,
            self.actor,
            self.payload_bytes,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (bytes in the payload become ``{"$bytes": len, "b64": ...}``)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "level": self.level.value,
            "type": self.event_type,
            "run_id": self.run_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "payload": jsonable(self.payload),
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


def jsonable(value: Any) -> Any:
    """``value`` with byte strings made JSON-safe (base64 under ``b64``)."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
