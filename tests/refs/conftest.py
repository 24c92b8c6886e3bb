"""Fixtures for the refs tests (profiles and ``fast_kdf`` live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams


@pytest.fixture(params=["memory", "sqlcipher"])
def any_repo(request: pytest.FixtureRequest, tmp_path: Path, fast_kdf: KdfParams) -> Iterator[Repo]:
    """The same tests against the in-memory and the encrypted SQLite store."""
    if request.param == "memory":
        yield Repo.memory()
        return
    repo = Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf)
    try:
        yield repo
    finally:
        repo.close()
