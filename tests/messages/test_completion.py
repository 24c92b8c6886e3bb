"""Shell completion through click's own protocol, in real subprocesses: commands,
refs, run ids and manifest kinds; no prompt and no error when the repository
cannot be opened without one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steve.porcelain.runs import new_run
from steve.repo import Repo

ROOT = Path(__file__).resolve().parents[2]


def complete(
    words: str, env: dict[str, str], shell: str = "bash", cword: int | None = None
) -> list[str]:
    """The values click offers for the command line ``words`` (completing the last
    word; a trailing space completes a new one)."""
    parts = words.split(" ")
    run_env = {**env, "_STEVE_COMPLETE": f"{shell}_complete", "PYTHONPATH": str(ROOT)}
    if shell == "fish":
        run_env["COMP_WORDS"] = words
        run_env["COMP_CWORD"] = parts[-1]
    else:
        run_env["COMP_WORDS"] = words
        run_env["COMP_CWORD"] = str(len(parts) - 1 if cword is None else cword)
    proc = subprocess.run(
        [sys.executable, "-m", "steve"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=run_env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # a Tab key prints no error and no prompt
    lines = [line for line in proc.stdout.splitlines() if line]
    if shell in ("zsh", "fish"):  # type, value, help (or _): three lines each
        return [lines[i + 1] for i in range(0, len(lines), 3) if lines[i] == "plain"]
    return [line.split(",", 1)[1] for line in lines]


@pytest.fixture
def populated(repo: Repo, steve_env: dict[str, str]) -> tuple[dict[str, str], str]:
    oid = repo.write_blob(b"hello\n")
    repo.update_ref("refs/heads/main", oid)
    repo.update_ref("refs/tags/v1", oid)
    run = new_run(repo, name="first", now=1_700_000_000, actor="t <t@x>")
    repo.close()
    return steve_env, run.id


def test_completion_prints_each_shells_script() -> None:
    for shell, marker in (
        ("bash", "_STEVE_COMPLETE=bash_complete"),
        ("zsh", "_STEVE_COMPLETE=zsh_complete"),
        ("fish", "_STEVE_COMPLETE=fish_complete"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "steve", "completion", shell],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            check=True,
        )
        assert marker in proc.stdout, shell


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_bash_script_is_valid_bash(tmp_path: Path) -> None:
    script = subprocess.run(
        [sys.executable, "-m", "steve", "completion", "bash"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    (tmp_path / "c.bash").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "c.bash")], check=True)


def test_commands_complete(steve_env: dict[str, str]) -> None:
    assert complete("steve rev-", steve_env) == ["rev-parse"]
    assert set(complete("steve run ", steve_env)) >= {"new", "list", "show", "switch"}
    assert "completion" in complete("steve comp", steve_env)
    assert complete("steve rev-", steve_env, shell="fish") == ["rev-parse"]
    assert complete("steve rev-", steve_env, shell="zsh") == ["rev-parse"]


def test_refs_complete(populated: tuple[dict[str, str], str]) -> None:
    env, _ = populated
    values = complete("steve rev-parse ", env)
    assert {"HEAD", "refs/heads/main", "refs/tags/v1", "main", "v1"} <= set(values)
    assert complete("steve cat-file -p refs/t", env) == ["refs/tags/v1"]
    assert set(complete("steve rev-parse m", env, shell="zsh")) == {"main"}


def test_run_ids_complete(populated: tuple[dict[str, str], str]) -> None:
    env, run_id = populated
    assert set(complete("steve run show ", env)) == {run_id, "first"}
    assert run_id in complete("steve build --run ", env)


def test_manifest_kinds_and_help_topics_complete(steve_env: dict[str, str]) -> None:
    assert complete("steve freeze ", steve_env) == [
        "design",
        "research",
        "plan",
        "build_receipt",
        "test_certificate",
        "deploy_receipt",
    ]
    assert complete("steve schema t", steve_env) == ["test_certificate"]
    assert complete("steve help STEVE-KEY-00", steve_env) == [
        "STEVE-KEY-001",
        "STEVE-KEY-002",
        "STEVE-KEY-003",
        "STEVE-KEY-004",
    ]
    assert complete("steve config set homely.n", steve_env) == ["homely.nudges"]


def test_no_key_means_no_values_and_no_prompt(populated: tuple[dict[str, str], str]) -> None:
    env, _ = populated
    bare = {k: v for k, v in env.items() if k not in ("STEVE_PASSPHRASE", "STEVE_KEY_FILE")}
    assert complete("steve rev-parse ", bare) == []
    wrong = {**env, "STEVE_PASSPHRASE": "not the passphrase"}
    assert complete("steve run show ", wrong) == []


def test_outside_a_repository_only_commands_complete(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "STEVE_DIR": str(tmp_path / "none")}
    assert complete("steve rev-parse ", env) == []
    assert complete("steve ls-", env) == ["ls-tree"]
