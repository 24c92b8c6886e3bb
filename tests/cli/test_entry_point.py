"""The installed `steve` console script, run as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.kdf import KdfParams

STEVE = shutil.which("steve")


def steve(
    *args: str, env: dict[str, str], input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    assert STEVE is not None, "the `steve` console script is not installed"
    return subprocess.run(
        [STEVE, *args], env=env, input=input, cwd=cwd, capture_output=True, timeout=60, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(extra)
    return env


@pytest.fixture
def fast_repo(repo_path: Path, fast_kdf: KdfParams) -> Path:
    Repo.init(repo_path, passphrase="pw", kdf=fast_kdf).close()
    return repo_path


def test_init_hash_cat_and_a_failure(tmp_path: Path) -> None:
    """The real entry point end to end (init derives a real Argon2id key once)."""
    env = clean_env(STEVE_PASSPHRASE="entry point pw")
    root = tmp_path / "proj"
    init = steve("init", str(root), env=env)
    assert init.returncode == 0, init.stderr
    env["STEVE_DIR"] = str(root)
    data = b"through the console script\n\x00\xff"
    wrote = steve("hash-object", "-w", "--stdin", env=env, input=data)
    assert wrote.returncode == 0, wrote.stderr
    oid = wrote.stdout.decode().strip()
    assert ObjectId.from_hex(oid)
    shown = steve("cat-file", "-p", oid, env=env)
    assert shown.returncode == 0 and shown.stdout == data
    raw = steve("cat-file", "--raw", oid, env=env)
    assert blake3.blake3(raw.stdout).hexdigest() == oid
    with Repo.open(root, passphrase="entry point pw") as repo:
        assert repo.read_blob(ObjectId.from_hex(oid)) == data
    bad = steve("rev-parse", "--verify", "no-such-branch", env=env)
    assert bad.returncode == 5
    err = bad.stderr.decode()
    assert err.splitlines()[-1].strip() == "[STEVE-REV-001]" and "Traceback" not in err
    wrong = steve("cat-file", "-t", oid, env={**env, "STEVE_PASSPHRASE": "nope"})
    assert wrong.returncode == 4 and b"[STEVE-KEY-001]" in wrong.stderr.splitlines()[-1]


@pytest.fixture
def unlocked(fast_repo: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    env = clean_env(STEVE_DIR=str(fast_repo))
    try:
        yield fast_repo, env
    finally:
        steve("lock", env=env)


def test_unlock_uses_the_kernel_keyring(unlocked: tuple[Path, dict[str, str]]) -> None:
    root, env = unlocked
    with Repo.open(root, passphrase="pw") as repo:
        oid = repo.write_blob(b"cached key")
        other = Repo.read_config(root).repository_id
    assert other  # each repository has its own id, so keyring entries never collide
    no_key = steve("cat-file", "-t", oid.hex, env=env)
    assert no_key.returncode == 4 and no_key.stderr.splitlines()[-1].strip() == b"[STEVE-KEY-002]"
    unlock = steve("unlock", "--ttl", "2m", env={**env, "STEVE_PASSPHRASE": "pw"})
    assert unlock.returncode == 0, unlock.stderr
    cached = steve("cat-file", "-t", oid.hex, env=env)  # no passphrase anywhere
    assert cached.returncode == 0, cached.stderr
    assert cached.stdout.decode().strip() == ObjectType.BLOB.value
    lock = steve("lock", env=env)
    assert lock.returncode == 0
    after = steve("cat-file", "-t", oid.hex, env=env)
    assert after.returncode == 4
    assert after.stderr.splitlines()[-1].strip() == b"[STEVE-KEY-002]"
    assert b"Traceback" not in after.stderr


def test_unlock_with_wrong_passphrase_caches_nothing(
    unlocked: tuple[Path, dict[str, str]],
) -> None:
    root, env = unlocked
    bad = steve("unlock", env={**env, "STEVE_PASSPHRASE": "wrong"})
    assert bad.returncode == 4 and bad.stderr.splitlines()[-1].strip() == b"[STEVE-KEY-001]"
    still = steve("show-ref", env=env)
    assert still.returncode == 4 and still.stderr.splitlines()[-1].strip() == b"[STEVE-KEY-002]"
    assert root.is_dir()
