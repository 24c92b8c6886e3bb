"""fsck reconciles run state and refs with the events that record them.

Edits made with the repository key (a run's stage set by hand, a transition
row deleted) and events lost from events.db (its WAL deleted after a killed
process) are reported; a repository changed only through STEVE is clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from steve.errors import EXIT_CORRUPT
from steve.events import EventLog
from steve.events.fsck import fsck
from steve.porcelain.runs import Stage, goto, new_run
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.cli.conftest import PASSPHRASE, Invoke
from tests.events.conftest import raw_connect


def _history(invoke: Invoke) -> None:
    blob = invoke("hash-object", "-w", "--stdin", input=b"x").lines[0]
    assert invoke("update-ref", "refs/heads/main", blob).exit_code == 0
    assert invoke("run", "new", "--name", "demo").exit_code == 0
    assert invoke("run", "goto", "research").exit_code == 0
    assert invoke("run", "goto", "plan").exit_code == 0


def _problems(invoke: Invoke) -> list[dict[str, object]]:
    out = invoke("fsck", "--events", "--json")
    rows = [json.loads(line) for line in out.lines]
    problems = [r for r in rows if "problem" in r]
    assert (out.exit_code == EXIT_CORRUPT) == bool(problems), out.stderr
    return problems


def _steve_db(cli_repo: Path) -> object:
    return raw_connect(cli_repo / ".steve" / "steve.db", Repo.derive_key(cli_repo, PASSPHRASE))


def test_history_made_through_steve_reconciles(invoke: Invoke) -> None:
    _history(invoke)
    assert _problems(invoke) == []
    assert invoke("fsck").exit_code == 0


def test_a_stage_set_by_hand_is_reported(invoke: Invoke, cli_repo: Path) -> None:
    _history(invoke)
    conn = _steve_db(cli_repo)
    conn.execute("UPDATE runs SET stage = 'BUILD'")  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]
    problems = _problems(invoke)
    details = [str(p["detail"]) for p in problems]
    assert {p["problem"] for p in problems} == {"run", "state"}
    assert any("stage is BUILD, its events end in PLAN" in d for d in details)
    # the store alone sees it too: the transitions end in PLAN
    invoke("fsck").assert_error(EXIT_CORRUPT, "STEVE-FSCK-001")


def test_a_deleted_transition_row_is_reported(invoke: Invoke, cli_repo: Path) -> None:
    _history(invoke)
    conn = _steve_db(cli_repo)
    conn.execute("DELETE FROM transitions WHERE seq = 2")  # type: ignore[attr-defined]
    conn.execute("UPDATE runs SET stage = 'RESEARCH'")  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]
    # the store's records agree with each other now; only the events tell
    assert invoke("fsck").exit_code == 0
    problems = _problems(invoke)
    details = [str(p["detail"]) for p in problems]
    assert all(p["problem"] == "state" for p in problems)
    assert any(
        "run.transition event #2 (RESEARCH->PLAN) has no transition record" in d for d in details
    )
    assert any("its events end in PLAN" in d for d in details)


KILLED_WRITER = r"""
import os, signal, sys
from steve.events import EventLog
from steve.porcelain.runs import Stage, find_run, goto
from steve.repo import Repo
from steve.store.kdf import KdfParams

repo = Repo.open(sys.argv[1], passphrase="pw")
log = EventLog.attach(repo)
run = find_run(repo)
goto(repo, run.id, Stage.PLAN, now=1_700_000_010, actor="t")
repo.update_ref("refs/heads/main", repo.write_blob(b"y"))
log.flush()
os.kill(os.getpid(), signal.SIGKILL)  # leaves the committed events in events.db-wal
"""


def test_events_lost_with_a_deleted_wal_are_reported(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    repo = Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf)
    with repo, EventLog.attach(repo):
        repo.update_ref("refs/heads/main", repo.write_blob(b"x"))
        run = new_run(repo, name="demo", now=1_700_000_000, actor="t")
        goto(repo, run.id, Stage.RESEARCH, now=1_700_000_001, actor="t")
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(repo_path)], check=False)
    assert proc.returncode == -9
    wal = repo_path / ".steve" / "events.db-wal"
    assert wal.stat().st_size > 0
    wal.unlink()
    (repo_path / ".steve" / "events.db-shm").unlink(missing_ok=True)
    with Repo.open(repo_path, passphrase=PASSPHRASE) as repo, EventLog.attach(repo) as log:
        report = fsck(repo, log)
        assert report.events == 3  # the chain itself is a valid prefix
        details = sorted(p.detail for p in report.problems)
        assert {p.kind.value for p in report.problems} == {"state"}, details
        assert any("transition #2 has no run.transition event" in d for d in details)
        assert any("stage is PLAN, its events end in RESEARCH" in d for d in details)
        assert any(d.startswith("ref refs/heads/main is ") for d in details)


def test_events_waiting_in_the_outbox_are_reported_as_undelivered() -> None:
    repo = Repo.memory()
    repo.update_ref("refs/heads/main", repo.write_blob(b"x"))  # no sink: stays in the outbox
    with EventLog.memory() as log:  # a log the repository does not drain into
        report = fsck(repo, log)
        assert [p.kind.value for p in report.problems] == ["undelivered"]
        assert "ref.updated committed but not yet in the event log" in report.problems[0].detail
        repo.events.sink = log
        repo.drain()
        assert fsck(repo, log).ok
