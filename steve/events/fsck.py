"""``steve fsck`` as a library call: the store's checks, the event log's chain, and
the reconciliation of the repository's state with the events that record it.

    >>> report = fsck(repo, log)          # log=None: the store only
    >>> for item in iter_fsck(repo, log): ...   # streamed, as the CLI prints

Reconciliation (with a log) replays the state-change events in seq order,
followed by any still waiting in ``steve.db``'s outbox, and compares:

- every run with its ``run.created`` and ``run.transition`` events: each
  transition record has its event (same seq, from, to, trigger) and each
  event its record, and the stage the events end in is the run's stage;
- every ref an event names with the value the last such event gave it
  (``ref.updated``, ``ref.deleted``, ``ref.symbolic``, ``manifest.frozen``
  with a ref), and every direct ref that has a reflog with some event.

A disagreement is a ``state`` problem: something changed ``steve.db``
without its event (a hand edit with the key), or the log lost committed
events (a deleted or truncated ``events.db``, or its WAL).  Events still in
the outbox are ``undelivered`` problems.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steve.errors import SteveError
from steve.events.log import EventLog, decode_outbox_payload
from steve.events.store import Checkpoint
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.maint import FsckProblem, FsckReport, ProblemKind

_STATE_TYPES = ("run.created", "run.transition", "ref.*", "manifest.frozen")


@dataclass(frozen=True, slots=True)
class EventsVerified:
    """Yielded once by :func:`iter_fsck` after the chain was verified."""

    events: int


FsckItem = FsckProblem | ObjectId | str | EventsVerified
"""What :func:`iter_fsck` yields: a problem, a checked object id, a checked ref name,
or the event count."""


@dataclass(slots=True)
class FullReport(FsckReport):
    """:class:`steve.store.maint.FsckReport` plus the number of events verified
    (None: not asked)."""

    events: int | None = field(default=None)


def iter_fsck(
    repo: Repo,
    log: EventLog | None = None,
    *,
    public_key: bytes | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> Iterator[FsckItem]:
    """The store's checks, then (with ``log``) the chain and the reconciliation.

    ``public_key`` is the pinned checkpoint key: with it the chain check also
    reports what no signature of that key covers (see :mod:`steve.events.verify`);
    ``witnessed`` are checkpoints kept outside the repository that the log must
    still hold (the signer's record, a mirror's).
    """
    yield from repo.iter_fsck()
    if log is None:
        return
    try:
        chain = log.verify(public_key=public_key, witnessed=witnessed)
    except SteveError as exc:
        yield FsckProblem(ProblemKind.EVENTS, None, f"{exc.message}: {exc.detail}")
        return
    for problem in chain.problems:
        yield FsckProblem(ProblemKind.EVENTS, None, str(problem), problem.seq)
    yield EventsVerified(chain.events)
    try:
        yield from reconcile(repo, log)
    except SteveError as exc:
        yield FsckProblem(ProblemKind.EVENTS, None, f"{exc.message}: {exc.detail}")


def fsck(
    repo: Repo,
    log: EventLog | None = None,
    *,
    public_key: bytes | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> FullReport:
    """:func:`iter_fsck`, collected into one report."""
    report = FullReport()
    for item in iter_fsck(repo, log, public_key=public_key, witnessed=witnessed):
        if isinstance(item, FsckProblem):
            report.problems.append(item)
        elif isinstance(item, ObjectId):
            report.objects += 1
        elif isinstance(item, EventsVerified):
            report.events = item.events
        else:
            report.refs += 1
    return report


# one state-change event: (log seq or None for an outbox row, type, run id, payload)
_Change = tuple[int | None, str, str | None, Mapping[str, Any]]


def _changes(repo: Repo, log: EventLog) -> Iterator[_Change]:
    streams = [
        ((e.seq, e.event_type, e.run_id, e.payload) for e in log.events(event_type=t))
        for t in _STATE_TYPES
    ]
    yield from heapq.merge(*streams, key=lambda c: c[0])


def _state(problem: str, seq: int | None = None) -> FsckProblem:
    return FsckProblem(ProblemKind.STATE, None, problem, seq)


@dataclass(slots=True)
class _RunSeen:
    created: str | None = None  # the stage of run.created
    transitions: dict[int, tuple[int | None, Mapping[str, Any]]] = field(default_factory=dict)


def reconcile(repo: Repo, log: EventLog) -> Iterator[FsckProblem]:
    """Compare runs and refs with the state-change events (see the module doc)."""
    runs: dict[str, _RunSeen] = {}
    refs: dict[str, tuple[int | None, str | None]] = {}  # ref -> (seq, value) of last event

    def see(seq: int | None, etype: str, run_id: str | None, p: Mapping[str, Any]) -> None:
        if etype == "run.created" and run_id is not None:
            runs.setdefault(run_id, _RunSeen()).created = str(p.get("stage"))
        elif etype == "run.transition" and run_id is not None:
            number = p.get("seq")
            if isinstance(number, int):
                runs.setdefault(run_id, _RunSeen()).transitions[number] = (seq, p)
        elif etype in ("ref.updated", "ref.deleted") and isinstance(p.get("ref"), str):
            new = p.get("new")
            refs[p["ref"]] = (seq, new if isinstance(new, str) else None)
        elif etype == "ref.symbolic" and isinstance(p.get("ref"), str):
            target = p.get("target")
            refs[p["ref"]] = (seq, f"ref: {target}" if isinstance(target, str) else None)
        elif etype == "manifest.frozen" and isinstance(p.get("ref"), str):
            oid = p.get("id")
            refs[p["ref"]] = (seq, oid if isinstance(oid, str) else None)

    for change in _changes(repo, log):
        see(*change)
    for event in repo.pending_events():
        yield FsckProblem(
            ProblemKind.UNDELIVERED,
            None,
            f"outbox #{event.seq}: {event.type} committed but not yet in the event log",
        )
        try:
            payload = decode_outbox_payload(event)
        except SteveError:
            continue
        see(None, event.type, event.run_id, payload)

    yield from _reconcile_runs(repo, runs)
    yield from _reconcile_refs(repo, refs)


def _reconcile_runs(repo: Repo, runs: dict[str, _RunSeen]) -> Iterator[FsckProblem]:
    known = set()
    for run in repo.list_runs():
        known.add(run.id)
        seen = runs.get(run.id, _RunSeen())
        if seen.created is None:
            yield _state(f"run {run.id}: no run.created event")
        # the stage the events leave the run in: the last transition's, else the created one
        events_stage = seen.created
        if seen.transitions:
            to = seen.transitions[max(seen.transitions)][1].get("to")
            events_stage = to if isinstance(to, str) else None
        unmatched = dict(seen.transitions)
        for t in repo.run_transitions(run.id):
            if t.seq == 0:
                if seen.created is not None and seen.created != t.to_stage:
                    yield _state(
                        f"run {run.id}: created in {t.to_stage}, its event says {seen.created}"
                    )
                continue
            got = unmatched.pop(t.seq, None)
            if got is None:
                yield _state(f"run {run.id}: transition #{t.seq} has no run.transition event")
                continue
            seq, p = got
            want = {"seq": t.seq, "from": t.from_stage, "to": t.to_stage, "trigger": t.trigger}
            if dict(p) != want:
                yield _state(
                    f"run {run.id}: transition #{t.seq} is {t.from_stage}->{t.to_stage}, "
                    f"its event says {p.get('from')}->{p.get('to')}",
                    seq,
                )
        for number, (seq, p) in sorted(unmatched.items()):
            yield _state(
                f"run {run.id}: run.transition event #{number} ({p.get('from')}->"
                f"{p.get('to')}) has no transition record",
                seq,
            )
        if events_stage is not None and events_stage != run.stage:
            yield _state(f"run {run.id}: stage is {run.stage}, its events end in {events_stage}")
    for run_id in sorted(set(runs) - known):
        yield _state(f"run {run_id}: events record it, the runs table does not")


def _reconcile_refs(
    repo: Repo, refs: dict[str, tuple[int | None, str | None]]
) -> Iterator[FsckProblem]:
    for name, (seq, want) in sorted(refs.items()):
        record = repo.read_ref_record(name)
        have = (
            None
            if record is None
            else (record.target.hex if record.target is not None else f"ref: {record.symbolic}")
        )
        if have != want:
            yield _state(
                f"ref {name} is {have or '(absent)'}, its last event says {want or '(deleted)'}",
                seq,
            )
    for ref in repo.list_refs(""):
        direct = ref.target is not None and ref.symbolic is None
        if direct and ref.name not in refs and repo.reflog(ref.name):
            yield _state(f"ref {ref.name} has a reflog but no event records it")
