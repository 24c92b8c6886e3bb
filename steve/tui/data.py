"""What the TUI shows, read from the repository: the run's stage machine, the plan
DAG, node statuses from receipts, the run's manifests and their text.

These are the TUI's only reads of the repository (everything live comes from the
event log, see :mod:`steve.tui.follow`); each is a small function returning data,
so they can be replaced one by one by the ``steve inspect`` library's own.

    >>> view = stage_view(repo, None)              # the current run
    >>> graph = plan_graph(repo, view.run.id)      # None before a plan is frozen
    >>> states = receipt_states(repo, view.run.id, graph)
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from steve.objects.model import MANIFEST_TYPES, ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.build import split_nodes
from steve.porcelain.history import read_entry
from steve.porcelain.records import RECEIPT_REF_PREFIX, find_receipt, load_plan
from steve.porcelain.runs import Run, Stage, allowed_from, find_run, run_manifests, run_ref
from steve.porcelain.show import read_manifest, to_yaml
from steve.porcelain.steps import topological, upstream_of
from steve.repo import Repo

__all__ = [
    "Action",
    "ManifestEntry",
    "NodeState",
    "PlanGraph",
    "PlanNode",
    "StageView",
    "manifest_entries",
    "manifest_text",
    "plan_graph",
    "receipt_states",
    "stage_view",
]


class NodeState(enum.StrEnum):
    """A node's state as the TUI shows it (``step.*`` events and receipts)."""

    PENDING = "pending"  # nothing known for the current plan
    QUEUED = "queued"  # a build/test that will run it has started
    RUNNING = "running"  # step.started
    PASSED = "passed"  # step.built, or a successful receipt of this plan
    CACHED = "cached"  # step.cached: a successful receipt was reused
    FAILED = "failed"  # step.failed, or a failed receipt of this plan
    SKIPPED = "skipped"  # step.skipped: an upstream node failed


EVENT_STATES: dict[str, NodeState] = {
    "step.started": NodeState.RUNNING,
    "step.built": NodeState.PASSED,
    "step.cached": NodeState.CACHED,
    "step.failed": NodeState.FAILED,
    "step.skipped": NodeState.SKIPPED,
}


@dataclass(frozen=True, slots=True)
class Action:
    """A key that runs a real ``steve`` command (``argv`` after ``steve``)."""

    key: str
    name: str
    argv: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class StageView:
    """The run, its stage, where the state machine allows it to go, and the
    commands the TUI offers from here."""

    run: Run | None
    allowed: tuple[Stage, ...]
    actions: tuple[Action, ...]
    has_plan: bool


@dataclass(frozen=True, slots=True)
class PlanNode:
    id: str
    kind: str
    upstream: tuple[str, ...]
    depth: int  # longest path from a node without upstream
    phase: str  # "build" or "test": which command runs it


@dataclass(frozen=True, slots=True)
class PlanGraph:
    """The frozen plan's nodes in topological order and its edges."""

    plan: ObjectId
    title: str
    nodes: tuple[PlanNode, ...]
    edges: tuple[tuple[str, str], ...]

    def ids(self, phase: str) -> list[str]:
        return [n.id for n in self.nodes if n.phase == phase]


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One manifest the run points at: its label, ref and id."""

    label: str
    ref: str
    oid: ObjectId
    summary: str


def stage_view(repo: Repo, run: str | None) -> StageView:
    """The run (id, prefix or name; None: the current run, which may not exist)."""
    if run is None and repo.get_meta("current_run") is None:
        return StageView(None, (), (), False)
    found = find_run(repo, run)
    has_plan = ObjectType.PLAN in run_manifests(repo, found.id)
    allowed = tuple(allowed_from(found.stage))
    actions: list[Action] = []
    if has_plan and (found.stage is Stage.BUILD or Stage.BUILD in allowed):
        actions.append(Action("b", "build", ("build", "--run", found.id), "runs the plan's nodes"))
    if has_plan and (found.stage is Stage.TEST or Stage.TEST in allowed):
        actions.append(Action("t", "test", ("test", "--run", found.id), "runs the test nodes"))
    return StageView(found, allowed, tuple(actions), has_plan)


def plan_graph(repo: Repo, run_id: str, known: PlanGraph | None = None) -> PlanGraph | None:
    """The run's latest frozen plan as a graph (None before a plan exists); ``known``
    is returned as is when it is still that plan (nothing is decoded again)."""
    plan_id = run_manifests(repo, run_id).get(ObjectType.PLAN)
    if plan_id is None:
        return None
    if known is not None and known.plan == plan_id:
        return known
    plan = load_plan(repo, plan_id)
    ups = upstream_of(plan)
    kinds = {n.id: n.kind for n in plan.nodes}
    _, tests = split_nodes(plan)
    tested = set(tests)
    depth: dict[str, int] = {}
    nodes = []
    for nid in topological(plan):
        depth[nid] = max((depth[u] + 1 for u in ups[nid]), default=0)
        phase = "test" if nid in tested else "build"
        nodes.append(PlanNode(nid, kinds[nid], tuple(ups[nid]), depth[nid], phase))
    edges = tuple((e.from_node, e.to_node) for e in plan.edges)
    return PlanGraph(plan_id, plan.title, tuple(nodes), edges)


def receipt_states(repo: Repo, run_id: str, graph: PlanGraph) -> dict[str, NodeState]:
    """Each node's state from its receipt ref: passed or failed when the receipt is of
    this plan, pending otherwise."""
    states = {n.id: NodeState.PENDING for n in graph.nodes}
    for ref in repo.list_refs(f"{RECEIPT_REF_PREFIX}{run_id}/"):
        if ref.target is None:
            continue
        body = find_receipt(repo, ref.target)
        if body is None or body.node not in states or body.plan != graph.plan.hex:
            continue
        states[body.node] = NodeState.FAILED if body.failure else NodeState.PASSED
    return states


def manifest_entries(repo: Repo, run_id: str) -> list[ManifestEntry]:
    """The run's latest manifest of each kind, then each node's receipt (plan order)."""
    latest = run_manifests(repo, run_id)
    out = [
        ManifestEntry(kind.value, run_ref(run_id, kind), latest[kind], _summary(repo, latest[kind]))
        for kind in MANIFEST_TYPES
        if kind in latest
    ]
    receipts = [r for r in repo.list_refs(f"{RECEIPT_REF_PREFIX}{run_id}/") if r.target]
    for ref in sorted(receipts, key=lambda r: r.name):
        assert ref.target is not None
        node = ref.name.rsplit("/", 1)[1]
        out.append(
            ManifestEntry(f"receipt {node}", ref.name, ref.target, _summary(repo, ref.target))
        )
    return out


def _summary(repo: Repo, oid: ObjectId) -> str:
    return read_entry(repo, oid).summary


def manifest_text(repo: Repo, oid: ObjectId, fmt: str = "yaml") -> str:
    """The manifest exactly as ``steve cat-manifest --format yaml|json`` prints it."""
    value = read_manifest(repo, oid).to_dict()
    if fmt == "json":
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return to_yaml(value)
