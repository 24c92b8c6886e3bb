"""The TUI's screens as snapshots (pytest-textual-snapshot; accepted SVGs in
``__snapshots__``; update them with ``--snapshot-update`` after checking the
change by eye), and the screenshot the README shows (docs/tui.svg, docs/tui.png)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from steve.events import EventLog
from steve.porcelain import runs
from steve.porcelain.runs import Stage
from steve.repo import Repo
from steve.tui.app import SteveTui
from steve.tui.data import NodeState
from tests.stages.helpers import T0
from tests.tui.helpers import emit_build, node_log, wait_for, writer

SIZE = (140, 36)
DOCS = Path(__file__).resolve().parents[2] / "docs"
Snap = Callable[..., bool]


def caught_up(app: SteveTui) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait until the follower has read every event and the screen has shown it."""

    async def run_before(pilot: Pilot[None]) -> None:
        polls = app.tracker.polls
        await wait_for(pilot, lambda: app.tracker.polls >= polls + 2, what="two polls")
        await pilot.pause(3 * app.tick)

    return run_before


def building(
    app: SteveTui, repo: Repo, run_id: str, plan: str
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A build under way, written by another writer: the run in BUILD, gen passed,
    asm running."""

    async def run_before(pilot: Pilot[None]) -> None:
        runs.goto(repo, run_id, Stage.BUILD, now=T0, actor="t")  # its event: the outbox
        other = writer(repo)
        try:
            emit_build(other, run_id, plan, lines=12)
            head = other.head().seq
        finally:
            other.close()
        await wait_for(pilot, lambda: app.tracker.last_seq >= head, what="the build's events")
        await wait_for(pilot, lambda: "gen line 11" in node_log(app), what="gen's log")
        assert app.tracker.states["asm"] is NodeState.RUNNING
        await wait_for(pilot, lambda: app.sub_title.endswith("· BUILD"), what="BUILD")
        await pilot.pause(3 * app.tick)

    return run_before


def test_snapshot_plan_stage(
    snap_compare: Snap, repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    app = SteveTui(repo, events)
    assert snap_compare(app, terminal_size=SIZE, run_before=caught_up(app))


def test_snapshot_a_build_in_progress(
    snap_compare: Snap, repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    app = SteveTui(repo, events)
    assert snap_compare(app, terminal_size=SIZE, run_before=building(app, repo, *planned))


def test_snapshot_manifest_in_place(
    snap_compare: Snap, repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    app = SteveTui(repo, events)
    press = ["tab", "enter"]
    assert snap_compare(app, press=press, terminal_size=SIZE, run_before=caught_up(app))


def test_snapshot_help(
    snap_compare: Snap, repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    app = SteveTui(repo, events)
    press = ["question_mark"]
    assert snap_compare(app, press=press, terminal_size=SIZE, run_before=caught_up(app))


async def _screenshot(app: SteveTui, repo: Repo, run_id: str, plan: str, path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await building(app, repo, run_id, plan)(pilot)
        app.save_screenshot(path.name, str(path.parent))


def test_screenshot_for_the_readme(
    repo: Repo, events: EventLog, planned: tuple[str, str], tmp_path: Path
) -> None:
    """docs/tui.svg (and docs/tui.png when rsvg-convert is installed): a build in progress."""
    import asyncio

    shot = tmp_path / "tui.svg"
    asyncio.run(_screenshot(SteveTui(repo, events), repo, *planned, shot))
    text = shot.read_text(encoding="utf-8")
    assert text.startswith("<svg") and "gen&#160;line&#160;11" in text
    shutil.copyfile(shot, DOCS / "tui.svg")
    rsvg = shutil.which("rsvg-convert")
    if rsvg is not None:  # optional: Debian's librsvg2-bin
        subprocess.run([rsvg, "-o", str(DOCS / "tui.png"), str(shot)], check=True, timeout=60)


def failed(
    app: SteveTui, repo: Repo, run_id: str, plan: str
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """gen failed (its stderr shown), asm skipped, the build finished not ok."""

    async def run_before(pilot: Pilot[None]) -> None:
        other = writer(repo)
        try:
            other.emit("build.started", {"plan": plan, "nodes": 2, "jobs": 1}, run_id=run_id)
            other.emit("step.started", {"node": "gen", "kind": "run"}, run_id=run_id)
            err = {"step": "gen", "stream": "stderr", "data": b"sed: src/words.txt: No such file\n"}
            other.emit("log.chunk", err, run_id=run_id)
            fail = {"node": "gen", "kind": "run", "status": "failed", "failure": "exit_nonzero"}
            other.emit("step.failed", fail, run_id=run_id, level="error")
            other.emit("step.skipped", {"node": "asm", "kind": "run"}, run_id=run_id)
            other.emit("build.finished", {"plan": plan, "ok": False}, run_id=run_id)
            other.flush()
        finally:
            other.close()
        await wait_for(pilot, lambda: app.tracker.states["asm"] is NodeState.SKIPPED, what="skip")
        await wait_for(pilot, lambda: "sed: src/words.txt: No such file" in node_log(app))
        await pilot.pause(3 * app.tick)

    return run_before


def test_snapshot_a_failed_build(
    snap_compare: Snap, repo: Repo, events: EventLog, planned: tuple[str, str]
) -> None:
    app = SteveTui(repo, events)
    assert snap_compare(app, terminal_size=SIZE, run_before=failed(app, repo, *planned))


def test_snapshot_no_run_yet(snap_compare: Snap, repo: Repo, events: EventLog) -> None:
    app = SteveTui(repo, events)
    assert snap_compare(app, terminal_size=SIZE, press=["_"])
