"""The host prompt rule (DEVPATH 1.9, 4.7): describe, dry run, decide, execute, record.

Every action outside a container goes through :func:`perform`:

    >>> done = perform(repo, action, gate=gate_settings(repo), prompt=ask, actor="ana")
    >>> done.decision.decision, done.record
    ('approved', ObjectId(...))        # the receipt that holds the decision

1. ``action.dry_run()`` computes the preview (and refuses what cannot be done
   safely) before anything is decided;
2. the policy gate (:func:`steve.porcelain.gate.decide`) judges
   ``action.gate_action()`` with the kill switch, the rules and the granted
   approvals;
3. ``deny`` is final; ``allow`` (a rule, or a granted approval for exactly this
   action digest, which is then used up) goes ahead; ``require_approval``
   asks through ``prompt`` when the caller has a terminal (the library never
   reads one: the CLI passes the callback, which shows the dry run and answers
   yes, no or timed out).  Without a prompt the action is denied and a pending
   approval request is recorded for ``steve approve``;
4. ``action.record(decision, result)`` records every decision (approved,
   denied, timed out; who, when, why) in the action's receipt, and
   ``action.execute()`` runs only after an approval.

The kill switch lives in the repository (``steve kill-switch on|off``: the
``meta`` key ``kill_switch``, an event per change) and in the caller's
environment (``STEVE_KILL_SWITCH=1``, read by the CLI and passed in as
``kill_env``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from steve.errors import (
    ApprovalRequired,
    GateDenied,
    HostActionDeclined,
    KillSwitchEngaged,
    SteveError,
)
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import HostDecision
from steve.porcelain import approvals
from steve.porcelain.gate import (
    DEFAULT_APPROVAL_TTL,
    Action,
    Context,
    Decision,
    Reason,
    Rule,
    Verdict,
    decide,
    effective_rules,
    parse_rules,
)
from steve.repo import Repo

KILL_SWITCH = "kill_switch"

R = TypeVar("R")


# --- the kill switch ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitch:
    stored: bool  # `steve kill-switch on` (in the repository)
    env: bool  # STEVE_KILL_SWITCH=1 (passed in by the caller)

    @property
    def on(self) -> bool:
        return self.stored or self.env

    @property
    def source(self) -> str:
        pairs = (("repository", self.stored), ("environment", self.env))
        return " and ".join(name for name, on in pairs if on) or "off"


def kill_switch(repo: Repo, *, kill_env: bool = False) -> KillSwitch:
    return KillSwitch(repo.get_meta(KILL_SWITCH) == "on", kill_env)


def set_kill_switch(repo: Repo, on: bool, *, actor: str, reason: str | None = None) -> bool:
    """Turn the repository's kill switch on or off (an event each change); returns
    whether it changed.  Stopping running containers is the caller's part
    (:meth:`steve.exec.janitor.Janitor.stop_running`), with the engine it holds."""
    before = repo.get_meta(KILL_SWITCH) == "on"
    if before == on:
        return False
    with repo.transaction() as tx:
        tx.set_meta(KILL_SWITCH, "on" if on else None)
        tx.emit("gate.kill_switch", {"state": "on" if on else "off", "by": actor, "reason": reason})
    return True


# --- the gate's settings -------------------------------------------------------------------


def wall_clock() -> int:
    """Unix seconds now: the gate and approvals judge expiry by the real time, never by
    SOURCE_DATE_EPOCH (which only pins the times recorded in manifests)."""
    return int(time.time())


@dataclass(frozen=True, slots=True)
class GateSettings:
    """What the gate needs besides the action: rules, approval TTL, the kill switch and
    the clock approvals expire by."""

    rules: tuple[Rule, ...]
    approval_ttl: int
    kill: KillSwitch
    clock: Callable[[], int] = wall_clock

    def context(self, repo: Repo, now: int) -> Context:
        return Context(self.rules, self.kill.on, now, approvals.granted(repo, now=now))


def gate_settings(
    repo: Repo, *, kill_env: bool = False, clock: Callable[[], int] = wall_clock
) -> GateSettings:
    """The repository's gate: the defaults plus the config's ``[gate]`` rules, its TTL
    and the kill switch (stored, or ``kill_env`` from the caller's environment)."""
    table = repo.config.gate if repo.config is not None else None
    extra, ttl = parse_rules(table, ".steve/config [gate]")
    return GateSettings(effective_rules(extra), ttl, kill_switch(repo, kill_env=kill_env), clock)


DEFAULT_GATE = GateSettings(effective_rules(()), DEFAULT_APPROVAL_TTL, KillSwitch(False, False))


# --- host actions --------------------------------------------------------------------------


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class Preview:
    """A dry run: what would be done, as lines for people (and stored in receipts)."""

    title: str
    lines: tuple[str, ...]

    def text(self) -> str:
        return "\n".join((self.title, *self.lines)) + "\n"


Prompt = Callable[[Action, Preview], tuple[Answer, str | None]]
"""Shows the preview and asks yes/no: (the answer, an optional reason)."""


class HostAction(Protocol[R]):
    def gate_action(self) -> Action:
        """The action the gate judges (kind, subject, digest of the full description)."""
        ...

    def describe(self) -> str: ...

    def dry_run(self) -> Preview:
        """The preview; raises a typed error for anything that cannot be done safely."""
        ...

    def execute(self) -> R: ...

    def record(self, decision: HostDecision, result: R | None) -> ObjectId | None:
        """Record the decision (and the result, once executed); returns the receipt id."""
        ...


@dataclass(frozen=True, slots=True)
class Performed(Generic[R]):
    decision: HostDecision
    gate: Decision
    result: R
    record: ObjectId | None


def perform(
    repo: Repo,
    host: HostAction[R],
    *,
    gate: GateSettings,
    prompt: Prompt | None,
    actor: str,
    run_id: str | None = None,
) -> Performed[R]:
    """Run ``host`` under the host prompt rule (see the module docstring).  Times of
    decisions and approvals come from ``gate.clock``."""
    preview = host.dry_run()
    action = host.gate_action()
    now = gate.clock
    t = now()
    verdict = decide(action, gate.context(repo, t))
    base = {"rule": verdict.rule, "action_digest": action.digest.hex}
    if verdict.verdict is Verdict.DENY:
        killed = verdict.reason is Reason.KILL_SWITCH
        why = f"kill switch on ({gate.kill.source})" if killed else verdict.reason.value
        decision = HostDecision(
            decision="denied",
            via="kill_switch" if killed else "rule",
            actor="steve",
            decided_at=t,
            reason=why,
            **base,
        )
        host.record(decision, None)
        if killed:
            raise KillSwitchEngaged(host.describe(), gate.kill.source)
        raise GateDenied(host.describe(), verdict.reason.value, verdict.rule)
    if verdict.verdict is Verdict.ALLOW:
        if verdict.approval is not None:
            found = approvals.check_usable(repo, verdict.approval, now=t)
            with repo.transaction() as tx:
                approvals.mark_used(repo, tx, verdict.approval, now=t, actor=actor)
            assert found.answer is not None
            decision = HostDecision(
                decision="approved",
                via="approval",
                actor=found.answer.actor,
                decided_at=found.answer.at,
                reason=found.answer.reason,
                approval=verdict.approval,
                **base,
            )
        else:
            decision = HostDecision(
                decision="approved", via="rule", actor="steve", decided_at=t, reason=None, **base
            )
        return _execute(host, decision, verdict)
    if prompt is None:
        pending, created = approvals.request(
            repo, action, now=t, actor=actor, ttl=gate.approval_ttl, run_id=run_id
        )
        decision = HostDecision(
            decision="denied",
            via="rule",
            actor="steve",
            decided_at=t,
            reason=f"no terminal and no approval; approval request {pending.id.hex} pending",
            approval=pending.id.hex,
            **base,
        )
        host.record(decision, None)
        raise ApprovalRequired(host.describe(), pending.id.hex, created)
    answer, reason = prompt(action, preview)
    decided = now()
    if answer is Answer.YES:
        decision = HostDecision(
            decision="approved",
            via="prompt",
            actor=actor,
            decided_at=decided,
            reason=reason,
            **base,
        )
        return _execute(host, decision, verdict)
    decision = HostDecision(
        decision="denied" if answer is Answer.NO else "timed_out",
        via="prompt",
        actor=actor,
        decided_at=decided,
        reason=reason,
        **base,
    )
    receipt = host.record(decision, None)
    raise HostActionDeclined(
        host.describe(),
        decision.decision.replace("_", " "),
        None if receipt is None else receipt.hex,
    )


def _execute(host: HostAction[R], decision: HostDecision, verdict: Decision) -> Performed[R]:
    try:
        result = host.execute()
    except SteveError:
        host.record(decision, None)  # approved, but it failed: the receipt says so
        raise
    return Performed(decision, verdict, result, host.record(decision, result))
