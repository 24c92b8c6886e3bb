"""Orchestration of build/test/replay with an in-process runner: order, -j bound,
the action cache, receipts, certificates and the BUILD<->TEST loop.

The acceptance tests on the real engine are in test_engine.py."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import InvalidTransition, NoPlan, NoTestNodes, PlanNotBuilt, PolicyViolation
from steve.exec import ContainerPolicy, StepSpec
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import BuildReceipt, TestCertificate
from steve.porcelain import actioncache, runs
from steve.porcelain.build import build, split_nodes
from steve.porcelain.records import load_plan, receipt_ref
from steve.porcelain.replay import replay, replay_all
from steve.porcelain.runs import Stage
from steve.porcelain.testing import run_tests
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import (
    IMAGE,
    chain_plan,
    from_node,
    node,
    pinned,
    plan_draft,
    run_with_plan,
)


def body(repo: Repo, oid: ObjectId) -> Manifest:
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    return obj


def receipt(repo: Repo, oid: ObjectId) -> BuildReceipt:
    return BuildReceipt.model_validate(body(repo, oid).body)


def stage(repo: Repo, run_id: str) -> Stage:
    return runs.find_run(repo, run_id).stage


# --- build -------------------------------------------------------------------------


def test_build_freezes_one_receipt_per_node_and_a_second_build_is_cached(repo: Repo) -> None:
    src = repo.write_blob(b"source\n")
    run_id, plan_id = run_with_plan(repo, chain_plan(src))
    runner = FakeRunner()
    report = build(repo, runner, clock=lambda: 1_700_000_100)
    assert report.ok
    assert [(o.node, o.status.value) for o in report.outcomes] == [
        ("gen", "built"),
        ("asm", "built"),
    ]
    assert report.transition is not None and report.transition.to_stage is Stage.BUILD
    assert stage(repo, run_id) is Stage.BUILD
    gen, asm = (o.receipt for o in report.outcomes)
    assert gen is not None and asm is not None
    rg, ra = receipt(repo, gen), receipt(repo, asm)
    assert rg.plan == plan_id.hex and rg.node == "gen"
    assert rg.inputs == {"src": src.hex} and rg.input_trees == [src.hex]
    assert ra.inputs == {"in": rg.outputs["out"]}  # data flows from the upstream receipt
    assert rg.policy is not None and rg.policy.network_mode == "none"
    assert rg.exit_status == 0 and rg.failure is None
    assert [log.stream for log in rg.logs] == ["stdout", "stderr"]  # labelled (v2)
    assert repo.read_blob(ObjectId.from_hex(rg.logs[0].blob)) == b"ran gen\n"
    # parents: the plan, then the upstream receipts
    assert body(repo, gen).parents == (plan_id,)
    assert body(repo, asm).parents == (plan_id, gen)
    assert repo.rev_parse(receipt_ref(run_id, "asm")) == asm
    assert repo.rev_parse(f"refs/runs/{run_id}/build_receipt") == asm
    assert all(repo.has_object(ObjectId.from_hex(h)) for h in ra.outputs.values())

    again = FakeRunner()
    second = build(repo, again)
    assert again.calls == []
    assert [(o.status.value, o.receipt) for o in second.outcomes] == [
        ("cached", gen),
        ("cached", asm),
    ]
    assert second.transition is None  # already in BUILD

    forced = FakeRunner()
    third = build(repo, forced, no_cache=True)
    assert [s.step_id for s in forced.calls] == ["gen", "asm"]
    assert [o.status.value for o in third.outcomes] == ["built", "built"]


def test_a_failed_node_skips_downstream_and_is_not_cached(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    report = build(repo, FakeRunner(fail={"gen"}))
    assert not report.ok
    gen, asm = report.outcomes
    assert gen.status.value == "failed" and gen.failure == "StepError.ExitedNonZero"
    assert asm.status.value == "skipped" and asm.receipt is None
    assert gen.receipt is not None
    r = receipt(repo, gen.receipt)
    assert r.exit_status == 1 and r.failure == "StepError.ExitedNonZero"
    assert actioncache.lookup(repo, ObjectId.from_hex(r.action_key)) is None
    # the failure is not remembered: the next build runs gen again
    runner = FakeRunner()
    assert build(repo, runner).ok
    assert [s.step_id for s in runner.calls] == ["gen", "asm"]
    assert stage(repo, run_id) is Stage.BUILD


def test_jobs_bound_is_respected_and_used(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    nodes = [node(f"n{i}", inputs=[pinned("src", src)], outputs=["o"]) for i in range(8)]
    run_with_plan(repo, plan_draft(nodes))
    runner = FakeRunner(delay=0.05)
    report = build(repo, runner, jobs=3)
    assert report.ok and len(runner.calls) == 8
    assert 1 < runner.max_running <= 3


def test_a_plan_asking_for_network_without_grant_is_refused_before_anything_runs(
    repo: Repo,
) -> None:
    src = repo.write_blob(b"s")
    run_id, plan_id = run_with_plan(repo, chain_plan(src))
    # a plan that passed freeze never asks without a grant; build one by hand to be sure
    # the executor checks again before running anything
    plan = load_plan(repo, plan_id)
    first = plan.nodes[0].model_copy(update={"network": True})
    bad = plan.model_copy(update={"nodes": [first, *plan.nodes[1:]]})
    from steve.porcelain.steps import Executor

    runner = FakeRunner()
    ex = Executor(repo, runner, run_id, plan_id, bad)
    with pytest.raises(PolicyViolation):
        ex.check_policies(["gen"])
    assert runner.calls == []


def test_build_without_a_plan_is_an_error(repo: Repo) -> None:
    runs.new_run(repo, name="empty", now=1, actor="t")
    with pytest.raises(NoPlan):
        build(repo, FakeRunner())


def test_a_stale_cache_entry_is_ignored_and_reported(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    first = build(repo, FakeRunner())
    key = first.outcomes[0].action_key
    assert key is not None
    ghost = ObjectId(b"\x01" * 32)  # a receipt that is not in the store
    actioncache.record(repo, key, ghost)
    stale = actioncache.check(repo)
    assert [(s.key, s.receipt) for s in stale] == [(key.raw, ghost)]
    runner = FakeRunner()
    second = build(repo, runner)
    assert [s.step_id for s in runner.calls] == ["gen"]  # asm's key is unchanged: cached
    assert [s.key for s in second.stale] == [key.raw]
    assert actioncache.check(repo) == []  # the rebuilt receipt replaced the stale entry


# --- action keys -------------------------------------------------------------------

BASE = StepSpec(
    run_id="r",
    step_id="s",
    image=IMAGE,
    command=("sh", "-c", "true"),
    env={"A": "1"},
    inputs={"src": ObjectId(b"\x02" * 32)},
    outputs=("out",),
    policy=ContainerPolicy(),
    timeout_s=10.0,
)

CHANGES = {
    "image": {"image": "sha256:" + "cd" * 32},
    "command": {"command": ("sh", "-c", "false")},
    "env": {"env": {"A": "2"}},
    "input id": {"inputs": {"src": ObjectId(b"\x03" * 32)}},
    "input name": {"inputs": {"other": ObjectId(b"\x02" * 32)}},
    "outputs": {"outputs": ("out", "more")},
    "policy": {"policy": ContainerPolicy(pids_limit=10)},
    "timeout": {"timeout_s": 11.0},
    "workdir": {"workdir": "/w"},
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_action_key_is_sensitive_to_each_component(what: str) -> None:
    assert actioncache.action_key(replace(BASE, **CHANGES[what])) != actioncache.action_key(BASE)


def test_action_key_ignores_run_step_and_image_name() -> None:
    same = replace(BASE, run_id="other", step_id="t", image="busybox@" + IMAGE, env={"A": "1"})
    assert actioncache.action_key(same) == actioncache.action_key(BASE)


@given(
    env=st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=4),
    command=st.lists(st.text(max_size=8), min_size=1, max_size=4),
)
def test_action_key_is_stable_across_dict_order(env: dict[str, str], command: list[str]) -> None:
    a = replace(BASE, env=env, command=tuple(command))
    b = replace(BASE, env=dict(reversed(list(env.items()))), command=tuple(command))
    assert actioncache.action_key(a) == actioncache.action_key(b)
    assert actioncache.action_key(a).hex == actioncache.action_key(a).hex


# --- topological order with random DAGs ---------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> list[list[int]]:
    n = draw(st.integers(1, 7))
    return [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)]


class OrderRunner(FakeRunner):
    """Records start/finish order to check that no node starts before its inputs end."""

    def __init__(self) -> None:
        super().__init__(delay=0.002)
        self.events: list[tuple[str, str]] = []
        self._elock = threading.Lock()

    def run(self, repo, spec, on_log=None):  # type: ignore[no-untyped-def]
        with self._elock:
            self.events.append(("start", spec.step_id))
        try:
            return super().run(repo, spec, on_log)
        finally:
            with self._elock:
                self.events.append(("end", spec.step_id))


@given(dag=dags(), jobs=st.integers(1, 4))
def test_nodes_start_only_after_their_upstream_nodes_ended(dag: list[list[int]], jobs: int) -> None:
    repo = Repo.memory()
    src = repo.write_blob(b"s")
    nodes = []
    for i, ups in enumerate(reversed(dag)):  # list the nodes in reverse: order must not matter
        idx = len(dag) - 1 - i
        inputs = [from_node(f"i{u}", f"n{u}", "o") for u in dag[idx]] or [pinned("src", src)]
        nodes.append(node(f"n{idx}", inputs=inputs, outputs=["o"]))
        del ups
    run_with_plan(repo, plan_draft(nodes))
    runner = OrderRunner()
    report = build(repo, runner, jobs=jobs)
    assert report.ok and len(runner.calls) == len(dag)
    ended: set[str] = set()
    for what, nid in runner.events:
        if what == "start":
            assert {f"n{u}" for u in dag[int(nid[1:])]} <= ended, runner.events
        else:
            ended.add(nid)
    assert runner.max_running <= jobs


# --- test and the BUILD<->TEST loop --------------------------------------------------


def test_test_freezes_a_certificate_and_a_failure_goes_back_to_build(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, plan_id = run_with_plan(repo, chain_plan(src))
    with pytest.raises(InvalidTransition):
        run_tests(repo, FakeRunner())  # PLAN -> TEST is not a transition
    runs.goto(repo, run_id, Stage.BUILD, now=1_700_000_050, actor="t")
    with pytest.raises(PlanNotBuilt):
        run_tests(repo, FakeRunner())  # in BUILD, but nothing is built
    assert stage(repo, run_id) is Stage.BUILD
    assert build(repo, FakeRunner()).ok
    assert split_nodes(load_plan(repo, plan_id)) == (["gen", "asm"], ["check"])

    failing = FakeRunner(junit_fail={"check"})
    report = run_tests(repo, failing, clock=lambda: 1_700_000_200)
    assert report.verdict == "fail"
    assert [s.step_id for s in failing.calls] == ["check"]  # builds came from the cache
    cert = TestCertificate.model_validate(body(repo, report.certificate).body)
    assert cert.verdict == "fail"
    assert [f.classification for f in cert.failures] == ["TestError.AssertionFailed"]
    assert cert.results[0].junit is not None and cert.results[0].junit.failed_cases == ["t.bad"]
    assert len(cert.builds) == 3 and cert.policy.checked == 3 and cert.policy.passed == 3
    assert [t.to_stage for t in report.transitions] == [Stage.TEST, Stage.BUILD]
    assert stage(repo, run_id) is Stage.BUILD
    assert repo.rev_parse(f"refs/runs/{run_id}/test_certificate") == report.certificate
    # a failing test is not cached: the next test runs it again, and it passes now
    rebuilt = FakeRunner()
    assert [o.status.value for o in build(repo, rebuilt).outcomes] == ["cached", "cached"]
    assert rebuilt.calls == []
    passing = FakeRunner()
    ok = run_tests(repo, passing)
    assert ok.verdict == "pass" and [s.step_id for s in passing.calls] == ["check"]
    assert stage(repo, run_id) is Stage.TEST
    assert body(repo, ok.certificate).parents[0] == report.certificate  # previous certificate


def test_a_fix_through_an_amended_plan_reuses_unchanged_nodes(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, plan_id = run_with_plan(repo, chain_plan(src, check="exit 1"))
    assert build(repo, FakeRunner()).ok
    report = run_tests(repo, FakeRunner(fail={"check"}))
    assert report.verdict == "fail" and report.failures[0].classification == (
        "StepError.ExitedNonZero"  # no JUnit report says more
    )
    from steve.porcelain.freeze import freeze

    fixed = freeze(repo, "plan", chain_plan(src, check="true"), amends=plan_id, now=2, tz=0)
    runner = FakeRunner()
    again = build(repo, runner, plan=fixed)
    assert [o.status.value for o in again.outcomes] == ["cached", "cached"]
    assert repo.rev_parse(f"refs/runs/{run_id}/plan") == fixed
    assert run_tests(repo, FakeRunner()).verdict == "pass"


def test_a_plan_without_tests_cannot_be_certified(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, plan_draft([node("only", inputs=[pinned("src", src)])]))
    build(repo, FakeRunner())
    with pytest.raises(NoTestNodes):
        run_tests(repo, FakeRunner())


# --- replay ------------------------------------------------------------------------------


def test_replay_matches_mismatches_and_declared_nondeterminism(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    draft = chain_plan(src)
    draft["nodes"][1]["nondeterminism"] = ["embeds a timestamp"]
    run_id, _ = run_with_plan(repo, draft)
    report = build(repo, FakeRunner())
    gen, asm = (o.receipt for o in report.outcomes)
    assert gen is not None and asm is not None

    same = replay(repo, FakeRunner(), gen)
    assert same.verdict == "match" and same.differing == [] and same.key_matches
    verdict = TestCertificate.model_validate(body(repo, same.verdict_id).body)
    assert verdict.verdict == "pass" and verdict.replay is not None
    assert verdict.replay.receipt == gen.hex and body(repo, same.verdict_id).parents == (gen,)
    assert repo.rev_parse(f"refs/replays/{gen.hex}") == same.verdict_id
    assert body(repo, same.replayed).parents == (gen,)

    other = FakeRunner(salt=b"!")
    bad = replay(repo, other, gen)
    assert bad.verdict == "mismatch" and [d.path for d in bad.differing] == ["out"]
    v = TestCertificate.model_validate(body(repo, bad.verdict_id).body)
    assert v.verdict == "fail" and v.failures[0].classification == "TestError.ReplayMismatch"

    declared = replay(repo, FakeRunner(salt=b"!"), asm)
    assert declared.verdict == "nondeterministic"

    reports = replay_all(repo, FakeRunner(), run_id)
    assert sorted(r.node for r in reports) == ["asm", "gen"]
    assert all(r.verdict == "match" for r in reports)


def test_receipts_pass_fsck_and_timestamps_are_ordered(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    start = int(time.time())
    report = build(repo, FakeRunner())
    for o in report.outcomes:
        assert o.receipt is not None
        r = receipt(repo, o.receipt)
        assert start - 1 <= r.started_at <= r.finished_at
        assert body(repo, o.receipt).kind is ObjectType.BUILD_RECEIPT
    assert repo.fsck().ok
