"""The Plan Manifest (frozen plan), schema version 1: an executable DAG.

Nodes run in containers whose image is pinned by digest; edges order them.
Rules checked on freeze: node ids unique, every edge names existing nodes,
the graph is acyclic, every node input is either produced (a declared
output) by a node upstream of it or pinned to an object id.  Budgets are
integers: tokens, milliseconds, bytes.

Containers run with a locked-down default policy (no network, read-only
root, all capabilities dropped, non-root user, pid/memory/cpu limits; see
``steve.exec.policy``).  A node asks for more with ``network: true``,
``budgets.memory_bytes`` above the default, or its ``requests``; each such
request is refused at freeze unless the plan's ``grants`` hold a grant for
that node and capability, with a reason.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    Count,
    ImageDigest,
    ManifestBody,
    Name,
    NodeId,
    Oid,
    Problem,
    Strict,
    Text,
)

NodeKind = Literal["run", "test", "generate", "gate"]
PathName = str

# What a node may ask for beyond the default container policy; each needs a grant.
Capability = Literal[
    "network",
    "host_network",
    "privileged",
    "host_mount",
    "writable_root",
    "memory",
    "pids",
    "cpu",
    "cap_add",
    "root_user",
    "host_pid",
    "host_ipc",
]
CAPABILITIES: tuple[str, ...] = Capability.__args__  # type: ignore[attr-defined]

# The default container limits a node gets without a grant (steve.exec.policy uses them).
DEFAULT_MEMORY_BYTES = 1 << 30
DEFAULT_PIDS = 256
DEFAULT_CPU_MILLIS = 1000
DEFAULT_USER = "65534:65534"
# Per-node limits every step gets (docs/manifests.md, "Limits"): wall-clock time, bytes
# written into the work dir (and collected as outputs), bytes of each log stream kept.
# A plan changes them for all its nodes with a policy of the same name
# (``policies: [{name: time_ms, value: 600000}]``); ``budgets.time_ms`` sets one node's.
DEFAULT_TIME_MS = 3_600_000
DEFAULT_OUTPUT_BYTES = 1 << 30
DEFAULT_LOG_BYTES = 16 << 20
LIMIT_POLICIES: dict[str, int] = {
    "time_ms": DEFAULT_TIME_MS,
    "output_bytes": DEFAULT_OUTPUT_BYTES,
    "log_bytes": DEFAULT_LOG_BYTES,
}

AbsPath = Annotated[str, Field(pattern=r"^/[^\x00]*$", max_length=4096)]
UserSpec = Annotated[str, Field(pattern=r"^[0-9]{1,10}:[0-9]{1,10}$", description="uid:gid")]


class Budgets(Strict):
    tokens: Count = 0
    time_ms: Count = Field(
        default=0,
        description=(
            f"wall-clock limit, milliseconds (0: the plan's time_ms policy, else {DEFAULT_TIME_MS})"
        ),
    )
    memory_bytes: Count = Field(default=0, description="memory limit, bytes (0: none)")


class NodeInput(Strict):
    """An input: produced upstream (``node`` + ``output``) or pinned (``pinned`` id)."""

    name: Name
    node: NodeId | None = None
    output: Name | None = None
    pinned: Oid | None = None


def _above(value: int | None, default: int) -> bool:
    """A limit above the default (0 means unlimited); None means the default."""
    return value is not None and (value == 0 or value > default)


class HostMount(Strict):
    source: AbsPath
    target: AbsPath
    read_only: bool = True


class NodeRequests(Strict):
    """Container privileges beyond the defaults; every one needs a plan grant."""

    host_network: bool = False
    privileged: bool = False
    host_mounts: list[HostMount] = Field(default_factory=list)
    writable_root: bool = False
    pids: Count | None = Field(default=None, description=f"pids limit (default {DEFAULT_PIDS})")
    cpu_millis: Count | None = Field(
        default=None, description=f"CPU limit, 1/1000 CPU (default {DEFAULT_CPU_MILLIS})"
    )
    cap_add: list[Name] = Field(default_factory=list)
    user: UserSpec | None = Field(default=None, description=f"uid:gid (default {DEFAULT_USER})")
    host_pid: bool = False
    host_ipc: bool = False


class Node(Strict):
    id: NodeId
    kind: NodeKind
    command: list[str] = Field(min_length=1)
    image: ImageDigest
    env: dict[str, str] = Field(default_factory=dict)
    inputs: list[NodeInput] = Field(default_factory=list)
    outputs: list[Name] = Field(default_factory=list)
    network: bool = Field(
        default=False, description="network access requested (needs a 'network' grant)"
    )
    budgets: Budgets = Field(default_factory=Budgets)
    requests: NodeRequests = Field(default_factory=NodeRequests)
    nondeterminism: list[Text] = Field(
        default_factory=list,
        description="declared non-deterministic aspects (a replay mismatch is then expected)",
    )

    def requested_capabilities(self) -> list[tuple[str, Capability]]:
        """(field path inside the node, capability) for every request beyond the defaults."""
        r = self.requests
        out: list[tuple[str, Capability]] = []
        if self.network:
            out.append(("network", "network"))
        if self.budgets.memory_bytes > DEFAULT_MEMORY_BYTES:
            out.append(("budgets.memory_bytes", "memory"))
        checks: list[tuple[bool, str, Capability]] = [
            (r.host_network, "host_network", "host_network"),
            (r.privileged, "privileged", "privileged"),
            (bool(r.host_mounts), "host_mounts", "host_mount"),
            (r.writable_root, "writable_root", "writable_root"),
            (_above(r.pids, DEFAULT_PIDS), "pids", "pids"),
            (_above(r.cpu_millis, DEFAULT_CPU_MILLIS), "cpu_millis", "cpu"),
            (bool(r.cap_add), "cap_add", "cap_add"),
            (r.user is not None and r.user.split(":")[0] == "0", "user", "root_user"),
            (r.host_pid, "host_pid", "host_pid"),
            (r.host_ipc, "host_ipc", "host_ipc"),
        ]
        out.extend((f"requests.{path}", cap) for wanted, path, cap in checks if wanted)
        return out


class Grant(Strict):
    """An explicit permission for one node to use one capability beyond the defaults."""

    node: NodeId
    capability: Capability
    reason: Text = Field(min_length=1)


class Edge(Strict):
    from_node: NodeId
    to_node: NodeId


class Policy(Strict):
    name: Name
    value: str | int | bool


@dataclass(frozen=True, slots=True)
class NodeLimits:
    """The limits a node's step runs under (see :meth:`PlanManifest.limits_for`)."""

    time_ms: int
    output_bytes: int
    log_bytes: int


class PlanManifest(ManifestBody):
    KIND: ClassVar[str] = "plan"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("nodes.inputs.pinned",)

    title: Name
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)
    grants: list[Grant] = Field(default_factory=list)
    environment: dict[str, str] = Field(
        default_factory=dict, description="environment pins, e.g. python: 3.12.4"
    )
    notes: Text | None = None

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        ids = [n.id for n in self.nodes]
        seen: set[str] = set()
        for i, nid in enumerate(ids):
            if nid in seen:
                out.append((f"nodes[{i}].id", f"unique: node {nid!r} is defined more than once"))
            seen.add(nid)
        seen_policy: set[str] = set()
        for i, p in enumerate(self.policies):
            if p.name in seen_policy:
                out.append((f"policies[{i}].name", f"unique: policy {p.name!r} repeated"))
            seen_policy.add(p.name)
            if p.name in LIMIT_POLICIES and (type(p.value) is not int or p.value <= 0):
                out.append(
                    (
                        f"policies[{i}].value",
                        f"limit: {p.name} is a limit, a positive integer "
                        f"(default {LIMIT_POLICIES[p.name]})",
                    )
                )
        out.extend(self._grant_problems())
        for i, n in enumerate(self.nodes):
            dup_out: set[str] = set()
            for j, o in enumerate(n.outputs):
                if o in dup_out:
                    out.append((f"nodes[{i}].outputs[{j}]", f"unique: output {o!r} repeated"))
                dup_out.add(o)
        succ: dict[str, set[str]] = {nid: set() for nid in ids}
        edge_ok = True
        seen_edges: set[tuple[str, str]] = set()
        for i, e in enumerate(self.edges):
            for end in ("from_node", "to_node"):
                name = getattr(e, end)
                if name not in succ:
                    out.append((f"edges[{i}].{end}", f"edge_node: no node {name!r}"))
                    edge_ok = False
            if e.from_node == e.to_node:
                out.append((f"edges[{i}]", f"acyclic: self-loop on {e.from_node!r}"))
                edge_ok = False
            if (e.from_node, e.to_node) in seen_edges:
                out.append((f"edges[{i}]", "unique: edge repeated"))
            seen_edges.add((e.from_node, e.to_node))
            if e.from_node in succ and e.to_node in succ:
                succ[e.from_node].add(e.to_node)
        if not edge_ok:
            return out
        order = _topological(succ)
        if order is None:
            cyclic = sorted(_cycle_members(succ))
            out.append(("edges", f"acyclic: the graph has a cycle through {', '.join(cyclic)}"))
            return out
        ancestors = _ancestors(succ, order)
        outputs = {n.id: set(n.outputs) for n in self.nodes}
        for i, n in enumerate(self.nodes):
            names: set[str] = set()
            for j, inp in enumerate(n.inputs):
                path = f"nodes[{i}].inputs[{j}]"
                if inp.name in names:
                    out.append((f"{path}.name", f"unique: input {inp.name!r} repeated"))
                names.add(inp.name)
                produced = inp.node is not None or inp.output is not None
                if produced == (inp.pinned is not None):
                    out.append((path, "input_source: give either node+output or pinned, not both"))
                    continue
                if inp.pinned is not None:
                    continue
                if inp.node is None or inp.output is None:
                    out.append((path, "input_source: node and output go together"))
                elif inp.node not in outputs:
                    out.append((f"{path}.node", f"input_node: no node {inp.node!r}"))
                elif inp.node not in ancestors[n.id]:
                    out.append(
                        (f"{path}.node", f"upstream: {inp.node!r} is not upstream of {n.id!r}")
                    )
                elif inp.output not in outputs[inp.node]:
                    out.append(
                        (
                            f"{path}.output",
                            f"declared_output: {inp.node!r} declares no {inp.output!r}",
                        )
                    )
        return out

    def limits_for(self, node: Node) -> NodeLimits:
        """The node's limits: its ``budgets.time_ms``, else the plan's limit policies,
        else the defaults (``DEFAULT_TIME_MS``, ``DEFAULT_OUTPUT_BYTES``, ``DEFAULT_LOG_BYTES``)."""
        values = dict(LIMIT_POLICIES)
        for p in self.policies:
            if p.name in values and type(p.value) is int and p.value > 0:
                values[p.name] = p.value
        time_ms = node.budgets.time_ms or values["time_ms"]
        return NodeLimits(time_ms, values["output_bytes"], values["log_bytes"])

    def grants_for(self, node_id: str) -> dict[str, Grant]:
        """The grants this plan gives ``node_id``, by capability."""
        return {g.capability: g for g in self.grants if g.node == node_id}

    def _grant_problems(self) -> list[Problem]:
        out: list[Problem] = []
        ids = {n.id for n in self.nodes}
        seen: set[tuple[str, str]] = set()
        for i, g in enumerate(self.grants):
            if g.node not in ids:
                out.append((f"grants[{i}].node", f"grant_node: no node {g.node!r}"))
            if (g.node, g.capability) in seen:
                out.append((f"grants[{i}]", f"unique: {g.capability!r} granted twice"))
            seen.add((g.node, g.capability))
        for i, n in enumerate(self.nodes):
            for path, cap in n.requested_capabilities():
                if (n.id, cap) not in seen:
                    out.append(
                        (
                            f"nodes[{i}].{path}",
                            f"grant_required: node {n.id!r} asks for {cap!r} beyond the "
                            f"default container policy; add a grant "
                            f"{{node: {n.id}, capability: {cap}, reason: ...}} to grants",
                        )
                    )
        return out


def _topological(succ: dict[str, set[str]]) -> list[str] | None:
    """Kahn's algorithm (smallest id first); None if there is a cycle."""
    indeg = {n: 0 for n in succ}
    for targets in succ.values():
        for t in targets:
            indeg[t] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for t in succ[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                heapq.heappush(ready, t)
    return order if len(order) == len(succ) else None


def _cycle_members(succ: dict[str, set[str]]) -> set[str]:
    """Nodes left after repeatedly removing sources and sinks (they lie on cycles)."""
    alive = {n: set(t) for n, t in succ.items()}
    changed = True
    while changed:
        changed = False
        incoming = {n: 0 for n in alive}
        for targets in alive.values():
            for t in targets:
                if t in incoming:
                    incoming[t] += 1
        for n in list(alive):
            if incoming[n] == 0 or not (alive[n] & alive.keys()):
                del alive[n]
                changed = True
    return set(alive)


def _ancestors(succ: dict[str, set[str]], order: list[str]) -> dict[str, set[str]]:
    anc: dict[str, set[str]] = {n: set() for n in succ}
    for n in order:
        for t in succ[n]:
            anc[t] |= anc[n] | {n}
    return anc
