"""An id on standard output means the object is durable (issue 12, item 2).

Commands that print ids while they ingest (``hash-object -w --stdin-paths``,
``freeze --batch``) are killed with SIGKILL at random moments; every id
printed before the kill must read back from the reopened repository.  And a
write that fails (disk full) prints no id at all.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.objects.model import CHUNK_SIZE
from steve.objects.oid import ObjectId
from steve.porcelain.freeze import read_manifest
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.conftest import PASSPHRASE
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.slow

SEED = 20261201
ROUNDS = 20


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(root))
    env.pop("PYTHONUNBUFFERED", None)  # a normally buffered stdout, as in real use
    return env


def _kill_after(
    args: list[str],
    stdin: Path,
    stdout: Path,
    env: dict[str, str],
    delay: float,
    *,
    wait: bool = False,
    after_output: bool = False,
) -> int:
    with stdin.open("rb") as fin, stdout.open("wb") as fout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "steve", *args],
            stdin=fin,
            stdout=fout,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        if wait:
            return proc.wait(timeout=300)
        if after_output:  # the delay counts from the first byte of output
            while proc.poll() is None and stdout.stat().st_size == 0:
                time.sleep(0.002)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=60)


class _Window:
    """When to kill: a random moment inside the shortest whole run seen so far.

    The first (calibration) run pays cold caches and whatever else the shared
    machine is doing, so it can be much longer than later runs; a round that
    finishes before its kill is itself a whole run, and shrinks the window.
    Every third round is killed instead a random moment after its first line of
    output (within a tenth of the whole run), so some kills land while ids are
    being printed however the timing of a loaded machine shifts (ids come only
    after the first batch commits, late in a short run).
    """

    def __init__(self, rng: random.Random, floor: float) -> None:
        self.rng, self.floor, self.whole = rng, floor, float("inf")
        self.round = 0

    def run(self, args: list[str], stdin: Path, stdout: Path, env: dict[str, str]) -> int:
        if self.whole == float("inf"):
            self.whole = _timed(args, stdin, stdout, env)
            return 0
        self.round += 1
        after_output = self.round % 3 == 0
        if after_output:
            delay = self.rng.uniform(0.0, 0.1 * self.whole)
        else:
            delay = self.rng.uniform(self.floor, max(self.floor, 0.85 * self.whole))
        start = time.monotonic()
        rc = _kill_after(args, stdin, stdout, env, delay, after_output=after_output)
        if rc == 0:
            self.whole = min(self.whole, time.monotonic() - start)
        return rc


def _printed(path: Path) -> list[str]:
    """The complete lines the child wrote before it died."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().splitlines()


def _timed(args: list[str], stdin: Path, stdout: Path, env: dict[str, str]) -> float:
    """One uninterrupted run: how long the whole input takes on this (shared) machine."""
    start = time.monotonic()
    assert _kill_after(args, stdin, stdout, env, 0.0, wait=True) == 0
    return time.monotonic() - start


def test_hash_object_ids_printed_before_sigkill_read_back(
    tmp_path: Path, fast_kdf: KdfParams
) -> None:
    rng = random.Random(SEED)
    args = ["hash-object", "-w", "--stdin-paths"]
    # a tmpfs keeps the other tests' disk traffic out of the kill timing
    with tmpfs(tmp_path / "fs", size_kib=1 << 20) as fs:
        root = fs / "repo"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        files = fs / "files"
        files.mkdir()
        listing, out = fs / "list", fs / "ids"
        window = _Window(rng, 0.1)
        killed = printed_total = 0
        for round_ in range(ROUNDS + 1):
            # fresh contents each round (ids from earlier rounds would already be
            # stored); 4 KiB files fill an 8 MiB batch every ~2,000 files, so a
            # round spans batches, and one chunked blob commits its chunks and its
            # index in different batches
            names = []
            for i in range(4500):
                p = files / f"f{i:05d}"
                p.write_bytes(os.urandom(3 * CHUNK_SIZE + 7 if i == 2500 else 4000))
                names.append(str(p))
            listing.write_text("\n".join(names) + "\n")
            # round 0 calibrates: the kill window is one whole run
            rc = window.run(args, listing, out, _env(root))
            killed += rc == -signal.SIGKILL
            ids = _printed(out)
            printed_total += len(ids) if rc else 0
            with Repo.open(root, passphrase=PASSPHRASE) as repo:
                for name, hex_id in zip(names, ids, strict=False):
                    oid = ObjectId.from_hex(hex_id)
                    assert repo.has_object(oid), f"round {round_}: printed {hex_id} not stored"
                    assert repo.read_blob(oid) == Path(name).read_bytes()
            if rc == 0:
                assert len(ids) == len(names)
    assert killed >= ROUNDS // 2, f"only {killed} of {ROUNDS} rounds were killed mid-ingest"
    assert printed_total > 0, "no killed round had printed anything"


def test_freeze_batch_ids_printed_before_sigkill_read_back(
    tmp_path: Path, fast_kdf: KdfParams
) -> None:
    rng = random.Random(SEED + 1)
    args = ["freeze", "research", "-", "--batch"]
    with tmpfs(tmp_path / "fs", size_kib=1 << 20) as fs:
        root = fs / "repo"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        drafts, out = fs / "drafts.jsonl", fs / "ids"
        window = _Window(rng, 0.2)
        killed = printed_total = 0
        for round_ in range(ROUNDS + 1):
            # ~5 KB manifests: an 8 MiB batch commits every ~1,700 drafts
            titles = [f"r{round_} t{i}" for i in range(3600)]
            question = [{"id": "RQ-001", "question": "q" * 5000, "status": "open"}]
            drafts.write_text(
                "".join(json.dumps({"title": t, "questions": question}) + "\n" for t in titles)
            )
            rc = window.run(args, drafts, out, _env(root))
            killed += rc == -signal.SIGKILL
            ids = _printed(out)
            printed_total += len(ids) if rc else 0
            with Repo.open(root, passphrase=PASSPHRASE) as repo:
                for title, hex_id in zip(titles, ids, strict=False):
                    oid = ObjectId.from_hex(hex_id)
                    assert repo.has_object(oid), f"round {round_}: printed {hex_id} not stored"
                    assert read_manifest(repo, oid).manifest.body["title"] == title
            if rc == 0:
                assert len(ids) == len(titles)
    assert killed >= ROUNDS // 2, f"only {killed} of {ROUNDS} rounds were killed mid-freeze"
    assert printed_total > 0, "no killed round had printed anything"


@pytest.mark.parametrize("mode", ["--stdin", "file"])
def test_hash_object_prints_no_id_when_the_write_fails(
    tmp_path: Path, fast_kdf: KdfParams, mode: str
) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(os.urandom(200_000))
    with tmpfs(tmp_path / "disk", size_kib=2048) as disk:
        root = disk / "repo"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        fill(disk, leave_kib=120)
        args = ["hash-object", "-w"] + (["--stdin"] if mode == "--stdin" else [str(data)])
        with data.open("rb") as fin:
            proc = subprocess.run(
                [sys.executable, "-m", "steve", *args],
                stdin=fin,
                capture_output=True,
                env=_env(root),
                check=False,
            )
    assert proc.returncode == 9, proc.stderr.decode()
    assert proc.stdout == b"", "an id was printed for an object that was not stored"
    assert b"Traceback" not in proc.stderr
