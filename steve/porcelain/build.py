"""BUILD: execute a run's frozen plan in containers, one receipt per node.

    >>> report = build(repo, DockerRunner(engine), jobs=4)
    >>> [(o.node, o.status) for o in report.outcomes]
    [('gen', 'built'), ('asm', 'cached')]

:func:`build` takes the run's plan (``refs/runs/<run>/plan``, or ``plan=``
to build an amended plan: the ref then moves to it), refuses it before any
container exists if a node asks for more than its grants allow, moves the
run to BUILD through the state machine (from PLAN, or back from TEST), and
runs the plan's *build nodes* (every node that is not a ``test`` node and
has no ``test`` node upstream) with :class:`~steve.porcelain.steps.Executor`.
Unchanged nodes come from the action cache (``no_cache=True`` runs them all).
The run's ``refs/runs/<run>/build_receipt`` moves to the receipt of the last
node in topological order; every node's receipt is ``refs/receipts/<run>/<node>``.

A failed step is a result, not an exception: the report lists it (and the
nodes skipped after it).  Problems of the environment raise: the engine is
unreachable (STEVE-CONT-001), an image is missing, a policy is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from steve.errors import NoPlan
from steve.events import EventLog
from steve.exec import Runner
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.plan import PlanManifest
from steve.porcelain.actioncache import StaleEntry
from steve.porcelain.hostaction import GateSettings, Prompt
from steve.porcelain.modelio import ModelTarget, dump_yaml
from steve.porcelain.records import load_plan, read_manifest_body
from steve.porcelain.runs import (
    Run,
    Stage,
    Transition,
    check_transition,
    find_run,
    run_manifests,
    run_ref,
    transition_in,
    transition_payload,
)
from steve.porcelain.steps import (
    Executor,
    NodeLogCallback,
    NodeOutcome,
    NodeStatus,
    ProgressCallback,
    now_s,
    topological,
    upstream_of,
)
from steve.repo import Repo

__all__ = [
    "BuildReport",
    "build",
    "design_text",
    "enter_stage",
    "plan_of",
    "split_nodes",
]


@dataclass(frozen=True, slots=True)
class BuildReport:
    run: Run
    plan: ObjectId
    outcomes: list[NodeOutcome]
    transition: Transition | None = None
    stale: list[StaleEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[NodeOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, status: NodeStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)


def split_nodes(plan: PlanManifest) -> tuple[list[str], list[str]]:
    """(build nodes, test nodes) in topological order: TEST runs the ``test`` nodes and
    everything downstream of one, BUILD all the others."""
    ups = upstream_of(plan)
    kind = {n.id: n.kind for n in plan.nodes}
    tested: dict[str, bool] = {}
    for nid in topological(plan):
        tested[nid] = kind[nid] == "test" or any(tested[u] for u in ups[nid])
    order = topological(plan)
    return [n for n in order if not tested[n]], [n for n in order if tested[n]]


# Design fields a model does not need (ids and times: they would make requests differ).
DESIGN_BOOKKEEPING = (
    "provenance",
    "intake_session_id",
    "approved_by",
    "amends",
    "created_at",
    "approval_timestamp",
    "human_approved",
)


def design_text(repo: Repo, run_id: str) -> str | None:
    """The run's design as YAML (without provenance ids), for generate requests."""
    design = run_manifests(repo, run_id).get(ObjectType.DESIGN)
    if design is None:
        return None
    body = dict(read_manifest_body(repo, design, ObjectType.DESIGN).body)
    for key in DESIGN_BOOKKEEPING:
        body.pop(key, None)
    return dump_yaml(body)


def plan_of(repo: Repo, run: Run) -> ObjectId:
    plan = run_manifests(repo, run.id).get(ObjectType.PLAN)
    if plan is None:
        raise NoPlan(run.id)
    return plan


def enter_stage(
    repo: Repo,
    run: Run,
    target: Stage,
    *,
    trigger: str,
    now: int,
    actor: str,
    plan: ObjectId | None = None,
) -> Transition | None:
    """Move ``run`` to ``target`` (nothing if it is there) and optionally its plan ref,
    in one transaction; returns the transition recorded, if any."""
    old_plan = run_manifests(repo, run.id).get(ObjectType.PLAN)
    move_plan = plan is not None and plan != old_plan
    if run.stage is target and not move_plan:
        return None
    if run.stage is not target:
        check_transition(run.id, run.stage, target)
    change = None
    with repo.transaction() as tx:
        if run.stage is not target:
            change = transition_in(repo, tx, run.id, target, trigger, now, actor, run.stage)
        if move_plan:
            assert plan is not None
            repo.refs.update(
                run_ref(run.id, ObjectType.PLAN),
                plan,
                old_plan,
                who=repo.identity,
                message=f"{trigger}: build plan {plan.short()} (run {run.id})",
                now=now,
                tx=tx,
            )
            tx.emit(
                "ref.updated",
                {
                    "ref": run_ref(run.id, ObjectType.PLAN),
                    "old": old_plan and old_plan.hex,
                    "new": plan.hex,
                },
                run_id=run.id,
            )
        if change is not None:
            tx.emit("run.transition", transition_payload(change), run_id=run.id)
    return change


def build(
    repo: Repo,
    runner: Runner,
    *,
    run: str | None = None,
    plan: ObjectId | None = None,
    jobs: int = 1,
    no_cache: bool = False,
    clock: Callable[[], int] = now_s,
    tz: int = 0,
    actor: str = "steve",
    on_progress: ProgressCallback | None = None,
    on_log: NodeLogCallback | None = None,
    events: EventLog | None = None,
    gate: GateSettings | None = None,
    prompt: Prompt | None = None,
    model: ModelTarget | None = None,
) -> BuildReport:
    """Build the run's plan (see the module docstring).  ``model``: who the plan's
    generate nodes ask (:mod:`steve.porcelain.generate`); a plan with generate nodes
    that must run needs one (GenerateNeedsModel)."""
    target = find_run(repo, run)
    plan_id = plan if plan is not None else plan_of(repo, target)
    manifest = load_plan(repo, plan_id)
    todo, _ = split_nodes(manifest)
    executor = Executor(
        repo,
        runner,
        target.id,
        plan_id,
        manifest,
        jobs=jobs,
        no_cache=no_cache,
        tz=tz,
        on_progress=on_progress,
        on_log=on_log,
        events=events,
        gate=gate,
        prompt=prompt,
        actor=actor,
        model=model,
        design=design_text(repo, target.id) if model is not None else None,
    )
    executor.preflight(todo, target.stage.value, {})  # refused before anything moves
    change = enter_stage(
        repo, target, Stage.BUILD, trigger="steve build", now=clock(), actor=actor, plan=plan
    )
    executor.emit("build.started", {"plan": plan_id.hex, "nodes": len(todo), "jobs": jobs})
    outcomes = executor.execute(todo, {}, why="build")
    last = [o.receipt for o in outcomes if o.receipt is not None]
    if last:
        ref = run_ref(target.id, ObjectType.BUILD_RECEIPT)
        current = repo.refs.resolve(ref)
        if current is None or current.target != last[-1]:
            repo.update_ref(ref, last[-1], message=f"steve build (run {target.id})")
    report = BuildReport(find_run(repo, target.id), plan_id, outcomes, change, executor.stale)
    executor.emit(
        "build.finished",
        {
            "plan": plan_id.hex,
            "ok": report.ok,
            "built": report.count(NodeStatus.BUILT),
            "cached": report.count(NodeStatus.CACHED),
            "failed": report.count(NodeStatus.FAILED),
            "skipped": report.count(NodeStatus.SKIPPED),
        },
        "info" if report.ok else "error",
    )
    return report
