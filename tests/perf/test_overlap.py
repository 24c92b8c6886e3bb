"""Overlapped opening and committing (issue 13, goal 4).

``hash-object -w --stdin-paths`` and ``cat-file --batch`` open the repository on
a background thread (the Argon2id derivation overlaps reading the input), and
bulk ingest commits each full batch on a thread while the next one is prepared.
None of it may change what is stored or printed, let an id out before its
object is committed, or turn a wrong passphrase into anything but the clean
WrongKey error with nothing written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import steve.repo as repo_mod
from steve.cli import plumbing
from steve.errors import StorageError, WrongKey
from steve.objects.model import CHUNK_SIZE, Blob
from steve.objects.oid import ObjectId
from steve.repo import FIRST_BATCH_BYTES, BatchWriter, Repo
from steve.store.kdf import KdfParams
from tests.conftest import PASSPHRASE


def _count(repo: Repo) -> int:
    return sum(1 for _ in repo.iter_objects())


# --- the library: BatchWriter(overlap=True), Repo.open_background ---------------------


def test_overlapped_writer_commits_in_order_and_counts_durable_adds(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_mod, "BATCH_OBJECTS", 10)
    before = _count(repo)
    blobs = [os.urandom(50) for _ in range(35)]
    w = repo.writer(overlap=True)
    ids = []
    for i, b in enumerate(blobs):
        ids.append(w.add(Blob(b)))
        assert w.added == i + 1
        assert w.durable() <= w.added
        # whatever durable() reports is readable now
        for oid in ids[: w.durable()]:
            assert repo.has_object(oid)
    assert w.pending > 0
    w.flush()
    assert w.durable() == w.added == 35 and w.pending == 0
    assert w.written == 35
    assert _count(repo) == before + 35
    for oid, b in zip(ids, blobs, strict=True):
        assert repo.read_blob(oid) == b


def test_overlapped_writer_stores_what_the_plain_writer_stores(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_kdf: KdfParams
) -> None:
    monkeypatch.setattr(repo_mod, "BATCH_OBJECTS", 7)
    import io

    payloads = [os.urandom(n) for n in (0, 1, 30, 5000, 2 * CHUNK_SIZE + 3, 40)] * 5
    with repo.writer(overlap=True) as w:
        got = [w.add_stream(io.BytesIO(p)) for p in payloads]
    other = Repo.init(tmp_path / "other", passphrase=PASSPHRASE, kdf=fast_kdf)
    with other, other.writer() as plain:
        want = [plain.add_stream(io.BytesIO(p)) for p in payloads]
    assert got == want
    for oid, p in zip(got, payloads, strict=True):
        assert repo.read_blob(oid) == p
    assert not repo.fsck().problems


def test_a_failed_background_commit_is_raised_and_its_batch_is_not_durable(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_mod, "BATCH_OBJECTS", 5)
    real = repo.transaction
    calls = {"n": 0}

    @contextmanager
    def failing() -> Iterator[Any]:
        calls["n"] += 1
        with real() as tx:
            yield tx
            if calls["n"] == 2:  # the second batch's COMMIT fails (rolled back)
                raise StorageError("disk said no")

    monkeypatch.setattr(repo, "transaction", failing)
    before = _count(repo)
    w = repo.writer(overlap=True)
    ids = [w.add(Blob(os.urandom(20))) for _ in range(10)]  # two batches sealed
    with pytest.raises(StorageError, match="disk said no"):
        for _ in range(10):
            w.add(Blob(os.urandom(20)))  # the next seal collects the failure
            w.durable()
        w.flush()
    assert w.durable() == 5  # the first batch only
    assert all(repo.has_object(o) for o in ids[:5])
    assert not any(repo.has_object(o) for o in ids[5:10])
    w.discard()
    assert _count(repo) == before + 5


def test_writer_on_an_opening_repository_waits_for_it_at_the_first_batch(
    repo_path: Path, fast_kdf: KdfParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    monkeypatch.setattr(repo_mod, "BATCH_OBJECTS", 1 << 20)
    opened: list[Repo] = []

    def opener() -> Repo:
        opened.append(Repo.open(repo_path, passphrase=PASSPHRASE))
        return opened[0]

    w = BatchWriter(opener, overlap=True)
    size = 64 << 10
    for _ in range(FIRST_BATCH_BYTES // size - 1):
        w.add(Blob(os.urandom(size)))
    assert not opened  # the first batch fills before the repository is needed
    w.add(Blob(os.urandom(size)))
    w.add(Blob(os.urandom(size)))
    assert len(opened) == 1  # first batch sealed at FIRST_BATCH_BYTES, not BATCH_BYTES
    w.flush()
    assert w.durable() == w.added
    assert _count(opened[0]) == w.added
    opened[0].close()


def test_open_background_raises_what_open_raises(repo_path: Path, fast_kdf: KdfParams) -> None:
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    opening = Repo.open_background(repo_path, passphrase="not it")
    with pytest.raises(WrongKey):
        opening.result()
    with pytest.raises(WrongKey):  # and again: the error stays
        opening.result()
    opening.close()
    good = Repo.open_background(repo_path, passphrase=PASSPHRASE)
    repo = good.result()
    assert good.done()
    oid = repo.write_blob(b"x")
    good.close()  # closes what it opened
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        assert again.read_blob(oid) == b"x"


# --- reading small files in one call ------------------------------------------------------


@pytest.mark.parametrize("faked", ["grew", "shrank", "grew past a chunk"])
def test_small_file_reads_to_the_end_whatever_fstat_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faked: str
) -> None:
    path = tmp_path / "f"
    content = os.urandom(CHUNK_SIZE + 5 if faked == "grew past a chunk" else 5000)
    path.write_bytes(content)
    real = os.fstat
    size = 9000 if faked == "shrank" else 100

    def fstat(fd: int) -> Any:
        st = real(fd)
        return os.stat_result((st.st_mode, *st[1:6], size, *st[7:]))

    monkeypatch.setattr(plumbing.os, "fstat", fstat)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = plumbing._small_file(fd, CHUNK_SIZE)
        if faked == "grew past a chunk":  # streamed from the start instead
            assert got is None and os.lseek(fd, 0, os.SEEK_CUR) == 0
        else:
            assert got == content
    finally:
        os.close(fd)


def test_hash_object_paths_that_are_not_files_are_refused_as_before(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    listing = tmp_path / "list"
    for bad, why in ((tmp_path, b"Is a directory"), (tmp_path / "nope", b"No such file")):
        listing.write_bytes(bytes(bad) + b"\n")
        for write in ([], ["-w"]):
            proc = _steve(["hash-object", *write, "--stdin-paths"], steve_env, listing)
            assert proc.returncode == 6 and b"cannot open file" in proc.stderr
            assert why in proc.stderr and proc.stdout == b""


# --- the CLI, as the benchmarks run it (stdin and stdout regular files) -------------------


def _steve(args: list[str], env: dict[str, str], stdin: Path) -> subprocess.CompletedProcess[bytes]:
    with stdin.open("rb") as fh:
        return subprocess.run(
            [sys.executable, "-m", "steve", *args],
            stdin=fh,
            capture_output=True,
            env=env,
            check=False,
        )


def _files(directory: Path, n: int) -> list[Path]:
    directory.mkdir()
    sizes = [0, 1, 23, 24, 1024, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1]
    paths = []
    for i in range(n):
        p = directory / f"f{i:05d}"
        p.write_bytes(os.urandom(sizes[i] if i < len(sizes) else 100 + i % 900))
        paths.append(p)
    return paths


def test_bulk_ingest_prints_the_ids_of_the_files_in_order_and_stores_them(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    paths = _files(tmp_path / "files", 9000)  # three batches: two commit in the background
    listing = tmp_path / "list"
    listing.write_bytes(b"".join(bytes(p) + b"\n" for p in paths))
    repo.close()
    hashed = _steve(["hash-object", "--stdin-paths"], steve_env, listing)
    stored = _steve(["hash-object", "-w", "--stdin-paths"], steve_env, listing)
    assert stored.returncode == hashed.returncode == 0, stored.stderr
    assert stored.stdout == hashed.stdout
    ids = stored.stdout.decode().split()
    with Repo.open(repo.root or tmp_path, passphrase=PASSPHRASE) as again:
        for p, hex_id in zip(paths, ids, strict=True):
            assert hex_id == Repo.hash_stream(p.open("rb")).hex
            assert again.read_blob(ObjectId.from_hex(hex_id)) == p.read_bytes()


def test_bulk_ingest_with_a_wrong_passphrase_fails_cleanly_and_writes_nothing(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    paths = _files(tmp_path / "files", 5000)  # more than the first batch
    listing = tmp_path / "list"
    listing.write_bytes(b"".join(bytes(p) + b"\n" for p in paths))
    before = _count(repo)
    repo.close()
    env = dict(steve_env, STEVE_PASSPHRASE="wrong")
    proc = _steve(["hash-object", "-w", "--stdin-paths"], env, listing)
    assert proc.returncode == WrongKey.exit_code
    assert proc.stdout == b""
    assert f"[{WrongKey.code}]" in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    with Repo.open(repo.root or tmp_path, passphrase=PASSPHRASE) as again:
        assert _count(again) == before


def test_bulk_ingest_with_a_bad_path_answers_the_files_before_it(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    paths = _files(tmp_path / "files", 4500)
    listing = tmp_path / "list"
    names = [bytes(p) for p in paths] + [bytes(tmp_path / "missing")]
    listing.write_bytes(b"\n".join(names) + b"\n")
    repo.close()
    proc = _steve(["hash-object", "-w", "--stdin-paths"], steve_env, listing)
    assert proc.returncode != 0 and b"cannot open file" in proc.stderr
    ids = proc.stdout.decode().split()
    assert len(ids) == len(paths)  # all answered, so all committed
    with Repo.open(repo.root or tmp_path, passphrase=PASSPHRASE) as again:
        assert all(again.has_object(ObjectId.from_hex(i)) for i in ids)


def test_cat_file_batch_with_a_wrong_passphrase_fails_cleanly(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    ids = tmp_path / "ids"
    ids.write_text("".join(repo.write_blob(os.urandom(10)).hex + "\n" for _ in range(100)))
    repo.close()
    env = dict(steve_env, STEVE_PASSPHRASE="wrong")
    proc = _steve(["cat-file", "--batch"], env, ids)
    assert proc.returncode == WrongKey.exit_code
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    good = _steve(["cat-file", "--batch"], steve_env, ids)
    assert good.returncode == 0 and good.stdout.count(b" blob 10\n") == 100


# --- the key derived before click is imported (steve.cli.fast.derive_early) -----------

BULK = ["hash-object", "-w", "--stdin-paths"]


def _early(argv: list[str], env: dict[str, str]) -> Any:
    from steve.cli import fast

    fast._early = None
    fast.derive_early(argv, env)
    return fast._early


def test_the_early_key_is_derived_for_the_bulk_commands_and_handed_over_once(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    from steve.cli import fast

    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    env = {"STEVE_PASSPHRASE": PASSPHRASE}
    early = _early(["-C", str(repo_path), *BULK], env)
    assert early is not None and early.root == repo_path.resolve()
    assert fast.early_key(repo_path, PASSPHRASE) == Repo.derive_key(repo_path, PASSPHRASE)
    assert fast.early_key(repo_path, PASSPHRASE) is None  # handed over once
    # only for the same passphrase and the same repository
    _early(["-C", str(repo_path), *BULK], env)
    assert fast.early_key(repo_path, "another") is None
    other = repo_path.parent / "other"
    other.mkdir()
    Repo.init(other, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    _early(["--repo", str(repo_path), *BULK], env)
    assert fast.early_key(other, PASSPHRASE) is None
    # a wrong passphrase derives a key that does not open it: None (the command
    # derives again and reports WrongKey as always)
    _early(["-C", str(repo_path), *BULK], {"STEVE_PASSPHRASE": "wrong"})
    assert fast.early_key(repo_path, "wrong") is None


def test_no_early_key_for_other_commands_or_other_sources_of_the_key(
    repo_path: Path, fast_kdf: KdfParams, tmp_path: Path
) -> None:
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    env = {"STEVE_PASSPHRASE": PASSPHRASE}
    c = ["-C", str(repo_path)]
    assert _early([*c, "hash-object", "--stdin-paths"], env) is None  # no -w: no key needed
    assert _early([*c, "show-ref"], env) is None
    assert _early([*c, *BULK], {}) is None  # a prompt, or no passphrase: the command asks
    key_file = tmp_path / "key"
    key_file.write_text(PASSPHRASE)
    assert _early([*c, *BULK], {**env, "STEVE_KEY_FILE": str(key_file)}) is None
    assert _early(["-C", str(tmp_path / "nowhere"), *BULK], env) is None  # not a repository
    config = repo_path / ".steve" / "config"
    config.write_text(re.sub(r"(?m)^memory_kib = .*$", "memory_kib = 4194305", config.read_text()))
    assert _early([*c, *BULK], env) is None  # tampered KDF parameters: never run


def test_an_early_key_made_stale_by_a_rekey_is_not_used(
    repo_path: Path, fast_kdf: KdfParams
) -> None:
    from steve.cli import fast
    from steve.cli.app import open_repo

    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    _early(["-C", str(repo_path), *BULK], {"STEVE_PASSPHRASE": PASSPHRASE})
    Repo.rekey(
        repo_path,
        old_passphrase=PASSPHRASE,
        new_passphrase=PASSPHRASE,
        memory_kib=fast_kdf.memory_kib,
        iterations=fast_kdf.iterations + 1,
    )
    assert fast.early_key(repo_path, PASSPHRASE) is None  # the key check changed
    _early(["-C", str(repo_path), *BULK], {"STEVE_PASSPHRASE": PASSPHRASE})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEVE_PASSPHRASE", PASSPHRASE)
        with open_repo(repo_path) as repo:  # derived again, with the new parameters
            assert repo.has_object is not None
