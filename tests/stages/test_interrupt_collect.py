"""SIGTERM to `steve build` after its step's container exited, while the outputs are
being collected (issue 12 item 15): nothing is left on the engine, no traceback, and
the repository stays consistent whether the step's receipt made it or not."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from steve.errors import EXIT_INTERRUPTED
from steve.exec import Engine, ImageRecord
from steve.repo import Repo
from tests.conftest import PASSPHRASE
from tests.docker_fixtures import labelled
from tests.stages.helpers import node, pinned, plan_draft, run_with_plan
from tests.stages.test_interrupt import _start_build

pytestmark = pytest.mark.slow

# 400 files of 1 MiB of random bytes: collecting them takes a while after the exit
WRITE = "mkdir out && for i in $(seq 400); do head -c 1048576 /dev/urandom > out/f$i; done"


def test_sigterm_during_output_collection_leaves_nothing(
    repo: Repo,
    repo_path: Path,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    src = repo.write_blob(b"x")
    draft = plan_draft(
        [
            node(
                "big",
                image=busybox_image.id,
                command=["/bin/sh", "-c", WRITE],
                inputs=[pinned("s", src)],
                outputs=["out"],
            )
        ]
    )
    run_id, _ = run_with_plan(repo, draft)
    repo.close()
    err = tmp_path / "stderr"
    proc = _start_build(steve_env, err)
    try:
        deadline = time.monotonic() + 120
        flt = {"label": f"steve.run={run_id}"}
        while not any(c["State"] == "exited" for c in engine.api.containers(all=True, filters=flt)):
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the step never exited"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = err.read_text()
    assert "Traceback" not in said
    assert proc.returncode in (0, EXIT_INTERRUPTED), said
    assert labelled(engine, f"steve.run={run_id}") == ([], [])
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        assert again.fsck().ok
