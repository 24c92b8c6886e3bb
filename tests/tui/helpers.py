"""Driving the TUI under Textual's pilot: waiting for conditions, emitting the events
a build emits (through a second, independent event log: another writer)."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot

from steve.events import EventLog
from steve.repo import Repo
from steve.tui.app import SteveTui


async def wait_for(
    pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Let the app run until ``cond()`` holds (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.05)


def writer(repo: Repo) -> EventLog:
    """A second EventLog on the same events.db: events written by someone else."""
    return EventLog.for_repo(repo)


def emit_build(log: EventLog, run_id: str, plan: str, *, lines: int = 3) -> None:
    """What `steve build` emits for the node gen: started, output, built; then asm
    starts and says something (as a build in progress)."""
    log.emit("build.started", {"plan": plan, "nodes": 2, "jobs": 1}, run_id=run_id)
    step = {"kind": "run"}
    log.emit("step.started", {"node": "gen", **step, "status": "started"}, run_id=run_id)
    data = "".join(f"gen line {i}\n" for i in range(lines)).encode()
    chunk = {"step": "gen", "stream": "stdout", "index": 0, "offset": 0, "data": data}
    log.emit("log.chunk", chunk, run_id=run_id)
    log.emit("step.built", {"node": "gen", **step, "status": "built"}, run_id=run_id)
    log.emit("step.started", {"node": "asm", **step, "status": "started"}, run_id=run_id)
    chunk = {"step": "asm", "stream": "stdout", "index": 0, "offset": 0, "data": b"assembling"}
    log.emit("log.chunk", chunk, run_id=run_id)
    log.flush()


def node_log(app: SteveTui) -> list[str]:
    from textual.widgets import Log

    return list(app.query_one("#node-log", Log).lines)


def output_log(app: SteveTui) -> list[str]:
    from textual.widgets import Log

    return list(app.query_one("#output-log", Log).lines)
