"""The policy gate's decision (steve.porcelain.gate.decide): properties over actions,
rule sets, approvals and the kill switch, and the secure defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.config import RepoConfig
from steve.errors import GateConfigInvalid
from steve.objects.oid import ObjectId
from steve.porcelain.gate import (
    DEFAULT_RULES,
    HOST_GRANTS,
    Action,
    ActionKind,
    Context,
    Granted,
    Reason,
    Rule,
    Verdict,
    action_digest,
    decide,
    effective_rules,
    parse_rules,
)
from steve.store.kdf import KdfParams

STRICT = {Verdict.ALLOW: 0, Verdict.REQUIRE_APPROVAL: 1, Verdict.DENY: 2}
SUBJECTS = ["/srv/app", "/tmp/x", "network", "host_mount", "privileged", "a", "*"]
PATTERNS = ["*", "deploy", "host.*", "container.*", "git.push", "container.grant", "nope"]

digests = st.binary(min_size=32, max_size=32).map(ObjectId)
actions = st.builds(
    Action,
    kind=st.sampled_from(list(ActionKind)),
    subject=st.sampled_from(SUBJECTS),
    digest=digests,
)
rules = st.builds(
    Rule,
    name=st.sampled_from(["r1", "r2", "r3"]),
    action=st.sampled_from(PATTERNS),
    effect=st.sampled_from(list(Verdict)),
    subject=st.sampled_from(["*", *SUBJECTS]),
)
rule_sets = st.lists(rules, max_size=8).map(tuple)
NOW = 1_000_000


def granted_for(digest: ObjectId, expires_at: int = NOW + 60, ident: str = "a" * 64) -> Granted:
    return Granted(ident, digest, expires_at)


@given(actions, rule_sets, st.booleans())
def test_deny_always_wins_over_allow(action: Action, rs: tuple[Rule, ...], extra: bool) -> None:
    deny = Rule("deny-it", action.kind.value, Verdict.DENY, action.subject)
    allow = Rule("allow-it", "*", Verdict.ALLOW)
    ordered = (allow, *rs, deny) if extra else (deny, *rs, allow)
    approvals = (granted_for(action.digest),)  # even a matching approval does not help
    d = decide(action, Context(ordered, False, NOW, approvals))
    assert d.verdict is Verdict.DENY and d.reason is Reason.DENIED_BY_RULE


@given(actions, rule_sets, rules)
def test_adding_a_rule_never_loosens_the_verdict(
    action: Action, rs: tuple[Rule, ...], extra: Rule
) -> None:
    before = decide(action, Context(rs, False, NOW)).verdict
    after = decide(action, Context((*rs, extra), False, NOW)).verdict
    if rs and any(r.matches(action) for r in rs):
        assert STRICT[after] >= STRICT[before]


@given(actions, rule_sets, st.lists(digests, max_size=3))
@example(
    Action(ActionKind.DEPLOY, "/srv/app", ObjectId(b"\x01" * 32)),
    DEFAULT_RULES,
    [ObjectId(b"\x01" * 32)],
)
def test_the_kill_switch_wins_over_any_approval(
    action: Action, rs: tuple[Rule, ...], others: list[ObjectId]
) -> None:
    approvals = tuple(granted_for(d) for d in [action.digest, *others])
    allow_all = (*rs, Rule("allow", "*", Verdict.ALLOW))
    d = decide(action, Context(allow_all, True, NOW, approvals))
    assert d.verdict is Verdict.DENY and d.reason is Reason.KILL_SWITCH and d.approval is None


@given(actions, rule_sets, st.lists(digests, max_size=4))
def test_an_approval_never_matches_another_action_digest(
    action: Action, rs: tuple[Rule, ...], others: list[ObjectId]
) -> None:
    approvals = tuple(granted_for(d) for d in others if d != action.digest)
    d = decide(action, Context((*DEFAULT_RULES, *rs), False, NOW, approvals))
    assert d.reason is not Reason.APPROVED and d.approval is None


@given(actions, st.integers(min_value=-5, max_value=5))
def test_a_matching_approval_allows_only_until_it_expires(action: Action, delta: int) -> None:
    rs = (Rule("ask", "*", Verdict.REQUIRE_APPROVAL),)
    d = decide(action, Context(rs, False, NOW, (granted_for(action.digest, NOW + delta),)))
    if delta > 0:
        assert (d.verdict, d.reason, d.approval) == (Verdict.ALLOW, Reason.APPROVED, "a" * 64)
    else:
        assert (d.verdict, d.reason) == (Verdict.REQUIRE_APPROVAL, Reason.APPROVAL_REQUIRED)


@given(actions)
def test_no_matching_rule_is_a_deny(action: Action) -> None:
    d = decide(action, Context((Rule("other", "nothing.*", Verdict.ALLOW),), False, NOW))
    assert (d.verdict, d.reason) == (Verdict.DENY, Reason.NO_RULE)


@given(actions)
def test_the_defaults_never_allow_a_host_action_without_an_approval(action: Action) -> None:
    d = decide(action, Context(DEFAULT_RULES, False, NOW))
    if action.kind.on_host or (
        action.kind is ActionKind.CONTAINER_GRANT and action.subject in HOST_GRANTS
    ):
        assert d.verdict is not Verdict.ALLOW


def _verdict(kind: ActionKind, subject: str) -> tuple[Verdict, str]:
    d = decide(Action.of(kind, subject, {}), Context(DEFAULT_RULES, False, NOW))
    return d.verdict, d.rule


def test_the_secure_defaults() -> None:
    assert _verdict(ActionKind.DEPLOY, "/srv") == (Verdict.REQUIRE_APPROVAL, "deploy")
    assert _verdict(ActionKind.HOST_WRITE, "/etc") == (Verdict.REQUIRE_APPROVAL, "host")
    assert _verdict(ActionKind.HOST_EXEC, "make") == (Verdict.REQUIRE_APPROVAL, "host")
    assert _verdict(ActionKind.GIT_PUSH, "main") == (Verdict.DENY, "push-only-proposes")
    assert _verdict(ActionKind.GIT_PROPOSE, "x") == (Verdict.REQUIRE_APPROVAL, "propose")
    assert _verdict(ActionKind.CONTAINER_RUN, "gen") == (Verdict.ALLOW, "container")
    assert _verdict(ActionKind.CONTAINER_GRANT, "network") == (Verdict.ALLOW, "plan-grant")
    assert _verdict(ActionKind.NET_FETCH, "example.org") == (Verdict.ALLOW, "research-fetch")
    for cap in HOST_GRANTS:
        assert _verdict(ActionKind.CONTAINER_GRANT, cap) == (
            Verdict.REQUIRE_APPROVAL,
            f"host-grant-{cap}",
        )


def test_the_action_digest_covers_kind_subject_and_description() -> None:
    files = {"files": [["bin/x", "ab" * 32]]}
    a = Action.of(ActionKind.DEPLOY, "/srv", files)
    assert a == Action.of(ActionKind.DEPLOY, "/srv", files)
    assert a.digest != Action.of(ActionKind.DEPLOY, "/srv2", files).digest
    assert a.digest != Action.of(ActionKind.HOST_WRITE, "/srv", files).digest
    other = {"files": [["bin/y", "ab" * 32]]}
    assert a.digest != Action.of(ActionKind.DEPLOY, "/srv", other).digest
    # the digest is BLAKE3 of the canonical CBOR: key order does not matter
    assert action_digest({"a": 1, "b": 2}) == action_digest({"b": 2, "a": 1})
    with pytest.raises(ValueError):
        action_digest({"x": 1.5})  # no floats in a canonical description


def test_config_rules_tighten_and_round_trip_through_the_config_file(tmp_path: Path) -> None:
    table = {
        "approval_ttl_seconds": 60,
        "rule": [
            {"name": "no-srv", "action": "deploy", "subject": "/srv/*", "effect": "deny"},
            {"name": "loosen", "action": "deploy", "effect": "allow"},  # cannot loosen
        ],
    }
    extra, ttl = parse_rules(table)
    assert ttl == 60 and [r.name for r in extra] == ["no-srv", "loosen"]
    rs = effective_rules(extra)
    srv = decide(Action.of(ActionKind.DEPLOY, "/srv/app", {}), Context(rs, False, NOW))
    tmp = decide(Action.of(ActionKind.DEPLOY, "/tmp/app", {}), Context(rs, False, NOW))
    assert (srv.verdict, srv.rule) == (Verdict.DENY, "no-srv")
    assert tmp.verdict is Verdict.REQUIRE_APPROVAL  # the allow rule did not loosen the default
    kdf = KdfParams(salt=b"s" * 16, memory_kib=256, iterations=1, parallelism=1)
    path = tmp_path / "config"
    RepoConfig("r", kdf, b"k", gate=table).write(path)
    again = RepoConfig.read(path)
    assert again.gate == table
    assert again.with_events_key(b"\x01" * 32).gate == table  # kept when rewritten


@pytest.mark.parametrize(
    "table",
    [
        [],
        {"unknown": 1},
        {"approval_ttl_seconds": 0},
        {"approval_ttl_seconds": True},
        {"rule": {}},
        {"rule": [{"name": "x", "action": "deploy"}]},
        {"rule": [{"name": "x", "action": "deploy", "effect": "maybe"}]},
        {"rule": [{"name": "x", "action": "deploy", "effect": "deny", "extra": "y"}]},
        {"rule": [{"name": "", "action": "deploy", "effect": "deny"}]},
    ],
)
def test_bad_gate_tables_are_refused_with_a_typed_error(table: object) -> None:
    with pytest.raises(GateConfigInvalid):
        parse_rules(table)
