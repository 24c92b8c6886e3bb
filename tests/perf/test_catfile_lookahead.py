"""``cat-file --batch`` reading ids from a regular file looks them up in batches
(issue 13); its output must be byte for byte what the one-line-at-a-time path
gives when the same ids come through a pipe, for every kind of request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from steve.objects.model import CHUNK_SIZE, Blob, Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.events.conftest import raw_connect


def _run(args: list[str], env: dict[str, str], stdin: Path, *, via_pipe: bool) -> tuple[int, bytes]:
    cmd = [sys.executable, "-m", "steve", *args]
    if via_pipe:
        proc = subprocess.run(cmd, input=stdin.read_bytes(), capture_output=True, env=env)
    else:
        with stdin.open("rb") as fh:
            proc = subprocess.run(cmd, stdin=fh, capture_output=True, env=env)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("mode", ["--batch", "--batch-check"])
def test_lookahead_answers_exactly_like_the_line_by_line_path(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    small = [repo.write_blob(os.urandom(n)) for n in (0, 1, 100, 70_000)]
    big = repo.write_blob(os.urandom(CHUNK_SIZE + 10))  # chunked: streamed, not batched
    tree = repo.write(Tree.from_entries([TreeEntry("a", Mode.FILE, small[1])]))
    repo.update_ref("refs/heads/main", tree)
    ghost = ObjectId.of(b"not stored")
    lines = [o.hex for o in small] + [big.hex, tree.hex, "main", small[2].hex[:10]]
    lines += [ghost.hex, "no-such-ref", "", small[0].hex]  # a blank line, a repeat
    lines *= 40  # several look-ahead batches' worth of small reads
    ids = tmp_path / "ids"
    ids.write_text("\n".join(lines) + "\n")
    env = dict(steve_env)
    piped = _run(["cat-file", mode], env, ids, via_pipe=True)
    from_file = _run(["cat-file", mode], env, ids, via_pipe=False)
    assert piped[0] == from_file[0] == 0
    assert from_file[1] == piped[1]
    assert from_file[1].count(b" missing\n") == 2 * 40


def test_lookahead_still_refuses_a_corrupt_blob(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    good = repo.write_blob(b"good")
    bad = repo.write(Blob(b"soon garbage"))
    assert repo.key is not None and repo.steve_dir is not None
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (b"garbage", bad.raw))
    conn.close()
    ids = tmp_path / "ids"
    ids.write_text(f"{good.hex}\n{bad.hex}\n")
    code, out = _run(["cat-file", "--batch"], dict(steve_env), ids, via_pipe=False)
    assert code != 0
    assert out.startswith(f"{good.hex} blob 4\ngood\n".encode())
    assert b"garbage" not in out
