"""The real git binary in a scrubbed environment, and STEVE histories to export."""

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
Git = Callable[..., subprocess.CompletedProcess[bytes]]


def scrubbed_git_env(home: Path) -> dict[str, str]:
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
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "git-home"
    home.mkdir(exist_ok=True)
    return scrubbed_git_env(home)


def make_git(env: dict[str, str]) -> Git:
    exe = shutil.which("git")
    if exe is None:
        pytest.fail("the real git binary is required for the git bridge tests")

    def run(
        where: Path, *args: str, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [exe, "-C", str(where), *args],
            env=env,
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
