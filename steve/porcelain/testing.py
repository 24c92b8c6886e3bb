"""TEST: run a plan's test nodes in containers and freeze a test certificate.

    >>> report = test(repo, DockerRunner(engine))
    >>> report.verdict, report.certificate
    ('pass', ObjectId(...))

:func:`test` needs a built plan: every build node (see
:func:`steve.porcelain.build.split_nodes`) must have a successful receipt in
the action cache for exactly the inputs the plan gives it now (else
STEVE-BUILD-002, nothing runs).  It moves the run BUILD -> TEST, runs the
test nodes like :func:`steve.porcelain.build.build` runs build nodes (a
passing test whose action key is cached is not run again; ``no_cache``
forces), and freezes a ``test_certificate``:

* ``verdict``: ``pass`` when every test node succeeded and every JUnit report
  it declared counts no failure or error;
* ``builds``: every receipt involved (build and test nodes);
* ``evidence``: the test nodes' log blobs and JUnit reports;
* ``failures``: one per failing test node, typed with the one taxonomy
  (:mod:`steve.objects.schemas.failures`): ``TestError.AssertionFailed`` for
  failed JUnit cases, ``StepError.ExitedNonZero`` for a non-zero exit no
  report explains, ``StepError.UpstreamFailed`` for a test that did not run,
  ``StepError.Timeout``, ``ContainerError.*``;
* ``policy``: how many steps ran under a checked policy, how many passed it,
  and the violations (policy refusals, denied network);
* ``results``: per test node, its receipt and the JUnit counts.

A declared output whose name ends in ``.xml`` is read as a JUnit report
(:mod:`steve.porcelain.junit`); a test node whose report counts a failure or
an error fails (``TestError.AssertionFailed``) even if it exited 0, and a
failing test is never cached.

The certificate moves ``refs/runs/<run>/test_certificate``.  When the
run's certificate already says exactly this (the same receipts and verdict,
e.g. every test came from the cache), it is named again and nothing new is
frozen (``reused``).  When the verdict
is ``fail`` the run goes back to BUILD in the same transaction (the
BUILD<->TEST loop); the next ``build`` reuses every unchanged node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from steve.errors import NoTestNodes, PlanNotBuilt
from steve.events import EventLog
from steve.exec import Runner
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.failures import FailureClass
from steve.objects.schemas.receipts import (
    Failure,
    JUnitSummary,
    PolicyVerdict,
    TestCertificate,
    TestResult,
)
from steve.porcelain.actioncache import StaleEntry
from steve.porcelain.build import enter_stage, plan_of, split_nodes
from steve.porcelain.freeze import frozen_payload, store_manifest
from steve.porcelain.hostaction import GateSettings, Prompt
from steve.porcelain.junit import JUnitReport
from steve.porcelain.records import envelope, load_plan, read_certificate
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
)
from steve.repo import Repo

__all__ = ["TestReport", "certificate_for", "run_tests"]


@dataclass(frozen=True, slots=True)
class TestReport:
    __test__ = False  # not a pytest class

    run: Run
    plan: ObjectId
    certificate: ObjectId
    verdict: str
    tests: list[NodeOutcome]
    builds: list[NodeOutcome]
    failures: list[Failure]
    junit: dict[str, JUnitReport] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    stale: list[StaleEntry] = field(default_factory=list)
    reused: bool = False  # the run's certificate already said exactly this: none frozen

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"


def run_tests(
    repo: Repo,
    runner: Runner,
    *,
    run: str | None = None,
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
) -> TestReport:
    """Test the run's built plan and freeze a certificate (see the module docstring)."""
    target = find_run(repo, run)
    plan_id = plan_of(repo, target)
    plan = load_plan(repo, plan_id)
    build_ids, test_ids = split_nodes(plan)
    if not test_ids:
        raise NoTestNodes(plan_id.hex)
    if target.stage is not Stage.TEST:
        check_transition(target.id, target.stage, Stage.TEST)
    executor = Executor(
        repo,
        runner,
        target.id,
        plan_id,
        plan,
        jobs=jobs,
        no_cache=no_cache,
        tz=tz,
        on_progress=on_progress,
        on_log=on_log,
        events=events,
        gate=gate,
        prompt=prompt,
        actor=actor,
    )
    executor.check_policies(test_ids)
    built: dict[str, NodeOutcome] = {}
    for nid in build_ids:  # the build must be complete, from the cache
        hit = executor.cached(executor.nodes[nid], built)
        if hit is None:
            raise PlanNotBuilt(target.id, nid)
        built[nid] = hit
    executor.preflight(test_ids, target.stage.value, built)  # refused before anything moves
    transitions: list[Transition] = []
    change = enter_stage(repo, target, Stage.TEST, trigger="steve test", now=clock(), actor=actor)
    if change is not None:
        transitions.append(change)
    executor.emit("test.started", {"plan": plan_id.hex, "nodes": len(test_ids)})
    outcomes = executor.execute(test_ids, built, why="test")
    body, junit = certificate_for(list(built.values()), outcomes)
    verdict = body.verdict
    latest = run_manifests(repo, target.id)
    previous = latest.get(ObjectType.TEST_CERTIFICATE)
    # parents: the run's previous certificate and the receipts of the tests (which lead
    # to the build receipts and the plan); the last build receipt if no test ran
    tested = [o.receipt for o in outcomes if o.receipt is not None]
    if not tested:
        tested = [o.receipt for o in built.values() if o.receipt is not None][-1:]
    parents = [p for p in (previous, *tested) if p is not None]
    now = clock()
    manifest = envelope(repo, body, parents=parents, now=now, tz=tz)
    ref = run_ref(target.id, ObjectType.TEST_CERTIFICATE)
    back = None
    reused = previous is not None and same_verdict(read_certificate(repo, previous), body)
    with repo.transaction() as tx:
        if reused:
            assert previous is not None
            cert = previous  # the same verdict on the same receipts: name it again
        else:
            cert = store_manifest(
                repo,
                manifest,
                ref=ref,
                ref_old=previous,
                message=f"steve test: {verdict} (run {target.id})",
                tx=tx,
            )
        if verdict == "fail":
            back = transition_in(
                repo, tx, target.id, Stage.BUILD, "steve test: failed", now, actor, Stage.TEST
            )
        if not reused:
            tx.emit("manifest.frozen", frozen_payload(manifest, cert, ref), target.id)
        if back is not None:
            tx.emit("run.transition", transition_payload(back), run_id=target.id)
    if back is not None:
        transitions.append(back)
    executor.emit(
        "test.finished",
        {"certificate": cert.hex, "verdict": verdict, "failures": len(body.failures)},
        "info" if verdict == "pass" else "error",
    )
    return TestReport(
        find_run(repo, target.id),
        plan_id,
        cert,
        verdict,
        outcomes,
        list(built.values()),
        list(body.failures),
        junit,
        transitions,
        executor.stale,
        reused,
    )


def same_verdict(old: TestCertificate, new: TestCertificate) -> bool:
    """Whether two certificates say the same thing: equal, except whether each result
    came from the cache the time it was made."""

    def said(c: TestCertificate) -> TestCertificate:
        results = [r.model_copy(update={"cached": False}) for r in c.results]
        return c.model_copy(update={"results": results})

    return said(old) == said(new)


def certificate_for(
    builds: Sequence[NodeOutcome], tests: Sequence[NodeOutcome]
) -> tuple[TestCertificate, dict[str, JUnitReport]]:
    """The certificate for these outcomes and the JUnit reports it counted (by node)."""
    failures: list[Failure] = []
    results: list[TestResult] = []
    evidence: list[str] = []
    junit: dict[str, JUnitReport] = {}
    for o in tests:
        evidence.extend(ref.blob for ref in o.logs)
        summary: JUnitSummary | None = None
        for e in o.junit:
            evidence.append(e.report.hex)
            if e.parsed is not None:
                junit[o.node] = e.parsed
                summary = JUnitSummary(
                    report=e.report.hex,
                    tests=e.parsed.tests,
                    failures=e.parsed.failures,
                    errors=e.parsed.errors,
                    skipped=e.parsed.skipped,
                    failed_cases=list(e.parsed.failed_cases[:100]),
                )
        if not o.ok:
            skipped = o.status is NodeStatus.SKIPPED
            failure = FailureClass.UPSTREAM_FAILED if skipped else o.failure
            stderr = o.log("stderr")
            failures.append(
                Failure(
                    classification=(failure or FailureClass.INTERNAL).value,
                    message=(f"not run: {o.detail}" if skipped else o.detail) or f"{o.node} failed",
                    node=o.node,
                    evidence=None if stderr is None else stderr.hex,
                )
            )
        if o.receipt is not None:
            results.append(
                TestResult(
                    node=o.node,
                    receipt=o.receipt.hex,
                    status="pass" if o.ok else "fail",
                    cached=o.status is NodeStatus.CACHED,
                    junit=summary,
                )
            )
    steps = [o for o in [*builds, *tests] if o.receipt is not None]
    violations = [
        f"{o.node}: {o.failure}: {o.detail}"
        for o in steps
        if o.policy_denied or o.failure is FailureClass.NETWORK_DENIED
    ]
    body = TestCertificate(
        verdict="fail" if failures else "pass",
        builds=list(dict.fromkeys(o.receipt.hex for o in steps if o.receipt is not None)),
        evidence=list(dict.fromkeys(evidence)),
        failures=failures,
        policy=PolicyVerdict(
            checked=len(steps),
            passed=sum(1 for o in steps if not o.policy_denied),
            violations=violations,
        ),
        results=results,
    )
    return body, junit
