"""Step output, labelled: what ``steve logs`` prints.

    >>> for section in step_logs(repo, "R1"):              # a run: every node's receipt
    ...     print(section.node, section.stream, repo.read_blob(section.blob))

:func:`step_logs` reads the log objects a receipt labels (stdout, stderr;
a v1 receipt's unlabelled logs read as stdout then stderr).  ``target`` is
a receipt (any revision naming a build receipt) or a run (id, prefix or
name; default: the current run), whose node receipts
(``refs/receipts/<run>/*``) are listed in the plan's order.

:func:`follow_logs` follows a run's output live from the event log
(``log.chunk`` events, spooled while the steps run), from the start of the
run's latest ``steve build`` or ``steve test`` until it finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from steve.errors import InvalidInput, RunNotFound, SteveError
from steve.events import EventLog
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import LogStream
from steve.porcelain.records import RECEIPT_REF_PREFIX, load_plan, read_receipt
from steve.porcelain.runs import find_run, run_manifests
from steve.repo import Repo

__all__ = ["LogPiece", "LogSection", "follow_logs", "step_logs"]

STARTED = ("build.started", "test.started")
FINISHED = ("build.finished", "test.finished")


@dataclass(frozen=True, slots=True)
class LogSection:
    """One stream of one step: where its bytes are (read with ``repo.iter_content``)."""

    node: str
    receipt: ObjectId
    stream: LogStream
    blob: ObjectId
    size: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class LogPiece:
    """A piece of a running step's output, as the event log has it."""

    node: str
    stream: str
    data: bytes


def step_logs(
    repo: Repo, target: str | None = None, *, node: str | None = None
) -> list[LogSection]:
    """The labelled log objects of a receipt, or of every node receipt of a run (see
    the module docstring); ``node`` keeps one node's."""
    receipts = _receipts(repo, target)
    out: list[LogSection] = []
    for oid in receipts:
        body = read_receipt(repo, oid)
        if node is not None and body.node != node:
            continue
        for ref in body.logs:
            blob = ObjectId.from_hex(ref.blob)
            size = repo.object_info(blob).size if repo.has_object(blob) else 0
            out.append(LogSection(body.node, oid, ref.stream, blob, size, ref.truncated))
    if node is not None and not out:
        raise InvalidInput("no such node in these receipts", f"node {node!r}")
    return out


def _receipts(repo: Repo, target: str | None) -> list[ObjectId]:
    if target is not None:
        try:
            oid = repo.rev_parse(target)
        except SteveError:
            oid = None
        if oid is not None and repo.object_type(oid) is ObjectType.BUILD_RECEIPT:
            return [oid]
    try:
        run = find_run(repo, target)
    except RunNotFound as exc:
        if target is None:
            raise
        raise RunNotFound(target, "neither a build receipt nor a run") from exc
    refs = [r for r in repo.list_refs(f"{RECEIPT_REF_PREFIX}{run.id}/") if r.target is not None]
    receipts = [r.target for r in refs if r.target is not None]
    plan = run_manifests(repo, run.id).get(ObjectType.PLAN)
    if plan is None or not receipts:
        if not receipts:
            raise InvalidInput(
                "the run has no receipts",
                f"run {run.id}: no step has run yet",
                action="Run `steve build` first (or `steve test`), then `steve logs`.",
            )
        return receipts
    order = {n.id: i for i, n in enumerate(load_plan(repo, plan).nodes)}
    nodes = {oid: read_receipt(repo, oid).node for oid in receipts}
    return sorted(receipts, key=lambda oid: (order.get(nodes[oid], len(order)), nodes[oid]))


def latest_start(log: EventLog, run_id: str) -> int | None:
    """The event seq of the run's latest ``steve build``/``steve test`` start; None when
    none has started yet (:func:`follow_logs` then waits for the next one)."""
    seqs = [e.seq for kind in STARTED for e in log.events(run_id=run_id, event_type=kind)]
    return max(seqs, default=None)


def follow_logs(
    log: EventLog,
    run_id: str,
    *,
    node: str | None = None,
    poll: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> Iterator[LogPiece]:
    """A run's step output as it is spooled into the event log: from the start of its
    latest ``steve build``/``steve test`` (or the next one) until that one finishes."""
    start = latest_start(log, run_id) or 1
    for event in log.follow(run_id=run_id, from_seq=start, poll=poll, stop=stop):
        if event.event_type in FINISHED:
            return
        if event.event_type != "log.chunk":
            continue
        p = event.payload
        step, stream, data = p.get("step"), p.get("stream"), p.get("data")
        if not isinstance(step, str) or not isinstance(stream, str):
            continue
        if not isinstance(data, bytes) or (node is not None and step != node):
            continue
        yield LogPiece(step, stream, data)
