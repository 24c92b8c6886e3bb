"""`steve logs`: labelled step output of a receipt or a run, and following a build live
(issue 11 item 8); `steve events` shows log chunks as text."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.events import EventLog
from steve.porcelain.build import build
from steve.porcelain.logs import follow_logs, step_logs
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import chain_plan, run_with_plan


def steve(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_logs_of_a_run_and_of_a_receipt_are_labelled(
    repo: Repo, repo_path: Path, steve_env: dict[str, str]
) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    report = build(repo, FakeRunner(fail={"asm"}))
    gen, asm = report.outcomes
    assert gen.receipt is not None and asm.receipt is not None
    sections = step_logs(repo)
    assert [(s.node, s.stream) for s in sections] == [
        ("gen", "stdout"),
        ("gen", "stderr"),
        ("asm", "stdout"),
        ("asm", "stderr"),
    ]
    res = steve(steve_env, "logs")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines == [
        f"==> gen stdout (receipt {gen.receipt.short()}) <==",
        "ran gen",
        f"==> gen stderr (receipt {gen.receipt.short()}) (empty) <==",
        f"==> asm stdout (receipt {asm.receipt.short()}) <==",
        "ran asm",
        f"==> asm stderr (receipt {asm.receipt.short()}) <==",
        "boom",
    ]
    res = steve(steve_env, "logs", asm.receipt.hex[:12])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "boom" and "gen" not in res.output
    res = steve(steve_env, "logs", run_id, "--node", "gen")
    assert res.exit_code == 0 and "asm" not in res.output and "ran gen" in res.output
    res = steve(steve_env, "logs", "nosuchrun")
    assert res.exit_code == 5 and "[STEVE-STATE-002]" in res.output


def test_follow_prints_a_running_build_and_stops_when_it_ends(repo: Repo) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    log = EventLog.for_repo(repo)
    try:
        pieces: list[tuple[str, str, bytes]] = []
        done = threading.Event()

        def follow() -> None:
            for p in follow_logs(log, run_id, poll=0.02):
                pieces.append((p.node, p.stream, p.data))
            done.set()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        time.sleep(0.1)  # the follower waits for a build to start
        assert build(repo, FakeRunner(delay=0.05), events=log).ok
        assert done.wait(10), "follow did not stop at build.finished"
        assert pieces == [("gen", "stdout", b"ran gen\n"), ("asm", "stdout", b"ran asm\n")]
    finally:
        log.close()


def test_events_show_log_chunks_as_text(repo: Repo, steve_env: dict[str, str]) -> None:
    src = repo.write_blob(b"s")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    log = EventLog.for_repo(repo)
    try:
        build(repo, FakeRunner(), events=log)
    finally:
        log.close()
    res = steve(steve_env, "events", "--run", run_id, "--type", "log.chunk")
    assert res.exit_code == 0, res.output
    assert "[redacted]" not in res.output
    assert '"data": "ran gen\\n"' in res.output


def test_follow_on_the_command_line_and_truncated_logs(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    src = repo.write_blob(b"s")
    run_with_plan(repo, chain_plan(src))
    log = EventLog.for_repo(repo)
    try:
        report = build(repo, FakeRunner(truncated=("stdout",)), events=log)
    finally:
        log.close()
    # the build is over: --follow prints its output and ends with it
    res = steve(steve_env, "logs", "--follow")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [
        "==> gen stdout <==",
        "ran gen",
        "==> asm stdout <==",
        "ran asm",
    ]
    gen = report.outcomes[0]
    assert gen.receipt is not None
    res = steve(steve_env, "logs", gen.receipt.hex, "--node", "gen")
    assert res.output.splitlines()[0] == (
        f"==> gen stdout (receipt {gen.receipt.short()}) (truncated at the output limit) <=="
    )


def test_logs_of_a_run_without_receipts_says_to_build_first(
    repo: Repo, repo_path: Path, steve_env: dict[str, str]
) -> None:
    # the hint was InvalidInput's generic "Fix the value named above and retry."
    run_with_plan(repo, chain_plan(repo.write_blob(b"s")))
    res = steve(steve_env, "logs")
    assert res.exit_code == 6, res.output
    assert "hint: Run `steve build` first" in res.output
    assert "Fix the value named above" not in res.output


def test_follow_before_any_build_says_it_waits(repo: Repo, steve_env: dict[str, str]) -> None:
    # it used to wait in silence: a new user saw a hung command
    run_with_plan(repo, chain_plan(repo.write_blob(b"s")))
    results: list[Result] = []
    follower = threading.Thread(
        target=lambda: results.append(steve(steve_env, "logs", "--follow")), daemon=True
    )
    follower.start()
    time.sleep(0.5)
    log = EventLog.for_repo(repo)
    try:
        assert build(repo, FakeRunner(), events=log).ok
    finally:
        log.close()
    follower.join(20)
    assert results, "--follow did not end with the build"
    lines = results[0].output.splitlines()
    assert lines[0].startswith("steve: no build or test of run ")
    assert lines[0].endswith(
        "yet: waiting for the next `steve build` or `steve test` (Ctrl-C stops)"
    )
    assert lines[1:] == ["==> gen stdout <==", "ran gen", "==> asm stdout <==", "ran asm"]
