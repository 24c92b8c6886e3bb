"""Memory under large and hostile git repositories, measured: ``import-git`` of a
300 MiB blob and ``verify-git`` of a few-MB hostile repository (zip bombs, a
terabyte-sized declared object, an expanding delta, a delta chain deeper than
git allows) each stay under 150 MiB peak RSS, in a subprocess of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.gitbridge import export_git, verify_git
from steve.gitbridge.convert import build_tree
from steve.gitbridge.reader import MAX_DELTA_DEPTH
from steve.objects.model import ObjectType
from steve.repo import Repo
from steve.store.kdf import KdfParams

from .conftest import PASSPHRASE, Git
from .helpers import write_manifest
from .hostile import entry_header, fake_sha, ofs_encoding, varint, write_loose, write_pack, zeros

pytestmark = pytest.mark.slow

LIMIT_MIB = 150
HOSTILE_REFS = ["refs/heads/bomb", "refs/heads/expand", "refs/heads/huge", "refs/heads/deep"]
HOSTILE_REFS += ["refs/tags/deep"]
BIG = 300 << 20
_MEASURE = (
    "import resource, subprocess, sys\n"
    "proc = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "sys.stderr.buffer.write(proc.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.returncode)\n"
)


def peak_rss(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(peak RSS in MiB, exit code, stderr) of ``steve ARGS`` run in a fresh wrapper
    process whose only child it is (so no earlier child's peak counts)."""
    steve = [sys.executable, "-c", "from steve.cli.main import main; main()"]
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *steve, *args],
        env=env,
        capture_output=True,
        check=True,
        timeout=600,
    )
    kib, code = proc.stdout.split()
    return int(kib) / 1024, int(code), proc.stderr.decode(errors="replace")


def steve_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env["STEVE_PASSPHRASE"] = PASSPHRASE
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["HOME"] = str(tmp_path)
    return env


def numbered_blocks(total: int) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB blocks, each different (STEVE chunks stay distinct)
    but compressible (git's zlib stays fast)."""
    pattern = b"STEVE memory test block. " * ((1 << 20) // 25 + 1)
    for i in range(total >> 20):
        yield (b"%016d" % i + pattern)[: 1 << 20]


def test_import_git_of_a_300_mib_blob_stays_under_150_mib(
    tmp_path: Path, fast_kdf: KdfParams, git: Git, git_env: dict[str, str]
) -> None:
    src = tmp_path / "src"
    git(tmp_path, "init", "-q", "-b", "main", str(src))
    fast_import = subprocess.Popen(
        ["git", "-C", str(src), "fast-import", "--quiet", "--big-file-threshold=1m"],
        stdin=subprocess.PIPE,
        env=git_env,
    )
    assert fast_import.stdin is not None
    fast_import.stdin.write(b"blob\nmark :1\ndata %d\n" % BIG)
    for block in numbered_blocks(BIG):
        fast_import.stdin.write(block)
    fast_import.stdin.write(
        b"\ncommit refs/heads/main\ncommitter A <a@example.org> 1700000000 +0000\n"
        b"data 4\nbig\nM 100644 :1 big.bin\n\n"
    )
    fast_import.stdin.close()
    assert fast_import.wait(timeout=300) == 0
    root = tmp_path / "steve"
    Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()

    peak, code, err = peak_rss(
        ["--repo", str(root), "import-git", str(src), "main", "--ref", "big"], steve_env(tmp_path)
    )
    assert code == 0, err
    print(f"import-git of a {BIG >> 20} MiB blob: peak RSS {peak:.1f} MiB")
    assert peak < LIMIT_MIB, f"import-git peaked at {peak:.0f} MiB"
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        (entry,) = repo.ls_tree(repo.rev_parse("refs/imports/big"))
        assert repo.object_info(entry.oid).size == BIG
        first = next(repo.iter_content(entry.oid))
        assert first.startswith(b"%016d" % 0)


def _commit(objects: Path, tree: bytes, label: str) -> bytes:
    body = (
        b"tree %s\nauthor A <a> 1 +0000\ncommitter A <a> 1 +0000\n\n%s\n\n"
        b"Steve-Object: %s\nSteve-Kind: design\n"
        % (tree.hex().encode(), label.encode(), b"ab" * 32)
    )
    return write_loose(objects, b"commit", iter([body]), len(body))


def _manifest_commit(objects: Path, cbor: bytes, label: str) -> bytes:
    """A commit dressed as an export whose manifest.cbor is the object ``cbor``."""
    tree = build_tree([(b"manifest.cbor", 0o100644, cbor)])
    return _commit(objects, write_loose(objects, b"tree", iter([tree]), len(tree)), label)


def hostile_repository(root: Path, steve_repo: Repo) -> Path:
    # a genuine export with a 256 MiB blob attachment (verify streams it)
    big = steve_repo.write_stream(_Reader(zeros(256 << 20)))
    receipt = write_manifest(
        steve_repo,
        ObjectType.BUILD_RECEIPT,
        "r",
        [],
        time=1_700_000_000,
        body={"node": "build", "outputs": {"big": big.hex}},
        links=[big],
    )
    steve_repo.update_ref("refs/heads/main", receipt)
    where = root / "hostile"
    export_git(steve_repo, where, ["main"], bare=True)
    objects = where / "objects"
    refs: dict[str, bytes] = {}
    # 1. a zip bomb: manifest.cbor inflates to 1 GiB
    bomb = write_loose(objects, b"blob", zeros(1 << 30), 1 << 30)
    refs["refs/heads/bomb"] = _manifest_commit(objects, bomb, "bomb")
    # 2. a pack: a blob declaring a terabyte, an expanding delta, a too-deep chain
    base = b"A" * 4096
    entries = [(fake_sha(10), entry_header(3, len(base)) + zlib.compress(base))]
    copy_all = bytes([0x80 | 0x10 | 0x20, 0x00, 0x10])
    expanding = varint(len(base)) + varint(1 << 33) + copy_all * 64
    off_delta = 12 + len(entries[0][1])
    entries.append(
        (
            fake_sha(11),
            entry_header(6, len(expanding))
            + ofs_encoding(off_delta - 12)
            + zlib.compress(expanding),
        )
    )
    off = off_delta + len(entries[1][1])
    entries.append((fake_sha(12), entry_header(3, 1 << 40) + zlib.compress(b"tiny")))
    off += len(entries[2][1])
    ident = varint(len(base)) + varint(len(base)) + copy_all
    previous = 12
    for i in range(MAX_DELTA_DEPTH + 5):
        raw = entry_header(6, len(ident)) + ofs_encoding(off - previous) + zlib.compress(ident)
        entries.append((fake_sha(100 + i), raw))
        previous, off = off, off + len(raw)
    write_pack(objects / "pack", entries)
    refs["refs/heads/expand"] = _manifest_commit(objects, fake_sha(11), "expand")
    refs["refs/heads/huge"] = _manifest_commit(objects, fake_sha(12), "huge")
    refs["refs/heads/deep"] = _manifest_commit(objects, fake_sha(100 + MAX_DELTA_DEPTH + 4), "d")
    refs["refs/tags/deep"] = fake_sha(100 + MAX_DELTA_DEPTH + 4)
    for name, sha in refs.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(sha.hex() + "\n")
    return where


class _Reader:
    """A file object over ``zeros(...)`` for Repo.write_stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def read(self, n: int) -> bytes:
        while len(self._left) < n:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._left += nxt
        out, self._left = self._left[:n], self._left[n:]
        return out


def test_verify_git_of_a_hostile_repository_stays_under_150_mib(
    steve_repo: Repo, tmp_path: Path
) -> None:
    where = hostile_repository(tmp_path, steve_repo)
    size = sum(p.stat().st_size for p in where.rglob("*") if p.is_file())
    assert size < 8 << 20, f"the hostile repository is {size} bytes"
    peak, code, err = peak_rss(["verify-git", str(where)], steve_env(tmp_path))
    print(f"verify-git of a {size / (1 << 20):.1f} MiB hostile repository: peak RSS {peak:.1f} MiB")
    assert peak < LIMIT_MIB, f"verify-git peaked at {peak:.0f} MiB"
    assert code == 9, err  # refused: problems listed, STEVE-GIT-004
    assert "STEVE-GIT-004" in err
    assert "Traceback" not in err
    # the genuine commit (and its 256 MiB attachment) verifies; each hostile one is listed
    report = verify_git(where)
    hostile = {(where / name).read_text().strip() for name in HOSTILE_REFS}
    assert {p.git_id for p in report.problems} == hostile
    assert report.commits == 1 + 4
