"""`steve kill-switch on` stops the repository's running containers (real Docker) and
denies every container after it; `status` and `off` through the CLI."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.errors import KillSwitchEngaged
from steve.exec import LABEL_REPO, DockerRunner, Engine, FailureClass, ImageRecord
from steve.porcelain.build import BuildReport, build
from steve.repo import Repo
from tests.stages.helpers import node, plan_draft, run_with_plan


def running(engine: Engine, repo: Repo) -> list[str]:
    flt = {"label": f"{LABEL_REPO}={repo.repository_id}", "status": "running"}
    return [c["Id"] for c in engine.api.containers(filters=flt)]


def test_kill_switch_on_stops_running_containers_and_denies_new_ones(
    repo: Repo,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    sleeper = node(
        "slow",
        image=busybox_image.id,
        command=["/bin/sh", "-c", "sleep 120"],
        outputs=[],
        budgets={"time_ms": 180_000},
    )
    after = node(
        "after",  # independent of slow; with -j 1 it would start once slow ends
        image=busybox_image.id,
        command=["/bin/sh", "-c", "echo should not run"],
        outputs=[],
    )
    run_with_plan(repo, plan_draft([sleeper, after]))
    result: list[BuildReport | BaseException] = []

    def work() -> None:
        try:
            result.append(build(repo.serialized(), DockerRunner(engine)))
        except BaseException as exc:  # handed to the test thread
            result.append(exc)

    worker = threading.Thread(target=work)
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 60
    while not running(engine, repo):
        assert time.monotonic() < deadline, "the step's container never started"
        assert worker.is_alive(), result
        time.sleep(0.2)
    env = {k: v for k, v in steve_env.items() if k != "STEVE_KILL_SWITCH"}
    res = CliRunner().invoke(cli, ["kill-switch", "on", "--json"], env=env)
    assert res.exit_code == 0, res.output
    state = json.loads(res.output)
    assert state["on"] and state["changed"] and len(state["stopped"]) == 1
    worker.join(90)
    assert not worker.is_alive()
    assert time.monotonic() - started < 100  # killed, not slept out
    (report,) = result
    assert isinstance(report, BuildReport) and not report.ok
    outcome = {o.node: o for o in report.outcomes}
    assert outcome["slow"].failure is not None  # killed
    # the next node is refused by the switch turned on while the build ran: no container
    assert outcome["after"].failure is FailureClass.POLICY_DENIED
    assert "STEVE-GATE-007" in outcome["after"].detail
    assert running(engine, repo) == []
    with pytest.raises(KillSwitchEngaged):
        build(repo, DockerRunner(engine))
    res = CliRunner().invoke(cli, ["kill-switch", "off"], env=env)
    assert res.exit_code == 0 and "kill switch off" in res.output
    res = CliRunner().invoke(cli, ["kill-switch"], env=env | {"STEVE_KILL_SWITCH": "1"})
    assert res.output.strip() == "kill switch on (environment)"
    assert os.environ.get("STEVE_KILL_SWITCH") is None  # the test set nothing globally
