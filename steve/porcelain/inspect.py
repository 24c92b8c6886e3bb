"""Inspect mode (F-INSP-001..006): what ``steve inspect`` and the TUI show.

Every function returns data (frozen dataclasses) and never prints::

    >>> state = run_state(repo, approvals_now=now)        # stage, where next, what blocks
    >>> manifests(repo)                                   # active manifests by id and title
    >>> resources(repo, events, census=census)            # store, events, containers, tokens
    >>> decisions(repo, events, now=now)                  # transitions, approvals, verdicts
    >>> error_counts(repo)                                # recurring errors by code
    >>> tail(events, LogFilter(run_id=r), limit=50)       # the newest log entries
    >>> follow(events, LogFilter(run_id=r), from_seq=n)   # then new ones as they commit

The plan DAG is :mod:`steve.porcelain.dag`.  Each query reads indexes and
small tables only (runs, refs, the manifest index, the event log's indexes),
never a scan of every object or event, so it stays fast on a repository of
100,000 manifests and 1,000,000 events (bench/bench_inspect.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steve.errors import SteveError
from steve.objects.model import MANIFEST_TYPES, ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.dag import NodeState, plan_dag, receipt_states, tested_nodes
from steve.porcelain.history import read_entry
from steve.porcelain.runs import (
    Run,
    Stage,
    allowed_from,
    current_run,
    find_run,
    run_manifests,
    run_ref,
    transitions,
)
from steve.repo import Repo
from steve.store.base import ErrorCount

if TYPE_CHECKING:
    from steve.events import Event, EventLog
    from steve.porcelain.approvals import Approval

# The event log (its signing needs the cryptography package), the approvals (the
# policy gate) and the budgets (the LLM layer) are imported by the queries that
# read them, so `steve inspect errors` or `manifests` starts without them.

__all__ = [
    "Blocker",
    "ContainerCensus",
    "Decision",
    "ErrorCount",
    "KindUsage",
    "LogFilter",
    "ManifestItem",
    "Manifests",
    "NextStage",
    "Resources",
    "RunState",
    "TokenUsage",
    "decisions",
    "error_counts",
    "follow",
    "manifests",
    "resources",
    "run_state",
    "tail",
]

RECEIPTS = "refs/receipts/"

# The command that moves a run into each stage.
STAGE_COMMAND: dict[Stage, str] = {
    Stage.DESIGN: "steve design FILE",
    Stage.RESEARCH: "steve research FILE",
    Stage.PLAN: "steve plan FILE",
    Stage.BUILD: "steve build",
    Stage.TEST: "steve test",
    Stage.DEPLOY: "steve deploy TARGET",
}


# --- state --------------------------------------------------------------------------


class BlockerKind(enum.StrEnum):
    NO_DESIGN = "no_design"
    NO_RESEARCH = "no_research"
    NO_PLAN = "no_plan"
    NO_BUILD = "no_build"
    FAILED_BUILD = "failed_build"
    NO_CERTIFICATE = "no_certificate"
    FAILING_CERTIFICATE = "failing_certificate"
    PENDING_APPROVAL = "pending_approval"


@dataclass(frozen=True, slots=True)
class Blocker:
    kind: BlockerKind
    detail: str


@dataclass(frozen=True, slots=True)
class NextStage:
    stage: Stage
    command: str  # the command that moves the run there
    blockers: tuple[Blocker, ...]  # empty: nothing stands in the way

    @property
    def ready(self) -> bool:
        return not self.blockers


@dataclass(frozen=True, slots=True)
class RunState:
    run: Run | None
    runs: int
    next: tuple[NextStage, ...]
    pending_approvals: tuple[Approval, ...]


def _blockers(
    repo: Repo, run: Run, target: Stage, latest: dict[ObjectType, ObjectId], pending: list[Approval]
) -> list[Blocker]:
    out: list[Blocker] = []
    if target is Stage.RESEARCH and run.stage is Stage.DESIGN and ObjectType.DESIGN not in latest:
        out.append(Blocker(BlockerKind.NO_DESIGN, "the run has no design manifest"))
    if target is Stage.PLAN and ObjectType.RESEARCH not in latest:
        out.append(Blocker(BlockerKind.NO_RESEARCH, "the run has no research manifest"))
    if target is Stage.BUILD and ObjectType.PLAN not in latest:
        out.append(Blocker(BlockerKind.NO_PLAN, "no frozen plan in the run"))
    if target is Stage.TEST and ObjectType.PLAN in latest:
        graph = plan_dag(repo, run.id)
        tested = tested_nodes(graph)
        built = [n for n in graph.nodes if n.id not in tested]
        states = receipt_states(repo, run.id)
        if built and not any(n.id in states for n in built):
            out.append(Blocker(BlockerKind.NO_BUILD, "no build receipt: nothing was built"))
        failed = [n.id for n in built if states.get(n.id, (None,))[0] is NodeState.FAILED]
        if failed:
            out.append(
                Blocker(
                    BlockerKind.FAILED_BUILD,
                    f"{len(failed)} failed step(s): {', '.join(failed[:5])}",
                )
            )
    if target is Stage.DEPLOY:
        cert = latest.get(ObjectType.TEST_CERTIFICATE)
        if cert is None:
            out.append(Blocker(BlockerKind.NO_CERTIFICATE, "no test certificate"))
        else:
            summary = read_entry(repo, cert).summary
            if not summary.startswith("pass"):
                out.append(
                    Blocker(
                        BlockerKind.FAILING_CERTIFICATE,
                        f"test certificate {cert.short()} is failing: {summary}",
                    )
                )
        for a in pending:
            out.append(
                Blocker(
                    BlockerKind.PENDING_APPROVAL,
                    f"approval {a.id.short()} pending: {a.request.summary}",
                )
            )
    return out


def run_state(repo: Repo, run: str | None = None, *, now: int) -> RunState:
    """The run (None: the current one, if any), its stage and each allowed next stage
    with the command that enters it and what blocks it now."""
    n_runs = len(repo.list_runs())
    found = find_run(repo, run) if run is not None else _current(repo)
    if found is None:
        return RunState(None, n_runs, (), ())
    from steve.porcelain.approvals import State, list_approvals

    pending = [
        a
        for a in list_approvals(repo, now=now)
        if a.state is State.PENDING and a.request.run in (None, found.id)
    ]
    latest = run_manifests(repo, found.id)
    nxt = []
    for stage in allowed_from(found.stage):
        blockers = _blockers(repo, found, stage, latest, pending)
        nxt.append(NextStage(stage, STAGE_COMMAND[stage], tuple(blockers)))
    return RunState(found, n_runs, tuple(nxt), tuple(pending))


def _current(repo: Repo) -> Run | None:
    return current_run(repo)


# --- manifests ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestItem:
    kind: ObjectType
    oid: ObjectId
    title: str  # the manifest's one-line summary (as `steve log` shows it)
    time: int
    ref: str


@dataclass(frozen=True, slots=True)
class Manifests:
    run: Run | None
    manifests: tuple[ManifestItem, ...]  # the latest of each kind, in stage order
    receipts: tuple[ManifestItem, ...]  # every node's latest build receipt


def manifests(repo: Repo, run: str | None = None) -> Manifests:
    """The active manifests of the run (None: the current run): the latest design,
    research, plan, build receipt, test certificate and deploy receipt, and the
    latest receipt of every node."""
    found = find_run(repo, run) if run is not None else _current(repo)
    if found is None:
        return Manifests(None, (), ())
    latest = run_manifests(repo, found.id)
    items = []
    for kind in MANIFEST_TYPES:
        if kind in latest:
            entry = read_entry(repo, latest[kind])
            items.append(
                ManifestItem(kind, latest[kind], entry.summary, entry.time, run_ref(found.id, kind))
            )
    receipts = []
    for ref in repo.list_refs(f"{RECEIPTS}{found.id}/"):
        if ref.target is not None:
            entry = read_entry(repo, ref.target)
            receipts.append(
                ManifestItem(
                    ObjectType.BUILD_RECEIPT, ref.target, entry.summary, entry.time, ref.name
                )
            )
    return Manifests(found, tuple(items), tuple(receipts))


# --- resources ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindUsage:
    kind: str  # an object type (blob, tree, tag, design, ...)
    count: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    kind: str  # container or volume
    id: str
    run: str
    step: str
    status: str  # the engine's state (running, exited...), "" for a volume
    left_behind: bool  # its owner process is gone (what `steve janitor` removes)


@dataclass(frozen=True, slots=True)
class ContainerCensus:
    """STEVE's containers and volumes on the engine, or why the engine did not answer."""

    items: tuple[ContainerInfo, ...] = ()
    unavailable: str | None = None  # "engine unavailable: why"

    @property
    def running(self) -> int:
        return sum(1 for c in self.items if c.kind == "container" and c.status == "running")

    @property
    def left_behind(self) -> int:
        return sum(1 for c in self.items if c.left_behind)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    scope: str  # project, run:R, stage:R:S, node:R:N
    used: int
    limit: int | None  # None: no budget applies


@dataclass(frozen=True, slots=True)
class Resources:
    objects: tuple[KindUsage, ...]
    disk_bytes: int  # steve.db and events.db on disk, WAL files included
    events: int  # events in the log (its head seq)
    undelivered: int  # events committed in steve.db's outbox, not yet in the log
    containers: ContainerCensus
    tokens: tuple[TokenUsage, ...] = field(default=())

    @property
    def object_count(self) -> int:
        return sum(k.count for k in self.objects)

    @property
    def object_bytes(self) -> int:
        return sum(k.bytes for k in self.objects)


def _limit_of(scope: str, limits: dict[str, int]) -> int | None:
    """The budget that applies to a usage key (see :meth:`Budgets.lines`)."""
    if scope in limits:
        return limits[scope]
    parts = scope.split(":")
    if parts[0] == "run":
        return limits.get("run")
    if parts[0] == "stage" and len(parts) == 3:
        return limits.get(f"stage:{parts[2]}", limits.get("stage"))
    if parts[0] == "node":
        return limits.get("node")
    return None


def token_usage(repo: Repo, run_id: str | None) -> list[TokenUsage]:
    """Tokens spent against budgets: the project's, and the run's (its stages and nodes)."""
    from steve.llm.budget import Budgets

    budgets = Budgets(repo)
    limits = budgets.limits()
    out = []
    for scope, used in budgets.iter_usage():
        if scope == "project" or (run_id is not None and scope.split(":")[1:2] == [run_id]):
            out.append(TokenUsage(scope, used, _limit_of(scope, limits)))
    if not any(t.scope == "project" for t in out):
        out.insert(0, TokenUsage("project", 0, limits.get("project")))
    return out


def container_census(engine_url: str | None) -> ContainerCensus:
    """STEVE's containers and volumes on the engine at ``engine_url`` (None: the local
    socket); an engine that does not answer gives ``unavailable``, never an error."""
    from steve.exec.census import list_leftovers

    try:
        found = list_leftovers(engine_url, timeout=3.0)
    except SteveError as exc:
        return ContainerCensus((), f"engine unavailable: {exc.detail or exc.message}")
    items = tuple(ContainerInfo(f.kind, f.id, f.run, f.step, f.status, f.orphan) for f in found)
    return ContainerCensus(items, None)


def resources(
    repo: Repo,
    events: EventLog,
    *,
    census: ContainerCensus,
    run: str | None = None,
) -> Resources:
    """The repository's resources: objects by type, disk, events, containers (a census
    taken by the caller, :func:`container_census`) and tokens against budgets."""
    kinds = tuple(KindUsage(t, n, b) for t, n, b in repo.object_stats())
    found = find_run(repo, run) if run is not None else _current(repo)
    return Resources(
        objects=kinds,
        disk_bytes=repo.disk_usage(),
        events=events.head().seq,
        undelivered=repo.undelivered(),
        containers=census,
        tokens=tuple(token_usage(repo, found.id if found else None)),
    )


# --- decisions ----------------------------------------------------------------------


class DecisionKind(enum.StrEnum):
    TRANSITION = "transition"
    APPROVAL = "approval"
    GATE = "gate"
    KILL_SWITCH = "kill_switch"


@dataclass(frozen=True, slots=True)
class Decision:
    time: int  # unix seconds
    kind: DecisionKind
    what: str  # DESIGN -> RESEARCH, approved deploy ..., refused network for node n
    actor: str
    reason: str | None
    ref: str | None  # the approval id, the event seq (``event:N``), the transition seq


DECISION_EVENTS = ("gate.decision", "gate.kill_switch")
MAX_DECISION_EVENTS = 1000


def decisions(
    repo: Repo, events: EventLog, run: str | None = None, *, now: int
) -> tuple[Run | None, list[Decision]]:
    """The run's decision history, oldest first: its stage transitions (with their
    triggers), the approvals asked for it and their answers, the policy gate's
    verdicts on its containers, and kill-switch changes (the newest
    :data:`MAX_DECISION_EVENTS` of each event type)."""
    from steve.porcelain.approvals import list_approvals

    found = find_run(repo, run) if run is not None else _current(repo)
    out: list[Decision] = []
    if found is not None:
        for t in transitions(repo, found.id):
            src = t.from_stage.value if t.from_stage else "(new)"
            out.append(
                Decision(
                    t.time,
                    DecisionKind.TRANSITION,
                    f"{src} -> {t.to_stage.value}",
                    t.actor,
                    t.trigger,
                    f"transition:{t.seq}",
                )
            )
    for a in list_approvals(repo, now=now):
        if found is not None and a.request.run not in (None, found.id):
            continue
        r = a.request
        out.append(
            Decision(
                r.requested_at,
                DecisionKind.APPROVAL,
                f"requested {r.kind.value} {r.subject}: {r.summary}",
                r.requested_by,
                None,
                r.id.hex,
            )
        )
        if a.answer is not None:
            verb = "approved" if a.answer.approved else "denied"
            out.append(
                Decision(
                    a.answer.at,
                    DecisionKind.APPROVAL,
                    f"{verb} {r.kind.value} {r.subject}",
                    a.answer.actor,
                    a.answer.reason,
                    r.id.hex,
                )
            )
    run_id = found.id if found is not None else None
    for event in events.latest(
        limit=MAX_DECISION_EVENTS, event_type="gate.decision", run_id=run_id
    ):
        out.append(_gate_decision(event))
    for event in events.latest(limit=MAX_DECISION_EVENTS, event_type="gate.kill_switch"):
        p = event.payload
        out.append(
            Decision(
                event.time // 1000,
                DecisionKind.KILL_SWITCH,
                f"kill switch {_text(p.get('state'))}",
                _text(p.get("by")) or _text(event.actor),
                _text(p.get("reason")) or None,
                f"event:{event.seq}",
            )
        )
    out.sort(key=lambda d: (d.time, d.kind != DecisionKind.TRANSITION))
    return found, out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _gate_decision(event: Event) -> Decision:
    p = event.payload
    what = f"{_text(p.get('decision'))} {_text(p.get('kind'))} {_text(p.get('subject'))}"
    via = _text(p.get("via"))
    rule = _text(p.get("rule"))
    reason = _text(p.get("reason")) or None
    if via:
        what += f" (via {via}{', rule ' + rule if rule else ''})"
    return Decision(
        event.time // 1000,
        DecisionKind.GATE,
        what.strip(),
        _text(p.get("actor")) or _text(event.actor),
        reason,
        f"event:{event.seq}",
    )


# --- errors -------------------------------------------------------------------------


def error_counts(repo: Repo, *, minimum: int = 1) -> list[ErrorCount]:
    """Counted error codes with at least ``minimum`` occurrences, most frequent first."""
    return [e for e in repo.error_counts() if e.count >= minimum]


# --- logs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFilter:
    run_id: str | None = None
    node: str | None = None  # a step's events and output (payload ``node``/``step``)
    correlation_id: str | None = None
    event_type: str | None = None  # TYPE or TYPE.* (a family)

    def matches_node(self, event: Event) -> bool:
        if self.node is None:
            return True
        p = event.payload
        return p.get("node") == self.node or p.get("step") == self.node


def _query(flt: LogFilter) -> dict[str, Any]:
    return {
        "run_id": flt.run_id,
        "correlation_id": flt.correlation_id,
        "event_type": flt.event_type,
    }


TAIL_PAGE = 512


def tail(events: EventLog, flt: LogFilter, *, limit: int, before: int | None = None) -> list[Event]:
    """The newest ``limit`` events matching ``flt`` with seq < ``before`` (None: all),
    oldest first (read backwards in pages: a node filter looks into payloads).  To
    follow on without a gap, read the head first, tail before ``head + 1``, then
    :func:`follow` from ``head + 1``."""
    out: list[Event] = []
    page = limit if flt.node is None else max(TAIL_PAGE, limit)
    while len(out) < limit:
        batch = events.latest(limit=page, before=before, **_query(flt))
        out.extend(e for e in batch if flt.matches_node(e))
        if len(batch) < page:
            break
        before = batch[-1].seq
    return list(reversed(out[:limit]))


def follow(
    events: EventLog,
    flt: LogFilter,
    *,
    from_seq: int,
    poll: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Matching events from ``from_seq`` on, then each new one as it commits, until
    ``stop()`` is true (like ``steve events --follow``)."""
    for event in events.follow(from_seq=from_seq, poll=poll, stop=stop, **_query(flt)):
        if flt.matches_node(event):
            yield event


def log_text(event: Event) -> tuple[str | None, str | None, str | None]:
    """(node, stream, text) of a step's output event (``log.chunk``), else
    (node or None, None, None)."""
    p = event.payload
    node = p.get("step") if isinstance(p.get("step"), str) else p.get("node")
    node = node if isinstance(node, str) else None
    data = p.get("data")
    if event.event_type == "log.chunk" and isinstance(data, bytes):
        stream = p.get("stream")
        return node, stream if isinstance(stream, str) else None, data.decode("utf-8", "replace")
    return node, None, None
