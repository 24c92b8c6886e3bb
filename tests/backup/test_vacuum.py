"""`steve vacuum`: the space of deleted objects goes back to the file system, with
readers and writers in other processes carrying on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from steve.objects.model import Blob
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.conftest import PASSPHRASE
from tests.test_crash import wait_ready

READER = r"""
import sys, time
from steve.repo import Repo

repo = Repo.open(sys.argv[1], passphrase="pw")
objects = repo.iter_objects()   # a read transaction stays open while it is consumed
first = next(objects)
print("ready", flush=True)
sys.stdin.readline()
n = 1 + sum(1 for _ in objects)
print(n, repo.read_blob(repo.rev_parse("refs/heads/kept")).decode(), flush=True)
"""


def _garbage(repo: Repo, n: int) -> list[Blob]:
    blobs = [Blob(os.urandom(3000)) for _ in range(n)]
    with repo.writer() as w:
        oids = [w.add(b) for b in blobs]
    with repo.transaction() as tx:  # gone without a vacuum: the pages stay in the file
        tx.delete_objects(oids)
    return blobs


def test_vacuum_gives_the_space_of_deleted_objects_back(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        repo.update_ref("refs/heads/kept", repo.write_blob(b"kept"))
        _garbage(repo, 3000)
        repo.backend.checkpoint()
        report = repo.vacuum()
        assert report.free_pages > 2000
        assert report.reclaimed > 8 << 20, report
        assert report.after == repo.disk_usage()
        assert repo.vacuum().free_pages == 0  # nothing left to give back
        assert repo.fsck().ok
        assert repo.read_blob(repo.rev_parse("kept")) == b"kept"


def test_vacuum_runs_beside_a_reader_and_a_writer_in_other_processes(
    repo_path: Path, fast_kdf: KdfParams, steve_env: dict[str, str]
) -> None:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        repo.update_ref("refs/heads/kept", repo.write_blob(b"kept"))
        for i in range(20):
            repo.write_blob(b"live %d" % i)
        total = sum(1 for _ in repo.iter_objects())
        _garbage(repo, 2000)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(repo_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        wait_ready(reader)
        out = subprocess.run(
            [sys.executable, "-m", "steve", "vacuum", "--json"],
            env=steve_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        sizes = json.loads(out.stdout)
        assert sizes["free_pages"] > 1000 and sizes["after"] <= sizes["before"]
        # a writer goes on too
        with Repo.open(repo_path, passphrase=PASSPHRASE) as repo:
            repo.update_ref("refs/heads/after", repo.write_blob(b"after vacuum"))
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write(b"go\n")
        reader.stdin.flush()
        n, kept = reader.stdout.readline().decode().split()
    finally:
        reader.kill()
        reader.wait()
    assert (int(n), kept) == (total, "kept")  # the reader's snapshot was whole
    with Repo.open(repo_path, passphrase=PASSPHRASE) as repo:
        assert repo.fsck().ok
        assert repo.read_blob(repo.rev_parse("after")) == b"after vacuum"
        assert repo.disk_usage() < sizes["before"] // 4  # the reader gone, the file shrank


def test_gc_gives_the_space_back_too(repo_path: Path, fast_kdf: KdfParams) -> None:
    """gc ends with the same vacuum: it used to step incremental_vacuum once,
    which frees one page."""
    import time

    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        repo.update_ref("refs/heads/kept", repo.write_blob(b"kept"))
        with repo.writer() as w:
            for _ in range(2000):
                w.add(Blob(os.urandom(3000)))
        repo.backend.checkpoint()
        before = repo.disk_usage()
        report = repo.gc(prune_before=int(time.time()) + 10)
        assert report.pruned == 2000
        assert repo.backend.free_pages() == 0
        assert repo.disk_usage() < before // 4
