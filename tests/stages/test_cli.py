"""`steve build`, `steve test`, `steve replay` on the real engine: exit codes and output,
results checked through the library; a killed `steve build` and `steve janitor`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.errors import EXIT_FAILED
from steve.events import EventLog
from steve.exec import Engine, ImageRecord
from steve.objects.oid import ObjectId
from steve.porcelain import runs
from steve.porcelain.runs import Stage
from steve.repo import Repo
from tests.conftest import PASSPHRASE
from tests.docker_fixtures import labelled
from tests.stages.helpers import node, pinned, plan_draft, run_with_plan
from tests.stages.project import project_plan, source_tree


def steve(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def statuses(output: str) -> list[tuple[str, str]]:
    """(status, node) of the per-node lines."""
    out = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("built", "cached", "failed", "skipped"):
            out.append((parts[0], parts[2]))
    return out


def test_cli_build_test_replay(
    repo: Repo,
    repo_path: Path,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    src = source_tree(repo, tmp_path)
    run_id, plan_id = run_with_plan(repo, project_plan(busybox_image.id, src, want="nope"))
    fixed_draft = tmp_path / "fixed.json"
    fixed_draft.write_text(json.dumps(project_plan(busybox_image.id, src)))
    env = {**steve_env, "SOURCE_DATE_EPOCH": "1700000500"}

    res = steve(env, "build", "-j", "2")
    assert res.exit_code == 0, res.output
    assert statuses(res.output) == [("built", "gen"), ("built", "asm")]
    res = steve(env, "build")
    assert res.exit_code == 0, res.output
    assert statuses(res.output) == [("cached", "gen"), ("cached", "asm")]

    res = steve(env, "test")  # the check exits 1: tests fail, the run goes back to BUILD
    assert res.exit_code == EXIT_FAILED, res.output
    assert "[STEVE-BUILD-005]" in res.output
    assert statuses(res.output) == [("failed", "check")]
    assert runs.find_run(repo, run_id).stage is Stage.BUILD
    # each failing JUnit case with its message, and where the step's output is
    lines = [x.strip() for x in res.output.splitlines()]
    assert "FAIL tool.prints_words: mismatch" in lines
    check_receipt = repo.rev_parse(f"refs/receipts/{run_id}/check")
    assert f"output: steve logs {check_receipt.short()}" in lines
    res = steve(env, "logs", check_receipt.short(), "--node", "check")
    assert res.exit_code == 0, res.output
    header = f"==> check stdout (receipt {check_receipt.short()}) (empty) <=="
    assert res.output.splitlines()[0] == header  # the check writes only junit.xml

    res = steve(env, "freeze", "plan", str(fixed_draft), "--amends", plan_id.hex)
    assert res.exit_code == 0, res.output
    fixed = res.output.strip()
    res = steve(env, "build", "--plan", fixed)
    assert res.exit_code == 0, res.output
    assert statuses(res.output) == [("cached", "gen"), ("cached", "asm")]
    res = steve(env, "test")
    assert res.exit_code == 0, res.output
    cert_line = next(x for x in res.output.splitlines() if x.startswith("certificate "))
    cert = ObjectId.from_hex(cert_line.split()[1])
    assert repo.rev_parse(f"refs/runs/{run_id}/test_certificate") == cert
    assert "verdict pass" in res.output and "junit: 1 tests, 0 failures" in res.output
    assert runs.find_run(repo, run_id).stage is Stage.TEST

    res = steve(env, "replay", "--all", run_id)
    assert res.exit_code == 0, res.output
    verdicts = sorted((x.split()[0], x.split()[2]) for x in res.output.splitlines())
    assert verdicts == [("match", "asm"), ("match", "check"), ("match", "gen")]

    # the steps' state changes and logs are in the event log
    log = EventLog.for_repo(repo)
    try:
        types = [e.event_type for e in log.events(run_id=run_id)]
    finally:
        log.close()
    assert "step.built" in types and "step.cached" in types and "log.chunk" in types
    assert labelled(engine, f"steve.run={run_id}") == ([], [])


def test_cli_usage_errors(steve_env: dict[str, str]) -> None:
    res = steve(steve_env, "replay")
    assert res.exit_code == 2 and "give RECEIPT or --all RUN" in res.output


@pytest.mark.xdist_group("janitor")  # see tests/exec/test_janitor.py
def test_a_killed_build_leaves_nothing_after_janitor(
    repo: Repo,
    repo_path: Path,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
) -> None:
    src = repo.write_blob(b"x")
    draft = plan_draft(
        [node("slow", image=busybox_image.id, command=["sleep", "120"], inputs=[pinned("s", src)])]
    )
    run_id, _ = run_with_plan(repo, draft)
    exe = shutil.which("steve")
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "build"],
        env=steve_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        running: list[str] = []
        while time.monotonic() < deadline and not running:
            running = [
                c["Id"]
                for c in engine.api.containers(filters={"label": f"steve.run={run_id}"})
                if c["State"] == "running"
            ]
            time.sleep(0.2)
        assert running, "the step's container never started"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    containers, volumes = labelled(engine, f"steve.run={run_id}")
    assert containers and volumes  # the orphans are there ...
    res = subprocess.run(
        [exe, "janitor"], env=steve_env, capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert labelled(engine, f"steve.run={run_id}") == ([], [])  # ... and gone
    # the repository is sound and the run is in BUILD with no receipt for the node
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        assert again.fsck().ok
        assert runs.find_run(again, run_id).stage is Stage.BUILD
        assert [r.name for r in again.list_refs(f"refs/receipts/{run_id}/")] == []


@pytest.mark.parametrize("command", ["build", "test"])
def test_without_a_plan_the_commands_say_so(
    repo: Repo, steve_env: dict[str, str], engine: Engine, command: str
) -> None:
    runs.new_run(repo, name="bare", now=1, actor="t")
    res = steve(steve_env, command)
    assert res.exit_code == 5 and "[STEVE-BUILD-001]" in res.output


def test_a_failing_test_without_a_junit_report_says_how_to_get_one(
    repo: Repo, steve_env: dict[str, str], engine: Engine, busybox_image: ImageRecord
) -> None:
    # a new user's test writes its report into a directory output: steve test has no
    # case to show, and says where a JUnit report must be for its cases to be shown
    check = "mkdir -p report && echo '<testsuite/>' > report/junit.xml && exit 1"
    draft = plan_draft(
        [node("t", kind="test", image=busybox_image.id, command=["sh", "-c", check],
              outputs=["report"])]
    )  # fmt: skip
    run_id, _ = run_with_plan(repo, draft)
    runs.goto(repo, run_id, Stage.BUILD, now=1_700_000_001, actor="t")
    res = steve(steve_env, "test")
    assert res.exit_code == EXIT_FAILED, res.output
    lines = [x.strip() for x in res.output.splitlines()]
    assert "junit: none (declare the report file as an output ending in .xml)" in lines
    assert not any("failing cases above" in x for x in lines)


BUILD_KEYS = {"run", "plan", "stage", "ok", "counts", "nodes", "stale"}
NODE_KEYS = {
    "node",
    "kind",
    "status",
    "receipt",
    "action_key",
    "failure",
    "detail",
    "duration_ms",
    "outputs",
    "logs",
}
TEST_KEYS = {"run", "plan", "stage", "certificate", "reused", "verdict", "ok", "tests"}
TEST_KEYS |= {"failures", "stale"}


def test_build_and_test_json_and_quiet(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    src = source_tree(repo, tmp_path)
    run_id, plan_id = run_with_plan(repo, project_plan(busybox_image.id, src, want="nope"))

    res = CliRunner().invoke(cli, ["build", "--json"], env=steve_env, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # one JSON object, nothing else on stdout
    assert set(doc) == BUILD_KEYS
    assert (doc["run"], doc["plan"], doc["stage"], doc["ok"]) == (
        run_id,
        plan_id.hex,
        "BUILD",
        True,
    )
    assert doc["counts"] == {"built": 2, "cached": 0, "failed": 0, "skipped": 0}
    assert [n["node"] for n in doc["nodes"]] == ["gen", "asm"]
    gen = doc["nodes"][0]
    assert set(gen) == NODE_KEYS and gen["status"] == "built" and gen["failure"] is None
    assert repo.rev_parse(f"refs/receipts/{run_id}/gen").hex == gen["receipt"]
    assert set(gen["logs"]) == {"stdout", "stderr"}
    assert repo.read_blob(ObjectId.from_hex(gen["logs"]["stdout"])) == b"generated\n"
    assert set(gen["outputs"]) == {"out"}

    res = CliRunner().invoke(cli, ["build", "-q"], env=steve_env, catch_exceptions=False)
    assert res.exit_code == 0 and res.output == ""  # quiet: nothing on success

    res = CliRunner().invoke(cli, ["test", "--json"], env=steve_env, catch_exceptions=False)
    assert res.exit_code == EXIT_FAILED, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == TEST_KEYS
    assert doc["verdict"] == "fail" and doc["ok"] is False and doc["stage"] == "BUILD"
    assert repo.rev_parse(f"refs/runs/{run_id}/test_certificate").hex == doc["certificate"]
    (check,) = doc["tests"]
    assert set(check) == NODE_KEYS | {"junit"}
    assert check["failure"] == "TestError.AssertionFailed"
    assert check["junit"]["failed"] == [
        {"name": "tool.prints_words", "outcome": "failure", "message": "mismatch"}
    ]
    assert doc["failures"][0]["classification"] == "TestError.AssertionFailed"
    assert doc["failures"][0]["node"] == "check"
    assert "[STEVE-BUILD-005]" in res.stderr  # the error still goes to stderr

    res = CliRunner().invoke(cli, ["test", "-q"], env=steve_env, catch_exceptions=False)
    assert res.exit_code == EXIT_FAILED
    cert = res.stdout.strip()
    assert repo.rev_parse(f"refs/runs/{run_id}/test_certificate").hex == cert
    assert "started" not in res.stderr and "check" not in res.stdout
