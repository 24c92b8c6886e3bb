"""The stage commands with a model through the CLI: approval, --yes, --edit, errors.

CliRunner for most (its stdin is no terminal); the real entry point on a
pseudo-terminal (pexpect) for the interactive approval."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.objects.model import ObjectType
from steve.porcelain.records import load_plan, read_manifest_body
from steve.porcelain.runs import find_run, run_manifests
from steve.repo import Repo
from steve.store.kdf import KdfParams

ASK = "A command-line tool that prints the words hello, world and steve."
IMAGE = "sha256:" + "ab" * 32


@pytest.fixture
def env(repo_path: Path, fast_kdf: KdfParams) -> dict[str, str]:
    Repo.init(repo_path, passphrase="pw", kdf=fast_kdf).close()
    return {
        "STEVE_DIR": str(repo_path),
        "STEVE_PASSPHRASE": "pw",
        "SOURCE_DATE_EPOCH": "1700000000",
        "STEVE_AUTHOR_NAME": "Tess",
        "STEVE_AUTHOR_EMAIL": "tess@example",
        "STEVE_KEY_FILE": "",
        "STEVE_LLM": "scripted",
    }


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def open_repo(env: dict[str, str]) -> Repo:
    return Repo.open(env["STEVE_DIR"], passphrase="pw")


def test_without_a_terminal_or_yes_nothing_is_frozen(env: dict[str, str]) -> None:
    assert run(env, "run", "new", "--name", "words").exit_code == 0
    res = run(env, "design", "--intake", ASK)
    assert res.exit_code == 2 and "[STEVE-LLM-031]" in res.stderr
    assert "--- design draft (from the model) ---" in res.stderr  # shown all the same
    with open_repo(env) as repo:
        assert run_manifests(repo, find_run(repo).id) == {}


def test_yes_approves_and_says_so(env: dict[str, str]) -> None:
    run(env, "run", "new", "--name", "words")
    res = run(env, "design", "--intake", ASK, "--yes")
    assert res.exit_code == 0, res.output
    oid = res.stdout.strip()
    with open_repo(env) as repo:
        body = read_manifest_body(repo, repo.rev_parse(oid), ObjectType.DESIGN).body
        assert body["approved_by"] == "yes-flag" and body["human_approved"] is True
        assert body["approval_timestamp"] == 1700000000
    assert run(env, "design", "f.yaml", "--intake", ASK).exit_code == 2  # one source only
    res = run(env, "design", "--intake", ASK, "--yes", "--llm", "nonesuch")
    assert res.exit_code != 0 and "[STEVE-LLM-" in res.stderr


def test_decompose_with_edit(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "run", "new", "--name", "words")
    run(env, "design", "--intake", ASK, "--yes")
    run(env, "run", "goto", "RESEARCH")
    src = tmp_path / "src"
    src.mkdir()
    (src / "words.txt").write_text("hello\nworld\n")
    tree = run(env, "write-tree", str(src)).stdout.strip()
    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^title: .*/title: Edited by hand/' \"$1\"\n")
    editor.chmod(0o755)
    args = ["plan", "--decompose", "--image", f"busybox={IMAGE}", "--input", f"src={tree}"]
    res = run({**env, "EDITOR": str(editor)}, *args, "--edit", "--yes")
    assert res.exit_code == 0, res.output
    with open_repo(env) as repo:
        plan = load_plan(repo, repo.rev_parse(res.stdout.strip()))
        assert plan.title == "Edited by hand" and "edited by hand" in (plan.notes or "")
        assert plan.provenance is not None and plan.nodes[0].image == IMAGE
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    res = run({**env, "EDITOR": str(failing)}, *args, "--edit", "--yes")
    assert res.exit_code == 6 and "[STEVE-LLM-034]" in res.stderr
    res = run(env, "plan", "--decompose", "--yes")
    assert res.exit_code == 6 and "no image offered" in res.stderr


def _spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    full = {**os.environ, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return pexpect.spawn(sys.executable, ["-m", "steve", *args], env=full, timeout=60)


@pytest.mark.parametrize(("answer", "status"), [("y", 0), ("n", 1)])
def test_a_person_approves_on_the_terminal(env: dict[str, str], answer: str, status: int) -> None:
    run(env, "run", "new", "--name", "words")
    child = _spawn(env, "design", "--intake", ASK)
    child.expect("Freeze this design\\?")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == status, child.before
    with open_repo(env) as repo:
        design = run_manifests(repo, find_run(repo).id).get(ObjectType.DESIGN)
        if answer == "n":
            assert design is None
            return
        assert design is not None
        body = read_manifest_body(repo, design, ObjectType.DESIGN).body
        assert body["approved_by"] == "terminal"


def test_build_without_a_chosen_provider_refuses_generate_nodes_then_builds_with_one(
    env: dict[str, str], tmp_path: Path, busybox_image: Any
) -> None:
    """The real Docker Engine: no provider chosen -> STEVE-LLM-035 before the run moves;
    --llm scripted -> the patched tree is built in a container and tested."""
    run(env, "run", "new", "--name", "words")
    run(env, "design", "--intake", ASK, "--yes")
    run(env, "run", "goto", "RESEARCH")
    src = Path(__file__).resolve().parents[2] / "examples" / "project" / "src"
    tree = run(env, "write-tree", str(src)).stdout.strip()
    image = f"busybox={busybox_image.id}"
    res = run(env, "plan", "--decompose", "--image", image, "--input", f"src={tree}", "--yes")
    assert res.exit_code == 0, res.output
    no_llm = {k: v for k, v in env.items() if k != "STEVE_LLM"}
    res = run(no_llm, "build", "-q")
    assert res.exit_code == 2 and "[STEVE-LLM-035]" in res.stderr and "words" in res.stderr
    with open_repo(env) as repo:
        assert find_run(repo).stage.value == "PLAN"
    res = run(env, "build", "--llm", "scripted")
    assert res.exit_code == 0, res.output
    res = run(no_llm, "test")  # the generate node's receipt serves TEST: no model needed
    assert res.exit_code == 0, res.output
