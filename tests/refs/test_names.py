"""Ref-name validation checked against the real `git check-ref-format`."""

from __future__ import annotations

import functools
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steve.errors import BadRefName
from steve.refs.names import (
    candidates,
    check_branch_or_tag_name,
    check_ref_name,
    format_problem,
)

GIT = shutil.which("git")
GIT_ENV = {
    "PATH": "/usr/bin:/bin:/usr/local/bin",
    "HOME": "/nonexistent",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


@functools.lru_cache(maxsize=4096)
def git_accepts(name: str, onelevel: bool = False) -> bool:
    """Whether the real git says ``name`` is a well-formed ref name."""
    assert GIT is not None, "the real git binary is required"
    args = [GIT, "check-ref-format"]
    if onelevel:
        args.append("--allow-onelevel")
    proc = subprocess.run([*args, name], env=GIT_ENV, capture_output=True, check=False, timeout=30)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


TABLE = [
    "refs/heads/main",
    "refs/tags/v1.0",
    "refs/heads/feature/x-y_z",
    "refs/heads/a./b",
    "refs/heads/-x",
    "refs/@",
    "refs/heads/@",
    "refs/a@b",
    "refs/a{b",
    "refs/a}b",
    "refs/a.lock.x",
    "refs/é",
    "refs/heads/日本",
    "refs/a/.lock",
    "refs/a/b.lock",
    "refs/a.lock/b",
    "refs/heads/.hidden",
    "refs/heads/x/.y",
    "refs/.",
    "refs/..",
    "refs/a..b",
    "refs/a/./b",
    "refs/heads/a/",
    "refs/heads//a",
    "refs//",
    "refs/",
    "refs/a.",
    "refs/a@{b",
    "refs/a@{0}",
    "refs/a b",
    "refs/a\tb",
    "refs/a\x01b",
    "refs/a\x1fb",
    "refs/a\x7fb",
    "refs/a~1",
    "refs/a^",
    "refs/a:b",
    "refs/a?",
    "refs/a*",
    "refs/a[b",
    "refs/a]b",
    "refs/a\\b",
    "refs/a\u00a0b",
    "refs/heads/HEAD",
    "refs/heads/a-.b",
    "refs/-",
    "refs/a/b/c/d/e",
]


@pytest.mark.parametrize("name", TABLE)
def test_table_agrees_with_git(name: str) -> None:
    assert (format_problem(name) is None) == git_accepts(name), (name, format_problem(name))


@pytest.mark.parametrize("name", ["a", "main", "a.b", "x-", "x.", ".x", "a..b", "@", "a.lock"])
def test_one_level_names_agree_with_git_allow_onelevel(name: str) -> None:
    assert (format_problem(name) is None) == git_accepts(name, onelevel=True)


ALPHABET = st.sampled_from(
    [
        *"ab.z/@{}~^:?*[]\\ -_",
        *["\t", "\n", "\x01", "\x1f", "\x7f", "é", "lock", ".lock", "..", "@{", "//"],
    ]
)
TAILS = st.lists(ALPHABET, max_size=10).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tail=TAILS)
@example(tail="a.lock")
@example(tail="x/.")
@example(tail="@")
@example(tail="a@{")
@example(tail="")
def test_random_names_agree_with_git(tail: str) -> None:
    name = "refs/" + tail
    assert (format_problem(name) is None) == git_accepts(name), (name, format_problem(name))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TAILS.filter(lambda s: bool(s) and not s.startswith("-")))
def test_random_onelevel_names_agree_with_git(name: str) -> None:
    # (git's CLI takes a leading "-" as an option, so such names cannot be asked)
    assert (format_problem(name) is None) == git_accepts(name, onelevel=True), name


@given(name=st.text())
def test_format_problem_is_total(name: str) -> None:
    """Any text gets an answer (a reason string or None), never an exception."""
    why = format_problem(name)
    assert why is None or (isinstance(why, str) and why)
    if "\x00" in name:
        assert why is not None  # NUL can never be part of a ref name


@given(name=st.text(max_size=30))
def test_check_ref_name_raises_only_bad_ref_name(name: str) -> None:
    try:
        assert check_ref_name(name) == name
    except BadRefName as err:
        assert err.code == "STEVE-REF-001"
        assert err.name == name
    else:
        assert format_problem(name) is None
        assert name.startswith("refs/") or name.endswith("HEAD")


@pytest.mark.parametrize("name", ["HEAD", "ORIG_HEAD", "FETCH_HEAD", "refs/heads/main"])
def test_full_names_accepted(name: str) -> None:
    assert check_ref_name(name) == name


@pytest.mark.parametrize(
    "name", ["main", "heads/main", "refs/", "head", "Head", "refs/heads/a..b", "", "@"]
)
def test_full_names_rejected(name: str) -> None:
    with pytest.raises(BadRefName):
        check_ref_name(name)


@pytest.mark.parametrize("short", ["-x", "HEAD", "a..b", "a b", "x.lock", ""])
def test_branch_or_tag_names_rejected(short: str) -> None:
    with pytest.raises(BadRefName):
        check_branch_or_tag_name(short)


def test_branch_names_match_git_check_ref_format_branch() -> None:
    """`git check-ref-format --branch` refuses the same short names we refuse."""
    assert GIT is not None
    for short in ["-x", "HEAD", "a..b", "ok", "feature/x", "v1.0"]:
        proc = subprocess.run(
            [GIT, "check-ref-format", "--branch", short],
            env=GIT_ENV,
            capture_output=True,
            check=False,
        )
        ours = True
        try:
            check_branch_or_tag_name(short)
        except BadRefName:
            ours = False
        assert ours == (proc.returncode == 0), short


def test_dwim_candidates_are_gits_order() -> None:
    assert candidates("x") == [
        "x",
        "refs/x",
        "refs/tags/x",
        "refs/heads/x",
        "refs/remotes/x",
        "refs/remotes/x/HEAD",
    ]
