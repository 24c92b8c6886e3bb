"""Fixtures for the model-driven stages: a run, a session over the scripted provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from steve.llm.replay import ReplayProvider
from steve.llm.scripted import ScriptedProvider
from steve.llm.session import LLMSession
from steve.porcelain.modelio import ModelTarget
from steve.porcelain.runs import new_run
from steve.repo import Repo
from tests.docker_fixtures import busybox_image, engine, labelled  # noqa: F401
from tests.llm.conftest import make_redactor

NOW = 1_700_000_000
ROOT = Path(__file__).resolve().parents[2]


def default_answers() -> list[dict[str, Any]]:
    """The answers of the fixture shipped with STEVE (steve/llm/fixtures/default.yaml)."""
    data = yaml.safe_load((ROOT / "steve/llm/fixtures/default.yaml").read_text())
    return list(data["answers"])


def answer(match: str) -> dict[str, Any]:
    return next(a for a in default_answers() if a.get("match") == match)


DESIGN_ANSWER = "You are the design intake of STEVE"
PLAN_ANSWER = "You are the planner of STEVE"
DIFF_ANSWER = "plan node 'words'"


def target(repo: Repo, answers: Sequence[Mapping[str, Any]] | None = None) -> ModelTarget:
    provider = (
        ScriptedProvider.default() if answers is None else ScriptedProvider.from_answers(answers)
    )
    session = LLMSession(repo, provider, redactor=make_redactor())
    return ModelTarget(session, "scripted", "scripted-model")


def replay_target(repo: Repo) -> ModelTarget:
    session = LLMSession(repo, ReplayProvider(repo), redactor=make_redactor())
    return ModelTarget(session, "scripted", "scripted-model")


@pytest.fixture
def run_id(mem_repo: Repo) -> str:
    return new_run(mem_repo, name="words", now=NOW, actor="test").id
