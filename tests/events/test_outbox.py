"""One repository transaction: a change and its events commit together.

Events go into the outbox table of ``steve.db`` in the transaction of the
change and are drained into ``events.db`` afterwards.  A damaged or missing
event log never makes a committed change look failed, and a process killed
between the commit and the drain loses no event: the next open delivers it,
exactly once.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.events import EventLog
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.cli.conftest import PASSPHRASE, Invoke
from tests.test_crash import kill_group, wait_ready


def _ref_events(lg: EventLog, ref: str) -> list[str | None]:
    lg.flush()
    return [
        e.payload["new"]  # type: ignore[misc]
        for e in lg.events(event_type="ref.updated")
        if e.payload["ref"] == ref
    ]


def test_change_without_a_sink_waits_in_the_outbox_and_drains_on_attach() -> None:
    repo = Repo.memory()
    blob = repo.write_blob(b"x")
    repo.update_ref("refs/heads/main", blob, old=None)
    repo.set_symbolic_ref("refs/heads/alias", "refs/heads/main")
    assert repo.undelivered() == 2
    with EventLog.attach(repo) as lg:
        assert repo.undelivered() == 0
        lg.flush()
        assert [e.event_type for e in lg.events()] == ["ref.updated", "ref.symbolic"]


def test_a_rolled_back_change_queues_no_event(repo: Repo) -> None:
    blob = repo.write_blob(b"x")
    with pytest.raises(RuntimeError), repo.transaction() as tx:
        tx.emit("ref.updated", {"ref": "refs/heads/x", "old": None, "new": blob.hex})
        raise RuntimeError("abort")
    assert repo.undelivered() == 0


def test_symbolic_ref_delete_records_an_event(repo: Repo) -> None:
    with EventLog.attach(repo) as lg:
        repo.set_symbolic_ref("refs/heads/alias", "refs/heads/main")
        assert repo.delete_symbolic_ref("refs/heads/alias") == "refs/heads/main"
        lg.flush()
        events = list(lg.events(event_type="ref.symbolic"))
        assert [e.payload for e in events] == [
            {"ref": "refs/heads/alias", "target": "refs/heads/main"},
            {"ref": "refs/heads/alias", "target": None, "old": "refs/heads/main"},
        ]


def test_a_repeated_delivery_appends_nothing_twice(repo: Repo) -> None:
    """A drain killed after events.db committed, before the outbox rows were deleted."""
    blob = repo.write_blob(b"x")
    repo.update_ref("refs/heads/main", blob, old=None)  # no sink yet: stays in the outbox
    pending = repo.backend.outbox(10)
    with EventLog.for_repo(repo) as lg:
        assert lg.deliver(repo.source, pending) == 1
        assert lg.deliver(repo.source, pending) == 0  # the same rows again: skipped
        repo.events.sink = lg
        assert repo.drain() == 0 and repo.undelivered() == 0
        assert _ref_events(lg, "refs/heads/main") == [blob.hex]


def _damage(events_db: Path, how: str) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{events_db}{extra}").unlink(missing_ok=True)
    if how == "damaged":
        events_db.write_bytes(b"\x00garbage" * 4096)
    else:  # unavailable: something that cannot be opened as a database
        events_db.unlink()
        events_db.mkdir()


@pytest.mark.parametrize("how", ["damaged", "unavailable"])
def test_update_ref_with_a_broken_event_log_succeeds_and_delivers_later(
    invoke: Invoke, cli_repo: Path, how: str
) -> None:
    blob = invoke("hash-object", "-w", "--stdin", input=b"one").lines[0]
    assert invoke("update-ref", "refs/heads/main", blob).exit_code == 0  # creates events.db
    events_db = cli_repo / ".steve" / "events.db"
    saved = cli_repo / "events.saved"
    shutil.copyfile(events_db, saved)
    _damage(events_db, how)

    second = invoke("hash-object", "-w", "--stdin", input=b"two").lines[0]
    out = invoke("update-ref", "refs/heads/main", second, blob)
    assert out.exit_code == 0, out.stderr  # the ref moved: success, not exit 9
    assert "warning" in out.stderr and "outbox" in out.stderr
    with Repo.open(cli_repo, passphrase=PASSPHRASE) as repo:
        assert repo.rev_parse("refs/heads/main").hex == second
        (waiting,) = repo.backend.outbox(10)
        assert waiting.type == "ref.updated"
    # a retry with the old value is rejected: the change really happened once
    invoke("update-ref", "refs/heads/main", second, blob).assert_error(7, "STEVE-REF-003")

    if events_db.is_dir():
        events_db.rmdir()
    shutil.copyfile(saved, events_db)  # the log is repaired (restored from a backup)
    assert invoke("show-ref").exit_code == 0  # any command delivers what waits
    with Repo.open(cli_repo, passphrase=PASSPHRASE) as repo:
        assert repo.undelivered() == 0
        with EventLog.for_repo(repo) as lg:
            assert _ref_events(lg, "refs/heads/main") == [blob, second]
            assert lg.verify().ok


CHILD = r"""
import sys
from steve.events import EventLog
from steve.repo import Repo

repo = Repo.open(sys.argv[1], passphrase="pw")
log = EventLog.attach(repo)
print("ready", flush=True)
i = 0
while True:
    head = repo.refs.resolve("refs/heads/main")
    blob = repo.write_blob(b"round %d %s" % (i, sys.argv[2].encode()))
    repo.update_ref("refs/heads/main", blob, head.target if head else None)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_between_commit_and_drain_never_loses_an_event(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    """24 kills of a writer moving a ref in a loop.  After each, the next open
    delivers what the outbox holds, and the log has exactly one ``ref.updated``
    event per reflog entry of the ref, in order."""
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    rng = random.Random(20261201)
    left_in_outbox = 0
    rounds = 24
    for n in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(repo_path), str(n)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_ready(proc)
            time.sleep(rng.uniform(0.05, 0.4))
            assert proc.poll() is None, f"round {n}: the child exited early"
        finally:
            kill_group(proc)
        assert proc.returncode == -signal.SIGKILL
        with Repo.open(repo_path, passphrase=PASSPHRASE) as repo:
            left_in_outbox += repo.undelivered() > 0
            with EventLog.attach(repo) as lg:  # the next open with the log drains
                assert repo.undelivered() == 0
                reflog = [e.new.hex for e in reversed(repo.reflog("refs/heads/main")) if e.new]
                assert _ref_events(lg, "refs/heads/main") == reflog, f"round {n}"
    # the kills really landed between a commit and its drain (the case under test)
    assert left_in_outbox >= 1
