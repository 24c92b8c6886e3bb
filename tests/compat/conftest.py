"""The real git binary in a scrubbed environment, and a STEVE repository beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams

PASSPHRASE = "pw"
GitRun = Callable[..., subprocess.CompletedProcess[bytes]]
SteveRun = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Compat Author",
        "GIT_AUTHOR_EMAIL": "author@example.org",
        "GIT_COMMITTER_NAME": "Compat Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.org",
        "GIT_AUTHOR_DATE": "1700000000 +0000",
        "GIT_COMMITTER_DATE": "1700000000 +0000",
    }


@pytest.fixture
def git_repo(tmp_path: Path, git_env: dict[str, str]) -> Path:
    exe = shutil.which("git")
    if exe is None:
        pytest.fail("the real git binary is required for the compat tests")
    path = tmp_path / "gitrepo"
    subprocess.run(
        [exe, "init", "-q", "-b", "main", str(path)], env=git_env, check=True, capture_output=True
    )
    return path


@pytest.fixture
def git(git_repo: Path, git_env: dict[str, str]) -> GitRun:
    exe = shutil.which("git")
    assert exe is not None

    def run(
        *args: str, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [exe, "-C", str(git_repo), *args],
            env=git_env,
            input=input,
            capture_output=True,
            check=False,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {args} failed: {proc.stderr.decode(errors='replace')}")
        return proc

    return run


@pytest.fixture
def steve_repo(tmp_path: Path, fast_kdf: KdfParams) -> Iterator[Repo]:
    repo = Repo.init(tmp_path / "steverepo", passphrase=PASSPHRASE, kdf=fast_kdf)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def steve_cmd(steve_repo: Repo) -> SteveRun:
    """Run the installed `steve` console script against the ``steve_repo`` repository."""
    exe = shutil.which("steve")
    if exe is None:
        pytest.fail("the `steve` console script is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(steve_repo.root), LC_ALL="C")

    def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [exe, *args], env=env, input=input, capture_output=True, check=False, timeout=120
        )

    return run
