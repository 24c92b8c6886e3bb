"""``steve secret``: values from stdin only, listings without values."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from steve.porcelain.secrets import resolve
from steve.repo import Repo
from tests.cli.conftest import Invoke

VALUE = "cli-sentinel-value-0042"


def test_set_list_rm(invoke: Invoke, open_repo: Callable[[], AbstractContextManager[Repo]]) -> None:
    out = invoke("secret", "set", "API_TOKEN", input=VALUE + "\n")
    assert out.exit_code == 0, out.stderr
    assert out.lines == ["API_TOKEN version 1"]
    assert invoke("secret", "set", "API_TOKEN", input=VALUE + "x").lines == ["API_TOKEN version 2"]
    assert invoke("secret", "set", "EXT", "--command", "echo ext-value-1234").exit_code == 0
    listed = invoke("secret", "list", "--json")
    rows = [json.loads(line) for line in listed.lines]
    assert [(r["name"], r["version"], r["kind"]) for r in rows] == [
        ("API_TOKEN", 2, "value"), ("EXT", 1, "command")
    ]
    assert rows[0]["who"] == "Tess Ter <tess@example.org>"
    human = invoke("secret", "list")
    assert [line.split("\t")[:3] for line in human.lines] == [
        ["API_TOKEN", "v2", "value"], ["EXT", "v1", "command"]
    ]
    assert VALUE not in listed.stdout.decode() + human.stdout.decode()
    with open_repo() as repo:
        assert resolve(repo, ["API_TOKEN"])["API_TOKEN"].value == (VALUE + "x").encode()
    assert invoke("secret", "rm", "API_TOKEN").exit_code == 0
    assert [json.loads(x)["name"] for x in invoke("secret", "list", "--json").lines] == ["EXT"]
    invoke("secret", "rm", "API_TOKEN").assert_error(5, "STEVE-SECRET-001")


def test_empty_stdin_and_bad_names_are_coded_errors(invoke: Invoke) -> None:
    invoke("secret", "set", "EMPTY", input="").assert_error(6, "STEVE-SECRET-006")
    invoke("secret", "set", "bad-name", input=VALUE).assert_error(6, "STEVE-SECRET-002")
    invoke("secret", "set", "SHORT", input="ab").assert_error(6, "STEVE-REDACT-001")


def test_the_value_is_never_an_argument(invoke: Invoke) -> None:
    out = invoke("secret", "set", "API_TOKEN", VALUE, input=VALUE)
    assert out.exit_code == 2  # click: unexpected extra argument


