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
Ed25519 signature must verify.  A segment or checkpoint whose seq lies past
the end of the log is evidence that the log was cut after it was sealed.

With a pinned public key, only checkpoints signed by that key (and
checkpoints witnessed elsewhere, e.g. in an export-git mirror) *cover* the
chain: everything up to the highest such seq is signed, the rest is the
*unsigned tail*, reported by its length.  ``require_sealed`` (the default
with a pinned key) fails when the :class:`~steve.events.store.Rotation`
policy says a seal was due inside the unsigned tail: the rule depends only
on the events' count, payload sizes and times, which the chain protects, so
deleting the seals and checkpoints of a long log cannot hide that they were
due.  A tail shorter than one segment cannot be told from a log that was
never sealed; docs/events.md says what that lets an attacker hide.
"""

from __future__ import annotations

import enum
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from steve.errors import (
    CheckpointInvalid,
    EventChainBroken,
    EventLogUnsigned,
    MalformedObject,
    SteveError,
)
from steve.events.model import GENESIS, Level, canonical_bytes, chain_hash, check_event_type
from steve.events.signing import key_id_of, verify_signature
from steve.events.store import Checkpoint, EventStore, Rotation, Segment, segments_through
from steve.objects import cbor


class ProblemKind(enum.StrEnum):
    CHAIN = "chain"
    HEAD = "head"
    SEGMENT = "segment"
    CHECKPOINT = "checkpoint"
    UNSIGNED = "unsigned"
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
    pinned_key: bytes | None = None
    signed_seq: int | None = None
    """The highest seq a valid signature of the pinned key covers (0: none); None
    when no key was pinned."""
    seal_due: int | None = None
    """The first seq in the unsigned tail where the rotation policy required a seal."""

    @property
    def unsigned_events(self) -> int | None:
        """Events no signature of the pinned key covers (None when no key was pinned)."""
        if self.signed_seq is None:
            return None
        return max(0, self.last_seq - self.signed_seq)

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
            and p.kind in (ProblemKind.CHAIN, ProblemKind.HEAD, ProblemKind.DATABASE)
        ]
        if chain:
            first = min(chain, key=lambda p: p.seq or 0)
            raise EventChainBroken(first.seq or 0, first.why)
        seals = [
            p
            for p in self.problems
            if p.kind is ProblemKind.CHECKPOINT or p.kind is ProblemKind.SEGMENT
        ]
        unsigned = [p for p in self.problems if p.kind is ProblemKind.UNSIGNED]
        if unsigned and not seals:
            raise EventLogUnsigned(unsigned[0].seq or 0, unsigned[0].why)
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


@dataclass(slots=True)
class _Coverage:
    """What the pinned key's signatures cover (found before the walk)."""

    signed_seq: int | None
    seal_due: int | None = None


def iter_verify(
    store: EventStore,
    *,
    public_key: bytes | None = None,
    require_sealed: bool | None = None,
    witnessed: Sequence[Checkpoint] = (),
    coverage: _Coverage | None = None,
) -> Iterator[ChainProblem | int]:
    """Yield each verified seq and each problem, as found.

    ``witnessed``: checkpoints kept outside the database (an export-git mirror,
    a record the signer kept); each must verify with ``public_key`` and match
    the log, and counts as coverage even when its row was deleted.
    """
    cov = coverage if coverage is not None else _Coverage(None)
    if require_sealed is None:
        require_sealed = public_key is not None
    try:
        if public_key is not None:
            cov.signed_seq = yield from _signed_coverage(store, public_key, witnessed)
        start_head = store.head()
        expected, prev = 1, GENESIS
        broken = False
        tail = _TailPolicy(store.rotation, (cov.signed_seq or 0) + 1)
        for row in store.iter_raw_rows():
            why = _check_row(tuple(row), expected, prev)
            if why is not None:
                yield ChainProblem(ProblemKind.CHAIN, expected, why)
                broken = True
                break
            prev = bytes(row[10])
            if cov.signed_seq is not None and cov.seal_due is None:
                cov.seal_due = tail.due(expected, row[1], len(row[8]))
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
        yield from _verify_seals(store, last, broken, public_key)
        if not broken and require_sealed and cov.seal_due is not None:
            signed = cov.signed_seq or 0
            yield ChainProblem(
                ProblemKind.UNSIGNED,
                cov.seal_due,
                f"the rotation policy required a seal by seq {cov.seal_due}, but no checkpoint "
                f"signed by the pinned key covers events {signed + 1}..{last}",
            )
    except SteveError as exc:
        yield ChainProblem(ProblemKind.DATABASE, None, f"{exc.message}: {exc.detail}")


class _TailPolicy:
    """The :class:`Rotation` rule replayed over the unsigned tail, as if a segment
    began at its first event (the real segment began there or earlier, so a seal
    this finds due was due at the latest there)."""

    def __init__(self, rotation: Rotation, first: int) -> None:
        self.rotation = rotation
        self.first = first
        self.size = 0
        self.opened = 0

    def due(self, seq: int, time_ms: int, size: int) -> int | None:
        if seq < self.first:
            return None
        if seq == self.first:
            self.opened = time_ms
        self.size += size
        r = self.rotation
        if r.reason(seq - self.first + 1, self.size, time_ms - self.opened - AGE_SLACK_MS):
            return seq
        return None


AGE_SLACK_MS = 3600 * 1000
"""Clock disorder tolerated by the age rule when it is replayed (events are timed by
the processes that emitted them)."""


def signature_ok(
    log_id: str, cp: Checkpoint, public_key: bytes, segments: Sequence[Segment]
) -> bool:
    """Whether ``cp`` is signed by ``public_key``, given the stored ``segments`` (a
    version 2 checkpoint signs how many end at or before it; version 1, from logs
    made before issue 12, does not).

    A segment sealed at exactly ``cp.seq`` may have been sealed after the checkpoint
    was signed (a checkpoint, then a seal, of the same head), so the count may also
    be one less; any other deleted seal changes the count it signed.
    """
    return signed_message(log_id, cp, public_key, segments) is not None


def signed_message(
    log_id: str, cp: Checkpoint, public_key: bytes, segments: Sequence[Segment]
) -> bytes | None:
    """The bytes ``public_key`` signed for ``cp`` (see :func:`signature_ok`), or None."""
    n = segments_through(segments, cp.seq)
    counts: list[int | None] = [n, n - 1] if any(s.last_seq == cp.seq for s in segments) else [n]
    for count in [*counts, None]:
        message = cp.message(log_id, count)
        if verify_signature(public_key, cp.signature, message):
            return message
    return None


def signed_checkpoints(store: EventStore, public_key: bytes) -> list[tuple[Checkpoint, bytes]]:
    """Every checkpoint ``public_key`` signed, with the message it signed (to export)."""
    pinned = key_id_of(public_key)
    segments = store.segments()
    out = []
    for cp in store.checkpoints():
        if cp.key_id == pinned:
            message = signed_message(store.log_id, cp, public_key, segments)
            if message is not None:
                out.append((cp, message))
    return out


def witnessed_checkpoint(message: bytes, signature: bytes, public_key: bytes) -> Checkpoint:
    """A checkpoint kept elsewhere (an export-git mirror), from the message its key
    signed, to pass to :func:`verify_chain` as ``witnessed`` (MalformedObject if the
    message is not a checkpoint message)."""
    value = cbor.decode(message)
    if type(value) is not dict:
        raise MalformedObject("a checkpoint message is a CBOR map")
    seq, head, time_ms = value.get("seq"), value.get("head"), value.get("time")
    if type(seq) is not int or type(head) is not bytes or type(time_ms) is not int:
        raise MalformedObject("a checkpoint message has int seq, bytes head, int time")
    return Checkpoint(0, seq, head, time_ms, key_id_of(public_key), signature)


def _pinned_checkpoint_ok(
    store: EventStore, cp: Checkpoint, public_key: bytes, segments: Sequence[Segment]
) -> str | None:
    """Why ``cp`` does not prove the log up to its seq with ``public_key``, or None."""
    stored = GENESIS if cp.seq == 0 else store.hash_at(cp.seq)
    if stored is None:
        return f"signed seq {cp.seq}, past the end of the log"
    if not signature_ok(store.log_id, cp, public_key, segments):
        return "bad signature (or the segments it signed were changed)"
    if stored != cp.head_hash:
        return f"signed another head hash than event {cp.seq} has"
    return None


def _signed_coverage(
    store: EventStore, public_key: bytes, witnessed: Sequence[Checkpoint]
) -> Generator[ChainProblem, None, int]:
    """Problems of the witnessed checkpoints; returns the highest seq covered by a
    valid pinned signature (0 if none)."""
    pinned = key_id_of(public_key)
    signed = 0
    stored = store.checkpoints()
    segments = store.segments()
    for cp in stored:
        if cp.key_id == pinned and _pinned_checkpoint_ok(store, cp, public_key, segments) is None:
            signed = max(signed, cp.seq)
    kept = {(cp.seq, cp.head_hash, cp.time, cp.signature) for cp in stored}
    for cp in witnessed:
        why = _pinned_checkpoint_ok(store, cp, public_key, segments)
        if why is None and (cp.seq, cp.head_hash, cp.time, cp.signature) not in kept:
            why = "it is missing from the log (checkpoints were deleted)"
        if why is not None:
            yield ChainProblem(
                ProblemKind.CHECKPOINT, cp.seq, f"witnessed checkpoint of seq {cp.seq}: {why}"
            )
        else:
            signed = max(signed, cp.seq)
    return signed


def _verify_seals(
    store: EventStore, last: int, broken: bool, public_key: bytes | None
) -> Iterator[ChainProblem]:
    """Segments and checkpoints against the chain verified up to ``last``."""
    keys = store.public_keys()
    for key_id, stored_key in keys.items():
        if key_id_of(stored_key) != key_id:
            yield ChainProblem(ProblemKind.CHECKPOINT, None, "a signing key's id does not match")
    pinned = None if public_key is None else key_id_of(public_key)
    expected_first = 1
    segments = store.segments()
    for seg in segments:
        what = f"segment {seg.segment}"
        if seg.first_seq != expected_first or seg.last_seq < seg.first_seq:
            yield ChainProblem(
                ProblemKind.SEGMENT,
                seg.first_seq,
                f"{what} covers {seg.first_seq}..{seg.last_seq}, expected to start at "
                f"{expected_first}",
            )
        expected_first = seg.last_seq + 1
        yield from _past_end(store, what, "sealed", seg.last_seq, seg.head_hash, last, broken)
        if seg.last_seq > last:
            continue
        if store.hash_at(seg.last_seq) != seg.head_hash:
            yield ChainProblem(
                ProblemKind.SEGMENT,
                seg.last_seq,
                f"{what} was sealed with another head hash than event {seg.last_seq} has",
            )
    if not broken:
        head = store.head()
        if head.segment_first > expected_first and store.segments()[-1:] != segments[-1:]:
            # sealed by another process meanwhile: compare with what is there now
            segments = store.segments()
            expected_first = segments[-1].last_seq + 1
        if head.segment_first != expected_first and head.seq >= expected_first - 1:
            yield ChainProblem(
                ProblemKind.SEGMENT,
                head.segment_first,
                f"the open segment starts at {head.segment_first}, the last sealed segment "
                f"ends at {expected_first - 1}",
            )
    for cp in store.checkpoints():
        what = f"checkpoint {cp.checkpoint}"
        pub = keys.get(cp.key_id)
        if pub is None and cp.key_id == pinned:
            pub = public_key
        if pub is None:
            yield ChainProblem(ProblemKind.CHECKPOINT, cp.seq, f"{what}: unknown signing key")
            continue
        if not signature_ok(store.log_id, cp, pub, segments):
            yield ChainProblem(
                ProblemKind.CHECKPOINT,
                cp.seq,
                f"{what}: bad signature (or the segments it signed were changed)",
            )
            continue
        # a valid signature by another key than the pinned one proves nothing (whoever
        # holds the repository key could have made it) but is no evidence of tampering:
        # logs made before signing keys left the database carry them
        yield from _past_end(store, what, "signed", cp.seq, cp.head_hash, last, broken)
        if cp.seq > last:
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


def _past_end(
    store: EventStore, what: str, verb: str, seq: int, head_hash: bytes, last: int, broken: bool
) -> Iterator[ChainProblem]:
    """A seal or checkpoint past the verified end of the log: evidence of a cut
    (unless the chain broke earlier, already reported, or the events were appended
    while verifying, which the stored hash shows)."""
    if seq <= last or broken:
        return
    if store.hash_at(seq) == head_hash:
        return  # appended (and sealed) after the walk passed: not verified, not missing
    yield ChainProblem(
        ProblemKind.HEAD,
        last + 1,
        f"{what} {verb} seq {seq}, but the log ends at {last}: events were removed",
    )


def verify_chain(
    store: EventStore,
    *,
    public_key: bytes | None = None,
    require_sealed: bool | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> ChainReport:
    """Verify ``store`` (see the module docstring); ``require_sealed`` defaults to
    whether ``public_key`` is given."""
    report = ChainReport(pinned_key=public_key)
    cov = _Coverage(None)
    for item in iter_verify(
        store,
        public_key=public_key,
        require_sealed=require_sealed,
        witnessed=witnessed,
        coverage=cov,
    ):
        if isinstance(item, ChainProblem):
            report.problems.append(item)
        else:
            report.events += 1
            report.last_seq = item
    if report.last_seq:
        report.head_hash = store.hash_at(report.last_seq) or GENESIS
    report.segments = len(store.segments())
    report.checkpoints = len(store.checkpoints())
    if cov.signed_seq is not None:
        report.signed_seq = min(cov.signed_seq, report.last_seq)
    report.seal_due = cov.seal_due
    return report
