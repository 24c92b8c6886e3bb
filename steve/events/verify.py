"""Verifying the event log: the chain, the head, sealed segments, signed checkpoints.

The chain is walked in seq order in bounded pages.  For each stored row:

1. its seq is the next one (else an event is missing, or rows were reordered);
2. its ``prev_hash`` is the previous row's hash;
3. its fields are well formed and its payload is canonical CBOR;
4. ``BLAKE3(prev_hash || canonical bytes)`` equals its stored ``hash``.

The first failure names the *first bad seq* and the walk stops there (every
later event depends on it).  Then the ``head`` row must agree with the last
event (a deleted tail shows up here), every sealed segment's recorded head
hash must equal the hash stored at its last seq, and every checkpoint's
Ed25519 signature must verify (with the given pinned public key, if any).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from steve.errors import CheckpointInvalid, EventChainBroken, MalformedObject, SteveError
from steve.events.model import GENESIS, Level, canonical_bytes, chain_hash, check_event_type
from steve.events.store import EventStore, key_id_of, verify_signature
from steve.objects import cbor


class ProblemKind(enum.StrEnum):
    CHAIN = "chain"
    HEAD = "head"
    SEGMENT = "segment"
    CHECKPOINT = "checkpoint"
    DATABASE = "database"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    kind: ProblemKind
    seq: int | None
    why: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "-"
        return f"{self.kind.value} {where}: {self.why}"


@dataclass(slots=True)
class ChainReport:
    events: int = 0
    last_seq: int = 0
    head_hash: bytes = GENESIS
    segments: int = 0
    checkpoints: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def raise_for_problems(self) -> None:
        """Raise the typed error for the first problem (EventChainBroken / CheckpointInvalid)."""
        if not self.problems:
            return
        chain = [
            p
            for p in self.problems
            if p.seq is not None
            and p.kind is not ProblemKind.SEGMENT
            and p.kind is not ProblemKind.CHECKPOINT
        ]
        if chain:
            first = min(chain, key=lambda p: p.seq or 0)
            raise EventChainBroken(first.seq or 0, first.why)
        p = self.problems[0]
        raise CheckpointInvalid(
            p.kind.value if p.seq is None else f"{p.kind} at seq {p.seq}", p.why
        )


def _check_row(row: tuple[Any, ...], expected_seq: int, prev: bytes) -> str | None:
    """Why ``row`` does not continue the chain at ``expected_seq`` after ``prev``, or None."""
    seq, t, level, etype, run, corr, cause, actor, payload, prev_hash, h = row
    if seq != expected_seq:
        if seq > expected_seq:
            return f"event {expected_seq} is missing (the next stored event is {seq})"
        return f"out of order (stored seq {seq} where {expected_seq} belongs)"
    if not isinstance(prev_hash, bytes) or bytes(prev_hash) != prev:
        return f"prev_hash does not match the hash of event {seq - 1}"
    if not isinstance(h, bytes) or not isinstance(payload, bytes) or type(t) is not int:
        return "a column has the wrong type"
    for text in (run, corr, cause, actor):
        if text is not None and type(text) is not str:
            return "a column has the wrong type"
    try:
        data = canonical_bytes(seq, t, level, etype, run, corr, cause, actor, bytes(payload))
    except MalformedObject as exc:
        return f"cannot encode: {exc.detail}"
    if chain_hash(prev, data) != bytes(h):
        return "hash does not match the event's content"
    try:  # well formed, as emit() checked: a forged event with a right hash can fail here
        Level(level)
        check_event_type(etype)
        value = cbor.decode(bytes(payload))
    except (ValueError, SteveError, MalformedObject) as exc:
        return f"malformed field: {exc}"
    if type(value) is not dict:
        return "the payload is not a CBOR map"
    return None


def iter_verify(
    store: EventStore, *, public_key: bytes | None = None
) -> Iterator[ChainProblem | int]:
    """Yield each verified seq and each problem, as found."""
    try:
        start_head = store.head()
        expected, prev = 1, GENESIS
        broken = False
        for row in store.iter_raw_rows():
            why = _check_row(tuple(row), expected, prev)
            if why is not None:
                yield ChainProblem(ProblemKind.CHAIN, expected, why)
                broken = True
                break
            prev = bytes(row[10])
            yield expected
            expected += 1
        last = expected - 1
        if not broken:
            end_head = store.head()
            if last < start_head.seq:
                yield ChainProblem(
                    ProblemKind.HEAD,
                    last + 1,
                    f"event {last + 1} is missing: the log ends at {last}, "
                    f"its head records {start_head.seq}",
                )
            elif last > end_head.seq:
                yield ChainProblem(
                    ProblemKind.HEAD,
                    end_head.seq + 1,
                    f"event {end_head.seq + 1} is beyond the recorded head {end_head.seq}",
                )
            elif last == end_head.seq and end_head.hash != prev:
                yield ChainProblem(
                    ProblemKind.HEAD, last, "the head hash differs from the last event's hash"
                )
        limit = last if not broken else expected - 1
        yield from _verify_seals(store, limit, public_key)
    except SteveError as exc:
        yield ChainProblem(ProblemKind.DATABASE, None, f"{exc.message}: {exc.detail}")


def _verify_seals(
    store: EventStore, limit: int, public_key: bytes | None
) -> Iterator[ChainProblem]:
    keys = store.public_keys()
    for key_id, stored_key in keys.items():
        if key_id_of(stored_key) != key_id:
            yield ChainProblem(ProblemKind.CHECKPOINT, None, "a signing key's id does not match")
    pinned = None if public_key is None else key_id_of(public_key)
    expected_first = 1
    for seg in store.segments():
        what = f"segment {seg.segment}"
        if seg.first_seq != expected_first or seg.last_seq < seg.first_seq:
            yield ChainProblem(
                ProblemKind.SEGMENT,
                seg.first_seq,
                f"{what} covers {seg.first_seq}..{seg.last_seq}, expected to start at "
                f"{expected_first}",
            )
        expected_first = seg.last_seq + 1
        if seg.last_seq > limit:
            continue  # beyond the verified chain: the chain problem is reported already
        stored = store.hash_at(seg.last_seq)
        if stored != seg.head_hash:
            yield ChainProblem(
                ProblemKind.SEGMENT,
                seg.last_seq,
                f"{what} was sealed with another head hash than event {seg.last_seq} has",
            )
    for cp in store.checkpoints():
        what = f"checkpoint {cp.checkpoint}"
        pub: bytes | None = keys.get(cp.key_id)
        if pinned is not None and cp.key_id != pinned:
            yield ChainProblem(
                ProblemKind.CHECKPOINT, cp.seq, f"{what} is not signed by the pinned key"
            )
            continue
        if pub is None and public_key is not None and pinned == cp.key_id:
            pub = public_key
        if pub is None:
            yield ChainProblem(ProblemKind.CHECKPOINT, cp.seq, f"{what}: unknown signing key")
            continue
        if not verify_signature(pub, cp.signature, cp.message(store.log_id)):
            yield ChainProblem(ProblemKind.CHECKPOINT, cp.seq, f"{what}: bad signature")
            continue
        if cp.seq > limit:
            continue
        if cp.seq == 0:
            if cp.head_hash != GENESIS:
                yield ChainProblem(ProblemKind.CHECKPOINT, 0, f"{what}: bad genesis head")
        elif store.hash_at(cp.seq) != cp.head_hash:
            yield ChainProblem(
                ProblemKind.CHECKPOINT,
                cp.seq,
                f"{what} signed another head hash than event {cp.seq} has",
            )


def verify_chain(store: EventStore, *, public_key: bytes | None = None) -> ChainReport:
    report = ChainReport()
    for item in iter_verify(store, public_key=public_key):
        if isinstance(item, ChainProblem):
            report.problems.append(item)
        else:
            report.events += 1
            report.last_seq = item
    if report.last_seq:
        report.head_hash = store.hash_at(report.last_seq) or GENESIS
    report.segments = len(store.segments())
    report.checkpoints = len(store.checkpoints())
    return report
