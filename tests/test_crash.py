"""Crash safety: SIGKILL a writer at random moments, then the repository must be sound.

A real child process ingests objects in big batched transactions, builds
trees, moves refs with compare-and-swap, tags and garbage-collects, in a
loop; the parent kills it with SIGKILL after a seeded random delay.  After
every kill: the repository opens, ``fsck`` is clean and every ref (and
reflog entry) points at an object that exists.  A second variant kills a
shell loop of real ``steve hash-object -w --stdin-paths`` / ``steve
update-ref`` processes.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.conftest import PASSPHRASE

pytestmark = pytest.mark.slow

SEED = 20261122

CHILD = r"""
import io, os, random, sys, time
from steve.errors import RefNotFound
from steve.objects.model import CHUNK_SIZE, Blob, Mode, Tree, TreeEntry
from steve.repo import Repo
from steve.store.kdf import KdfParams

root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
repo = Repo.open(root, passphrase="pw")
print("ready", flush=True)
i = 0
while True:
    entries = []
    with repo.writer() as w:
        for j in range(rng.randint(100, 5000)):
            oid = w.add(Blob(os.urandom(rng.randint(0, 3000))))
            entries.append(TreeEntry(f"f{j}", Mode.FILE, oid))
        if rng.random() < 0.3:  # a chunked blob: chunks and index in different batches
            big = w.add_stream(io.BytesIO(os.urandom(2 * CHUNK_SIZE + rng.randint(1, 999))))
            entries.append(TreeEntry("big", Mode.FILE, big))
        tree = w.add(Tree.from_entries(entries))
    head = repo.refs.resolve("refs/heads/main")
    repo.update_ref("refs/heads/main", tree, head.target if head else None, message=f"ingest {i}")
    repo.update_ref(f"refs/heads/b{i % 4}", tree, message="branch")
    if i % 3 == 0:
        repo.create_tag(f"t{i % 6}", tree, message=f"tag {i}", force=True)
    if i % 4 == 3:
        try:
            repo.delete_ref(f"refs/heads/b{(i + 1) % 4}")
        except RefNotFound:
            pass
    if i % 5 == 4:
        repo.gc(prune_before=int(time.time()) + 3600)  # prune all unreachable now
    print("moved", i, flush=True)
    i += 1
"""

CLI_LOOP = r"""
set -u
i=0
while true; do
  steve hash-object -w --stdin-paths < "$LIST" > "$WORK/ids.$i"
  id=$(tail -n 1 "$WORK/ids.$i")
  [ -n "$id" ] && steve update-ref -m "cli $i" refs/heads/cli "$id"
  steve update-ref "refs/heads/c$((i % 3))" "$id"
  i=$((i + 1))
done
"""


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert line.strip() == b"ready", f"child did not start: {line!r}"
    assert time.monotonic() < deadline


def wait_moved(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Block until the child reports that it committed a batch and moved main."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        assert line, f"child exited before it moved main: {proc.poll()}"
        if line.startswith(b"moved"):
            return
    raise AssertionError("child did not commit a batch within the timeout")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def check_sound(root: Path) -> tuple[int, int]:
    """Open, fsck, and check every ref and reflog entry; returns (objects, refs)."""
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        report = repo.fsck()
        assert report.ok, [str(p) for p in report.problems[:10]]
        refs = repo.backend.list_refs("")
        for name, record in refs:
            if record.target is not None:
                assert repo.has_object(record.target), f"{name} -> missing {record.target}"
        head = repo.head()
        assert head is not None and head.symbolic == "refs/heads/main"
        if head.target is not None:
            tree = repo.read_object(head.target)
            assert tree.type.value == "tree"
            assert repo.reflog("refs/heads/main")[0].new == head.target
        for ref in repo.backend.reflog_refs():
            for entry in repo.backend.reflog(ref):
                for oid in (entry.old, entry.new):
                    assert oid is None or repo.has_object(oid)
        return report.objects, len(refs)


def test_sigkill_during_bulk_ingest(tmp_path: Path, fast_kdf: KdfParams) -> None:
    """12 kills: three fresh repositories killed four times each (keeps fsck time bounded)."""
    rng = random.Random(SEED)
    start = time.monotonic()
    moved = 0
    for group in range(3):
        root = tmp_path / f"g{group}"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        objects = 0
        for n in range(4):
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(root), str(rng.randrange(2**32))],
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            try:
                wait_ready(proc)
                if n % 2 == 1:
                    # On a slow machine every kill could land before the first
                    # commit; every other round is killed only after one landed,
                    # somewhere inside the next batch.
                    wait_moved(proc)
                time.sleep(rng.uniform(0.02, 0.8))
                assert proc.poll() is None, f"child {group}/{n} exited early: {proc.returncode}"
            finally:
                kill_group(proc)
            objects, _ = check_sound(root)
        # the writer really did work: objects accumulated and main moved
        assert objects > 500
        with Repo.open(root, passphrase=PASSPHRASE) as again:
            head = again.head()
            if head is not None and head.target is not None:
                moved += 1
                assert len(again.reflog("refs/heads/main")) >= 1
    assert moved >= 1, "no child ever got as far as moving refs/heads/main"
    assert time.monotonic() - start < 180  # bounded, with room for a loaded CI machine


def test_sigkill_cli_ingest_loop(repo: Repo, repo_path: Path, tmp_path: Path) -> None:
    repo.close()
    work = tmp_path / "files"
    work.mkdir()
    names = []
    for i in range(1500):
        p = work / f"f{i:05d}"
        p.write_bytes(os.urandom(1024))
        names.append(str(p))
    listing = tmp_path / "list"
    listing.write_text("\n".join(names) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(
        STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(repo_path), LIST=str(listing), WORK=str(tmp_path)
    )
    rng = random.Random(SEED + 1)
    for n in range(4):
        proc = subprocess.Popen(
            ["bash", "-c", "echo ready; " + CLI_LOOP],
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            wait_ready(proc)
            time.sleep(rng.uniform(0.3, 2.5))
            assert proc.poll() is None, f"loop {n} exited early with {proc.returncode}"
        finally:
            kill_group(proc)
        check_sound(repo_path)
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        cli = again.backend.read_ref("refs/heads/cli")
        assert cli is not None and cli.target is not None
        assert again.read_blob(cli.target) == Path(names[-1]).read_bytes()
