"""Fixtures for the event log tests: an on-disk log and raw keyed SQL access."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlcipher3 import dbapi2 as sqlite

from steve.events import EventLog
from steve.events.signing import IdentityInfo, create_identity
from tests.cli.conftest import cli_repo, invoke  # noqa: F401  (the CLI fixtures)
from tests.conftest import make_fast_kdf


def raw_connect(path: Path, key: bytes) -> Any:
    """A plain SQLCipher connection to ``path`` opened with the raw key (no STEVE code)."""
    conn = sqlite.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    conn.execute("PRAGMA cipher_page_size = 4096")
    return conn


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def log(log_path: Path, key: bytes) -> Iterator[EventLog]:
    lg = EventLog(log_path, key, correlation_id="corr-test", actor="tester", synchronous="NORMAL")
    try:
        yield lg
    finally:
        lg.close()


SIGNING_PASSPHRASE = "sign-pw"


@pytest.fixture
def signing_identity(identity_dir: Path, monkeypatch: pytest.MonkeyPatch) -> IdentityInfo:
    """A signing identity in the test's STEVE_IDENTITY_DIR (cheap KDF), its passphrase
    in STEVE_SIGNING_PASSPHRASE."""
    info = create_identity(identity_dir, SIGNING_PASSPHRASE.encode(), kdf=make_fast_kdf())
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE", SIGNING_PASSPHRASE)
    return info
