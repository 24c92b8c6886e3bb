"""What may be deployed and the gate's review of containers, with the in-process runner
(tests/stages/fakes.py: a user never meets it; the Docker tests are in test_deploy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steve.errors import (
    ApprovalRequired,
    CertificateFailed,
    CertificateStale,
    DeployTargetExists,
    GateDenied,
    KillSwitchEngaged,
    NoCertificate,
    PlanNotBuilt,
    StageNotAvailable,
)
from steve.objects import cbor
from steve.objects.oid import ObjectId
from steve.porcelain import approvals, runs
from steve.porcelain.build import build
from steve.porcelain.deploy import deploy, plan_deploy
from steve.porcelain.gate import Rule, Verdict, effective_rules
from steve.porcelain.hostaction import (
    Answer,
    GateSettings,
    KillSwitch,
    gate_settings,
    set_kill_switch,
)
from steve.porcelain.runs import Stage
from steve.porcelain.testing import run_tests
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import T0, chain_plan, node, pinned, plan_draft, run_with_plan

NOW = 1_800_000_000


def clock() -> int:
    return NOW


def gate(repo: Repo) -> GateSettings:
    return gate_settings(repo, clock=clock)


def certify(repo: Repo, tmp_path: Path, check: str = "ok") -> str:
    src = repo.write_tree(_src(tmp_path))
    run_id, _ = run_with_plan(repo, chain_plan(src, check=check))
    assert build(repo, FakeRunner()).ok
    run_tests(repo, FakeRunner(fail=set() if check == "ok" else {"check"}))
    return run_id


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "words.txt").write_text("hello\n")
    return src


def test_no_certificate_and_an_unbuilt_plan_are_refused(repo: Repo, tmp_path: Path) -> None:
    src = repo.write_tree(_src(tmp_path))
    run_with_plan(repo, chain_plan(src))
    with pytest.raises(PlanNotBuilt):
        plan_deploy(repo, tmp_path / "site")
    assert build(repo, FakeRunner()).ok
    with pytest.raises(NoCertificate):
        plan_deploy(repo, tmp_path / "site")
    plan = plan_deploy(repo, tmp_path / "site", override=True, override_reason="smoke test")
    assert plan.certificate is None and plan.unverified and "STEVE-DEPLOY-001" in plan.unverified


def test_a_failing_certificate_is_refused(repo: Repo, tmp_path: Path) -> None:
    certify(repo, tmp_path, check="exit 1")
    with pytest.raises(CertificateFailed):
        plan_deploy(repo, tmp_path / "site")


def test_a_certificate_of_another_build_is_refused(repo: Repo, tmp_path: Path) -> None:
    run_id = certify(repo, tmp_path)
    assert plan_deploy(repo, tmp_path / "site").certificate is not None
    # build again with other outputs: the certificate covers the old receipts
    report = build(repo, FakeRunner(salt=b"other"), no_cache=True)
    assert report.ok and runs.find_run(repo, run_id).stage is Stage.BUILD
    with pytest.raises(CertificateStale) as info:
        plan_deploy(repo, tmp_path / "site")
    assert "current build receipts" in info.value.detail
    # testing the new build makes it deployable again
    run_tests(repo, FakeRunner(salt=b"other"))
    assert plan_deploy(repo, tmp_path / "site").certificate is not None


def test_deploy_by_hand_is_still_refused_and_deploy_enters_deploy(
    repo: Repo, tmp_path: Path
) -> None:
    run_id = certify(repo, tmp_path)
    with pytest.raises(StageNotAvailable):
        runs.goto(repo, run_id, Stage.DEPLOY, now=T0, actor="t")
    yes = lambda a, p: (Answer.YES, "ok")  # noqa: E731
    report = deploy(repo, tmp_path / "site", gate=gate(repo), prompt=yes, clock=clock)
    assert report.transition is not None and report.transition.to_stage is Stage.DEPLOY
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["bin", "out"]
    # a second deploy from DEPLOY (same certificate) is allowed and moves nothing
    again = deploy(repo, tmp_path / "site2", gate=gate(repo), prompt=yes, clock=clock)
    assert again.transition is None and (tmp_path / "site2" / "bin").is_file()


def test_a_config_deny_rule_refuses_the_deploy(repo: Repo, tmp_path: Path) -> None:
    certify(repo, tmp_path)
    rules = effective_rules((Rule("no-deploys", "deploy", Verdict.DENY),))
    strict = GateSettings(rules, 60, KillSwitch(False, False), clock)
    yes = lambda a, p: (Answer.YES, None)  # noqa: E731
    with pytest.raises(GateDenied):
        deploy(repo, tmp_path / "site", gate=strict, prompt=yes, clock=clock)
    assert not (tmp_path / "site").exists()


# --- the gate's review of containers ------------------------------------------------------


def mount_plan(src: ObjectId, source: Path) -> dict[str, object]:
    return plan_draft(
        [
            node(
                "gen",
                inputs=[pinned("src", src)],
                outputs=["out"],
                requests={"host_mounts": [{"source": str(source), "target": "/data"}]},
            )
        ],
        grants=[{"node": "gen", "capability": "host_mount", "reason": "read the fixtures"}],
    )


def test_a_host_reaching_grant_needs_an_approval_before_any_container(
    repo: Repo, tmp_path: Path
) -> None:
    src = repo.write_tree(_src(tmp_path))
    run_id, _ = run_with_plan(repo, mount_plan(src, tmp_path))
    runner = FakeRunner()
    with pytest.raises(ApprovalRequired):
        build(repo, runner, gate=gate(repo))
    assert runner.calls == [] and runs.find_run(repo, run_id).stage is Stage.PLAN
    (pending,) = approvals.list_approvals(repo, now=NOW)
    assert pending.request.subject == "host_mount"
    approvals.answer(repo, pending.id.hex, approve=True, now=NOW, actor="ana", reason="fine")
    assert build(repo, runner, gate=gate(repo)).ok and len(runner.calls) == 1
    decisions = [
        cbor.decode(e.payload) for e in repo.pending_events() if e.type == "gate.decision"
    ]
    assert [(d["subject"], d["decision"], d["via"]) for d in decisions] == [  # type: ignore[index]
        ("host_mount", "denied", "rule"),
        ("host_mount", "approved", "approval"),
    ]
    # cached: nothing runs, so nothing needs an approval
    assert build(repo, runner, gate=gate(repo)).ok and len(runner.calls) == 1


def test_a_terminal_yes_approves_a_host_reaching_grant(repo: Repo, tmp_path: Path) -> None:
    src = repo.write_tree(_src(tmp_path))
    run_with_plan(repo, mount_plan(src, tmp_path))
    asked: list[str] = []

    def ask(action: object, preview: object) -> tuple[Answer, str | None]:
        asked.append(getattr(action, "summary", ""))
        return Answer.YES, None

    assert build(repo, FakeRunner(), gate=gate(repo), prompt=ask).ok
    assert len(asked) == 1 and "host_mount" in asked[0]


def test_the_kill_switch_denies_containers(repo: Repo, tmp_path: Path) -> None:
    src = repo.write_tree(_src(tmp_path))
    run_id, _ = run_with_plan(repo, chain_plan(src))
    runner = FakeRunner()
    set_kill_switch(repo, True, actor="ana", reason="incident")
    with pytest.raises(KillSwitchEngaged):
        build(repo, runner)  # the repository's gate by default
    assert runner.calls == [] and runs.find_run(repo, run_id).stage is Stage.PLAN
    set_kill_switch(repo, False, actor="ana")
    with pytest.raises(KillSwitchEngaged):
        build(repo, runner, gate=gate_settings(repo, kill_env=True))
    assert build(repo, runner).ok


def test_an_approved_deploy_that_cannot_be_written_is_recorded_and_leaves_nothing(
    repo: Repo, tmp_path: Path
) -> None:
    certify(repo, tmp_path)
    target = tmp_path / "site"

    def racing_yes(action: object, preview: object) -> tuple[Answer, str | None]:
        target.mkdir()  # someone else fills the folder between the preview and the write
        (target / "theirs").write_text("x")
        return Answer.YES, None

    with pytest.raises(DeployTargetExists):
        deploy(repo, target, gate=gate(repo), prompt=racing_yes, clock=clock)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "site", "src"]  # no temp
    assert [p.name for p in target.iterdir()] == ["theirs"]
    kinds = [e.type for e in repo.pending_events() if e.type.startswith("deploy.")]
    assert kinds == ["deploy.failed"]
    run = runs.current_run(repo)
    assert run is not None and run.stage is Stage.TEST
