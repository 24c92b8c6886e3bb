"""Fixtures for the CLI tests: a closed on-disk repository and a CliRunner shell."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.repo import Repo
from steve.store.kdf import KdfParams

PASSPHRASE = "pw"


@dataclass
class Outcome:
    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.decode().splitlines()

    def assert_error(self, exit_code: int, code: str) -> None:
        """A clean STEVE error: the exit code, the code line, and no traceback."""
        assert self.exit_code == exit_code, (self.exit_code, self.stderr)
        assert f"[{code}]" in self.stderr.splitlines()[-1], self.stderr
        assert "Traceback" not in self.stderr
        assert any(line.startswith("steve: error: ") for line in self.stderr.splitlines())


Invoke = Callable[..., Outcome]


@pytest.fixture
def cli_repo(repo_path: Path, fast_kdf: KdfParams) -> Path:
    """An initialised encrypted repository (closed, so the CLI opens it itself)."""
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    return repo_path


@pytest.fixture
def invoke(cli_repo: Path) -> Invoke:
    """Run ``steve --repo REPO ARGS`` in-process with STEVE_PASSPHRASE set."""
    runner = CliRunner()

    def run(
        *args: str,
        input: bytes | str | None = None,
        passphrase: str | None = PASSPHRASE,
        repo: Path | None = cli_repo,
    ) -> Outcome:
        argv: list[str] = (["--repo", str(repo)] if repo is not None else []) + list(args)
        env: dict[str, str | None] = {
            "STEVE_PASSPHRASE": passphrase,
            "STEVE_KEY_FILE": None,
            "STEVE_DIR": None,
            "STEVE_AUTHOR_NAME": "Tess Ter",
            "STEVE_AUTHOR_EMAIL": "tess@example.org",
        }
        result = runner.invoke(cli, argv, input=input, env=env, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout_bytes, result.stderr)

    return run


@pytest.fixture
def open_repo(cli_repo: Path) -> Callable[[], Iterator[Repo]]:
    """``with open_repo() as repo:`` opens the CLI's repository through the library."""

    @contextmanager
    def opener() -> Iterator[Repo]:
        repo = Repo.open(cli_repo, passphrase=PASSPHRASE)
        try:
            yield repo
        finally:
            repo.close()

    return opener
