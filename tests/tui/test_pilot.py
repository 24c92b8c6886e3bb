"""`steve tui` under Textual's pilot (headless): navigation, following events that
another writer appends, the action keys running the real commands, help, quit;
and the CLI refusing to start without a terminal."""

from __future__ import annotations

import subprocess
import sys

import pytest
from textual.widgets import DataTable, OptionList, Static, TabbedContent

from steve.events import EventLog
from steve.porcelain import runs
from steve.porcelain.runs import Stage
from steve.repo import Repo
from steve.tui.app import HelpScreen, SteveTui
from steve.tui.data import NodeState
from tests.stages.helpers import T0
from tests.tui.helpers import emit_build, node_log, output_log, wait_for, writer

SIZE = (140, 40)
pytestmark = pytest.mark.anyio


def steve_argv(env: dict[str, str]) -> tuple[str, ...]:
    return (sys.executable, "-m", "steve", "-C", env["STEVE_DIR"])


def manifest_shown(app: SteveTui) -> str:
    return str(app.query_one("#manifest-text", Static).render())


async def test_navigation_tabs_manifest_and_help(
    repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    run_id, plan = planned
    app = SteveTui(repo, events)
    async with app.run_test(size=SIZE) as pilot:
        dag = app.query_one("#dag", DataTable)
        assert dag.row_count == 3 and app.node == "gen"
        assert app.sub_title == f"run demo ({run_id}) · PLAN"
        await pilot.press("down")
        assert app.node == "asm"
        await pilot.press("down", "down")
        assert app.node == "check"  # the last row stays selected
        await pilot.press("up", "up")
        assert app.node == "gen"
        # the manifest list: the plan, its YAML in place, JSON on f
        await pilot.press("tab")
        assert app.focused is app.query_one("#manifests", OptionList)
        await pilot.press("enter")
        assert app.query_one("#tabs", TabbedContent).active == "manifest"
        assert f"id: {plan}" in manifest_shown(app) and "kind: plan" in manifest_shown(app)
        await pilot.press("f")
        assert f'"id": "{plan}"' in manifest_shown(app)
        await pilot.press("o")
        assert app.query_one("#tabs", TabbedContent).active == "output"
        await pilot.press("l")
        assert app.query_one("#tabs", TabbedContent).active == "log"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # only the allowed command has a key: PLAN allows BUILD, not TEST
        assert app.check_action("command", ("b",)) is True
        assert app.check_action("command", ("t",)) is False
        await pilot.press("t")
        assert app.proc is None
        await pilot.press("q")
    assert app.return_code == 0


async def test_follows_events_another_writer_appends(
    repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    run_id, plan = planned
    app = SteveTui(repo, events, poll=0.05)
    other = writer(repo)
    try:
        async with app.run_test(size=SIZE) as pilot:
            states = app.tracker.states
            assert states == dict.fromkeys(("gen", "asm", "check"), NodeState.PENDING)
            emit_build(other, run_id, plan, lines=3)

            def seen() -> bool:
                return states.get("asm") is NodeState.RUNNING

            await wait_for(pilot, seen, what="asm running")
            assert states["gen"] is NodeState.PASSED and states["check"] is NodeState.PENDING
            await wait_for(pilot, lambda: "gen line 2" in node_log(app), what="gen's log")
            assert node_log(app)[1:] == ["gen line 0", "gen line 1", "gen line 2"]
            cell = app.query_one("#dag", DataTable).get_cell("gen", "state")
            assert str(cell) == "passed"
            await pilot.press("down")  # asm: its partial line shows when its stream ends
            assert app.node == "asm" and "assembling" not in node_log(app)
            other.emit("log.end", {"step": "asm", "stream": "stdout"}, run_id=run_id)
            other.flush()
            await wait_for(pilot, lambda: "assembling" in node_log(app), what="asm's log")
            # a stage change by another process shows up too
            runs.goto(repo, run_id, Stage.BUILD, now=T0, actor="t")
            other.emit("run.transition", {"to": "BUILD"}, run_id=run_id)
            other.flush()
            await wait_for(pilot, lambda: app.sub_title.endswith("· BUILD"), what="stage")
            assert app.check_action("command", ("t",)) is True
    finally:
        other.close()


@pytest.mark.slow  # a child `python -m steve build` (about 10 s on a loaded machine)
async def test_a_key_runs_the_real_command_and_shows_its_output(
    repo: Repo,
    events: EventLog,
    planned: tuple[str, str],
    steve_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in steve_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # fails fast
    app = SteveTui(repo, events, steve_argv=steve_argv(steve_env))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b")
        assert app.query_one("#tabs", TabbedContent).active == "output"
        await wait_for(pilot, lambda: app.last_exit is not None, timeout=60, what="exit")
        out = output_log(app)
        assert out[0] == f"$ steve build --run {planned[0]}"
        assert out[-1] == f"[exit {app.last_exit}]" and app.last_exit != 0
        assert any("[STEVE-" in line for line in out), out  # the child's own error line
        assert app.proc is None and app.check_action("command", ("b",)) is True


def test_the_cli_needs_a_terminal(steve_env: dict[str, str], repo: Repo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "steve", "tui"],
        env=steve_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "[STEVE-TUI-001]" in proc.stderr
