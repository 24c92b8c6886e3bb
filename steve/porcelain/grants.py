"""The gate's review of containers and their grants, before a build or test starts.

``steve build`` and ``steve test`` call :func:`review_containers` for the nodes
that will run (not those the action cache serves), after the container
policy's own checks (:func:`steve.exec.policy_for`, unchanged: it still refuses
what no grant allows).  Each node is a ``container.run`` action and each grant
it uses a ``container.grant`` action whose subject is the capability; the
gate's defaults allow both, except grants that reach the host
(:data:`steve.porcelain.gate.HOST_GRANTS`), which need an approval like any
host action: a yes on the terminal or ``steve approve`` of the request
recorded for exactly this plan, node, capability and reason.  The kill
switch denies every container.  Decisions that were not a plain rule allow
are recorded as ``gate.decision`` events.
"""

from __future__ import annotations

from collections.abc import Sequence

from steve.exec import policy_for
from steve.objects.oid import ObjectId
from steve.objects.schemas.plan import PlanManifest
from steve.objects.schemas.receipts import HostDecision
from steve.porcelain.gate import Action, ActionKind
from steve.porcelain.hostaction import GateSettings, Preview, Prompt, perform
from steve.repo import Repo

__all__ = ["container_actions", "review_containers"]


def container_actions(plan_id: ObjectId, plan: PlanManifest, node_id: str) -> list[Action]:
    """The gate actions of running ``node_id``: the container, then each grant it uses."""
    node = next(n for n in plan.nodes if n.id == node_id)
    _, used = policy_for(plan, node)
    where = {"plan": plan_id.hex, "node": node_id}
    run = Action.of(ActionKind.CONTAINER_RUN, node_id, where, f"run node {node_id} in a container")
    out = [run]
    for g in used:
        out.append(
            Action.of(
                ActionKind.CONTAINER_GRANT,
                g.capability,
                {**where, "capability": g.capability, "reason": g.reason},
                f"grant {g.capability} to node {node_id} of plan {plan_id.short()}: {g.reason}",
            )
        )
    return out


class _Review:
    """One container action as a host action: nothing to execute (the runner does the
    work); the decision is recorded as an event."""

    def __init__(self, repo: Repo, action: Action, run_id: str) -> None:
        self.repo, self.action, self.run_id = repo, action, run_id

    def gate_action(self) -> Action:
        return self.action

    def describe(self) -> str:
        return self.action.summary

    def dry_run(self) -> Preview:
        return Preview(self.action.summary, (f"action {self.action.digest.hex}",))

    def execute(self) -> None:
        return None

    def record(self, decision: HostDecision, result: None) -> ObjectId | None:
        if decision.via == "rule" and decision.decision == "approved":
            return None  # a plain allow: the receipt's policy decisions say it
        payload = {
            "kind": self.action.kind.value,
            "subject": self.action.subject,
            **decision.model_dump(),
        }
        with self.repo.transaction() as tx:
            tx.emit("gate.decision", payload, run_id=self.run_id)
        return None


def review_containers(
    repo: Repo,
    plan_id: ObjectId,
    plan: PlanManifest,
    node_ids: Sequence[str],
    *,
    gate: GateSettings,
    prompt: Prompt | None,
    actor: str,
    run_id: str,
) -> None:
    """Put every container action of ``node_ids`` before the gate; raises its typed
    refusal (kill switch, deny rule, approval required or declined) on the first one."""
    for nid in node_ids:
        for action in container_actions(plan_id, plan, nid):
            review = _Review(repo, action, run_id)
            perform(repo, review, gate=gate, prompt=prompt, actor=actor, run_id=run_id)
