"""REF_DELTA chains in a hostile pack: a loop (A's base is B, B's is A), a delta that
is its own base, and chains thousands deep are resolved iteratively: a typed
GitFailure or GitObjectTooLarge, never a RecursionError (exit 10)."""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import pytest

from steve.errors import GitFailure, GitObjectTooLarge
from steve.gitbridge import import_git, verify_git
from steve.gitbridge.convert import build_tree
from steve.gitbridge.reader import MAX_DELTA_DEPTH, ObjectReader
from steve.gitbridge.target import open_git
from steve.repo import Repo

from .hostile import entry_header, fake_sha, varint, write_loose, write_pack

BASE = b"A" * 64
COPY_ALL = bytes([0x90, len(BASE)])  # copy len(BASE) bytes from offset 0
IDENTITY = varint(len(BASE)) + varint(len(BASE)) + COPY_ALL


def ref_delta(sha: bytes, base: bytes) -> tuple[bytes, bytes]:
    return sha, entry_header(7, len(IDENTITY)) + base + zlib.compress(IDENTITY)


def repository(root: Path, shape: str) -> tuple[Path, bytes]:
    """A bare repository whose refs/heads/main holds the hostile object as its manifest."""
    where = root / shape
    subprocess.run(["git", "init", "-q", "--bare", str(where)], check=True)
    objects = where / "objects"
    a, b = fake_sha(1), fake_sha(2)
    if shape == "loop":
        entries, target = [ref_delta(a, b), ref_delta(b, a)], a
    elif shape == "self":
        entries, target = [ref_delta(a, a)], a
    else:
        n = int(shape)
        entries = [(fake_sha(10), entry_header(3, len(BASE)) + zlib.compress(BASE))]
        entries += [ref_delta(fake_sha(11 + i), fake_sha(10 + i)) for i in range(n)]
        target = fake_sha(10 + n)
    write_pack(objects / "pack", entries)
    tree = build_tree([(b"manifest.cbor", 0o100644, target)])
    t = write_loose(objects, b"tree", iter([tree]), len(tree))
    body = (  # dressed as an export, so verify-git reads the manifest
        b"tree %s\nauthor A <a> 1 +0000\ncommitter A <a> 1 +0000\n\nx\n\n"
        b"Steve-Object: %s\nSteve-Kind: design\n" % (t.hex().encode(), b"ab" * 32)
    )
    c = write_loose(objects, b"commit", iter([body]), len(body))
    (where / "refs" / "heads" / "main").write_text(c.hex() + "\n")
    return where, target


@pytest.mark.parametrize("shape", ["loop", "self"])
def test_a_ref_delta_loop_is_damage_not_a_recursion_error(
    tmp_path: Path, steve_repo: Repo, shape: str
) -> None:
    where, target = repository(tmp_path, shape)
    git = open_git(where)
    try:
        reader = ObjectReader(git)
        with pytest.raises(GitFailure, match="loops back"):
            reader.info(target)
        with pytest.raises(GitFailure, match="loops back"):
            reader.read(target)
    finally:
        git.close()
    with pytest.raises(GitFailure, match="loops back"):
        verify_git(where)
    with pytest.raises(GitFailure, match="loops back"):
        import_git(steve_repo, where, "main")


def test_a_deep_ref_delta_chain_is_read_or_refused_without_recursion(tmp_path: Path) -> None:
    deep, target = repository(tmp_path, str(MAX_DELTA_DEPTH - 1))
    git = open_git(deep)
    try:
        reader = ObjectReader(git)
        assert reader.info(target) == (3, len(BASE))
        assert reader.read(target) == (3, BASE)
    finally:
        git.close()
    too_deep, target = repository(tmp_path, str(MAX_DELTA_DEPTH + 10))
    git = open_git(too_deep)
    try:
        reader = ObjectReader(git)
        with pytest.raises(GitObjectTooLarge):
            reader.info(target)
        with pytest.raises(GitObjectTooLarge):
            reader.read(target)
    finally:
        git.close()
