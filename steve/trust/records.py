"""Signatures and signed records: one format for everything STEVE signs besides DSSE.

A **signature entry** is ``{"key": <32-byte Ed25519 public key>, "sig": <64 bytes>}``;
an object signed by several keys carries a list of them, sorted by key, one per
key (the multi-signature entries of seed 004).  What a key signs is always

    b"STEVE-SIGNED-v1\\x00" + purpose + b"\\x00" + canonical CBOR of the value

where the value is the record *without* its ``signatures`` field, so adding a
co-signature never changes what the others signed, and the purpose (``tag``,
``image``, ``key-rotation``, ``supersession``) keeps a signature made for one
kind of record from being replayed as another.

A **signed record** is a blob holding the canonical CBOR of

    {"type": "steve-signed", "v": 1, "kind": K, "time": T, "body": {...},
     "signatures": [entries]}

Kinds:

``image``         body ``{"image": "sha256:<hex>"}``: the image ``steve image build``
                  produced (:func:`image_record`).
``key-rotation``  body ``{"old": key, "new": key, "reason": text}``, signed by both
                  keys (:func:`rotation_record`): the old key vouches for the new.
``supersession``  body ``{"supersedes": id, "by": id, "epoch": n, "type": t,
                  "reason": text, "previous": id | None}``: object ``by`` replaces
                  ``supersedes``, ``epoch`` counts the replacements of the chain's
                  first object, ``previous`` is the record of epoch ``n - 1``.

A :class:`Keyring` answers "does this signature count": its roots are the keys
the verifier trusts (the repository's pinned key, keys given with ``--key``), and
valid rotation records extend it both ways: a key rotated *to* from a trusted key
is trusted; a key rotated *away from* is trusted for signatures dated at or
before the rotation (the chain is followed any length).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steve.errors import MalformedObject
from steve.objects import cbor
from steve.objects.oid import OID_BYTES, ObjectId
from steve.objects.signatures import (
    SIGNED_PREFIX,
    SignatureEntry,
    parse_signatures,
    sign_bytes,
    signatures_value,
    signing_input,
)
from steve.trust.keys import SigningKey, verify_signature

RECORD_TYPE = "steve-signed"


class RecordKind(enum.StrEnum):
    IMAGE = "image"
    KEY_ROTATION = "key-rotation"
    SUPERSESSION = "supersession"


class SupersessionType(enum.StrEnum):
    """Why an object replaces another (seed 004's ``SupersessionType``)."""

    AMENDMENT = "amendment"  # the same thing, changed on purpose
    CORRECTION = "correction"  # the earlier one was wrong
    RETRACTION = "retraction"  # the earlier one no longer holds; ``by`` says why
    PARADIGM = "paradigm"  # a new epoch: the grounds changed


def sign_value(
    purpose: str, value: Mapping[str, Any], keys: Sequence[SigningKey]
) -> tuple[SignatureEntry, ...]:
    """One signature per distinct key over :func:`signing_input`, sorted by key."""
    return sign_bytes(signing_input(purpose, value), keys)


def merge_signatures(
    old: Iterable[SignatureEntry], new: Iterable[SignatureEntry]
) -> tuple[SignatureEntry, ...]:
    """Both sets of entries, one per key (a new entry replaces an old one), sorted."""
    merged = {e.key: e for e in old}
    merged.update({e.key: e for e in new})
    return tuple(merged[k] for k in sorted(merged))


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature entry judged: valid (the bytes verify), trusted (the keyring
    accepts the key at the record's time)."""

    key: bytes
    valid: bool
    trusted: bool
    why: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every signature of one signed thing, judged; ``ok`` when none is invalid, at
    least one is valid and trusted, and no required key is ``missing`` (a required key
    is accounted for by a valid, trusted signature of it or of a key its rotations
    reach)."""

    checks: tuple[SignatureCheck, ...]
    missing: tuple[bytes, ...] = ()
    broken: str = ""  # why the signed record itself is unusable (then nothing counts)

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        if self.broken:
            return [self.broken]
        out = [f"key {c.key.hex()[:16]}: {c.why}" for c in self.checks if not c.valid]
        if not self.checks:
            out.append("no signature")
        elif not any(c.valid and c.trusted for c in self.checks):
            why = "; ".join(f"key {c.key.hex()[:16]}: {c.why}" for c in self.checks if c.valid)
            out.append("no valid signature by a trusted key" + (f" ({why})" if why else ""))
        out += [f"key {k.hex()[:16]}: required, but did not sign" for k in self.missing]
        return out


# --- the keyring --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rotation:
    old: bytes
    new: bytes
    time: int
    reason: str


@dataclass(slots=True)
class Keyring:
    """The keys a verifier trusts: ``roots`` plus what valid rotations reach from them.

    ``accepts(key, time)``: ``key`` is trusted and, if it was rotated away from,
    ``time`` is at or before its (first) rotation."""

    roots: set[bytes] = field(default_factory=set)
    rotations: list[Rotation] = field(default_factory=list)

    def add_rotation(self, record: SignedRecord) -> None:
        """Add a rotation record whose two signatures (old and new key) verify;
        ValueError otherwise."""
        rotation = rotation_of(record)
        self.rotations.append(rotation)

    def retired_at(self) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for r in self.rotations:
            out[r.old] = min(r.time, out.get(r.old, r.time))
        return out

    def trusted(self) -> set[bytes]:
        """Every key connected to a root by rotations (the chain, both ways)."""
        keys = set(self.roots)
        changed = True
        while changed:
            changed = False
            for r in self.rotations:
                if (r.old in keys) != (r.new in keys):
                    keys.update((r.old, r.new))
                    changed = True
        return keys

    def chain_of(self, key: bytes) -> set[bytes]:
        """``key`` and every key rotations connect it to."""
        return Keyring({key}, self.rotations).trusted()

    def accepts(self, key: bytes, time: int) -> tuple[bool, str]:
        if key not in self.trusted():
            return False, "not a trusted key (nor rotated to or from one)"
        retired = self.retired_at().get(key)
        if retired is not None and time > retired:
            return False, f"retired by a rotation at {retired}, but signed at {time}"
        return True, ""

    def judge(
        self,
        purpose: str,
        value: Mapping[str, Any],
        entries: Sequence[SignatureEntry],
        time: int,
        required: Sequence[bytes] = (),
    ) -> Verdict:
        """Judge ``entries`` over ``value`` signed for ``purpose`` at ``time``."""
        return self.judge_bytes(signing_input(purpose, value), entries, time, required)

    def judge_bytes(
        self,
        message: bytes,
        entries: Sequence[SignatureEntry],
        time: int,
        required: Sequence[bytes] = (),
    ) -> Verdict:
        """Judge ``entries`` over the exact bytes ``message``."""
        checks = []
        for e in entries:
            if not verify_signature(e.key, e.sig, message):
                checks.append(SignatureCheck(e.key, False, False, "the signature does not verify"))
                continue
            trusted, why = self.accepts(e.key, time)
            checks.append(SignatureCheck(e.key, True, trusted, why))
        good = {c.key for c in checks if c.valid and c.trusted}
        missing = tuple(k for k in required if not self.chain_of(k) & good)
        return Verdict(tuple(checks), missing)


# --- signed records -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedRecord:
    kind: RecordKind
    time: int
    body: dict[str, Any]
    signatures: tuple[SignatureEntry, ...]

    def unsigned_value(self) -> dict[str, Any]:
        return {
            "type": RECORD_TYPE,
            "v": 1,
            "kind": self.kind.value,
            "time": self.time,
            "body": self.body,
        }

    def encode(self) -> bytes:
        return cbor.encode(
            {**self.unsigned_value(), "signatures": signatures_value(self.signatures)}
        )

    def judge(self, keyring: Keyring, required: Sequence[bytes] = ()) -> Verdict:
        return keyring.judge(
            self.kind.value, self.unsigned_value(), self.signatures, self.time, required
        )

    def cosigned(self, keys: Sequence[SigningKey]) -> SignedRecord:
        """The same record with signatures by ``keys`` added (multi-signature)."""
        new = sign_value(self.kind.value, self.unsigned_value(), keys)
        return SignedRecord(self.kind, self.time, self.body, merge_signatures(self.signatures, new))


def make_record(
    kind: RecordKind, time: int, body: dict[str, Any], keys: Sequence[SigningKey]
) -> SignedRecord:
    if not keys:
        raise ValueError("a signed record needs at least one key")
    unsigned = SignedRecord(kind, time, body, ())
    return SignedRecord(kind, time, body, sign_value(kind.value, unsigned.unsigned_value(), keys))


def decode_record(data: bytes) -> SignedRecord:
    """Strictly decode a signed record (MalformedObject if it is not one)."""
    value = cbor.decode(data)
    if type(value) is not dict or set(value) != {"type", "v", "kind", "time", "body", "signatures"}:
        raise MalformedObject("not a STEVE signed record")
    if value["type"] != RECORD_TYPE or value["v"] != 1:
        raise MalformedObject("not a version 1 STEVE signed record")
    try:
        kind = RecordKind(value["kind"])
    except ValueError:
        raise MalformedObject(f"unknown signed record kind {value['kind']!r}") from None
    if type(value["time"]) is not int or type(value["body"]) is not dict:
        raise MalformedObject("signed record: time must be an integer, body a map")
    return SignedRecord(
        kind, value["time"], value["body"], parse_signatures(value["signatures"], "signatures")
    )


# --- the kinds ----------------------------------------------------------------------


def image_record(image_id: str, time: int, keys: Sequence[SigningKey]) -> SignedRecord:
    return make_record(RecordKind.IMAGE, time, {"image": image_id}, keys)


def rotation_record(old: SigningKey, new: SigningKey, time: int, reason: str) -> SignedRecord:
    """``new`` replaces ``old``, signed by both (the old key vouches for the new one,
    the new key proves it was there)."""
    body = {"old": old.public_key, "new": new.public_key, "reason": reason}
    return make_record(RecordKind.KEY_ROTATION, time, body, [old, new])


def rotation_of(record: SignedRecord) -> Rotation:
    """The rotation a record states, if both its keys signed it (ValueError if not)."""
    if record.kind is not RecordKind.KEY_ROTATION:
        raise ValueError(f"a {record.kind} record is not a key rotation")
    body = record.body
    old, new, reason = body.get("old"), body.get("new"), body.get("reason")
    if type(old) is not bytes or type(new) is not bytes or type(reason) is not str:
        raise ValueError("a rotation names an old key, a new key and a reason")
    message = signing_input(record.kind.value, record.unsigned_value())
    signed = {e.key for e in record.signatures if verify_signature(e.key, e.sig, message)}
    if old not in signed or new not in signed:
        raise ValueError("a rotation must be signed by both the old and the new key")
    return Rotation(old, new, record.time, reason)


def supersession_record(
    supersedes: ObjectId,
    by: ObjectId,
    *,
    epoch: int,
    kind: SupersessionType,
    reason: str,
    previous: ObjectId | None,
    time: int,
    keys: Sequence[SigningKey],
) -> SignedRecord:
    body = {
        "supersedes": supersedes.raw,
        "by": by.raw,
        "epoch": epoch,
        "type": kind.value,
        "reason": reason,
        "previous": None if previous is None else previous.raw,
    }
    return make_record(RecordKind.SUPERSESSION, time, body, keys)


@dataclass(frozen=True, slots=True)
class Supersession:
    supersedes: ObjectId
    by: ObjectId
    epoch: int
    type: SupersessionType
    reason: str
    previous: ObjectId | None


def supersession_of(record: SignedRecord) -> Supersession:
    """The supersession a record states (ValueError if it is not a well-formed one)."""
    if record.kind is not RecordKind.SUPERSESSION:
        raise ValueError(f"a {record.kind} record is not a supersession")
    b = record.body
    if set(b) != {"supersedes", "by", "epoch", "type", "reason", "previous"}:
        raise ValueError("a supersession has supersedes, by, epoch, type, reason, previous")

    def oid(v: Any) -> ObjectId:
        if type(v) is not bytes or len(v) != OID_BYTES:
            raise ValueError("an object id is 32 bytes")
        return ObjectId(v)

    if type(b["epoch"]) is not int or b["epoch"] < 1 or type(b["reason"]) is not str:
        raise ValueError("epoch is a positive integer, reason a text")
    return Supersession(
        oid(b["supersedes"]),
        oid(b["by"]),
        b["epoch"],
        SupersessionType(b["type"]),
        b["reason"],
        None if b["previous"] is None else oid(b["previous"]),
    )


__all__ = [
    "RECORD_TYPE",
    "SIGNED_PREFIX",
    "Keyring",
    "RecordKind",
    "Rotation",
    "SignatureCheck",
    "SignatureEntry",
    "SignedRecord",
    "Supersession",
    "SupersessionType",
    "Verdict",
    "decode_record",
    "image_record",
    "make_record",
    "merge_signatures",
    "parse_signatures",
    "rotation_of",
    "rotation_record",
    "sign_bytes",
    "sign_value",
    "signatures_value",
    "signing_input",
    "supersession_of",
    "supersession_record",
]
