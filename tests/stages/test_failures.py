"""Failure classes recorded in receipts and certificates (issue 11 item 13): one
taxonomy, and each class claims no more than STEVE observed."""

from __future__ import annotations

from steve.objects.model import Manifest
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import BuildReceipt, TestCertificate
from steve.porcelain import runs
from steve.porcelain.build import build
from steve.porcelain.runs import Stage
from steve.porcelain.testing import run_tests
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import chain_plan, from_node, node, pinned, plan_draft, run_with_plan


def manifest(repo: Repo, oid: ObjectId) -> Manifest:
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    return obj


def test_a_build_step_that_exits_non_zero_is_not_called_a_compile_error(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    report = build(repo, FakeRunner(fail={"gen"}))
    gen = report.outcomes[0]
    assert gen.failure == "StepError.ExitedNonZero"
    assert gen.receipt is not None
    body = BuildReceipt.model_validate(manifest(repo, gen.receipt).body)
    assert body.failure == "StepError.ExitedNonZero" and body.exit_status == 1


def two_tests_plan(src: ObjectId) -> dict[str, object]:
    """build -> t1 (test) -> t2 (test, needs t1's output)."""
    return plan_draft(
        [
            node("build", inputs=[pinned("src", src)], outputs=["out"]),
            node("t1", kind="test", inputs=[from_node("in", "build", "out")], outputs=["r"]),
            node("t2", kind="test", inputs=[from_node("in", "t1", "r")], outputs=["junit.xml"]),
        ]
    )


def test_a_test_that_did_not_run_is_not_called_a_crash(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, two_tests_plan(src))
    assert build(repo, FakeRunner()).ok
    report = run_tests(repo, FakeRunner(fail={"t1"}))
    cert = TestCertificate.model_validate(manifest(repo, report.certificate).body)
    classes = {f.node: f.classification for f in cert.failures}
    assert classes == {"t1": "StepError.ExitedNonZero", "t2": "StepError.UpstreamFailed"}
    assert runs.find_run(repo, run_id).stage is Stage.BUILD


def test_a_junit_failure_is_an_assertion_failure_whatever_the_exit_status(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    assert build(repo, FakeRunner()).ok
    report = run_tests(repo, FakeRunner(junit_fail={"check"}))  # exit 0, a failed case
    assert [f.classification for f in report.failures] == ["TestError.AssertionFailed"]
    check = report.tests[0]
    assert check.receipt is not None
    receipt = BuildReceipt.model_validate(manifest(repo, check.receipt).body)
    assert receipt.failure == "TestError.AssertionFailed" and receipt.exit_status == 0


def test_testing_again_with_everything_cached_names_the_existing_certificate(
    repo: Repo,
) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    assert build(repo, FakeRunner()).ok
    first = run_tests(repo, FakeRunner(), clock=lambda: 1_700_000_100)
    assert first.verdict == "pass"
    objects = repo.backend.count()
    runner = FakeRunner()
    again = run_tests(repo, runner, clock=lambda: 1_700_000_999)
    assert runner.calls == []  # the passing test came from the cache
    assert again.certificate == first.certificate
    assert again.reused
    assert again.transitions == []
    assert repo.rev_parse(f"refs/runs/{run_id}/test_certificate") == first.certificate
    assert repo.backend.count() == objects  # nothing new was stored
    # from BUILD (after a rebuild from the cache) the same certificate is named again
    runs.goto(repo, run_id, Stage.BUILD, now=1_700_001_000, actor="t")
    third = run_tests(repo, FakeRunner())
    assert third.certificate == first.certificate and third.reused
    assert [t.to_stage for t in third.transitions] == [Stage.TEST]
    # a test that runs again and records something else is a new certificate
    # (the salt changes outputs, but the check's only output is its JUnit report)
    other = FakeRunner(junit_fail={"check"})
    forced = run_tests(repo, other, no_cache=True, clock=lambda: 1_700_002_000)
    assert forced.certificate != first.certificate and not forced.reused
