"""The Plan Manifest (frozen plan), schema version 1: an executable DAG.

Nodes run in containers whose image is pinned by digest; edges order them.
Rules checked on freeze: node ids unique, every edge names existing nodes,
the graph is acyclic, every node input is either produced (a declared
output) by a node upstream of it or pinned to an object id.  Budgets are
integers: tokens, milliseconds, bytes.

Containers run with a locked-down default policy (no network, read-only
root, all capabilities dropped, non-root user, pid/memory/cpu limits; see
``steve.objects.schemas.container``, whose rules freeze and the runner share).
A node asks for more with ``network: true``,
``budgets.memory_bytes`` above the default, or its ``requests``; each such
request is refused at freeze unless the plan's ``grants`` hold a grant for
that node and capability, with a reason.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from steve.objects.schemas.common import (
    PROVENANCE_ID_FIELDS,
    Absent,
    Count,
    ImageDigest,
    ManifestBody,
    ModelProvenance,
    Name,
    NodeId,
    Oid,
    OmitEmpty,
    Problem,
    Strict,
    Text,
)
from steve.objects.schemas.container import (
    CAPABILITIES,
    DEFAULT_CPU_MILLIS,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_NANO_CPUS,
    DEFAULT_PIDS,
    DEFAULT_USER,
    Capability,
    ContainerPolicy,
    HostMountSpec,
    UserSpec,
    checked_capability,
    checked_cpu_millis,
    checked_memory,
    relative_path_problem,
)

__all__ = [
    "CAPABILITIES",
    "CAPABILITY_FIELDS",
    "DEFAULT_CPU_MILLIS",
    "DEFAULT_LOG_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_OUTPUT_BYTES",
    "DEFAULT_PIDS",
    "DEFAULT_TIME_MS",
    "DEFAULT_USER",
    "LIMIT_POLICIES",
    "AbsPath",
    "Budgets",
    "Capability",
    "ContainerPolicy",
    "Edge",
    "Grant",
    "HostMount",
    "Node",
    "NodeInput",
    "NodeKind",
    "NodeLimits",
    "NodeRequests",
    "PlanManifest",
    "Policy",
    "SecretName",
    "UserSpec",
]

NodeKind = Literal["run", "test", "generate", "gate"]
PathName = str

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


class Budgets(Strict):
    tokens: Count = 0
    time_ms: Count = Field(
        default=0,
        description=(
            f"wall-clock limit, milliseconds (0: the plan's time_ms policy, else {DEFAULT_TIME_MS})"
        ),
    )
    memory_bytes: Annotated[Count, AfterValidator(checked_memory)] = Field(
        default=0, description="memory limit, bytes (0: none)"
    )


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
    cpu_millis: Annotated[Count, AfterValidator(checked_cpu_millis)] | None = Field(
        default=None, description=f"CPU limit, 1/1000 CPU (default {DEFAULT_CPU_MILLIS})"
    )
    cap_add: list[Annotated[Name, AfterValidator(checked_capability)]] = Field(default_factory=list)
    user: UserSpec | None = Field(default=None, description=f"uid:gid (default {DEFAULT_USER})")
    host_pid: bool = False
    host_ipc: bool = False


SecretName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
"""A vault secret's name (an environment variable name; steve.porcelain.secrets)."""


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
    description: Text | None = Absent(
        "what the node is for; on a generate node, the model's task (the model then "
        "patches the node's one input, see docs/llm.md)"
    )
    secrets: list[SecretName] = OmitEmpty(
        list,
        "vault secrets given to the step as environment variables of the same name "
        "(needs a 'secrets' grant); omitted from the body when empty",
    )

    def container_policy(self, granted: tuple[Capability, ...] = ()) -> ContainerPolicy:
        """The container policy this node runs under (``granted``: the plan's grants for
        it).  Freeze and the runner judge this same policy with
        :meth:`ContainerPolicy.refusals`."""
        r = self.requests
        network_mode: Literal["none", "bridge", "host"] = "none"
        if r.host_network:
            network_mode = "host"
        elif self.network:
            network_mode = "bridge"
        return ContainerPolicy(
            network_mode=network_mode,
            cap_add=tuple(r.cap_add),
            privileged=r.privileged,
            read_only_root=not r.writable_root,
            pids_limit=DEFAULT_PIDS if r.pids is None else r.pids,
            memory_bytes=self.budgets.memory_bytes or DEFAULT_MEMORY_BYTES,
            nano_cpus=DEFAULT_NANO_CPUS if r.cpu_millis is None else r.cpu_millis * 1_000_000,
            user=r.user or DEFAULT_USER,
            host_mounts=tuple(
                HostMountSpec(source=m.source, target=m.target, read_only=m.read_only)
                for m in r.host_mounts
            ),
            host_pid=r.host_pid,
            host_ipc=r.host_ipc,
            granted=tuple(sorted(set(granted))),
        )

    def requested_capabilities(self) -> list[tuple[str, Capability]]:
        """(field path inside the node, capability) for every request beyond the defaults
        (from :meth:`container_policy`, the policy the runner checks)."""
        out: list[tuple[str, Capability]] = []
        if self.network:  # asked for, even where host networking subsumes it
            out.append((CAPABILITY_FIELDS["network"], "network"))
        if self.secrets:
            out.append((CAPABILITY_FIELDS["secrets"], "secrets"))
        for cap, _ in self.container_policy().used_capabilities():
            entry = (CAPABILITY_FIELDS[cap], cap)
            if entry not in out:
                out.append(entry)
        return out

    def generate_problems(self) -> list[Problem]:
        """A generate node with a description (the model's task) patches one input tree
        and has one output (see docs/llm.md).  One without a description (plans frozen
        before issue 14) runs its command like a ``run`` node."""
        out: list[Problem] = []
        if not (self.description or "").strip():
            out.append(("description", "required: a generate node says what to change"))
        if len(self.inputs) != 1:
            out.append(("inputs", "generate: a generate node has exactly one input to patch"))
        if len(self.outputs) != 1:
            out.append(("outputs", "generate: a generate node declares exactly one output"))
        return out

    def path_problems(self) -> list[Problem]:
        """Input and output names the runner would refuse (absolute, ``..``, ...)."""
        out: list[Problem] = []
        for j, inp in enumerate(self.inputs):
            why = relative_path_problem(inp.name)
            if why is not None:
                out.append((f"inputs[{j}].name", f"relative_path: {why}"))
        for j, o in enumerate(self.outputs):
            why = relative_path_problem(o)
            if why is not None:
                out.append((f"outputs[{j}]", f"relative_path: {why}"))
        return out


# The node field that asks for each capability (for freeze's error messages).
CAPABILITY_FIELDS: dict[str, str] = {
    "network": "network",
    "host_network": "requests.host_network",
    "privileged": "requests.privileged",
    "host_mount": "requests.host_mounts",
    "writable_root": "requests.writable_root",
    "memory": "budgets.memory_bytes",
    "pids": "requests.pids",
    "cpu": "requests.cpu_millis",
    "cap_add": "requests.cap_add",
    "root_user": "requests.user",
    "host_pid": "requests.host_pid",
    "host_ipc": "requests.host_ipc",
    "secrets": "secrets",
}


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
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "nodes.inputs.pinned",
        "research",
        *PROVENANCE_ID_FIELDS,
    )

    title: Name
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)
    grants: list[Grant] = Field(default_factory=list)
    environment: dict[str, str] = Field(
        default_factory=dict, description="environment pins, e.g. python: 3.12.4"
    )
    notes: Text | None = None
    provenance: ModelProvenance | None = Absent(
        "the model exchanges the plan came from (absent: written by hand)"
    )
    research: Oid | None = Absent("the research manifest the plan used (absent: none named)")

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        ids = [n.id for n in self.nodes]
        for i, n in enumerate(self.nodes):
            if n.kind == "generate" and n.description is not None:
                out.extend((f"nodes[{i}].{p}", r) for p, r in n.generate_problems())
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
            seen_secret: set[str] = set()
            for j, name in enumerate(n.secrets):
                if name in seen_secret:
                    out.append((f"nodes[{i}].secrets[{j}]", f"unique: secret {name!r} repeated"))
                seen_secret.add(name)
                if name in n.env:
                    out.append(
                        (
                            f"nodes[{i}].secrets[{j}]",
                            f"secret_env: {name!r} is both a secret and an env variable",
                        )
                    )
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
            used = dict(n.container_policy().used_capabilities())
            for path, cap in n.requested_capabilities():
                if (n.id, cap) not in seen:
                    what = f" ({used[cap]})" if cap in used else ""
                    out.append(
                        (
                            f"nodes[{i}].{path}",
                            f"grant_required: node {n.id!r} asks for {cap!r} beyond the "
                            f"default container policy{what}; add a grant "
                            f"{{node: {n.id}, capability: {cap}, reason: ...}} to grants",
                        )
                    )
            for why in n.container_policy().forbidden():
                out.append((f"nodes[{i}].requests.host_mounts", f"engine_socket: {why}"))
            out.extend((f"nodes[{i}].{path}", rule) for path, rule in n.path_problems())
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
