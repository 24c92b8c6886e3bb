"""The policy gate: one pure function decides every action STEVE takes for a user.

    >>> d = decide(deploy_action, Context(rules=DEFAULT_RULES, kill_switch=False, now=t))
    >>> d.verdict, d.reason, d.rule
    (<Verdict.REQUIRE_APPROVAL: 'require_approval'>, <Reason.APPROVAL_REQUIRED: ...>, 'host')

:func:`decide` reads nothing but its arguments: an :class:`Action` (a kind,
a subject and the BLAKE3 digest of the canonical action description, see
:func:`action_digest`) and a :class:`Context` (the rules, the kill switch,
the time and the granted approvals).  The order is fixed and is what the
property tests check:

1. the kill switch denies every host action and every container, whatever
   was approved or allowed (reason ``kill_switch``);
2. the rules that match the action are combined, and the strictest wins:
   ``deny`` over ``require_approval`` over ``allow`` (so deny always wins
   over allow); an action no rule matches is ``deny`` (``no_rule``);
3. ``require_approval`` becomes ``allow`` (``approved``) only with a granted,
   unexpired approval for exactly this action digest; otherwise it stays
   ``require_approval`` and the host action decides how to ask
   (:mod:`steve.porcelain.hostaction`).

The rules are :data:`DEFAULT_RULES` plus the ``[gate]`` rules of
``.steve/config`` (:func:`parse_rules`); since the strictest matching rule
wins, the config can only tighten the defaults, never loosen them.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from steve.errors import GateConfigInvalid, MalformedObject
from steve.objects import cbor
from steve.objects.oid import ObjectId

__all__ = [
    "DEFAULT_APPROVAL_TTL",
    "DEFAULT_RULES",
    "HOST_GRANTS",
    "Action",
    "ActionKind",
    "Context",
    "Decision",
    "Granted",
    "Reason",
    "Rule",
    "Verdict",
    "action_digest",
    "decide",
    "parse_rules",
]


class Verdict(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


# Strictest first: the first verdict among the matching rules' effects wins.
STRICTNESS: tuple[Verdict, ...] = (Verdict.DENY, Verdict.REQUIRE_APPROVAL, Verdict.ALLOW)


class ActionKind(enum.StrEnum):
    """What an action does.  The ``host`` kinds touch the machine outside a container;
    ``net.fetch`` only reads from the network (the kill switch still stops it)."""

    DEPLOY = "deploy"  # write certified artifacts to a folder on the host
    HOST_WRITE = "host.write"  # any other write outside .steve/
    HOST_EXEC = "host.exec"  # run a program on the host
    GIT_PUSH = "git.push"  # move a branch of a remote repository
    GIT_PROPOSE = "git.propose"  # offer commits for review (a proposal ref), never merge
    CONTAINER_RUN = "container.run"  # run a step in a default-deny container
    CONTAINER_GRANT = "container.grant"  # a plan grant widening a container's policy
    NET_FETCH = "net.fetch"  # RESEARCH fetches a URL (subject: the host name)

    @property
    def on_host(self) -> bool:
        return not self.value.startswith(("container.", "net."))


class Reason(enum.StrEnum):
    """Why :func:`decide` decided (``Decision.reason``)."""

    KILL_SWITCH = "kill_switch"
    DENIED_BY_RULE = "denied_by_rule"
    APPROVAL_REQUIRED = "approval_required"
    APPROVED = "approved"
    ALLOWED_BY_RULE = "allowed_by_rule"
    NO_RULE = "no_rule"


HOST_GRANTS: tuple[str, ...] = (
    "host_network",
    "privileged",
    "host_mount",
    "host_pid",
    "host_ipc",
)
"""Container capabilities that reach the host (a container escape): a grant of one
needs an approval like any host action."""


@dataclass(frozen=True, slots=True)
class Rule:
    """``effect`` for actions whose kind matches ``action`` and whose subject matches
    ``subject`` (shell-style patterns: ``host.*``, ``*``)."""

    name: str
    action: str
    effect: Verdict
    subject: str = "*"

    def matches(self, action: Action) -> bool:
        return fnmatch.fnmatchcase(action.kind.value, self.action) and fnmatch.fnmatchcase(
            action.subject, self.subject
        )


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("host", "host.*", Verdict.REQUIRE_APPROVAL),
    Rule("deploy", "deploy", Verdict.REQUIRE_APPROVAL),
    Rule("push-only-proposes", "git.push", Verdict.DENY),
    Rule("propose", "git.propose", Verdict.REQUIRE_APPROVAL),
    Rule("container", "container.run", Verdict.ALLOW),
    Rule("plan-grant", "container.grant", Verdict.ALLOW),
    Rule("research-fetch", "net.fetch", Verdict.ALLOW),
    *(
        Rule(f"host-grant-{cap}", "container.grant", Verdict.REQUIRE_APPROVAL, cap)
        for cap in HOST_GRANTS
    ),
)
"""The secure defaults: every host action needs an approval, a push can only
propose, a container runs under its default-deny policy, and a plan grant is
allowed (the frozen plan is its review) unless it reaches the host; a RESEARCH fetch
is allowed (the research scope's source policy is its filter; config rules tighten it
per host, the kill switch stops it)."""

DEFAULT_APPROVAL_TTL = 3600
"""Seconds an approval request stays answerable and a granted approval usable."""


def action_digest(description: Mapping[str, object]) -> ObjectId:
    """BLAKE3 of the canonical CBOR encoding of ``description`` (names, ids, paths)."""
    try:
        return ObjectId.of(cbor.encode(dict(description)))
    except MalformedObject as exc:
        raise ValueError(f"an action description must be plain data: {exc.detail}") from exc


@dataclass(frozen=True, slots=True)
class Action:
    """One action to decide: ``kind``, ``subject`` (a path, a capability, a ref) and the
    digest of its full description (what exactly would be done)."""

    kind: ActionKind
    subject: str
    digest: ObjectId
    summary: str = ""

    @classmethod
    def of(
        cls, kind: ActionKind, subject: str, description: Mapping[str, object], summary: str = ""
    ) -> Action:
        """The action whose digest covers ``kind``, ``subject`` and ``description``."""
        full = {"kind": kind.value, "subject": subject, "description": dict(description)}
        return cls(kind, subject, action_digest(full), summary or f"{kind.value} {subject}")


@dataclass(frozen=True, slots=True)
class Granted:
    """An approval the gate may honour: granted for ``digest`` until ``expires_at``."""

    id: str
    digest: ObjectId
    expires_at: int


@dataclass(frozen=True, slots=True)
class Context:
    rules: tuple[Rule, ...] = DEFAULT_RULES
    kill_switch: bool = False
    now: int = 0
    approvals: tuple[Granted, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason
    rule: str
    approval: str | None = None  # the approval that turned require_approval into allow


def decide(action: Action, context: Context) -> Decision:
    """The gate's verdict on ``action`` (see the module docstring for the order)."""
    if context.kill_switch:
        return Decision(Verdict.DENY, Reason.KILL_SWITCH, "kill-switch")
    matching = [r for r in context.rules if r.matches(action)]
    if not matching:
        return Decision(Verdict.DENY, Reason.NO_RULE, "(none)")
    verdict = next(v for v in STRICTNESS if any(r.effect is v for r in matching))
    rule = next(r for r in matching if r.effect is verdict).name
    if verdict is Verdict.DENY:
        return Decision(verdict, Reason.DENIED_BY_RULE, rule)
    if verdict is Verdict.ALLOW:
        return Decision(verdict, Reason.ALLOWED_BY_RULE, rule)
    for granted in context.approvals:
        if granted.digest == action.digest and context.now < granted.expires_at:
            return Decision(Verdict.ALLOW, Reason.APPROVED, rule, granted.id)
    return Decision(verdict, Reason.APPROVAL_REQUIRED, rule)


def parse_rules(table: object, where: str = "[gate]") -> tuple[tuple[Rule, ...], int]:
    """The config's ``[gate]`` table: (its rules, the approval TTL in seconds).

    ``[[gate.rule]]`` entries have ``name``, ``action`` (pattern), ``effect``
    (allow, deny, require_approval) and optionally ``subject`` (pattern).
    """
    if table is None:
        return (), DEFAULT_APPROVAL_TTL
    if not isinstance(table, Mapping):
        raise GateConfigInvalid(where, "must be a table")
    unknown = sorted(set(table) - {"rule", "approval_ttl_seconds"})
    if unknown:
        raise GateConfigInvalid(where, f"unknown keys {unknown}")
    ttl = table.get("approval_ttl_seconds", DEFAULT_APPROVAL_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= 30 * 86400:
        raise GateConfigInvalid(where, "approval_ttl_seconds must be 1..2592000")
    entries = table.get("rule", [])
    if not isinstance(entries, list):
        raise GateConfigInvalid(where, "rule must be an array of tables ([[gate.rule]])")
    return tuple(_rule(e, f"{where}.rule[{i}]") for i, e in enumerate(entries)), ttl


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise GateConfigInvalid(where, "must be a table")
    unknown = sorted(set(entry) - {"name", "action", "effect", "subject"})
    if unknown:
        raise GateConfigInvalid(where, f"unknown keys {unknown}")
    values = {k: entry.get(k) for k in ("name", "action", "effect")}
    for key, value in values.items():
        if not isinstance(value, str) or not value:
            raise GateConfigInvalid(where, f"{key} must be a non-empty string")
    subject = entry.get("subject", "*")
    if not isinstance(subject, str) or not subject:
        raise GateConfigInvalid(where, "subject must be a non-empty string")
    try:
        effect = Verdict(str(values["effect"]))
    except ValueError:
        names = ", ".join(v.value for v in Verdict)
        raise GateConfigInvalid(where, f"effect must be one of {names}") from None
    return Rule(str(values["name"]), str(values["action"]), effect, subject)


def effective_rules(extra: Iterable[Rule]) -> tuple[Rule, ...]:
    """The defaults followed by the config's rules (which can only tighten them)."""
    return (*DEFAULT_RULES, *extra)


def describe(decision: Decision) -> str:
    """One line for people: ``require_approval (approval_required, rule host)``."""
    extra = f", approval {decision.approval}" if decision.approval else ""
    return f"{decision.verdict.value} ({decision.reason.value}, rule {decision.rule}{extra})"
