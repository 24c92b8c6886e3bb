"""The bounded git object reader: byte-identical to git on real packs (offset and
ref deltas, loose objects), and typed refusals for objects that lie."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from dulwich.repo import Repo as GitRepo

from steve.errors import GitFailure, GitObjectTooLarge
from steve.gitbridge.reader import MAX_DELTA_DEPTH, MAX_INLINE, ObjectReader, apply_delta

from .conftest import Git
from .hostile import entry_header, fake_sha, ofs_encoding, varint, write_loose, write_pack, zeros

_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def all_objects(git: Git, where: Path) -> dict[bytes, tuple[int, bytes]]:
    listing = git(
        where, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"
    ).stdout.decode()
    out = {}
    for line in listing.splitlines():
        sha, kind = line.split()
        data = git(where, "cat-file", kind, sha).stdout
        out[bytes.fromhex(sha)] = (_TYPES[kind.encode()], data)
    return out


@pytest.mark.parametrize("offsets", [True, False], ids=["ofs-delta", "ref-delta"])
def test_reads_what_git_reads_from_delta_packs(
    tmp_path: Path, git: Git, offsets: bool
) -> None:
    work = tmp_path / "w"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    text = b"".join(b"line %d of a file that changes a little\n" % i for i in range(3000))
    for i in range(12):
        (work / "f.txt").write_bytes(text + b"edit %d\n" % i * (i + 1))
        (work / f"g{i % 3}.txt").write_bytes(text[i * 100 :])
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"c{i}")
    git(work, "-c", f"repack.useDeltaBaseOffset={str(offsets).lower()}", "repack", "-adf", "-q")
    verify = git(work, "verify-pack", "-v", *map(str, (work / ".git/objects/pack").glob("*.idx")))
    assert b"chain length = " in verify.stdout  # the pack holds deltas
    (work / "loose.txt").write_bytes(b"loose\n")
    git(work, "add", "loose.txt")  # a loose blob next to the pack
    expected = all_objects(git, work)
    repo = GitRepo(str(work))
    try:
        reader = ObjectReader(repo)
        for sha, (type_num, data) in expected.items():
            assert reader.read(sha) == (type_num, data), sha.hex()
            assert reader.info(sha) == (type_num, len(data)), sha.hex()
            kind, size, chunks = reader.stream(sha)
            assert (kind, size, b"".join(chunks)) == (type_num, len(data), data)
    finally:
        repo.close()


def _bare(tmp_path: Path, git: Git) -> tuple[Path, Path]:
    where = tmp_path / "hostile.git"
    git(tmp_path, "init", "-q", "--bare", str(where))
    return where, where / "objects"


def test_declared_sizes_are_checked_before_inflating(tmp_path: Path, git: Git) -> None:
    where, objects = _bare(tmp_path, git)
    # a zip bomb: 64 MiB of zeros in about 64 KiB
    bomb = write_loose(objects, b"blob", zeros(64 << 20), 64 << 20)
    assert (objects / bomb.hex()[:2] / bomb.hex()[2:]).stat().st_size < 200_000
    # a tree that claims a terabyte, in a pack
    tree_sha = fake_sha(1)
    tree = entry_header(2, 1 << 40) + zlib.compress(b"tiny")
    # a blob that inflates to more than it declares
    liar_sha = fake_sha(2)
    liar = entry_header(3, 10) + zlib.compress(b"x" * 5000)
    write_pack(objects / "pack", [(tree_sha, tree), (liar_sha, liar)])
    repo = GitRepo(str(where))
    try:
        reader = ObjectReader(repo)
        with pytest.raises(GitObjectTooLarge):
            reader.read(bomb)
        kind, size, chunks = reader.stream(bomb)  # a blob streams: bounded pieces
        assert (kind, size) == (3, 64 << 20)
        assert max(len(c) for c in chunks) <= 1 << 20
        with pytest.raises(GitObjectTooLarge):
            reader.read(tree_sha)
        with pytest.raises(GitFailure, match="more than its declared"):
            reader.read(liar_sha)
    finally:
        repo.close()


def test_expanding_and_deep_deltas_are_refused(tmp_path: Path, git: Git) -> None:
    where, objects = _bare(tmp_path, git)
    base = b"A" * 4096
    entries = [(fake_sha(10), entry_header(3, len(base)) + zlib.compress(base))]
    # a 30-byte delta that claims a 1 GiB result made of copies of the base
    copy_all = bytes([0x80 | 0x10 | 0x20, 0x00, 0x10])  # copy 4096 bytes from offset 0
    delta = varint(len(base)) + varint(1 << 30) + copy_all * 4
    offset_base = 12
    offset_delta = offset_base + len(entries[0][1])
    expanding = entry_header(6, len(delta)) + ofs_encoding(offset_delta - offset_base)
    entries.append((fake_sha(11), expanding + zlib.compress(delta)))
    # a delta that lies: declares 100 bytes, copies 16 KiB
    lying = varint(len(base)) + varint(100) + copy_all * 4
    offset_lying = offset_delta + len(entries[1][1])
    lie = entry_header(6, len(lying)) + ofs_encoding(offset_lying - offset_base)
    entries.append((fake_sha(12), lie + zlib.compress(lying)))
    # a chain deeper than git allows, each delta copying its base
    ident = varint(len(base)) + varint(len(base)) + copy_all
    offset = offset_lying + len(entries[2][1])
    previous = offset_base
    for i in range(MAX_DELTA_DEPTH + 5):
        raw = entry_header(6, len(ident)) + ofs_encoding(offset - previous) + zlib.compress(ident)
        entries.append((fake_sha(100 + i), raw))
        previous, offset = offset, offset + len(raw)
    write_pack(objects / "pack", entries)
    repo = GitRepo(str(where))
    try:
        reader = ObjectReader(repo)
        with pytest.raises(GitObjectTooLarge):
            reader.read(fake_sha(11))
        with pytest.raises(GitFailure, match="more than its declared"):
            reader.read(fake_sha(12))
        assert reader.read(fake_sha(100 + 50)) == (3, base)  # a chain of 51 is fine
        with pytest.raises(GitObjectTooLarge, match="deltas deep"):
            reader.read(fake_sha(100 + MAX_DELTA_DEPTH + 4))
    finally:
        repo.close()


def test_apply_delta_checks_every_op() -> None:
    base = b"0123456789"
    good = varint(10) + varint(4) + bytes([0x91, 2, 4])  # copy offset 2, size 4
    assert apply_delta(base, good, MAX_INLINE) == b"2345"
    with pytest.raises(GitFailure):  # copy past the base
        apply_delta(base, varint(10) + varint(4) + bytes([0x91, 8, 4]), MAX_INLINE)
    with pytest.raises(GitFailure):  # wrong base size
        apply_delta(base, varint(11) + varint(4) + bytes([0x91, 2, 4]), MAX_INLINE)
    with pytest.raises(GitFailure):  # truncated op
        apply_delta(base, varint(10) + varint(4) + bytes([0x91, 2]), MAX_INLINE)
    with pytest.raises(GitFailure):  # reserved op 0
        apply_delta(base, varint(10) + varint(4) + b"\x00", MAX_INLINE)
    with pytest.raises(GitObjectTooLarge):
        apply_delta(base, varint(10) + varint(MAX_INLINE + 1), MAX_INLINE)
