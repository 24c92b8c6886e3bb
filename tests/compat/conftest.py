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
from tests.gitenv import git_exe, make_git, scrubbed_git_env

PASSPHRASE = "pw"
GitRun = Callable[..., subprocess.CompletedProcess[bytes]]
SteveRun = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return scrubbed_git_env(home)


@pytest.fixture
def git_repo(tmp_path: Path, git_env: dict[str, str]) -> Path:
    path = tmp_path / "gitrepo"
    subprocess.run(
        [git_exe(), "init", "-q", "-b", "main", str(path)],
        env=git_env,
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def git(git_repo: Path, git_env: dict[str, str]) -> GitRun:
    """``git(*args)`` in ``git_repo``, in the scrubbed environment."""
    run = make_git(git_env)
    return lambda *args, **kw: run(git_repo, *args, **kw)


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
