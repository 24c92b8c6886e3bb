"""A backup taken during a write flood restores to a clean repository holding every
write acknowledged before the backup began.

A writer process updates refs as fast as it can (each update commits its event
to the outbox and drains it into events.db) and prints each ref once its
update returned.  `steve backup` runs in its own process meanwhile; the
restored copy must hold every ref printed before the backup started, with its
content, and pass the whole fsck: objects, refs, the event chain, and the
reconciliation of refs with their events (no event lost or invented between
the two databases).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.backup.helpers import check_clean
from tests.conftest import PASSPHRASE
from tests.test_crash import wait_ready

pytestmark = pytest.mark.slow

WRITER = r"""
import os, sys
from steve.events import EventLog
from steve.repo import Repo

repo = Repo.open(sys.argv[1], passphrase="pw")
log = EventLog.attach(repo)
print("ready", flush=True)
n = 0
while True:
    data = b"flood %d " % n + os.urandom(64)
    oid = repo.write_blob(data)
    repo.update_ref(f"refs/heads/f{n}", oid, old=None)
    print(f"{n} {oid.hex} {data.hex()}", flush=True)  # acknowledged: committed
    n += 1
"""


def test_a_backup_during_a_write_flood_holds_every_acknowledged_write(
    repo_path: Path, tmp_path: Path, fast_kdf: KdfParams, steve_env: dict[str, str]
) -> None:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        # some bulk, so that the copy takes long enough for writes to land during it
        repo.update_ref("refs/heads/bulk", repo.write_stream(io.BytesIO(os.urandom(24 << 20))))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(repo_path)], stdout=subprocess.PIPE
    )
    acked: list[tuple[int, float]] = []  # (line index, when it was read)
    lines: list[str] = []

    def collect() -> None:
        assert writer.stdout is not None
        for raw in writer.stdout:
            lines.append(raw.decode().strip())
            acked.append((len(lines) - 1, time.monotonic()))

    try:
        wait_ready(writer)
        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while len(lines) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(lines)  # every write these lines acknowledge committed already
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "steve", "backup", str(tmp_path / "b")],
            env=steve_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        finished = time.monotonic()
        assert out.returncode == 0, out.stderr
        during = sum(1 for _, t in acked if started < t < finished)
    finally:
        writer.kill()
        writer.wait()
    assert before >= 40
    assert during > 0, "no write landed while the backup ran"
    env = {k: v for k, v in steve_env.items() if k != "STEVE_DIR"}
    out = subprocess.run(
        [sys.executable, "-m", "steve", "restore", str(tmp_path / "b"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for args in (("fsck", "--events"), ("events", "verify")):
        check = subprocess.run(
            [sys.executable, "-m", "steve", *args],
            env={**env, "STEVE_DIR": str(tmp_path / "out")},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert check.returncode == 0, (args, check.stderr)
    repo = check_clean(tmp_path / "out", passphrase=PASSPHRASE)
    try:
        for line in lines[:before]:
            n, oid, data = line.split()
            assert repo.rev_parse(f"refs/heads/f{n}") == ObjectId.from_hex(oid)
            assert repo.read_blob(ObjectId.from_hex(oid)) == bytes.fromhex(data)
        held = sum(1 for r in repo.list_refs("refs/heads/f"))
    finally:
        repo.close()
    assert before <= held <= len(lines) + 1  # + the one in flight when the writer died
