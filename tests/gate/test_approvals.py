"""Approvals (frozen CBOR blobs named by refs, with events), the kill switch's state and
the HostAction primitive, on a real encrypted repository."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from steve.errors import (
    AmbiguousPrefix,
    ApprovalDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRequired,
    ApprovalUsed,
    GateDenied,
    HostActionDeclined,
    KillSwitchEngaged,
)
from steve.objects import cbor
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import HostDecision
from steve.porcelain import approvals
from steve.porcelain.approvals import State
from steve.porcelain.gate import Action, ActionKind, Granted, Rule, Verdict, effective_rules
from steve.porcelain.hostaction import (
    Answer,
    GateSettings,
    KillSwitch,
    Preview,
    gate_settings,
    kill_switch,
    perform,
    set_kill_switch,
)
from steve.repo import Repo

T = 1_800_000_000


def deploy_action(target: str = "/srv/app", files: tuple[str, ...] = ("bin/tool",)) -> Action:
    return Action.of(ActionKind.DEPLOY, target, {"files": list(files)}, f"deploy to {target}")


def events(repo: Repo, prefix: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    for ev in repo.pending_events():
        if ev.type.startswith(prefix):
            payload = cbor.decode(ev.payload)
            assert isinstance(payload, dict)
            out.append((ev.type, payload))
    return out


def test_a_request_is_pending_until_answered_once(repo: Repo) -> None:
    action = deploy_action()
    req, created = approvals.request(repo, action, now=T, actor="ci", ttl=600, run_id="R1")
    assert created and req.state is State.PENDING
    assert req.request.digest == action.digest and req.request.expires_at == T + 600
    # the record is a blob of canonical CBOR named by a ref
    ref = repo.list_refs(f"refs/approvals/{req.id.hex}/")
    assert [r.name.rsplit("/", 1)[1] for r in ref] == ["request"]
    assert repo.object_type(req.id) is ObjectType.BLOB
    record = cbor.decode(repo.read_blob(req.id))
    assert isinstance(record, dict) and record["digest"] == action.digest.hex
    # asking again for the same action names the same pending request
    again, created = approvals.request(repo, action, now=T + 1, actor="ci", ttl=600)
    assert not created and again.id == req.id
    granted = approvals.answer(
        repo, req.id.hex[:6], approve=True, now=T + 5, actor="ana", reason="release"
    )
    assert granted.state is State.APPROVED and granted.answer is not None
    assert (granted.answer.actor, granted.answer.reason) == ("ana", "release")
    assert approvals.granted(repo, now=T + 10) == (Granted(req.id.hex, action.digest, T + 600),)
    with pytest.raises(ApprovalDecided):
        approvals.answer(repo, req.id.hex, approve=False, now=T + 6, actor="bob", reason=None)
    kinds = [t for t, _ in events(repo, "approval.")]
    assert kinds == ["approval.requested", "approval.approved"]
    assert repo.fsck().ok


def test_granted_lists_only_approved_unexpired_unused_approvals(repo: Repo) -> None:
    a, b, c = deploy_action("/a"), deploy_action("/b"), deploy_action("/c")
    ra, _ = approvals.request(repo, a, now=T, actor="ci", ttl=100)
    rb, _ = approvals.request(repo, b, now=T, actor="ci", ttl=100)
    approvals.request(repo, c, now=T, actor="ci", ttl=100)
    approvals.answer(repo, ra.id.hex, approve=True, now=T, actor="ana", reason=None)
    approvals.answer(repo, rb.id.hex, approve=False, now=T, actor="ana", reason="no")
    assert [g.digest for g in approvals.granted(repo, now=T + 50)] == [a.digest]
    assert approvals.granted(repo, now=T + 100) == ()  # expired
    states = {x.request.subject: x.state for x in approvals.list_approvals(repo, now=T + 50)}
    assert states == {"/a": State.APPROVED, "/b": State.DENIED, "/c": State.PENDING}
    with repo.transaction() as tx:
        approvals.mark_used(repo, tx, ra.id.hex, now=T + 1, actor="ci")
    assert approvals.granted(repo, now=T + 50) == ()
    with pytest.raises(ApprovalUsed), repo.transaction() as tx:
        approvals.mark_used(repo, tx, ra.id.hex, now=T + 2, actor="ci")
    assert approvals.find(repo, ra.id.hex, now=T + 50).state is State.USED


def test_an_expired_request_cannot_be_answered(repo: Repo) -> None:
    req, _ = approvals.request(repo, deploy_action(), now=T, actor="ci", ttl=10)
    with pytest.raises(ApprovalExpired):
        approvals.answer(repo, req.id.hex, approve=True, now=T + 10, actor="ana", reason=None)
    assert approvals.find(repo, req.id.hex, now=T + 10).state is State.EXPIRED
    # a new request for the same action is made once the old one expired
    fresh, created = approvals.request(repo, deploy_action(), now=T + 11, actor="ci", ttl=10)
    assert created and fresh.id != req.id


def test_unknown_and_ambiguous_ids(repo: Repo) -> None:
    with pytest.raises(ApprovalNotFound):
        approvals.find(repo, "abcd", now=T)
    with pytest.raises(ApprovalNotFound):
        approvals.find(repo, "xyz!", now=T)
    made = [
        approvals.request(repo, deploy_action(f"/{i}"), now=T, actor="ci", ttl=9)[0]
        for i in range(40)
    ]
    firsts = [m.id.hex[:1] for m in made]
    dup = next(p for p in firsts if firsts.count(p) > 1)
    with pytest.raises(ApprovalNotFound):
        approvals.find(repo, dup, now=T)  # fewer than 4 digits
    by4 = [m.id.hex[:4] for m in made]
    if len(set(by4)) < len(by4):  # pragma: no cover - rare
        with pytest.raises(AmbiguousPrefix):
            approvals.find(repo, next(p for p in by4 if by4.count(p) > 1), now=T)


def test_the_kill_switch_state_is_stored_with_an_event_per_change(repo: Repo) -> None:
    assert not kill_switch(repo).on
    assert kill_switch(repo, kill_env=True).source == "environment"
    assert set_kill_switch(repo, True, actor="ana", reason="incident")
    assert not set_kill_switch(repo, True, actor="ana")  # no change, no event
    assert kill_switch(repo).on and kill_switch(repo).source == "repository"
    assert set_kill_switch(repo, False, actor="ana")
    states = [p["state"] for _, p in events(repo, "gate.kill_switch")]
    assert states == ["on", "off"]


# --- the HostAction primitive -------------------------------------------------------------


@dataclass
class Probe:
    """A host action that records what the primitive asked of it (a user never meets it)."""

    action: Action
    executed: int = 0
    recorded: list[tuple[HostDecision, object]] = field(default_factory=list)

    def gate_action(self) -> Action:
        return self.action

    def describe(self) -> str:
        return self.action.summary

    def dry_run(self) -> Preview:
        return Preview("would write bin/tool", ("  bin/tool  10 bytes",))

    def execute(self) -> str:
        self.executed += 1
        return "done"

    def record(self, decision: HostDecision, result: str | None) -> ObjectId | None:
        self.recorded.append((decision, result))
        return None


def fixed_gate(repo: Repo, now: int = T, kill: bool = False) -> GateSettings:
    """The repository's gate with the clock stopped at ``now``."""
    return gate_settings(repo, kill_env=kill, clock=lambda: now)


def test_on_a_terminal_the_dry_run_is_shown_and_yes_executes(repo: Repo) -> None:
    probe = Probe(deploy_action())
    shown: list[str] = []

    def ask(action: Action, preview: Preview) -> tuple[Answer, str | None]:
        shown.append(preview.text())
        return Answer.YES, "looks right"

    done = perform(repo, probe, gate=fixed_gate(repo), prompt=ask, actor="ana")
    assert shown == ["would write bin/tool\n  bin/tool  10 bytes\n"]
    assert probe.executed == 1 and done.result == "done"
    decision, result = probe.recorded[0]
    assert (decision.decision, decision.via, decision.actor, decision.reason) == (
        "approved",
        "prompt",
        "ana",
        "looks right",
    )
    assert decision.decided_at == T and decision.action_digest == probe.action.digest.hex
    assert result == "done"


@pytest.mark.parametrize(
    ("answer", "outcome"), [(Answer.NO, "denied"), (Answer.TIMED_OUT, "timed_out")]
)
def test_no_or_no_answer_records_the_decision_and_does_nothing(
    repo: Repo, answer: Answer, outcome: str
) -> None:
    probe = Probe(deploy_action())
    with pytest.raises(HostActionDeclined):
        perform(
            repo, probe, gate=fixed_gate(repo), prompt=lambda a, p: (answer, None), actor="ana"
        )
    assert probe.executed == 0
    assert [(d.decision, d.via, r) for d, r in probe.recorded] == [(outcome, "prompt", None)]


def test_without_a_terminal_a_request_is_recorded_and_an_approval_lets_it_run_once(
    repo: Repo,
) -> None:
    probe = Probe(deploy_action())
    with pytest.raises(ApprovalRequired) as info:
        perform(repo, probe, gate=fixed_gate(repo), prompt=None, actor="ci")
    assert probe.executed == 0
    pending = approvals.list_approvals(repo, now=T)
    assert [p.state for p in pending] == [State.PENDING]
    assert pending[0].id.hex in info.value.detail
    denied = probe.recorded[-1][0]
    assert (denied.decision, denied.via, denied.approval) == ("denied", "rule", pending[0].id.hex)
    # an approval for ANOTHER action does not help
    other, _ = approvals.request(repo, deploy_action("/elsewhere"), now=T, actor="ci", ttl=60)
    approvals.answer(repo, other.id.hex, approve=True, now=T, actor="ana", reason=None)
    with pytest.raises(ApprovalRequired):
        perform(repo, probe, gate=fixed_gate(repo), prompt=None, actor="ci")
    assert probe.executed == 0
    approvals.answer(repo, pending[0].id.hex, approve=True, now=T + 1, actor="ana", reason="ok")
    done = perform(repo, probe, gate=fixed_gate(repo, T + 2), prompt=None, actor="ci")
    assert probe.executed == 1
    d = done.decision
    assert (d.decision, d.via, d.actor, d.reason, d.approval) == (
        "approved",
        "approval",
        "ana",
        "ok",
        pending[0].id.hex,
    )
    assert approvals.find(repo, pending[0].id.hex, now=T + 2).state is State.USED
    # used up: the next attempt records a new request
    with pytest.raises(ApprovalRequired):
        perform(repo, probe, gate=fixed_gate(repo, T + 3), prompt=None, actor="ci")
    assert probe.executed == 1


def test_the_kill_switch_denies_whatever_was_approved(repo: Repo) -> None:
    probe = Probe(deploy_action())
    req, _ = approvals.request(repo, probe.action, now=T, actor="ci", ttl=60)
    approvals.answer(repo, req.id.hex, approve=True, now=T, actor="ana", reason=None)
    yes = lambda a, p: (Answer.YES, None)  # noqa: E731
    with pytest.raises(KillSwitchEngaged):
        perform(repo, probe, gate=fixed_gate(repo, kill=True), prompt=yes, actor="ci")
    set_kill_switch(repo, True, actor="ana")
    with pytest.raises(KillSwitchEngaged):
        perform(repo, probe, gate=fixed_gate(repo), prompt=yes, actor="ci")
    assert probe.executed == 0
    assert [(d.decision, d.via) for d, _ in probe.recorded] == [("denied", "kill_switch")] * 2
    assert approvals.find(repo, req.id.hex, now=T).state is State.APPROVED  # not used up


def test_a_deny_rule_is_final(repo: Repo) -> None:
    rules = effective_rules((Rule("frozen", "deploy", Verdict.DENY, "/srv/*"),))
    gate = GateSettings(rules, 60, KillSwitch(False, False), lambda: T)
    probe = Probe(deploy_action("/srv/app"))
    with pytest.raises(GateDenied) as info:
        perform(repo, probe, gate=gate, prompt=lambda a, p: (Answer.YES, None), actor="ci")
    assert info.value.rule == "frozen" and probe.executed == 0
    assert approvals.list_approvals(repo, now=T) == []  # nothing to approve
    push = Probe(Action.of(ActionKind.GIT_PUSH, "refs/heads/main", {}))
    with pytest.raises(GateDenied):
        perform(repo, push, gate=gate, prompt=None, actor="ci")


def test_an_allow_rule_runs_without_asking(repo: Repo) -> None:
    probe = Probe(Action.of(ActionKind.CONTAINER_RUN, "gen", {}))
    done = perform(repo, probe, gate=fixed_gate(repo), prompt=None, actor="ci")
    assert probe.executed == 1 and (done.decision.via, done.decision.rule) == ("rule", "container")


def test_approval_refs_reconcile_with_their_events() -> None:
    """Every ref an approval writes (request, decision, use) has its ref event, so
    `fsck --events` (and restore, which runs it) finds the repository consistent."""
    from steve.events import EventLog
    from steve.events.fsck import fsck

    repo = Repo.memory()
    with EventLog.memory() as log:
        repo.events.sink = log
        probe = Probe(deploy_action())
        with pytest.raises(ApprovalRequired):
            perform(repo, probe, gate=fixed_gate(repo), prompt=None, actor="ci")
        pending = approvals.list_approvals(repo, now=T)
        approvals.answer(repo, pending[0].id.hex, approve=True, now=T + 1, actor="ana", reason="ok")
        perform(repo, probe, gate=fixed_gate(repo, T + 2), prompt=None, actor="ci")
        other, _ = approvals.request(repo, deploy_action("/x"), now=T, actor="ci", ttl=60)
        approvals.answer(repo, other.id.hex, approve=False, now=T + 1, actor="ana", reason="no")
        repo.drain()
        report = fsck(repo, log)
        assert report.ok, [p.detail for p in report.problems]
        assert probe.executed == 1
        assert report.events >= 5  # requests, answers and the use, each with its ref event
