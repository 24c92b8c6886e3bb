"""The real git binary in a scrubbed environment, and STEVE histories to export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.gitenv import Git, make_git, scrubbed_git_env

PASSPHRASE = "pw"


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "git-home"
    home.mkdir(exist_ok=True)
    return scrubbed_git_env(home)


@pytest.fixture
def git(git_env: dict[str, str]) -> Git:
    """``git(repo_dir, *args)``: the real git in a scrubbed environment."""
    return make_git(git_env)


@pytest.fixture
def steve_repo(tmp_path: Path, fast_kdf: KdfParams) -> Iterator[Repo]:
    repo = Repo.init(tmp_path / "steve", passphrase=PASSPHRASE, kdf=fast_kdf)
    try:
        yield repo
    finally:
        repo.close()
