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
import struct
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
    if value is None or (type(value) is str and value in _CHECKED):
        return value  # None, or a text already checked (the usual case: ids repeat)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise InvalidEvent(f"invalid {name}", f"{value!r} must be 1..{MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"invalid {name}", "not valid Unicode text") from None
    if type(value) is str and len(_CHECKED) < 4096:
        _CHECKED.add(value)
    return value


_CHECKED: set[str] = set()
"""Texts :func:`check_text` accepted (bounded: at most 4096)."""


def encode_payload(payload: Mapping[str, object]) -> bytes:
    """The canonical CBOR bytes of ``payload`` (a map with text keys)."""
    if type(payload) is dict:
        value: dict[Any, Any] = payload
    elif isinstance(payload, Mapping):
        value = dict(payload)
    else:
        raise InvalidEvent("invalid payload", "the payload must be a mapping")
    try:
        data = _encode_flat(value)  # fast path: the common one-level map of scalars
    except (UnicodeEncodeError, cbor2.CBOREncodeError):
        raise InvalidEvent("invalid payload", "a text key or value is not valid Unicode") from None
    if data is None:
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


def _encode_flat(value: dict[Any, Any]) -> bytes | None:
    """The canonical encoding of a map of text keys to strings, bytes, bools, None or
    64-bit ints, built by hand (cbor2's canonical mode costs more than the rest of
    an emit); None for any other map, which :func:`steve.objects.cbor.encode` takes.

    Keys are ordered as canonical CBOR orders them (by encoded length, then
    bytewise); the order of each key set is computed once and cached, since
    producers emit the same shapes over and over.  Heads of short texts and
    small integers come from tables.  A property test checks the result
    against ``cbor.encode``.
    """
    keys = tuple(value)
    plan = _PLANS.get(keys)
    if plan is None:
        if any(type(k) is not str for k in keys):
            return None
        ordered = sorted((len(enc), enc, k) for k, enc in ((k, _text(k)) for k in keys))
        plan = (_head(5, len(keys)), tuple((k, enc) for _, enc, k in ordered))
        _remember(_PLANS, keys, plan)
    parts = [plan[0]]
    add = parts.append
    for k, key in plan[1]:
        v = value[k]
        t = type(v)
        add(key)
        if t is str:
            raw = v.encode()  # UTF-8; a lone surrogate raises UnicodeEncodeError
            n = len(raw)
            add(_TEXT_HEADS[n] if n < 24 else _head(3, n))
            add(raw)
        elif t is int:
            if 0 <= v < 256:
                add(_SMALL_UINTS[v])
            elif 0 <= v < 0x10000:
                add(_PACK_16(0x19, v))
            elif 0 <= v <= 0xFFFFFFFF:
                add(_PACK_32(0x1A, v))
            elif cbor.INT_MIN <= v <= cbor.INT_MAX:
                add(_head(0, v) if v >= 0 else _head(1, -1 - v))
            else:
                return None
        elif t is bool:
            add(b"\xf5" if v else b"\xf4")
        elif v is None:
            add(b"\xf6")
        elif t is bytes:
            add(_head(2, len(v)))
            add(v)
        else:
            return None
    return b"".join(parts)


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
    """The bytes an event's hash covers (see the module docstring): the fields'
    types checked, then :func:`event_parts` around the seq.  Equal to
    ``cbor.encode`` of the map (a property test checks it)."""
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
    head, tail = event_parts(
        time_ms, level, event_type, run_id, correlation_id, causation_id, actor, payload
    )
    return head + encode_int(seq) + tail


Shape = tuple[str, str, str | None, str | None, str | None, str | None, bytes, bytes, bytes]
"""An event's fields other than its seq, time and payload, with their canonical
encodings: ``(level, event_type, run_id, correlation_id, causation_id, actor, head,
before_time, after_time)``.  The event's canonical bytes are ``head + seq +
before_time + time + after_time + payload head + payload`` (see
:func:`event_shape`); producers emit few distinct shapes, so they are cached."""


def event_shape(
    level: str,
    event_type: str,
    run_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
) -> Shape:
    """The :data:`Shape` of an event with these fields (no validation here: see
    :func:`check_event_type` and :func:`check_text`).

    Built by hand: the map's keys are fixed and already in canonical order
    (shorter first, then bytewise), their encodings are constants and text
    values (run ids, types, actors repeat) come from bounded caches.  A
    property test checks the result against :func:`steve.objects.cbor.encode`
    of the map.
    """
    try:
        head = _HEADS.get(run_id)
        if head is None:
            head = _MAP_V1_RUN + _text(run_id) + _KEY_SEQ
            _remember(_HEADS, run_id, head)
        before_time = _BEFORE_TIME.get(correlation_id)
        if before_time is None:
            before_time = _KEY_CORR + _text(correlation_id) + _KEY_TIME
            _remember(_BEFORE_TIME, correlation_id, before_time)
        key = (event_type, actor, causation_id, level)
        after_time = _AFTER_TIME.get(key)
        if after_time is None:
            after_time = b"".join(
                (
                    _KEY_TYPE,
                    _text(event_type),
                    _KEY_ACTOR,
                    _text(actor),
                    _KEY_CAUSE,
                    _text(causation_id),
                    _KEY_LEVEL,
                    _text(level),
                    _KEY_PAYLOAD,
                )
            )
            _remember(_AFTER_TIME, key, after_time)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise MalformedObject(f"cannot encode event: {exc}") from exc
    return (
        level,
        event_type,
        run_id,
        correlation_id,
        causation_id,
        actor,
        head,
        before_time,
        after_time,
    )


def event_parts(
    time_ms: int,
    level: str,
    event_type: str,
    run_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    actor: str | None,
    payload: bytes,
) -> tuple[bytes, bytes]:
    """An event's canonical bytes around its seq: ``head + encode_int(seq) + tail``
    (from its :func:`event_shape`)."""
    shape = event_shape(level, event_type, run_id, correlation_id, causation_id, actor)
    try:
        tail = b"".join((shape[7], encode_int(time_ms), shape[8], _head(2, len(payload)), payload))
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        raise MalformedObject(f"cannot encode event: {exc}") from exc
    return shape[6], tail


_MAP_V1_RUN = b"\xaa" + cbor2.dumps("v") + cbor2.dumps(EVENT_VERSION) + cbor2.dumps("run")
_KEY_SEQ, _KEY_CORR, _KEY_TIME, _KEY_TYPE, _KEY_ACTOR, _KEY_CAUSE, _KEY_LEVEL, _KEY_PAYLOAD = (
    cbor2.dumps(k) for k in ("seq", "corr", "time", "type", "actor", "cause", "level", "payload")
)
_PACK_8 = struct.Struct(">BB").pack
_PACK_16 = struct.Struct(">BH").pack
_PACK_32 = struct.Struct(">BI").pack
_PACK_64 = struct.Struct(">BQ").pack
_TEXT_HEADS = tuple(bytes((0x60 | n,)) for n in range(24))
"""The heads of texts of 0..23 bytes."""
_BYTES_HEADS = tuple(bytes((0x40 | n,)) for n in range(24))
"""The heads of byte strings of 0..23 bytes."""
_SMALL_UINTS = tuple(bytes((n,)) if n < 24 else bytes((0x18, n)) for n in range(256))
"""The encodings of the integers 0..255."""
_TEXTS: dict[str, bytes] = {}
"""Encoded text values already seen (bounded, like the caches below: see _remember)."""
_HEADS: dict[str | None, bytes] = {}
_BEFORE_TIME: dict[str | None, bytes] = {}
_AFTER_TIME: dict[tuple[str, str | None, str | None, str], bytes] = {}
_PLANS: dict[tuple[Any, ...], Any] = {}  # key set -> (map head, ((key, encoded key), ...))
_CACHE_MAX = 4096


def _remember(cache: dict[Any, Any], key: Any, value: object) -> None:
    if len(cache) < _CACHE_MAX:
        cache[key] = value


def _head(major: int, n: int) -> bytes:
    """A CBOR head: major type and argument ``n`` (0 <= n < 2**64) in the shortest form."""
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return _PACK_8(m | 24, n)
    if n < 0x10000:
        return _PACK_16(m | 25, n)
    if n < 0x100000000:
        return _PACK_32(m | 26, n)
    return _PACK_64(m | 27, n)


def byte_string_head(n: int) -> bytes:
    """The CBOR head of a byte string of ``n`` bytes."""
    return _head(2, n)


def encode_int(n: int) -> bytes:
    """The CBOR encoding of the integer ``n`` (-2**64 <= n < 2**64)."""
    try:
        return _head(0, n) if n >= 0 else _head(1, -1 - n)
    except struct.error as exc:
        raise MalformedObject(f"integer out of range: {n}") from exc


def _text(value: str | None) -> bytes:
    if value is None:
        return b"\xf6"
    data = _TEXTS.get(value)
    if data is None:
        data = cbor2.dumps(value)
        _remember(_TEXTS, value, data)
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
