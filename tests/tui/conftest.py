"""Fixtures for the TUI tests: a repository with a run whose plan is frozen, and
events a build would emit (emitted through the real event log)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.events import EventLog
from steve.repo import Repo
from tests.docker_fixtures import busybox_image, engine, labelled  # noqa: F401
from tests.stages.helpers import T0
from tests.stages.project import project_plan, source_tree

IMAGE = "sha256:" + "ab" * 32
RUN_ID = "01HTUITESTRUN0000000000000"


@pytest.fixture
def anyio_backend() -> str:
    """The pilot tests are async (``pytest.mark.anyio``) on asyncio, Textual's loop."""
    return "asyncio"


@pytest.fixture
def planned(repo: Repo, tmp_path: Path) -> tuple[str, str]:
    """(run id, plan id hex): a run in PLAN with the busybox project's plan (a fake
    image digest: nothing runs in these tests)."""
    src = source_tree(repo, tmp_path / "project")
    from steve.porcelain import runs, stages
    from steve.porcelain.runs import Stage

    run = runs.new_run(repo, name="demo", now=T0, actor="t", run_id=RUN_ID)
    runs.goto(repo, run.id, Stage.RESEARCH, now=T0, actor="t")
    runs.goto(repo, run.id, Stage.PLAN, now=T0, actor="t")
    rec = stages.record(
        repo, "plan", project_plan(IMAGE, src), run_id=run.id, now=T0, tz=0, actor="t"
    )
    return run.id, rec.oid.hex


@pytest.fixture
def events(repo: Repo) -> Iterator[EventLog]:
    """The repository's event log, attached (the outbox drained into it)."""
    log = EventLog.attach(repo)
    try:
        yield log
    finally:
        repo.events.sink = None
        log.close()
