"""DEPLOY (M10) end to end on certificates from real builds in the Docker Engine: denied
without a terminal and without an approval, the approved path writes exactly the
certified files and records the decision, a tampered artifact is refused, the override
is recorded; plus the terminal prompt through a real pty (pexpect)."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.errors import ArtifactTampered, DeployTargetExists
from steve.exec import DockerRunner, Engine, ImageRecord
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import read_body
from steve.objects.schemas.receipts import DeployReceipt
from steve.porcelain import approvals, runs
from steve.porcelain.build import build
from steve.porcelain.deploy import plan_deploy
from steve.porcelain.records import read_certificate, read_receipt
from steve.porcelain.runs import Stage
from steve.porcelain.testing import run_tests
from steve.repo import Repo
from tests.conftest import PASSPHRASE, make_fast_kdf
from tests.events.conftest import raw_connect
from tests.stages.helpers import run_with_plan
from tests.stages.project import project_plan, source_tree

ROOT = Path(__file__).resolve().parents[2]


def _certified(
    engine: Engine, image: ImageRecord, where: Path, *, want: str | None = None
) -> Path:
    """A repository whose current run built the example project and tested it (passing,
    or failing with ``want``) in real containers; closed, to be copied per test."""
    repo = Repo.init(where, passphrase=PASSPHRASE, kdf=make_fast_kdf())
    try:
        src = source_tree(repo, where.parent)
        draft = project_plan(image.id, src, **({} if want is None else {"want": want}))
        run_with_plan(repo, draft)
        assert build(repo, DockerRunner(engine)).ok
        report = run_tests(repo, DockerRunner(engine))
        assert report.verdict == ("pass" if want is None else "fail")
    finally:
        repo.close()
    return where


@pytest.fixture(scope="module")
def passing(
    engine: Engine, busybox_image: ImageRecord, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return _certified(engine, busybox_image, tmp_path_factory.mktemp("passing") / "repo")


@pytest.fixture(scope="module")
def failing(
    engine: Engine, busybox_image: ImageRecord, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    where = tmp_path_factory.mktemp("failing") / "repo"
    return _certified(engine, busybox_image, where, want="not what the tool prints")


def _copy(source: Path, tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    dest = tmp_path / "repo"
    shutil.copytree(source, dest)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env |= {"STEVE_DIR": str(dest), "STEVE_PASSPHRASE": PASSPHRASE}
    return Repo.open(dest, passphrase=PASSPHRASE), env


@pytest.fixture
def certified(passing: Path, tmp_path: Path) -> Iterator[tuple[Repo, dict[str, str]]]:
    repo, env = _copy(passing, tmp_path)
    try:
        yield repo, env
    finally:
        repo.close()


def steve(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def deploy_receipt(repo: Repo) -> tuple[ObjectId, DeployReceipt]:
    run = runs.current_run(repo)
    assert run is not None
    oid = runs.run_manifests(repo, run.id)[ObjectType.DEPLOY_RECEIPT]
    manifest = repo.read_object(oid)
    assert isinstance(manifest, Manifest)
    body = read_body(ObjectType.DEPLOY_RECEIPT, manifest.version, manifest.body)
    assert isinstance(body, DeployReceipt)
    return oid, body


def certified_files(repo: Repo) -> dict[str, bytes]:
    """path -> bytes of every output of the build nodes the run's certificate covers."""
    run = runs.current_run(repo)
    assert run is not None
    cert = read_certificate(repo, runs.run_manifests(repo, run.id)[ObjectType.TEST_CERTIFICATE])
    out: dict[str, bytes] = {}
    for rid in cert.builds:
        receipt = read_receipt(repo, ObjectId.from_hex(rid))
        if receipt.node == "check":  # the test node: its report is evidence, not an artifact
            continue
        for name, oid in receipt.outputs.items():
            for e in repo.ls_tree(ObjectId.from_hex(oid), recursive=True, prefix=f"{name}/"):
                out[e.path] = repo.read_blob(e.oid)
    return out


def on_disk(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def no_leftovers(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".steve-deploy-" in p.name]


def test_denied_without_a_terminal_and_without_an_approval(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    target = tmp_path / "site"
    res = steve(env, "deploy", "--to", str(target))
    assert res.exit_code == 12, res.output
    assert "[STEVE-GATE-002]" in res.output
    assert not target.exists() and no_leftovers(tmp_path)
    pending = approvals.list_approvals(repo, now=2**40 - 1)
    assert len(pending) == 1 and pending[0].request.subject == str(target)
    assert pending[0].id.hex in res.output
    _, receipt = deploy_receipt(repo)
    assert receipt.decision.decision == "denied" and receipt.written == []
    assert receipt.decision.approval == pending[0].id.hex
    run = runs.current_run(repo)
    assert run is not None and run.stage is Stage.TEST
    # the same again names the same pending request
    again = steve(env, "deploy", "--to", str(target))
    assert again.exit_code == 12 and "already pending" in again.output
    listed = steve(env, "approvals", "--json")
    assert [json.loads(line)["state"] for line in listed.output.splitlines()] == ["pending"]


def test_the_approved_path_writes_exactly_the_certified_files_and_records_the_decision(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    target = tmp_path / "site"
    assert steve(env, "deploy", "--to", str(target)).exit_code == 12
    (pending,) = [json.loads(x) for x in steve(env, "approvals", "--json").output.splitlines()]
    ok = steve(env, "approve", pending["id"][:10], "--reason", "release 1.0")
    assert ok.exit_code == 0, ok.output
    res = steve(env, "deploy", "--to", str(target), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    expected = certified_files(repo)
    assert expected and on_disk(target) == expected  # exactly the certified files
    assert os.access(target / "bin" / "tool", os.X_OK)
    assert no_leftovers(tmp_path)
    oid, receipt = deploy_receipt(repo)
    assert out["receipt"] == oid.hex and out["stage"] == "DEPLOY"
    d = receipt.decision
    assert (d.decision, d.via, d.reason, d.approval) == (
        "approved",
        "approval",
        "release 1.0",
        pending["id"],
    )
    assert d.action_digest == pending["digest"] == out["action"]
    # the written digests: the bytes read back hash to the artifact ids
    written = {w.path: w.blob for w in receipt.written}
    assert written == {f.path: f.blob for f in receipt.files}
    for path, data in expected.items():
        assert Repo.hash_stream(io.BytesIO(data)).hex == written[path]
    assert receipt.certificate is not None and receipt.override is None
    preview = repo.read_blob(ObjectId.from_hex(receipt.dry_run_preview)).decode()
    assert str(target) in preview and "bin/tool" in preview
    run = runs.current_run(repo)
    assert run is not None and run.stage is Stage.DEPLOY
    assert runs.transitions(repo, run.id)[-1].trigger == "steve deploy"
    assert approvals.find(repo, pending["id"], now=2**40 - 1).state is approvals.State.USED
    assert repo.fsck().ok and steve(env, "verify", oid.hex).exit_code == 0
    # the approval is used up: another deploy (even of the same files) asks again
    again = steve(env, "deploy", "--to", str(tmp_path / "site2"))
    assert again.exit_code == 12 and "[STEVE-GATE-002]" in again.output
    assert not (tmp_path / "site2").exists()


def test_a_tampered_artifact_is_refused(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    plan = plan_deploy(repo, tmp_path / "site")
    victim = next(f for f in plan.files if f.path == "bin/tool")
    assert repo.key is not None and repo.steve_dir is not None
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    forged = bytes.fromhex("a2") + b"\x00" * 3  # any other bytes: they no longer hash to the id
    conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (forged, victim.blob.raw))
    conn.close()
    with pytest.raises(ArtifactTampered) as info:
        plan_deploy(repo, tmp_path / "site")
    assert "bin/tool" in info.value.detail
    # through the CLI, even with a granted approval for the original action
    req, _ = approvals.request(repo, plan.action, now=0, actor="t", ttl=2**40)
    approvals.answer(repo, req.id.hex, approve=True, now=1, actor="t", reason=None)
    res = steve(env, "deploy", "--to", str(tmp_path / "site"))
    assert res.exit_code == 9 and "[STEVE-DEPLOY-004]" in res.output
    assert not (tmp_path / "site").exists() and no_leftovers(tmp_path)
    run = runs.current_run(repo)
    assert run is not None and ObjectType.DEPLOY_RECEIPT not in runs.run_manifests(repo, run.id)


def test_the_override_is_explicit_and_recorded(
    failing: Path, tmp_path: Path
) -> None:
    repo, env = _copy(failing, tmp_path)
    try:
        target = tmp_path / "site"
        run = runs.current_run(repo)
        assert run is not None and run.stage is Stage.BUILD  # the failed test sent it back
        res = steve(env, "deploy", "--to", str(target))
        assert res.exit_code == 12 and "[STEVE-DEPLOY-002]" in res.output
        res = steve(env, "deploy", "--to", str(target), "--override-unverified")
        assert res.exit_code == 6 and "[STEVE-DEPLOY-007]" in res.output
        args = ["deploy", "--to", str(target), "--override-unverified", "--reason", "hotfix"]
        dry = steve(env, *args, "--dry-run")
        assert dry.exit_code == 0 and "OVERRIDE" in dry.output and "hotfix" in dry.output
        assert not target.exists()
        res = steve(env, *args)
        assert res.exit_code == 12 and "WARNING" in res.output  # loud, and still asks
        (pending,) = [json.loads(x) for x in steve(env, "approvals", "--json").output.splitlines()]
        assert steve(env, "approve", pending["id"]).exit_code == 0
        res = steve(env, *args)
        assert res.exit_code == 0, res.output
        assert on_disk(target)["bin/tool"].startswith(b"#!/bin/sh")
        _, receipt = deploy_receipt(repo)
        assert receipt.certificate is None and receipt.override is not None
        assert receipt.override.why == "hotfix"
        assert "STEVE-DEPLOY-002" in receipt.override.unverified
        assert receipt.decision.decision == "approved" and receipt.written
        run = runs.current_run(repo)
        assert run is not None and run.stage is Stage.BUILD  # BUILD -> DEPLOY is not allowed
        # an approval of the verified deploy would not match the override (another digest)
        plain = plan_deploy(repo, tmp_path / "x", override_reason="hotfix", override=True)
        assert plain.action.digest.hex != pending["digest"]
    finally:
        repo.close()


def test_dry_run_and_refusals_write_nothing(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    target = tmp_path / "site"
    res = steve(env, "deploy", "--to", str(target), "--dry-run")
    assert res.exit_code == 0
    assert "bin/tool" in res.output and "out/words.txt" in res.output
    assert not target.exists() and approvals.list_approvals(repo, now=0) == []
    target.mkdir()
    (target / "old").write_text("keep me")
    with pytest.raises(DeployTargetExists):
        plan_deploy(repo, target)
    res = steve(env, "deploy", "--to", str(target))
    assert res.exit_code == 6 and "[STEVE-DEPLOY-005]" in res.output
    assert (target / "old").read_text() == "keep me"


def test_the_kill_switch_denies_an_approved_deploy(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    target = tmp_path / "site"
    steve(env, "deploy", "--to", str(target))
    (pending,) = [json.loads(x) for x in steve(env, "approvals", "--json").output.splitlines()]
    steve(env, "approve", pending["id"])
    res = steve(env | {"STEVE_KILL_SWITCH": "1"}, "deploy", "--to", str(target))
    assert res.exit_code == 12 and "[STEVE-GATE-007]" in res.output
    assert not target.exists()
    _, receipt = deploy_receipt(repo)
    assert (receipt.decision.decision, receipt.decision.via) == ("denied", "kill_switch")
    assert steve(env, "kill-switch", "on", "--reason", "incident").exit_code == 0
    res = steve(env, "deploy", "--to", str(target))
    assert res.exit_code == 12 and "[STEVE-GATE-007]" in res.output
    status = json.loads(steve(env, "kill-switch", "status", "--json").output)
    assert status["on"] and status["repository"] and not status["environment"]
    assert steve(env, "kill-switch", "off").exit_code == 0
    res = steve(env, "deploy", "--to", str(target))  # the approval was never used
    assert res.exit_code == 0, res.output
    assert target.is_dir()


def _spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    env = env | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return pexpect.spawn(
        sys.executable, ["-m", "steve", *args], env=env, encoding="utf-8", timeout=60
    )


@pytest.mark.parametrize("answer", ["y", "n"])
def test_on_a_terminal_the_dry_run_is_shown_and_the_answer_recorded(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path, answer: str
) -> None:
    repo, env = certified
    target = tmp_path / "site"
    child = _spawn(env, "deploy", "--to", str(target), "--reason", "checked by hand")
    child.expect("Go ahead")
    assert "bin/tool" in (child.before or "")  # the preview came first
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    _, receipt = deploy_receipt(repo)
    d = receipt.decision
    assert d.via == "prompt" and d.actor
    if answer == "y":
        assert child.exitstatus == 0
        assert (d.decision, d.reason) == ("approved", "checked by hand")
        assert on_disk(target) == certified_files(repo)
    else:
        assert child.exitstatus == 12
        assert d.decision == "denied" and not target.exists()
    assert approvals.list_approvals(repo, now=0) == []  # a terminal needs no request


def test_no_answer_on_a_terminal_is_recorded_as_timed_out(
    certified: tuple[Repo, dict[str, str]], tmp_path: Path
) -> None:
    repo, env = certified
    child = _spawn(env, "deploy", "--to", str(tmp_path / "site"), "--timeout", "1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 12
    _, receipt = deploy_receipt(repo)
    assert (receipt.decision.decision, receipt.decision.via) == ("timed_out", "prompt")
    assert not (tmp_path / "site").exists()
