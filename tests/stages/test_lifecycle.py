"""A failed build must not strand the run (issue 11 item 1): what a build needs is
checked before the run moves, an environment failure after the start is a receipt,
`steve plan FILE` in BUILD/TEST amends the plan, and refusals name the way out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.errors import BuildNotReady, ContainerFailed
from steve.exec import DockerRunner, Engine, ImageRecord, StepSpec
from steve.exec.runner import LogCallback
from steve.objects.model import Manifest
from steve.objects.oid import ObjectId
from steve.porcelain import runs
from steve.porcelain.build import build
from steve.porcelain.records import read_receipt
from steve.porcelain.runs import Stage
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import chain_plan, node, pinned, plan_draft, run_with_plan
from tests.stages.project import project_plan, source_tree

ABSENT = "sha256:" + "0" * 64  # an image no engine has


def steve(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_a_missing_image_is_refused_before_the_run_moves(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    src = source_tree(repo, tmp_path)
    draft = project_plan(busybox_image.id, src)
    draft["nodes"][1]["image"] = ABSENT  # asm's image is not local
    run_id, plan_id = run_with_plan(repo, draft)
    with pytest.raises(BuildNotReady) as info:
        build(repo, DockerRunner(engine))
    assert ABSENT in info.value.detail and "asm" in info.value.detail
    assert runs.find_run(repo, run_id).stage is Stage.PLAN  # nothing moved
    assert repo.list_refs(f"refs/receipts/{run_id}/") == []

    res = steve(steve_env, "build")
    assert res.exit_code == 5, res.output
    assert "[STEVE-BUILD-007]" in res.output and "steve plan FILE" in res.output
    assert runs.find_run(repo, run_id).stage is Stage.PLAN

    # the way out the hint names: a plan with a local image, in PLAN a plain new plan
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(project_plan(busybox_image.id, src)))
    res = steve(steve_env, "plan", str(fixed))
    assert res.exit_code == 0, res.output
    res = steve(steve_env, "build")
    assert res.exit_code == 0, res.output
    assert runs.find_run(repo, run_id).stage is Stage.BUILD
    del plan_id


def test_plan_in_build_records_an_amendment_and_the_run_stays(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    src = repo.write_blob(b"s")
    run_id, plan_id = run_with_plan(repo, chain_plan(src))
    assert build(repo, FakeRunner()).ok
    assert runs.find_run(repo, run_id).stage is Stage.BUILD
    changed = tmp_path / "plan.json"
    changed.write_text(json.dumps(chain_plan(src, check="exit 0")))
    res = steve(steve_env, "plan", str(changed))
    assert res.exit_code == 0, res.output
    new = ObjectId.from_hex(res.stdout.strip())
    assert f"amended plan {plan_id.short()}" in res.stderr
    assert runs.find_run(repo, run_id).stage is Stage.BUILD  # not a stage change
    assert repo.rev_parse(f"refs/runs/{run_id}/plan") == new
    amended = repo.read_object(new)
    assert isinstance(amended, Manifest)
    assert amended.body["amends"] == plan_id.hex and plan_id in amended.parents
    # the next build builds the amendment, unchanged nodes from the cache
    runner = FakeRunner()
    again = build(repo, runner)
    assert again.plan == new and runner.calls == []


def test_refusals_name_the_way_out(repo: Repo, steve_env: dict[str, str]) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    assert build(repo, FakeRunner()).ok
    res = steve(steve_env, "run", "goto", "plan")
    assert res.exit_code == 6 and "[STEVE-STATE-001]" in res.output
    assert "steve plan FILE" in res.output


class BrokenEngine(FakeRunner):
    """The engine refuses to create the container of one step (a user meets this as
    STEVE-CONT-005 from the real engine)."""

    def run(self, repo: Repo, spec: StepSpec, on_log: LogCallback | None = None):  # type: ignore[no-untyped-def]
        if spec.step_id == "asm":
            raise ContainerFailed("create container", "no space left on device")
        return super().run(repo, spec, on_log)


def test_an_environment_failure_after_the_start_is_a_receipt(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, plan_id = run_with_plan(
        repo,
        plan_draft(
            [
                node("gen", inputs=[pinned("src", src)], outputs=["out"]),
                node("asm", inputs=[pinned("src", src)], outputs=["bin"]),
            ]
        ),
    )
    report = build(repo, BrokenEngine())
    assert not report.ok
    gen, asm = report.outcomes
    assert gen.ok and asm.status.value == "failed"
    assert asm.failure == "ContainerError.EngineFailed"
    assert asm.receipt is not None
    assert repo.rev_parse(f"refs/receipts/{run_id}/asm") == asm.receipt
    body = read_receipt(repo, asm.receipt)
    assert body.failure == "ContainerError.EngineFailed" and body.exit_status == -1
    assert body.failure_detail is not None and "STEVE-CONT-005" in body.failure_detail
    assert body.plan == plan_id.hex
    assert runs.find_run(repo, run_id).stage is Stage.BUILD
    assert repo.fsck().ok


class ImagesOnly(FakeRunner):
    """A runner that knows which images it has (DockerRunner asks the engine)."""

    def __init__(self, missing: str) -> None:
        super().__init__()
        self.missing = missing

    def image_problem(self, image: str) -> str | None:
        return f"image {image}: not found" if image == self.missing else None


def test_test_checks_the_images_of_the_tests_it_must_run_before_moving(repo: Repo) -> None:
    from steve.porcelain.testing import run_tests

    src = repo.write_blob(b"s")
    draft = chain_plan(src)
    draft["nodes"][2]["image"] = ABSENT  # the test node's image
    run_id, _ = run_with_plan(repo, draft)
    assert build(repo, ImagesOnly(ABSENT)).ok  # the build nodes do not need it
    runner = ImagesOnly(ABSENT)
    with pytest.raises(BuildNotReady) as info:
        run_tests(repo, runner)
    assert "needed by check" in info.value.detail and runner.calls == []
    assert runs.find_run(repo, run_id).stage is Stage.BUILD  # nothing moved
    assert repo.list_refs(f"refs/runs/{run_id}/test_certificate") == []
