"""`steve inspect logs --follow` while another process writes, directly and through
steved; error counting through steved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.daemon.conftest import Daemon, env_for, steve


def _follower(repo: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "steve", "inspect", "logs", "--follow", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env_for(repo),
    )


def _line(stream: IO[bytes] | None) -> dict[str, object]:
    assert stream is not None
    line = stream.readline()
    assert line, "the follower ended"
    doc: dict[str, object] = json.loads(line)
    return doc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)
    for s in (proc.stdout, proc.stderr):
        if s is not None:
            s.close()


def test_follow_prints_the_tail_then_what_another_process_appends(served_repo: Path) -> None:
    for i in range(3):
        assert steve(served_repo, "events", "append", "--type", "t.x", "--payload",
                     json.dumps({"node": "a", "i": i})).returncode == 0  # fmt: skip
    proc = _follower(served_repo, "--type", "t.x", "-n", "2", "--node", "a")
    try:
        assert [_line(proc.stdout)["payload"] for _ in range(2)] == [
            {"node": "a", "i": 1},
            {"node": "a", "i": 2},
        ]
        steve(served_repo, "events", "append", "--type", "t.x", "--payload", '{"node": "b"}')
        steve(served_repo, "events", "append", "--type", "t.y", "--payload", '{"node": "a"}')
        steve(served_repo, "events", "append", "--type", "t.x", "--payload", '{"node": "a"}')
        late = _line(proc.stdout)
        assert late["type"] == "t.x" and late["payload"] == {"node": "a"} and late["node"] == "a"
    finally:
        _stop(proc)


def test_follow_through_steved(daemon: Daemon) -> None:
    proc = _follower(daemon.repo, "--node", "n1")
    try:
        assert proc.stderr is not None
        assert b"following through steved" in proc.stderr.readline()
        with daemon.client() as c:
            c.append("step.started", [{"node": "n2"}, {"node": "n1"}])
        got = _line(proc.stdout)
        assert got["type"] == "step.started" and got["node"] == "n1"
    finally:
        _stop(proc)


def test_errors_of_commands_steved_runs_are_counted_there(daemon: Daemon) -> None:
    for _ in range(2):
        proc = steve(daemon.repo, "update-ref", "refs/heads/x", "deadbeefdead")
        assert proc.returncode == 5 and b"[STEVE-REV-001]" in proc.stderr
    out = steve(daemon.repo, "inspect", "errors", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(e["code"], e["count"]) for e in doc["errors"]] == [("STEVE-REV-001", 2)]


def test_a_direct_command_counts_through_steved_while_it_serves(daemon: Daemon) -> None:
    """Writes go through steved: a command that ran directly (a read with a cached
    key) counts its error through the daemon, never beside it."""
    from steve.cli.app import Context, count_error
    from steve.errors import ObjectNotFound
    from steve.repo import Repo
    from tests.daemon.conftest import PASSPHRASE

    state = Context(daemon.repo)
    state._repo = Repo.open(daemon.repo, passphrase=PASSPHRASE)
    try:
        assert count_error(state, ObjectNotFound("deadbeef")) is True
        assert count_error(state, ObjectNotFound("deadbeef")) is True
        assert [(e.code, e.count) for e in state._repo.error_counts()] == [("STEVE-OBJ-001", 2)]
        with daemon.client() as c:
            c.call("lock")  # a locked daemon cannot write: the count is skipped
        assert count_error(state, ObjectNotFound("deadbeef")) is False
        assert [e.count for e in state._repo.error_counts()] == [2]
    finally:
        state._repo.close()
