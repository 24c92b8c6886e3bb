"""The research-* commands through real `python -m steve` subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from steve.repo import Repo

from .helpers import EXAMPLES, seed


def steve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steve", *args], env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_extract_summarize_freeze_show_cat(
    repo: Repo, repo_path: Path, steve_env: dict[str, str]
) -> None:
    seed(repo)
    repo.close()
    env = {**steve_env, "STEVE_LLM": "scripted", "SOURCE_DATE_EPOCH": "1700000000"}
    assert steve(env, "run", "new", "--name", "r").returncode == 0
    assert steve(env, "design", str(EXAMPLES / "design.yaml")).returncode == 0
    out = steve(env, "research", "extract", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["questions"] == {"RQ-001": 5, "RQ-002": 3}
    out = steve(env, "research", "summarize", "--json")
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["repairs"] == {"RQ-001": 0, "RQ-002": 1} and done["rejected"] == []
    frozen = steve(env, "research", "freeze")
    assert frozen.returncode == 0 and "DESIGN -> RESEARCH" in frozen.stderr
    oid = frozen.stdout.strip()
    shown = steve(env, "research", "show")
    assert f"research {oid}" in shown.stdout and "[E-002, S-002 @160-346]" in shown.stdout
    record = json.loads(steve(env, "research", "show", "--json").stdout)["sources"][1]["record"]
    cat = steve(env, "cat", record)
    assert cat.stdout.startswith(f"source {record}\nURL:       https://notes.example.org")
    assert "POSIX tools define a word" in cat.stdout and "<nav>" not in cat.stdout
    assert steve(env, "verify", oid).returncode == 0
    again = steve(env, "research", "freeze", "--run", "nope")
    assert again.returncode != 0 and "STEVE-" in again.stderr
    # a new run answered only from the record: the same research manifest
    assert steve(env, "run", "new", "--name", "replayed").returncode == 0
    assert steve(env, "design", str(EXAMPLES / "design.yaml")).returncode == 0
    assert steve(env, "research", "extract").returncode == 0
    replayed = steve({**env, "STEVE_LLM": "replay:scripted"}, "research", "summarize")
    assert replayed.returncode == 0, replayed.stderr
    assert steve(env, "research", "freeze").stdout.strip() == oid
