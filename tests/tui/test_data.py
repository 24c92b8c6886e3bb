"""The TUI's reads (stage machine, plan graph, receipt states, manifests) and the
tracker that folds events into node states and bounded logs."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from steve.errors import EventLogUnavailable, ReadOnlyStorage
from steve.events import EventLog
from steve.porcelain import runs
from steve.porcelain.runs import Stage
from steve.repo import Repo
from steve.tui.data import (
    NodeState,
    manifest_entries,
    manifest_text,
    plan_graph,
    receipt_states,
    stage_view,
)
from steve.tui.follow import RunTracker
from tests.conftest import PASSPHRASE
from tests.stages.helpers import T0


def test_stage_view_offers_the_commands_the_state_machine_allows(
    repo: Repo, planned: tuple[str, str]
) -> None:
    run_id, _ = planned
    view = stage_view(repo, None)
    assert view.run is not None and view.run.id == run_id and view.run.stage is Stage.PLAN
    assert view.allowed == (Stage.RESEARCH, Stage.BUILD)
    assert [(a.key, a.argv) for a in view.actions] == [("b", ("build", "--run", run_id))]
    runs.goto(repo, run_id, Stage.BUILD, now=T0, actor="t")
    keys = [a.key for a in stage_view(repo, "demo").actions]
    assert keys == ["b", "t"]


def test_no_run_and_no_plan(repo: Repo) -> None:
    assert stage_view(repo, None).run is None
    run = runs.new_run(repo, name="empty", now=T0, actor="t")
    view = stage_view(repo, None)
    assert view.actions == () and not view.has_plan
    assert plan_graph(repo, run.id) is None


def test_plan_graph_receipt_states_and_manifests(repo: Repo, planned: tuple[str, str]) -> None:
    run_id, plan = planned
    graph = plan_graph(repo, run_id)
    assert graph is not None and graph.plan.hex == plan
    assert [(n.id, n.kind, n.upstream, n.depth, n.phase) for n in graph.nodes] == [
        ("gen", "run", (), 0, "build"),
        ("asm", "run", ("gen",), 1, "build"),
        ("check", "test", ("asm",), 2, "test"),
    ]
    assert graph.edges == (("gen", "asm"), ("asm", "check"))
    assert set(receipt_states(repo, run_id, graph).values()) == {NodeState.PENDING}
    entries = manifest_entries(repo, run_id)
    assert [(e.label, e.oid.hex) for e in entries] == [("plan", plan)]
    text = manifest_text(repo, entries[0].oid)
    assert f"id: {plan}" in text and "kind: plan" in text
    assert f'"id": "{plan}"' in manifest_text(repo, entries[0].oid, "json")


def test_tracker_folds_states_and_keeps_a_bounded_log(repo: Repo, planned: tuple[str, str]) -> None:
    run_id, plan = planned
    graph = plan_graph(repo, run_id)
    assert graph is not None
    tracker = RunTracker(graph, receipt_states(repo, run_id, graph), ring=5, max_line=10)
    log = EventLog.memory()
    try:
        log.emit("build.started", {"plan": plan}, run_id=run_id)
        log.emit("step.started", {"node": "gen"}, run_id=run_id)
        chunk = {"step": "gen", "stream": "stdout", "data": b"a\nb\nc" + b"x" * 20}
        log.emit("log.chunk", chunk, run_id=run_id)
        log.emit("log.chunk", {"step": "gen", "stream": "stdout", "data": b"d\ne\n"}, run_id=run_id)
        log.emit("log.chunk", {"step": "gen", "stream": "stderr", "data": b"tail"}, run_id=run_id)
        log.emit("log.end", {"step": "gen", "stream": "stderr"}, run_id=run_id)
        log.emit("step.built", {"node": "gen"}, run_id=run_id)
        log.flush()
        tracker.feed(log.events())
    finally:
        log.close()
    changes = tracker.take()
    assert changes.states == {"gen": NodeState.PASSED, "asm": NodeState.QUEUED}
    assert tracker.states["check"] is NodeState.PENDING
    # the started line, a, b, the partial line joined with "d" (cut to 10), e, the
    # stderr tail (flushed by log.end): 6 lines, the ring keeps the last 5
    lines, restart, total = tracker.log_since("gen", 0)
    assert total == 6 and restart  # the first line was dropped
    assert lines == ["a", "b", "cxxxxxxxxx", "e", "tail"]
    assert tracker.log_since("gen", 4) == (["e", "tail"], False, 6)
    assert tracker.log_since("gen", 6) == ([], False, 6)
    assert tracker.take().states == {}


def test_a_handle_that_forbids_writes_reads_but_never_writes(
    repo: Repo, planned: tuple[str, str], repo_path: Path
) -> None:
    """What `steve tui` opens: the repository and events.db with writes refused."""
    run_id, _ = planned
    reader = Repo.open(repo_path, passphrase=PASSPHRASE)
    log = EventLog.for_repo(reader)
    try:
        reader.forbid_writes()
        log.forbid_writes()
        assert stage_view(reader, None).run is not None
        assert list(log.events(run_id=run_id)) == []  # reads work (nothing drained yet)
        with pytest.raises(ReadOnlyStorage):
            runs.goto(reader, run_id, Stage.BUILD, now=T0, actor="t")
        with pytest.raises(EventLogUnavailable, match="STEVE-STOR-005"):
            log.append("tui.test", {}, run_id=run_id)  # the writer thread was refused
    finally:
        with contextlib.suppress(EventLogUnavailable):  # close reports the refusal again
            log.close()
        reader.close()
    assert runs.find_run(repo, run_id).stage is Stage.PLAN  # nothing changed
    mem = Repo.memory()
    mem.forbid_writes()
    with pytest.raises(ReadOnlyStorage):
        runs.new_run(mem, now=T0, actor="t")
