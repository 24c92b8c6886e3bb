"""Batch plumbing driven through pipes, and its buffered output to files.

``cat-file --batch`` and ``hash-object --stdin-paths`` buffer their output
for speed (see docs/benchmarks.md), but when stdout is a pipe every answer
must be flushed at once, like git, so a process can ask one question, read
the answer, then ask the next.  These run the real ``steve`` with a normally
buffered stdout (PYTHONUNBUFFERED removed) and would hang without the flush.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from steve.objects.model import CHUNK_SIZE
from steve.repo import Repo

TIMEOUT = 20.0


def _env(steve_env: dict[str, str]) -> dict[str, str]:
    env = dict(steve_env)
    env.pop("PYTHONUNBUFFERED", None)  # the bug only shows with a buffered stdout
    return env


class Reader:
    """Reads a child's stdout with a deadline instead of blocking forever."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def _more(self) -> None:
        ready, _, _ = select.select([self.fd], [], [], TIMEOUT)
        if not ready:
            pytest.fail(f"no answer within {TIMEOUT}s: output not flushed to the pipe")
        piece = os.read(self.fd, 1 << 16)
        if not piece:
            pytest.fail("child closed stdout early")
        self.buf += piece

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            self._more()
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "steve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def _ask(proc: subprocess.Popen[bytes], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()


def test_cat_file_batch_answers_each_request_over_a_pipe(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    blobs = [b"", b"one\n", os.urandom(3000)]
    ids = [repo.write_blob(b) for b in blobs]
    repo.close()
    proc = _spawn(["cat-file", "--batch"], _env(steve_env))
    reader = Reader(proc)
    try:
        for oid, data in zip(ids, blobs, strict=True):
            _ask(proc, oid.hex)
            assert reader.line() == f"{oid.hex} blob {len(data)}".encode()
            assert reader.exactly(len(data) + 1) == data + b"\n"
        _ask(proc, "f" * 64)
        assert reader.line() == f"{'f' * 64} missing".encode()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0


def test_cat_file_batch_check_answers_each_request_over_a_pipe(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    oid = repo.write_blob(b"x" * 10)
    repo.close()
    proc = _spawn(["cat-file", "--batch-check"], _env(steve_env))
    reader = Reader(proc)
    try:
        for _ in range(3):
            _ask(proc, oid.hex)
            assert reader.line() == f"{oid.hex} blob 10".encode()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0


def test_hash_object_stdin_paths_answers_each_path_over_a_pipe(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"in{i}"
        f.write_bytes(os.urandom(100 + i))
        files.append(f)
    proc = _spawn(["hash-object", "-w", "--stdin-paths"], _env(steve_env))
    reader = Reader(proc)
    got = []
    try:
        for f in files:
            _ask(proc, str(f))
            got.append(reader.line().decode())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0
    for f, hex_id in zip(files, got, strict=True):
        assert Repo.hash_stream(f.open("rb")).hex == hex_id
        assert repo.read_blob(repo.rev_parse(hex_id)) == f.read_bytes()


def test_cat_file_batch_to_a_file_is_complete(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    """The buffered path (stdout a regular file): every record, chunked blobs streamed."""
    blobs = [os.urandom(n) for n in (0, 1, 1024, 70_000, CHUNK_SIZE + 17)]
    ids = [repo.write_blob(b) for b in blobs]
    repo.close()
    requests = tmp_path / "ids"
    requests.write_text("".join(f"{oid.hex}\n" for oid in ids) + "nosuchrev\n")
    out = tmp_path / "out"
    with requests.open("rb") as fin, out.open("wb") as fout:
        subprocess.run(
            [sys.executable, "-m", "steve", "cat-file", "--batch"],
            stdin=fin,
            stdout=fout,
            env=_env(steve_env),
            check=True,
            timeout=60,
        )
    expected = b"".join(
        f"{oid.hex} blob {len(b)}\n".encode() + b + b"\n" for oid, b in zip(ids, blobs, strict=True)
    )
    assert out.read_bytes() == expected + b"nosuchrev missing\n"
