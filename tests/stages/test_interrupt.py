"""Limits in time and interruptions (issue 12 item 15, issue 11 item 3), on the real engine.

Every step runs under a time limit (the plan's ``time_ms`` policy, else the
default) recorded in its receipt; SIGINT and SIGTERM sent to a real ``steve build``
subprocess stop the running step, record it as interrupted and leave no
container or volume carrying the run's label, even when a second signal arrives
during the cleanup.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from steve.errors import EXIT_INTERRUPTED
from steve.exec import DockerRunner, Engine, ImageRecord
from steve.objects.model import Manifest
from steve.objects.oid import ObjectId
from steve.objects.schemas.plan import DEFAULT_TIME_MS
from steve.objects.schemas.receipts import BuildReceipt
from steve.porcelain.build import build
from steve.porcelain.steps import receipt_ref
from steve.repo import Repo
from tests.conftest import PASSPHRASE
from tests.docker_fixtures import labelled
from tests.stages.helpers import node, pinned, plan_draft, run_with_plan

pytestmark = pytest.mark.slow


def receipt(repo: Repo, oid: ObjectId) -> BuildReceipt:
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    return BuildReceipt.model_validate(obj.body)


def test_every_step_has_a_time_limit_recorded_in_its_receipt(
    repo: Repo, engine: Engine, busybox_image: ImageRecord
) -> None:
    draft = plan_draft(
        [
            node("quick", image=busybox_image.id, command=["true"]),
            node("own", image=busybox_image.id, command=["true"], budgets={"time_ms": 5000}),
        ]
    )
    run_id, _ = run_with_plan(repo, draft)
    report = build(repo, DockerRunner(engine))
    assert report.ok, [(o.node, o.detail) for o in report.outcomes]
    quick, own = (o.receipt for o in report.outcomes)
    assert quick is not None and own is not None
    assert receipt(repo, quick).timeout_ms == DEFAULT_TIME_MS
    assert receipt(repo, own).timeout_ms == 5000
    assert labelled(engine, f"steve.run={run_id}") == ([], [])


def test_a_sleeping_step_is_stopped_by_the_plans_time_limit(
    repo: Repo, engine: Engine, busybox_image: ImageRecord
) -> None:
    draft = plan_draft(
        [node("sleepy", image=busybox_image.id, command=["sleep", "300"])],
        policies=[{"name": "time_ms", "value": 1500}],
    )
    run_id, _ = run_with_plan(repo, draft)
    t0 = time.monotonic()
    report = build(repo, DockerRunner(engine))
    assert time.monotonic() - t0 < 60
    (o,) = report.outcomes
    assert o.status.value == "failed" and o.receipt is not None
    r = receipt(repo, o.receipt)
    assert r.timeout_ms == 1500
    assert r.failure == "StepError.Timeout" and "timeout of 1.5 s" in (r.failure_detail or "")
    assert labelled(engine, f"steve.run={run_id}") == ([], [])


def test_a_limit_policy_must_be_a_positive_integer(repo: Repo, busybox_image: ImageRecord) -> None:
    from steve.errors import ManifestInvalid

    draft = plan_draft(
        [node("n", image=busybox_image.id)], policies=[{"name": "time_ms", "value": "1h"}]
    )
    with pytest.raises(ManifestInvalid, match="time_ms is a limit"):
        run_with_plan(repo, draft)


def _start_build(env: dict[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("steve")
    assert exe is not None
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [exe, "build"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _wait_running(engine: Engine, run_id: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        flt = {"label": f"steve.run={run_id}"}
        if any(c["State"] == "running" for c in engine.api.containers(filters=flt)):
            return
        assert proc.poll() is None, "steve build ended before its step ran"
        time.sleep(0.1)
    pytest.fail("the step's container never started")


def _wait_for(path: Path, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace")
        if text in content:
            return content
        time.sleep(0.05)
    pytest.fail(f"{text!r} never appeared on stderr: {path.read_text(errors='replace')!r}")


def _sleepy_run(repo: Repo, image: ImageRecord) -> str:
    src = repo.write_blob(b"x")
    draft = plan_draft(
        [
            node("slow", image=image.id, command=["sleep", "300"], inputs=[pinned("s", src)]),
            node("later", image=image.id, command=["true"]),
        ]
    )
    run_id, _ = run_with_plan(repo, draft)
    return run_id


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_step_records_it_and_leaves_nothing(
    repo: Repo,
    repo_path: Path,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    run_id = _sleepy_run(repo, busybox_image)
    err = tmp_path / "stderr"
    proc = _start_build(steve_env, err)
    try:
        _wait_running(engine, run_id, proc)
        os.kill(proc.pid, sig)
        said = _wait_for(err, "stopping 1 running step(s)")
        assert f"steve: {sig.name}:" in said
        proc.wait(timeout=60)  # sleep ignores SIGTERM as pid 1: SIGKILL after the grace
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = err.read_text()
    assert proc.returncode == EXIT_INTERRUPTED, said
    assert "[STEVE-CONT-007]" in said and "interrupted: slow" in said
    assert labelled(engine, f"steve.run={run_id}") == ([], [])
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        r = receipt(again, again.rev_parse(receipt_ref(run_id, "slow")))
        assert r.failure == "StepError.Interrupted"
        assert f"interrupted by {sig.name}" in (r.failure_detail or "")
        # no new step started after the signal
        assert again.refs.resolve(receipt_ref(run_id, "later")) is None
        assert again.fsck().ok


def test_a_second_signal_during_the_cleanup_still_leaves_nothing(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    run_id = _sleepy_run(repo, busybox_image)
    err = tmp_path / "stderr"
    proc = _start_build(steve_env, err)
    try:
        _wait_running(engine, run_id, proc)
        os.kill(proc.pid, signal.SIGINT)
        _wait_for(err, "stopping 1 running step(s)")
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)  # inside the 10 s grace period
        _wait_for(err, "killing the running step(s) now")
        proc.wait(timeout=60)
        assert time.monotonic() - t0 < 8  # killed at once, not after the grace period
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err.read_text()
    assert labelled(engine, f"steve.run={run_id}") == ([], [])


def test_verbose_shows_a_running_steps_output_as_it_arrives(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    script = "echo first; echo oops >&2; sleep 4; printf 'second\\nno newline'"
    draft = plan_draft([node("talk", image=busybox_image.id, command=["sh", "-c", script])])
    run_id, _ = run_with_plan(repo, draft)
    err = tmp_path / "stderr"
    exe = shutil.which("steve")
    assert exe is not None
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [exe, "build", "-v"], env=steve_env, stdout=subprocess.PIPE, stderr=fh
        )
    try:
        _wait_for(err, "talk| first")  # while the step still sleeps ...
        said = _wait_for(err, "talk! oops")
        assert "second" not in said
        assert proc.poll() is None  # ... and steve build is still running
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.read_text()
    lines = err.read_text().splitlines()
    assert "talk| second" in lines and "talk| no newline" in lines
    assert b"built" in out
    assert labelled(engine, f"steve.run={run_id}") == ([], [])


def test_live_output_is_line_buffered_and_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    from steve.cli.build import LINE_MAX, _LiveLog

    live = _LiveLog()
    live("n", "stdout", b"par")
    assert capsys.readouterr().err == ""  # a partial line waits for its end
    live("n", "stdout", b"tial\nnext\x1b[31m\n" + b"y" * (LINE_MAX + 10))
    live("n", "stderr", b"err")
    live.flush()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "n| partial",
        "n| next\ufffd[31m",
        "n| " + "y" * LINE_MAX,
        "n| yyyyyyyyyy",
        "n! err",
    ]
