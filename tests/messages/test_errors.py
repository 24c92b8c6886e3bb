"""Errors a person can act on (F-ERR-002..005): every SteveError has a catalogue
entry whose template fills in from the error's own facts, and whose suggested
command really exists (its ``--help`` exits 0)."""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import steve.errors
from steve.cli.app import report
from steve.cli.main import cli
from steve.errors import SteveError
from steve.messages import error_catalogue, error_classes, fields, render_error
from steve.repo import Repo

CLASSES = error_classes()
CATALOGUE = error_catalogue()
ROOT = Path(__file__).resolve().parents[2]

# one dummy value per annotation used by the error constructors
DUMMIES: dict[str, Any] = {
    "str": "x1",
    "int": 3,
    "float": 1.5,
    "bool": True,
    "bytes": b"x1",
    "str | None": "x1",
    "Sequence[str]": ["a1", "b1"],
    "Sequence[tuple[str, str]]": [("field", "why")],
}


def dummy(annotation: str) -> Any:
    """A value of the annotated type (lists and sequences of text by default)."""
    if annotation in DUMMIES:
        return DUMMIES[annotation]
    if annotation.startswith(("list[", "Sequence[", "tuple[")):
        return ["a1", "b1"]
    raise AssertionError(f"tests/messages/test_errors.py: add a dummy for {annotation!r}")


def instance(cls: type[SteveError]) -> SteveError:
    """An instance of ``cls`` built with dummy arguments of the annotated types."""
    if "__init__" not in cls.__dict__ and cls.__init__ is SteveError.__init__:
        return cls("a message", "a detail")
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args = [dummy(str(p.annotation)) for p in params if p.default is inspect.Parameter.empty]
    return cls(*args)


def line_to_add(cls: type[SteveError]) -> str:
    """The catalogue line a new class needs: its message as the template, the first
    command its action names (check it; `steve help CODE` when it names none)."""
    err = instance(cls)
    facts = ", ".join(sorted(k for k in vars(err) if not k.startswith("_")))
    named = re.search(r"`(steve [^`]*)`", cls.action)
    suggestion = named.group(1) if named else f"steve help {cls.code}"
    return (
        f'"{cls.code}" = {{ say = {json.dumps(err.message)}, try = {json.dumps(suggestion)} }}'
        f"   # {cls.__name__}; facts: {facts}"
    )


def test_every_error_class_has_a_catalogue_entry() -> None:
    missing = [cls for code, cls in sorted(CLASSES.items()) if code not in CATALOGUE]
    assert not missing, (
        "add one line per code to steve/messages/en/errors.toml (say: the human line, "
        "fields from the facts named; try: one real steve command):\n"
        + "\n".join(line_to_add(cls) for cls in missing)
    )


def test_no_catalogue_entry_without_an_error_class() -> None:
    assert sorted(set(CATALOGUE) - set(CLASSES)) == []


@pytest.mark.parametrize("code", sorted(CLASSES))
def test_template_fills_from_the_errors_facts(code: str) -> None:
    cls = CLASSES[code]
    err = instance(cls)
    entry = CATALOGUE[code]
    known = {k for k in vars(err) if not k.startswith("_")} | {"message", "detail", "code"}
    assert fields(entry.say) <= known, (code, fields(entry.say) - known)
    assert fields(entry.try_) <= known, (code, fields(entry.try_) - known)
    rendered = render_error(err)
    assert rendered.say and "{" not in rendered.say
    assert rendered.try_ is not None and rendered.try_.startswith("steve ")


def suggested_argvs() -> list[tuple[str, list[str]]]:
    out = []
    for code in sorted(CLASSES):
        rendered = render_error(instance(CLASSES[code]))
        assert rendered.try_ is not None
        out.append((code, shlex.split(rendered.try_)[1:]))
    return out


def test_every_suggested_command_exists() -> None:
    """``<try> --help`` exits 0 for every code (one process, click's runner)."""
    runner = CliRunner()
    failures = []
    for code, argv in suggested_argvs():
        res = runner.invoke(cli, [*argv, "--help"], env={"STEVE_DIR": None})
        if res.exit_code != 0:
            failures.append(f"{code}: steve {shlex.join(argv)} --help -> {res.exit_code}")
    assert failures == []


def test_suggested_commands_run_as_real_processes() -> None:
    """A few suggestions through ``python -m steve`` (the whole entry point)."""
    chosen = ["STEVE-REPO-001", "STEVE-KEY-001", "STEVE-OBJ-004", "STEVE-GATE-002"]
    argvs = dict(suggested_argvs())
    for code in chosen:
        proc = subprocess.run(
            [sys.executable, "-m", "steve", *argvs[code], "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert proc.returncode == 0, (code, proc.stderr)
        assert proc.stdout.startswith("Usage: steve"), proc.stdout


def test_report_prints_template_fact_hint_try_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    report(steve.errors.ObjectNotFound("ab" * 32))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"steve: error: there is no object {'ab' * 32} in this repository"
    assert lines[1] == f"  no object {'ab' * 32} in the store"
    assert lines[2].startswith("  hint: Check the id")
    assert lines[3] == f"  try: steve rev-parse {'ab' * 32}"
    assert lines[4] == "  [STEVE-OBJ-001]"


def test_facts_in_the_suggested_command_are_shell_quoted() -> None:
    err = steve.errors.RefUpdateRejected("refs/heads/a b;rm", "x", None)
    assert render_error(err).try_ == "steve rev-parse 'refs/heads/a b;rm'"


def test_help_explains_a_code_at_length() -> None:
    res = CliRunner().invoke(cli, ["help", "steve-key-001"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.startswith("STEVE-KEY-001  WrongKey  (exit 4)")
    for heading in ("What it means", "What to do", "Try", "Exit code", "Documented in"):
        assert f"\n{heading}\n" in out
    assert "  steve unlock\n" in out and "docs/errors.md#all-errors" in out


def test_help_of_a_command_is_its_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["help", "run", "new"]).output == runner.invoke(
        cli, ["run", "new", "--help"]
    ).output.replace("Usage: steve run new", "Usage: steve run new")


def test_help_of_an_unknown_topic_is_an_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "steve", "help", "STEVE-NOPE-999"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 5
    assert proc.stderr.splitlines()[-1] == "  [STEVE-UX-001]"
    assert "  try: steve --help" in proc.stderr


def test_explain_asks_the_model_with_the_catalogue_text(
    repo: Repo, steve_env: dict[str, str], tmp_path: Path
) -> None:
    """F-ERR-005, opt-in: the scripted provider answers a prompt that carries the
    catalogue's explanation and the user's context; the exchange is recorded."""
    fixture = tmp_path / "answers.yaml"
    fixture.write_text(
        "answers:\n"
        '  - match: "Explain STEVE error STEVE-KEY-001"\n'
        '    text: "The passphrase does not open it; try steve unlock."\n'
    )
    repo.close()
    env = {**steve_env, "STEVE_LLM_FIXTURE": str(fixture), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "steve",
            "explain",
            "steve-key-001",
            "--llm",
            "scripted",
            "--context",
            "steve log said: wrong passphrase",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "The passphrase does not open it; try steve unlock.\n"
    request = proc.stderr.splitlines()[0].removeprefix("request ")
    shown = subprocess.run(
        [sys.executable, "-m", "steve", "llm", "show", request],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "STEVE-KEY-001" in shown and "wrong passphrase" in shown
    assert "What to do" in shown  # the catalogue's explanation went with it


def test_explain_refuses_an_unknown_code() -> None:
    res = CliRunner().invoke(cli, ["explain", "STEVE-NOPE-001"])
    assert res.exit_code == 5


def test_help_alone_is_the_top_level_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["help"]).output == runner.invoke(cli, ["--help"]).output


def test_an_unknown_locale_falls_back_to_english() -> None:
    from steve.messages import msg, set_locale

    set_locale("zz")
    try:
        assert msg("secret.set.fact", name="T", version=2) == "T version 2"
        err = steve.errors.RefNotFound("refs/heads/x")
        assert render_error(err).try_ == "steve show-ref"
    finally:
        set_locale("en")
