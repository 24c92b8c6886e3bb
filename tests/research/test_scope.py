"""The research scope (steve.research.scope) and the source policy (steve.research.policy)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import ScopeInvalid, UnknownQuestion
from steve.objects import cbor
from steve.porcelain.runs import new_run
from steve.porcelain.stages import record
from steve.repo import Repo
from steve.research.policy import SourcePolicy, domain_matches
from steve.research.scope import (
    DEFAULT_SCOPE,
    SCOPE_PREFIX,
    Scope,
    ScopeChanges,
    load_scope,
    record_scope,
)

T0 = 1_767_225_600
DESIGN = {
    "project_id": "p",
    "name": "demo",
    "created_at": 1,
    "intent": {"summary": "do it"},
    "human_approved": False,
    "research_questions": [
        {"id": "RQ-001", "question": "How does WAL mode work?", "priority": "Must"},
        {"id": "RQ-002", "question": "What is content addressing?", "priority": "Should"},
    ],
}


def _run_with_design(repo: Repo) -> str:
    run = new_run(repo, name="r", now=T0, actor="t")
    record(repo, "design", DESIGN, now=T0 + 1, tz=0, actor="t")
    return run.id


def test_defaults_without_a_scope(repo: Repo) -> None:
    assert load_scope(repo) == DEFAULT_SCOPE
    assert DEFAULT_SCOPE.policy.robots and DEFAULT_SCOPE.policy.max_redirects == 5


def test_scope_records_each_design_question(repo: Repo) -> None:
    run_id = _run_with_design(repo)
    scope = record_scope(
        repo,
        run_id=None,
        changes=ScopeChanges(allow=("example.org",), budget={"pages": 7}),
        now=T0 + 2,
    )
    assert [q.id for q in scope.questions] == ["RQ-001", "RQ-002"]
    assert all(q.policy.allow == ("example.org",) and q.budget.pages == 7 for q in scope.questions)
    one = record_scope(
        repo,
        run_id=run_id,
        changes=ScopeChanges(question="RQ-002", robots=False, deny=("bad.example.org",)),
        now=T0 + 3,
    )
    assert load_scope(repo) == one and one.recorded is not None
    assert one.policy_for("RQ-001").robots and not one.policy_for("RQ-002").robots
    assert one.policy_for("RQ-002").deny == ("bad.example.org",)
    assert one.policy.robots  # the default stays
    stored = cbor.decode(repo.read_blob(one.recorded))
    assert stored["type"] == "research.scope" and Scope.from_record(stored, one.recorded) == one
    history = repo.reflog(SCOPE_PREFIX + run_id)
    assert len(history) == 2 and history[0].new == one.recorded
    types = [e.type for e in repo.pending_events()]
    assert types.count("research.scoped") == 2


def test_scope_refuses_unknown_questions_and_bad_values(repo: Repo) -> None:
    _run_with_design(repo)
    with pytest.raises(UnknownQuestion):
        record_scope(repo, run_id=None, changes=ScopeChanges(question="RQ-009"), now=T0)
    with pytest.raises(UnknownQuestion):
        load_scope(repo).question("RQ-001")  # nothing recorded yet: no questions
    with pytest.raises(ScopeInvalid):
        record_scope(repo, run_id=None, changes=ScopeChanges(allow=("a/b",)), now=T0)
    with pytest.raises(ScopeInvalid):
        SourcePolicy.from_record({"robots": "yes"})


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(domains, st.lists(labels, max_size=3))
@example("example.org", ["docs"])
def test_a_domain_covers_itself_and_its_subdomains(domain: str, sub: list[str]) -> None:
    host = ".".join([*sub, domain])
    assert domain_matches(domain, host)
    assert domain_matches("*." + domain.upper(), host.upper() + ".")


@given(domains, domains)
@example("example.org", "badexample.org")
def test_a_domain_never_covers_a_lookalike(domain: str, other: str) -> None:
    if other == domain or other.endswith("." + domain):
        return
    assert not domain_matches(domain, other)


@given(domains, st.lists(labels, max_size=2))
def test_deny_wins_over_allow(domain: str, sub: list[str]) -> None:
    host = ".".join([*sub, domain])
    policy = SourcePolicy(allow=(domain,), deny=(domain,))
    assert policy.domain_allowed(host) is not None
    assert SourcePolicy(allow=(domain,)).domain_allowed(host) is None


policies = st.builds(
    SourcePolicy,
    allow=st.lists(domains, max_size=3).map(tuple),
    deny=st.lists(domains, max_size=3).map(tuple),
    media_types=st.lists(
        st.sampled_from(["text/html", "text/*", "application/pdf"]), min_size=1, max_size=3
    ).map(tuple),
    max_page_bytes=st.integers(1, 2**40),
    robots=st.booleans(),
    max_redirects=st.integers(0, 50),
    timeout_seconds=st.integers(1, 3600),
)


@given(policies)
def test_a_policy_survives_its_record(policy: SourcePolicy) -> None:
    assert SourcePolicy.from_record(cbor.decode(cbor.encode(policy.to_record()))) == policy
