"""The TUI follows a real `steve build` in containers, run by another process, and
its `t` key runs the real `steve test` (busybox image built offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable

from steve.events import EventLog
from steve.exec import Engine, ImageRecord
from steve.repo import Repo
from steve.tui.app import SteveTui
from steve.tui.data import NodeState
from tests.docker_fixtures import labelled
from tests.stages.helpers import run_with_plan
from tests.stages.project import project_plan, source_tree
from tests.tui.helpers import node_log, output_log, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_follows_a_real_build_in_another_process(
    repo: Repo,
    events: EventLog,
    steve_env: dict[str, str],
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = source_tree(repo, tmp_path)
    run_id, _ = run_with_plan(repo, project_plan(busybox_image.id, src))
    for name, value in steve_env.items():
        monkeypatch.setenv(name, value)
    argv = (sys.executable, "-m", "steve", "-C", steve_env["STEVE_DIR"])
    app = SteveTui(repo, events, poll=0.05, steve_argv=argv)
    async with app.run_test(size=(140, 40)) as pilot:
        states = app.tracker.states
        assert set(states.values()) == {NodeState.PENDING}
        build = subprocess.Popen(
            [*argv, "build"],
            env=steve_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            seen: dict[str, set[NodeState]] = {"gen": set(), "asm": set()}

            def built() -> bool:
                for node, got in seen.items():
                    got.add(states[node])
                return all(states[n] is NodeState.PASSED for n in seen)

            await wait_for(pilot, built, timeout=240, what="gen and asm passed")
        finally:
            out, _ = build.communicate(timeout=240)
        assert build.returncode == 0, out
        assert states["check"] is NodeState.PENDING  # a test node: `steve test` runs it
        dag = app.query_one("#dag", DataTable)

        def shown() -> list[str]:
            return [str(c) for c in dag.get_column("state")]

        await wait_for(pilot, lambda: shown() == ["passed", "passed", "pending"], what="cells")
        # gen's log: the start line from its step.started event, then its output
        await wait_for(pilot, lambda: "generated" in node_log(app), what="gen's output")
        assert node_log(app)[0].startswith("── gen started")
        await wait_for(pilot, lambda: app.sub_title.endswith("· BUILD"), what="stage BUILD")

        await pilot.press("t")  # the real `steve test`, as a child of the TUI
        await wait_for(pilot, lambda: app.last_exit is not None, timeout=240, what="test")
        assert app.last_exit == 0, output_log(app)
        assert output_log(app)[0] == f"$ steve test --run {run_id}"
        await wait_for(pilot, lambda: states["check"] is NodeState.PASSED, what="check passed")
        await wait_for(pilot, lambda: app.sub_title.endswith("· TEST"), what="stage TEST")
        labels = [e.label for e in app.entries]
        assert {"plan", "build_receipt", "test_certificate", "receipt check"} <= set(labels)
    assert labelled(engine, f"steve.run={run_id}") == ([], [])
