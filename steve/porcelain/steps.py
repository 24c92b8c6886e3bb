"""Running plan nodes as container steps: the machinery under build, test and replay.

:class:`Executor` takes a frozen plan and a :class:`~steve.exec.Runner` and
runs a set of nodes in topological order with at most ``jobs`` steps in
flight (threads; the containers do the work).  For each node it

1. derives the step (:class:`~steve.exec.StepSpec`): image, command, env,
   inputs (pinned ids, or the outputs of the upstream nodes' receipts),
   declared outputs, the policy from the plan (:func:`steve.exec.policy_for`)
   and the timeout (``budgets.time_ms``);
2. computes the action key (:mod:`steve.porcelain.actioncache`) and, unless
   caching is off, reuses a successful receipt for the same key (status
   ``cached``: nothing runs);
3. otherwise runs the step and freezes one ``build_receipt`` (success or
   failure), caches it when it succeeded, and moves the node's receipt ref
   ``refs/receipts/<run>/<node>``.

A receipt's parents are the plan and the receipts of the node's upstream
nodes (edges and inputs), so ``steve log`` follows the data flow.  Nodes
downstream of a failed node are skipped (no receipt).  The records
themselves (receipts built as models, reading them back, the failure class
a step's result and JUnit reports give) come from
:mod:`steve.porcelain.records`.

Before a command moves the run, :meth:`Executor.preflight` checks what the
nodes need (policies, pinned inputs, the images of nodes the cache cannot
serve): a refusal changes nothing.  When the environment fails a step after
that (the engine refuses an operation, an image vanished), the node still
gets a receipt recording ``ContainerError.EngineFailed`` or
``ContainerError.ImageMissing``.

The store is shared by the worker threads through a lock
(:meth:`Repo.serialized`): one transaction at a time, reads in between.  With an
event log, each node's state changes are ``step.*`` events and its
stdout/stderr are spooled as ``log.chunk``/``log.end`` events
(:class:`steve.events.LogSpooler`, bounded chunks).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Protocol, cast, runtime_checkable

from steve.errors import (
    BudgetExceeded,
    BuildNotReady,
    ContainerFailed,
    EngineUnavailable,
    GenerateNeedsModel,
    ImageNotFound,
    ImageNotPinned,
    InvalidInput,
    KillSwitchEngaged,
    LlmError,
    PlanNotBuilt,
    ReplayMiss,
    SteveError,
)
from steve.events import EventLog, LogSpooler
from steve.exec import FailureClass, Runner, StepResult, StepSpec, policy_for
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.plan import Grant, Node, PlanManifest
from steve.objects.schemas.receipts import GeneratedPatch, LogRef
from steve.porcelain import actioncache
from steve.porcelain.actioncache import CachedAction, StaleEntry
from steve.porcelain.generate import apply_answer, generate_key, is_generating, patch_request
from steve.porcelain.grants import review_containers
from steve.porcelain.hostaction import GateSettings, Prompt, gate_settings, kill_switch
from steve.porcelain.modelio import ModelTarget, provenance
from steve.porcelain.records import (
    JUnitEvidence,
    environment_receipt,
    find_receipt,
    freeze_record,
    judge,
    junit_evidence,
    read_certificate,
    read_receipt,
    receipt_ref,
    step_receipt,
)
from steve.porcelain.runs import run_manifests
from steve.porcelain.secrets import ResolvedSecret, redactor_for, resolve, secret_info
from steve.porcelain.trust import check_plan_images
from steve.redact import Redactor
from steve.repo import Repo

WORKDIR = "/work"
MAX_JOBS = 64
EVENT_ACTOR = "steve"


class NodeStatus(enum.StrEnum):
    STARTED = "started"  # progress only
    BUILT = "built"  # ran and succeeded
    CACHED = "cached"  # a successful receipt for the same action key was reused
    FAILED = "failed"  # ran (or was refused) and failed; it has a receipt
    SKIPPED = "skipped"  # an upstream node failed; nothing ran


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report: a node changed state (``done`` of ``total`` finished)."""

    node: str
    kind: str
    status: NodeStatus
    done: int
    total: int
    detail: str = ""
    receipt: ObjectId | None = None


@runtime_checkable
class ImageCheck(Protocol):
    """A runner that can tell, before a build moves the run, whether an image is there
    (:meth:`steve.exec.DockerRunner.image_problem`)."""

    def image_problem(self, image: str) -> str | None: ...


ProgressCallback = Callable[[Progress], None]
NodeLogCallback = Callable[[str, str, bytes], None]
"""``(node id, stream name, bytes)`` for each piece of a step's stdout/stderr."""


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    node: str
    kind: str
    status: NodeStatus
    receipt: ObjectId | None = None
    action_key: ObjectId | None = None
    outputs: Mapping[str, ObjectId] = field(default_factory=dict)
    logs: tuple[LogRef, ...] = ()  # labelled: stdout, stderr
    failure: FailureClass | None = None  # e.g. StepError.ExitedNonZero
    detail: str = ""
    policy_denied: bool = False
    grants: tuple[str, ...] = ()  # capabilities granted by the plan and used
    duration_ms: int = 0
    junit: tuple[JUnitEvidence, ...] = ()  # a test node's declared JUnit reports, parsed

    def log(self, stream: str) -> ObjectId | None:
        """The log blob of ``stream`` (``stdout``/``stderr``), if recorded."""
        ref = next((r for r in self.logs if r.stream == stream), None)
        return None if ref is None else ObjectId.from_hex(ref.blob)

    @property
    def ok(self) -> bool:
        return self.status in (NodeStatus.BUILT, NodeStatus.CACHED)


# --- plan order ----------------------------------------------------------------------


def upstream_of(plan: PlanManifest) -> dict[str, list[str]]:
    """Node id -> the nodes it waits for (edge sources and input producers)."""
    ups: dict[str, list[str]] = {n.id: [] for n in plan.nodes}
    for e in plan.edges:
        if e.from_node not in ups[e.to_node]:
            ups[e.to_node].append(e.from_node)
    for n in plan.nodes:
        for inp in n.inputs:
            if inp.node is not None and inp.node not in ups[n.id]:
                ups[n.id].append(inp.node)
    return ups


def topological(plan: PlanManifest) -> list[str]:
    """Node ids, upstream first; ties in plan order (a frozen plan is acyclic)."""
    ups = upstream_of(plan)
    order: list[str] = []
    placed: set[str] = set()
    pending = [n.id for n in plan.nodes]
    while pending:
        progressed = False
        rest: list[str] = []
        for nid in pending:
            if all(u in placed for u in ups[nid]):
                order.append(nid)
                placed.add(nid)
                progressed = True
            else:
                rest.append(nid)
        if not progressed:
            raise InvalidInput("the plan's graph has a cycle", ", ".join(rest))
        pending = rest
    return order


# --- the executor ---------------------------------------------------------------------


@dataclass
class Executor:
    """Runs nodes of one frozen plan in one run (see the module docstring)."""

    repo: Repo
    runner: Runner | None
    run_id: str
    plan_id: ObjectId
    plan: PlanManifest
    jobs: int = 1
    no_cache: bool = False
    tz: int = 0
    on_progress: ProgressCallback | None = None
    on_log: NodeLogCallback | None = None
    events: EventLog | None = None
    gate: GateSettings | None = None  # None: the repository's gate (its rules, kill switch)
    prompt: Prompt | None = None  # the caller's yes/no on a terminal, for host-reaching grants
    actor: str = "steve"
    stale: list[StaleEntry] = field(default_factory=list)
    model: ModelTarget | None = None  # who generate nodes ask (steve.porcelain.generate)
    design: str | None = None  # the run's design, as text, for generate requests
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hits: dict[ObjectId, CachedAction] = field(default_factory=dict)
    _image_grants: dict[str, Grant] = field(default_factory=dict)  # nodes run unsigned

    def __post_init__(self) -> None:
        if not 1 <= self.jobs <= MAX_JOBS:
            raise InvalidInput("invalid number of jobs", f"{self.jobs} (1..{MAX_JOBS})")
        self.repo = self.repo.serialized()
        if self.model is not None:  # its exchanges are recorded through the shared view
            self.model = self.model.bound(self.repo)
        self.nodes: dict[str, Node] = {n.id: n for n in self.plan.nodes}
        self.ups = upstream_of(self.plan)
        self.order = topological(self.plan)
        self._done = 0
        self._total = 0
        # the vault versions of every secret a node declares (a missing one refuses the
        # build before anything moves); values are resolved when a node runs
        declared = sorted({name for n in self.plan.nodes for name in n.secrets})
        self._versions = {name: secret_info(self.repo, name).version for name in declared}
        # every stored value (and key shapes): logs, receipts and events of this build
        self.redactor: Redactor = redactor_for(self.repo)
        if self.events is not None and self.events.redactor is None:
            self.events.redactor = self.redactor

    # --- helpers -----------------------------------------------------------------------

    def emit(self, event_type: str, payload: Mapping[str, object], level: str = "info") -> None:
        if self.events is not None:
            self.events.emit(event_type, payload, run_id=self.run_id, level=level)

    def _progress(self, node: Node, status: NodeStatus, outcome: NodeOutcome | None = None) -> None:
        if status is not NodeStatus.STARTED:
            with self._lock:
                self._done += 1
        detail = ""
        if outcome is not None:
            detail = outcome.detail
            if outcome.failure is not None:
                detail = f"{outcome.failure.value}: {detail}"
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    node.id,
                    node.kind,
                    status,
                    self._done,
                    self._total,
                    detail,
                    None if outcome is None else outcome.receipt,
                )
            )
        payload: dict[str, object] = {"node": node.id, "kind": node.kind, "status": status.value}
        if outcome is not None and outcome.receipt is not None:
            payload["receipt"] = outcome.receipt.hex
        if outcome is not None and outcome.failure:
            payload["failure"] = outcome.failure.value
        level = "error" if status is NodeStatus.FAILED else "info"
        self.emit(f"step.{status.value}", payload, level)

    def _grants_used(self, node: Node) -> list[Grant]:
        """The plan's grants ``node`` runs on: its container policy's, and
        ``unsigned_image`` when its image had no trusted signature."""
        _, grants = policy_for(self.plan, node)
        extra = self._image_grants.get(node.id)
        return [*grants, extra] if extra is not None else list(grants)

    def check_policies(self, node_ids: Sequence[str]) -> None:
        """Refuse (PolicyViolation) before any container exists if a node asks too much."""
        for nid in node_ids:
            policy_for(self.plan, self.nodes[nid])

    def to_run(self, node_ids: Sequence[str], known: Mapping[str, NodeOutcome]) -> list[str]:
        """The nodes of ``node_ids`` the action cache cannot serve (all with no_cache);
        a dry pass: nothing is recorded."""
        if self.no_cache:
            return list(node_ids)
        results: dict[str, NodeOutcome] = dict(known)
        out: list[str] = []
        for nid in [n for n in self.order if n in set(node_ids)]:
            node = self.nodes[nid]
            if any(u not in results for u in self.ups[nid]):
                out.append(nid)  # an upstream node will run: so will this one
                continue
            if is_generating(node):
                hit = self.generated_hit(node, results)
                if hit is None or self._tested_and_failed(hit):
                    out.append(nid)
                else:
                    results[nid] = hit
                continue
            key = actioncache.action_key(self.spec_for(node, results))
            found = actioncache.lookup(self.repo, key)
            if isinstance(found, CachedAction):
                self._hits[key] = found  # checked: the run that follows need not look again
                results[nid] = NodeOutcome(nid, node.kind, NodeStatus.CACHED, outputs=found.outputs)
            else:
                out.append(nid)
        return out

    def preflight(
        self, node_ids: Sequence[str], stage: str, known: Mapping[str, NodeOutcome]
    ) -> None:
        """Check what running ``node_ids`` needs before anything moves: every policy
        (PolicyViolation), every pinned input in the store, and the image of every node
        the cache cannot serve present where the runner runs (BuildNotReady, listing
        every problem), and the policy gate's review of every container that will run
        and the grants it uses (:mod:`steve.porcelain.grants`)."""
        self.check_policies(node_ids)
        # signed images, or an unsigned_image grant (then recorded in the receipt)
        self._image_grants.update(check_plan_images(self.repo, self.plan, node_ids))
        problems: list[str] = []
        for nid in node_ids:
            for inp in self.nodes[nid].inputs:
                if inp.pinned is not None and not self.repo.has_object(
                    ObjectId.from_hex(inp.pinned)
                ):
                    problems.append(f"node {nid}: input {inp.name} ({inp.pinned[:12]}) is missing")
        running = self.to_run(node_ids, known)
        asking = [n for n in self.to_run(node_ids, known) if is_generating(self.nodes[n])]
        if asking and self.model is None:
            raise GenerateNeedsModel(self.run_id, asking)
        if isinstance(self.runner, ImageCheck):
            for image in dict.fromkeys(self.nodes[nid].image for nid in running):
                why = self.runner.image_problem(image)
                if why is not None:
                    users = [nid for nid in running if self.nodes[nid].image == image]
                    problems.append(f"{why}, needed by {', '.join(users)}")
        if problems:
            raise BuildNotReady(self.run_id, stage, problems)
        review_containers(
            self.repo,
            self.plan_id,
            self.plan,
            running,
            gate=self.gate if self.gate is not None else gate_settings(self.repo),
            prompt=self.prompt,
            actor=self.actor,
            run_id=self.run_id,
        )

    def spec_for(
        self,
        node: Node,
        known: Mapping[str, NodeOutcome],
        resolved: Mapping[str, ResolvedSecret] | None = None,
    ) -> StepSpec:
        """The node's step; with ``resolved``, carrying the secrets' values (for a run)
        and a redactor that knows them, else their vault versions only (for the key)."""
        policy, _ = policy_for(self.plan, node)
        inputs: dict[str, ObjectId] = {}
        for inp in node.inputs:
            if inp.pinned is not None:
                inputs[inp.name] = ObjectId.from_hex(inp.pinned)
            else:
                assert inp.node is not None and inp.output is not None
                inputs[inp.name] = known[inp.node].outputs[inp.output]
        limits = self.plan.limits_for(node)
        return StepSpec(
            run_id=self.run_id,
            step_id=node.id,
            image=node.image,
            command=tuple(node.command),
            env=dict(node.env),
            inputs=inputs,
            outputs=tuple(node.outputs),
            policy=policy,
            timeout_s=limits.time_ms / 1000,
            workdir=WORKDIR,
            output_limit=limits.output_bytes,
            log_limit=limits.log_bytes,
            secret_versions={
                name: (resolved[name].version if resolved else self._versions[name])
                for name in node.secrets
            },
            secret_values={name: resolved[name].value for name in node.secrets}
            if resolved
            else {},
            redactor=redactor_for(self.repo, resolved) if resolved else self.redactor,
        )

    def move_ref(self, node_id: str, receipt: ObjectId, why: str) -> None:
        ref = receipt_ref(self.run_id, node_id)
        current = self.repo.refs.resolve(ref)
        if current is None or current.target != receipt:
            self.repo.update_ref(ref, receipt, message=f"steve {why}: cached (run {self.run_id})")

    # --- one node ----------------------------------------------------------------------

    def cached(self, node: Node, known: Mapping[str, NodeOutcome]) -> NodeOutcome | None:
        """The node's outcome from the action cache, or None (a stale entry is recorded).
        A generate node's is its last successful receipt in the run for the same input
        (:meth:`generated_hit`): finding it needs no model."""
        if is_generating(node):
            return self.generated_hit(node, known)
        spec = self.spec_for(node, known)
        key = actioncache.action_key(spec)
        found = self._hits.pop(key, None) or actioncache.lookup(self.repo, key)
        if isinstance(found, StaleEntry):
            with self._lock:
                self.stale.append(found)
            self.emit(
                "cache.stale",
                {"node": node.id, "key": found.key_hex, "reason": found.reason},
                "warning",
            )
            return None
        if found is None:
            return None
        return self._cached_outcome(node, key, found)

    def _cached_outcome(self, node: Node, key: ObjectId, hit: CachedAction) -> NodeOutcome:
        body = read_receipt(self.repo, hit.receipt)
        evidence: tuple[JUnitEvidence, ...] = ()
        if node.kind == "test":
            evidence = tuple(junit_evidence(self.repo, node.outputs, hit.outputs))
        return NodeOutcome(
            node.id,
            node.kind,
            NodeStatus.CACHED,
            hit.receipt,
            key,
            hit.outputs,
            tuple(body.logs),
            grants=tuple(g.capability for g in body.grants),
            duration_ms=body.duration_ms or 0,
            junit=evidence,
        )

    def run_node(self, node: Node, known: Mapping[str, NodeOutcome], *, why: str) -> NodeOutcome:
        if is_generating(node):
            return self._generate(node, known, why=why)
        spec = self.spec_for(node, known)
        key = actioncache.action_key(spec)
        if not self.no_cache:
            hit = self.cached(node, known)
            if hit is not None:
                self.move_ref(node.id, cast(ObjectId, hit.receipt), why)
                self._progress(node, NodeStatus.CACHED, hit)
                return hit
        return self._execute_step(node, spec, key, known, why=why)

    def _execute_step(
        self,
        node: Node,
        spec: StepSpec,
        key: ObjectId,
        known: Mapping[str, NodeOutcome],
        *,
        why: str,
        extra: Mapping[str, object] | None = None,
        cache_key: ObjectId | None = None,
        started: bool = False,
    ) -> NodeOutcome:
        """Run ``spec`` in a container and freeze its receipt (``extra``: more receipt
        fields; ``cache_key``: the action-cache key, default ``key``)."""
        if self.runner is None:
            raise PlanNotBuilt(self.run_id, node.id)
        gate = self.gate if self.gate is not None else gate_settings(self.repo)
        if gate.kill.env or kill_switch(self.repo).on:  # turned on while this build runs
            refused = KillSwitchEngaged(f"run node {node.id} in a container", "repository")
            return self._not_run(
                node, spec, key, known, FailureClass.POLICY_DENIED, _error_line(refused), why, extra
            )
        if node.secrets:  # the values now (external commands run here), same read as versions
            fresh = self.spec_for(node, known, resolve(self.repo, node.secrets))
            spec = replace(fresh, inputs=spec.inputs)  # a generate node's patched input stays
            key = actioncache.action_key(spec)
        if not started:
            self._progress(node, NodeStatus.STARTED)
        spoolers: dict[str, LogSpooler] = {}
        sink = self.on_log
        events = self.events

        def on_log(stream: str, data: bytes) -> None:
            if sink is not None:
                sink(node.id, stream, data)
            if events is not None:
                if stream not in spoolers:
                    spoolers[stream] = LogSpooler(
                        events, step=node.id, stream=stream, run_id=self.run_id
                    )
                spoolers[stream].write(data)

        try:
            result = self.runner.run(self.repo, spec, on_log)
        except (EngineUnavailable, ContainerFailed, ImageNotFound, ImageNotPinned) as exc:
            missing = isinstance(exc, (ImageNotFound, ImageNotPinned))
            cls = FailureClass.IMAGE_MISSING if missing else FailureClass.ENGINE_FAILED
            return self._not_run(node, spec, key, known, cls, _error_line(exc), why, extra)
        finally:
            for spooler in spoolers.values():
                spooler.close()
        evidence: tuple[JUnitEvidence, ...] = ()
        if node.kind == "test":
            evidence = tuple(junit_evidence(self.repo, node.outputs, result.outputs))
        failure, detail = judge(node.kind, result, evidence)
        if spec.redactor is not None:
            detail = spec.redactor.text(detail)
        grants = self._grants_used(node)
        receipt = self.freeze_receipt(
            node,
            spec,
            key,
            result,
            failure,
            detail,
            self._receipt_parents(node, known),
            grants,
            why,
            extra,
        )
        if failure is None:
            actioncache.record(self.repo, cache_key or key, receipt)
        outcome = NodeOutcome(
            node.id,
            node.kind,
            NodeStatus.BUILT if failure is None else NodeStatus.FAILED,
            receipt,
            key,
            dict(result.outputs),
            (
                LogRef(
                    stream="stdout",
                    blob=result.stdout.hex,
                    truncated="stdout" in result.truncated,
                ),
                LogRef(
                    stream="stderr",
                    blob=result.stderr.hex,
                    truncated="stderr" in result.truncated,
                ),
            ),
            failure,
            detail,
            result.failure is FailureClass.POLICY_DENIED,
            tuple(g.capability for g in grants),
            max(0, (result.finished_at - result.started_at) // 1_000_000),
            evidence,
        )
        self._progress(node, outcome.status, outcome)
        return outcome

    def _receipt_parents(self, node: Node, known: Mapping[str, NodeOutcome]) -> list[ObjectId]:
        """A receipt's parents: the plan, then the receipts of the node's upstream nodes."""
        ups = (known[u].receipt for u in self.ups[node.id])
        return [self.plan_id, *(r for r in ups if r is not None)]

    def _not_run(
        self,
        node: Node,
        spec: StepSpec,
        key: ObjectId,
        known: Mapping[str, NodeOutcome],
        failure: FailureClass,
        detail: str,
        why: str,
        extra: Mapping[str, object] | None = None,
    ) -> NodeOutcome:
        """A step that did not run (the environment could not start it, or a generate
        node's patch was rejected): its receipt records why (the build does not stop
        without a record)."""
        grants = self._grants_used(node)
        body = environment_receipt(
            plan=self.plan_id.hex,
            node=node.id,
            spec=spec,
            action_key=key.hex,
            failure=failure,
            detail=detail,
            empty_log=self.repo.write_blob(b""),
            grants=grants,
            toolchain=self.plan.environment,
            nondeterminism=node.nondeterminism,
            at_ns=time.time_ns(),
        )
        if extra:
            body = body.model_copy(update=dict(extra))
        receipt = freeze_record(
            self.repo,
            body,
            parents=self._receipt_parents(node, known),
            now=body.finished_at,
            tz=self.tz,
            ref=receipt_ref(self.run_id, node.id),
            message=f"steve {why}: {failure.value} (run {self.run_id})",
        )
        outcome = NodeOutcome(
            node.id,
            node.kind,
            NodeStatus.FAILED,
            receipt,
            key,
            logs=tuple(body.logs),
            failure=failure,
            detail=detail,
            grants=tuple(g.capability for g in grants),
        )
        self._progress(node, outcome.status, outcome)
        return outcome

    def freeze_receipt(
        self,
        node: Node,
        spec: StepSpec,
        key: ObjectId,
        result: StepResult,
        failure: FailureClass | None,
        detail: str,
        parents: Sequence[ObjectId],
        grants: Sequence[Grant],
        why: str,
        extra: Mapping[str, object] | None = None,
    ) -> ObjectId:
        """Freeze the receipt and move the node's receipt ref to it, in one transaction
        (``extra``: more fields of the receipt, e.g. a generate node's provenance)."""
        body = step_receipt(
            plan=self.plan_id.hex,
            node=node.id,
            spec=spec,
            action_key=key.hex,
            result=result,
            failure=failure,
            detail=detail,
            grants=grants,
            toolchain=self.plan.environment,
            nondeterminism=node.nondeterminism,
            truncated=result.truncated,
        )
        if extra:
            body = body.model_copy(update=dict(extra))
        return freeze_record(
            self.repo,
            body,
            parents=parents,
            now=result.finished_at // 1_000_000_000,
            tz=self.tz,
            ref=receipt_ref(self.run_id, node.id),
            message=f"steve {why} (run {self.run_id})",
        )

    # --- generate nodes (steve.porcelain.generate) ------------------------------------

    def generated_hit(self, node: Node, known: Mapping[str, NodeOutcome]) -> NodeOutcome | None:
        """The node's last receipt in this run, as a cached outcome, if it succeeded on
        the same input tree and its step's action key and outputs still check out."""
        current = self.repo.refs.resolve(receipt_ref(self.run_id, node.id))
        if current is None or current.target is None:
            return None
        body = find_receipt(self.repo, current.target)
        if body is None or body.failure is not None or body.generated is None:
            return None
        gen = body.generated
        spec0 = self.spec_for(node, known)
        if gen.result is None or spec0.inputs.get(gen.input, None) != ObjectId.from_hex(gen.base):
            return None
        spec = replace(spec0, inputs={**spec0.inputs, gen.input: ObjectId.from_hex(gen.result)})
        key = actioncache.action_key(spec)
        if key.hex != body.action_key:
            return None
        outputs = {k: ObjectId.from_hex(v) for k, v in body.outputs.items()}
        if not all(self.repo.has_object(o) for o in outputs.values()):
            return None
        return self._cached_outcome(node, key, CachedAction(key, current.target, outputs))

    def _tested_and_failed(self, hit: NodeOutcome) -> bool:
        """Whether the run's last test certificate failed on a build with this receipt
        (then the generate node asks again, with the failures as feedback)."""
        cert = run_manifests(self.repo, self.run_id).get(ObjectType.TEST_CERTIFICATE)
        if cert is None or hit.receipt is None:
            return False
        body = read_certificate(self.repo, cert)
        return body.verdict == "fail" and hit.receipt.hex in body.builds

    def _feedback(self, node: Node) -> list[str]:
        """What the node's previous attempt in the run taught: its rejected or failed
        patch and why, and the failures of the run's last failing test certificate."""
        out: list[str] = []
        current = self.repo.refs.resolve(receipt_ref(self.run_id, node.id))
        body = None
        if current is not None and current.target is not None:
            body = find_receipt(self.repo, current.target)
        if body is not None and body.failure is not None:
            line = f"{body.failure}: {body.failure_detail or ''}"
            if body.generated is not None and body.generated.diff is not None:
                diff = self.repo.read_blob(ObjectId.from_hex(body.generated.diff))
                line += "\nThe diff was:\n" + diff.decode("utf-8", "replace")
            out.append(line)
        cert = run_manifests(self.repo, self.run_id).get(ObjectType.TEST_CERTIFICATE)
        if cert is not None:
            verdict = read_certificate(self.repo, cert)
            if verdict.verdict == "fail":
                out += [f"test {f.node}: {f.classification}: {f.message}" for f in verdict.failures]
        return out

    def _generate(self, node: Node, known: Mapping[str, NodeOutcome], *, why: str) -> NodeOutcome:
        """Build a generate node: ask for a diff, apply it in Python, run the step on the
        patched tree (see :mod:`steve.porcelain.generate`)."""
        spec0 = self.spec_for(node, known)
        step0 = actioncache.action_key(spec0)
        if not self.no_cache:
            hit = self.generated_hit(node, known)
            if hit is not None and not self._tested_and_failed(hit):
                self._progress(node, NodeStatus.CACHED, hit)
                return hit
        if self.model is None:
            raise GenerateNeedsModel(self.run_id, [node.id])
        name = node.inputs[0].name
        base = spec0.inputs[name]
        request = patch_request(
            self.repo, self.model, node, name, base, design=self.design,
            feedback=self._feedback(node),
        )  # fmt: skip
        gkey = generate_key(self.model, step0, request)
        if not self.no_cache:
            found = actioncache.lookup(self.repo, gkey)
            if isinstance(found, CachedAction):
                hit = self._cached_outcome(node, found.key, found)
                self.move_ref(node.id, found.receipt, why)
                self._progress(node, NodeStatus.CACHED, hit)
                return hit
        self._progress(node, NodeStatus.STARTED)
        try:
            exchange = self.model.session.complete(
                request,
                run_id=self.run_id,
                stage="BUILD",
                node=node.id,
                node_budget=node.budgets.tokens or None,
            )
        except (LlmError, ReplayMiss, BudgetExceeded) as exc:
            failure = (
                FailureClass.TOKEN_BUDGET_EXCEEDED
                if isinstance(exc, BudgetExceeded)
                else FailureClass.PROVIDER_UNAVAILABLE
            )
            return self._not_run(node, spec0, step0, known, failure, _error_line(exc), why)
        answer = apply_answer(self.repo, exchange, base)
        patched = answer.patched
        extra = {
            "provenance": provenance(self.model, [exchange]),
            "generated": GeneratedPatch(
                key=gkey.hex,
                input=name,
                base=base.hex,
                diff=answer.diff.hex,
                patch=answer.record.hex,
                result=None if patched is None else patched.tree.hex,
                changed=[] if patched is None else patched.changed,
            ),
        }
        if patched is None:
            failure = FailureClass.PATCH_REJECTED
            return self._not_run(node, spec0, step0, known, failure, answer.detail, why, extra)
        spec = replace(spec0, inputs={**spec0.inputs, name: patched.tree})
        key = actioncache.action_key(spec)
        return self._execute_step(
            node, spec, key, known, why=why, extra=extra, cache_key=gkey, started=True
        )

    # --- many nodes --------------------------------------------------------------------

    def execute(
        self,
        node_ids: Sequence[str],
        known: Mapping[str, NodeOutcome],
        *,
        why: str,
    ) -> list[NodeOutcome]:
        """Run ``node_ids`` (upstream nodes outside it must be in ``known``), at most
        ``jobs`` at a time; outcomes in topological order."""
        wanted = set(node_ids)
        todo = [nid for nid in self.order if nid in wanted]
        self._total, self._done = len(todo), 0
        results: dict[str, NodeOutcome] = dict(known)
        finished: dict[str, NodeOutcome] = {}
        running: dict[Future[NodeOutcome], str] = {}
        pending = list(todo)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="steve-step") as pool:
            try:
                while pending or running:
                    for nid in list(pending):
                        if len(running) >= self.jobs:
                            break
                        ups = self.ups[nid]
                        if any(u not in results for u in ups):
                            continue  # an upstream node is still running
                        pending.remove(nid)
                        node = self.nodes[nid]
                        bad = [u for u in ups if not results[u].ok]
                        if self.runner is not None and self.runner.cancelled:
                            out = NodeOutcome(
                                nid, node.kind, NodeStatus.SKIPPED, detail="interrupted"
                            )
                            results[nid] = finished[nid] = out
                            self._progress(node, NodeStatus.SKIPPED, out)
                            continue
                        if bad:
                            out = NodeOutcome(
                                nid,
                                node.kind,
                                NodeStatus.SKIPPED,
                                detail=f"upstream {', '.join(bad)} did not succeed",
                            )
                            results[nid] = finished[nid] = out
                            self._progress(node, NodeStatus.SKIPPED, out)
                            continue
                        snapshot = dict(results)
                        running[pool.submit(self.run_node, node, snapshot, why=why)] = nid
                    if not running:
                        continue
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in done:
                        nid = running.pop(fut)
                        outcome = fut.result()  # a SteveError of the environment propagates
                        results[nid] = finished[nid] = outcome
            except BaseException:
                for fut in running:
                    fut.cancel()
                raise
        return [finished[nid] for nid in todo]


def now_s() -> int:
    return int(time.time())


def _error_line(exc: SteveError) -> str:
    return f"{exc.code}: {exc.message}" + (f" ({exc.detail})" if exc.detail else "")
