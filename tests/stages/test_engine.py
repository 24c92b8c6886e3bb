"""BUILD, TEST and replay on the real Docker Engine (busybox image built offline).

A failing test sends the run back to BUILD; an amended plan fixes it and the
next build comes entirely from the cache; the certificate and the replay
verdict are frozen; outputs are in the store.
"""

from __future__ import annotations

from pathlib import Path

from steve.exec import DockerRunner, Engine, ImageRecord
from steve.objects.model import Manifest, Mode
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import BuildReceipt, TestCertificate
from steve.porcelain import runs
from steve.porcelain.build import build
from steve.porcelain.freeze import freeze
from steve.porcelain.replay import replay
from steve.porcelain.runs import Stage
from steve.porcelain.testing import run_tests
from steve.repo import Repo
from tests.docker_fixtures import labelled
from tests.stages.helpers import run_with_plan
from tests.stages.project import project_plan, source_tree


def manifest(repo: Repo, oid: ObjectId) -> Manifest:
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    return obj


def test_build_test_loop_and_replay_in_containers(
    repo: Repo, engine: Engine, busybox_image: ImageRecord, tmp_path: Path
) -> None:
    runner = DockerRunner(engine)
    src = source_tree(repo, tmp_path)
    run_id, plan_id = run_with_plan(
        repo, project_plan(busybox_image.id, src, want="wrong", report_only=True)
    )

    first = build(repo, runner, jobs=2)
    assert first.ok, [(o.node, o.failure, o.detail) for o in first.outcomes]
    assert [(o.node, o.status.value) for o in first.outcomes] == [
        ("gen", "built"),
        ("asm", "built"),
    ]
    gen, asm = (o.receipt for o in first.outcomes)
    assert gen is not None and asm is not None
    rg = BuildReceipt.model_validate(manifest(repo, gen).body)
    ra = BuildReceipt.model_validate(manifest(repo, asm).body)
    assert rg.image == busybox_image.id and rg.image_diff_ids == list(busybox_image.diff_ids)
    assert rg.policy is not None and rg.policy.network_mode == "none"
    assert rg.policy.read_only_root and rg.policy.user == "65534:65534"
    # outputs are trees in the store: gen's words, asm's executable tool
    words = {e.path: e.oid for e in repo.ls_tree(ObjectId.from_hex(rg.outputs["out"]))}
    assert repo.read_blob(words["words.txt"]) == b"hell0\nw0rld\n"
    stdout = rg.log("stdout")
    assert stdout is not None and repo.read_blob(ObjectId.from_hex(stdout.blob)) == b"generated\n"
    tool = {e.path: e for e in repo.ls_tree(ObjectId.from_hex(ra.outputs["bin"]))}["tool"]
    assert tool.mode is Mode.EXECUTABLE
    assert b"w0rld" in repo.read_blob(tool.oid)

    failing = run_tests(repo, runner)
    assert failing.verdict == "fail"
    cert = TestCertificate.model_validate(manifest(repo, failing.certificate).body)
    assert [f.classification for f in cert.failures] == ["TestError.AssertionFailed"]
    assert cert.results[0].junit is not None
    assert cert.results[0].junit.failed_cases == ["tool.prints_words"]
    assert cert.policy.checked == 3 and cert.policy.violations == []
    assert runs.find_run(repo, run_id).stage is Stage.BUILD  # the BUILD<->TEST loop

    fixed = freeze(repo, "plan", project_plan(busybox_image.id, src), amends=plan_id, now=1, tz=0)
    again = build(repo, runner, plan=fixed)
    assert [(o.status.value, o.receipt) for o in again.outcomes] == [
        ("cached", gen),
        ("cached", asm),
    ]
    passing = run_tests(repo, runner)
    assert passing.verdict == "pass", passing.failures
    good = TestCertificate.model_validate(manifest(repo, passing.certificate).body)
    assert good.results[0].junit is not None and good.results[0].junit.tests == 1
    assert set(good.builds) >= {gen.hex, asm.hex}
    assert manifest(repo, passing.certificate).parents[0] == failing.certificate
    assert runs.find_run(repo, run_id).stage is Stage.TEST

    verdict = replay(repo, runner, asm)
    assert verdict.verdict == "match", verdict.differing
    assert verdict.key_matches
    v = TestCertificate.model_validate(manifest(repo, verdict.verdict_id).body)
    assert v.replay is not None and v.replay.receipt == asm.hex and v.verdict == "pass"
    assert repo.fsck().ok
    assert labelled(engine, f"steve.run={run_id}") == ([], [])  # nothing left behind
