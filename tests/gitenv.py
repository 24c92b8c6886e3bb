"""The real git binary in a scrubbed environment (LC_ALL=C, no system or global
config, HOME in a temp dir, fixed identities and dates), for compat tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

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


def git_exe() -> str:
    exe = shutil.which("git")
    if exe is None:
        pytest.fail("the real git binary is required for the compat tests")
    return exe


def make_git(env: dict[str, str]) -> Git:
    """``git(where, *args, input=None, check=True)``: run the real git in ``where``."""
    exe = git_exe()

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
