"""Fixtures for the trust tests: a signing identity, a repository pinning its key, and
an in-process CLI runner against that repository."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.config import RepoConfig
from steve.repo import CONFIG_NAME, STEVE_DIR, Repo
from steve.store.kdf import KdfParams
from steve.trust.keys import SigningKey, create_identity, load_signing_key
from tests.docker_fixtures import busybox_image, engine  # noqa: F401

PASSPHRASE = "pw"
SIGNING = "sign-pw"
CO_SIGNING = "co-pw"


def fast() -> KdfParams:
    return KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)


@dataclass
class Signer:
    directory: Path
    key: SigningKey
    co: SigningKey  # the named identity "co"

    def pem(self, tmp: Path, key: SigningKey | None = None) -> Path:
        from steve.trust.keys import public_pem

        path = tmp / f"{(key or self.key).public_key.hex()[:8]}.pem"
        path.write_text(public_pem((key or self.key).public_key))
        return path


@pytest.fixture
def signer(identity_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """The default identity and a named co-signer ``co``, passphrases in the env."""
    create_identity(identity_dir, SIGNING.encode(), kdf=fast())
    create_identity(identity_dir, CO_SIGNING.encode(), name="co", kdf=fast())
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE", SIGNING)
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE_CO", CO_SIGNING)
    return Signer(
        identity_dir,
        load_signing_key(identity_dir, SIGNING.encode()),
        load_signing_key(identity_dir, CO_SIGNING.encode(), "co"),
    )


def pin(repo_path: Path, public_key: bytes | None) -> None:
    path = repo_path / STEVE_DIR / CONFIG_NAME
    RepoConfig.read(path).with_events_key(public_key).write(path)


@pytest.fixture
def pinned_repo(repo_path: Path, signer: Signer) -> Iterator[Repo]:
    """An on-disk repository whose config pins the signer's key (opened)."""
    Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast()).close()
    pin(repo_path, signer.key.public_key)
    r = Repo.open(repo_path, passphrase=PASSPHRASE)
    try:
        yield r
    finally:
        r.close()


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def error_code(self) -> str:
        return self.stderr.strip().splitlines()[-1].strip()


Steve = Callable[..., Outcome]


@pytest.fixture
def steve(repo_path: Path) -> Steve:
    """``steve ARGS`` in-process against ``repo_path`` (which the test creates)."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        full: dict[str, str | None] = {
            "STEVE_PASSPHRASE": PASSPHRASE,
            "STEVE_KEY_FILE": None,
            "STEVE_DIR": str(repo_path),
            "STEVE_AUTHOR_NAME": "Tess Ter",
            "STEVE_AUTHOR_EMAIL": "tess@example.org",
            "SOURCE_DATE_EPOCH": None,
            **(env or {}),
        }
        result = runner.invoke(cli, list(args), env=full, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert "Traceback" not in result.stderr
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run
