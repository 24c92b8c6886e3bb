"""Fixtures for the LLM layer tests: repositories, a redactor, events read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steve.objects import cbor
from steve.redact import Redactor
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.cli.conftest import cli_repo, invoke  # noqa: F401  (the CLI fixtures)


def make_redactor(secrets: dict[str, bytes] | None = None) -> Redactor:
    return Redactor(secrets or {})


@pytest.fixture
def redactor() -> Redactor:
    return make_redactor()


@pytest.fixture(params=["memory", "sqlcipher"])
def any_repo(request: pytest.FixtureRequest, tmp_path: Path, fast_kdf: KdfParams) -> Iterator[Repo]:
    """Each kind of repository in turn."""
    if request.param == "memory":
        yield Repo.memory()
        return
    r = Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf)
    try:
        yield r
    finally:
        r.close()


def events(repo: Repo, prefix: str = "") -> list[tuple[str, str | None, dict[str, Any]]]:
    """(type, run id, payload) of the events waiting in the outbox (no sink attached)."""
    return [
        (e.type, e.run_id, cbor.decode(e.payload))
        for e in repo.pending_events()
        if e.type.startswith(prefix)
    ]


@pytest.fixture
def anthropic_server() -> Iterator[Any]:
    from tests.llm.servers import AnthropicServer

    server = AnthropicServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openai_server() -> Iterator[Any]:
    from tests.llm.servers import OpenAIServer

    server = OpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
