"""The janitor: a killed STEVE process leaves containers; `steve janitor` removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from steve.exec import Engine, ImageRecord
from steve.exec.base import owner_labels
from tests.docker_fixtures import labelled

# `steve janitor` removes every orphan on the engine: these tests leave orphans
# and look for them, so they share one xdist worker (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("janitor")

CHILD = textwrap.dedent(
    """
    import sys
    from steve.exec import ContainerPolicy, DockerRunner, StepSpec, connect
    from steve.repo import Repo

    def on_log(stream, chunk):
        sys.stdout.write(chunk.decode())
        sys.stdout.flush()

    spec = StepSpec(run_id=sys.argv[2], step_id="sleeper", image=sys.argv[1],
                    command=("/bin/sh", "-c", "echo started; sleep 120"), env={},
                    inputs={}, outputs=(), policy=ContainerPolicy())
    DockerRunner(connect()).run(Repo.memory(), spec, on_log)
    """
)


def test_killed_process_leaves_containers_that_janitor_removes(
    engine: Engine, busybox_image: ImageRecord, run_id: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, busybox_image.id, run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"started\n", child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    label = f"steve.run={run_id}"
    containers, volumes = labelled(engine, label)
    # left behind, still running: the container, its work dir and its /steve volume
    assert len(containers) == 1 and len(volumes) == 2
    assert engine.api.inspect_container(containers[0])["State"]["Running"]

    mine = [x for x in engine.janitor.scan() if x.run == run_id]
    assert {(x.kind, x.orphan, x.owner_pid) for x in mine} == {
        ("container", True, child.pid),
        ("volume", True, child.pid),
    }
    dry = subprocess.run(
        [sys.executable, "-m", "steve", "janitor", "--dry-run"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert f"would remove container {containers[0][:12]} run={run_id}" in dry.stdout.decode()
    again = labelled(engine, label)
    assert (again[0], sorted(again[1])) == (containers, sorted(volumes))

    proc = subprocess.run(
        [sys.executable, "-m", "steve", "janitor"], capture_output=True, check=True, timeout=60
    )
    out = proc.stdout.decode()
    assert f"removed container {containers[0][:12]} run={run_id}" in out
    assert f"removed volume {volumes[0][:12]} run={run_id}" in out
    assert labelled(engine, label) == ([], [])


def test_leftovers_of_a_live_owner_are_kept_unless_all(engine: Engine, run_id: str) -> None:
    labels = {"steve.run": run_id, "steve.step": "x", **owner_labels()}
    name = f"steve-test-{run_id}"
    engine.api.create_volume(name=name, labels=labels)
    try:
        report = engine.janitor.clean()
        mine = [x for x in report.found if x.run == run_id]
        assert [(x.kind, x.id, x.orphan, x.owner_pid) for x in mine] == [
            ("volume", name, False, os.getpid())
        ]
        assert all(x.run != run_id for x in report.removed)
        assert labelled(engine, f"steve.run={run_id}")[1] == [name]

        dry = engine.janitor.clean(all=True, dry_run=True)
        assert any(x.id == name for x in dry.removed)
        assert labelled(engine, f"steve.run={run_id}")[1] == [name]
        # --all removes every STEVE leftover: only run it on ours (other tests may be running)
        assert [x.orphan for x in engine.janitor.scan(all=True) if x.run == run_id] == [True]
    finally:
        engine.api.remove_volume(name, force=True)
