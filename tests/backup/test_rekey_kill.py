"""50 SIGKILLs at random moments of a real `steve rekey`: after each, the repository
opens with exactly one of the old and the new passphrase, holds every record, and
its whole fsck (objects, refs, event chain and reconciliation) is clean.

Each round rekeys from whichever passphrase is current to the other, so the
kills land in both directions.  The delay is drawn over the length of one
uninterrupted rekey measured first (from the moment the child is ready), so
the kills spread over the export, the commit and the roll-forward; every
other round waits until the new config is staged and kills within 60 ms, so
many kills land around the commit point itself.  On a slow machine more rounds
(up to 150) run until each kind of landing happened at least 5 times.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.errors import WrongKey
from steve.repo import Repo
from steve.store import rekey as rk
from steve.store.kdf import KdfParams
from tests.backup.helpers import check_clean, contents, fill
from tests.conftest import PASSPHRASE
from tests.test_crash import wait_ready

pytestmark = pytest.mark.slow

REKEYER = r"""
import sys
from steve.repo import Repo

print("ready", flush=True)
Repo.rekey(sys.argv[1], old_passphrase=sys.argv[2], new_passphrase=sys.argv[3])
print("done", flush=True)
"""

ROUNDS = 50
MAX_ROUNDS = 150


def _start(root: Path, old: str, new: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", REKEYER, str(root), old, new],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    wait_ready(proc)
    return proc


def _opens_with(root: Path, passphrase: str) -> bool:
    try:
        Repo.open(root, passphrase=passphrase).close()
    except WrongKey:
        return False
    return True


def test_sigkill_at_any_moment_of_rekey_leaves_the_old_or_the_new_passphrase(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    rng = random.Random(20261202)
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        written = fill(repo, 20)
    passphrases = [PASSPHRASE, "second pw"]
    # one uninterrupted rekey measures the window the kills are spread over
    proc = _start(repo_path, passphrases[0], passphrases[1])
    start = time.monotonic()
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"done"
    duration = time.monotonic() - start
    proc.wait(timeout=60)
    current = 1
    outcomes = {"old": 0, "new": 0}
    interrupted = 0
    n = -1
    while True:  # 50 rounds at least; more (up to 150) on a slow machine until the kills
        n += 1  # have landed at least 5 times before the commit, after it, and mid-way
        spread = min(outcomes.values()) >= 5 and interrupted >= 5
        if n >= MAX_ROUNDS or (n >= ROUNDS and spread):
            break
        old, new = passphrases[current], passphrases[1 - current]
        proc = _start(repo_path, old, new)
        if n % 2:  # any moment of the rekey
            time.sleep(rng.uniform(0.0, duration * 1.2))
        else:  # around the commit point: once the new config is staged
            staged = repo_path / ".steve" / rk.STAGING / "config"
            deadline = time.monotonic() + 30
            while proc.poll() is None and not staged.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.06))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode in (0, -signal.SIGKILL), proc.returncode
        interrupted += (repo_path / ".steve" / rk.STAGING).exists()
        with_old, with_new = _opens_with(repo_path, old), _opens_with(repo_path, new)
        assert with_old != with_new, (n, with_old, with_new)  # exactly one of them
        if with_new:
            current = 1 - current
        outcomes["new" if with_new else "old"] += 1
        repo = check_clean(repo_path, passphrase=passphrases[current])
        try:
            assert contents(repo, "refs/heads/b") == written, n
        finally:
            repo.close()
        assert not (repo_path / ".steve" / rk.STAGING).exists()
    # the kills really spread over the operation: both outcomes, and mid-way states
    assert outcomes["old"] >= 5 and outcomes["new"] >= 5, outcomes
    assert interrupted >= 5, f"only {interrupted} kills left a rekey half done"
