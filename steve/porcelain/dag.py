"""The plan DAG of a run, each node with its last status (what ``steve inspect dag`` draws).

    >>> dag = plan_dag(repo, None, events)          # the current run's plan
    >>> print("\\n".join(draw(dag)))                 # Unicode boxes, layered by depth
    >>> print(to_dot(dag))                          # Graphviz; to_mermaid for Mermaid

A node's status comes from its latest receipt (``refs/receipts/<run>/<node>``):
``passed`` (exit 0, no failure), ``failed``, or ``not run`` (no receipt), and
``running`` while the run's latest ``steve build``/``steve test`` has started
the node and not finished it (from the event log's ``step.*`` events).

Reads are for display and must stay fast on a large repository: the plan and
the receipts are read from their stored bodies (frozen, validated when they
were frozen) without building the pydantic models, like
:mod:`steve.objects.summary` does for ``steve log``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steve.errors import CorruptObject, MalformedObject, NoPlan
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.runs import Run, find_run, run_manifests
from steve.repo import Repo

if TYPE_CHECKING:
    from steve.events import EventLog

__all__ = [
    "Dag",
    "DagNode",
    "NodeState",
    "draw",
    "plan_dag",
    "to_dot",
    "to_mermaid",
]

RECEIPTS = "refs/receipts/"
_STARTED = ("build.started", "test.started")
_FINISHED = ("build.finished", "test.finished")
_STEP_DONE = ("step.built", "step.cached", "step.failed", "step.skipped")


class NodeState(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"
    RUNNING = "running"


@dataclass(frozen=True, slots=True)
class DagNode:
    id: str
    kind: str
    depth: int  # 0 for a node without upstream, else 1 + the deepest upstream's
    upstream: tuple[str, ...]
    state: NodeState
    receipt: ObjectId | None  # the latest receipt, if the node has run


@dataclass(frozen=True, slots=True)
class Dag:
    run: Run
    plan: ObjectId
    title: str
    nodes: tuple[DagNode, ...]  # by depth, then plan order

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(u, n.id) for n in self.nodes for u in n.upstream]

    def layers(self) -> list[list[DagNode]]:
        out: list[list[DagNode]] = []
        for n in self.nodes:
            while len(out) <= n.depth:
                out.append([])
            out[n.depth].append(n)
        return out


def _body(repo: Repo, oid: ObjectId) -> Mapping[str, Any]:
    try:
        value = cbor.decode_trusted(repo.read_raw(oid))
    except MalformedObject as exc:
        raise CorruptObject(oid.hex, exc.detail) from exc
    body = value.get("body") if isinstance(value, dict) else None
    if not isinstance(body, dict):
        raise CorruptObject(oid.hex, "a manifest without a body")
    return body


def _graph(plan_id: ObjectId, body: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(id, kind, upstream ids) per node in plan order: edge sources and input
    producers, as :func:`steve.porcelain.steps.upstream_of` counts them."""
    nodes = body.get("nodes")
    if not isinstance(nodes, list):
        raise CorruptObject(plan_id.hex, "a plan without nodes")
    ups: dict[str, list[str]] = {}
    out: list[tuple[str, str, list[str]]] = []
    for n in nodes:
        nid, kind = str(n.get("id")), str(n.get("kind"))
        ups[nid] = []
        out.append((nid, kind, ups[nid]))
    for e in body.get("edges") or []:
        src, dst = str(e.get("from_node")), str(e.get("to_node"))
        if dst in ups and src not in ups[dst]:
            ups[dst].append(src)
    for n in nodes:
        for inp in n.get("inputs") or []:
            src = inp.get("node")
            if isinstance(src, str) and src not in ups[str(n.get("id"))]:
                ups[str(n.get("id"))].append(src)
    return out


def _depths(graph: Sequence[tuple[str, str, list[str]]]) -> dict[str, int]:
    depth: dict[str, int] = {}
    pending = [g for g in graph]
    while pending:  # a frozen plan is acyclic; a cycle would stop progress
        rest = []
        for nid, _, ups in pending:
            if all(u in depth for u in ups):
                depth[nid] = 1 + max((depth[u] for u in ups), default=-1)
            else:
                rest.append((nid, _, ups))
        if len(rest) == len(pending):
            for nid, _, _ in rest:
                depth[nid] = 0
            break
        pending = rest
    return depth


def receipt_states(repo: Repo, run_id: str) -> dict[str, tuple[NodeState, ObjectId]]:
    """node -> (passed or failed, receipt) of every node's latest receipt in the run."""
    out: dict[str, tuple[NodeState, ObjectId]] = {}
    for ref in repo.list_refs(f"{RECEIPTS}{run_id}/"):
        if ref.target is None:
            continue
        body = _body(repo, ref.target)
        ok = body.get("exit_status") == 0 and not body.get("failure")
        out[str(body.get("node"))] = (NodeState.PASSED if ok else NodeState.FAILED, ref.target)
    return out


def tested_nodes(dag: Dag) -> set[str]:
    """The nodes TEST runs: ``test`` nodes and everything downstream of one (the rule
    of :func:`steve.porcelain.build.split_nodes`; BUILD runs the others)."""
    tested: set[str] = set()
    for n in dag.nodes:  # by depth: every upstream node comes first
        if n.kind == "test" or any(u in tested for u in n.upstream):
            tested.add(n.id)
    return tested


def running_nodes(events: EventLog, run_id: str) -> set[str]:
    """Nodes the run's latest build or test has started and not finished (none once
    it has finished)."""
    starts = [e.seq for t in _STARTED for e in events.latest(limit=1, run_id=run_id, event_type=t)]
    if not starts:
        return set()
    start = max(starts)
    for t in _FINISHED:
        if events.latest(limit=1, run_id=run_id, event_type=t, from_seq=start):
            return set()
    running: set[str] = set()
    for event in events.events(run_id=run_id, event_type="step.*", from_seq=start):
        node = event.payload.get("node")
        if not isinstance(node, str):
            continue
        if event.event_type == "step.started":
            running.add(node)
        elif event.event_type in _STEP_DONE:
            running.discard(node)
    return running


def plan_dag(repo: Repo, run: str | None = None, events: EventLog | None = None) -> Dag:
    """The DAG of the run's latest plan (``run``: id, prefix or name; None: the current
    run) with each node's last status; ``events`` (optional) tells running nodes."""
    found = find_run(repo, run)
    plan_id = run_manifests(repo, found.id).get(ObjectType.PLAN)
    if plan_id is None:
        raise NoPlan(found.id)
    body = _body(repo, plan_id)
    graph = _graph(plan_id, body)
    depth = _depths(graph)
    states = receipt_states(repo, found.id)
    running = running_nodes(events, found.id) if events is not None else set()
    order = {nid: i for i, (nid, _, _) in enumerate(graph)}
    nodes = []
    for nid, kind, ups in graph:
        state, receipt = states.get(nid, (NodeState.NOT_RUN, None))
        if nid in running:
            state = NodeState.RUNNING
        nodes.append(DagNode(nid, kind, depth[nid], tuple(ups), state, receipt))
    nodes.sort(key=lambda n: (n.depth, order[n.id]))
    return Dag(found, plan_id, str(body.get("title", "")), tuple(nodes))


# --- drawings ------------------------------------------------------------------------

_MARK = {
    NodeState.PASSED: ("✔", "ok"),
    NodeState.FAILED: ("✘", "FAIL"),
    NodeState.NOT_RUN: ("·", "--"),
    NodeState.RUNNING: ("▶", ">>"),
}
_BOX = {False: ("┌", "┐", "└", "┘", "─", "│", "▼"), True: ("+", "+", "+", "+", "-", "|", "v")}


def _safe(text: str) -> str:
    """A node id or kind for a terminal: control characters shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


def draw(dag: Dag, *, ascii: bool = False, width: int = 100) -> list[str]:
    """The DAG as lines of text: one row of boxes per depth (wrapped at ``width``
    columns), each box the node id, its kind and status, and under each box the
    nodes it waits for (``◀ a, b``)."""
    tl, tr, bl, br, h, v, down = _BOX[ascii]
    lines = [f"plan {dag.plan.short()} {_safe(dag.title)}  (run {dag.run.id}, {dag.run.stage})"]
    for i, layer in enumerate(dag.layers()):
        if i:
            lines.append(f"  {down}")
        boxes = []
        for n in layer:
            mark = _MARK[n.state][1 if ascii else 0]
            label = f"{mark} {_safe(n.id)}"
            sub = f"{_safe(n.kind)}: {n.state.value}"
            inner = max(len(label), len(sub))
            waits = ("<- " if ascii else "◀ ") + ", ".join(_safe(u) for u in n.upstream)
            boxes.append(
                [
                    tl + h * (inner + 2) + tr,
                    f"{v} {label.ljust(inner)} {v}",
                    f"{v} {sub.ljust(inner)} {v}",
                    bl + h * (inner + 2) + br,
                    waits if n.upstream else "",
                ]
            )
        row: list[list[str]] = []
        used = 0
        for box in boxes:
            w = max(len(s) for s in box) + 2
            if row and used + w > width:
                lines.extend(_join(row))
                row, used = [], 0
            row.append(box)
            used += w
        if row:
            lines.extend(_join(row))
    return [line.rstrip() for line in lines]


def _join(row: list[list[str]]) -> list[str]:
    widths = [max(len(s) for s in box) for box in row]
    out = []
    for k in range(5):
        out.append("  ".join(box[k].ljust(w) for box, w in zip(row, widths, strict=True)))
    if not any(box[4] for box in row):
        out.pop()
    return out


_DOT_ID = re.compile(r"[^A-Za-z0-9_]")
_DOT_COLOR = {
    NodeState.PASSED: "palegreen",
    NodeState.FAILED: "salmon",
    NodeState.NOT_RUN: "white",
    NodeState.RUNNING: "lightblue",
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(dag: Dag) -> str:
    """The DAG in Graphviz's DOT language (node names quoted, so any id is safe)."""
    lines = [
        f"digraph {_dot_string('plan ' + dag.plan.hex)} {{",
        "  rankdir=TB;",
        "  node [shape=box, style=filled];",
    ]
    for n in dag.nodes:
        label = _dot_string(f"{n.id}\n{n.kind}: {n.state.value}")
        lines.append(
            f"  {_dot_string(n.id)} [label={label}, fillcolor={_DOT_COLOR[n.state]}, "
            f"status={_dot_string(n.state.value)}];"
        )
    for src, dst in dag.edges:
        lines.append(f"  {_dot_string(src)} -> {_dot_string(dst)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(index: int) -> str:
    return f"n{index}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", " ")


def to_mermaid(dag: Dag) -> str:
    """The DAG as a Mermaid flowchart (node ids ``n0``, ``n1``... with the real id in
    the label, so any id is safe), with a class per status."""
    ids = {n.id: _mermaid_id(i) for i, n in enumerate(dag.nodes)}
    lines = ["flowchart TD"]
    for n in dag.nodes:
        label = _mermaid_text(f"{n.id} ({n.kind}): {n.state.value}")
        lines.append(f'  {ids[n.id]}["{label}"]')
    for src, dst in dag.edges:
        if src in ids:
            lines.append(f"  {ids[src]} --> {ids[dst]}")
    for state, color in _DOT_COLOR.items():
        name = state.name.lower()
        lines.append(f"  classDef {name} fill:{color}")
    for n in dag.nodes:
        lines.append(f"  class {ids[n.id]} {n.state.name.lower()}")
    return "\n".join(lines) + "\n"
